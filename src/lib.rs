//! driftwood scores Avro feature streams from Kafka with an in-memory random forest.
//!
//! Modules follow the data path:
//!
//! - [`config`]: command-line and environment configuration, librdkafka settings.
//! - [`dataset`]: training data (the bundled breast-cancer set, CSV files).
//! - [`model`]: training, the artifact on disk, the compiled forest that scores.
//! - [`admin`]: creating missing topics.
//! - [`source`]: Kafka in: the consumer context (rebalances, statistics, commits).
//! - [`decode`]: input framing (plain Avro, Confluent wire format) and features by name.
//! - [`pipeline`]: the consumer loop: poll a batch, hand it on, store offsets.
//! - [`scorer`]: a batch of messages to outputs: decode, score, encode, send.
//! - [`avro`]: the hot path's Avro codec (a plan compiled from the writer schema).
//! - [`encode`]: Avro encoding of predictions (and of feature records for `produce`).
//! - [`sink`]: Kafka out: predictions and dead letters, acknowledgements, retries.
//! - [`offsets`]: which input offsets are safe to commit.
//! - [`drift`]: drift statistics of windows against the training baselines (PSI, KL, JS).
//! - [`metrics`], [`health`], [`sidecar`]: Prometheus metrics, probes, the HTTP server.
//! - [`shutdown`]: SIGTERM and SIGINT.
//! - [`service`]: all of the above as one running instance, and the checks before it starts.
//! - [`produce`], [`demo`], [`bench`](mod@bench): the load generator, the zero-install demo and the
//!   broker benchmark.
//!
//! [`error`] holds the library's error type.

pub mod admin;
pub mod avro;
pub mod bench;
pub mod config;
pub mod dataset;
pub mod decode;
pub mod demo;
pub mod drift;
pub mod encode;
pub mod error;
pub mod health;
pub mod metrics;
pub mod model;
pub mod offsets;
pub mod pipeline;
pub mod produce;
pub mod scorer;
pub mod service;
pub mod shutdown;
pub mod sidecar;
pub mod sink;
pub mod source;

pub use error::{Error, Result};

//! driftwood scores Avro feature streams from Kafka with an in-memory random forest.
//!
//! The folders follow the data path, Kafka in → decode → model → Kafka out → drift → sidecar.
//! Their layers, bottom to top, are in `tests/architecture.rs` and ARCHITECTURE.md:
//!
//! - [`config`]: command-line and environment settings, and the librdkafka configuration of
//!   each client, checked before anything connects.
//! - `kafka` (internal): Kafka in and out: `kafka::source` (the consumer's rebalances,
//!   statistics and commits), `kafka::sink` (one producer for every output,
//!   acknowledgements; `kafka::wakeup` lets it sleep until one comes), `kafka::retry` (which failures to retry, and how), `kafka::offsets`
//!   (which input offsets are safe to commit), `kafka::admin` (creating missing topics), and
//!   `kafka::events` (what it reports to the layer above, typed).
//! - [`codec`]: [`codec::dead_letter`] (what a dead letter's headers say), [`codec::decode`] (input framing, features by name) over `codec::avro` (the
//!   plan compiled from the writer schema), [`codec::encode`] (predictions and feature
//!   records), and [`codec::registry`] (the schema registry: writer schemas by id, output
//!   schemas registered).
//! - [`model`]: training data, training, the artifact on disk, the compiled forest.
//! - `pipeline` (internal): the consumer loop (poll a batch, hand it on, store offsets,
//!   pause under back-pressure), `pipeline::resolve` (a batch's new schema ids fetched, or
//!   their partitions held while the registry is away), `pipeline::serving` (which model
//!   serves), `pipeline::scorer` (a batch to outputs) and `pipeline::accounting` (the
//!   transport's events as metrics and health).
//! - [`stats`]: the statistics drift's tests rest on (binned rank tests, Holm's correction,
//!   CUSUM, Wilson bounds) and performance estimated without labels (isotonic calibration,
//!   CBPE's expected confusion matrix), knowing nothing of records or models.
//! - [`drift`]: windows of records tested against the model's drift reference, at stated
//!   false-alarm rates.
//! - [`labels`]: delayed ground truth: predictions awaiting their labels, joined by id
//!   within a horizon, and the realized performance per model version and window of labels.
//! - [`obs`]: metrics, health, telemetry and shutdown signals: the leaf every layer reports
//!   through.
//! - [`http`]: the sidecar (probes, `/metrics`) and the REST twin, at the top.
//! - [`service`]: all of the above as one running instance, and the checks before it starts.
//! - [`tools`]: beside the data path: the load generator, the demo and the benchmark.
//!
//! `error` holds the library's error type, re-exported here with the causes a caller matches
//! on ([`Error`], [`RegistryError`]).
//!
//! What is public is what the binary, the integration tests and the benchmarks use; the
//! transport (`kafka`), the loop (`pipeline`) and most submodules are the crate's own.

pub mod codec;
pub mod config;
pub mod drift;
pub(crate) mod error;
pub mod http;
mod kafka;
pub mod labels;
pub mod model;
pub mod obs;
pub(crate) mod pipeline;
pub mod service;
pub mod stats;
pub mod tools;

pub use error::{Error, RegistryError, Result};

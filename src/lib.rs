//! driftwood scores Avro feature streams from Kafka with an in-memory random forest.
//!
//! Modules follow the data path:
//!
//! - [`config`]: command-line and environment configuration, librdkafka settings.
//! - [`dataset`]: training data (the bundled breast-cancer set, CSV files).
//! - [`model`]: training, the artifact on disk, the flattened forest that scores.
//! - [`decode`]: input framing (plain Avro, Confluent wire format) and features by name.
//! - [`encode`]: Avro encoding of predictions (and of feature records for `produce`).
//!
//! [`error`] holds the library's error type.

pub mod config;
pub mod dataset;
pub mod decode;
pub mod encode;
pub mod error;
pub mod metrics;
pub mod model;
pub mod offsets;

pub use error::{Error, Result};

//! driftwood against a real Apache Kafka: one test binary, one module per concern, sharing
//! the harness in `common` (the broker, unique names, reading topics back).
//!
//! The broker is `KAFKA_BOOTSTRAP_SERVERS` when set (`scripts/test.sh` sets it), otherwise
//! one started here through `scripts/kafka.sh`. Run one concern with e.g.
//! `cargo test --test integration restart`.

mod common;

mod backpressure;
mod bench;
mod canary;
mod cluster;
mod compatibility;
mod crashes;
mod drift;
mod end_to_end;
mod exactly_once;
mod explain;
mod failures;
mod headers;
mod imported;
#[cfg(feature = "testcontainers")]
mod kafka_container;
mod keda;
mod labels;
mod lifecycle;
mod mlflow;
mod monitoring;
mod output_down;
mod rest;
mod restart;
mod routing;
mod scaling;
mod schema_registry;
mod schema_registry_clients;
mod security;
mod shadow;
mod shutdown;
mod sidecar;
mod status_page;

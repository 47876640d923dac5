//! What operators see and do: Prometheus metrics, liveness and readiness, the HTTP sidecar
//! that serves them (and the REST twin, `rest`), the signals that stop an instance, and optional OTLP span export.

pub mod health;
pub mod metrics;
pub(crate) mod rate_limit;
pub mod rest;
pub mod shutdown;
pub mod sidecar;
pub mod telemetry;

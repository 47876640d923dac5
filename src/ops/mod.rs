//! What operators see and do: Prometheus metrics, liveness and readiness, the HTTP sidecar
//! that serves them, and the signals that stop an instance.

pub mod health;
pub mod metrics;
pub(crate) mod rate_limit;
pub mod shutdown;
pub mod sidecar;

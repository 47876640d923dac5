//! What an instance tells its operators, beneath everything else: Prometheus metrics,
//! liveness and readiness, the signals that stop it, optional OTLP span export, and
//! rate-limited warnings. A leaf: it imports nothing from the crate but its error type, so
//! that every layer may report through it (`tests/architecture.rs` keeps it so).

pub(crate) mod health;
pub(crate) mod metrics;
pub(crate) mod rate_limit;
pub mod shutdown;
pub mod telemetry;
pub mod trace;

/// Now, as records, reports and health checks carry time: milliseconds since the Unix epoch.
pub fn epoch_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

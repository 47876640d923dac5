//! Drift detection: live windows of records compared with the training baselines stored in
//! the model artifact ([`crate::model::baseline`]).
//!
//! - [`stats`]: PSI, KL divergence and Jensen–Shannon distance between two histograms.
//! - [`window`]: a window's raw counts and the report computed from them.
//! - [`monitor`]: the pipeline's tumbling windows, whose reports the scorer publishes as
//!   Avro `DriftReport`s.

pub mod monitor;
pub mod stats;
pub mod window;

pub use monitor::{DriftMonitor, DriftSettings};
pub use window::{DriftReport, DriftThresholds, DriftWindow, Flag};

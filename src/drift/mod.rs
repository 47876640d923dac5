//! Drift detection: live windows of records tested against the model's drift reference
//! ([`crate::model::drift_reference`]), with false-alarm rates that hold.
//!
//! - `plan`: which tests a model's windows get and each one's share of the error budget.
//! - `window`: a window's raw counts (mergeable sums); `products`: the sums of its
//!   scores' products in pairs, a block of records at a time; `estimate`: a calibrated
//!   binary classifier's expected performance, from sums of the same kind.
//! - `sample`: which records a fast stream's window counts the features of (a random
//!   sample past about 100,000 a window).
//! - `report`: the report published per window, as Avro `DriftReport`s (`encode`: its
//!   bytes).
//! - `prepared`: a reference distribution's parts that every window's tests reuse.
//! - `compute`: the report from the counts: the tests ([`crate::stats`]), Holm's correction
//!   over all of them, the flags and effects.
//! - `sequential`: the CUSUM alarm across windows, for shifts too slow for one window.
//! - `monitor`: the pipeline's tumbling windows, whose reports the scorer publishes;
//!   `worker`: those windows counted on a thread of their own, beside the loop;
//!   `tester`: the same windows tested outside the pipeline (benchmark, tests).

mod compute;
mod encode;
pub(crate) mod estimate;
pub(crate) mod monitor;
pub(crate) mod plan;
mod prepared;
mod products;
pub(crate) mod report;
mod sample;
mod sequential;
pub(crate) mod tester;
pub(crate) mod window;
mod worker;

pub use compute::Inputs;
pub use estimate::EstimatedPerformance;
pub use monitor::DriftMonitor;
pub use plan::{DriftSettings, Plan, Rates};
pub use report::{DriftReport, Flag};
pub use sequential::{Outcome, Sequential};
pub use tester::Tester;
pub use window::{DriftWindow, WindowCounts};
pub use worker::DriftWorker;
#[cfg(test)]
mod tests;

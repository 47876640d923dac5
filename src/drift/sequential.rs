//! The sequential alarm of one model served: a two-sided CUSUM ([`crate::stats::cusum`]) of
//! each feature's mean score and of a regressor's value, fed one window at a
//! time, for a shift too slow for one window to see. State lives as long as the model
//! serves on this instance; a restart or a new version starts from zero (which only delays
//! an alarm, never raises a false one).

use super::compute::score_shift;
use super::plan::{MIN_TESTED_RECORDS, Plan};
use super::report::SequentialAlarm;
use super::window::WindowCounts;
use crate::model::drift_reference::DriftReference;
use crate::stats::cusum::{Cusum, Side};

/// The CUSUMs: one per feature, then a regressor's value's.
#[derive(Debug, Clone)]
pub struct Sequential {
    cusums: Vec<Cusum>,
    names: Vec<String>,
}

/// What one window did to the CUSUMs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Each statistic's evidence over its threshold (features in order, then a regressor's
    /// value).
    pub levels: Vec<f64>,
    /// The statistics that alarmed.
    pub alarms: Vec<SequentialAlarm>,
}

impl Sequential {
    /// CUSUMs at zero for every feature (`names`), and a `regressor`'s value.
    pub fn new(names: &[String], regressor: bool) -> Self {
        let mut names = names.to_vec();
        if regressor {
            names.push("prediction".into());
        }
        Sequential {
            cusums: vec![Cusum::default(); names.len()],
            names,
        }
    }

    /// The evidence over its threshold of statistic `index` (features in order, then a
    /// regressor's value).
    pub fn level(&self, index: usize, plan: &Plan) -> f64 {
        self.cusums
            .get(index)
            .map_or(0.0, |c| c.level(&plan.sequential))
    }

    /// Feeds a closed window. A window too small to test is left out.
    pub fn update(
        &mut self,
        counts: &WindowCounts,
        reference: &DriftReference,
        plan: &Plan,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        // A regressor's values are counted in `predictions`; a classifier has no CUSUM
        // there (zip stops at the features).
        let prepared = &plan.prepared;
        let distributions = (counts.features.iter().zip(&reference.features))
            .zip(&prepared.features)
            .chain([(
                (&counts.predictions, &reference.outputs.distribution),
                &prepared.outputs,
            )]);
        for ((cusum, name), ((window, marginal), prepared)) in
            self.cusums.iter_mut().zip(&self.names).zip(distributions)
        {
            let shift = score_shift(window, marginal, prepared)
                .filter(|_| counts.records >= MIN_TESTED_RECORDS);
            let alarm = shift.and_then(|(d, n)| cusum.update(d, n, &plan.sequential));
            // A side that alarms starts again from zero; the window that raised it shows 1.
            let level = cusum.level(&plan.sequential);
            outcome.levels.push(if alarm.is_some() {
                level.max(1.0)
            } else {
                level
            });
            if let Some(side) = alarm {
                outcome.alarms.push(SequentialAlarm {
                    name: name.clone(),
                    direction: match side {
                        Side::Up => "up",
                        Side::Down => "down",
                    }
                    .into(),
                });
            }
        }
        outcome
    }
}

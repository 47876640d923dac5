//! The sequential alarm of one model served: a two-sided CUSUM ([`crate::stats::cusum`]) of
//! each feature's mean score and of a regressor's value, fed one window at a
//! time, for a shift too slow for one window to see. State lives as long as the model
//! serves on this instance; a restart or a new version starts from zero (which only delays
//! an alarm, never raises a false one).

use super::plan::{MIN_TESTED_RECORDS, Plan};
use super::prepared::Prepared;
use super::report::SequentialAlarm;
use super::window::WindowCounts;
use crate::model::drift_reference::DriftReference;
use crate::stats::cusum::{Cusum, Side};
use crate::stats::profile::Marginal;

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

/// The mean score of a distribution's window counts minus the reference's, in the
/// reference's score standard deviations, and the window's values (for the sequential
/// alarm); `None` when either is empty or the reference's scores do not vary.
fn score_shift(window: &[i64], m: &Marginal, prepared: &Prepared) -> Option<(f64, f64)> {
    // The mean alone, as `score_moments` adds it up (the counts are exact as f64).
    let n = window.iter().sum::<i64>() as f64;
    if n == 0.0 || m.present() == 0 {
        return None;
    }
    let sum: f64 = (window.iter().zip(&m.scores))
        .map(|(&c, s)| c as f64 * s)
        .sum();
    let mean_w = sum / n;
    let (mean_r, var_r) = prepared.moments;
    (var_r > 0.0).then(|| ((mean_w - mean_r) / var_r.sqrt(), n))
}

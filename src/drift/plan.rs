//! Which tests a model's windows get, each one's share of the false-alarm budget, and what
//! that lets a window of n records detect. Made once per model served, from its drift
//! reference and the settings.
//!
//! The budget: a window is flagged `alert` without drift with probability at most the alert
//! rate α (and `warn` at most the warn rate). The sequential alarm, which flags its window
//! `alert` too, takes 1/L of it (at most one false alarm per L windows); the window's tests
//! together take the rest, α − 1/L, by Holm's weighted correction ([`crate::stats::holm`]).
//! That goes to the families of tests in fixed shares, split evenly within a family; a
//! family the reference cannot support gives its share to the others:
//!
//! | family | share | tests |
//! |---|---|---|
//! | features | 0.60 | per feature (an equal part each): location 0.5, scale 0.2, shape 0.2, missing share 0.1 of it |
//! | pairs | 0.20 | per pair of features: correlation of their scores |
//! | vector | 0.05 | the whole vector of mean scores (Hotelling's T²) |
//! | outputs | 0.15 | a classifier's class mix; a regressor's values: location, scale, shape (as a feature's, without missing) |

use std::time::Duration;

use super::prepared::Prepared;
use super::report::TestKind;
use super::sample::FeatureSample;
use crate::model::ModelMetadata;
use crate::model::drift_reference::DriftReference;
use crate::stats::cusum::Design;
use crate::stats::dist::normal_upper;
use crate::stats::joint::{PairReference, factor, testable_pair};
use crate::stats::linalg::Cholesky;

/// A window with fewer scored records is reported but not tested: below it the normal
/// approximations the tests rest on are not trusted at the small error rates they run at.
pub const MIN_TESTED_RECORDS: i64 = 100;

/// The detectable shift a report gives is the one found with this probability.
pub const POWER: f64 = 0.9;

/// Shares of the budget (see the module documentation).
const SHARES: [(Family, f64); 4] = [
    (Family::Features, 0.6),
    (Family::Pairs, 0.2),
    (Family::Vector, 0.05),
    (Family::Outputs, 0.15),
];

/// How a distribution's share is split among its tests: most to its location, the drift
/// seen most often (see the module documentation).
const DISTRIBUTION_SHARES: [(TestKind, f64); 4] = [
    (TestKind::Location, 0.5),
    (TestKind::Scale, 0.2),
    (TestKind::Shape, 0.2),
    (TestKind::Missing, 0.1),
];

/// When windows close and what their flags mean.
#[derive(Debug, Clone)]
pub struct DriftSettings {
    /// A window closes once it has this many records (scored and invalid)…
    pub window_records: i64,
    /// …and is at least this old: a fast stream's window holds this long of it, not a
    /// few milliseconds (zero: every window is exactly `window_records` records, closed
    /// at the record that fills it).
    pub window_min_age: Duration,
    /// A window with records closes after this long, however few it has.
    pub window_age: Duration,
    /// With a minimum age, a window counts the features of a random sample of about this
    /// many records (ten times the reference's rows, if more) once windows hold more
    /// (`drift::sample`); `None`: every record's.
    pub sample_records: Option<i64>,
    /// Family-wise false-alarm rates per window.
    pub rates: Rates,
    /// A statistic is flagged only when its effect reaches this (0: any significant one).
    pub min_effect: f64,
    /// The sequential alarm raises a false alarm at most once per this many windows.
    pub sequential_windows: f64,
    /// Whether records are counted into windows at all (`--no-drift` turns it off).
    pub enabled: bool,
    /// This instance's id in the reports.
    pub instance_id: String,
}

impl DriftSettings {
    /// Windows of exactly 1,000 records or 60 s, alert and warn rates 1% and 5%, no
    /// minimum effect, a false sequential alarm at most once per 1,000 windows: the defaults
    /// of `driftwood run` but for its windows' minimum age (`--drift-window-min-seconds`,
    /// 10 s), which counting offline and tests, whose records come faster than any clock
    /// would show, leave at zero.
    pub fn new(instance_id: String) -> Self {
        DriftSettings {
            window_records: 1000,
            window_min_age: Duration::ZERO,
            window_age: Duration::from_secs(60),
            sample_records: Some(super::sample::MIN_TARGET),
            rates: Rates::default(),
            min_effect: 0.0,
            sequential_windows: 1000.0,
            enabled: true,
            instance_id,
        }
    }
}

impl DriftSettings {
    /// How many records' features a window of a model whose reference has
    /// `reference_rows` rows counts at least, when it counts a sample (`drift::sample`);
    /// `None` when it counts every record's: no sample asked for, or exact windows (no
    /// minimum age), which must repeat.
    pub fn sample_target(&self, reference_rows: u64) -> Option<i64> {
        let requested = self
            .sample_records
            .filter(|_| !self.window_min_age.is_zero())?;
        Some(FeatureSample::target(
            requested,
            reference_rows,
            self.window_records,
        ))
    }
}

/// The family-wise false-alarm rates per window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Of an `alert`.
    pub alert: f64,
    /// Of a `warn` (or an alert).
    pub warn: f64,
}

impl Rates {
    /// Both rates less `share` (the sequential alarm's), at least a tenth of each left.
    pub fn less(self, share: f64) -> Rates {
        Rates {
            alert: (self.alert - share).max(self.alert / 10.0),
            warn: (self.warn - share).max(self.warn / 10.0),
        }
    }
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            alert: 0.01,
            warn: 0.05,
        }
    }
}

/// A family of tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Per-feature tests.
    Features,
    /// Per-pair correlation tests.
    Pairs,
    /// The whole-vector test.
    Vector,
    /// Tests of the model's outputs.
    Outputs,
}

/// The tests of one model's windows.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Each family's share of the budget (0 for a family without tests).
    shares: [f64; 4],
    /// Features, each with its share of the features' share.
    features: usize,
    /// Pairs (i, j) with a correlation test, and their side in the reference.
    pub pairs: Vec<PairReference>,
    /// The factor of the reference's score covariance, for the vector test.
    pub factor: Option<Cholesky>,
    /// Whether there is a class-mix test.
    pub class_mix: bool,
    /// The sequential alarm's design.
    pub sequential: Design,
    /// The rates a window is flagged at, the sequential alarm's share included.
    pub rates: Rates,
    /// The rates the window's own tests run at: each of `rates` less the sequential alarm's
    /// share, one false alarm per `sequential_windows`.
    pub window_rates: Rates,
    /// The minimum effect.
    pub min_effect: f64,
    /// The reference's distributions, prepared for the tests.
    pub prepared: PreparedReference,
}

/// The reference's distributions, prepared for the tests.
#[derive(Debug, Clone)]
pub struct PreparedReference {
    /// Each feature's.
    pub features: Vec<Prepared>,
    /// The outputs' (a classifier's confidence, a regressor's values).
    pub outputs: Prepared,
}

impl Plan {
    /// The plan for `metadata`'s model against `reference`, under `settings`.
    pub fn new(
        metadata: &ModelMetadata,
        reference: &DriftReference,
        settings: &DriftSettings,
    ) -> Self {
        let p = reference.features.len();
        let pairs: Vec<PairReference> = match &reference.joint {
            Some(joint) => (0..p)
                .flat_map(|i| (i + 1..p).map(move |j| (i, j)))
                .filter(|&(i, j)| testable_pair(joint, i, j))
                .map(|(i, j)| PairReference::new(joint, i, j))
                .collect(),
            None => Vec::new(),
        };
        let factor = (reference.joint.as_ref()).map(factor).filter(|f| {
            f.rank() > 0 && (f.rank() as u64) + 1 < reference.joint.as_ref().map_or(0, |j| j.rows)
        });
        let class_mix = !metadata.classes.is_empty();
        let outputs = if class_mix { 1 } else { 3 };
        let counts = [4 * p, pairs.len(), usize::from(factor.is_some()), outputs];
        let present: f64 = (SHARES.iter().zip(counts))
            .filter(|(_, c)| *c > 0)
            .map(|((_, share), _)| share)
            .sum();
        let shares = std::array::from_fn(|k| match counts[k] {
            0 => 0.0,
            _ => SHARES[k].1 / present,
        });
        let mut plan = Plan {
            shares,
            features: p,
            pairs,
            factor,
            class_mix,
            sequential: Design {
                shift: 0.0,
                margin: 0.0,
                threshold: 0.0,
            },
            rates: settings.rates,
            window_rates: settings.rates.less(1.0 / settings.sequential_windows),
            min_effect: settings.min_effect,
            prepared: PreparedReference {
                features: reference.features.iter().map(Prepared::new).collect(),
                outputs: Prepared::new(&reference.outputs.distribution),
            },
        };
        plan.sequential = plan.sequential_design(reference, settings);
        plan
    }

    /// A family's share of the budget.
    fn share(&self, family: Family) -> f64 {
        let k = SHARES.iter().position(|(f, _)| *f == family);
        self.shares[k.expect("every family has a share")]
    }

    /// The weight of one test of a family of like tests: a pair, the vector, the class mix.
    pub fn weight(&self, family: Family) -> f64 {
        let tests = match family {
            Family::Pairs => self.pairs.len().max(1),
            _ => 1,
        };
        self.share(family) / tests as f64
    }

    /// The weight of one feature's test of `kind`.
    pub fn feature_weight(&self, kind: TestKind) -> f64 {
        self.share(Family::Features) / self.features.max(1) as f64 * distribution_share(kind, true)
    }

    /// The weight of a regressor's values' test of `kind`.
    pub fn output_weight(&self, kind: TestKind) -> f64 {
        self.share(Family::Outputs) * distribution_share(kind, false)
    }

    /// The smallest shift of a feature's location, in its standard deviations, that a
    /// window of `n` records against `m` reference values detects with `POWER` at the alert
    /// rate (for a normally distributed feature; the first step of Holm's correction).
    pub fn detectable_shift(&self, n: f64, m: f64) -> f64 {
        let level = self.window_rates.alert * self.feature_weight(TestKind::Location);
        (normal_upper(level / 2.0) + normal_upper(1.0 - POWER)) * (1.0 / n + 1.0 / m).sqrt()
    }

    /// What the tests cover and what a window of `n` records detects, in a sentence: the
    /// pair and whole-vector tests the reference supports, the outputs tested, and the
    /// smallest mean shift of one feature found with `POWER` at the alert rate.
    pub fn summary(&self, reference: &DriftReference, n: i64) -> String {
        let m = reference
            .features
            .iter()
            .map(|f| f.present())
            .min()
            .unwrap_or(0);
        let joint = match (&reference.joint, &self.factor) {
            (Some(_), Some(f)) => format!(
                "{} pairs' correlations and the whole vector ({} features) tested",
                self.pairs.len(),
                f.rank()
            ),
            (Some(_), None) => format!("{} pairs' correlations tested", self.pairs.len()),
            (None, _) => "no pair or whole-vector tests (the reference keeps bins only)".into(),
        };
        let outputs = if self.class_mix {
            "class mix"
        } else {
            "values"
        };
        format!(
            "{joint}; outputs' {outputs} against {}; a window of {n} records detects a {:.2} sd mean shift in one feature with {:.0}% power at the {}% alert rate",
            reference.outputs.source,
            self.detectable_shift(n as f64, m as f64),
            POWER * 100.0,
            self.rates.alert * 100.0,
        )
    }

    /// The sequential alarm: CUSUMs of each feature's (and a regressor's value's) mean score, tuned to a
    /// quarter of the shift one full window detects, with the reference's error bounded at
    /// the alert rate over all of them, and a threshold for one false alarm per
    /// `sequential_windows` windows.
    fn sequential_design(&self, reference: &DriftReference, settings: &DriftSettings) -> Design {
        let values = (!self.class_mix).then_some(&reference.outputs.distribution);
        let statistics = reference.features.len() + usize::from(values.is_some());
        let m = (reference.features.iter())
            .chain(values)
            .map(|f| f.present())
            .min()
            .unwrap_or(0)
            .max(1) as f64;
        let reference_error = normal_upper(settings.rates.alert / (2.0 * statistics as f64));
        Design {
            shift: self.detectable_shift(settings.window_records as f64, m) / 4.0,
            margin: reference_error / m.sqrt(),
            threshold: Design::threshold(2 * statistics, settings.sequential_windows),
        }
    }
}

/// A test's part of its distribution's share (renormalized without the missing-share test
/// where there is none: a regressor's values).
fn distribution_share(kind: TestKind, with_missing: bool) -> f64 {
    let share = |k: TestKind| {
        DISTRIBUTION_SHARES
            .iter()
            .find(|(t, _)| *t == k)
            .map_or(0.0, |s| s.1)
    };
    match with_missing {
        true => share(kind),
        false => share(kind) / (1.0 - share(TestKind::Missing)),
    }
}

//! A window's drift report: the raw counts, every test's statistic and adjusted p-value,
//! the effects (standardized mean shift, PSI, correlation change), what the window could have
//! detected, and the flags. Published as Avro (`schemas/drift_report.avsc`).

use serde::{Deserialize, Serialize};

use super::estimate::EstimatedPerformance;
use super::window::WindowCounts;
pub use crate::stats::binned::Divergence;

/// How far a statistic, a feature or a window has moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flag {
    /// Not significant at the warn rate (or below the minimum effect).
    Ok,
    /// Significant at the warn rate, not at the alert rate.
    Warn,
    /// Significant at the alert rate.
    Alert,
}

/// What a test looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestKind {
    /// The location of the distribution (van der Waerden's normal-scores test).
    Location,
    /// Its spread (Klotz's squared normal-scores test).
    Scale,
    /// Its shape over up to ten equal-mass bins (chi-square).
    Shape,
    /// The share of missing values.
    Missing,
    /// The mix of predicted classes (chi-square).
    ClassMix,
}

/// One test of a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// What it tests.
    pub test: TestKind,
    /// Its statistic: z for location, scale and missing share, X² for shape and class mix.
    pub statistic: f64,
    /// Its p-value.
    pub p_value: f64,
    /// Its p-value adjusted for every test of the window (Holm, weighted): flagged `alert`
    /// when at most the alert rate, `warn` when at most the warn rate.
    pub adjusted_p: f64,
    /// Its effect: the standardized shift of the normal scores (location), the ratio of
    /// their standard deviations minus 1 (scale), Cohen's w (shape, class mix), Cohen's h
    /// (missing share).
    pub effect: f64,
    /// Its flag.
    pub flag: Flag,
}

/// One feature's drift in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    /// Feature name.
    pub name: String,
    /// Divergences over the reference's deciles (effect sizes, no error rate).
    pub divergence: Divergence,
    /// The worst flag of its tests.
    pub flag: Flag,
    /// Its tests (none in a window too small to test).
    #[serde(default)]
    pub tests: Vec<TestResult>,
    /// The smallest adjusted p-value of its tests.
    #[serde(default = "one")]
    pub p_value: f64,
    /// (window mean − reference mean) / reference standard deviation.
    #[serde(default)]
    pub mean_shift: Option<f64>,
    /// Window standard deviation / reference standard deviation.
    #[serde(default)]
    pub sd_ratio: Option<f64>,
    /// Share of the window's records where it was missing.
    #[serde(default)]
    pub missing_share: f64,
    /// The smallest mean shift, in reference standard deviations, that this window and this
    /// reference detect with 90% power at the alert rate (for a normally distributed
    /// feature).
    #[serde(default)]
    pub detectable_shift: Option<f64>,
    /// The sequential alarm's evidence of a persistent shift: 1 raises it.
    #[serde(default)]
    pub sequential: f64,
}

fn one() -> f64 {
    1.0
}

/// A pair of features whose correlation changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairDrift {
    /// The first feature.
    pub a: String,
    /// The second.
    pub b: String,
    /// Their scores' correlation in the reference.
    pub reference: f64,
    /// In the window.
    pub window: f64,
    /// The z statistic of the Fisher-transformed difference.
    pub statistic: f64,
    /// Its adjusted p-value.
    pub adjusted_p: f64,
    /// Its flag.
    pub flag: Flag,
}

/// The whole vector of features: Hotelling's T² on the mean scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorDrift {
    /// T².
    pub statistic: f64,
    /// Features it covers (those not explained by others).
    pub features: i32,
    /// Its p-value.
    pub p_value: f64,
    /// Adjusted.
    pub adjusted_p: f64,
    /// The Mahalanobis distance of the mean scores: the shift in standard deviations along
    /// the data's own axes.
    pub distance: f64,
    /// Its flag.
    pub flag: Flag,
}

/// A sequential alarm: a statistic whose CUSUM crossed its threshold with this window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequentialAlarm {
    /// The feature, or `prediction` for a regressor's value.
    pub name: String,
    /// `up` or `down`.
    pub direction: String,
}

/// Recall of one class among labeled records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassRecall {
    /// Class label (for a model whose classes are names, the class's index).
    pub label: i32,
    /// The class's name, for a model whose classes are names.
    pub name: Option<String>,
    /// Labeled records of this class.
    pub support: i64,
    /// Share of them predicted correctly; `None` without support.
    pub recall: Option<f64>,
}

/// Where a window came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowOrigin {
    /// Instance that observed it.
    pub instance_id: String,
    /// Input partitions assigned when it closed, and any it counted records from.
    pub partitions: Vec<i32>,
    /// Window start, ms since the epoch.
    pub window_start: i64,
    /// Window end, ms since the epoch.
    pub window_end: i64,
}

/// A window's drift statistics against the model's drift reference, with the raw counts they
/// were computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// Model name.
    pub model_name: String,
    /// Model version.
    pub model_version: String,
    /// Instance, partitions and time span.
    pub origin: WindowOrigin,
    /// The raw counts.
    pub counts: WindowCounts,
    /// Per feature, in model order.
    pub features: Vec<FeatureDrift>,
    /// Divergence of the predicted class mix (a regressor's: of the predicted values).
    pub prediction: Divergence,
    /// Flag of the predictions: the class mix's (a regressor's: the values' tests).
    pub prediction_flag: Flag,
    /// Divergence of a classifier's confidence (an effect size: the confidence is not
    /// tested, see the README).
    pub confidence: Option<Divergence>,
    /// Always null: the confidence is not tested (it was flagged by PSI before).
    pub confidence_flag: Option<Flag>,
    /// Mean confidence of a classifier's predictions in the window.
    pub mean_confidence: Option<f64>,
    /// Mean of a regressor's predicted values in the window.
    pub mean_value: Option<f64>,
    /// Share of the window's records that could not be scored.
    pub invalid_share: f64,
    /// Accuracy among labeled records, when there were any.
    pub accuracy: Option<f64>,
    /// Per-class recall among labeled records.
    pub recall: Vec<ClassRecall>,
    /// The worst flag of the window's tests.
    pub flag: Flag,
    /// Something that happened to the model with this window, e.g. an automatic rollback.
    #[serde(default)]
    pub notice: Option<String>,
    /// Tests of the model's outputs: a classifier's class mix, a regressor's values'
    /// location, scale and shape.
    #[serde(default)]
    pub outputs: Vec<TestResult>,
    /// Pairs of features whose correlation is flagged.
    #[serde(default)]
    pub pairs: Vec<PairDrift>,
    /// The whole-vector test, where the reference allows it.
    #[serde(default)]
    pub vector: Option<VectorDrift>,
    /// Statistics whose sequential alarm went off with this window.
    #[serde(default)]
    pub sequential: Vec<SequentialAlarm>,
    /// Why the window was not tested (too few records), if it was not.
    #[serde(default)]
    pub untested: Option<String>,
    /// Tests run on the window, all of them sharing the rates.
    #[serde(default)]
    pub tests: i32,
    /// The family-wise false-alarm rate of `alert`.
    #[serde(default)]
    pub alert_rate: f64,
    /// Of `warn`.
    #[serde(default)]
    pub warn_rate: f64,
    /// Rows of the drift reference.
    #[serde(default)]
    pub reference_rows: i64,
    /// Performance expected without labels (a calibrated binary classifier's).
    #[serde(default)]
    pub estimated: Option<EstimatedPerformance>,
}

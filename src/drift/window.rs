//! One tumbling window of scored records: its raw counts, and the drift report computed from
//! them against the model's training baselines. Reports carry the raw counts too, so a
//! reader can add up the windows of several replicas.

use serde::{Deserialize, Serialize};

use super::stats::{Divergence, divergence};
use crate::model::ModelMetadata;
use crate::model::baseline::Histogram;
use crate::model::engine::Predicted;

/// PSI levels that raise a flag. The defaults are the conventional ones: below 0.1 no
/// significant change, 0.1–0.25 moderate, above 0.25 significant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DriftThresholds {
    /// PSI at or above which a distribution is flagged `warn`.
    pub warn: f64,
    /// PSI at or above which a distribution is flagged `alert`.
    pub alert: f64,
}

impl Default for DriftThresholds {
    fn default() -> Self {
        DriftThresholds {
            warn: 0.1,
            alert: 0.25,
        }
    }
}

/// How far a distribution has moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flag {
    /// Below the warn threshold.
    Ok,
    /// At or above warn, below alert.
    Warn,
    /// At or above alert.
    Alert,
}

impl DriftThresholds {
    /// The flag for a PSI value.
    pub fn flag(&self, psi: f64) -> Flag {
        if psi >= self.alert {
            Flag::Alert
        } else if psi >= self.warn {
            Flag::Warn
        } else {
            Flag::Ok
        }
    }
}

/// A window's raw counts. Reports of the same window from several replicas add up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowCounts {
    /// Records scored.
    pub records: i64,
    /// Records that could not be scored (dead-lettered).
    pub invalid: i64,
    /// Per feature (model order), records per baseline bin.
    pub features: Vec<Vec<i64>>,
    /// A classifier's predictions per class (model class order); a regressor's per baseline
    /// bin of predicted values.
    pub predictions: Vec<i64>,
    /// A classifier's predictions per confidence bin (empty for a regressor).
    pub confidence: Vec<i64>,
    /// Sum of the confidences, for the mean.
    pub confidence_sum: f64,
    /// Sum of a regressor's predicted values, for the mean.
    #[serde(default)]
    pub value_sum: f64,
    /// Records that carried a ground-truth label.
    pub labeled: i64,
    /// Labeled records predicted correctly.
    pub correct: i64,
    /// Labeled records per true class.
    pub class_support: Vec<i64>,
    /// Correct predictions per true class.
    pub class_hits: Vec<i64>,
}

impl WindowCounts {
    /// Zero counts shaped like `model`'s baselines.
    pub fn empty(model: &ModelMetadata) -> Self {
        let b = &model.baselines;
        let k = model.classes.len();
        let bins = |h: Option<&Histogram>| vec![0; h.map_or(0, |h| h.proportions.len())];
        WindowCounts {
            records: 0,
            invalid: 0,
            features: b
                .features
                .iter()
                .map(|f| vec![0; f.histogram.proportions.len()])
                .collect(),
            predictions: match &b.prediction_values {
                Some(values) => bins(Some(values)),
                None => vec![0; k],
            },
            confidence: bins(b.confidence.as_ref()),
            confidence_sum: 0.0,
            value_sum: 0.0,
            labeled: 0,
            correct: 0,
            class_support: vec![0; k],
            class_hits: vec![0; k],
        }
    }
}

/// A histogram's edges, or none without one.
fn edges(histogram: Option<&Histogram>) -> Vec<f64> {
    histogram.map_or_else(Vec::new, |h| h.edges.clone())
}

/// Accumulates one window's records.
#[derive(Debug, Clone)]
pub struct DriftWindow {
    edges: Vec<Vec<f64>>,
    confidence_edges: Vec<f64>,
    /// A regressor's value bins (empty for a classifier).
    value_edges: Vec<f64>,
    classes: Vec<i32>,
    counts: WindowCounts,
    /// Zero counts of the right shape, to start each window from.
    empty: WindowCounts,
}

impl DriftWindow {
    /// An empty window for `model`.
    pub fn new(model: &ModelMetadata) -> Self {
        DriftWindow {
            edges: model
                .baselines
                .features
                .iter()
                .map(|f| f.histogram.edges.clone())
                .collect(),
            confidence_edges: edges(model.baselines.confidence.as_ref()),
            value_edges: edges(model.baselines.prediction_values.as_ref()),
            classes: model.classes.clone(),
            counts: WindowCounts::empty(model),
            empty: WindowCounts::empty(model),
        }
    }

    /// Counts one scored record: its features (model order), what the model predicted, and
    /// its ground truth (a class label), if any.
    pub fn observe(&mut self, row: &[f64], predicted: Predicted, actual: Option<i32>) {
        let c = &mut self.counts;
        c.records += 1;
        for ((edges, bins), &value) in self.edges.iter().zip(&mut c.features).zip(row) {
            bins[Histogram::bin(edges, value)] += 1;
        }
        let class_index = match predicted {
            Predicted::Class { index, confidence } => {
                c.predictions[index] += 1;
                c.confidence[Histogram::bin(&self.confidence_edges, confidence)] += 1;
                c.confidence_sum += confidence;
                index
            }
            Predicted::Value(value) => {
                c.predictions[Histogram::bin(&self.value_edges, value)] += 1;
                c.value_sum += value;
                return;
            }
        };
        if let Some(truth) = actual.and_then(|l| self.classes.iter().position(|&k| k == l)) {
            c.labeled += 1;
            c.class_support[truth] += 1;
            if truth == class_index {
                c.correct += 1;
                c.class_hits[truth] += 1;
            }
        }
    }

    /// Counts one record that could not be scored.
    pub fn observe_invalid(&mut self) {
        self.counts.invalid += 1;
    }

    /// Records seen (scored and invalid).
    pub fn len(&self) -> i64 {
        self.counts.records + self.counts.invalid
    }

    /// True before the first record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw counts.
    pub fn counts(&self) -> &WindowCounts {
        &self.counts
    }

    /// Closes the window: returns its counts and starts over.
    pub fn take(&mut self) -> WindowCounts {
        std::mem::replace(&mut self.counts, self.empty.clone())
    }
}

/// One feature's drift in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    /// Feature name.
    pub name: String,
    /// Its divergence from the training baseline.
    pub divergence: Divergence,
    /// Its flag.
    pub flag: Flag,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// A window's drift statistics against the training baselines, with the raw counts they
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
    /// Drift of the predicted class mix (a regressor's: of the predicted values' bins).
    pub prediction: Divergence,
    /// Flag of the predictions' drift.
    pub prediction_flag: Flag,
    /// Drift of a classifier's confidence histogram.
    pub confidence: Option<Divergence>,
    /// Flag of the confidence histogram.
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
    /// The worst flag of the window.
    pub flag: Flag,
    /// Something that happened to the model with this window, e.g. an automatic rollback.
    #[serde(default)]
    pub notice: Option<String>,
}

impl DriftReport {
    /// Computes the statistics of `counts` against `model`'s baselines.
    pub fn compute(
        model: &ModelMetadata,
        thresholds: &DriftThresholds,
        origin: WindowOrigin,
        counts: WindowCounts,
    ) -> Self {
        let b = &model.baselines;
        let features: Vec<FeatureDrift> = b
            .features
            .iter()
            .zip(&counts.features)
            .map(|(baseline, bins)| {
                let d = divergence(&baseline.histogram.proportions, bins);
                FeatureDrift {
                    name: baseline.name.clone(),
                    divergence: d,
                    flag: thresholds.flag(d.psi),
                }
            })
            .collect();
        let prediction_baseline: Vec<f64> = match &b.prediction_values {
            Some(values) => values.proportions.clone(),
            None => b.prediction_classes.iter().map(|c| c.proportion).collect(),
        };
        let prediction = divergence(&prediction_baseline, &counts.predictions);
        let confidence = (b.confidence.as_ref())
            .map(|baseline| divergence(&baseline.proportions, &counts.confidence));
        let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
        let prediction_flag = thresholds.flag(prediction.psi);
        let confidence_flag = confidence.map(|c| thresholds.flag(c.psi));
        let flag = features
            .iter()
            .map(|f| f.flag)
            .chain([prediction_flag])
            .chain(confidence_flag)
            .max()
            .unwrap_or(Flag::Ok);
        let regressor = b.prediction_values.is_some();
        DriftReport {
            model_name: model.name.clone(),
            model_version: model.version.clone(),
            origin,
            features,
            prediction,
            prediction_flag,
            confidence,
            confidence_flag,
            mean_confidence: (counts.records > 0 && !regressor)
                .then(|| counts.confidence_sum / counts.records as f64),
            mean_value: (counts.records > 0 && regressor)
                .then(|| counts.value_sum / counts.records as f64),
            invalid_share: ratio(counts.invalid, counts.records + counts.invalid).unwrap_or(0.0),
            accuracy: ratio(counts.correct, counts.labeled),
            recall: model
                .classes
                .iter()
                .zip(counts.class_support.iter().zip(&counts.class_hits))
                .enumerate()
                .map(|(i, (&label, (&support, &hits)))| ClassRecall {
                    label,
                    name: model.class_names.as_ref().map(|names| names[i].clone()),
                    support,
                    recall: ratio(hits, support),
                })
                .collect(),
            flag,
            counts,
            notice: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::model::Model;
    use crate::model::dataset::Dataset;

    /// Records per window in these tests (and the documented recommended minimum).
    const WINDOW: usize = 1000;

    fn model() -> Model {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/breast-cancer/1");
        Model::load(&dir).unwrap()
    }

    fn origin() -> WindowOrigin {
        WindowOrigin {
            instance_id: "test".into(),
            partitions: vec![0],
            window_start: 0,
            window_end: 1,
        }
    }

    /// Scores `rows` and counts them into a window; returns the report.
    fn window_report(model: &Model, rows: &[(Vec<f64>, i32)]) -> DriftReport {
        let mut window = DriftWindow::new(&model.metadata);
        let mut scored = crate::model::Scored::default();
        for (row, label) in rows {
            model.engine.score(row, &mut scored);
            window.observe(row, scored.predicted(0), Some(*label));
        }
        DriftReport::compute(
            &model.metadata,
            &DriftThresholds::default(),
            origin(),
            window.take(),
        )
    }

    fn sample(
        data: &Dataset,
        rng: &mut impl Rng,
        n: usize,
        shift: &[usize],
    ) -> Vec<(Vec<f64>, i32)> {
        (0..n)
            .map(|_| {
                let i = rng.random_range(0..data.len());
                let mut row = data.rows[i].clone();
                for &f in shift {
                    row[f] *= 1.2;
                }
                (row, data.labels[i])
            })
            .collect()
    }

    #[test]
    fn unshifted_windows_rarely_alert() {
        let model = model();
        let data = Dataset::breast_cancer();
        let mut rng = rand::rngs::StdRng::seed_from_u64(99);
        let windows = 120;
        let flags: Vec<Flag> = (0..windows)
            .map(|_| window_report(&model, &sample(&data, &mut rng, WINDOW, &[])).flag)
            .collect();
        let alerts = flags.iter().filter(|&&f| f == Flag::Alert).count();
        let warns = flags.iter().filter(|&&f| f == Flag::Warn).count();
        eprintln!("{windows} unshifted windows: {alerts} alert, {warns} warn");
        assert!(
            alerts * 100 <= windows,
            "{alerts} of {windows} unshifted windows alerted"
        );
    }

    #[test]
    fn shifted_features_are_flagged_in_the_first_shifted_window_and_others_are_not() {
        let model = model();
        let data = Dataset::breast_cancer();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let shifted = [0usize, 3, 7, 20, 27]; // mean radius, mean area, mean concave points, worst radius, worst concave points
        let before = window_report(&model, &sample(&data, &mut rng, WINDOW, &[]));
        assert!(
            before.features.iter().all(|f| f.flag == Flag::Ok),
            "{:?}",
            before.features
        );
        let first_shifted = window_report(&model, &sample(&data, &mut rng, WINDOW, &shifted));
        for (i, f) in first_shifted.features.iter().enumerate() {
            if shifted.contains(&i) {
                assert_ne!(
                    f.flag,
                    Flag::Ok,
                    "shifted {} not flagged: {:?}",
                    f.name,
                    f.divergence
                );
            } else {
                assert_eq!(
                    f.flag,
                    Flag::Ok,
                    "unshifted {} flagged: {:?}",
                    f.name,
                    f.divergence
                );
            }
        }
    }

    #[test]
    fn reports_round_trip_through_the_published_schema() {
        let model = model();
        let data = Dataset::breast_cancer();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let report = window_report(&model, &sample(&data, &mut rng, 300, &[4]));
        let codec = crate::codec::encode::AvroCodec::drift_reports();
        let mut bytes = Vec::new();
        codec.encode(&report, &mut bytes).unwrap();
        let back: DriftReport = codec.decode(&bytes).unwrap();
        assert_eq!(back, report);
    }
}

//! What a model's drift windows are tested against: the profile of its reference rows
//! (every feature's percentile bins, normal scores, moments and missing values, and the
//! joint moments of the scores) and of its outputs on reference rows (class mix and
//! confidence, or predicted values). Built from *all* reference rows, in two passes, and
//! stored beside the model as `drift_reference.json`, checked like the model file.
//!
//! Artifacts written before drift references existed get one when they load (see
//! [`DriftReference::legacy`]): from the reference rows they kept for explanations, or
//! failing those, from their decile baselines and the row count in their metadata.

use serde::{Deserialize, Serialize};

use super::artifact::{ModelMetadata, Task};
use super::baseline::{Baselines, CONFIDENCE_EDGES};
use super::calibrate::Calibration;
use super::engine::Predicted;
use crate::stats::profile::{Accumulator, Joint, Marginal, Sketch};

/// Name of the drift reference inside an artifact directory.
pub const DRIFT_REFERENCE_FILE: &str = "drift_reference.json";

/// Joint moments (pairs and the whole-vector test) are kept for at most this many features:
/// the pairs grow with the square of the features, and so does the cost per record.
pub const MAX_JOINT_FEATURES: usize = 64;

/// Seed of the sample that places the bin edges, so that an artifact is reproducible.
const SEED: u64 = 0x0064_7269_6674;

/// The drift reference file's entry in the metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftReferenceFile {
    /// File name inside the artifact directory.
    pub file: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
}

/// Everything the drift tests compare a window with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReference {
    /// Where the feature rows came from.
    pub source: String,
    /// Reference rows.
    pub rows: u64,
    /// Per feature, in model order.
    pub features: Vec<Marginal>,
    /// The scores' joint moments over complete rows (absent for a single feature, more than
    /// [`MAX_JOINT_FEATURES`], or a reference of bins only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joint: Option<Joint>,
    /// The model's outputs on reference rows.
    pub outputs: OutputReference,
}

/// The model's outputs on reference rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputReference {
    /// Which rows: e.g. the held-out rows of a trained model.
    pub source: String,
    /// How many.
    pub rows: u64,
    /// A classifier's predictions per class (model class order); empty for a regressor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<u64>,
    /// A classifier's confidence, or a regressor's value.
    pub distribution: Marginal,
    /// A classifier's calibration, fitted on labelled rows (absent for a regressor, and in
    /// artifacts made before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
}

/// Pass 1 over the feature rows (see `crate::stats::profile`).
#[derive(Debug)]
pub struct FeaturePass(Sketch);

impl FeaturePass {
    /// Rows of `p` features.
    pub fn new(p: usize) -> Self {
        FeaturePass(Sketch::new(p, SEED))
    }

    /// One row (NaN for a missing value).
    pub fn add(&mut self, row: &[f64]) {
        self.0.add(row);
    }

    /// Pass 2.
    pub fn second(self) -> FeatureCounts {
        let bins = self.0.bins();
        let joint = (2..=MAX_JOINT_FEATURES).contains(&bins.len());
        FeatureCounts(Accumulator::new(bins, joint), self.0.rows())
    }
}

/// Pass 2 over the feature rows.
#[derive(Debug)]
pub struct FeatureCounts(Accumulator, u64);

/// Pass 1 over a model's outputs.
#[derive(Debug)]
pub struct OutputPass {
    sketch: Sketch,
    classes: usize,
}

impl OutputPass {
    /// Outputs of a model with `classes` classes (0 for a regressor).
    pub fn new(classes: usize) -> Self {
        OutputPass {
            sketch: Sketch::new(1, SEED),
            classes,
        }
    }

    /// One prediction.
    pub fn add(&mut self, predicted: Predicted) {
        self.sketch.add(&[output_value(predicted)]);
    }

    /// Pass 2.
    pub fn second(self) -> OutputCounts {
        OutputCounts {
            values: Accumulator::new(self.sketch.bins(), false),
            classes: vec![0; self.classes],
            rows: 0,
        }
    }
}

/// Pass 2 over a model's outputs.
#[derive(Debug)]
pub struct OutputCounts {
    values: Accumulator,
    classes: Vec<u64>,
    rows: u64,
}

impl OutputCounts {
    /// One prediction (the same as in pass 1, in the same order).
    pub fn add(&mut self, predicted: Predicted) {
        self.rows += 1;
        if let Predicted::Class { index, .. } = predicted {
            self.classes[index] += 1;
        }
        self.values.add(&[output_value(predicted)]);
    }

    /// The outputs' reference, described by `source`.
    pub fn finish(self, source: String) -> OutputReference {
        OutputReference {
            source,
            rows: self.rows,
            classes: self.classes,
            distribution: self.values.finish().0.remove(0),
            calibration: None,
        }
    }
}

/// The value of a prediction whose distribution is tested: a classifier's confidence, a
/// regressor's value.
pub fn output_value(predicted: Predicted) -> f64 {
    match predicted {
        Predicted::Class { confidence, .. } => confidence,
        Predicted::Value(v) => v,
    }
}

impl FeatureCounts {
    /// One row, as in pass 1.
    pub fn add(&mut self, row: &[f64]) {
        self.0.add(row);
    }

    /// The reference, with the outputs' and a description of the feature rows.
    pub fn finish(self, source: String, outputs: OutputReference) -> DriftReference {
        let (features, joint) = self.0.finish();
        DriftReference {
            source,
            rows: self.1,
            features,
            joint,
            outputs,
        }
    }
}

impl DriftReference {
    /// The reference of rows held in memory (both passes over `rows`), with the model's
    /// `predictions` on `output_rows` (described by `output_source`).
    pub fn from_rows(
        source: String,
        rows: &[Vec<f64>],
        outputs: (String, &[Predicted]),
        classes: usize,
    ) -> Self {
        let p = rows.first().map_or(0, Vec::len);
        let mut features = FeaturePass::new(p);
        rows.iter().for_each(|r| features.add(r));
        let mut features = features.second();
        rows.iter().for_each(|r| features.add(r));
        let (output_source, predictions) = outputs;
        let mut first = OutputPass::new(classes);
        predictions.iter().for_each(|&p| first.add(p));
        let mut second = first.second();
        predictions.iter().for_each(|&p| second.add(p));
        features.finish(source, second.finish(output_source))
    }

    /// A reference for an artifact written before drift references: from the `rows` it
    /// kept (`None`: it kept none), and for a trained model the outputs from its held-out
    /// baselines; for an imported one from `predictions` on the kept rows.
    pub fn legacy(
        metadata: &ModelMetadata,
        rows: Option<&[f64]>,
        predictions: Option<&[Predicted]>,
    ) -> Self {
        let p = metadata.features.len();
        let classes = metadata.classes.len();
        let (outputs_rows, outputs_source) = legacy_output_rows(metadata);
        let outputs = match predictions {
            Some(predicted) if metadata.imported.is_some() => {
                let mut first = OutputPass::new(classes);
                predicted.iter().for_each(|&x| first.add(x));
                let mut second = first.second();
                predicted.iter().for_each(|&x| second.add(x));
                second.finish(format!("{} kept reference rows", predicted.len()))
            }
            _ => outputs_from_baselines(&metadata.baselines, outputs_rows, outputs_source),
        };
        match rows.filter(|r| p > 0 && !r.is_empty()) {
            Some(values) => {
                let rows: Vec<Vec<f64>> = values.chunks(p).map(<[f64]>::to_vec).collect();
                let mut reference =
                    Self::from_rows(String::new(), &rows, (String::new(), &[]), classes);
                reference.source = format!(
                    "{} kept reference rows (an artifact written before drift references)",
                    rows.len()
                );
                reference.outputs = outputs;
                reference
            }
            None => Self::from_baselines(metadata, outputs),
        }
    }

    /// A reference of decile bins only, for an artifact that kept no rows.
    fn from_baselines(metadata: &ModelMetadata, outputs: OutputReference) -> Self {
        let rows = legacy_feature_rows(metadata);
        DriftReference {
            source: format!(
                "decile baselines of {rows} rows (an artifact written before drift references, without reference rows)"
            ),
            rows,
            features: (metadata.baselines.features.iter())
                .map(|f| {
                    Marginal::from_counts(
                        f.histogram.edges.clone(),
                        counts(&f.histogram.proportions, rows),
                        0,
                    )
                })
                .collect(),
            joint: None,
            outputs,
        }
    }

    /// Whether the reference fits `metadata`'s features and outputs.
    pub fn check(&self, metadata: &ModelMetadata) -> std::result::Result<(), String> {
        let p = metadata.features.len();
        if self.features.len() != p {
            return Err(format!(
                "the drift reference has {} features, the model {p}",
                self.features.len()
            ));
        }
        let shapes_agree = (self.features.iter())
            .chain([&self.outputs.distribution])
            .all(|m| m.counts.len() == m.edges.len() + 1 && m.scores.len() == m.counts.len());
        let joint_fits = self.joint.as_ref().is_none_or(|j| {
            j.means.len() == p
                && j.covariance.len() == p * (p + 1) / 2
                && j.fisher_variance.len() == p * p.saturating_sub(1) / 2
        });
        let classes_fit = match metadata.task {
            Task::Classification => self.outputs.classes.len() == metadata.classes.len(),
            Task::Regression => self.outputs.classes.is_empty(),
        };
        match shapes_agree && joint_fits && classes_fit {
            true => Ok(()),
            false => Err(
                "the drift reference's bins, joint moments or classes do not fit the model".into(),
            ),
        }
    }
}

/// Rows behind a legacy artifact's feature baselines.
fn legacy_feature_rows(metadata: &ModelMetadata) -> u64 {
    match (&metadata.training, &metadata.imported) {
        (Some(t), _) => t.train_rows as u64,
        (None, Some(i)) => i.reference_rows as u64,
        (None, None) => 0,
    }
}

/// Rows behind a legacy artifact's output baselines, and what they were.
fn legacy_output_rows(metadata: &ModelMetadata) -> (u64, String) {
    match (&metadata.training, &metadata.imported) {
        (Some(t), _) => (t.test_rows as u64, format!("{} held-out rows", t.test_rows)),
        (None, Some(i)) => (
            i.reference_rows as u64,
            format!("{} reference rows", i.reference_rows),
        ),
        (None, None) => (0, "no rows".into()),
    }
}

/// Counts of `rows` values in bins of these proportions.
fn counts(proportions: &[f64], rows: u64) -> Vec<u64> {
    proportions
        .iter()
        .map(|p| (p * rows as f64).round() as u64)
        .collect()
}

/// The outputs' reference from decile or confidence baselines of `rows` rows.
fn outputs_from_baselines(b: &Baselines, rows: u64, source: String) -> OutputReference {
    let (classes, distribution) = match (&b.prediction_values, &b.confidence) {
        (Some(values), _) => (Vec::new(), (values.edges.clone(), &values.proportions)),
        (None, Some(confidence)) => (
            (b.prediction_classes.iter())
                .map(|c| (c.proportion * rows as f64).round() as u64)
                .collect(),
            (CONFIDENCE_EDGES.to_vec(), &confidence.proportions),
        ),
        (None, None) => (Vec::new(), (Vec::new(), &Vec::new())),
    };
    let (edges, proportions) = distribution;
    let bin_counts = match proportions.is_empty() {
        true => vec![0],
        false => counts(proportions, rows),
    };
    OutputReference {
        source,
        rows,
        classes,
        distribution: Marginal::from_counts(edges, bin_counts, 0),
        calibration: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;

    #[test]
    fn the_bundled_model_gets_its_reference_from_its_kept_rows_and_holdout_baselines() {
        let model = Model::open(None).unwrap();
        let reference = model.drift_reference();
        assert_eq!(reference.rows, 455);
        assert!(
            reference.source.contains("455 kept reference rows"),
            "{}",
            reference.source
        );
        let joint = reference.joint.as_ref().unwrap();
        assert_eq!((joint.rows, joint.means.len()), (455, 30));
        assert_eq!(reference.outputs.rows, 114);
        assert_eq!(reference.outputs.classes.iter().sum::<u64>(), 114);
        assert_eq!(reference.outputs.distribution.present(), 114);
        assert!(reference.check(&model.metadata).is_ok());
    }

    #[test]
    fn a_reference_survives_json() {
        let model = Model::open(None).unwrap();
        let json = serde_json::to_string(model.drift_reference()).unwrap();
        let back: DriftReference = serde_json::from_str(&json).unwrap();
        // Compared without the Debug dump of a failure: it is large.
        assert!(
            &back == model.drift_reference(),
            "the reference changed through JSON"
        );
        println!("{} bytes for 30 features", json.len());
    }
}

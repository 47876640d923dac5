//! `metadata.json`: everything known about a model, and the layout versions this build reads.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ReferenceRows;
use super::model_error;
use crate::error::Result;
use crate::model::baseline::Baselines;
use crate::model::drift_reference::DriftReferenceFile;
use crate::model::ensemble::Labels;

/// Name of the serialized forest inside an artifact directory.
pub const MODEL_FILE: &str = "model.postcard";
/// Name of the metadata file inside an artifact directory.
pub const METADATA_FILE: &str = "metadata.json";
/// Name of an imported ONNX model inside an artifact directory.
pub const ONNX_FILE: &str = "model.onnx";
/// Version of the artifact layout of a trained model.
pub const FORMAT_VERSION: u32 = 1;
/// Version of the layout of an imported model: version 1 plus `imported`, and `training`
/// absent.
pub const IMPORTED_FORMAT_VERSION: u32 = 2;

/// Everything known about a trained model, stored as `metadata.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMetadata {
    /// Artifact layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Model name, e.g. `breast-cancer`.
    pub name: String,
    /// Model version, e.g. `1`.
    pub version: String,
    /// Algorithm and library that produced the model file.
    pub algorithm: String,
    /// Feature names in the order the model expects them.
    pub features: Vec<String>,
    /// Class labels in the model's order. For a model whose classes are names, their
    /// indices (0, 1, …), with the names in `class_names`; empty for a regressor.
    pub classes: Vec<i32>,
    /// The classes' names, for a model whose classes are strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_names: Option<Vec<String>>,
    /// What the model predicts.
    #[serde(default, skip_serializing_if = "Task::is_classification")]
    pub task: Task,
    /// How the model was trained (absent for an imported model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<TrainingParameters>,
    /// Where an imported model came from (absent for a trained one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<Imported>,
    /// A classifier's accuracy on the held-out rows (for an imported model: on the reference
    /// rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout_accuracy: Option<f64>,
    /// A regressor's coefficient of determination (R²) on the reference rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout_r2: Option<f64>,
    /// When the artifact was written (RFC 3339, UTC).
    pub created_at: String,
    /// File name of the serialized forest.
    pub model_file: String,
    /// Hex SHA-256 of the model file; checked at load.
    pub model_sha256: String,
    /// Distributions for drift detection.
    pub baselines: Baselines,
    /// Rows the model was trained or imported with, kept for explanations (absent in
    /// artifacts written before explanations existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceRows>,
    /// What drift windows are tested against, measured on every reference row (absent in
    /// artifacts written before drift references: they get one from their kept rows or
    /// baselines when they load).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_reference: Option<DriftReferenceFile>,
}

/// What a model predicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// A class per record (every trained model, and imported classifiers).
    #[default]
    Classification,
    /// A value per record (imported single-target regressors).
    Regression,
}

impl Task {
    /// Whether it is [`Task::Classification`] (the default, left out of `metadata.json`).
    pub fn is_classification(&self) -> bool {
        *self == Task::Classification
    }
}

impl ModelMetadata {
    /// The classes as the model file names them: `class_names`, or else `classes`.
    pub fn labels(&self) -> Labels {
        match &self.class_names {
            Some(names) => Labels::Text(names.clone()),
            None => Labels::Int(self.classes.iter().map(|&c| i64::from(c)).collect()),
        }
    }

    /// Whether the baselines drift is measured against are all there: one per feature, in
    /// feature order, and the predictions' (class mix and confidence, or values).
    pub fn check_baselines(&self) -> std::result::Result<(), String> {
        let b = &self.baselines;
        let names: Vec<&str> = b.features.iter().map(|f| f.name.as_str()).collect();
        if names != self.features {
            return Err(format!(
                "baselines cover features {names:?}, not the model's {:?}",
                self.features
            ));
        }
        let complete = match self.task {
            Task::Classification => {
                b.prediction_classes.len() == self.classes.len() && b.confidence.is_some()
            }
            Task::Regression => b.prediction_values.is_some(),
        };
        match complete {
            true => Ok(()),
            false => Err(format!(
                "baselines of the {:?} predictions are missing",
                self.task
            )),
        }
    }

    /// What the model predicts and how well it did on the held-out (or reference) rows, for
    /// messages: `classes [0, 1], accuracy 0.9561` or `a value, R² 0.4312`.
    pub fn outputs_and_fit(&self) -> String {
        let figure = |name: &str, value: Option<f64>| match value {
            Some(v) => format!("{name} {v:.4}"),
            None => format!("no {name}"),
        };
        match (self.task, &self.class_names) {
            (Task::Regression, _) => format!("a value, {}", figure("R²", self.holdout_r2)),
            (Task::Classification, Some(names)) => format!(
                "classes {}, {}",
                names.join(", "),
                figure("accuracy", self.holdout_accuracy)
            ),
            (Task::Classification, None) => format!(
                "classes {:?}, {}",
                self.classes,
                figure("accuracy", self.holdout_accuracy)
            ),
        }
    }
}

/// Where an imported model came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Imported {
    /// The file imported, as given.
    pub source: String,
    /// The ONNX operator, e.g. `TreeEnsembleClassifier`.
    pub operator: String,
    /// The exporter that wrote it, e.g. `skl2onnx 1.20.0`.
    pub producer: String,
    /// The reference data the baselines come from.
    pub reference: String,
    /// Rows of reference data.
    pub reference_rows: usize,
}

/// How the forest is grown (`driftwood train`'s flags), recorded in the artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hyperparameters {
    /// Number of trees.
    pub n_trees: u16,
    /// Maximum tree depth.
    pub max_depth: u16,
    /// Minimum rows in a leaf.
    pub min_samples_leaf: usize,
    /// Minimum rows to split a node.
    pub min_samples_split: usize,
    /// Seed for the holdout split and the forest.
    pub seed: u64,
    /// Share of rows held out for the accuracy figure and baselines, in (0, 1).
    pub test_fraction: f64,
}

/// Training inputs, recorded so a model can be reproduced. (Not `deny_unknown_fields`:
/// serde cannot combine it with `flatten`; the metadata around it still denies them.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingParameters {
    /// `dataset:breast-cancer` or `csv:<path>`.
    pub source: String,
    /// Label column (CSV) or `target` for the bundled dataset.
    pub target: String,
    /// How the forest was grown.
    #[serde(flatten)]
    pub hyperparameters: Hyperparameters,
    /// Rows used for training.
    pub train_rows: usize,
    /// Rows held out.
    pub test_rows: usize,
}

/// Parses and checks `metadata.json` (`path` names it in errors): its layout version must
/// be the one this build reads for its kind of model.
pub(super) fn parse_metadata(text: &str, path: &Path) -> Result<ModelMetadata> {
    let metadata: ModelMetadata =
        serde_json::from_str(text).map_err(|e| model_error(path, e.to_string()))?;
    let expected = match metadata.imported {
        Some(_) => IMPORTED_FORMAT_VERSION,
        None => FORMAT_VERSION,
    };
    if metadata.format_version != expected {
        return Err(model_error(
            path,
            format!(
                "format_version {} is not supported for a{} model (this build reads {expected})",
                metadata.format_version,
                if metadata.imported.is_some() {
                    "n imported"
                } else {
                    " trained"
                }
            ),
        ));
    }
    Ok(metadata)
}

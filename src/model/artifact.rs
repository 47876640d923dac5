//! The on-disk model artifact: `models/<name>/<version>/` holding `metadata.json` and the
//! model file: `model.postcard` (smartcore's forest, serialized with postcard) for a model
//! driftwood trained, `model.onnx` for one imported from ONNX (format version 2).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod reference;

pub use reference::{MAX_REFERENCE_ROWS, REFERENCE_FILE, ReferenceRows};
use reference::{Reference, parse_reference, reference_csv};

use super::baseline::Baselines;
use super::drift_reference::{DRIFT_REFERENCE_FILE, DriftReference, DriftReferenceFile};
use super::engine::{Engine, Predicted};
use super::ensemble::{Explainer, Explanation, Labels};
use super::forest::SmartcoreForest;
use crate::error::{Error, Result};

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

/// How the forest is grown: `driftwood train`'s flags, recorded in the artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct Hyperparameters {
    /// Number of trees.
    #[arg(long = "trees", default_value_t = 100)]
    pub n_trees: u16,
    /// Maximum tree depth.
    #[arg(long, default_value_t = 10)]
    pub max_depth: u16,
    /// Minimum rows in a leaf.
    #[arg(long, default_value_t = 1)]
    pub min_samples_leaf: usize,
    /// Minimum rows to split a node.
    #[arg(long, default_value_t = 2)]
    pub min_samples_split: usize,
    /// Seed for the holdout split and the forest.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Share of rows held out for the accuracy figure and baselines, in (0, 1).
    #[arg(long, default_value_t = 0.2)]
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

/// How the bundled model is named in messages.
pub const BUNDLED: &str = "the bundled breast-cancer model";
/// The model that comes with driftwood (`models/breast-cancer/1`), built into the binary so
/// that an installed `driftwood` needs no files.
const BUNDLED_METADATA: &str = include_str!("../../models/breast-cancer/1/metadata.json");
const BUNDLED_FOREST: &[u8] = include_bytes!("../../models/breast-cancer/1/model.postcard");
const BUNDLED_REFERENCE: &str = include_str!("../../models/breast-cancer/1/reference.csv");

/// A loaded, verified model ready to score.
#[derive(Debug, Clone)]
pub struct Model {
    /// Its metadata.
    pub metadata: ModelMetadata,
    /// What scores it.
    pub engine: Engine,
    /// What explains its scores, measured on the reference rows when first asked for.
    explainer: Arc<OnceLock<std::result::Result<Explainer, String>>>,
    reference: Reference,
    drift: Arc<DriftReference>,
}

impl Model {
    /// Loads and verifies the artifact in `dir`, or the bundled model when `dir` is `None`:
    /// the checksum must match, and the model must agree with the metadata about features
    /// and classes.
    pub fn open(dir: Option<&Path>) -> Result<Self> {
        match dir {
            Some(dir) => Self::load(dir),
            None => {
                let (metadata, reference) = bundled_reference()?;
                let origin = Path::new(BUNDLED);
                let engine = forest_engine(&reference, metadata.features.len(), origin)?;
                let rows = match &metadata.reference {
                    Some(stored) => Some(parse_reference(
                        BUNDLED_REFERENCE.as_bytes(),
                        stored,
                        &metadata.features,
                        origin,
                    )?),
                    None => None,
                };
                Self::verified(metadata, engine, rows, None, origin)
            }
        }
    }

    /// Loads and verifies the artifact in `dir` (see [`Model::open`]).
    pub fn load(dir: &Path) -> Result<Self> {
        let (metadata, bytes, path) = read_artifact(dir)?;
        let engine = if metadata.imported.is_some() {
            let model = super::onnx::decode(&bytes, &path)?;
            Engine::new(model.ensemble)
        } else {
            let reference: SmartcoreForest =
                postcard::from_bytes(&bytes).map_err(|e| model_error(&path, e.to_string()))?;
            forest_engine(&reference, metadata.features.len(), dir)?
        };
        let rows = match &metadata.reference {
            Some(stored) => {
                let path = dir.join(&stored.file);
                let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
                Some(parse_reference(&bytes, stored, &metadata.features, &path)?)
            }
            None => None,
        };
        let drift = match &metadata.drift_reference {
            Some(stored) => Some(read_drift_reference(dir, stored)?),
            None => None,
        };
        Self::verified(metadata, engine, rows, drift, dir)
    }

    /// The reference rows kept for explanations, row-major (none when the artifact has none).
    pub fn reference_rows(&self) -> Option<&[f64]> {
        self.reference.0.as_deref()
    }

    /// What drift windows are tested against: the stored drift reference, or for an
    /// artifact written before them, one made from its kept rows or baselines.
    pub fn drift_reference(&self) -> &DriftReference {
        &self.drift
    }

    /// What explains this model's scores (see [`super::ensemble::Ensemble::explainer`]), measured on the
    /// reference rows the first time it is asked for. Fails when the artifact has none.
    pub fn explainer(&self) -> std::result::Result<&Explainer, String> {
        let measured = self.explainer.get_or_init(|| {
            let Some(rows) = &self.reference.0 else {
                return Err(format!(
                    "{} version {} has no reference rows to explain with; train or import it again",
                    self.metadata.name, self.metadata.version
                ));
            };
            (self.engine.ensemble().explainer(rows)).map_err(|e| e.to_string())
        });
        measured.as_ref().map_err(Clone::clone)
    }

    /// Explains `predicted` for `row` (see [`super::ensemble::Ensemble::explain`]).
    pub fn explain(
        &self,
        row: &[f64],
        predicted: Predicted,
    ) -> std::result::Result<Explanation, String> {
        let explainer = self.explainer()?;
        let ensemble = self.engine.ensemble();
        let output = ensemble.explained_output(predicted.class());
        Ok(ensemble.explain(explainer, row, output))
    }

    fn verified(
        metadata: ModelMetadata,
        engine: Engine,
        reference: Option<Arc<[f64]>>,
        drift: Option<DriftReference>,
        origin: &Path,
    ) -> Result<Self> {
        if engine.n_features() != metadata.features.len() {
            return Err(model_error(
                origin,
                format!(
                    "metadata lists {} features but the model reads {}",
                    metadata.features.len(),
                    engine.n_features()
                ),
            ));
        }
        let named_indices = metadata.class_names.is_none()
            || metadata
                .classes
                .iter()
                .copied()
                .eq(0..metadata.classes.len() as i32);
        if engine.labels() != metadata.labels() || !named_indices {
            return Err(model_error(
                origin,
                format!(
                    "metadata lists classes {:?} (names {:?}) but the model has {:?}",
                    metadata.classes,
                    metadata.class_names,
                    engine.labels()
                ),
            ));
        }
        metadata
            .check_baselines()
            .map_err(|message| model_error(origin, message))?;
        let regressor = engine.n_classes() == 0;
        if regressor != (metadata.task == Task::Regression) {
            return Err(model_error(
                origin,
                format!(
                    "metadata says the task is {:?} but the model is a {}",
                    metadata.task,
                    if regressor { "regressor" } else { "classifier" }
                ),
            ));
        }
        let columns = engine.ensemble().n_columns();
        if regressor && columns != 1 {
            return Err(model_error(
                origin,
                format!(
                    "a regressor of {columns} targets cannot be served: a prediction carries one value"
                ),
            ));
        }
        let drift = drift_reference(&metadata, &engine, reference.as_deref(), drift, origin)?;
        Ok(Model {
            metadata,
            engine,
            explainer: Arc::default(),
            reference: Reference(reference),
            drift: Arc::new(drift),
        })
    }
}

/// The artifact's drift reference, checked against its metadata: the stored one, or for an
/// artifact written before them, one made from its kept `rows` (scored by `engine`) or its
/// baselines.
fn drift_reference(
    metadata: &ModelMetadata,
    engine: &Engine,
    rows: Option<&[f64]>,
    stored: Option<DriftReference>,
    origin: &Path,
) -> Result<DriftReference> {
    let drift = stored.unwrap_or_else(|| {
        let predictions = rows.map(|rows| engine.predict_all(rows));
        DriftReference::legacy(metadata, rows, predictions.as_deref())
    });
    drift
        .check(metadata)
        .map_err(|message| model_error(origin, message))?;
    Ok(drift)
}

/// Reads the drift reference `stored` names in `dir`, checking its checksum.
fn read_drift_reference(dir: &Path, stored: &DriftReferenceFile) -> Result<DriftReference> {
    let path = dir.join(&stored.file);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let actual = sha256_hex(&bytes);
    if actual != stored.sha256 {
        return Err(model_error(
            &path,
            format!(
                "drift reference's checksum mismatch: metadata says {}, file is {actual}",
                stored.sha256
            ),
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| model_error(&path, e.to_string()))
}

fn forest_engine(reference: &SmartcoreForest, n_features: usize, origin: &Path) -> Result<Engine> {
    super::forest::ensemble(reference, n_features)
        .map(Engine::new)
        .map_err(|e| model_error(origin, e.to_string()))
}

fn model_error(path: &Path, message: String) -> Error {
    Error::Model {
        path: path.to_path_buf(),
        message,
    }
}

/// The metadata and the verified bytes of the model file in `dir`, with the file's path.
fn read_artifact(dir: &Path) -> Result<(ModelMetadata, Vec<u8>, std::path::PathBuf)> {
    let metadata_path = dir.join(METADATA_FILE);
    let text = std::fs::read_to_string(&metadata_path).map_err(|e| Error::Model {
        path: dir.to_path_buf(),
        message: format!("cannot read {METADATA_FILE}: {e}"),
    })?;
    let metadata = parse_metadata(&text, &metadata_path)?;
    let model_path = dir.join(&metadata.model_file);
    let bytes = std::fs::read(&model_path).map_err(|e| Error::io(&model_path, e))?;
    verify_checksum(&metadata, &bytes, &model_path)?;
    Ok((metadata, bytes, model_path))
}

/// Loads the artifact's metadata and smartcore's own forest (the reference implementation,
/// used in tests and benchmarks), verifying the checksum.
pub fn load_reference(dir: &Path) -> Result<(ModelMetadata, SmartcoreForest)> {
    let (metadata, bytes, path) = read_artifact(dir)?;
    let forest = postcard::from_bytes(&bytes).map_err(|e| model_error(&path, e.to_string()))?;
    Ok((metadata, forest))
}

/// The bundled model's metadata and smartcore forest, verified like an artifact on disk.
pub fn bundled_reference() -> Result<(ModelMetadata, SmartcoreForest)> {
    let origin = Path::new(BUNDLED);
    let metadata = parse_metadata(BUNDLED_METADATA, origin)?;
    verify_checksum(&metadata, BUNDLED_FOREST, origin)?;
    let forest =
        postcard::from_bytes(BUNDLED_FOREST).map_err(|e| model_error(origin, e.to_string()))?;
    Ok((metadata, forest))
}

fn parse_metadata(text: &str, path: &Path) -> Result<ModelMetadata> {
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

/// Checks `bytes` against the metadata's checksum.
fn verify_checksum(metadata: &ModelMetadata, bytes: &[u8], path: &Path) -> Result<()> {
    let actual = sha256_hex(bytes);
    if actual != metadata.model_sha256 {
        return Err(model_error(
            path,
            format!(
                "checksum mismatch: metadata says {}, file is {actual}",
                metadata.model_sha256
            ),
        ));
    }
    Ok(())
}

/// Writes `forest`, the `reference` rows and `metadata` into `dir` (see [`save_file`]).
pub fn save(
    dir: &Path,
    forest: &SmartcoreForest,
    reference: (&[Vec<f64>], &DriftReference),
    metadata: &mut ModelMetadata,
) -> Result<()> {
    let bytes = postcard::to_stdvec(forest).map_err(|e| model_error(dir, e.to_string()))?;
    save_file(dir, MODEL_FILE, &bytes, reference, metadata)
}

/// Writes the model file `bytes` as `file`, the `reference` rows (at most
/// [`MAX_REFERENCE_ROWS`] of them, for explanations), the drift reference and `metadata`
/// into `dir` (created if missing, refused if it holds an artifact already); fills in the
/// files' names and checksums.
pub fn save_file(
    dir: &Path,
    file: &str,
    bytes: &[u8],
    (reference, drift): (&[Vec<f64>], &DriftReference),
    metadata: &mut ModelMetadata,
) -> Result<()> {
    // A version, once written, may be serving somewhere: it never changes.
    if dir.join(METADATA_FILE).exists() {
        return Err(Error::Config(format!(
            "{} exists: a version is never overwritten; write another version",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    metadata.model_file = file.to_string();
    metadata.model_sha256 = sha256_hex(bytes);
    let model_path = dir.join(file);
    std::fs::write(&model_path, bytes).map_err(|e| Error::io(&model_path, e))?;
    let csv = reference_csv(&metadata.features, reference);
    let reference_path = dir.join(REFERENCE_FILE);
    std::fs::write(&reference_path, &csv).map_err(|e| Error::io(&reference_path, e))?;
    metadata.reference = Some(ReferenceRows {
        file: REFERENCE_FILE.into(),
        sha256: sha256_hex(csv.as_bytes()),
        rows: csv.lines().count() - 1,
    });
    let json = serde_json::to_vec(drift).expect("a drift reference serializes");
    let drift_path = dir.join(DRIFT_REFERENCE_FILE);
    std::fs::write(&drift_path, &json).map_err(|e| Error::io(&drift_path, e))?;
    metadata.drift_reference = Some(DriftReferenceFile {
        file: DRIFT_REFERENCE_FILE.into(),
        sha256: sha256_hex(&json),
    });
    let json = serde_json::to_string_pretty(metadata).expect("metadata serializes");
    let metadata_path = dir.join(METADATA_FILE);
    std::fs::write(&metadata_path, json + "\n").map_err(|e| Error::io(&metadata_path, e))
}

/// Hex-encoded SHA-256.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests;

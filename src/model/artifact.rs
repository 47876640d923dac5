//! The on-disk model artifact: `models/<name>/<version>/` holding `metadata.json` and the
//! model file: `model.postcard` (smartcore's forest, serialized with postcard) for a model
//! driftwood trained, `model.onnx` for one imported from ONNX (format version 2).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};

mod metadata;
mod reference;
mod save;

use metadata::parse_metadata;
pub use metadata::{
    FORMAT_VERSION, Hyperparameters, IMPORTED_FORMAT_VERSION, Imported, METADATA_FILE, MODEL_FILE,
    ModelMetadata, ONNX_FILE, Task, TrainingParameters,
};
pub use reference::{MAX_REFERENCE_ROWS, REFERENCE_FILE, ReferenceRows};
use reference::{Reference, parse_reference};
pub use save::{save, save_file};

use super::drift_reference::{DriftReference, DriftReferenceFile};
use super::engine::{Engine, Predicted};
use super::ensemble::{Explainer, Explanation};
use super::forest::SmartcoreForest;
use crate::error::{Error, Result};

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
                let mut model = Self::verified(metadata, engine, rows, None, origin)?;
                // Made before calibrations were kept: fitted on its held-out rows again.
                let calibration = super::train::held_out_calibration(&model);
                Arc::get_mut(&mut model.drift)
                    .expect("the model's own reference")
                    .outputs
                    .calibration = calibration;
                Ok(model)
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

/// Hex-encoded SHA-256.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests;

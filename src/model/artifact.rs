//! The on-disk model artifact: `models/<name>/<version>/` holding `model.postcard`
//! (smartcore's forest, serialized with postcard) and `metadata.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::baseline::Baselines;
use super::forest::{Forest, SmartcoreForest};
use crate::error::{Error, Result};

/// Name of the serialized forest inside an artifact directory.
pub const MODEL_FILE: &str = "model.postcard";
/// Name of the metadata file inside an artifact directory.
pub const METADATA_FILE: &str = "metadata.json";
/// Version of the artifact layout, bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

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
    /// Class labels in the model's order.
    pub classes: Vec<i32>,
    /// How the model was trained.
    pub training: TrainingParameters,
    /// Accuracy on the held-out rows.
    pub holdout_accuracy: f64,
    /// When the artifact was written (RFC 3339, UTC).
    pub created_at: String,
    /// File name of the serialized forest.
    pub model_file: String,
    /// Hex SHA-256 of the model file; checked at load.
    pub model_sha256: String,
    /// Distributions for drift detection.
    pub baselines: Baselines,
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

/// A loaded, verified model ready to score.
#[derive(Debug, Clone)]
pub struct Model {
    /// Its metadata.
    pub metadata: ModelMetadata,
    /// The flattened forest.
    pub forest: Forest,
}

impl Model {
    /// Loads and verifies the artifact in `dir`, or the bundled model when `dir` is `None`:
    /// the checksum must match, and the forest must agree with the metadata about features
    /// and classes.
    pub fn open(dir: Option<&Path>) -> Result<Self> {
        match dir {
            Some(dir) => Self::load(dir),
            None => Self::compile(bundled_reference()?, Path::new(BUNDLED)),
        }
    }

    /// Loads and verifies the artifact in `dir` (see [`Model::open`]).
    pub fn load(dir: &Path) -> Result<Self> {
        Self::compile(load_reference(dir)?, dir)
    }

    fn compile(
        (metadata, reference): (ModelMetadata, SmartcoreForest),
        origin: &Path,
    ) -> Result<Self> {
        let model_error = |message: String| Error::Model {
            path: origin.to_path_buf(),
            message,
        };
        let forest = Forest::compile(&reference, metadata.features.len())
            .map_err(|e| model_error(e.to_string()))?;
        if forest.classes() != metadata.classes {
            return Err(model_error(format!(
                "metadata lists classes {:?} but the forest has {:?}",
                metadata.classes,
                forest.classes()
            )));
        }
        Ok(Model { metadata, forest })
    }
}

/// Loads the artifact's metadata and smartcore's own forest (the reference implementation,
/// used in tests and benchmarks), verifying the checksum.
pub fn load_reference(dir: &Path) -> Result<(ModelMetadata, SmartcoreForest)> {
    let metadata_path = dir.join(METADATA_FILE);
    let text = std::fs::read_to_string(&metadata_path).map_err(|e| Error::Model {
        path: dir.to_path_buf(),
        message: format!("cannot read {METADATA_FILE}: {e}"),
    })?;
    let metadata = parse_metadata(&text, &metadata_path)?;
    let model_path = dir.join(&metadata.model_file);
    let bytes = std::fs::read(&model_path).map_err(|e| Error::io(&model_path, e))?;
    let forest = verified_forest(&metadata, &bytes, &model_path)?;
    Ok((metadata, forest))
}

/// The bundled model's metadata and smartcore forest, verified like an artifact on disk.
pub fn bundled_reference() -> Result<(ModelMetadata, SmartcoreForest)> {
    let origin = Path::new(BUNDLED);
    let metadata = parse_metadata(BUNDLED_METADATA, origin)?;
    let forest = verified_forest(&metadata, BUNDLED_FOREST, origin)?;
    Ok((metadata, forest))
}

fn parse_metadata(text: &str, path: &Path) -> Result<ModelMetadata> {
    let model_error = |message: String| Error::Model {
        path: path.to_path_buf(),
        message,
    };
    let metadata: ModelMetadata =
        serde_json::from_str(text).map_err(|e| model_error(e.to_string()))?;
    if metadata.format_version != FORMAT_VERSION {
        return Err(model_error(format!(
            "format_version {} is not supported (this build reads {FORMAT_VERSION})",
            metadata.format_version
        )));
    }
    Ok(metadata)
}

/// Checks `bytes` against the metadata's checksum and deserializes the forest.
fn verified_forest(metadata: &ModelMetadata, bytes: &[u8], path: &Path) -> Result<SmartcoreForest> {
    let model_error = |message: String| Error::Model {
        path: path.to_path_buf(),
        message,
    };
    let actual = sha256_hex(bytes);
    if actual != metadata.model_sha256 {
        return Err(model_error(format!(
            "checksum mismatch: metadata says {}, file is {actual}",
            metadata.model_sha256
        )));
    }
    postcard::from_bytes(bytes).map_err(|e| model_error(e.to_string()))
}

/// Writes `forest` and `metadata` into `dir` (created if missing); fills in the model file
/// name and checksum.
pub fn save(dir: &Path, forest: &SmartcoreForest, metadata: &mut ModelMetadata) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let bytes = postcard::to_stdvec(forest).map_err(|e| Error::Model {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    metadata.model_file = MODEL_FILE.to_string();
    metadata.model_sha256 = sha256_hex(&bytes);
    let model_path = dir.join(MODEL_FILE);
    std::fs::write(&model_path, &bytes).map_err(|e| Error::io(&model_path, e))?;
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
mod tests {
    use super::*;
    use crate::model::dataset::Dataset;
    use smartcore::linalg::basic::matrix::DenseMatrix;

    #[test]
    fn committed_model_scores_like_smartcore() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/breast-cancer/1");
        let model = Model::load(&dir).unwrap();
        let (metadata, reference) = load_reference(&dir).unwrap();
        assert_eq!(metadata.training.hyperparameters.n_trees, 100);
        assert_eq!(metadata.training.hyperparameters.max_depth, 10);
        assert_eq!(model.forest.n_trees(), 100);
        let data = Dataset::breast_cancer();
        assert_eq!(metadata.features, data.feature_names);
        let expected = reference
            .predict(&DenseMatrix::from_2d_vec(&data.rows).unwrap())
            .unwrap();
        let flat: Vec<f64> = data.rows.concat();
        let mut votes = Vec::new();
        model.forest.score_batch(&flat, &mut votes);
        let got: Vec<i32> = votes
            .chunks_exact(model.forest.classes().len())
            .map(|v| model.forest.votes(v).label())
            .collect();
        assert_eq!(got, expected);
    }
}

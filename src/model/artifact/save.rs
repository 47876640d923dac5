//! Writing an artifact: the model file, the kept reference rows, the drift reference and
//! `metadata.json`, each with its checksum.

use std::path::Path;

use super::reference::reference_csv;
use super::{METADATA_FILE, MODEL_FILE, ModelMetadata, REFERENCE_FILE, ReferenceRows};
use super::{model_error, sha256_hex};
use crate::error::{Error, RegistryError, Result};
use crate::model::drift_reference::{DRIFT_REFERENCE_FILE, DriftReference, DriftReferenceFile};
use crate::model::forest::SmartcoreForest;

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
/// [`super::MAX_REFERENCE_ROWS`] of them, for explanations), the drift reference and `metadata`
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
        return Err(RegistryError::VersionExists(dir.to_path_buf()).into());
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

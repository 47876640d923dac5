//! The reference rows kept beside a model for explanations: a CSV whose header is the
//! model's features, checked like the model file.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{model_error, sha256_hex};
use crate::error::Result;

/// Name of the reference rows inside an artifact directory (see [`ReferenceRows`]).
pub const REFERENCE_FILE: &str = "reference.csv";
/// At most this many reference rows are kept: enough to measure every node that matters.
pub const MAX_REFERENCE_ROWS: usize = 10_000;

/// The reference rows kept beside the model: a CSV whose header is the model's features,
/// checked like the model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceRows {
    /// File name inside the artifact directory.
    pub file: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// Rows it holds.
    pub rows: usize,
}

/// The reference rows, row-major (none when the artifact has none).
#[derive(Clone, Default)]
pub(super) struct Reference(pub(super) Option<Arc<[f64]>>);

impl std::fmt::Debug for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} reference values",
            self.0.as_ref().map_or(0, |r| r.len())
        )
    }
}

/// Reads reference rows written by [`save_file`], checking the checksum, the header and the
/// row count against the metadata.
pub(super) fn parse_reference(
    bytes: &[u8],
    stored: &ReferenceRows,
    features: &[String],
    path: &Path,
) -> Result<Arc<[f64]>> {
    let actual = sha256_hex(bytes);
    if actual != stored.sha256 {
        return Err(model_error(
            path,
            format!(
                "reference rows' checksum mismatch: metadata says {}, file is {actual}",
                stored.sha256
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| model_error(path, e.to_string()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    if header != features {
        return Err(model_error(
            path,
            format!("reference rows have columns {header:?}, not the model's features"),
        ));
    }
    let mut values = Vec::with_capacity(stored.rows * features.len());
    for (i, line) in lines.enumerate() {
        let before = values.len();
        for field in line.split(',') {
            let value = field.parse::<f64>().map_err(|e| {
                model_error(path, format!("reference row {}: {field:?}: {e}", i + 1))
            })?;
            values.push(value);
        }
        if values.len() - before != features.len() {
            return Err(model_error(
                path,
                format!(
                    "reference row {} has {} values",
                    i + 1,
                    values.len() - before
                ),
            ));
        }
    }
    if values.len() != stored.rows * features.len() {
        return Err(model_error(
            path,
            format!(
                "{} reference rows, metadata says {}",
                values.len() / features.len().max(1),
                stored.rows
            ),
        ));
    }
    Ok(values.into())
}

/// The reference rows as [`parse_reference`] reads them: at most [`MAX_REFERENCE_ROWS`],
/// taken evenly from `rows`; values in Rust's shortest form, which reads back exactly.
pub(super) fn reference_csv(features: &[String], rows: &[Vec<f64>]) -> String {
    let step = rows.len().div_ceil(MAX_REFERENCE_ROWS).max(1);
    let mut csv = features.join(",");
    for row in rows.iter().step_by(step) {
        csv.push('\n');
        let fields: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        csv.push_str(&fields.join(","));
    }
    csv.push('\n');
    csv
}

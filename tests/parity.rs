//! Parity with onnxruntime: models trained by scikit-learn, XGBoost and LightGBM on data
//! sets scikit-learn ships, exported to ONNX by their exporters, score the same in driftwood
//! as in onnxruntime, row for row on held-out data (rows with missing values included).
//!
//! `tests/parity/export_models.py` trains, exports and scores with onnxruntime; it runs in
//! the Python that `DRIFTWOOD_PARITY_PYTHON` names (`scripts/parity-env.sh` makes one from
//! `tests/parity/requirements.txt`; `scripts/test.sh` does so and sets it).

use std::path::{Path, PathBuf};

use driftwood::model::ensemble::Workspace;
use driftwood::model::onnx;

#[path = "integration/common/parity.rs"]
mod parity_python;
use parity_python::{export_models, read_le};

/// Largest difference allowed between a driftwood and an onnxruntime score.
const TOLERANCE: f64 = 1e-6;

#[derive(serde::Deserialize)]
struct Entry {
    name: String,
    estimator: String,
    rows: usize,
    features: usize,
    columns: usize,
    rows_with_nan: usize,
    labels: Option<Vec<String>>,
}

fn exported_models() -> (PathBuf, Vec<Entry>) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("parity-{:016x}", rand::random::<u64>()));
    export_models(&[dir.as_os_str()]);
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    (dir, serde_json::from_slice(&manifest).unwrap())
}

#[test]
fn exported_models_score_as_onnxruntime_scores_them() {
    let (dir, models) = exported_models();
    assert_eq!(models.len(), 10, "every model of export_models.py");
    println!(
        "model                      estimator                         rows  NaN rows  largest |driftwood - onnxruntime|"
    );
    for entry in &models {
        let model = onnx::load(&dir.join(format!("{}.onnx", entry.name))).unwrap();
        let ensemble = &model.ensemble;
        assert_eq!(ensemble.n_features(), entry.features, "{}", entry.name);
        let rows = read_le(
            &dir.join(format!("{}.rows", entry.name)),
            f64::from_le_bytes,
        );
        let expected = read_le(&dir.join(format!("{}.ort", entry.name)), f32::from_le_bytes);
        // Every walk the model offers gives the same scores.
        let (mut scores, mut classes) = (Vec::new(), Vec::new());
        ensemble.predict(&rows, &mut scores, &mut classes);
        for &walk in ensemble.walks() {
            let (mut other, mut other_classes) = (Vec::new(), Vec::new());
            let mut work = Workspace::default();
            ensemble.predict_with(&mut work, walk, &rows, &mut other, &mut other_classes);
            assert_eq!(scores, other, "{}: {walk:?} agrees", entry.name);
            assert_eq!(classes, other_classes, "{}: {walk:?} agrees", entry.name);
        }
        assert_eq!(ensemble.n_columns(), entry.columns, "{}", entry.name);
        assert_eq!(scores.len(), expected.len(), "{}", entry.name);
        let largest = scores
            .iter()
            .zip(&expected)
            .map(|(a, &b)| (a - f64::from(b)).abs())
            .fold(0f64, f64::max);
        println!(
            "{:26} {:33} {:5} {:9} {largest:.3e}",
            entry.name, entry.estimator, entry.rows, entry.rows_with_nan
        );
        assert!(
            largest <= TOLERANCE,
            "{}: a score differs from onnxruntime's by {largest:e}",
            entry.name
        );
        if let (Some(labels), Some(names)) = (&entry.labels, ensemble.head().labels()) {
            let ours: Vec<String> = classes.iter().map(|&c| names.name(c)).collect();
            assert_eq!(&ours, labels, "{}: predicted labels", entry.name);
        }
    }
}

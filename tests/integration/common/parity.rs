//! The Python of the ONNX tests (scikit-learn, XGBoost, LightGBM, their exporters and
//! onnxruntime: `tests/parity/requirements.txt`), named by `DRIFTWOOD_PARITY_PYTHON`, and the
//! files its script writes. Shared by `tests/parity.rs` and `tests/integration/imported.rs`.

use std::ffi::OsStr;
use std::path::Path;

/// The interpreter; panics saying how to get one when it is not set.
pub fn python() -> String {
    std::env::var("DRIFTWOOD_PARITY_PYTHON").unwrap_or_else(|_| {
        panic!(
            "DRIFTWOOD_PARITY_PYTHON is not set: this test needs scikit-learn, XGBoost, LightGBM, \
             their ONNX exporters and onnxruntime. scripts/test.sh sets it up; by hand: \
             `export DRIFTWOOD_PARITY_PYTHON=$(scripts/parity-env.sh)`"
        )
    })
}

/// Runs `tests/parity/export_models.py` with `args`.
pub fn export_models(args: &[&OsStr]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parity/export_models.py");
    let status = std::process::Command::new(python())
        .arg(script)
        .args(args)
        .status()
        .expect("the parity Python starts");
    assert!(
        status.success(),
        "export_models.py {args:?} failed: {status}"
    );
}

/// A file of little-endian numbers of `N` bytes each, as the script writes rows and scores.
pub fn read_le<const N: usize, T>(path: &Path, from: fn([u8; N]) -> T) -> Vec<T> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(N)
        .map(|b| from(b.try_into().expect("N bytes")))
        .collect()
}

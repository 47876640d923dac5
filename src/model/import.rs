//! `driftwood import`: an ONNX tree model (from skl2onnx or onnxmltools) becomes a driftwood
//! artifact. The ONNX file is kept as it is, beside metadata that names its features (the
//! reference CSV's header, which must match the input schema's field names), its classes,
//! and the drift baselines measured on the reference rows.

use std::path::PathBuf;

use super::artifact::{self, IMPORTED_FORMAT_VERSION, Imported, Model, ModelMetadata, ONNX_FILE};
use super::baseline::Baselines;
use super::dataset::Dataset;
use super::engine::Engine;
use super::ensemble::{Head, Labels};
use super::onnx;
use crate::error::{Error, Result};

/// `driftwood import`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The ONNX file (a `TreeEnsembleClassifier`, e.g. from skl2onnx or onnxmltools).
    pub model: PathBuf,
    /// Model name.
    #[arg(long)]
    pub name: String,
    /// Model version.
    #[arg(long, default_value = "1")]
    pub version: String,
    /// CSV of reference rows with a header: the model's features in its input order (their
    /// names must be the input schema's field names) and the label column. Drift baselines
    /// and the accuracy figure come from it.
    #[arg(long)]
    pub reference: PathBuf,
    /// The reference CSV's label column (integer class labels).
    #[arg(long, default_value = "target")]
    pub target: String,
    /// Root directory of the model store.
    #[arg(long, default_value = "models")]
    pub output: PathBuf,
}

/// What an import wrote.
#[derive(Debug)]
pub struct ImportOutcome {
    /// The artifact directory.
    pub dir: PathBuf,
    /// Its metadata.
    pub metadata: ModelMetadata,
}

/// Reads, checks and compiles the model, scores the reference rows with it, and writes the
/// artifact `output/name/version`, then loads it back as `driftwood run` would.
pub fn run(args: &ImportArgs) -> Result<ImportOutcome> {
    let bytes = std::fs::read(&args.model).map_err(|e| Error::io(&args.model, e))?;
    let imported = onnx::decode(&bytes, &args.model)?;
    let refuse = |message: String| Error::Model {
        path: args.model.clone(),
        message,
    };
    let classes = int_classes(imported.ensemble.head()).map_err(refuse)?;
    let data = Dataset::from_csv(&args.reference, &args.target)?;
    if data.feature_names.len() != imported.ensemble.n_features() {
        return Err(refuse(format!(
            "the model reads {} features but {} has {} feature columns besides {:?}",
            imported.ensemble.n_features(),
            args.reference.display(),
            data.feature_names.len(),
            args.target
        )));
    }
    let engine = Engine::Trees(imported.ensemble);
    let predictions = engine.label_confidence(&data.rows.concat(), &classes);
    let correct = predictions
        .iter()
        .zip(&data.labels)
        .filter(|((predicted, _), actual)| predicted == *actual)
        .count();
    let mut metadata = ModelMetadata {
        format_version: IMPORTED_FORMAT_VERSION,
        name: args.name.clone(),
        version: args.version.clone(),
        algorithm: format!("ONNX {} ({})", imported.operator, imported.producer),
        features: data.feature_names.clone(),
        classes: classes.clone(),
        training: None,
        imported: Some(Imported {
            source: args.model.display().to_string(),
            operator: imported.operator,
            producer: imported.producer,
            reference: args.reference.display().to_string(),
            reference_rows: data.len(),
        }),
        holdout_accuracy: correct as f64 / data.len() as f64,
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        model_file: String::new(),
        model_sha256: String::new(),
        baselines: Baselines::measure(&data.feature_names, &data.rows, &classes, &predictions),
    };
    let dir = args.output.join(&args.name).join(&args.version);
    artifact::save_file(&dir, ONNX_FILE, &bytes, &mut metadata)?;
    // Read it back so that a broken artifact fails here, not in production.
    Model::load(&dir)?;
    Ok(ImportOutcome { dir, metadata })
}

/// The classes, when the model is a classifier whose labels are integers that predictions
/// can carry (the prediction schema's labels are `int`).
fn int_classes(head: &Head) -> std::result::Result<Vec<i32>, String> {
    match head {
        Head::Classifier {
            labels: Labels::Int(labels),
            ..
        } => labels
            .iter()
            .map(|&l| {
                i32::try_from(l).map_err(|_| format!("class label {l} does not fit a 32-bit int"))
            })
            .collect(),
        Head::Classifier {
            labels: Labels::Text(_),
            ..
        } => Err(
            "string class labels cannot be served yet (predictions carry an int label); \
                  train with integer labels"
                .into(),
        ),
        Head::Regressor { .. } => Err(
            "a regressor scores in driftwood's engine (tests/parity.rs) \
                                       but cannot be served yet: predictions carry a class"
                .into(),
        ),
    }
}

//! `driftwood import`: an ONNX tree model (from skl2onnx or onnxmltools) becomes a driftwood
//! artifact. The ONNX file is kept as it is, beside metadata that names its features (the
//! reference CSV's header, which must match the input schema's field names), its classes,
//! and the drift baselines measured on the reference rows.

use std::path::PathBuf;

use super::artifact::{
    self, IMPORTED_FORMAT_VERSION, Imported, Model, ModelMetadata, ONNX_FILE, Task,
};
use super::baseline::Baselines;
use super::dataset::Dataset;
use super::engine::{Engine, Predicted};
use super::ensemble::Labels;
use super::onnx;
use super::registry::{Change, Registry};
use crate::error::{Error, Result};

/// `driftwood import`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The ONNX file (a `TreeEnsembleClassifier` or `TreeEnsembleRegressor`, e.g. from
    /// skl2onnx or onnxmltools).
    pub model: PathBuf,
    /// Model name.
    #[arg(long)]
    pub name: String,
    /// Model version [default: the next in the registry, 1 for a new model].
    #[arg(long)]
    pub version: Option<String>,
    /// CSV of reference rows with a header: the model's features in its input order (their
    /// names must be the input schema's field names) and the label column. Drift baselines
    /// and the accuracy figure come from it.
    #[arg(long)]
    pub reference: PathBuf,
    /// The reference CSV's target column: integer class labels, the class names of a model
    /// whose classes are strings, or a regressor's values.
    #[arg(long, default_value = "target")]
    pub target: String,
    /// The registry's root directory.
    #[arg(long, alias = "registry", default_value = "models")]
    pub output: PathBuf,
}

/// What an import wrote.
#[derive(Debug)]
pub struct ImportOutcome {
    /// The artifact directory.
    pub dir: PathBuf,
    /// Its metadata.
    pub metadata: ModelMetadata,
    /// The pointer change, when this was the model's first version and now serves.
    pub promoted: Option<Change>,
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
    let engine = Engine::new(imported.ensemble);
    let Outputs {
        classes,
        class_names,
        task,
    } = outputs(&engine).map_err(refuse)?;
    let data = reference(args, &classes, class_names.as_deref())?;
    if data.feature_names.len() != engine.n_features() {
        return Err(refuse(format!(
            "the model reads {} features but {} has {} feature columns besides {:?}",
            engine.n_features(),
            args.reference.display(),
            data.feature_names.len(),
            args.target
        )));
    }
    let predictions = engine.predict_all(&data.rows.concat());
    let registry = Registry::new(&args.output);
    let version = match &args.version {
        Some(version) => version.clone(),
        None => registry.next_version(&args.name)?,
    };
    let mut metadata = ModelMetadata {
        format_version: IMPORTED_FORMAT_VERSION,
        name: args.name.clone(),
        version: version.clone(),
        algorithm: format!("ONNX {} ({})", imported.operator, imported.producer),
        features: data.feature_names.clone(),
        classes: classes.clone(),
        class_names,
        task,
        training: None,
        imported: Some(Imported {
            source: args.model.display().to_string(),
            operator: imported.operator,
            producer: imported.producer,
            reference: args.reference.display().to_string(),
            reference_rows: data.len(),
        }),
        holdout_accuracy: accuracy(&predictions, &data.labels),
        holdout_r2: r2(&predictions, &data.labels),
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        model_file: String::new(),
        model_sha256: String::new(),
        baselines: Baselines::measure(&data.feature_names, &data.rows, &classes, &predictions),
        reference: None,
    };
    let dir = registry.artifact_dir(&args.name, &version);
    artifact::save_file(&dir, ONNX_FILE, &bytes, &data.rows, &mut metadata)?;
    // Read it back so that a broken artifact fails here, not in production.
    Model::load(&dir)?;
    let promoted = registry.promote_first(&args.name, &version)?;
    Ok(ImportOutcome {
        dir,
        metadata,
        promoted,
    })
}

/// A reference row's target, read as the model's outputs need it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Truth {
    /// A class's index in the model's order (`None`: a label the model does not know, which
    /// counts as a wrong prediction).
    Class(Option<usize>),
    /// A regressor's target value.
    Value(f64),
}

/// The reference rows, with targets parsed for the model: integer labels, class names or
/// numbers.
fn reference(
    args: &ImportArgs,
    classes: &[i32],
    names: Option<&[String]>,
) -> Result<Dataset<Truth>> {
    let (path, target) = (&args.reference, &args.target);
    match (classes.is_empty(), names) {
        (true, _) => Dataset::from_csv_with(path, target, "a number", |c| {
            c.parse().ok().map(Truth::Value)
        }),
        (false, Some(names)) => {
            Dataset::from_csv_with(path, target, "one of the model's class names", |c| {
                names
                    .iter()
                    .position(|n| n == c)
                    .map(|i| Truth::Class(Some(i)))
            })
        }
        (false, None) => Dataset::from_csv_with(path, target, "an integer class label", |c| {
            let label: i32 = c.parse().ok()?;
            Some(Truth::Class(classes.iter().position(|&k| k == label)))
        }),
    }
}

/// Share of classifier predictions that match their truth.
fn accuracy(predictions: &[Predicted], truth: &[Truth]) -> Option<f64> {
    if !matches!(truth.first(), Some(Truth::Class(_))) {
        return None;
    }
    let hits = (predictions.iter().zip(truth))
        .filter(|(p, t)| matches!(t, Truth::Class(Some(c)) if p.class() == Some(*c)))
        .count();
    Some(hits as f64 / predictions.len() as f64)
}

/// A regressor's coefficient of determination: 1 − (residual sum of squares) / (total sum
/// of squares around the truth's mean).
fn r2(predictions: &[Predicted], truth: &[Truth]) -> Option<f64> {
    let pairs: Vec<(f64, f64)> = predictions
        .iter()
        .zip(truth)
        .filter_map(|(p, t)| match (p, t) {
            (Predicted::Value(p), Truth::Value(t)) => Some((*p, *t)),
            _ => None,
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let mean = pairs.iter().map(|(_, t)| t).sum::<f64>() / pairs.len() as f64;
    let residual: f64 = pairs.iter().map(|(p, t)| (t - p).powi(2)).sum();
    let total: f64 = pairs.iter().map(|(_, t)| (t - mean).powi(2)).sum();
    Some(1.0 - residual / total)
}

/// What a model's predictions carry, as the metadata records it.
struct Outputs {
    /// Class labels (for classes that are names, their indices); none for a regressor.
    classes: Vec<i32>,
    /// The names, for classes that are names.
    class_names: Option<Vec<String>>,
    task: Task,
}

/// What the model's predictions carry, or why they cannot be served.
fn outputs(engine: &Engine) -> std::result::Result<Outputs, String> {
    if engine.n_classes() == 0 {
        return match engine.ensemble().n_columns() {
            1 => Ok(Outputs {
                classes: Vec::new(),
                class_names: None,
                task: Task::Regression,
            }),
            n => Err(format!(
                "a regressor of {n} targets cannot be served: a prediction carries one value"
            )),
        };
    }
    match engine.labels() {
        Labels::Int(labels) => {
            let classes = labels
                .iter()
                .map(|&l| {
                    i32::try_from(l)
                        .map_err(|_| format!("class label {l} does not fit a 32-bit int"))
                })
                .collect::<std::result::Result<_, _>>()?;
            Ok(Outputs {
                classes,
                class_names: None,
                task: Task::Classification,
            })
        }
        Labels::Text(names) => Ok(Outputs {
            classes: (0..names.len() as i32).collect(),
            class_names: Some(names),
            task: Task::Classification,
        }),
    }
}

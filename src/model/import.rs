//! `driftwood import`: an ONNX tree model (from skl2onnx or onnxmltools) becomes a driftwood
//! artifact. The ONNX file is kept as it is, beside metadata that names its features (the
//! reference CSV's header, which must match the input schema's field names), its classes,
//! and the drift baselines measured on the reference rows.

use std::path::PathBuf;

use super::artifact::{
    self, IMPORTED_FORMAT_VERSION, Imported, MAX_REFERENCE_ROWS, Model, ModelMetadata, ONNX_FILE,
    Task,
};
use super::baseline::Baselines;
use super::calibrate::CalibrationPass;
use super::dataset::{CsvRows, Missing};
use super::drift_reference::{DriftReference, FeaturePass, OutputPass};
use super::engine::{Engine, Predicted};
use super::ensemble::Labels;
use super::onnx;
use super::registry::{Change, Registry};
use crate::error::{Error, Result};

/// What `driftwood import` is asked for.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The ONNX file (a `TreeEnsembleClassifier` or `TreeEnsembleRegressor`).
    pub model: PathBuf,
    /// Model name.
    pub name: String,
    /// Model version [default: the next in the registry, 1 for a new model].
    pub version: Option<String>,
    /// CSV of reference rows with a header: the model's features in its input order and the
    /// label column. Read as a stream, twice, so it may be of any size.
    pub reference: PathBuf,
    /// The reference CSV's target column.
    pub target: String,
    /// The registry's root directory.
    pub output: PathBuf,
    /// Where the model came from, as the metadata records it [default: the model file].
    pub source: Option<String>,
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

/// Reads, checks and compiles the model, reads the reference rows twice as a stream
/// (scoring them, profiling them for drift, keeping an even sample for explanations), and
/// writes the artifact `output/name/version`, then loads it back as `driftwood run` would.
pub fn run(args: &ImportRequest) -> Result<ImportOutcome> {
    let bytes = std::fs::read(&args.model).map_err(|e| Error::io(&args.model, e))?;
    let imported = onnx::decode(&bytes, &args.model)?;
    let engine = Engine::new(imported.ensemble);
    let Outputs {
        classes,
        class_names,
        task,
    } = outputs(&engine).map_err(|message| Error::Model {
        path: args.model.clone(),
        message,
    })?;
    let scan = Scan::run(args, &engine, &classes, class_names.as_deref())?;
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
        features: scan.feature_names.clone(),
        classes: classes.clone(),
        class_names,
        task,
        training: None,
        imported: Some(Imported {
            source: (args.source.clone()).unwrap_or_else(|| args.model.display().to_string()),
            operator: imported.operator,
            producer: imported.producer,
            reference: args.reference.display().to_string(),
            reference_rows: scan.rows as usize,
        }),
        holdout_accuracy: scan.fit.accuracy(),
        holdout_r2: scan.fit.r2(),
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        model_file: String::new(),
        model_sha256: String::new(),
        baselines: Baselines::measure(
            &scan.feature_names,
            &scan.kept,
            &classes,
            &scan.kept_predictions,
        ),
        reference: None,
        drift_reference: None,
    };
    let dir = registry.artifact_dir(&args.name, &version);
    let reference = (scan.kept.as_slice(), &scan.drift);
    artifact::save_file(&dir, ONNX_FILE, &bytes, reference, &mut metadata)?;
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

type TruthParser = Box<dyn Fn(&str) -> Option<Truth>>;

/// The reference rows as a stream, with targets parsed for the model: integer labels, class
/// names or numbers. Empty and NaN feature cells are missing values.
fn reference_rows(
    args: &ImportRequest,
    classes: &[i32],
    names: Option<&[String]>,
) -> Result<CsvRows<Truth, TruthParser>> {
    let (expected, parse): (&str, TruthParser) = match (classes.is_empty(), names) {
        (true, _) => ("a number", Box::new(|c| c.parse().ok().map(Truth::Value))),
        (false, Some(names)) => {
            let names = names.to_vec();
            let parse = move |c: &str| {
                names
                    .iter()
                    .position(|n| n == c)
                    .map(|i| Truth::Class(Some(i)))
            };
            ("one of the model's class names", Box::new(parse))
        }
        (false, None) => {
            let classes = classes.to_vec();
            let parse = move |c: &str| {
                let label: i32 = c.parse().ok()?;
                Some(Truth::Class(classes.iter().position(|&k| k == label)))
            };
            ("an integer class label", Box::new(parse))
        }
    };
    CsvRows::open(
        &args.reference,
        &args.target,
        expected,
        parse,
        Missing::Allowed,
    )
}

/// Reference rows scored at a time.
const BATCH: usize = 1024;

/// What the two passes over the reference rows found.
struct Scan {
    feature_names: Vec<String>,
    rows: u64,
    /// An even sample of at most [`MAX_REFERENCE_ROWS`] rows, for explanations, and the
    /// model's predictions on them.
    kept: Vec<Vec<f64>>,
    kept_predictions: Vec<Predicted>,
    drift: DriftReference,
    fit: Fit,
}

impl Scan {
    fn run(
        args: &ImportRequest,
        engine: &Engine,
        classes: &[i32],
        names: Option<&[String]>,
    ) -> Result<Scan> {
        let stream = reference_rows(args, classes, names)?;
        let feature_names = stream.feature_names.clone();
        if feature_names.len() != engine.n_features() {
            return Err(Error::Model {
                path: args.model.clone(),
                message: format!(
                    "the model reads {} features but {} has {} feature columns besides {:?}",
                    engine.n_features(),
                    args.reference.display(),
                    feature_names.len(),
                    args.target
                ),
            });
        }
        let (mut features, mut outputs) = (
            FeaturePass::new(feature_names.len()),
            OutputPass::new(classes.len()),
        );
        let mut fit = Fit::default();
        let mut calibration = CalibrationPass::new(classes.len());
        let rows = scored_batches(stream, engine, |row, predicted, truth| {
            features.add(row);
            outputs.add(predicted);
            if let (Some(c), Truth::Class(truth)) = (calibration.as_mut(), truth) {
                c.add(row, predicted, truth);
            }
            fit.add(predicted, truth);
        })?;
        if rows == 0 {
            let path = args.reference.display();
            return Err(Error::Training(format!("{path}: no data rows")));
        }
        let step = rows.div_ceil(MAX_REFERENCE_ROWS as u64).max(1);
        let (mut features, mut outputs) = (features.second(), outputs.second());
        let (mut kept, mut kept_predictions, mut index) = (Vec::new(), Vec::new(), 0u64);
        let stream = reference_rows(args, classes, names)?;
        scored_batches(stream, engine, |row, predicted, _| {
            features.add(row);
            outputs.add(predicted);
            if index % step == 0 {
                kept.push(row.to_vec());
                kept_predictions.push(predicted);
            }
            index += 1;
        })?;
        let source = format!("{rows} rows of {}", args.reference.display());
        let mut drift = features.finish(source.clone(), outputs.finish(source));
        drift.outputs.calibration = calibration.and_then(CalibrationPass::finish);
        Ok(Scan {
            feature_names,
            rows,
            kept,
            kept_predictions,
            drift,
            fit,
        })
    }
}

/// Scores `stream` in batches and hands each row, its prediction and its truth to `each`;
/// returns the rows read.
fn scored_batches(
    mut stream: CsvRows<Truth, TruthParser>,
    engine: &Engine,
    mut each: impl FnMut(&[f64], Predicted, Truth),
) -> Result<u64> {
    let mut rows = 0u64;
    loop {
        let batch: Vec<(Vec<f64>, Truth)> = stream.by_ref().take(BATCH).collect::<Result<_>>()?;
        if batch.is_empty() {
            return Ok(rows);
        }
        let flat: Vec<f64> = batch.iter().flat_map(|(r, _)| r.iter().copied()).collect();
        for ((row, truth), predicted) in batch.iter().zip(engine.predict_all(&flat)) {
            each(row, predicted, *truth);
        }
        rows += batch.len() as u64;
    }
}

/// Accuracy or R² of the model on the reference rows, added up row by row.
#[derive(Debug, Default)]
struct Fit {
    rows: u64,
    hits: u64,
    /// Regressor: Σ (t − p)², and Welford's mean and M2 of the truth.
    residual: f64,
    mean: f64,
    m2: f64,
    regression: bool,
}

impl Fit {
    fn add(&mut self, predicted: Predicted, truth: Truth) {
        self.rows += 1;
        match (predicted, truth) {
            (p, Truth::Class(c)) => self.hits += u64::from(c.is_some() && p.class() == c),
            (Predicted::Value(p), Truth::Value(t)) => {
                self.regression = true;
                self.residual += (t - p).powi(2);
                let delta = t - self.mean;
                self.mean += delta / self.rows as f64;
                self.m2 += delta * (t - self.mean);
            }
            (Predicted::Class { .. }, Truth::Value(_)) => {}
        }
    }

    /// A classifier's share of predictions that match their truth.
    fn accuracy(&self) -> Option<f64> {
        (!self.regression && self.rows > 0).then(|| self.hits as f64 / self.rows as f64)
    }

    /// A regressor's coefficient of determination: 1 − (residual sum of squares) / (total
    /// sum of squares around the truth's mean).
    fn r2(&self) -> Option<f64> {
        self.regression.then(|| 1.0 - self.residual / self.m2)
    }
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

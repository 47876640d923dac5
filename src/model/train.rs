//! `driftwood train`: fit a seeded random forest, measure it on a holdout split, compute
//! drift baselines and write a versioned artifact.

use std::path::PathBuf;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use smartcore::ensemble::random_forest_classifier::RandomForestClassifierParameters;
use smartcore::linalg::basic::matrix::DenseMatrix;

use super::artifact::{
    self, FORMAT_VERSION, Hyperparameters, Model, ModelMetadata, Task, TrainingParameters,
};
use super::baseline::Baselines;
use super::calibrate::{Calibration, CalibrationPass};
use super::drift_reference::DriftReference;
use super::engine::{Engine, Predicted};
use super::ensemble::Labels;
use super::forest::{self, SmartcoreForest};
use super::registry::{Change, Registry};
use crate::error::{Error, Result};
use crate::model::dataset::Dataset;

/// What `driftwood train` is asked for: the data, the artifact's name and place, and the
/// hyperparameters.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// The data to train on.
    pub data: TrainingData,
    /// Model name [default: the dataset name, or the CSV file stem].
    pub name: Option<String>,
    /// Model version [default: the next in the registry, 1 for a new model].
    pub version: Option<String>,
    /// The registry's root directory.
    pub output: PathBuf,
    /// How the forest is grown.
    pub hyperparameters: Hyperparameters,
    /// Write the rows training held out here, with their target (for `models evaluate`).
    pub holdout_csv: Option<PathBuf>,
}

/// What a model is trained on.
#[derive(Debug, Clone)]
pub enum TrainingData {
    /// A dataset that comes with driftwood.
    Bundled(BundledDataset),
    /// A CSV file with a header row, and its label column (integer class labels).
    Csv {
        /// The file.
        path: PathBuf,
        /// The label column.
        target: String,
    },
}

/// Datasets that come with driftwood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundledDataset {
    /// Wisconsin breast cancer (569 rows, 30 features, 2 classes).
    BreastCancer,
}

/// `driftwood train`: reads the data the arguments name and trains on it.
pub fn run(args: TrainRequest) -> Result<TrainOutcome> {
    let (data, source, target, default_name) = match args.data {
        TrainingData::Bundled(BundledDataset::BreastCancer) => (
            Dataset::breast_cancer(),
            "dataset:breast-cancer".to_string(),
            "target".to_string(),
            "breast-cancer".to_string(),
        ),
        TrainingData::Csv { path, target } => {
            let name = path
                .file_stem()
                .map_or("model".into(), |s| s.to_string_lossy().into_owned());
            let data = Dataset::from_csv(&path, &target)?;
            (data, format!("csv:{}", path.display()), target, name)
        }
    };
    let name = args.name.unwrap_or(default_name);
    let registry = Registry::new(&args.output);
    let spec = TrainSpec {
        version: match args.version {
            Some(version) => version,
            None => registry.next_version(&name)?,
        },
        name,
        output_root: args.output,
        source,
        target,
        hyperparameters: args.hyperparameters,
    };
    let mut outcome = train(&data, &spec)?;
    if let Some(path) = &args.holdout_csv {
        let (_, test_idx) = holdout(&data, &spec.hyperparameters)?;
        data.write_csv(path, &spec.target, &test_idx)?;
    }
    outcome.promoted = registry.promote_first(&spec.name, &spec.version)?;
    Ok(outcome)
}

/// What to train and where to write it.
#[derive(Debug, Clone)]
pub struct TrainSpec {
    /// Model name (directory under `output_root`).
    pub name: String,
    /// Model version (directory under the name).
    pub version: String,
    /// Root of the model store, usually `models`.
    pub output_root: PathBuf,
    /// Where the data came from, recorded in the metadata.
    pub source: String,
    /// Label column name, recorded in the metadata.
    pub target: String,
    /// How the forest is grown.
    pub hyperparameters: Hyperparameters,
}

/// What training produced.
#[derive(Debug)]
pub struct TrainOutcome {
    /// Directory the artifact was written to.
    pub dir: PathBuf,
    /// The written metadata.
    pub metadata: ModelMetadata,
    /// The pointer change, when this was the model's first version and now serves.
    pub promoted: Option<Change>,
}

/// Trains on `data` as `spec` says and writes the artifact.
pub fn train(data: &Dataset, spec: &TrainSpec) -> Result<TrainOutcome> {
    let h = &spec.hyperparameters;
    let (train_idx, test_idx) = holdout(data, h)?;
    let train_rows: Vec<Vec<f64>> = train_idx.iter().map(|&i| data.rows[i].clone()).collect();
    let x = DenseMatrix::from_2d_vec(&train_rows).map_err(|e| Error::Training(e.to_string()))?;
    let reference = fit(&x, data, &train_idx, h)?;
    let engine = Engine::new(forest::ensemble(&reference, data.feature_names.len())?);
    let Labels::Int(labels) = engine.labels() else {
        unreachable!("smartcore's labels are integers")
    };
    // Widened from smartcore's i32 labels, so they fit back.
    let classes: Vec<i32> = labels.iter().map(|&c| c as i32).collect();
    let held_out: Vec<f64> = test_idx
        .iter()
        .flat_map(|&i| data.rows[i].clone())
        .collect();
    let predictions = engine.predict_all(&held_out);
    let correct = predictions
        .iter()
        .zip(&test_idx)
        .filter(|(p, i)| p.class().map(|c| classes[c]) == Some(data.labels[**i]))
        .count();
    let mut metadata = ModelMetadata {
        format_version: FORMAT_VERSION,
        name: spec.name.clone(),
        version: spec.version.clone(),
        algorithm: "smartcore 0.7 RandomForestClassifier".into(),
        features: data.feature_names.clone(),
        classes: classes.clone(),
        class_names: None,
        task: Task::Classification,
        training: Some(TrainingParameters {
            source: spec.source.clone(),
            target: spec.target.clone(),
            hyperparameters: h.clone(),
            train_rows: train_idx.len(),
            test_rows: test_idx.len(),
        }),
        imported: None,
        holdout_accuracy: Some(correct as f64 / test_idx.len() as f64),
        holdout_r2: None,
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        model_file: String::new(),
        model_sha256: String::new(),
        baselines: Baselines::measure(&data.feature_names, &train_rows, &classes, &predictions),
        reference: None,
        drift_reference: None,
    };
    // Features against every training row; outputs against the held-out rows, where the
    // forest is as sure of itself as it will be on new records (on its own training rows
    // it is surer).
    let mut drift = DriftReference::from_rows(
        format!("{} training rows", train_rows.len()),
        &train_rows,
        (format!("{} held-out rows", test_idx.len()), &predictions),
        classes.len(),
    );
    // Calibrated on the held-out rows too: the forest's vote shares on rows it learned from
    // are surer than on new ones.
    drift.outputs.calibration = calibrate(&classes, &predictions, data, &test_idx);
    let dir = spec.output_root.join(&spec.name).join(&spec.version);
    artifact::save(&dir, &reference, (&train_rows, &drift), &mut metadata)?;
    // Read it back so a broken artifact fails here, not in production.
    Model::load(&dir)?;
    Ok(TrainOutcome {
        dir,
        metadata,
        promoted: None,
    })
}

/// smartcore's forest, fit on the training rows `x` (rows `train_idx` of `data`).
fn fit(
    x: &DenseMatrix<f64>,
    data: &Dataset,
    train_idx: &[usize],
    h: &Hyperparameters,
) -> Result<SmartcoreForest> {
    let labels: Vec<i32> = train_idx.iter().map(|&i| data.labels[i]).collect();
    let params = RandomForestClassifierParameters::default()
        .with_n_trees(h.n_trees)
        .with_max_depth(h.max_depth)
        .with_min_samples_leaf(h.min_samples_leaf)
        .with_min_samples_split(h.min_samples_split)
        .with_seed(h.seed);
    SmartcoreForest::fit(x, &labels, params).map_err(|e| Error::Training(e.to_string()))
}

/// The calibration of a model trained on the bundled data set, fitted on the rows its
/// training held out (the split is seeded, so it is found again); `None` for any other.
pub(super) fn held_out_calibration(model: &Model) -> Option<Calibration> {
    let training = model.metadata.training.as_ref()?;
    if training.source != "dataset:breast-cancer" {
        return None;
    }
    let data = Dataset::breast_cancer();
    let (_, test_idx) = holdout(&data, &training.hyperparameters).ok()?;
    let rows: Vec<f64> = test_idx
        .iter()
        .flat_map(|&i| data.rows[i].clone())
        .collect();
    let predictions = model.engine.predict_all(&rows);
    calibrate(&model.metadata.classes, &predictions, &data, &test_idx)
}

/// The calibration fitted on `predictions` of rows `rows` of `data` (held out from training).
fn calibrate(
    classes: &[i32],
    predictions: &[Predicted],
    data: &Dataset,
    rows: &[usize],
) -> Option<Calibration> {
    let mut pass = CalibrationPass::new(classes.len())?;
    for (&p, &i) in predictions.iter().zip(rows) {
        pass.add(
            &data.rows[i],
            p,
            classes.iter().position(|&c| c == data.labels[i]),
        );
    }
    pass.finish()
}

/// The training and held-out rows' indices, or why `h` cannot split `data`.
fn holdout(data: &Dataset, h: &Hyperparameters) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(h.test_fraction > 0.0 && h.test_fraction < 1.0) {
        return Err(Error::Training(format!(
            "the held-out share must be between 0 and 1, not {}",
            h.test_fraction
        )));
    }
    let (train_idx, test_idx) = split(data.len(), h.test_fraction, h.seed);
    if train_idx.is_empty() || test_idx.is_empty() {
        return Err(Error::Training(format!(
            "{} rows are too few for a {} holdout split",
            data.len(),
            h.test_fraction
        )));
    }
    Ok((train_idx, test_idx))
}

fn split(n: usize, test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let n_test = ((n as f64) * test_fraction).round() as usize;
    let test = idx.split_off(n - n_test.min(n));
    (idx, test)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::calibrate::Calibration;

    fn spec(root: &std::path::Path, n_trees: u16) -> TrainSpec {
        TrainSpec {
            name: "bc".into(),
            version: "1".into(),
            output_root: root.to_path_buf(),
            source: "dataset:breast-cancer".into(),
            target: "target".into(),
            hyperparameters: Hyperparameters {
                n_trees,
                max_depth: 6,
                min_samples_leaf: 1,
                min_samples_split: 2,
                seed: 7,
                test_fraction: 0.2,
            },
        }
    }

    #[test]
    fn training_is_reproducible_and_predictions_match_smartcore() {
        let data = Dataset::breast_cancer();
        let dir = tempfile::tempdir().unwrap();
        let first = train(&data, &spec(dir.path(), 15)).unwrap();
        let again = tempfile::tempdir().unwrap();
        let second = train(&data, &spec(again.path(), 15)).unwrap();
        assert_eq!(first.metadata.model_sha256, second.metadata.model_sha256);
        assert!(
            first.metadata.holdout_accuracy.unwrap() > 0.85,
            "{:?}",
            first.metadata
        );

        let model = Model::load(&first.dir).unwrap();
        let calibration = model.drift_reference().outputs.calibration.as_ref();
        let Some(Calibration::Binary(calibration)) = calibration else {
            panic!("a binary classifier is calibrated on held-out rows: {calibration:?}")
        };
        assert!(calibration.apply(0.0, None) <= calibration.apply(1.0, None));
        let (_, reference) = artifact::load_reference(&first.dir).unwrap();
        let expected = reference
            .predict(&DenseMatrix::from_2d_vec(&data.rows).unwrap())
            .unwrap();
        let mut scored = crate::model::Scored::default();
        let classes = &model.metadata.classes;
        for (row, want) in data.rows.iter().zip(expected) {
            model.engine.score(row, &mut scored);
            let class = scored.classes[0];
            let probabilities = scored.row(0);
            assert_eq!(classes[class], want);
            let shares: f64 = probabilities.iter().sum();
            assert!((shares - 1.0).abs() < 1e-9);
            assert!(probabilities[class] >= 0.5);
        }
    }

    #[test]
    fn the_bundled_model_is_calibrated_on_the_rows_its_training_held_out() {
        let model = Model::open(None).unwrap();
        let calibration = &model.drift_reference().outputs.calibration;
        assert!(
            matches!(calibration, Some(Calibration::Binary(_))),
            "{calibration:?}"
        );
        // The seeded split is found again: those rows score the accuracy training recorded.
        let data = Dataset::breast_cancer();
        let training = model.metadata.training.as_ref().unwrap();
        let (_, test_idx) = holdout(&data, &training.hyperparameters).unwrap();
        let rows: Vec<f64> = test_idx
            .iter()
            .flat_map(|&i| data.rows[i].clone())
            .collect();
        let classes = &model.metadata.classes;
        let right = (model.engine.predict_all(&rows).iter().zip(&test_idx))
            .filter(|(p, i)| p.class().map(|c| classes[c]) == Some(data.labels[**i]))
            .count();
        assert_eq!(
            Some(right as f64 / test_idx.len() as f64),
            model.metadata.holdout_accuracy
        );
    }

    #[test]
    fn trains_from_csv() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("blobs.csv");
        let mut text = String::from("x,y,class\n");
        for i in 0..60 {
            let c = i % 2;
            text += &format!("{},{},{c}\n", c as f64 * 10.0 + (i % 7) as f64 * 0.1, i % 5);
        }
        std::fs::write(&csv, text).unwrap();
        let data = Dataset::from_csv(&csv, "class").unwrap();
        assert_eq!(data.feature_names, vec!["x", "y"]);
        let mut s = spec(dir.path(), 5);
        s.source = format!("csv:{}", csv.display());
        let out = train(&data, &s).unwrap();
        assert_eq!(out.metadata.classes, vec![0, 1]);
        assert!(out.metadata.holdout_accuracy.unwrap() > 0.9);
        assert_eq!(out.metadata.baselines.features.len(), 2);
    }

    #[test]
    fn tampered_model_file_is_refused() {
        let data = Dataset::breast_cancer();
        let dir = tempfile::tempdir().unwrap();
        let out = train(&data, &spec(dir.path(), 3)).unwrap();
        let model_file = out.dir.join(artifact::MODEL_FILE);
        let mut bytes = std::fs::read(&model_file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&model_file, bytes).unwrap();
        let err = Model::load(&out.dir).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
    }
}

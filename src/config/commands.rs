//! The flags of `driftwood train` and `driftwood import`, and how the domain's enums are
//! spelled on the command line. The model and codec layers take plain requests; clap stays
//! here.

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Args, ValueEnum};

use crate::codec::decode::InputFormat;
use crate::model::artifact::Hyperparameters;
use crate::model::import::ImportRequest;
use crate::model::train::{BundledDataset, TrainRequest, TrainingData};

/// `driftwood train`'s command line: the data, the artifact's name and place, and the
/// hyperparameters.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Bundled dataset to train on.
    #[arg(
        long,
        value_enum,
        conflicts_with = "csv",
        required_unless_present = "csv"
    )]
    pub dataset: Option<BundledDataset>,
    /// CSV file with a header row to train on.
    #[arg(long, requires = "target")]
    pub csv: Option<PathBuf>,
    /// Label column of the CSV file (integer class labels).
    #[arg(long)]
    pub target: Option<String>,
    /// Model name [default: the dataset name, or the CSV file stem].
    #[arg(long)]
    pub name: Option<String>,
    /// Model version [default: the next in the registry, 1 for a new model].
    #[arg(long)]
    pub version: Option<String>,
    /// The registry's root directory.
    #[arg(long, alias = "registry", default_value = "models")]
    pub output: PathBuf,
    /// Also write the rows training held out to this CSV file, with their target: the
    /// labelled rows `driftwood models evaluate --data` compares versions on.
    #[arg(long)]
    pub holdout_csv: Option<PathBuf>,
    /// How the forest is grown.
    #[command(flatten)]
    pub hyperparameters: HyperparameterArgs,
}

impl TrainArgs {
    /// What the flags ask for (clap has checked that they name one dataset).
    pub fn request(self) -> TrainRequest {
        let data = match (self.dataset, self.csv, self.target) {
            (Some(dataset), _, _) => TrainingData::Bundled(dataset),
            (None, Some(path), Some(target)) => TrainingData::Csv { path, target },
            _ => unreachable!("clap requires --dataset, or --csv with --target"),
        };
        TrainRequest {
            data,
            name: self.name,
            version: self.version,
            output: self.output,
            hyperparameters: self.hyperparameters.into(),
            holdout_csv: self.holdout_csv,
        }
    }
}

/// How the forest is grown: `driftwood train`'s flags, recorded in the artifact.
#[derive(Debug, Clone, Args)]
pub struct HyperparameterArgs {
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
    #[arg(long, default_value_t = 0.2, value_parser = share)]
    pub test_fraction: f64,
}

/// A share strictly between 0 and 1.
fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        Ok(v) => Err(format!("must be between 0 and 1, got {v}")),
        Err(e) => Err(e.to_string()),
    }
}

impl From<HyperparameterArgs> for Hyperparameters {
    fn from(h: HyperparameterArgs) -> Self {
        Hyperparameters {
            n_trees: h.n_trees,
            max_depth: h.max_depth,
            min_samples_leaf: h.min_samples_leaf,
            min_samples_split: h.min_samples_split,
            seed: h.seed,
            test_fraction: h.test_fraction,
        }
    }
}

/// `driftwood import`'s arguments.
#[derive(Debug, Clone, Args)]
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
    /// names must be the input schema's field names) and the label column; an empty or NaN
    /// feature cell is a missing value. Read as a stream, twice, so it may be of any size:
    /// the drift reference and the accuracy figure come from every row.
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

impl From<ImportArgs> for ImportRequest {
    fn from(a: ImportArgs) -> Self {
        ImportRequest {
            model: a.model,
            name: a.name,
            version: a.version,
            reference: a.reference,
            target: a.target,
            output: a.output,
            source: None,
        }
    }
}

impl ValueEnum for BundledDataset {
    fn value_variants<'a>() -> &'a [Self] {
        &[BundledDataset::BreastCancer]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        match self {
            BundledDataset::BreastCancer => Some(
                PossibleValue::new("breast-cancer")
                    .help("Wisconsin breast cancer (569 rows, 30 features, 2 classes)"),
            ),
        }
    }
}

impl ValueEnum for InputFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &[InputFormat::Avro, InputFormat::Confluent]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            InputFormat::Avro => PossibleValue::new("avro")
                .help("The Avro binary encoding of one record, nothing else"),
            InputFormat::Confluent => PossibleValue::new("confluent")
                .help("Magic byte 0, a 4-byte big-endian schema id, then the Avro binary encoding"),
        })
    }
}

/// A value as its flag spells it (`latency`, not `Latency`).
pub fn flag_value(value: impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

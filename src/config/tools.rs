//! The flags of the tools beside the data path: `demo`, `produce`, `bench`, `bench-drift`,
//! `bench-model` and `models`. The tools take these as they are; clap stays in config/.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use super::parse_key_value;
use super::values::{at_least_one, positive_cores, share};
use crate::codec::decode::InputFormat;

/// Settings for `driftwood bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchConfig {
    /// Kafka bootstrap servers. Falls back to KAFKA_BOOTSTRAP_SERVERS, then localhost:9092.
    #[arg(long, env = "DRIFTWOOD_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: Option<String>,
    /// Records for the throughput runs.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: usize,
    /// Partitions of the benchmark topics.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Offered rates (records/s) of the latency runs, comma-separated; `0` runs none.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000.0, 10_000.0, 50_000.0])]
    pub latency_rates: Vec<f64>,
    /// Duration of each latency run (after the warm-up).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub latency_duration: Duration,
    /// Records of the first part of each latency run are delivered but not measured, so that
    /// connection set-up and first fetches do not count.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub latency_warmup: Duration,
    /// Rounds of latency runs; each round runs every relay, in the reverse order of the
    /// round before, and the table shows the median and the spread.
    #[arg(long, default_value_t = 2)]
    pub latency_repeats: usize,
    /// A latency run during which the host stole more than this share of the machine's time
    /// (steal in `/proc/stat`: other guests ran while this one had work) is run again, up to
    /// twice, and the run with the least stolen is kept: a stolen run's tails are the
    /// host's. 1 runs each once.
    #[arg(long, default_value_t = 0.05, value_parser = share)]
    pub latency_max_steal: f64,
    /// Rounds of the pass-through and the pipeline on the generator's input, in alternating
    /// order; the ratio is of the medians, and the figures shown are each's median run.
    #[arg(long, default_value_t = 3, value_parser = at_least_one)]
    pub throughput_rounds: usize,
    /// Producers writing the stock-client input, each with librdkafka's defaults.
    #[arg(long, default_value_t = 4)]
    pub stock_producers: usize,
    /// Records per second the stock producers write, together (small batches, as services
    /// producing at their own pace write them).
    #[arg(long, default_value_t = 100_000.0)]
    pub stock_rate: f64,
    /// Rounds of runs on the stock-client input: each round runs the pass-through, the
    /// pipeline and the pipeline without drift, in the reverse order of the round before;
    /// the ratios are of the kinds' medians.
    #[arg(long, default_value_t = 3, value_parser = at_least_one)]
    pub stock_rounds: usize,
    /// Instance counts of the scaling runs, comma-separated, run in this order; a count
    /// given again is measured again, and one instance's rate is the mean of its runs. `0`
    /// runs none. Three rounds by default: the same count read 1.63 and 2.23 × one instance
    /// within one run (docs/performance.md).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 3, 3, 2, 1, 1, 2, 3])]
    pub scaling_instances: Vec<usize>,
    /// Partitions of the scaling runs' topics.
    #[arg(long, default_value_t = 12)]
    pub scaling_partitions: i32,
    /// Limit each instance of the scaling runs to this many cores, in a cgroup of its own
    /// (as a pod's CPU limit does), so that on a small machine the instances, not the
    /// machine, are what runs out [default: no limit]. Needs root or a delegated cgroup.
    #[arg(long, value_parser = positive_cores)]
    pub scaling_cpu_limit: Option<f64>,
    /// Model artifact directory [default: the bundled breast-cancer model].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Registry whose `breast-cancer` pointer a further pipeline run follows
    /// (`--model-name`), to measure what following a pointer costs when it does not move
    /// (skipped with `--model`, or when the registry has no such pointer).
    #[arg(long, default_value = "models")]
    pub registry: PathBuf,
    /// Pairs of pipeline runs with and without drift windows (in alternating order) whose
    /// median difference of CPU per record is drift's cost.
    #[arg(long, default_value_t = 3)]
    pub drift_pairs: usize,
    /// The `driftwood` executable the measured runs start (another build) [default: this one].
    #[arg(long)]
    pub executable: Option<PathBuf>,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "bench.json")]
    pub json: PathBuf,
    /// Keep the topics the bench wrote (`bench-<tag>-…`, gigabytes) instead of deleting them.
    #[arg(long)]
    pub keep_topics: bool,
}

/// Parts of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    /// The synthetic scenarios.
    Synthetic,
    /// The persistent small shift, for the sequential alarm.
    Persistent,
    /// The bundled model's data set replayed.
    Bundled,
    /// The nannyml data sets.
    Real,
    /// Performance estimated without labels against the realized, on the binary nannyml data
    /// sets, beside NannyML's CBPE with `--estimate-python` (not run unless asked for).
    Estimate,
}

/// `driftwood bench-drift`'s settings.
#[derive(Debug, Clone, Args)]
pub struct BenchDriftArgs {
    /// Which parts to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["synthetic", "persistent", "bundled", "real"])]
    pub parts: Vec<Part>,
    /// Window sizes of the synthetic scenarios.
    #[arg(long, value_delimiter = ',', default_values_t = [1000, 5000, 20000])]
    pub sizes: Vec<usize>,
    /// Windows without a shift, per window size.
    #[arg(long, default_value_t = 3000)]
    pub null_windows: usize,
    /// Windows of each shift scenario, per window size (0: none, for the false-alarm rate).
    #[arg(long, default_value_t = 1000)]
    pub shift_windows: usize,
    /// Synthetic windows of k times --sizes records that count the features of one in k, as a
    /// fast stream's do (--drift-sample-records); the peers are left out.
    #[arg(long, default_value_t = 1)]
    pub sample_one_in: usize,
    /// Runs of the persistent shift (each with its own reference).
    #[arg(long, default_value_t = 300)]
    pub persistent_runs: usize,
    /// A Python with the peers installed (`scripts/py-env.sh scripts/drift-peers/requirements.txt`);
    /// without it, driftwood runs alone.
    #[arg(long, env = "DRIFTWOOD_PEERS_PYTHON")]
    pub peers_python: Option<PathBuf>,
    /// The peers' script.
    #[arg(long, default_value = "scripts/drift-peers/peers.py")]
    pub peers_script: PathBuf,
    /// A Python with NannyML (`scripts/py-env.sh scripts/estimate-peers/requirements.txt`),
    /// for its CBPE beside driftwood's estimate (`--parts estimate`).
    #[arg(long, env = "DRIFTWOOD_ESTIMATE_PYTHON")]
    pub estimate_python: Option<PathBuf>,
    /// The CBPE script.
    #[arg(long, default_value = "scripts/estimate-peers/cbpe.py")]
    pub estimate_script: PathBuf,
    /// Windows of each simulated scenario of `--parts estimate`.
    #[arg(long, default_value_t = 300)]
    pub estimate_windows: usize,
    /// The peer tools (`peers.py --tools`).
    #[arg(
        long,
        default_value = "evidently,nannyml-univariate,nannyml-pca,alibi-ks,psi"
    )]
    pub peers_tools: String,
    /// Windows of each shift scenario the slow peers see (twice as many without a shift).
    #[arg(long, default_value_t = 40)]
    pub peer_windows: usize,
    /// The fast peers' windows of each shift scenario (twice as many without a shift).
    #[arg(long, default_value_t = 200)]
    pub fast_peer_windows: usize,
    /// The peer tools that take seconds a window (Evidently).
    #[arg(long, default_value = "evidently")]
    pub slow_peers: String,
    /// Runs of the persistent shift the peers see (20 windows each).
    #[arg(long, default_value_t = 5)]
    pub peer_runs: usize,
    /// The nannyml data sets as CSV (`scripts/drift-peers/extract_datasets.py` writes them).
    #[arg(long, default_value = "target/nannyml-data")]
    pub real_data: PathBuf,
    /// Where the results go, one JSON object per line.
    #[arg(long, default_value = "target/bench-drift/results.jsonl")]
    pub output: PathBuf,
    /// Seed of every window. The figures published come from this one, which no test and
    /// no development run used (20261205 served to calibrate the budget's split).
    #[arg(long, default_value_t = 20_261_206)]
    pub seed: u64,
}

/// `driftwood bench-model`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct BenchModelArgs {
    /// An ONNX file, or a model artifact directory [default: the bundled model].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Rows to score: float64 little-endian, row-major, the model's width [default: the
    /// bundled data set, for the bundled model].
    #[arg(long)]
    pub rows: Option<PathBuf>,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,64,1024")]
    pub batches: Vec<usize>,
    /// Time spent measuring each batch size (after a warm-up of a tenth of it).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Time smartcore's own `predict` instead (a forest driftwood trained), for comparison.
    #[arg(long)]
    pub smartcore: bool,
}

/// Settings for `driftwood demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoConfig {
    /// Records to produce.
    #[arg(long, default_value_t = 3000)]
    pub count: usize,
    /// Of which corrupt.
    #[arg(long, default_value_t = 30)]
    pub corrupt: usize,
    /// Records produced afterwards with every feature 20% larger, to show a drift alert.
    #[arg(long, default_value_t = 1000)]
    pub shifted: usize,
    /// Model artifact directory [default: the bundled breast-cancer model].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Where the sidecar listens (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub http_addr: SocketAddr,
    /// Keep serving /metrics after the summary until Ctrl-C.
    #[arg(long)]
    pub keep_running: bool,
}

/// `driftwood models`' arguments.
#[derive(Debug, Clone, Args)]
pub struct ModelsArgs {
    /// The registry's root directory.
    #[arg(
        long,
        env = "DRIFTWOOD_REGISTRY",
        default_value = "models",
        global = true
    )]
    pub registry: PathBuf,
    /// Writer schema of the input the models must read, to check their features against
    /// [default: the bundled schemas/features.avsc].
    #[arg(long, env = "DRIFTWOOD_INPUT_SCHEMA", global = true)]
    pub input_schema: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: ModelsCommand,
}

/// A registry operation.
#[derive(Debug, Clone, Subcommand)]
pub enum ModelsCommand {
    /// Every model, its versions and the one that serves.
    List,
    /// One model's serving version and history, and each version's metadata and whether it
    /// may serve.
    Show {
        /// The model.
        name: String,
    },
    /// Make a version serve (after verifying it); the one it replaces is what `rollback`
    /// returns to.
    Promote {
        /// The model.
        name: String,
        /// The version.
        version: String,
        /// Refuse unless `driftwood models evaluate` passed this version against the version
        /// serving now, neither artifact changed since.
        #[arg(long)]
        require_evaluation: bool,
    },
    /// Score a labelled CSV file with a candidate version and the serving one (or
    /// `--against`), print each one's accuracy, per-class recall and log loss (a regressor's
    /// MAE and RMSE) with the difference and its 95% interval, and keep the verdict in the
    /// registry for `promote --require-evaluation`. Exits 1 when the candidate fails.
    Evaluate {
        /// The model.
        name: String,
        /// The version to evaluate.
        #[arg(long)]
        candidate: String,
        /// The labelled CSV file (a header; feature columns by name, the target column).
        #[arg(long)]
        data: PathBuf,
        /// The target column.
        #[arg(long, default_value = "target")]
        target: String,
        /// Compare with this version instead of the serving one.
        #[arg(long)]
        against: Option<String>,
        /// How much worse the candidate may be and pass, at 95%: accuracy points as a
        /// share (0.01 = one point) for a classifier, a share of the MAE for a regressor.
        #[arg(long, default_value_t = 0.01)]
        tolerance: f64,
    },
    /// Roll a version out beside the serving one, stage by stage: it serves each stage's
    /// share of the record keys (a hash of the key: one key sees one version during a
    /// stage). Every instance following the model (`run --model-name`) serves the split.
    Canary {
        /// The model.
        name: String,
        /// The version to roll out.
        version: String,
        /// The stages.
        #[command(flatten)]
        stages: StageArgs,
        /// Refuse unless `driftwood models evaluate` passed the version against the serving
        /// one.
        #[arg(long)]
        require_evaluation: bool,
        /// Gates, the candidate against the serving version over the same stretch.
        #[command(flatten)]
        gates: GateArgs,
    },
    /// Import the version an MLflow Model Registry URI names (`models:/NAME/VERSION` or
    /// `models:/NAME@ALIAS`; its artifacts must hold `model.onnx` and `reference.csv`),
    /// checked and written as `driftwood import` writes one, once per MLflow version.
    ImportMlflow {
        /// The MLflow model URI.
        uri: String,
        /// The MLflow tracking server.
        #[command(flatten)]
        mlflow: MlflowArgs,
    },
    /// Follow an MLflow alias (`models:/NAME@ALIAS`): each version it moves to is imported
    /// and rolled out beside the serving version as `models canary` does.
    FollowMlflow {
        /// The MLflow model URI, by alias.
        uri: String,
        /// The MLflow tracking server.
        #[command(flatten)]
        mlflow: MlflowArgs,
        /// The stages.
        #[command(flatten)]
        stages: StageArgs,
        /// Gates, the candidate against the serving version over the same stretch.
        #[command(flatten)]
        gates: GateArgs,
        /// Time between two looks at the alias.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
        /// Look once, say what was done, and exit.
        #[arg(long)]
        once: bool,
    },
    /// A model's rollout: its stage and share, or how it ended.
    Status {
        /// The model.
        name: String,
    },
    /// Stop a model's running rollout: the serving version takes every record again.
    Abort {
        /// The model.
        name: String,
    },
    /// Make the version that served before the current one serve again.
    Rollback {
        /// The model.
        name: String,
    },
}

/// A rollout's stages.
#[derive(Debug, Clone, Args)]
pub struct StageArgs {
    /// The candidate's share of the keys at each stage, rising to 100%.
    #[arg(long, default_value = "10%,50%,100%")]
    pub stages: String,
    /// The least time each stage lasts.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub min_time: std::time::Duration,
    /// The fewest records the candidate scores in each stage.
    #[arg(long, default_value_t = 1_000)]
    pub min_records: u64,
}

impl StageArgs {
    /// The stages, or why they are refused.
    pub fn stages(&self) -> crate::error::Result<Vec<crate::model::rollout::Stage>> {
        let (seconds, records) = (self.min_time.as_secs(), self.min_records);
        crate::model::rollout::parse_stages(&self.stages, seconds, records)
            .map_err(|e| crate::error::Error::Config(e.to_string()))
    }
}

/// Where an MLflow model comes from.
#[derive(Debug, Clone, Args)]
pub struct MlflowArgs {
    /// The MLflow tracking server, e.g. `http://mlflow:5000`.
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    pub tracking_uri: String,
    /// driftwood's name for the model [default: MLflow's].
    #[arg(long)]
    pub name: Option<String>,
    /// The target column of the version's `reference.csv`.
    #[arg(long, default_value = "target")]
    pub target: String,
}

/// The gates of each stage of a rollout: a crossed bound rolls the candidate back at once.
#[derive(Debug, Clone, Copy, Args)]
pub struct GateArgs {
    /// How far the candidate's dead-letter share may exceed the serving version's.
    #[arg(long, default_value_t = 0.01)]
    pub max_dead_letter_increase: f64,
    /// How far the candidate's share of drift windows flagged alert may exceed the serving
    /// version's.
    #[arg(long, default_value_t = 0.5)]
    pub max_alert_share_increase: f64,
    /// The largest total variation distance between the two versions' prediction mixes.
    #[arg(long, default_value_t = 0.1)]
    pub max_mix_shift: f64,
    /// How far the candidate's mean accuracy (realized, else expected without labels) may
    /// fall below the serving version's.
    #[arg(long, default_value_t = 0.02)]
    pub max_accuracy_drop: f64,
    /// How many times the serving version's scoring time a record the candidate may take
    /// [default: not gated].
    #[arg(long)]
    pub max_latency_ratio: Option<f64>,
    /// The least share of records scored by both versions (a tenth of the serving version's,
    /// scored by the candidate as well) on which they predict the same class [default: not
    /// gated].
    #[arg(long)]
    pub min_agreement: Option<f64>,
}

impl From<GateArgs> for crate::model::rollout::Gates {
    fn from(g: GateArgs) -> Self {
        crate::model::rollout::Gates {
            dead_letter_increase: g.max_dead_letter_increase,
            alert_share_increase: g.max_alert_share_increase,
            mix_shift: g.max_mix_shift,
            accuracy_drop: g.max_accuracy_drop,
            latency_ratio: g.max_latency_ratio,
            min_agreement: g.min_agreement,
        }
    }
}

/// Settings for `driftwood produce`.
#[derive(Debug, Clone, Args)]
pub struct ProduceConfig {
    /// Kafka bootstrap servers. Falls back to KAFKA_BOOTSTRAP_SERVERS, then localhost:9092.
    #[arg(long, env = "DRIFTWOOD_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: Option<String>,
    /// Topic to write to.
    #[arg(long, default_value = "features")]
    pub topic: String,
    /// Records to emit, corrupt ones included.
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Records per second (0: as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Multiply every feature by 1+F (simulated drift).
    #[arg(long, default_value_t = 0.0)]
    pub shift: f64,
    /// Shift only these features (comma-separated names) [default: every feature].
    #[arg(long, value_delimiter = ',')]
    pub shift_features: Vec<String>,
    /// How many of the records are corrupt (undecodable), spread evenly.
    #[arg(long, default_value_t = 0)]
    pub corrupt: usize,
    /// Framing.
    #[arg(long, value_enum, default_value = "avro")]
    pub format: InputFormat,
    /// With `--format confluent`: register the bundled schema under `<topic>-value` in this
    /// Confluent-compatible schema registry and frame records with its id (else id 1).
    #[arg(long, env = "DRIFTWOOD_SCHEMA_REGISTRY_URL", hide_env_values = true)]
    pub schema_registry_url: Option<String>,
    /// librdkafka property KEY=VALUE (repeatable).
    #[arg(long = "kafka-option", value_parser = parse_key_value)]
    pub kafka_options: Vec<(String, String)>,
    /// The first record's id; ids count up from it.
    #[arg(long, default_value_t = 0)]
    pub first_id: usize,
    /// Write each record's label to this topic instead of in the record (Avro `GroundTruth`,
    /// keyed like the record), once every record was acknowledged.
    #[arg(long)]
    pub labels_topic: Option<String>,
}
impl ProduceConfig {
    /// Defaults for `count` records to `topic`.
    pub fn new(bootstrap_servers: &str, topic: &str, count: usize) -> Self {
        ProduceConfig {
            bootstrap_servers: Some(bootstrap_servers.into()),
            topic: topic.into(),
            count,
            rate: 0.0,
            shift: 0.0,
            shift_features: Vec::new(),
            corrupt: 0,
            format: InputFormat::Avro,
            schema_registry_url: None,
            kafka_options: Vec::new(),
            first_id: 0,
            labels_topic: None,
        }
    }
}

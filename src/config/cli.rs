//! `driftwood`'s command line as a whole: the global flags and the subcommands, each with
//! its own flags (defined beside the settings they become). `main.rs` parses it; the docs'
//! commands are checked against it (`tests/doc_commands.rs`).

use clap::{Parser, Subcommand, ValueEnum};

use super::tools::{DemoConfig, ProduceConfig};
use super::{ImportArgs, RunConfig, TrainArgs};

/// The command line.
#[derive(Parser)]
#[command(
    name = "driftwood",
    version,
    about = "Score Avro feature streams from Kafka with tree models (forests, boosted trees)"
)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "DRIFTWOOD_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax, e.g. `info,driftwood=debug`) [default: info;
    /// warn for the demo, whose summary is its output].
    #[arg(long, global = true, env = "DRIFTWOOD_LOG")]
    pub log: Option<String>,
    /// Export spans to this OpenTelemetry collector's OTLP/HTTP receiver (e.g.
    /// http://localhost:4318); off when unset. Records that carry a W3C `traceparent` make a
    /// `score` span each, a child of the producer's.
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Text, coloured at a terminal.
    Text,
    /// One JSON object a line.
    Json,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Consume feature records, score them, publish predictions and dead letters.
    Run(Box<RunConfig>),
    /// Run the whole pipeline on an in-process mock Kafka cluster and print a summary.
    Demo(DemoConfig),
    /// Emit feature records from the bundled dataset (load and demo generator).
    Produce(ProduceConfig),
    /// Train a random forest and write a versioned model artifact.
    Train(TrainArgs),
    /// Import a tree model from ONNX (scikit-learn, XGBoost, LightGBM) as a model artifact.
    Import(ImportArgs),
    /// Write a forest driftwood trained as ONNX, for other runtimes.
    Export(ExportArgs),
    /// The model registry: list, show, promote and roll back versions.
    Models(super::tools::ModelsArgs),
    /// Measure pass-through ceiling, pipeline throughput, latency and memory on a broker.
    Bench(super::tools::BenchConfig),
    /// Measure how fast a model scores (ns/row at batch sizes, one thread, no Kafka).
    BenchModel(super::tools::BenchModelArgs),
    /// Measure the drift tests: false-alarm rates, power, detection delay, and the peers on
    /// the same windows (no Kafka).
    BenchDrift(super::tools::BenchDriftArgs),
    /// Exit 0 if a running instance's sidecar answers 200 (for Docker's HEALTHCHECK, which has
    /// no HTTP client in a slim image; Kubernetes probes the endpoints itself).
    Healthcheck(HealthcheckArgs),
}

/// `driftwood export`'s arguments.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The model artifact directory [default: the bundled model].
    #[arg(long)]
    pub model: Option<std::path::PathBuf>,
    /// Where to write the ONNX file.
    #[arg(long)]
    pub output: std::path::PathBuf,
}

/// `driftwood healthcheck`'s arguments.
#[derive(clap::Args)]
pub struct HealthcheckArgs {
    /// The instance's sidecar address; an unspecified IP (0.0.0.0) means this host.
    #[arg(long, env = "DRIFTWOOD_HTTP_ADDR", default_value = "127.0.0.1:9090")]
    pub http_addr: std::net::SocketAddr,
    /// `/ready` (connected to the broker, input topic present) or `/health` (alive).
    #[arg(long, default_value = "/ready")]
    pub path: String,
}

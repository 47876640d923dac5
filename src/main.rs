//! The `driftwood` command line; all logic lives in the library.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use driftwood::config::RunConfig;
use driftwood::model::train::{self, TrainArgs};
use driftwood::tools::demo::DemoConfig;
use driftwood::tools::produce::{ProduceConfig, produce};

#[derive(Parser)]
#[command(
    name = "driftwood",
    about = "Score Avro feature streams from Kafka with a random forest"
)]
struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "DRIFTWOOD_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax, e.g. `info,driftwood=debug`) [default: info;
    /// warn for the demo, whose summary is its output].
    #[arg(long, global = true, env = "DRIFTWOOD_LOG")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Consume feature records, score them, publish predictions and dead letters.
    Run(Box<RunConfig>),
    /// Run the whole pipeline on an in-process mock Kafka cluster and print a summary.
    Demo(DemoConfig),
    /// Emit feature records from the bundled dataset (load and demo generator).
    Produce(ProduceConfig),
    /// Train a random forest and write a versioned model artifact.
    Train(TrainArgs),
    /// Measure pass-through ceiling, pipeline throughput, latency and memory on a broker.
    Bench(driftwood::tools::bench::BenchConfig),
    /// Exit 0 if a running instance's sidecar answers 200 (for Docker's HEALTHCHECK, which has
    /// no HTTP client in a slim image; Kubernetes probes the endpoints itself).
    Healthcheck(HealthcheckArgs),
}

#[derive(clap::Args)]
struct HealthcheckArgs {
    /// The instance's sidecar address; an unspecified IP (0.0.0.0) means this host.
    #[arg(long, env = "DRIFTWOOD_HTTP_ADDR", default_value = "127.0.0.1:9090")]
    http_addr: std::net::SocketAddr,
    /// `/ready` (connected to the broker, input topic present) or `/health` (alive).
    #[arg(long, default_value = "/ready")]
    path: String,
}

fn init_logging(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("invalid log filter {filter:?}"))?;
    use std::io::IsTerminal;
    // Colours for a person at a terminal, plain text for files and log collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// Parses the command line; `--version` also names the librdkafka linked in, which decides
/// the Kafka features a deployment can use.
fn parse_cli() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    let version = format!("{} (librdkafka {librdkafka})", env!("CARGO_PKG_VERSION"));
    // Once per process: clap keeps the version for the whole run.
    let version: &'static str = Box::leak(version.into_boxed_str());
    let matches = Cli::command().version(version).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Runs the command; an error prints its chain of causes, and its backtrace only when the log
/// filter asks for debug output (some machines set RUST_BACKTRACE=1 for every program).
fn main() -> std::process::ExitCode {
    let cli = parse_cli();
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            if tracing::enabled!(tracing::Level::DEBUG) {
                eprintln!("\n{}", error.backtrace());
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let quiet = matches!(cli.command, Command::Demo(_));
    let filter = cli
        .log
        .as_deref()
        .unwrap_or(if quiet { "warn" } else { "info" });
    init_logging(cli.log_format, filter)?;
    match cli.command {
        Command::Run(config) if config.check_config => {
            println!("{}", driftwood::service::check(&config)?);
        }
        Command::Run(config) => {
            driftwood::service::run(*config, driftwood::ops::shutdown::signal())
                .await
                .context("driftwood run failed")?
        }
        Command::Healthcheck(args) => {
            let (path, status) = driftwood::ops::sidecar::healthcheck(args.http_addr, &args.path)?;
            println!("{path} {status}");
        }
        Command::Demo(config) => {
            driftwood::tools::demo::run(config)
                .await
                .context("demo failed")?;
        }
        Command::Produce(config) => {
            let produced = tokio::task::spawn_blocking(move || produce(&config)).await??;
            println!(
                "produced {} records ({} corrupt) in {:.2?}",
                produced.records, produced.corrupt, produced.elapsed
            );
        }
        Command::Bench(config) => {
            tokio::task::spawn_blocking(move || driftwood::tools::bench::run(&config))
                .await?
                .context("bench failed")?;
        }
        Command::Train(args) => {
            let outcome = train::run(args)?;
            let m = &outcome.metadata;
            println!(
                "wrote {} ({} trees, holdout accuracy {:.4} on {} rows, sha256 {})",
                outcome.dir.display(),
                m.training.hyperparameters.n_trees,
                m.holdout_accuracy,
                m.training.test_rows,
                m.model_sha256
            );
        }
    }
    Ok(())
}

//! The `driftwood` command line; all logic lives in the library.

use anyhow::Context;
use driftwood::config::cli::{Cli, Command, LogFormat};
use driftwood::model::train;
use driftwood::obs::telemetry::OtlpExport;
use driftwood::tools::produce::{produce, produce_labels};

/// mimalloc, for Rust and (through its `override` feature) for librdkafka's C code too. The
/// consumer loop frees the messages librdkafka's fetch thread allocated; glibc's malloc makes
/// that free wait on the other thread's arena lock, and the loop spent up to half its time
/// asleep on it (see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Logs to stderr through `filter`; spans to a collector as well when `export` is given
/// (its own filter: driftwood's spans, whatever the log level).
fn init_logging(
    format: LogFormat,
    filter: &str,
    export: Option<&OtlpExport>,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("invalid log filter {filter:?}"))?;
    // Colours for a person at a terminal, plain text for files and log collectors.
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(export.map(OtlpExport::layer))
        .init();
    Ok(())
}

/// The span exporter, when `--otlp-endpoint` asks for one; set up before the tokio runtime
/// because its HTTP client is a blocking one that must not be built or dropped inside it.
fn otlp_export(cli: &Cli) -> anyhow::Result<Option<OtlpExport>> {
    let Some(endpoint) = cli.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) else {
        return Ok(None);
    };
    let instance = match &cli.command {
        Command::Run(config) => Some(config.instance()),
        _ => None,
    };
    Ok(Some(OtlpExport::new(endpoint, instance.as_deref())?))
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
    match start_and_dispatch(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", report(&error));
            if tracing::enabled!(tracing::Level::DEBUG) {
                eprintln!("\n{}", error.backtrace());
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line. The library's errors name their cause in their own
/// message as well, for logs that show one level; a cause already said is not said twice.
fn report(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn start_and_dispatch(cli: Cli) -> anyhow::Result<()> {
    let quiet = matches!(cli.command, Command::Demo(_));
    let filter = cli
        .log
        .as_deref()
        .unwrap_or(if quiet { "warn" } else { "info" })
        .to_owned();
    let export = otlp_export(&cli)?;
    init_logging(cli.log_format, &filter, export.as_ref())?;
    if let Some(export) = &export {
        tracing::info!(endpoint = export.endpoint(), "exporting spans over OTLP");
    }
    let runtime = tokio::runtime::Runtime::new().context("the tokio runtime did not start")?;
    let outcome = runtime.block_on(dispatch(cli));
    // The runtime goes first: the exporter's flush must not run inside it.
    drop(runtime);
    drop(export);
    outcome
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(config) if config.check_config => {
            println!("{}", driftwood::service::check(&config)?);
        }
        Command::Run(config) => {
            driftwood::service::run(*config, driftwood::obs::shutdown::signal())
                .await
                .context("driftwood run failed")?
        }
        Command::Healthcheck(args) => {
            let (path, status) = driftwood::http::sidecar::healthcheck(args.http_addr, &args.path)?;
            println!("{path} {status}");
        }
        Command::Demo(config) => {
            driftwood::tools::demo::run(config)
                .await
                .context("demo failed")?;
        }
        Command::Produce(config) => {
            let (produced, labels) = tokio::task::spawn_blocking(move || {
                let produced = produce(&config)?;
                Ok::<_, driftwood::Error>((produced, produce_labels(&config)?))
            })
            .await??;
            println!(
                "produced {} records ({} corrupt) in {:.2?}",
                produced.records, produced.corrupt, produced.elapsed
            );
            if labels > 0 {
                println!("then their {labels} labels");
            }
        }
        Command::Bench(config) => {
            tokio::task::spawn_blocking(move || driftwood::tools::bench::run(&config))
                .await?
                .context("bench failed")?;
        }
        Command::Export(args) => {
            let model = driftwood::model::Model::open(args.model.as_deref())?;
            let bytes = driftwood::model::onnx::export::forest(model.engine.ensemble())
                .context("only forests driftwood trained can be exported (an imported model is ONNX already)")?;
            std::fs::write(&args.output, &bytes)
                .with_context(|| format!("writing {}", args.output.display()))?;
            println!("wrote {} ({} bytes)", args.output.display(), bytes.len());
        }
        Command::Import(args) => {
            println!("{}", imported(driftwood::model::import::run(&args.into())?))
        }
        Command::Models(args) => {
            // Off the runtime: the registry commands block (files, MLflow's REST API).
            let report =
                tokio::task::spawn_blocking(move || driftwood::tools::models::run(&args)).await??;
            print!("{}", report.text);
            if let Some(failure) = report.failure {
                return Err(failure.into());
            }
        }
        Command::BenchDrift(args) => driftwood::tools::bench_drift::run(&args)?,
        Command::BenchModel(args) => {
            let (description, results) = driftwood::tools::bench_model::run(&args)?;
            println!("{description}");
            for r in &results {
                println!("batch {:5}: {:10.1} ns/row", r.batch, r.ns_per_row);
            }
            eprintln!("{}", serde_json::to_string(&results)?);
        }
        Command::Train(args) => println!("{}", trained(train::run(args.request())?)),
    }
    Ok(())
}

/// What `driftwood import` says it wrote.
fn imported(outcome: driftwood::model::import::ImportOutcome) -> String {
    let m = &outcome.metadata;
    format!(
        "wrote {} ({}, {} features, {} on the {} reference rows, sha256 {})\n{}",
        outcome.dir.display(),
        m.algorithm,
        m.features.len(),
        m.outputs_and_fit(),
        m.imported.as_ref().map_or(0, |i| i.reference_rows),
        m.model_sha256,
        serving_note(&outcome.promoted, m)
    )
}

/// What `driftwood train` says it wrote.
fn trained(outcome: train::TrainOutcome) -> String {
    let m = &outcome.metadata;
    let training = m
        .training
        .as_ref()
        .expect("a trained model records its training");
    format!(
        "wrote {} ({} trees, {} on {} held-out rows, sha256 {})\n{}",
        outcome.dir.display(),
        training.hyperparameters.n_trees,
        m.outputs_and_fit(),
        training.test_rows,
        m.model_sha256,
        serving_note(&outcome.promoted, m)
    )
}

/// Whether a model just written serves: its first version does; a later one waits.
fn serving_note(
    promoted: &Option<driftwood::model::registry::Change>,
    m: &driftwood::model::ModelMetadata,
) -> String {
    match promoted {
        Some(change) => format!("promoted, as the model's first version: {change}"),
        None => format!(
            "not serving yet: `driftwood models promote {} {}` makes it serve",
            m.name, m.version
        ),
    }
}

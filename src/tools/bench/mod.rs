//! `driftwood bench`: measures, in one run against a real broker, event-to-output latency at
//! several offered rates through the pipeline, through the pass-through relay and through
//! the broker alone (so the broker's share can be told from driftwood's), then the
//! pass-through ceiling (consume and produce the same bytes) and the full pipeline on the
//! same input. Each measurement runs the real `driftwood run` binary as a child process:
//! throughput comes from its `/metrics`, peak memory and CPU time from its `/proc/<pid>`.

mod cgroup;
mod drift_cost;
mod generator;
mod input;
mod instance;
mod latency;
mod proc;
mod scaling;
mod table;
mod throughput;

use rdkafka::ClientConfig;
use serde::Serialize;

use crate::config::bootstrap_servers;
use crate::config::tools::BenchConfig;
use crate::config::tools::ProduceConfig;
use crate::error::{Error, Result};
use crate::tools::produce::produce;
use drift_cost::median;
pub use drift_cost::{DriftCost, DriftPair};
use generator::{GeneratorTopics, generator_runs, median_rate, median_run};
use input::StockInput;
use instance::{Instance, RunTopics};
pub use latency::{Latency, Relay};
use latency::{LatencySpec, latency_run, least_stolen};
pub use scaling::Scaled;
use scaling::{ScalingSpec, scaling_runs};
pub use throughput::Throughput;
use throughput::{Start, measure};

/// Everything `driftwood bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Records produced for the throughput runs.
    pub records: usize,
    /// Partitions of the topics.
    pub partitions: i32,
    /// Producing the input, records per second.
    pub produce_records_per_second: f64,
    /// Consume and produce the same bytes, no decode or scoring: the run of the median rate
    /// of `pass_through_rounds`.
    pub pass_through: Throughput,
    /// Decode, score, encode, produce: the run of the median rate of `pipeline_rounds`.
    pub pipeline: Throughput,
    /// The median of the pipeline's rates over the median of the pass-through's.
    pub pipeline_to_ceiling: f64,
    /// The pass-through runs, in the order they ran (`--throughput-rounds` of them), each
    /// round in the reverse order of the round before.
    pub pass_through_rounds: Vec<Throughput>,
    /// The pipeline runs, in the order they ran.
    pub pipeline_rounds: Vec<Throughput>,
    /// What drift windows add to the pipeline's CPU per record.
    pub drift: DriftCost,
    /// The pipeline with `--processing-guarantee exactly-once`.
    pub exactly_once: Throughput,
    /// `exactly_once / pipeline` records per second.
    pub exactly_once_to_pipeline: f64,
    /// Exactly-once with a transaction per batch (`--transaction-interval 0s`).
    pub exactly_once_per_batch: Throughput,
    /// The pipeline following the registry's `breast-cancer` pointer (`--model-name`), which
    /// does not move during the run.
    pub following_pointer: Option<Throughput>,
    /// `following_pointer / pipeline` records per second.
    pub following_pointer_to_pipeline: Option<f64>,
    /// The same input written by stock clients (small batches, no compression): rounds of a
    /// pass-through, a pipeline and a pipeline without drift run, each round in the reverse
    /// order of the round before.
    pub stock_input: StockRuns,
    /// 1, 2, 3… instances in one group on `scaling_partitions` partitions.
    pub scaling: Vec<Scaled>,
    /// Partitions of the scaling runs' topics.
    pub scaling_partitions: i32,
    /// Warm-up excluded from each latency run, seconds.
    pub latency_warmup_seconds: f64,
    /// Every latency run: each offered rate through each relay.
    pub latency: Vec<Latency>,
    /// CPU model and count, for reading the figures.
    pub machine: String,
}

/// The throughput runs on stock-client input.
#[derive(Debug, Clone, Serialize)]
pub struct StockRuns {
    /// Producers that wrote it.
    pub producers: usize,
    /// Rounds of runs: each kind ran this many times.
    pub rounds: usize,
    /// Records per second they were asked for, together.
    pub offered_rate: f64,
    /// Records per second they achieved.
    pub produce_records_per_second: f64,
    /// The pass-through runs, in the order they ran.
    pub pass_through: Vec<Throughput>,
    /// The pipeline runs, in the order they ran.
    pub pipeline: Vec<Throughput>,
    /// The pipeline runs with `--no-drift`, in the order they ran: what drift windows cost
    /// on this input.
    pub pipeline_without_drift: Vec<Throughput>,
    /// Median pipeline over median pass-through records per second.
    pub pipeline_to_ceiling: f64,
    /// Median pipeline without drift over median pass-through records per second.
    pub without_drift_to_ceiling: f64,
}

/// What a throughput run runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunKind {
    PassThrough,
    Pipeline,
    WithoutDrift,
}

/// The kinds of run on stock-client input, in a first round's order.
const STOCK_KINDS: [RunKind; 3] = [
    RunKind::PassThrough,
    RunKind::Pipeline,
    RunKind::WithoutDrift,
];

/// The order of `rounds` rounds of `kinds`: in the order given, then the reverse, and so on,
/// so that a slow stretch of the machine falls on every kind alike rather than on one.
fn alternating(kinds: &[RunKind], rounds: usize) -> Vec<RunKind> {
    (0..rounds)
        .flat_map(|round| {
            let mut order = kinds.to_vec();
            if round % 2 == 1 {
                order.reverse();
            }
            order
        })
        .collect()
}

/// Runs the benchmark, prints a table and writes JSON. The topics it wrote (several
/// gigabytes at the defaults) are deleted when it ends, unless `--keep-topics`.
pub fn run(config: &BenchConfig) -> Result<BenchReport> {
    let brokers = bootstrap_servers(config.bootstrap_servers.as_deref());
    let prefix = format!("bench-{:08x}-", rand::random::<u32>());
    let measured = measure_all(config, &brokers, &prefix);
    if config.keep_topics {
        eprintln!("kept the topics {prefix}*");
    } else {
        remove_topics(&brokers, &prefix);
    }
    let report = measured?;
    table::print(&report);
    let json = serde_json::to_string_pretty(&report).expect("report serializes");
    std::fs::write(&config.json, json + "\n").map_err(|e| Error::io(&config.json, e))?;
    eprintln!("wrote {}", config.json.display());
    Ok(report)
}

/// Deletes the topics named with `prefix`, saying how it went (a failure leaves them for
/// the broker's retention and says so; it does not fail the run).
fn remove_topics(brokers: &str, prefix: &str) {
    let client = admin_client(brokers);
    let deleted = block_on(crate::kafka::admin::delete_with_prefix(&client, prefix))
        .and_then(|deleted| deleted);
    match deleted {
        Ok(n) => eprintln!("deleted the {n} topics the bench wrote ({prefix}*)"),
        Err(e) => eprintln!("could not delete the bench's topics {prefix}*: {e}"),
    }
}

/// Every measurement, on topics named with `prefix`.
fn measure_all(config: &BenchConfig, brokers: &str, prefix: &str) -> Result<BenchReport> {
    let name = |what: &str| format!("{prefix}{what}");
    let topics = |output: &str, group: &str| RunTopics {
        input: name("in"),
        output: name(output),
        dlq: name("dlq"),
        drift: name("drift"),
        group: name(group),
    };
    let (pass, full) = (topics("pass", "g-pass"), topics("out", "g-full"));
    let exact = topics("out-eos", "g-eos");
    let per_batch = topics("out-eos-batch", "g-eos-batch");
    let follow = topics("out-follow", "g-follow");
    create_topics(
        brokers,
        &[
            &pass.input,
            &pass.output,
            &full.output,
            &exact.output,
            &per_batch.output,
            &follow.output,
            &pass.dlq,
            &pass.drift,
        ],
        config.partitions,
    )?;

    // Latency first: the throughput runs write about a gigabyte, and the broker and the page
    // cache are still busy with it for a while (a p99 measured right after was 4 ms worse).
    let latency = latency_runs(config, brokers, &name, &pass)?;
    eprintln!("producing {} records…", config.records);
    let produced = produce(&ProduceConfig::new(brokers, &pass.input, config.records))?;
    let produce_rate = produced.records as f64 / produced.elapsed.as_secs_f64();
    let runs = GeneratorTopics {
        pass: &pass,
        full: &full,
        exact: &exact,
        per_batch: &per_batch,
    };
    let generator = generator_runs(config, brokers, runs)?;
    let (pass_through, pipeline) = (
        median_run(&generator.pass_through),
        median_run(&generator.pipeline),
    );
    let (exactly_once, exactly_once_per_batch) =
        (generator.exactly_once, generator.exactly_once_per_batch);
    let drift = drift_cost::measure(config, brokers, &name, &full)?;
    let following_pointer = following_pointer_run(config, brokers, &follow)?;
    let following_pointer_to_pipeline =
        (following_pointer.as_ref()).map(|f| f.records_per_second / pipeline.records_per_second);
    let stock_input = stock_runs(config, brokers, &name)?;
    let scaling = scaling(config, brokers, &name)?;

    let report = BenchReport {
        records: config.records,
        partitions: config.partitions,
        produce_records_per_second: produce_rate,
        pipeline_to_ceiling: median_rate(&generator.pipeline)
            / median_rate(&generator.pass_through),
        pass_through_rounds: generator.pass_through,
        pipeline_rounds: generator.pipeline,
        drift,
        exactly_once_to_pipeline: exactly_once.records_per_second / pipeline.records_per_second,
        pass_through,
        pipeline,
        exactly_once,
        exactly_once_per_batch,
        following_pointer_to_pipeline,
        following_pointer,
        stock_input,
        scaling,
        scaling_partitions: config.scaling_partitions,
        latency_warmup_seconds: config.latency_warmup.as_secs_f64(),
        latency,
        machine: proc::machine(),
    };
    Ok(report)
}

/// The pipeline again, serving the registry's `breast-cancer` at the version its pointer
/// names and following the pointer, when the registry has one and no `--model` was given.
fn following_pointer_run(
    config: &BenchConfig,
    brokers: &str,
    topics: &RunTopics,
) -> Result<Option<Throughput>> {
    let registry = crate::model::registry::Registry::new(&config.registry);
    if config.model.is_some() || registry.pointer("breast-cancer")?.is_none() {
        eprintln!("no run following a pointer (needs the registry's breast-cancer pointer)");
        return Ok(None);
    }
    let dir = config.registry.to_string_lossy();
    let flags = ["--model-name", "breast-cancer", "--registry", &dir];
    eprintln!("full pipeline following a registry pointer…");
    throughput_run(config, brokers, topics, &flags).map(Some)
}

/// Every latency run: each offered rate through each relay, on fresh topics and group each,
/// `--latency-repeats` times, each round in the reverse order of the round before. First, two
/// runs that are not measured, one exactly-once and one at-least-once: on a fresh broker the
/// first run of each kind read hundreds of milliseconds slower (p50 475 ms, p99 1,283 ms
/// through the pipeline at 10k/s, against 3 and 13 in the next round, for a fresh instance
/// each time): the broker sets up what each kind of producer and commit uses on first use.
/// Then a pipeline run at each further rate: a bench's first run at a new rate read p99 39
/// to 576 ms at 10k/s, 10 to 19 with a warm-up at that rate (docs/performance.md, runs 8-12).
fn latency_runs(
    config: &BenchConfig,
    brokers: &str,
    name: &dyn Fn(&str) -> String,
    shared: &RunTopics,
) -> Result<Vec<Latency>> {
    let rates: Vec<f64> = config
        .latency_rates
        .iter()
        .copied()
        .filter(|r| *r > 0.0)
        .collect();
    let Some(&first) = rates.first() else {
        return Ok(Vec::new());
    };
    let warm_ups = std::iter::once((Relay::PipelineExactlyOnce, first))
        .chain(rates.iter().map(|&rate| (Relay::Pipeline, rate)));
    for (relay, rate) in warm_ups {
        eprintln!("warming up: {relay:?} at {rate} records/s, not measured…");
        latency_once(config, brokers, name, shared, (usize::MAX, 0, rate, relay))?;
    }
    let mut latency = Vec::new();
    for round in 0..config.latency_repeats {
        let mut relays = Relay::ALL;
        if round % 2 == 1 {
            relays.reverse();
        }
        for &rate in &rates {
            for relay in relays {
                eprintln!(
                    "latency round {} at {rate} records/s for {:?} through {relay:?}…",
                    round + 1,
                    config.latency_duration
                );
                latency.push(least_stolen(config.latency_max_steal, |attempt| {
                    let run = (round, attempt, rate, relay);
                    latency_once(config, brokers, name, shared, run)
                })?);
            }
        }
    }
    Ok(latency)
}

/// One latency run on fresh topics and group.
fn latency_once(
    config: &BenchConfig,
    brokers: &str,
    name: &dyn Fn(&str) -> String,
    shared: &RunTopics,
    (round, attempt, rate, relay): (usize, usize, f64, Relay),
) -> Result<Latency> {
    let run = |what: &str| name(&format!("lat-{round}-{attempt}-{rate}-{relay:?}-{what}"));
    let topics = RunTopics {
        input: run("in"),
        output: run("out"),
        dlq: shared.dlq.clone(),
        drift: shared.drift.clone(),
        group: run("group"),
    };
    create_topics(brokers, &[&topics.input, &topics.output], config.partitions)?;
    let spec = LatencySpec {
        brokers,
        model: config.model.as_deref(),
        executable: config.executable.as_deref(),
        rate,
        warmup: config.latency_warmup,
        duration: config.latency_duration,
        partitions: config.partitions,
        round,
    };
    latency_run(&spec, &topics, relay)
}

/// Runs one instance over the throughput input until it has handled every record.
fn throughput_run(
    config: &BenchConfig,
    brokers: &str,
    topics: &RunTopics,
    extra: &[&str],
) -> Result<Throughput> {
    let binary = (config.model.as_deref(), config.executable.as_deref());
    let instance = Instance::start(brokers, binary, topics, extra)?;
    let broker = proc::local_broker(brokers);
    measure(
        &mut [instance],
        config.records as u64,
        broker,
        Start::FirstRecord,
    )
}

/// The same number of records written by stock clients, through pass-through, the pipeline
/// and the pipeline without drift, `--stock-rounds` times each ([`alternating`]).
fn stock_runs(
    config: &BenchConfig,
    brokers: &str,
    name: &dyn Fn(&str) -> String,
) -> Result<StockRuns> {
    let input = StockInput {
        producers: config.stock_producers,
        rate: config.stock_rate,
    };
    let topic = name("stock-in");
    create_topics(brokers, &[&topic], config.partitions)?;
    eprintln!(
        "producing {} records as {} stock clients at {} records/s…",
        config.records, input.producers, input.rate
    );
    let produced = input::write_stock(brokers, &topic, config.records, input)?;
    let (mut pass_through, mut pipeline, mut without_drift) = (Vec::new(), Vec::new(), Vec::new());
    use RunKind::{PassThrough, Pipeline, WithoutDrift};
    for (k, kind) in (alternating(&STOCK_KINDS, config.stock_rounds).into_iter()).enumerate() {
        let topics = RunTopics {
            input: topic.clone(),
            output: name(&format!("stock-out-{k}")),
            dlq: name("dlq"),
            drift: name("drift"),
            group: name(&format!("g-stock-{k}")),
        };
        create_topics(brokers, &[&topics.output], config.partitions)?;
        let (what, flags, runs): (_, &[&str], _) = match kind {
            PassThrough => ("pass-through", &["--pass-through"], &mut pass_through),
            Pipeline => ("pipeline", &[], &mut pipeline),
            WithoutDrift => (
                "pipeline without drift",
                &["--no-drift"],
                &mut without_drift,
            ),
        };
        eprintln!("stock-client input, {what}…");
        runs.push(throughput_run(config, brokers, &topics, flags)?);
    }
    let rates =
        |runs: &[Throughput]| -> Vec<f64> { runs.iter().map(|t| t.records_per_second).collect() };
    Ok(StockRuns {
        producers: input.producers,
        rounds: config.stock_rounds,
        offered_rate: input.rate,
        produce_records_per_second: produced,
        pipeline_to_ceiling: median(rates(&pipeline)) / median(rates(&pass_through)),
        without_drift_to_ceiling: median(rates(&without_drift)) / median(rates(&pass_through)),
        pass_through,
        pipeline,
        pipeline_without_drift: without_drift,
    })
}

/// The scaling runs: three times `--records`, written by the stock producers as fast as they
/// go, on `--scaling-partitions` partitions, read by each count of `--scaling-instances` in a
/// group of its own. The first instance to join starts on every partition before the others
/// are up, so the measurement starts once the group has settled, and the input is large
/// enough that most of it is left by then.
fn scaling(
    config: &BenchConfig,
    brokers: &str,
    name: &dyn Fn(&str) -> String,
) -> Result<Vec<Scaled>> {
    if config.scaling_instances.iter().all(|n| *n == 0) {
        return Ok(Vec::new());
    }
    let (input, output) = (name("scale-in"), name("scale-out"));
    create_topics(brokers, &[&input, &output], config.scaling_partitions)?;
    let records = 3 * config.records;
    let stock = StockInput {
        producers: config.stock_producers,
        rate: 0.0,
    };
    eprintln!("producing {records} records for the scaling runs…");
    input::write_stock(brokers, &input, records, stock)?;
    let spec = ScalingSpec {
        brokers,
        binary: (config.model.as_deref(), config.executable.as_deref()),
        records: records as u64,
        partitions: config.scaling_partitions,
        broker: proc::local_broker(brokers),
        cpu_limit: config.scaling_cpu_limit,
    };
    let topics = |run: usize| RunTopics {
        input: input.clone(),
        output: output.clone(),
        dlq: name("dlq"),
        drift: name("drift"),
        group: name(&format!("g-scale-{run}")),
    };
    scaling_runs(&spec, &config.scaling_instances, &topics)
}

fn create_topics(brokers: &str, topics: &[&String], partitions: i32) -> Result<()> {
    let client = admin_client(brokers);
    let topics: Vec<&str> = topics.iter().map(|t| t.as_str()).collect();
    block_on(crate::kafka::admin::create_missing(
        &client, &topics, partitions, 1,
    ))?
}

/// The admin client's settings for `brokers`.
fn admin_client(brokers: &str) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", brokers);
    client
}

/// Runs an admin call to completion on a runtime of its own (the bench is synchronous).
fn block_on<F: std::future::Future>(call: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::start("a tokio runtime"))?;
    Ok(runtime.block_on(call))
}

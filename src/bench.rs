//! `driftwood bench`: measures, in one run against a real broker, the pass-through ceiling
//! (consume and produce the same bytes), the full pipeline on the same input, event-to-output
//! latency at a fixed offered rate (through the pipeline, through the pass-through relay, and
//! through the broker alone, so the broker's share can be told from driftwood's), and the
//! pipeline's peak memory. Each measurement runs the
//! real `driftwood run` binary as a child process; throughput is read from its `/metrics`,
//! memory from its `/proc/<pid>/status` (VmHWM).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::Serialize;

use crate::encode::{AvroCodec, PredictionRecord};
use crate::error::{Error, Result};
use crate::produce::{ProduceConfig, produce};

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
    /// Offered rate (records/s) of the latency run.
    #[arg(long, default_value_t = 10_000.0)]
    pub latency_rate: f64,
    /// Duration of the latency run (after the warm-up).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub latency_duration: Duration,
    /// Records of the first part of the latency run are delivered but not measured, so that
    /// connection set-up and first fetches do not count.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub latency_warmup: Duration,
    /// Model artifact directory.
    #[arg(long, default_value = "models/breast-cancer/1")]
    pub model: PathBuf,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "bench.json")]
    pub json: PathBuf,
}

/// One throughput measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Records handled.
    pub records: u64,
    /// Seconds from the first handled record to the last.
    pub seconds: f64,
    /// Records per second.
    pub records_per_second: f64,
    /// Peak resident memory of the `driftwood run` process, bytes.
    pub peak_rss_bytes: u64,
}

/// Everything `driftwood bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Records produced for the throughput runs.
    pub records: usize,
    /// Partitions of the topics.
    pub partitions: i32,
    /// Producing the input, records per second.
    pub produce_records_per_second: f64,
    /// Consume and produce the same bytes, no decode or scoring.
    pub pass_through: Throughput,
    /// Decode, score, encode, produce.
    pub pipeline: Throughput,
    /// `pipeline / pass_through`.
    pub pipeline_to_ceiling: f64,
    /// Offered rate of the latency run, records per second.
    pub latency_offered_rate: f64,
    /// Predictions whose latency was measured (after the warm-up).
    pub latency_samples: usize,
    /// Warm-up excluded from the latency figures, seconds.
    pub latency_warmup_seconds: f64,
    /// Median event-to-output latency, ms.
    pub latency_p50_ms: f64,
    /// 99th percentile event-to-output latency, ms.
    pub latency_p99_ms: f64,
    /// Median of event time to scored-at (generator, broker, driftwood's consumer), ms.
    pub latency_input_leg_p50_ms: f64,
    /// 99th percentile of the same, ms.
    pub latency_input_leg_p99_ms: f64,
    /// Median event-to-output latency of the same load through `--pass-through` (the same two
    /// broker hops, consumer and producer, without decode or scoring), ms.
    pub pass_through_p50_ms: f64,
    /// 99th percentile of the same, ms.
    pub pass_through_p99_ms: f64,
    /// Median latency of the input records themselves, generator to a plain reader through
    /// the broker, without driftwood: what the broker alone costs, ms.
    pub broker_only_p50_ms: f64,
    /// 99th percentile of the same, ms.
    pub broker_only_p99_ms: f64,
    /// Peak resident memory of the latency-profile process, bytes.
    pub latency_peak_rss_bytes: u64,
    /// CPU model and count, for reading the figures.
    pub machine: String,
}

/// Runs the benchmark, prints a table and writes JSON.
pub fn run(config: &BenchConfig) -> Result<BenchReport> {
    let brokers = config
        .bootstrap_servers
        .clone()
        .or_else(|| std::env::var("KAFKA_BOOTSTRAP_SERVERS").ok())
        .unwrap_or_else(|| "localhost:9092".into());
    let tag = format!("{:08x}", rand::random::<u32>());
    let name = |what: &str| format!("bench-{tag}-{what}");
    let topics = [
        name("in"),
        name("pass"),
        name("out"),
        name("dlq"),
        name("lat-in"),
        name("lat-out"),
        name("lat-base"),
        name("lat-pass-in"),
        name("lat-pass-out"),
    ];
    create_topics(&brokers, &topics, config.partitions)?;

    eprintln!("producing {} records…", config.records);
    let produced = produce(&ProduceConfig::new(&brokers, &topics[0], config.records))?;
    let produce_rate = produced.records as f64 / produced.elapsed.as_secs_f64();

    let run_topics = |input: usize, output: usize, group: &str| RunTopics {
        input: &topics[input],
        output: &topics[output],
        dlq: &topics[3],
        group: name(group),
    };
    eprintln!("pass-through ceiling…");
    let pass_through = throughput_run(
        config,
        &brokers,
        &run_topics(0, 1, "g-pass"),
        &["--pass-through"],
    )?;
    eprintln!("full pipeline…");
    let pipeline = throughput_run(config, &brokers, &run_topics(0, 2, "g-full"), &[])?;

    eprintln!(
        "latency at {} records/s for {:?}…",
        config.latency_rate, config.latency_duration
    );
    let latency = latency_run(
        config,
        &brokers,
        &run_topics(4, 5, "g-lat"),
        Relay::Pipeline,
    )?;
    eprintln!("the same load through --pass-through (the two hops without decode or scoring)…");
    let relay = latency_run(
        config,
        &brokers,
        &run_topics(7, 8, "g-lat-pass"),
        Relay::PassThrough,
    )?;
    eprintln!("the same load through the broker alone…");
    let broker_only = latency_run(
        config,
        &brokers,
        &run_topics(6, 6, "unused"),
        Relay::BrokerOnly,
    )?
    .end_to_end;
    let report = BenchReport {
        records: config.records,
        partitions: config.partitions,
        produce_records_per_second: produce_rate,
        pipeline_to_ceiling: pipeline.records_per_second / pass_through.records_per_second,
        pass_through,
        pipeline,
        latency_offered_rate: config.latency_rate,
        latency_samples: latency.end_to_end.len(),
        latency_warmup_seconds: config.latency_warmup.as_secs_f64(),
        latency_p50_ms: quantile(&latency.end_to_end, 0.5),
        latency_p99_ms: quantile(&latency.end_to_end, 0.99),
        latency_input_leg_p50_ms: quantile(&latency.input_leg, 0.5),
        latency_input_leg_p99_ms: quantile(&latency.input_leg, 0.99),
        pass_through_p50_ms: quantile(&relay.end_to_end, 0.5),
        pass_through_p99_ms: quantile(&relay.end_to_end, 0.99),
        broker_only_p50_ms: quantile(&broker_only, 0.5),
        broker_only_p99_ms: quantile(&broker_only, 0.99),
        latency_peak_rss_bytes: latency.peak_rss,
        machine: machine(),
    };
    print_table(&report);
    let json = serde_json::to_string_pretty(&report).expect("report serializes");
    std::fs::write(&config.json, json + "\n").map_err(|e| Error::io(&config.json, e))?;
    eprintln!("wrote {}", config.json.display());
    Ok(report)
}

/// The `q` quantile of `values` (sorted here).
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

fn print_table(r: &BenchReport) {
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!();
    println!(
        "driftwood bench: {} records, {} partitions ({})",
        r.records, r.partitions, r.machine
    );
    println!(
        "{:<34} {:>14} {:>12}",
        "measurement", "records/s", "peak RSS"
    );
    println!(
        "{:<34} {:>14.0} {:>12}",
        "produce input (generator)", r.produce_records_per_second, ""
    );
    println!(
        "{:<34} {:>14.0} {:>9.1} MB",
        "pass-through ceiling",
        r.pass_through.records_per_second,
        mb(r.pass_through.peak_rss_bytes)
    );
    println!(
        "{:<34} {:>14.0} {:>9.1} MB",
        "full pipeline",
        r.pipeline.records_per_second,
        mb(r.pipeline.peak_rss_bytes)
    );
    println!(
        "{:<34} {:>14.2}",
        "pipeline / ceiling", r.pipeline_to_ceiling
    );
    println!(
        "latency at {:.0}/s (latency profile, after a {:.0} s warm-up): p50 {:.1} ms, p99 {:.1} ms over {} records, peak RSS {:.1} MB",
        r.latency_offered_rate,
        r.latency_warmup_seconds,
        r.latency_p50_ms,
        r.latency_p99_ms,
        r.latency_samples,
        mb(r.latency_peak_rss_bytes)
    );
    println!(
        "  of which event -> scored (generator, broker, consumer): p50 {:.1} ms, p99 {:.1} ms",
        r.latency_input_leg_p50_ms, r.latency_input_leg_p99_ms
    );
    println!(
        "same load through --pass-through (same two hops, no decode or scoring): p50 {:.1} ms, p99 {:.1} ms",
        r.pass_through_p50_ms, r.pass_through_p99_ms
    );
    println!(
        "same load through the broker alone (generator -> broker -> plain reader): p50 {:.1} ms, p99 {:.1} ms",
        r.broker_only_p50_ms, r.broker_only_p99_ms
    );
}

/// Where one measured instance reads and writes.
struct RunTopics<'a> {
    input: &'a str,
    output: &'a str,
    dlq: &'a str,
    group: String,
}

/// A `driftwood run` child process, stopped with SIGTERM when dropped.
struct Instance {
    child: Child,
    http: SocketAddr,
}

impl Instance {
    fn start(
        config: &BenchConfig,
        brokers: &str,
        topics: &RunTopics<'_>,
        extra: &[&str],
    ) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Error::Pipeline(format!("no free port: {e}")))?
            .port();
        let http: SocketAddr = ([127, 0, 0, 1], port).into();
        let exe = std::env::current_exe().map_err(|e| Error::Pipeline(e.to_string()))?;
        let child = Command::new(exe)
            .args(["run", "--bootstrap-servers", brokers])
            .args([
                "--input-topic",
                topics.input,
                "--output-topic",
                topics.output,
            ])
            .args(["--dlq-topic", topics.dlq, "--group-id", &topics.group])
            .args(["--http-addr", &http.to_string(), "--stats-interval", "1s"])
            .arg("--model")
            .arg(&config.model)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::Pipeline(format!("cannot start driftwood run: {e}")))?;
        Ok(Instance { child, http })
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        crate::sidecar::probe(self.http, path).ok()
    }

    /// Sum of `driftwood_records_total` over outcomes.
    fn processed(&self) -> Option<u64> {
        let (_, text) = self.get("/metrics")?;
        Some(
            text.lines()
                .filter(|l| l.starts_with("driftwood_records_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64,
        )
    }

    fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.get("/ready").map(|(s, _)| s) != Some(200) {
            if Instant::now() > deadline {
                return Err(Error::Pipeline("driftwood run did not become ready".into()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// VmHWM: the process's peak resident memory.
    fn peak_rss(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))?
                    .split_whitespace()
                    .nth(1)?
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kb| kb * 1024)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

fn throughput_run(
    config: &BenchConfig,
    brokers: &str,
    topics: &RunTopics<'_>,
    extra: &[&str],
) -> Result<Throughput> {
    let instance = Instance::start(config, brokers, topics, extra)?;
    instance.wait_ready(Duration::from_secs(60))?;
    let total = config.records as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first: Option<(Instant, u64)> = None;
    loop {
        let now = Instant::now();
        let done = instance.processed().unwrap_or(0);
        if first.is_none() && done > 0 {
            first = Some((now, done));
        }
        if done >= total {
            let (t0, c0) = first.expect("set when done > 0");
            let seconds = now.duration_since(t0).as_secs_f64().max(1e-3);
            return Ok(Throughput {
                records: total,
                seconds,
                records_per_second: (total - c0) as f64 / seconds,
                peak_rss_bytes: instance.peak_rss(),
            });
        }
        if now > deadline {
            return Err(Error::Pipeline(format!(
                "only {done} of {total} records in 10 minutes"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What sits between the generator's topic and the measuring reader in a latency run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Relay {
    /// `driftwood run --profile latency`: two broker hops plus decode, score and encode.
    Pipeline,
    /// `driftwood run --profile latency --pass-through`: the same two hops and the same
    /// consumer and producer, without decode or scoring. Driftwood's floor on this broker.
    PassThrough,
    /// Nothing: a plain reader on the input topic. One hop, the broker's own floor.
    BrokerOnly,
}

/// Latencies in ms of one run at the offered rate, measured after the warm-up.
struct LatencyRun {
    /// Event time to the reader receiving the output.
    end_to_end: Vec<f64>,
    /// Event time to driftwood's `scored_at` (pipeline only).
    input_leg: Vec<f64>,
    /// Peak resident memory of the relay process (0 without one).
    peak_rss: u64,
}

/// Offers `config.latency_rate` records/s to `topics.input` and measures, at the reader of
/// the relay's output (or of the input itself for [`Relay::BrokerOnly`]), how long each
/// record took from its event time.
fn latency_run(
    config: &BenchConfig,
    brokers: &str,
    topics: &RunTopics<'_>,
    relay: Relay,
) -> Result<LatencyRun> {
    let instance = match relay {
        Relay::Pipeline => Some(&["--profile", "latency"][..]),
        Relay::PassThrough => Some(&["--profile", "latency", "--pass-through"][..]),
        Relay::BrokerOnly => None,
    }
    .map(|extra| -> Result<Instance> {
        let instance = Instance::start(config, brokers, topics, extra)?;
        instance.wait_ready(Duration::from_secs(60))?;
        Ok(instance)
    })
    .transpose()?;
    let read_from = if instance.is_some() {
        topics.output
    } else {
        topics.input
    };
    let count = (config.latency_rate
        * (config.latency_warmup + config.latency_duration).as_secs_f64()) as usize;
    let reader = reader_at_end(brokers, read_from)?;
    let mut spec = ProduceConfig::new(brokers, topics.input, count);
    spec.rate = config.latency_rate;
    // The generator stamps event_time when it encodes; send within a millisecond so the
    // figure is driftwood's and the broker's, not the generator's batching.
    spec.kafka_options = vec![("linger.ms".into(), "1".into())];
    let measure_from = now_millis() + config.latency_warmup.as_millis() as i64;
    let producer = std::thread::spawn(move || produce(&spec));
    let mut times = EventTimes::new();
    let mut run = LatencyRun {
        end_to_end: Vec::with_capacity(count),
        input_leg: Vec::with_capacity(count),
        peak_rss: 0,
    };
    let deadline =
        Instant::now() + config.latency_warmup + config.latency_duration + Duration::from_secs(60);
    let mut received_all = 0;
    while received_all < count && Instant::now() < deadline {
        if let Some(Ok(message)) = reader.poll(Duration::from_millis(100)) {
            let received = now_millis();
            received_all += 1;
            let stamps = match relay {
                Relay::Pipeline => times.of_prediction(message.payload()),
                Relay::PassThrough | Relay::BrokerOnly => times.of_features(message.payload()),
            };
            if let Some((event_time, scored_at)) = stamps
                && event_time >= measure_from
            {
                run.end_to_end.push((received - event_time) as f64);
                if let Some(scored_at) = scored_at {
                    run.input_leg.push((scored_at - event_time) as f64);
                }
            }
        }
    }
    producer
        .join()
        .map_err(|_| Error::Pipeline("the generator panicked".into()))??;
    run.peak_rss = instance.as_ref().map_or(0, Instance::peak_rss);
    Ok(run)
}

/// Reads the time stamps the latency runs measure from.
struct EventTimes {
    predictions: AvroCodec,
    features: crate::decode::FeatureDecoder,
    /// Reused for every feature record read.
    row: Vec<f64>,
}

impl EventTimes {
    fn new() -> Self {
        let schema = crate::decode::FeatureDecoder::parse_schema(
            crate::decode::BUNDLED_FEATURE_SCHEMA,
            "bundled features.avsc",
        )
        .expect("bundled schema parses");
        let names = crate::dataset::Dataset::breast_cancer().feature_names;
        let features = crate::decode::FeatureDecoder::new(
            schema,
            &names,
            crate::decode::InputFormat::Avro,
            1 << 20,
        )
        .expect("bundled schema fits the dataset");
        EventTimes {
            predictions: AvroCodec::predictions(),
            features,
            row: Vec::new(),
        }
    }

    /// `(event_time, Some(scored_at))` of a prediction.
    fn of_prediction(&self, payload: Option<&[u8]>) -> Option<(i64, Option<i64>)> {
        let p = self.predictions.decode::<PredictionRecord>(payload?).ok()?;
        Some((p.event_time, Some(p.scored_at)))
    }

    /// `(event_time, None)` of a feature record.
    fn of_features(&mut self, payload: Option<&[u8]>) -> Option<(i64, Option<i64>)> {
        self.row.clear();
        let meta = self.features.decode(payload, &mut self.row).ok()?;
        Some((meta.event_time_ms?, None))
    }
}

fn reader_at_end(brokers: &str, topic: &str) -> Result<BaseConsumer> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .set("fetch.queue.backoff.ms", "0")
        .set("fetch.error.backoff.ms", "0")
        .create()
        .map_err(|e| Error::kafka("creating the latency reader", e))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| Error::kafka("reading topic metadata", e))?;
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .map_err(|e| Error::kafka("assigning", e))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| Error::kafka("assigning", e))?;
    Ok(consumer)
}

fn create_topics(brokers: &str, topics: &[String], partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| Error::kafka("creating the admin client", e))?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Pipeline(e.to_string()))?;
    for result in runtime
        .block_on(admin.create_topics(&new, &AdminOptions::new()))
        .map_err(|e| Error::kafka("creating topics", e))?
    {
        result.map_err(|(t, code)| {
            Error::kafka(
                format!("creating {t}"),
                rdkafka::error::KafkaError::AdminOp(code),
            )
        })?;
    }
    Ok(())
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

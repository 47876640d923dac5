//! `driftwood demo`: the whole pipeline on librdkafka's in-process mock cluster. No broker,
//! Docker or network needed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;

use crate::codec::encode::AvroCodec;
use crate::config::RunConfig;
use crate::config::tools::DemoConfig;
use crate::config::tools::ProduceConfig;
use crate::drift::{DriftReport, Flag};
use crate::error::{Error, Result};
use crate::labels::PerformanceWindow;
use crate::service::Service;
use crate::tools::produce::{produce, produce_labels};

/// Where the demo's labels go, later than their records.
const LABELS_TOPIC: &str = "labels";

/// What the demo measured.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    /// Records scored.
    pub scored: u64,
    /// Records dead-lettered.
    pub dead_lettered: u64,
    /// Share of the labels joined to their predictions that were right.
    pub accuracy: f64,
    /// Records per second through the pipeline.
    pub throughput: f64,
    /// Where the sidecar served.
    pub http_addr: SocketAddr,
}

/// Runs the demo and prints its summary.
pub async fn run(config: DemoConfig) -> Result<DemoSummary> {
    let cluster = MockCluster::new(1).map_err(|e| Error::kafka("starting the mock cluster", e))?;
    let brokers = cluster.bootstrap_servers();
    let mut run = RunConfig::defaults(&brokers)?;
    run.models.model = config.model.clone();
    run.http_addr = config.http_addr;
    run.labels.labels_topic = Some(LABELS_TOPIC.into());
    // Windows of exactly 1,000 records, however fast the mock cluster delivers them: the
    // demo prints the same windows, with the same figures, on every run.
    run.drift.window_min_seconds = std::time::Duration::ZERO;
    let (features, shifted) = fill(&cluster, &run, &config).await?;
    let service = match Service::start(run.clone()).await {
        Err(Error::Http { .. }) if run.http_addr.port() != 0 => {
            // The demo should run even where 9090 is taken.
            run.http_addr.set_port(0);
            Service::start(run.clone()).await?
        }
        other => other?,
    };
    println!("scoring…");
    let total = (config.count + config.shifted) as u64;
    let throughput = match until_scored(&service, total).await {
        Ok(throughput) => throughput,
        Err(e) => {
            let _ = service.stop().await;
            return Err(e);
        }
    };
    // The labels come later than the features, on a topic of their own.
    println!("scored; now producing the {total} records' labels to topic {LABELS_TOPIC:?}…");
    tokio::task::spawn_blocking(move || -> Result<()> {
        produce_labels(&features)?;
        produce_labels(&shifted).map(|_| ())
    })
    .await
    .map_err(|e| Error::tool("demo", format!("the producer thread failed: {e}")))??;
    let windows = total.div_ceil(run.labels.performance_window as u64) as usize;
    let performance =
        read_back::<PerformanceWindow>(&brokers, &run.labels.performance_topic, windows);
    let joined: i64 = performance
        .iter()
        .flat_map(|w| &w.versions)
        .map(|v| v.joined)
        .sum();
    let right: f64 = (performance.iter().flat_map(|w| &w.versions))
        .map(|v| v.accuracy.unwrap_or(0.0) * v.joined as f64)
        .sum();
    let metrics = service.metrics();
    let summary = DemoSummary {
        scored: metrics.scored(),
        dead_lettered: metrics.dead_lettered(),
        accuracy: right / joined.max(1) as f64,
        throughput,
        http_addr: service.http_addr(),
    };
    println!();
    println!("records scored        {}", summary.scored);
    println!("records dead-lettered {}", summary.dead_lettered);
    println!("accuracy vs labels    {:.2}%", summary.accuracy * 100.0);
    println!(
        "throughput            {:.0} records/s (the mock cluster consumes slowly; see README for a real broker)",
        summary.throughput
    );
    let windows = total.div_ceil(run.drift.window_records as u64) as usize;
    print_drift_reports(&brokers, &run.drift_topic, windows);
    print_performance(&run.labels.performance_topic, performance);
    if config.keep_running {
        println!(
            "\nserving http://{}/metrics until Ctrl-C…",
            summary.http_addr
        );
        service.run_until(crate::obs::shutdown::signal()).await?;
    } else {
        service.stop().await?;
    }
    drop(cluster);
    Ok(summary)
}

/// One report in a line: records, flag, the flagged features (the most significant first)
/// with their mean shift, and the accuracy: expected without labels, and realized.
fn window_line(r: &DriftReport) -> String {
    let mut flagged: Vec<_> = r.features.iter().filter(|f| f.flag != Flag::Ok).collect();
    flagged.sort_by(|a, b| a.p_value.total_cmp(&b.p_value));
    let named: Vec<String> = (flagged.iter().take(2))
        .map(|f| match f.mean_shift {
            Some(shift) => format!("{} {shift:+.1} sd", f.name),
            None => f.name.clone(),
        })
        .collect();
    let more = flagged.len().saturating_sub(named.len());
    let features = match (flagged.len(), more) {
        (0, _) => "no feature flagged".to_string(),
        (_, 0) => format!("{} flagged", named.join(", ")),
        _ => format!("{} and {more} more flagged", named.join(", ")),
    };
    let percent = |a: Option<f64>| a.map_or("-".into(), |a| format!("{:.1}%", a * 100.0));
    let expected = r.estimated.map_or("-".into(), |e| {
        let unreliable = if e.unreliable { " (unreliable)" } else { "" };
        format!("{}{unreliable}", percent(e.accuracy))
    });
    format!(
        "{:>5} records, {:<5}  {features}, prediction {}, accuracy expected {expected}, realized {}",
        r.counts.records + r.counts.invalid,
        format!("{:?}", r.flag).to_lowercase(),
        format!("{:?}", r.prediction_flag).to_lowercase(),
        percent(r.accuracy),
    )
}

/// Creates the demo's topics on `cluster` and produces its records without their labels:
/// `config.count` (some corrupt), then `config.shifted` with every feature 20% larger. Returns
/// the two batches' settings, for their labels.
async fn fill(
    cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
    run: &RunConfig,
    config: &DemoConfig,
) -> Result<(ProduceConfig, ProduceConfig)> {
    // One input partition: records are read in the order they were written, so every
    // window holds the same records, and the demo prints the same figures, on every run.
    for (topic, partitions) in [
        (&run.input_topic, 1),
        (&run.output_topic, 3),
        (&run.dlq_topic, 3),
        (&run.drift_topic, 3),
        // As many partitions as the input: a label lands on the partition numbered as its
        // record's.
        (&LABELS_TOPIC.to_string(), 1),
        (&run.labels.performance_topic, 3),
    ] {
        cluster
            .create_topic(topic, partitions, 1)
            .map_err(|e| Error::kafka(format!("creating {topic}"), e))?;
    }
    let brokers = cluster.bootstrap_servers();
    println!(
        "mock Kafka cluster at {brokers}; producing {} records ({} corrupt), then {} shifted by 20%…",
        config.count, config.corrupt, config.shifted
    );
    let mut spec = ProduceConfig::new(&brokers, &run.input_topic, config.count);
    spec.corrupt = config.corrupt;
    spec.labels_topic = Some(LABELS_TOPIC.into());
    let mut shifted = ProduceConfig::new(&brokers, &run.input_topic, config.shifted);
    shifted.shift = 0.2;
    shifted.first_id = config.count;
    shifted.labels_topic = Some(LABELS_TOPIC.into());
    let (a, b) = (spec.clone(), shifted.clone());
    tokio::task::spawn_blocking(move || -> Result<()> {
        produce(&a)?;
        if b.count > 0 {
            produce(&b)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| Error::tool("demo", format!("the producer thread failed: {e}")))??;
    Ok((spec, shifted))
}

/// Waits until `total` records are scored or dead-lettered (at most 5 minutes); the records
/// per second since the group was joined.
async fn until_scored(service: &Service, total: u64) -> Result<f64> {
    let metrics = service.metrics();
    let deadline = Instant::now() + Duration::from_secs(300);
    // Throughput counts from the group join, not from the join's own delay.
    while !service.health().readiness().joined_group && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    while metrics.scored() + metrics.dead_lettered() < total {
        if Instant::now() > deadline {
            return Err(Error::tool("demo", "did not finish within 5 minutes"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Reads up to `expected` records of `topic` (Avro, `T`'s schema) back, for 15 s at most.
fn read_back<T: ReadBack>(brokers: &str, topic: &str, expected: usize) -> Vec<T> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

    let Ok(consumer) = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "driftwood-demo-reader")
        .create::<BaseConsumer>()
    else {
        return Vec::new();
    };
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        let _ = tpl.add_partition_offset(topic, p, Offset::Beginning);
    }
    if consumer.assign(&tpl).is_err() {
        return Vec::new();
    }
    let codec = T::codec();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while records.len() < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100))
            && let Some(Ok(r)) = m.payload().map(|p| codec.decode::<T>(p))
        {
            records.push(r);
        }
    }
    records
}

/// A record the demo reads back, and its codec.
trait ReadBack: serde::de::DeserializeOwned {
    fn codec() -> AvroCodec;
}

impl ReadBack for DriftReport {
    fn codec() -> AvroCodec {
        AvroCodec::drift_reports()
    }
}

impl ReadBack for PerformanceWindow {
    fn codec() -> AvroCodec {
        AvroCodec::performance()
    }
}

/// Reads the drift topic back and prints a line per window.
fn print_drift_reports(brokers: &str, topic: &str, expected: usize) {
    let mut reports: Vec<DriftReport> = read_back(brokers, topic, expected);
    reports.sort_by_key(|r| r.origin.window_start);
    println!();
    println!(
        "drift reports on topic {topic:?} (each window tested against the model's reference; a drift-free window alerts 1% of the time, warns 5%):"
    );
    for (i, r) in reports.iter().enumerate() {
        println!("  window {}: {}", i + 1, window_line(r));
    }
}

/// Prints a line per window of labels: what became of them, and the accuracy realized and
/// expected of the same predictions.
fn print_performance(topic: &str, mut windows: Vec<PerformanceWindow>) {
    windows.sort_by_key(|w| (w.partition, w.first_offset));
    println!();
    println!(
        "realized performance on topic {topic:?} (labels joined to their predictions by id, a window per 1000 labels):"
    );
    let percent = |a: Option<f64>| a.map_or("-".into(), |a| format!("{:.1}%", a * 100.0));
    for (i, w) in windows.iter().enumerate() {
        let l = &w.labels;
        let v = w.versions.first();
        println!(
            "  window {}: {:>5} labels, {} joined, {} unknown; accuracy realized {}, expected {}",
            i + 1,
            l.total(),
            l.joined,
            l.unknown,
            percent(v.and_then(|v| v.accuracy)),
            percent(v.and_then(|v| v.expected_accuracy)),
        );
    }
}

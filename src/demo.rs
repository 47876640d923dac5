//! `driftwood demo`: the whole pipeline on librdkafka's in-process mock cluster. No broker,
//! Docker or network needed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use rdkafka::mocking::MockCluster;

use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::produce::{ProduceConfig, produce};
use crate::service::Service;

/// Settings for `driftwood demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoConfig {
    /// Records to produce.
    #[arg(long, default_value_t = 3000)]
    pub count: usize,
    /// Of which corrupt.
    #[arg(long, default_value_t = 30)]
    pub corrupt: usize,
    /// Model artifact directory.
    #[arg(long, default_value = "models/breast-cancer/1")]
    pub model: PathBuf,
    /// Where the sidecar listens (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub http_addr: SocketAddr,
    /// Keep serving /metrics after the summary until Ctrl-C.
    #[arg(long)]
    pub keep_running: bool,
}

/// What the demo measured.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    /// Records scored.
    pub scored: u64,
    /// Records dead-lettered.
    pub dead_lettered: u64,
    /// Share of labelled records predicted correctly.
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
    let mut run = RunConfig::defaults(&brokers);
    run.model = config.model.clone();
    run.http_addr = config.http_addr;
    for topic in [&run.input_topic, &run.output_topic, &run.dlq_topic] {
        cluster
            .create_topic(topic, 3, 1)
            .map_err(|e| Error::kafka(format!("creating {topic}"), e))?;
    }
    println!(
        "mock Kafka cluster at {brokers}; producing {} records ({} corrupt)…",
        config.count, config.corrupt
    );
    let mut spec = ProduceConfig::new(&brokers, &run.input_topic, config.count);
    spec.corrupt = config.corrupt;
    let produce_spec = spec.clone();
    tokio::task::spawn_blocking(move || produce(&produce_spec))
        .await
        .map_err(|e| Error::Pipeline(e.to_string()))??;

    let service = match Service::start(run.clone()).await {
        Err(Error::Http { .. }) if run.http_addr.port() != 0 => {
            // The demo should run even where 9090 is taken.
            run.http_addr.set_port(0);
            Service::start(run).await?
        }
        other => other?,
    };
    let http_addr = service.http_addr();
    println!("scoring; metrics at http://{http_addr}/metrics");
    let total = config.count as u64;
    let metrics = service.metrics().clone();
    let deadline = Instant::now() + Duration::from_secs(300);
    // Throughput counts from the group join, not from the join's own delay.
    while !service.health().readiness().joined_group && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    while metrics.scored() + metrics.dead_lettered() < total {
        if Instant::now() > deadline {
            let _ = service.stop().await;
            return Err(Error::Pipeline(
                "the demo did not finish within 5 minutes".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    let correct = metrics.labeled.with_label_values(&["correct"]).get();
    let incorrect = metrics.labeled.with_label_values(&["incorrect"]).get();
    let summary = DemoSummary {
        scored: metrics.scored(),
        dead_lettered: metrics.dead_lettered(),
        accuracy: correct as f64 / (correct + incorrect).max(1) as f64,
        throughput: total as f64 / elapsed.as_secs_f64(),
        http_addr,
    };
    println!();
    println!("records scored        {}", summary.scored);
    println!("records dead-lettered {}", summary.dead_lettered);
    println!("accuracy vs labels    {:.2}%", summary.accuracy * 100.0);
    println!(
        "throughput            {:.0} records/s (the mock cluster consumes slowly; see README for a real broker)",
        summary.throughput
    );
    println!("metrics               http://{http_addr}/metrics");
    if config.keep_running {
        println!("serving until Ctrl-C…");
        service.run_until(crate::shutdown::signal()).await?;
    } else {
        service.stop().await?;
    }
    drop(cluster);
    Ok(summary)
}

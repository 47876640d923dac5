//! Shutdown is bounded by one grace period, and says whether everything was committed: a
//! stop with outputs still unacknowledged is an error (and a non-zero exit), not a quiet Ok.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;
use driftwood::config::RunConfig;
use driftwood::config::tools::ProduceConfig;
use driftwood::service::Service;
use driftwood::tools::produce::produce;

const GRACE: Duration = Duration::from_secs(3);

/// A configuration whose output topic does not exist (and is never created), with input
/// waiting: every output stays unacknowledged.
async fn stuck_output(bootstrap: &str) -> RunConfig {
    let mut config = run_config(bootstrap);
    let others = [&config.input_topic, &config.dlq_topic, &config.drift_topic];
    create_topics(bootstrap, &others.map(String::as_str), 3).await;
    let spec = ProduceConfig::new(bootstrap, &config.input_topic, 500);
    tokio::task::spawn_blocking(move || produce(&spec))
        .await
        .unwrap()
        .unwrap();
    config.shutdown_grace = GRACE;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_with_outputs_unacknowledged_takes_one_grace_and_says_so() {
    let config = stuck_output(bootstrap()).await;
    let service = Service::start(config).await.unwrap();
    let metrics = service.metrics().clone();
    wait_until("outputs in flight", Duration::from_secs(30), || {
        metrics.transport.in_flight.get() > 0
    })
    .await;

    let started = Instant::now();
    let err = service.stop().await.unwrap_err().to_string();
    let took = started.elapsed();
    assert!(
        took < GRACE + Duration::from_secs(2),
        "shutdown took {took:?}"
    );
    assert!(
        err.contains("unacknowledged") && err.contains("read again"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_outputs_unacknowledged_exits_non_zero() {
    let config = stuck_output(bootstrap()).await;
    let port = free_port();
    let child = driftwood_run(&config, port, &["--shutdown-grace", "3s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_until("outputs in flight", Duration::from_secs(30), || {
        driftwood::http::sidecar::probe(addr, "/metrics")
            .ok()
            .and_then(|(_, text)| metric(&text, "driftwood_in_flight_records"))
            .is_some_and(|n| n > 0.0)
    })
    .await;
    let started = Instant::now();
    sigterm(&child);
    let output = child.wait_with_output().unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(took < GRACE + Duration::from_secs(3), "exit took {took:?}");
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("unacknowledged"), "{stderr}");
}

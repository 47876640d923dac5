//! The HTTP sidecar on a real broker: probes, metrics, and the process's signal handling.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use driftwood::codec::decode::InputFormat;
use driftwood::config::tools::ProduceConfig;
use driftwood::service::Service;
use driftwood::tools::produce::produce;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_waits_for_the_broker_and_metrics_count_records() {
    // No broker on this port yet: the service must come up, say why it is not ready, and
    // keep trying instead of failing.
    let port = free_port();
    let mut config = run_config(&format!("127.0.0.1:{port}"));
    config.create_topics = true;
    // Confluent wire format end to end (the other tests use plain Avro).
    config.input_format = InputFormat::Confluent;
    let service = Service::start(config.clone()).await.unwrap();
    let addr = service.http_addr();
    // For two seconds of trying, it stays alive and not ready (an observation period, not
    // a wait for something to happen).
    let trying = std::time::Instant::now();
    while trying.elapsed() < Duration::from_secs(2) {
        let (health, _) = http_get(addr, "/health");
        let (ready, body) = http_get(addr, "/ready");
        assert_eq!((health, ready), (200, 503), "alive, not ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = http_get(addr, "/ready");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"joined_group\":false"), "{body}");
    assert!(body.contains("consumer has not joined its group"), "{body}");
    let (status, _) = http_get(addr, "/health");
    assert_eq!(status, 200, "still alive, still trying");
    // What Docker's HEALTHCHECK runs: not ready yet (exit 1, saying why), but alive.
    let (ok, out) = healthcheck(&addr.to_string(), "/ready");
    assert!(!ok && out.contains("503"), "{out}");
    let (ok, out) = healthcheck(&addr.to_string(), "/health");
    assert!(ok, "{out}");

    // The broker appears: topics get created, the group is joined, /ready turns 200.
    let broker = Kafka::start(port);
    wait_until("/ready to say 200", Duration::from_secs(90), || {
        http_get(addr, "/ready").0 == 200
    })
    .await;

    let mut spec = ProduceConfig::new(&broker.bootstrap(), &config.input_topic, 500);
    spec.corrupt = 5;
    spec.format = InputFormat::Confluent;
    tokio::task::spawn_blocking(move || produce(&spec))
        .await
        .unwrap()
        .unwrap();
    let metrics = service.metrics().clone();
    wait_until("500 records", Duration::from_secs(60), || {
        metrics.scored() + metrics.dead_lettered() >= 500
    })
    .await;
    let (status, text) = http_get(addr, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        metric(&text, "driftwood_records_total{outcome=\"scored\"}"),
        Some(495.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "driftwood_records_total{outcome=\"dead_lettered\"}"),
        Some(5.0)
    );
    // Truncated bodies are undecodable; a wrong magic byte or garbage header is bad framing.
    assert_eq!(
        metric(&text, "driftwood_dead_letters_total{kind=\"undecodable\"}"),
        Some(2.0)
    );
    assert_eq!(
        metric(&text, "driftwood_dead_letters_total{kind=\"bad_framing\"}"),
        Some(3.0)
    );
    assert_eq!(
        metric(&text, "driftwood_prediction_confidence_count"),
        Some(495.0)
    );
    assert_eq!(
        metric(&text, "driftwood_scoring_duration_seconds_count"),
        Some(495.0)
    );
    assert_eq!(
        metric(
            &text,
            "driftwood_model_info{name=\"breast-cancer\",version=\"1\"}"
        ),
        Some(1.0)
    );
    assert!(metric(&text, "driftwood_rebalances_total{kind=\"assign\"}").unwrap() >= 1.0);
    assert!(
        text.contains("process_resident_memory_bytes"),
        "process metrics exported"
    );
    let labels: f64 = text
        .lines()
        .filter(|l| l.starts_with("driftwood_predictions_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(labels, 495.0);
    // Lag comes from librdkafka statistics (1 s interval here).
    wait_until("a lag gauge", Duration::from_secs(10), || {
        http_get(addr, "/metrics")
            .1
            .contains("driftwood_consumer_lag{")
    })
    .await;
    service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_process_cleanly() {
    let bootstrap = bootstrap();
    let config = run_config(bootstrap);
    let port = free_port();
    let mut child = driftwood_run(
        &config,
        port,
        &["--create-topics", "--shutdown-grace", "5s"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for_port(port, Duration::from_secs(20));
    wait_until("/ready to say 200", Duration::from_secs(60), || {
        http_get(addr, "/ready").0 == 200
    })
    .await;
    let (ok, out) = healthcheck(&format!("0.0.0.0:{port}"), "/ready");
    assert!(ok, "healthcheck maps 0.0.0.0 to this host: {out}");
    let mut spec = ProduceConfig::new(bootstrap, &config.input_topic, 200);
    spec.rate = 0.0;
    tokio::task::spawn_blocking(move || produce(&spec))
        .await
        .unwrap()
        .unwrap();
    sigterm(&child);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "did not exit within the grace period"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
}

/// Runs `driftwood healthcheck`; returns whether it succeeded and everything it printed.
fn healthcheck(http_addr: &str, path: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_driftwood"))
        .args(["healthcheck", "--http-addr", http_addr, "--path", path])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn healthcheck_fails_when_nothing_listens() {
    let (ok, out) = healthcheck(&format!("127.0.0.1:{}", free_port()), "/health");
    assert!(!ok);
    assert!(out.contains("no sidecar answers"), "{out}");
}

#[test]
fn check_config_validates_without_a_broker() {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/models/breast-cancer/1");
    // Nothing listens on this address: the check must not try to connect.
    let check = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_driftwood"))
            .args(["run", "--check-config", "--model", model])
            .args(["--bootstrap-servers", "nowhere.invalid:9092"])
            .args(extra)
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap()
    };
    let output = check(&["--profile", "latency"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("configuration ok"), "{stdout}");
    assert!(stdout.contains("breast-cancer version 1"), "{stdout}");
    assert!(
        stdout.contains("drift     windows of at least 1000 records and 10s, or 1m (features of about 100000 a window: a random sample past that); a drift-free window alerts 1% of the time, warns 5%")
            && stdout.contains("detects a 0.29 sd mean shift"),
        "{stdout}"
    );
    // The PSI levels were removed: their flags say so, and what replaced them.
    let output = check(&["--drift-alert-psi", "0.3"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("--drift-alert-rate"), "{stderr}");

    // librdkafka rejects the property; the value, which could be a secret, is not echoed.
    let output = check(&["--kafka-option", "producer.linger.ms=hunter2"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("linger.ms"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let output = check(&["--kafka-option", "no.such.property=1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("no.such.property"), "{stderr}");

    // Accepted by librdkafka, refused by driftwood: at-least-once depends on it.
    let output = check(&["--kafka-option", "acks=0"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("\"acks\" is refused"), "{stderr}");

    // Settings librdkafka refuses only when it creates the client: KIP-848 moves them to
    // the broker.
    let output = check(&[
        "--kafka-option",
        "consumer.group.protocol=consumer",
        "--kafka-option",
        "session.timeout.ms=10000",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("\"session.timeout.ms\" is not supported with group.protocol=consumer"),
        "{stderr}"
    );
}

#[test]
fn invalid_configuration_fails_fast_naming_the_problem() {
    let output = Command::new(env!("CARGO_BIN_EXE_driftwood"))
        .args(["run", "--input-topic", "same", "--output-topic", "same"])
        .args([
            "--model",
            concat!(env!("CARGO_MANIFEST_DIR"), "/models/breast-cancer/1"),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--input-topic \"same\" must differ"),
        "{stderr}"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_driftwood"))
        .args(["run", "--model", "/nonexistent/model"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--model /nonexistent/model: cannot read metadata.json"),
        "names the flag: {stderr}"
    );
    assert!(!stderr.contains("driftwood train"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_says_when_the_input_topic_does_not_exist() {
    let config = run_config(bootstrap());
    let service = Service::start(config).await.unwrap();
    let addr = service.http_addr();
    wait_until(
        "/ready to name the missing topic",
        Duration::from_secs(30),
        || {
            let (status, body) = http_get(addr, "/ready");
            status == 503 && body.contains("the input topic does not exist")
        },
    )
    .await;
    service.stop().await.unwrap();
}

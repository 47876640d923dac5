//! `--processing-guarantee exactly-once` on Apache Kafka: whatever fails, a `read_committed`
//! reader sees exactly one output per input. (Crashes between produce and commit are in
//! `crashes`.)

use std::time::Duration;

use crate::common::*;
use driftwood::config::tools::ProduceConfig;
use driftwood::service::Service;
use driftwood::tools::produce::produce;

const EXACTLY_ONCE: [&str; 2] = ["--processing-guarantee", "exactly-once"];

fn assert_exactly_once(c: &Conservation) {
    assert_eq!(c.missing_count, 0, "inputs without output: {:?}", c.missing);
    assert_eq!(c.strays, 0, "outputs naming no input");
    assert_eq!(
        c.duplicates, 0,
        "read_committed sees each input's output once: {c:?}"
    );
}

/// A second process with the same `--instance-id` (a pod started twice) fences the first:
/// the first stops, saying why, and no output is duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_instance_is_fenced_and_outputs_stay_exact() {
    let bootstrap = bootstrap();
    let config = fresh_topics(bootstrap, 3, 1).await;
    let input = stream(bootstrap, &config, 40_000, 4_000.0);
    let pod = unique("pod");
    let flags = [
        EXACTLY_ONCE[0],
        EXACTLY_ONCE[1],
        "--instance-id",
        &pod,
        "--static-membership",
    ];
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("zombie.log"));
    let mut zombie = Member::start(&config, &flags, &log);
    zombie.wait_scored(2_000.0, Duration::from_secs(60));
    let mut successor = Member::start(&config, &flags, &log);
    assert!(
        !zombie.wait_exit(Duration::from_secs(60)),
        "the fenced instance exits non-zero"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("failed for good") && logged.to_lowercase().contains("fenced"),
        "{logged}"
    );
    successor.wait_scored(1.0, Duration::from_secs(60));
    let (exited_zero, c) = settle(bootstrap, &config, input, [successor]).await;
    assert!(
        exited_zero,
        "the successor exits 0; logs in {}",
        log.display()
    );
    assert_exactly_once(&c);
}

/// Outputs that cannot be written (the output topic does not exist yet) make transactions
/// abort; their records are read and scored again, and once the topic exists each input has
/// one committed output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_transactions_are_read_again_and_output_once() {
    let bootstrap = bootstrap();
    let mut config = run_config(bootstrap);
    let others = [&config.input_topic, &config.dlq_topic, &config.drift_topic];
    create_topics(bootstrap, &others.map(String::as_str), 3).await;
    let spec = ProduceConfig::new(bootstrap, &config.input_topic, 5_000);
    tokio::task::spawn_blocking(move || produce(&spec))
        .await
        .unwrap()
        .unwrap();
    config.processing_guarantee = driftwood::config::ProcessingGuarantee::ExactlyOnce;
    config.kafka_options = vec![("producer.message.timeout.ms".into(), "2000".into())];
    let service = Service::start(config.clone()).await.unwrap();
    let metrics = service.metrics().clone();
    let aborted = "driftwood_transactions_total{outcome=\"aborted\"}";
    wait_until("a transaction to abort", Duration::from_secs(60), || {
        metric(&metrics.render(), aborted).is_some_and(|n| n >= 2.0)
    })
    .await;
    create_topics(bootstrap, &[&config.output_topic], 3).await;
    wait_caught_up(bootstrap, &config, Duration::from_secs(120));
    service.stop().await.unwrap();
    assert_exactly_once(&conservation(bootstrap, &config));
}

/// The broker restarts under an exactly-once instance: it carries on by itself, and nothing
/// is lost or duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_in_exactly_once_mode_duplicates_nothing() {
    init_logging();
    let mut kafka = Kafka::start(free_port());
    let bootstrap = kafka.bootstrap();
    let config = fresh_topics(&bootstrap, 3, 1).await;
    let input = stream(&bootstrap, &config, 40_000, 2_000.0);
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("eos-restart.log"));
    let mut member = Member::start(&config, &EXACTLY_ONCE, &log);
    member.wait_scored(2_000.0, Duration::from_secs(60));
    kafka.stop();
    // The outage itself: the broker stays down this long (part of the scenario, not a
    // wait before an assertion).
    tokio::time::sleep(Duration::from_secs(3)).await;
    kafka.resume();
    let scored = member.scored();
    member.wait_scored(scored + 1_000.0, Duration::from_secs(120));
    let (exited_zero, c) = settle(&bootstrap, &config, input, [member]).await;
    assert!(
        exited_zero,
        "the same process carried on and exits 0; logs in {}",
        log.display()
    );
    assert_exactly_once(&c);
}

/// A cluster that cannot run transactions (here: a transaction log that wants three
/// replicas on one broker) makes an exactly-once instance fail at start, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_transactions_is_refused_at_start() {
    init_logging();
    let kafka = Kafka::start_with(free_port(), "transaction.state.log.replication.factor=3");
    let bootstrap = kafka.bootstrap();
    let config = fresh_topics(&bootstrap, 1, 1).await;
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("no-txn.log"));
    let member = Member::start(&config, &EXACTLY_ONCE, &log);
    assert!(
        !member.wait_exit(Duration::from_secs(90)),
        "driftwood exits non-zero"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("exactly-once needs Kafka transactions"),
        "{logged}"
    );
}

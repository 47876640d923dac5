//! Failures no retry can cure stop driftwood loudly, with a non-zero exit naming the cause,
//! instead of retrying forever in silence; and nothing is committed past them.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use driftwood::config::tools::ProduceConfig;
use driftwood::tools::produce::produce;
use rdkafka::ClientConfig;
use rdkafka::Offset;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

/// Waits for `child` to exit (at most `timeout`) and returns what it printed.
fn exited_within(mut child: std::process::Child, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!(
                "still running after {timeout:?}: {:?}",
                child.wait_with_output()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_the_broker_will_never_take_stops_the_service() {
    let bootstrap = bootstrap();
    let config = run_config(bootstrap);
    create_topics(
        bootstrap,
        &[&config.input_topic, &config.dlq_topic, &config.drift_topic],
        3,
    )
    .await;
    // Every prediction is larger than the output topic accepts: MESSAGE_TOO_LARGE, for good.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let small = NewTopic::new(&config.output_topic, 3, TopicReplication::Fixed(1))
        .set("max.message.bytes", "100");
    for result in admin
        .create_topics([&small], &AdminOptions::new())
        .await
        .unwrap()
    {
        result.unwrap();
    }
    let spec = ProduceConfig::new(bootstrap, &config.input_topic, 200);
    tokio::task::spawn_blocking(move || produce(&spec))
        .await
        .unwrap()
        .unwrap();

    let child = driftwood_run(&config, free_port(), &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = exited_within(child, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot write to {}", config.output_topic))
            && stderr.contains("too large"),
        "the exit names the topic and the cause: {stderr}"
    );

    // No prediction was acknowledged, so the group committed nothing.
    for (partition, offset) in committed(bootstrap, &config) {
        assert!(
            matches!(offset, Offset::Invalid | Offset::Offset(0)),
            "partition {partition} committed {offset:?} past the failure"
        );
    }
}

#[test]
fn topic_creation_gives_up_on_a_permanent_error() {
    let config = run_config(bootstrap());
    // Three replicas cannot be placed on one broker: retrying will not help.
    let child = driftwood_run(
        &config,
        free_port(),
        &["--create-topics", "--topic-replication", "3"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let output = exited_within(child, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("creating topic") && stderr.contains("InvalidReplicationFactor"),
        "{stderr}"
    );
}

/// A member fenced by another with the same `--instance-id` (static membership's
/// `group.instance.id`, e.g. a pod started twice) has left its group for good: it turns unready and stops, naming why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_member_stops_and_says_why() {
    let bootstrap = bootstrap();
    let mut config = prepared_topics(bootstrap, 100, 0, |_| {}).await;
    config.instance_id = Some(unique("pod"));
    config.static_membership = true;
    let first = ready_member(&config).await;
    let health = first.health().clone();
    let second = driftwood::service::Service::start(another_member(&config))
        .await
        .unwrap();
    wait_until(
        "the first member to be fenced",
        Duration::from_secs(60),
        || !health.readiness().ready,
    )
    .await;
    let err = first.stop().await.unwrap_err().to_string();
    assert!(
        err.contains("failed for good") && err.to_lowercase().contains("fenced"),
        "{err}"
    );
    second.stop().await.unwrap();
}

//! Client and broker compatibility: driftwood joins, consumes and commits with both consumer
//! group protocols, the classic one (its default) and KIP-848's `consumer` protocol.

use std::time::Duration;

use crate::common::*;
use driftwood::service::Service;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset};

const RECORDS: usize = 3_000;
const CORRUPT: usize = 3;

/// What the broker's classic group API (ListGroups, DescribeGroups) says of `group`:
/// `(state, protocol type, protocol)`.
fn classic_view(bootstrap: &str, group: &str) -> (String, String, String) {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let list = client
        .fetch_group_list(Some(group), Duration::from_secs(10))
        .unwrap();
    let g = &list.groups()[0];
    (
        g.state().into(),
        g.protocol_type().into(),
        g.protocol().into(),
    )
}

/// Runs one instance with `group.protocol=<protocol>` over fresh topics until every record is
/// out, stops it, and returns the broker's classic view of the group while it was consuming,
/// and the group's committed offsets next to the partitions' ends.
async fn scores_and_commits_with(
    protocol: &str,
) -> ((String, String, String), Vec<(i32, Offset, i64)>) {
    let bootstrap = bootstrap();
    let mut config = prepared_topics(bootstrap, RECORDS, CORRUPT, |_| {}).await;
    config
        .kafka_options
        .push(("consumer.group.protocol".into(), protocol.into()));
    let service = Service::start(config.clone()).await.unwrap();
    let metrics = service.metrics().clone();
    wait_until(
        &format!("every record through a {protocol}-protocol member"),
        Duration::from_secs(90),
        || metrics.scored() + metrics.dead_lettered() >= RECORDS as u64,
    )
    .await;
    let view = classic_view(bootstrap, &config.group_id);
    service.stop().await.unwrap();
    assert_eq!(metrics.scored(), (RECORDS - CORRUPT) as u64);
    assert_eq!(metrics.dead_lettered(), CORRUPT as u64);

    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let offsets = committed(bootstrap, &config)
        .into_iter()
        .map(|(p, at)| {
            let (_, end) = reader
                .fetch_watermarks(&config.input_topic, p, Duration::from_secs(10))
                .unwrap();
            (p, at, end)
        })
        .collect();
    (view, offsets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_group_protocol_joins_consumes_and_commits() {
    let (view, offsets) = scores_and_commits_with("classic").await;
    // A stable classic group with librdkafka's default (eager) assignor.
    assert_eq!(view, ("Stable".into(), "consumer".into(), "range".into()));
    for (p, committed, end) in offsets {
        assert_eq!(
            committed,
            Offset::Offset(end),
            "partition {p}: committed up to its end"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kip848_consumer_group_protocol_joins_consumes_and_commits() {
    let (view, offsets) = scores_and_commits_with("consumer").await;
    // The classic API describes classic groups only: to it a KIP-848 group does not exist,
    // although its member was consuming a moment ago. The broker ran the new protocol.
    assert_eq!(view, ("Dead".into(), String::new(), String::new()));
    for (p, committed, end) in offsets {
        assert_eq!(
            committed,
            Offset::Offset(end),
            "partition {p}: committed up to its end"
        );
    }
}

/// KIP-848 rebalances are incremental: a member that gives up some partitions to a newcomer
/// keeps the rest and stays ready, and both members score.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kip848_members_share_partitions_and_stay_ready() {
    let bootstrap = bootstrap();
    let mut config = prepared_topics(bootstrap, 0, 0, |_| {}).await;
    config
        .kafka_options
        .push(("consumer.group.protocol".into(), "consumer".into()));
    let first = ready_member(&config).await;
    let health = first.health().clone();
    let second = Service::start(another_member(&config)).await.unwrap();
    let (second_health, first_metrics) = (second.health().clone(), first.metrics().clone());
    wait_until(
        "the second member to take partitions from the first",
        Duration::from_secs(30),
        || {
            second_health.readiness().ready
                && metric(
                    &first_metrics.render(),
                    "driftwood_rebalances_total{kind=\"revoke\"}",
                )
                .is_some_and(|n| n >= 1.0)
        },
    )
    .await;
    assert!(
        health.readiness().ready,
        "after an incremental revoke: {:?}",
        health.readiness()
    );

    let spec = driftwood::config::tools::ProduceConfig::new(bootstrap, &config.input_topic, 600);
    tokio::task::spawn_blocking(move || driftwood::tools::produce::produce(&spec))
        .await
        .unwrap()
        .unwrap();
    let second_metrics = second.metrics().clone();
    wait_until(
        "600 records over both members",
        Duration::from_secs(60),
        || first_metrics.scored() + second_metrics.scored() >= 600,
    )
    .await;
    assert!(first_metrics.scored() > 0 && second_metrics.scored() > 0);
    first.stop().await.unwrap();
    second.stop().await.unwrap();
}

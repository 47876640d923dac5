//! The only broker of the output topic is down for longer than `max.poll.interval.ms`:
//! driftwood keeps its memory bounded and never commits an input offset past an output the
//! broker has not acknowledged. Outputs carry the broker's append time (`LogAppendTime`), so
//! every commit seen during the outage can be checked against when its outputs landed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::common::*;
use driftwood::config::tools::ProduceConfig;
use driftwood::service::Service;
use driftwood::tools::produce::produce;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// The node coordinating `group`: the leader of its `__consumer_offsets` partition, which
/// Kafka picks from the Java hash of the group id.
fn coordinator(bootstrap: &str, group: &str) -> i32 {
    let hash = group
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    // Asking for the group's offsets creates __consumer_offsets if it does not exist yet.
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = client.committed_offsets(TopicPartitionList::new(), Duration::from_secs(10));
        let metadata = client
            .fetch_metadata(Some("__consumer_offsets"), Duration::from_secs(10))
            .unwrap();
        let partitions = metadata.topics()[0].partitions();
        if !partitions.is_empty() {
            // Kafka's `Utils.abs` (not the partitioner's `toPositive`): |hash|, and 0 for
            // i32::MIN.
            let partition = hash.checked_abs().unwrap_or(0) as usize % partitions.len();
            let leader = partitions.iter().find(|p| p.id() as usize == partition);
            if let Some(leader) = leader.map(|p| p.leader()).filter(|l| *l > 0) {
                return leader;
            }
        }
        assert!(Instant::now() < deadline, "no leader for {group}'s offsets");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Creates `topic` with 3 partitions stamped with the broker's append time, replicated on
/// `replicas` of each partition.
async fn create_append_time_topic(bootstrap: &str, topic: &str, replicas: &[i32]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let assignment = [replicas, replicas, replicas];
    let new = NewTopic::new(topic, 3, TopicReplication::Variable(&assignment))
        .set("message.timestamp.type", "LogAppendTime");
    for r in admin
        .create_topics([&new], &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
}

/// When the broker first appended an output for each input `(partition, offset)`.
fn first_landed(
    predictions: &[OwnedMessage],
    dead_letters: &[OwnedMessage],
) -> HashMap<(i32, i64), i64> {
    let mut landed: HashMap<(i32, i64), i64> = HashMap::new();
    let outputs = predictions
        .iter()
        .map(|m| (source_of_prediction(m), m))
        .chain(dead_letters.iter().map(|m| (source_of_dead_letter(m), m)));
    for (source, m) in outputs {
        let at = m.timestamp().to_millis().unwrap();
        landed
            .entry(source)
            .and_modify(|t| *t = (*t).min(at))
            .or_insert(at);
    }
    landed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_broker_down_past_max_poll_interval_commits_nothing_past_it() {
    init_logging();
    let cluster = KafkaCluster::start(3);
    let bootstrap = cluster.bootstrap();
    let mut config = run_config(bootstrap);
    create_replicated_topics(bootstrap, &[&config.input_topic, &config.drift_topic], 3, 3).await;
    create_append_time_topic(bootstrap, &config.dlq_topic, &[1, 2, 3]).await;
    // The outputs live on one node alone, not the group's coordinator (whose death would
    // move the group, a different test).
    let node = if coordinator(bootstrap, &config.group_id) == 3 {
        2
    } else {
        3
    };
    create_append_time_topic(bootstrap, &config.output_topic, &[node]).await;
    let records = 30_000;
    let mut spec = ProduceConfig::new(bootstrap, &config.input_topic, records);
    spec.corrupt = 30;
    let producer = tokio::task::spawn_blocking(move || produce(&spec));

    config.max_in_flight = 500;
    config.revoke_drain = Duration::from_secs(5);
    config.kafka_options = vec![
        // A node's death holds acks=all writes until the cluster fences it (9 s): the
        // session outlasts that, max.poll.interval.ms (its minimum) is what the test outlasts.
        ("consumer.session.timeout.ms".into(), "15000".into()),
        ("consumer.max.poll.interval.ms".into(), "15000".into()),
        ("producer.message.timeout.ms".into(), "3000".into()),
    ];
    let service = Service::start(config.clone()).await.unwrap();
    let metrics = service.metrics().clone();
    wait_until("scoring to start", Duration::from_secs(60), || {
        metrics.scored() >= 1_000
    })
    .await;
    cluster.kill(node);
    // (committed offsets, when read) while the output is unwritable, past max.poll.interval.ms.
    let mut commits = Vec::new();
    let committed = Committed::reader(bootstrap, &config, 0..3);
    let mut most_in_flight = 0;
    for _ in 0..20 {
        for _ in 0..10 {
            most_in_flight = most_in_flight.max(metrics.transport.in_flight.get());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A query that fails (the cluster is rearranging itself) is only a missed sample.
        if let Ok(offsets) = committed.read() {
            commits.push((offsets, driftwood::obs::epoch_millis()));
        }
    }
    assert!(commits.len() >= 10, "{} commit samples", commits.len());
    assert!(
        most_in_flight <= (500 + 1024) as i64,
        "in flight {most_in_flight}: bounded by --max-in-flight plus one batch"
    );

    cluster.restart(node);
    producer.await.unwrap().expect("producing the input");
    wait_caught_up(bootstrap, &config, Duration::from_secs(120));
    let text = metrics.render();
    service.stop().await.unwrap();
    assert_eq!(
        metric(&text, "driftwood_rebalances_total{kind=\"revoke\"}"),
        Some(0.0),
        "the member stayed in its group throughout"
    );
    let c = conservation(bootstrap, &config);
    eprintln!("output broker down: {c:?}, at most {most_in_flight} in flight");
    assert_eq!(c.missing_count, 0, "inputs without output: {:?}", c.missing);

    let timeout = Duration::from_secs(60);
    let landed = first_landed(
        &conservation::read_to_end(bootstrap, &config.output_topic, timeout),
        &conservation::read_to_end(bootstrap, &config.dlq_topic, timeout),
    );
    for (offsets, read_at) in &commits {
        for (p, offset) in offsets {
            let Offset::Offset(end) = offset else {
                continue;
            };
            let late = (0..*end).find(|o| landed.get(&(*p, *o)).is_none_or(|t| t > read_at));
            assert_eq!(
                late, None,
                "partition {p} committed to {end} by {read_at} ms before its output landed"
            );
        }
    }
}

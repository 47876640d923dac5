//! The three-node Apache Kafka cluster that the fault tests run on (`scripts/kafka.sh
//! cluster-start 3`): replicated topics default to `min.insync.replicas=2`, and a partition
//! leader killed by node id hands over without losing an acknowledged record, then rejoins.

use std::time::{Duration, Instant};

use crate::common::*;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// Sends `count` records to partition 0 with `acks=all` and waits for every acknowledgement;
/// returns how many the cluster acknowledged.
fn produce_to_partition_0(bootstrap: &str, topic: &str, count: usize) -> usize {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "60000")
        .create()
        .unwrap();
    for i in 0..count {
        let payload = i.to_string();
        producer
            .send(
                BaseRecord::<(), _>::to(topic)
                    .partition(0)
                    .payload(&payload),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(90)).unwrap();
    count - producer.in_flight_count() as usize
}

/// `(leader, in-sync replicas)` of partition 0 of `topic`.
fn partition_0(bootstrap: &str, topic: &str) -> (i32, Vec<i32>) {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let metadata = client
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let p = &metadata.topics()[0].partitions()[0];
    (p.leader(), p.isr().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_topics_survive_a_killed_leader() {
    init_logging();
    let cluster = KafkaCluster::start(3);
    let bootstrap = cluster.bootstrap();
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let metadata = client
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    assert_eq!(metadata.brokers().len(), 3, "three brokers serve metadata");

    let topic = unique("replicated");
    create_replicated_topics(bootstrap, &[&topic], 3, 3).await;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let configs = admin
        .describe_configs([&ResourceSpecifier::Topic(&topic)], &AdminOptions::new())
        .await
        .unwrap();
    let config = configs[0].as_ref().unwrap();
    assert_eq!(
        config
            .get("min.insync.replicas")
            .and_then(|e| e.value.as_deref()),
        Some("2")
    );

    assert_eq!(produce_to_partition_0(bootstrap, &topic, 1_000), 1_000);
    let (leader, isr) = partition_0(bootstrap, &topic);
    assert_eq!(isr.len(), 3, "all replicas in sync: {isr:?}");

    // The leader dies; two replicas remain, enough for acks=all under min.insync.replicas=2.
    cluster.kill(leader);
    assert_eq!(produce_to_partition_0(bootstrap, &topic, 1_000), 1_000);
    let (new_leader, _) = partition_0(bootstrap, &topic);
    assert_ne!(new_leader, leader, "leadership moved");

    cluster.restart(leader);
    let deadline = Instant::now() + Duration::from_secs(60);
    while partition_0(bootstrap, &topic).1.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "node {leader} did not rejoin the ISR: {:?}",
            partition_0(bootstrap, &topic)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, end) = client
        .fetch_watermarks(&topic, 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!(end, 2_000, "every acknowledged record is in the log");
}

/// driftwood scores a stream on topics replicated 3 times while the leader of an input
/// partition, then of an output partition, is killed and brought back: nothing is lost and
/// the process is never restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_leaders_of_input_and_output_lose_nothing() {
    init_logging();
    let cluster = KafkaCluster::start(3);
    let bootstrap = cluster.bootstrap();
    let config = fresh_topics(bootstrap, 3, 3).await;
    // 60 s of input: the stream still flows after both kills and restarts.
    let input = stream(bootstrap, &config, 120_000, 2_000.0);

    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("leaders.log"));
    let mut member = Member::start(&config, &[], &log);
    member.wait_scored(2_000.0, Duration::from_secs(60));
    for topic in [&config.input_topic, &config.output_topic] {
        let (leader, _) = partition_0(bootstrap, topic);
        let started = std::time::Instant::now();
        cluster.kill(leader);
        // A thousand more records, or what is left on a machine slow enough that the
        // stream has nearly ended (a first restart once took 31 s).
        let more = |member: &Member| (member.scored() + 1_000.0).min(input.scorable());
        member.wait_scored(more(&member), Duration::from_secs(60));
        cluster.restart(leader);
        member.wait_scored(more(&member), Duration::from_secs(60));
        eprintln!(
            "leader {leader} of {topic}/0 killed and back in {:?}",
            started.elapsed()
        );
    }

    let (exited_zero, c) = settle(bootstrap, &config, input, [member]).await;
    assert!(
        exited_zero,
        "the same process, never restarted, exits 0; logs in {}",
        log.display()
    );
    eprintln!("killed leaders: {c:?}");
    assert_eq!(c.missing_count, 0, "inputs without output: {:?}", c.missing);
    assert_eq!(c.strays, 0);
}

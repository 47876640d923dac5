//! Shared harness for integration tests: Apache Kafka, unique names, and helpers that read
//! topics back. Every wait has a timeout.
//!
//! The broker is `KAFKA_BOOTSTRAP_SERVERS` when set (`scripts/test.sh` sets it), otherwise an
//! Apache Kafka node started here through `scripts/kafka.sh run` and killed when the test
//! process exits.

pub mod collector;
pub mod conservation;
pub mod dressed;
pub mod framed;
pub mod kafka;
pub mod labels;
pub mod parity;
pub mod process;
pub mod registry;
pub mod schema_registry;
pub mod stream;

pub use collector::otlp_collector;
pub use conservation::{Committed, Conservation, conservation, wait_caught_up};
pub use kafka::{Kafka, KafkaCluster, SecureKafka};
pub use process::{Member, sigterm};
pub use stream::{fresh_topics, settle, stream};

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use driftwood::config::RunConfig;
use driftwood::config::tools::ProduceConfig;
use driftwood::tools::produce::produce;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// How to get a broker, printed whenever one is missing.
pub const HOW_TO_GET_A_BROKER: &str = "run `scripts/test.sh` (it installs and starts Apache Kafka; \
     needs Java 17+ and Maven), or start a broker with `scripts/kafka.sh start 9092` and set \
     KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092";

/// A free loopback port (free when checked; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_for_port(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends driftwood's logs to the test output (shown for failing tests).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DRIFTWOOD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The shared broker of this test process.
pub fn bootstrap() -> &'static str {
    init_logging();
    static BROKER: OnceLock<String> = OnceLock::new();
    // A broker started here lives as long as the process (statics are never dropped; the
    // death signal stops it, and `cargo clean` removes its directory under target/tmp).
    static OWNED: OnceLock<Kafka> = OnceLock::new();
    BROKER.get_or_init(|| {
        std::env::var("KAFKA_BOOTSTRAP_SERVERS")
            .unwrap_or_else(|_| OWNED.get_or_init(|| Kafka::start(free_port())).bootstrap())
    })
}

/// `prefix-<random>`: topics and groups never collide between tests or runs.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// Creates topics with `partitions` partitions each, not replicated.
pub async fn create_topics(bootstrap: &str, topics: &[&str], partitions: i32) {
    create_replicated_topics(bootstrap, topics, partitions, 1).await;
}

/// Creates topics with `partitions` partitions of `replication` replicas each.
pub async fn create_replicated_topics(
    bootstrap: &str,
    topics: &[&str],
    partitions: i32,
    replication: i32,
) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(replication)))
        .collect();
    let results = tokio::time::timeout(
        Duration::from_secs(30),
        admin.create_topics(&new, &AdminOptions::new()),
    )
    .await
    .unwrap_or_else(|_| panic!("creating topics timed out: {HOW_TO_GET_A_BROKER}"))
    .expect("create topics");
    for r in results {
        r.expect("topic created");
    }
}

/// A run configuration on fresh topics and group, sidecar on a free port.
pub fn run_config(bootstrap: &str) -> RunConfig {
    let mut config = RunConfig::defaults(bootstrap).unwrap();
    config.input_topic = unique("features");
    config.output_topic = unique("predictions");
    config.dlq_topic = unique("dlq");
    config.drift_topic = unique("drift");
    config.group_id = unique("group");
    config.http_addr = "127.0.0.1:0".parse().unwrap();
    config.shutdown_grace = Duration::from_secs(10);
    config.stats_interval = Duration::from_secs(1);
    // Windows of exactly the records a test sets, however fast they come.
    config.drift.window_min_seconds = Duration::ZERO;
    config
}

/// `config` with a sidecar of its own (a free port), for another member of the same group.
pub fn another_member(config: &RunConfig) -> RunConfig {
    let mut config = config.clone();
    config.http_addr = "127.0.0.1:0".parse().unwrap();
    config
}

/// Starts an instance on `config` (its sidecar on a free port) and waits until it is ready:
/// a group member to add others to.
pub async fn ready_member(config: &RunConfig) -> driftwood::service::Service {
    let member = driftwood::service::Service::start(another_member(config))
        .await
        .unwrap();
    let health = member.health().clone();
    wait_until("a member to be ready", Duration::from_secs(30), || {
        health.readiness().ready
    })
    .await;
    member
}

/// `driftwood run`, the real binary, on `config`'s broker, topics, group and model, with its
/// sidecar on 127.0.0.1:`port`, plus `extra` flags.
pub fn driftwood_run(config: &RunConfig, port: u16, extra: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_driftwood"));
    command.arg("run");
    if let Some(model) = &config.models.model {
        command.arg("--model").arg(model);
    }
    command
        .args(["--bootstrap-servers", &config.brokers()])
        .args(["--input-topic", &config.input_topic])
        .args(["--output-topic", &config.output_topic])
        .args(["--dlq-topic", &config.dlq_topic])
        .args(["--drift-topic", &config.drift_topic])
        .args(["--group-id", &config.group_id])
        .args(["--http-addr", &format!("127.0.0.1:{port}")])
        .args(extra)
        .env("RUST_BACKTRACE", "0");
    command
}

/// A run configuration on fresh 3-partition topics, with `records` feature records
/// (`corrupt` of them corrupt) already produced to the input; `adjust` may change the
/// generator's settings first.
pub async fn prepared_topics(
    bootstrap: &str,
    records: usize,
    corrupt: usize,
    adjust: impl FnOnce(&mut ProduceConfig),
) -> RunConfig {
    let config = run_config(bootstrap);
    create_topics(
        bootstrap,
        &[
            &config.input_topic,
            &config.output_topic,
            &config.dlq_topic,
            &config.drift_topic,
        ],
        3,
    )
    .await;
    let mut spec = ProduceConfig::new(bootstrap, &config.input_topic, records);
    spec.corrupt = corrupt;
    adjust(&mut spec);
    let produced = tokio::task::spawn_blocking(move || produce(&spec))
        .await
        .unwrap()
        .expect("producing the input");
    assert_eq!((produced.records, produced.corrupt), (records, corrupt));
    config
}

/// Reads every partition of `topic` from the start until `expected` messages arrived
/// (fails after `timeout`, saying how many came).
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let out = read_available(bootstrap, topic, expected, timeout);
    assert!(
        out.len() >= expected,
        "read {} of {expected} messages from {topic} within {timeout:?}",
        out.len()
    );
    out
}

/// Like [`read_topic`] but returns what arrived by `timeout` instead of failing.
pub fn read_available(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    read_topics_available(bootstrap, &[topic], expected, timeout)
}

/// [`read_available`] over several topics at once: `expected` messages in all of them.
pub fn read_topics_available(
    bootstrap: &str,
    topics: &[&str],
    expected: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("topic metadata");
        for p in metadata.topics()[0].partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(expected);
    while out.len() < expected && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            out.push(m.expect("consume").detach());
        }
    }
    // Anything beyond `expected` is a bug (duplicates or strays): look a little longer.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            out.push(m.expect("consume").detach());
        }
    }
    out
}

/// How many outputs (predictions and dead letters) name each input `(partition, offset)` as
/// their source, read from `config`'s output and dead-letter topics together until
/// `expected` outputs in all have come, or `timeout` (and a little longer, for strays).
/// (Read one after the other, the dead letters had only the strays' half second: a full
/// test run once found 12 inputs without output, scattered as its 20 corrupt records are,
/// where the test alone passes; a fresh reader's first fetch can take longer under load.)
pub fn outputs_by_input(
    bootstrap: &str,
    config: &RunConfig,
    expected: usize,
    timeout: Duration,
) -> HashMap<(i32, i64), usize> {
    let topics = [config.output_topic.as_str(), config.dlq_topic.as_str()];
    let (predictions, dead_letters): (Vec<_>, Vec<_>) =
        read_topics_available(bootstrap, &topics, expected, timeout)
            .into_iter()
            .partition(|m| m.topic() == config.output_topic);
    count_sources(&predictions, &dead_letters)
}

/// How many of these outputs name each input `(partition, offset)` as their source.
pub fn count_sources(
    predictions: &[OwnedMessage],
    dead_letters: &[OwnedMessage],
) -> HashMap<(i32, i64), usize> {
    let mut seen = HashMap::new();
    for m in predictions {
        *seen.entry(source_of_prediction(m)).or_default() += 1;
    }
    for m in dead_letters {
        *seen.entry(source_of_dead_letter(m)).or_default() += 1;
    }
    seen
}

/// The input `(partition, offset)` a prediction names.
pub fn source_of_prediction(m: &OwnedMessage) -> (i32, i64) {
    use driftwood::codec::encode::{AvroCodec, PredictionRecord};
    static CODEC: OnceLock<AvroCodec> = OnceLock::new();
    let codec = CODEC.get_or_init(AvroCodec::predictions);
    let p: PredictionRecord = codec.decode(m.payload().unwrap()).unwrap();
    (p.source_partition, p.source_offset)
}

/// The input `(partition, offset)` a dead letter names in its headers.
pub fn source_of_dead_letter(m: &OwnedMessage) -> (i32, i64) {
    use driftwood::codec::dead_letter::{HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION};
    let partition = header(m, HEADER_SOURCE_PARTITION).unwrap().parse().unwrap();
    let offset = header(m, HEADER_SOURCE_OFFSET).unwrap().parse().unwrap();
    (partition, offset)
}

/// Every `(partition, offset)` of `topic`, read from the start (`expected` of them).
pub fn input_positions(bootstrap: &str, topic: &str, expected: usize) -> Vec<(i32, i64)> {
    read_topic(bootstrap, topic, expected, Duration::from_secs(60))
        .iter()
        .map(|m| (m.partition(), m.offset()))
        .collect()
}

/// What `config`'s group has committed for each of the input topic's 3 partitions, read as
/// any other client would.
pub fn committed(bootstrap: &str, config: &RunConfig) -> Vec<(i32, Offset)> {
    Committed::reader(bootstrap, config, 0..3).read().unwrap()
}

/// A header's value as text.
pub fn header(message: &OwnedMessage, key: &str) -> Option<String> {
    use rdkafka::message::Headers;
    message.headers().and_then(|h| {
        h.iter()
            .find(|h| h.key == key)
            .and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()))
    })
}

/// `(partition, offset)` → message.
pub fn by_position(messages: &[OwnedMessage]) -> HashMap<(i32, i64), &OwnedMessage> {
    messages
        .iter()
        .map(|m| ((m.partition(), m.offset()), m))
        .collect()
}

/// A plain HTTP/1.1 GET: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    driftwood::http::sidecar::probe(addr, path)
        .unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

/// A sample's value in Prometheus text, e.g. `metric(text, "driftwood_records_total{outcome=\"scored\"}")`.
pub fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
}

/// Polls `condition` every 100 ms until it holds; fails with `what` after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

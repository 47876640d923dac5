//! Shared harness for integration tests: Apache Kafka, unique names, and helpers that read
//! topics back. Every wait has a timeout.
//!
//! The broker is `KAFKA_BOOTSTRAP_SERVERS` when set (`scripts/test.sh` sets it), otherwise an
//! Apache Kafka node started here through `scripts/kafka.sh run` and killed when the test
//! process exits.

#![allow(dead_code)]

pub mod scenarios;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use driftwood::config::RunConfig;
use driftwood::produce::{ProduceConfig, produce};
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

/// Spawns `command` so that it is killed when this process ends, however it ends.
///
/// PR_SET_PDEATHSIG fires when the spawning *thread* exits, so every such child is spawned
/// by one thread that lives as long as the process.
fn spawn_tied_to_this_process(command: Command) -> std::io::Result<Child> {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::spawn(move || {
            for (mut command, reply) in rx {
                #[cfg(target_os = "linux")]
                unsafe {
                    use std::os::unix::process::CommandExt;
                    command.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                let _ = reply.send(command.spawn());
            }
        });
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    spawner.lock().unwrap().send((command, reply)).unwrap();
    answer.recv().unwrap()
}

/// An Apache Kafka node (broker and controller) owned by this test process: started by
/// `scripts/kafka.sh run` in a state directory of its own, stopped with SIGTERM when dropped.
pub struct Kafka {
    child: Child,
    /// The broker's port on 127.0.0.1.
    pub port: u16,
    state: PathBuf,
}

impl Kafka {
    /// Starts a node on `port` and waits until it answers a metadata request.
    pub fn start(port: u16) -> Self {
        let state = tempfile::Builder::new()
            .prefix("kafka-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.sh");
        let mut command = Command::new(script);
        command
            .args(["run", &port.to_string()])
            .env("KAFKA_STATE_DIR", &state)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(state.join("run.err")).unwrap());
        let child = spawn_tied_to_this_process(command)
            .unwrap_or_else(|e| panic!("cannot run scripts/kafka.sh: {e}: {HOW_TO_GET_A_BROKER}"));
        let mut kafka = Kafka { child, port, state };
        kafka.wait_ready(Duration::from_secs(180));
        kafka
    }

    /// `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Until a metadata request lists a broker; fails with the script's own words if it
    /// exits first (no Java, no Maven, port taken).
    fn wait_ready(&mut self, timeout: Duration) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("log_level", "0")
            .create()
            .unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let err = std::fs::read_to_string(self.state.join("run.err")).unwrap_or_default();
                panic!("scripts/kafka.sh run exited ({status}): {err}\n{HOW_TO_GET_A_BROKER}");
            }
            if let Ok(metadata) = consumer.fetch_metadata(None, Duration::from_secs(1))
                && !metadata.brokers().is_empty()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Apache Kafka on port {} not ready after {timeout:?}; logs in {}",
                self.port,
                self.state.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.state);
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

/// Creates topics with `partitions` partitions each.
pub async fn create_topics(bootstrap: &str, topics: &[&str], partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
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
    let mut config = RunConfig::defaults(bootstrap);
    config.input_topic = unique("features");
    config.output_topic = unique("predictions");
    config.dlq_topic = unique("dlq");
    config.drift_topic = unique("drift");
    config.group_id = unique("group");
    config.http_addr = "127.0.0.1:0".parse().unwrap();
    config.model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/breast-cancer/1");
    config.shutdown_grace = Duration::from_secs(10);
    config.stats_interval = Duration::from_secs(1);
    config
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
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("topic metadata");
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
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
    driftwood::sidecar::probe(addr, path).unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
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

//! Apache Kafka for the tests, through `scripts/kafka.sh`: a single node owned by one test
//! (foreground, tied to the test process) and a cluster of several nodes whose brokers can be
//! killed and restarted by node id.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::HOW_TO_GET_A_BROKER;

/// `scripts/kafka.sh` on the brokers in `state`. A test's brokers live a minute or two, and
/// several start at once on two cores: compiled by the JIT's first tier only
/// (`-XX:TieredStopAtLevel=1`, in `KAFKA_OPTS`), a broker takes about 40% less CPU to start
/// (3.2 s against 5.5 s to ready here). The broker `scripts/test.sh` starts for the whole run
/// keeps Kafka's own flags, as does a `KAFKA_OPTS` of the caller's.
fn kafka_sh(state: &Path) -> Command {
    let mut command = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.sh"));
    command.env("KAFKA_STATE_DIR", state);
    if std::env::var_os("KAFKA_OPTS").is_none() {
        command.env("KAFKA_OPTS", "-XX:TieredStopAtLevel=1");
    }
    command
}

/// A fresh directory under the tests' scratch space (target/tmp) for one broker's state.
fn state_dir(prefix: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
        .keep()
}

/// Spawns `command` so that it is killed when this process ends, however it ends.
///
/// PR_SET_PDEATHSIG fires when the spawning *thread* exits, so every such child is spawned
/// by one thread that lives as long as the process.
pub fn spawn_tied_to_this_process(command: Command) -> std::io::Result<Child> {
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

/// SIGTERM to `child`, then up to 30 s for it to exit before SIGKILL.
pub fn terminate(child: &mut Child) {
    super::process::sigterm(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
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
        Self::start_with(port, "")
    }

    /// Starts a node on `port` with `extra` lines in its server.properties.
    pub fn start_with(port: u16, extra: &str) -> Self {
        let state = state_dir("kafka-");
        let child = Self::spawn(&state, port, extra);
        let mut kafka = Kafka { child, port, state };
        kafka.wait_ready(Duration::from_secs(180));
        kafka
    }

    fn spawn(state: &Path, port: u16, extra: &str) -> Child {
        let mut command = kafka_sh(state);
        command
            .args(["run", &port.to_string()])
            .env("KAFKA_EXTRA_CONFIG", extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(state.join("run.err")).unwrap());
        spawn_tied_to_this_process(command)
            .unwrap_or_else(|e| panic!("cannot run scripts/kafka.sh: {e}: {HOW_TO_GET_A_BROKER}"))
    }

    /// Stops the node as an orderly broker shutdown would (SIGTERM), keeping its data.
    pub fn stop(&mut self) {
        terminate(&mut self.child);
    }

    /// Starts the stopped node again on its data, same port, and waits until it is ready.
    pub fn resume(&mut self) {
        // The configuration written at the first start is kept.
        self.child = Self::spawn(&self.state, self.port, "");
        self.wait_ready(Duration::from_secs(180));
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
        self.stop();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// A cluster of KRaft nodes (each broker and controller) from `scripts/kafka.sh
/// cluster-start`, in a state directory of its own; stopped and removed when dropped.
pub struct KafkaCluster {
    state: PathBuf,
    bootstrap: String,
}

impl KafkaCluster {
    /// Starts `nodes` nodes and waits until a metadata request lists every broker.
    pub fn start(nodes: usize) -> Self {
        let state = state_dir("kafka-cluster-");
        // Built first, so that a start that fails half-way is stopped and removed too.
        let mut cluster = KafkaCluster {
            bootstrap: String::new(),
            state,
        };
        cluster.bootstrap = cluster.script(&["cluster-start", &nodes.to_string()]);
        cluster
    }

    /// Every broker's address, comma-separated.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// SIGKILL to node `id` (1-based), as a crash would.
    pub fn kill(&self, id: i32) {
        self.script(&["node-kill", &id.to_string()]);
    }

    /// Starts node `id` again on its data and waits until it serves metadata.
    pub fn restart(&self, id: i32) {
        self.script(&["node-start", &id.to_string()]);
    }

    /// Runs `scripts/kafka.sh ARGS` on this cluster's directory; its standard output.
    fn script(&self, args: &[&str]) -> String {
        let output = kafka_sh(&self.state)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run scripts/kafka.sh: {e}: {HOW_TO_GET_A_BROKER}"));
        assert!(
            output.status.success(),
            "scripts/kafka.sh {args:?} failed: {}\n{HOW_TO_GET_A_BROKER}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        stop_and_remove("cluster-stop", &self.state);
    }
}

/// `scripts/kafka.sh <verb>` on the brokers in `state`, then the directory removed (for the
/// `Drop` of what a test started).
fn stop_and_remove(verb: &str, state: &std::path::Path) {
    let _ = kafka_sh(state).arg(verb).status();
    let _ = std::fs::remove_dir_all(state);
}

/// A node whose client listener takes SASL_SSL only (SCRAM-SHA-512, certificates made by
/// `scripts/kafka.sh secure-start` with openssl), plus a PLAINTEXT listener for test set-up;
/// stopped and removed when dropped.
pub struct SecureKafka {
    state: PathBuf,
    /// The SASL_SSL listener.
    pub sasl_ssl: String,
    /// The PLAINTEXT listener (set-up and checks only).
    pub plaintext: String,
}

impl SecureKafka {
    /// Starts the node and waits until it serves metadata.
    pub fn start(port: u16) -> Self {
        let state = state_dir("kafka-secure-");
        let output = kafka_sh(&state)
            .args(["secure-start", &port.to_string()])
            .output()
            .unwrap_or_else(|e| panic!("cannot run scripts/kafka.sh: {e}: {HOW_TO_GET_A_BROKER}"));
        // Built first, so that a start that fails half-way is stopped and removed too.
        let mut kafka = SecureKafka {
            state,
            sasl_ssl: String::new(),
            plaintext: String::new(),
        };
        assert!(
            output.status.success(),
            "scripts/kafka.sh secure-start failed: {}\n{HOW_TO_GET_A_BROKER}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut lines = stdout.lines();
        kafka.sasl_ssl = lines.next().unwrap().to_string();
        kafka.plaintext = lines.next().unwrap().to_string();
        kafka
    }

    /// The CA certificate clients verify the broker with.
    pub fn ca(&self) -> PathBuf {
        self.state.join("tls/ca.pem")
    }

    /// The file holding user `driftwood`'s SCRAM password.
    pub fn password_file(&self) -> PathBuf {
        self.state.join("tls/scram-password")
    }
}

impl Drop for SecureKafka {
    fn drop(&mut self) {
        stop_and_remove("stop", &self.state);
    }
}

//! Apicurio Registry for the tests, through `scripts/registry.sh run`: the shared one
//! (`SCHEMA_REGISTRY_URL`, which `scripts/test.sh` sets, else one started here for the test
//! process), or one owned by a test that stops and restarts it. Requests go through reqwest's
//! blocking client: call these from plain threads, not async tasks.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::kafka::{spawn_tied_to_this_process, terminate};

/// How to get a schema registry, printed whenever one is missing.
pub const HOW_TO_GET_A_REGISTRY: &str = "run `scripts/test.sh` (it builds and starts Apicurio \
     Registry from Maven Central; needs Java 17+ and Maven), or start one with \
     `scripts/registry.sh start 8081` and set \
     SCHEMA_REGISTRY_URL=http://127.0.0.1:8081/apis/ccompat/v7";

/// An Apicurio Registry owned by this test process, its schemas in a directory of its own;
/// stopped when dropped.
pub struct SchemaRegistry {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl SchemaRegistry {
    /// Starts one on `port` and waits until its Confluent-compatible API answers.
    pub fn start(port: u16) -> Self {
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(super::unique("registry.log"));
        let mut registry = SchemaRegistry {
            child: Self::spawn(port, &log),
            port,
            log,
        };
        registry.wait_ready(Duration::from_secs(180));
        registry
    }

    fn spawn(port: u16, log: &Path) -> Child {
        let mut command =
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/registry.sh"));
        command
            .args(["run", &port.to_string()])
            .env("REGISTRY_STATE_DIR", format!("{}.state", log.display()))
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(std::fs::File::options().append(true).open(log).unwrap());
        spawn_tied_to_this_process(command).unwrap_or_else(|e| {
            panic!("cannot run scripts/registry.sh: {e}: {HOW_TO_GET_A_REGISTRY}")
        })
    }

    /// The Confluent-compatible API's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/apis/ccompat/v7", self.port)
    }

    /// Stops it (SIGTERM).
    pub fn stop(&mut self) {
        terminate(&mut self.child);
    }

    /// Starts it again on the same port, with the schemas it had.
    pub fn restart(&mut self) {
        self.child = Self::spawn(self.port, &self.log);
        self.wait_ready(Duration::from_secs(180));
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let url = format!("{}/subjects", self.url());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: String = log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
                panic!(
                    "scripts/registry.sh run exited ({status}): {tail}\n{HOW_TO_GET_A_REGISTRY}"
                );
            }
            if reqwest::blocking::get(&url).is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no registry at {url} after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for SchemaRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The shared registry's URL: `SCHEMA_REGISTRY_URL`, else one started for this process.
pub fn schema_registry() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    static OWNED: OnceLock<SchemaRegistry> = OnceLock::new();
    URL.get_or_init(|| {
        std::env::var("SCHEMA_REGISTRY_URL").unwrap_or_else(|_| {
            OWNED
                .get_or_init(|| SchemaRegistry::start(super::free_port()))
                .url()
        })
    })
}

/// `POST {url}{path}` with a JSON body: the status and the JSON answer.
pub fn post(url: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let response = reqwest::blocking::Client::new()
        .post(format!("{url}{path}"))
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .body(body.to_string())
        .send()
        .unwrap_or_else(|e| panic!("{url}{path}: {e}: {HOW_TO_GET_A_REGISTRY}"));
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// `GET {url}{path}`: the status and the JSON answer.
pub fn get(url: &str, path: &str) -> (u16, serde_json::Value) {
    let response = reqwest::blocking::get(format!("{url}{path}"))
        .unwrap_or_else(|e| panic!("{url}{path}: {e}: {HOW_TO_GET_A_REGISTRY}"));
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// Registers `schema` under `subject` and returns its id.
pub fn register(url: &str, subject: &str, schema: &str) -> u32 {
    let (status, body) = post(
        url,
        &format!("/subjects/{subject}/versions"),
        serde_json::json!({ "schema": schema }),
    );
    assert_eq!(status, 200, "registering under {subject}: {body}");
    body["id"].as_u64().expect("an id") as u32
}

/// An Apicurio Registry serving HTTPS only and requiring client certificates
/// (`scripts/registry.sh secure-start`), with the CA and a client certificate it made; stopped
/// and removed when dropped.
pub struct SecureSchemaRegistry {
    state: PathBuf,
    /// Its Confluent-compatible API, `https://localhost:PORT/apis/ccompat/v7`.
    pub url: String,
}

impl SecureSchemaRegistry {
    /// Starts one on `port`, once it answers a client with the certificate.
    pub fn start(port: u16) -> Self {
        let state = tempfile::Builder::new()
            .prefix("registry-tls-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        let output =
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/registry.sh"))
                .args(["secure-start", &port.to_string()])
                .env("REGISTRY_STATE_DIR", &state)
                .output()
                .unwrap_or_else(|e| {
                    panic!("cannot run scripts/registry.sh: {e}: {HOW_TO_GET_A_REGISTRY}")
                });
        assert!(
            output.status.success(),
            "scripts/registry.sh secure-start failed: {}\n{HOW_TO_GET_A_REGISTRY}",
            String::from_utf8_lossy(&output.stderr)
        );
        let url = String::from_utf8(output.stdout).unwrap().trim().to_string();
        SecureSchemaRegistry { state, url }
    }

    /// A file of its TLS material: `ca.pem`, `client.pem`, `client.key`.
    pub fn tls(&self, file: &str) -> PathBuf {
        self.state.join("tls").join(file)
    }

    /// A client that trusts its CA and presents the client certificate.
    pub fn client(&self) -> reqwest::blocking::Client {
        let read = |f: &str| std::fs::read(self.tls(f)).unwrap();
        let ca = reqwest::Certificate::from_pem(&read("ca.pem")).unwrap();
        let identity =
            reqwest::Identity::from_pkcs8_pem(&read("client.pem"), &read("client.key")).unwrap();
        reqwest::blocking::Client::builder()
            .add_root_certificate(ca)
            .identity(identity)
            .build()
            .unwrap()
    }
}

impl Drop for SecureSchemaRegistry {
    fn drop(&mut self) {
        let _ = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/registry.sh"))
            .arg("stop")
            .env("REGISTRY_STATE_DIR", &self.state)
            .status();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

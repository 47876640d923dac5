//! driftwood through a schema registry as other clients see it: Confluent's Python client
//! producing with its stock AvroSerializer and reading predictions with AvroDeserializer, a
//! registry that takes mutual TLS only, and the instances of a group registering their
//! outputs' schemas at once.

use std::time::Duration;

use driftwood::codec::decode::BUNDLED_FEATURE_SCHEMA;

use crate::common::framed::*;
use crate::common::schema_registry::{SecureSchemaRegistry, schema_registry};
use crate::common::*;

/// The Python with Confluent's client (`tests/registry/requirements.txt`):
/// `DRIFTWOOD_REGISTRY_PYTHON`, which `scripts/test.sh` sets.
fn client_python() -> String {
    std::env::var("DRIFTWOOD_REGISTRY_PYTHON").unwrap_or_else(|_| {
        panic!(
            "DRIFTWOOD_REGISTRY_PYTHON is not set: this test runs Confluent's Python client. \
             scripts/test.sh sets it up; by hand: \
             `export DRIFTWOOD_REGISTRY_PYTHON=$(scripts/py-env.sh tests/registry/requirements.txt)`"
        )
    })
}

/// `tests/registry/client.py` with `args`; its standard output.
fn client(args: &[&str]) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/registry/client.py");
    let output = std::process::Command::new(client_python())
        .arg(script)
        .args(args)
        .output()
        .expect("the client's Python starts");
    assert!(
        output.status.success(),
        "client.py {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn confluents_python_client_produces_to_driftwood_and_reads_its_predictions() {
    let (bootstrap, url) = (bootstrap(), schema_registry());
    let config = topics(2);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (schema, rows) = (
        root.join("schemas/features.avsc"),
        root.join("models/breast-cancer/1/reference.csv"),
    );
    let n = 50;
    client(&[
        "produce",
        bootstrap,
        url,
        &config.input_topic,
        schema.to_str().unwrap(),
        rows.to_str().unwrap(),
        &n.to_string(),
    ]);
    let input_id = latest_id(url, &format!("{}-value", config.input_topic));

    let member = Member::start(&config, &confluent_both_ways(url), &log("python-client"));
    let read = client(&[
        "consume",
        bootstrap,
        url,
        &config.output_topic,
        &n.to_string(),
        "90",
    ]);
    let inputs = read_topic(bootstrap, &config.input_topic, n, Duration::from_secs(10));
    assert!(
        member.terminate(Duration::from_secs(30)),
        "driftwood stops cleanly"
    );

    for message in &inputs {
        assert_eq!(
            unframe(message).0,
            input_id,
            "the serializer framed the input with its schema's id"
        );
    }
    let prediction_id = latest_id(url, &format!("{}-value", config.output_topic));
    let predictions: Vec<serde_json::Value> = read
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut ids: Vec<&str> = predictions
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..n).map(|i| format!("py-{i}")).collect();
    expected.sort();
    assert_eq!(
        ids, expected,
        "one prediction per record the client produced"
    );
    for p in &predictions {
        assert_eq!(p["schema_id"], prediction_id, "{p}");
        assert_eq!(p["model_name"], "breast-cancer", "{p}");
        let confidence = p["confidence"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&confidence), "{p}");
        assert!(matches!(p["predicted_label"].as_i64(), Some(0 | 1)), "{p}");
    }
}

#[test]
fn a_registry_that_requires_client_certificates_is_reached_over_mutual_tls() {
    let bootstrap = bootstrap();
    let registry = SecureSchemaRegistry::start(free_port());
    let config = topics(1);
    let subject = format!("{}-value", config.input_topic);
    let response = (registry.client())
        .post(format!("{}/subjects/{subject}/versions", registry.url))
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .body(serde_json::json!({ "schema": BUNDLED_FEATURE_SCHEMA }).to_string())
        .send()
        .unwrap();
    let id = response.json_value()["id"].as_u64().unwrap() as u32;
    let rows = rows(30);
    let input: Vec<(i32, Vec<u8>)> = (rows.iter().enumerate())
        .map(|(i, row)| {
            (
                0,
                framed(BUNDLED_FEATURE_SCHEMA, id, &format!("tls-{i}"), row),
            )
        })
        .collect();
    send(bootstrap, &config.input_topic, &input);

    // Without a client certificate the registry refuses the handshake: records wait, and
    // /ready says why.
    let (ca, cert, key) = (
        registry.tls("ca.pem"),
        registry.tls("client.pem"),
        registry.tls("client.key"),
    );
    let mut flags = confluent_in(&registry.url).to_vec();
    flags.extend(["--schema-registry-ca-file", ca.to_str().unwrap()]);
    let member = Member::start(&config, &flags, &log("no-client-cert"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(wait_until(
        "/ready to name the registry",
        Duration::from_secs(60),
        || {
            // Nothing answers until the sidecar is up.
            let ready = driftwood::http::sidecar::probe(member.addr, "/ready");
            ready.is_ok_and(|(status, body)| {
                status == 503 && body.contains("schema registry is unavailable")
            })
        },
    ));
    assert!(
        member.terminate(Duration::from_secs(30)),
        "driftwood stops cleanly"
    );
    let early = read_available(bootstrap, &config.output_topic, 1, Duration::from_secs(1));
    assert!(
        early.is_empty(),
        "nothing scored without the registry's schema"
    );

    flags.extend(["--schema-registry-cert-file", cert.to_str().unwrap()]);
    flags.extend([
        "--schema-registry-key-file",
        key.to_str().unwrap(),
        "--output-format",
        "confluent",
    ]);
    let member = Member::start(&config, &flags, &log("mtls"));
    let predictions = read_topic(bootstrap, &config.output_topic, 30, Duration::from_secs(60));
    assert!(
        member.terminate(Duration::from_secs(30)),
        "driftwood stops cleanly"
    );
    let subject = format!("{}-value", config.output_topic);
    let latest = (registry.client())
        .get(format!(
            "{}/subjects/{subject}/versions/latest",
            registry.url
        ))
        .send()
        .unwrap()
        .json_value();
    for message in &predictions {
        assert_eq!(
            u64::from(unframe(message).0),
            latest["id"].as_u64().unwrap()
        );
    }
}

/// A response body as JSON.
trait JsonValue {
    fn json_value(self) -> serde_json::Value;
}

impl JsonValue for reqwest::blocking::Response {
    fn json_value(self) -> serde_json::Value {
        serde_json::from_str(&self.text().unwrap()).unwrap()
    }
}

/// Instances of a group that start together register the same new subjects at once, and
/// Apicurio answers all but one "409: already exists": every instance finds the schema's id
/// and runs, and the predictions are framed with that one id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_all_register_their_outputs_and_run() {
    let bootstrap = bootstrap();
    let url = tokio::task::spawn_blocking(schema_registry).await.unwrap();
    let config = prepared_topics(bootstrap, 90, 0, |_| {}).await;
    let flags = ["--output-format", "confluent", "--schema-registry-url", url];
    let logs: Vec<_> = (0..3).map(|i| log(&format!("together-{i}"))).collect();
    let members: Vec<Member> = (logs.iter())
        .map(|log| Member::start(&config, &flags, log))
        .collect();
    let (bootstrap_, topic) = (bootstrap.to_string(), config.output_topic.clone());
    let predictions = tokio::task::spawn_blocking(move || {
        read_topic(&bootstrap_, &topic, 90, Duration::from_secs(90))
    })
    .await
    .unwrap();
    let subject = format!("{}-value", config.output_topic);
    let id = tokio::task::spawn_blocking(move || latest_id(url, &subject))
        .await
        .unwrap();
    for message in &predictions {
        assert_eq!(unframe(message).0, id, "framed with the subject's one id");
    }
    for (member, log) in members.into_iter().zip(&logs) {
        let log = || std::fs::read_to_string(log).unwrap_or_default();
        assert!(
            member.ready_status().is_some(),
            "every instance runs:\n{}",
            log()
        );
        assert!(
            member.terminate(Duration::from_secs(30)),
            "stops cleanly:\n{}",
            log()
        );
    }
}

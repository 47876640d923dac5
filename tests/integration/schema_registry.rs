//! driftwood with a real schema registry (Apicurio Registry's Confluent-compatible API):
//! writer schemas fetched by id as producers evolve them, unknown ids and schemas lacking a
//! feature dead-lettered, outputs registered and framed, a registry outage that holds only
//! the records of new ids, and the prediction schema's history checked for compatibility by
//! the registry itself.

use std::collections::HashMap;
use std::time::Duration;

use apache_avro::Schema;
use apache_avro::types::Value;
use driftwood::codec::decode::BUNDLED_FEATURE_SCHEMA;
use driftwood::codec::encode::{AvroCodec, PREDICTION_SCHEMA, PredictionRecord};
use driftwood::config::RunConfig;
use rdkafka::ClientConfig;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::common::schema_registry::{
    SchemaRegistry, SecureSchemaRegistry, get, post, register, schema_registry,
};
use crate::common::*;

/// The bundled model's features, in its order.
fn features() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/breast-cancer/1");
    driftwood::model::Model::load(&dir)
        .unwrap()
        .metadata
        .features
}

/// `n` rows of the bundled model's reference data, by feature name, with the values the
/// evolved schema narrows (int, long, float) already narrowed, so both schemas carry them
/// exactly.
fn rows(n: usize) -> Vec<HashMap<String, f64>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/breast-cancer/1/reference.csv");
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let names = features();
    (reader.records().take(n))
        .map(|r| {
            let r = r.unwrap();
            (header.iter().zip(r.iter()))
                .filter(|(h, _)| names.contains(h))
                .map(|(h, v)| {
                    let v: f64 = v.parse().unwrap();
                    let narrowed = match names.iter().position(|n| n == h) {
                        Some(0) | Some(1) => v.round(),
                        Some(2) => f64::from(v as f32),
                        _ => v,
                    };
                    (h.clone(), narrowed)
                })
                .collect()
        })
        .collect()
}

/// The bundled schema evolved as producers do: fields in reverse order, a field of the
/// producer's own, the first two features as int and long, the third as float.
fn evolved_schema() -> String {
    let mut schema: serde_json::Value = serde_json::from_str(BUNDLED_FEATURE_SCHEMA).unwrap();
    let names = features();
    let fields = schema["fields"].as_array_mut().unwrap();
    fields.reverse();
    for field in fields.iter_mut() {
        let narrowed = match names.iter().position(|n| field["name"] == n.as_str()) {
            Some(0) => "int",
            Some(1) => "long",
            Some(2) => "float",
            _ => continue,
        };
        field["type"] = narrowed.into();
    }
    fields.insert(3, serde_json::json!({"name": "sensor", "type": "string"}));
    schema.to_string()
}

/// The bundled schema without the model's first feature.
fn lacking_schema() -> String {
    let mut schema: serde_json::Value = serde_json::from_str(BUNDLED_FEATURE_SCHEMA).unwrap();
    let first = features()[0].clone();
    let fields = schema["fields"].as_array_mut().unwrap();
    fields.retain(|f| f["name"] != first.as_str());
    schema.to_string()
}

/// `row` written with `schema` (fields filled by name), framed with schema `id`.
fn framed(schema: &str, id: u32, record_id: &str, row: &HashMap<String, f64>) -> Vec<u8> {
    let schema = Schema::parse_str(schema).unwrap();
    let Schema::Record(record) = &schema else {
        unreachable!()
    };
    let fields = (record.fields.iter())
        .map(|f| {
            let v = row.get(&f.name).copied();
            let value = match (f.name.as_str(), &f.schema) {
                ("id", _) => Value::String(record_id.into()),
                ("event_time", _) => Value::TimestampMillis(1_700_000_000_000),
                ("label", _) => Value::Union(0, Box::new(Value::Null)),
                ("sensor", _) => Value::String("probe-7".into()),
                (_, Schema::Int) => Value::Int(v.unwrap() as i32),
                (_, Schema::Long) => Value::Long(v.unwrap() as i64),
                (_, Schema::Float) => Value::Float(v.unwrap() as f32),
                (_, _) => Value::Double(v.unwrap()),
            };
            (f.name.clone(), value)
        })
        .collect();
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .unwrap();
    writer.write_value(&mut out, Value::Record(fields)).unwrap();
    out
}

/// Sends each `(partition, payload)` to `topic`, in order, and waits for them.
fn send(bootstrap: &str, topic: &str, messages: &[(i32, Vec<u8>)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for (partition, payload) in messages {
        let record = BaseRecord::<(), _>::to(topic)
            .partition(*partition)
            .payload(payload);
        producer.send(record).map_err(|(e, _)| e).unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// A configuration on fresh topics of `partitions` partitions each.
fn topics(partitions: i32) -> RunConfig {
    let bootstrap = bootstrap();
    let config = run_config(bootstrap);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let names = [
        &config.input_topic,
        &config.output_topic,
        &config.dlq_topic,
        &config.drift_topic,
    ];
    runtime.block_on(create_topics(
        bootstrap,
        &names.map(String::as_str),
        partitions,
    ));
    config
}

/// The id a Confluent-framed payload names, and the Avro body.
fn unframe(message: &OwnedMessage) -> (u32, Vec<u8>) {
    let payload = message.payload().unwrap();
    assert_eq!(payload[0], 0, "Confluent magic byte");
    let id = u32::from_be_bytes(payload[1..5].try_into().unwrap());
    (id, payload[5..].to_vec())
}

fn latest_id(url: &str, subject: &str) -> u32 {
    let (status, body) = get(url, &format!("/subjects/{subject}/versions/latest"));
    assert_eq!(status, 200, "{subject}: {body}");
    body["id"].as_u64().unwrap() as u32
}

#[test]
fn evolved_writer_schemas_are_read_by_id_and_outputs_are_registered_and_framed() {
    let (bootstrap, url) = (bootstrap(), schema_registry());
    let config = topics(1);
    let subject = format!("{}-value", config.input_topic);
    let (v1, v2) = (BUNDLED_FEATURE_SCHEMA.to_string(), evolved_schema());
    let v1_id = register(url, &subject, &v1);
    let v2_id = register(url, &subject, &v2);
    let lacking = register(
        url,
        &format!("{}-lacking-value", config.input_topic),
        &lacking_schema(),
    );
    let unknown = 987_654_321;
    let rows = rows(40);
    let mut input = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        input.push((0, framed(&v1, v1_id, &format!("v1-{i}"), row)));
        input.push((0, framed(&v2, v2_id, &format!("v2-{i}"), row)));
    }
    let lacking_text = lacking_schema();
    for (i, row) in rows.iter().take(5).enumerate() {
        input.push((
            0,
            framed(&lacking_text, lacking, &format!("lacking-{i}"), row),
        ));
    }
    for (i, row) in rows.iter().take(3).enumerate() {
        input.push((0, framed(&v1, unknown, &format!("unknown-{i}"), row)));
    }
    send(bootstrap, &config.input_topic, &input);

    let flags = [
        "--input-format",
        "confluent",
        "--schema-registry-url",
        url,
        "--output-format",
        "confluent",
        "--drift-window-records",
        "40",
    ];
    let member = Member::start(&config, &flags, &log("evolved"));
    let predictions = read_topic(bootstrap, &config.output_topic, 80, Duration::from_secs(90));
    let dead = read_topic(bootstrap, &config.dlq_topic, 8, Duration::from_secs(30));
    let reports = read_topic(bootstrap, &config.drift_topic, 1, Duration::from_secs(30));
    let (_, metrics) = http_get(member.addr, "/metrics");
    assert!(
        member.terminate(Duration::from_secs(30)),
        "driftwood stops cleanly"
    );

    let prediction_id = latest_id(url, &format!("{}-value", config.output_topic));
    let drift_id = latest_id(url, &format!("{}-value", config.drift_topic));
    let codec = AvroCodec::predictions();
    let mut by_record: HashMap<String, PredictionRecord> = HashMap::new();
    for message in &predictions {
        let (id, body) = unframe(message);
        assert_eq!(
            id, prediction_id,
            "predictions framed with the registered schema's id"
        );
        let p: PredictionRecord = codec.decode(&body).unwrap();
        by_record.insert(p.id.clone(), p);
    }
    assert_eq!(predictions.len(), 80, "one prediction per decodable record");
    for i in 0..rows.len() {
        let (a, b) = (
            &by_record[&format!("v1-{i}")],
            &by_record[&format!("v2-{i}")],
        );
        assert_eq!(
            (a.predicted_label, a.confidence),
            (b.predicted_label, b.confidence),
            "record {i}: the evolved schema's record scores as the original"
        );
    }
    let kinds: Vec<(String, String)> = (dead.iter())
        .map(|m| {
            (
                header(m, "driftwood.error.kind").unwrap(),
                header(m, "driftwood.error.message").unwrap(),
            )
        })
        .collect();
    let count = |kind: &str| kinds.iter().filter(|(k, _)| k == kind).count();
    assert_eq!(
        (count("incompatible_schema"), count("unknown_schema")),
        (5, 3),
        "{kinds:?}"
    );
    let first = &features()[0];
    for (kind, message) in &kinds {
        let names = if kind == "incompatible_schema" {
            first.clone()
        } else {
            unknown.to_string()
        };
        assert!(
            message.contains(&names),
            "{kind}: {message:?} names {names}"
        );
    }
    let (id, _) = unframe(&reports[0]);
    assert_eq!(
        id, drift_id,
        "drift reports framed with their registered schema's id"
    );
    let requests = |outcome: &str| {
        metric(
            &metrics,
            &format!("driftwood_schema_registry_requests_total{{outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(
        (requests("found"), requests("unknown")),
        (Some(3.0), Some(1.0)),
        "each id asked once"
    );
}

#[test]
fn a_registry_outage_holds_the_records_of_new_ids_while_known_ids_flow() {
    let bootstrap = bootstrap();
    let mut registry = SchemaRegistry::start(free_port());
    let url = registry.url();
    let config = topics(2);
    let subject = format!("{}-value", config.input_topic);
    let (v1, v2) = (BUNDLED_FEATURE_SCHEMA.to_string(), evolved_schema());
    let (v1_id, v2_id) = (register(&url, &subject, &v1), register(&url, &subject, &v2));
    let rows = rows(30);
    let known = |from: usize, to: usize| -> Vec<(i32, Vec<u8>)> {
        (from..to)
            .map(|i| (1, framed(&v1, v1_id, &format!("known-{i}"), &rows[i % 30])))
            .collect()
    };
    send(bootstrap, &config.input_topic, &known(0, 20));
    let flags = [
        "--input-format",
        "confluent",
        "--schema-registry-url",
        url.as_str(),
    ];
    let member = Member::start(&config, &flags, &log("outage"));
    let addr = member.addr;
    read_topic(bootstrap, &config.output_topic, 20, Duration::from_secs(90));

    registry.stop();
    let new: Vec<(i32, Vec<u8>)> = (0..15)
        .map(|i| (0, framed(&v2, v2_id, &format!("new-{i}"), &rows[i])))
        .collect();
    send(bootstrap, &config.input_topic, &new);
    send(bootstrap, &config.input_topic, &known(20, 50));
    let during = read_topic(bootstrap, &config.output_topic, 50, Duration::from_secs(60));
    let (status, ready) = http_get(addr, "/ready");
    let (_, metrics) = http_get(addr, "/metrics");
    assert_eq!(
        status, 503,
        "not ready while records wait for the registry: {ready}"
    );
    assert!(ready.contains("schema registry is unavailable"), "{ready}");
    assert_eq!(
        metric(&metrics, "driftwood_schema_held_partitions"),
        Some(1.0)
    );
    assert_eq!(
        partition_sources(&during, 0),
        0,
        "nothing of the held partition was output while the registry was down"
    );
    assert_eq!(
        partition_sources(&during, 1),
        50,
        "records of the known id kept flowing"
    );
    let dead = read_available(bootstrap, &config.dlq_topic, 1, Duration::from_secs(2));
    assert!(
        dead.is_empty(),
        "records of a new id wait; they are not dead-lettered"
    );

    // Restarted empty (in-memory storage): the same registrations in the same order give
    // the same ids.
    registry.restart();
    assert_eq!(
        (register(&url, &subject, &v1), register(&url, &subject, &v2)),
        (v1_id, v2_id)
    );
    let after = read_topic(bootstrap, &config.output_topic, 65, Duration::from_secs(90));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(wait_until("ready again", Duration::from_secs(30), || {
        http_get(addr, "/ready").0 == 200
    }));
    assert!(
        member.terminate(Duration::from_secs(30)),
        "driftwood stops cleanly"
    );

    assert_eq!(after.len(), 65, "every record once: none lost, none twice");
    let mut held: Vec<i64> = (after.iter())
        .map(source_of_prediction)
        .filter(|(p, _)| *p == 0)
        .map(|(_, o)| o)
        .collect();
    held.sort();
    assert_eq!(
        held,
        (0..15).collect::<Vec<_>>(),
        "the held partition's records, each once"
    );
}

/// Where a test's `driftwood run` writes its log.
fn log(test: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(unique(&format!("schema-registry-{test}.log")))
}

/// How many of `outputs` come from input `partition`.
fn partition_sources(outputs: &[OwnedMessage], partition: i32) -> usize {
    outputs
        .iter()
        .filter(|m| source_of_prediction(m).0 == partition)
        .count()
}

#[test]
fn the_prediction_schema_evolves_backward_compatibly_by_the_registry() {
    let url = schema_registry();
    let subject = unique("predictions") + "-value";
    let history = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/history");
    let put = reqwest::blocking::Client::new()
        .put(format!("{url}/config/{subject}"))
        .header("Content-Type", "application/json")
        .body(r#"{"compatibility":"BACKWARD_TRANSITIVE"}"#)
        .send()
        .unwrap();
    assert_eq!(
        put.status().as_u16(),
        200,
        "setting BACKWARD_TRANSITIVE on {subject}"
    );
    for version in ["prediction-1.avsc", "prediction-2.avsc"] {
        let schema = std::fs::read_to_string(history.join(version)).unwrap();
        register(url, &subject, &schema);
    }
    let check = |schema: &str| {
        let path = format!("/compatibility/subjects/{subject}/versions/latest");
        let (status, body) = post(url, &path, serde_json::json!({ "schema": schema }));
        assert_eq!(status, 200, "{body}");
        body["is_compatible"].as_bool().unwrap()
    };
    assert!(
        check(PREDICTION_SCHEMA),
        "the current prediction schema reads every earlier one"
    );
    // The check is real: a new field without a default cannot read earlier records.
    let mut broken: serde_json::Value = serde_json::from_str(PREDICTION_SCHEMA).unwrap();
    let fields = broken["fields"].as_array_mut().unwrap();
    fields.push(serde_json::json!({"name": "required_later", "type": "string"}));
    assert!(
        !check(&broken.to_string()),
        "a field without a default is refused"
    );
    register(url, &subject, PREDICTION_SCHEMA);
}

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

    let flags = [
        "--input-format",
        "confluent",
        "--schema-registry-url",
        url,
        "--output-format",
        "confluent",
    ];
    let member = Member::start(&config, &flags, &log("python-client"));
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
    let mut flags = vec![
        "--input-format",
        "confluent",
        "--schema-registry-url",
        &registry.url,
        "--schema-registry-ca-file",
        ca.to_str().unwrap(),
    ];
    let member = Member::start(&config, &flags, &log("no-client-cert"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(wait_until(
        "/ready to name the registry",
        Duration::from_secs(60),
        || {
            // Nothing answers until the sidecar is up.
            let ready = driftwood::ops::sidecar::probe(member.addr, "/ready");
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

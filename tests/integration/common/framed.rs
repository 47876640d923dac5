//! Feature records as a producer with a schema registry writes them: the bundled model's
//! reference rows under the bundled schema or evolved ones, Confluent-framed with a schema
//! id, sent to chosen partitions; and reading the frames back. For the schema registry tests.

use std::collections::HashMap;
use std::time::Duration;

use apache_avro::Schema;
use apache_avro::types::Value;
use driftwood::codec::decode::BUNDLED_FEATURE_SCHEMA;
use driftwood::config::RunConfig;
use rdkafka::ClientConfig;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::schema_registry::get;
use super::{bootstrap, create_topics, run_config, unique};

/// The bundled model's features, in its order.
pub fn features() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/breast-cancer/1");
    driftwood::model::Model::load(&dir)
        .unwrap()
        .metadata
        .features
}

/// `n` rows of the bundled model's reference data, by feature name, with the values the
/// evolved schema narrows (int, long, float) already narrowed, so both schemas carry them
/// exactly.
pub fn rows(n: usize) -> Vec<HashMap<String, f64>> {
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
pub fn evolved_schema() -> String {
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
pub fn lacking_schema() -> String {
    let mut schema: serde_json::Value = serde_json::from_str(BUNDLED_FEATURE_SCHEMA).unwrap();
    let first = features()[0].clone();
    let fields = schema["fields"].as_array_mut().unwrap();
    fields.retain(|f| f["name"] != first.as_str());
    schema.to_string()
}

/// `row` written with `schema` (fields filled by name), framed with schema `id`.
pub fn framed(schema: &str, id: u32, record_id: &str, row: &HashMap<String, f64>) -> Vec<u8> {
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
pub fn send(bootstrap: &str, topic: &str, messages: &[(i32, Vec<u8>)]) {
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
pub fn topics(partitions: i32) -> RunConfig {
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
pub fn unframe(message: &OwnedMessage) -> (u32, Vec<u8>) {
    let payload = message.payload().unwrap();
    assert_eq!(payload[0], 0, "Confluent magic byte");
    let id = u32::from_be_bytes(payload[1..5].try_into().unwrap());
    (id, payload[5..].to_vec())
}

pub fn latest_id(url: &str, subject: &str) -> u32 {
    let (status, body) = get(url, &format!("/subjects/{subject}/versions/latest"));
    assert_eq!(status, 200, "{subject}: {body}");
    body["id"].as_u64().unwrap() as u32
}

/// `driftwood run`'s flags for Confluent-framed input through the registry at `url`.
pub fn confluent_in(url: &str) -> [&str; 4] {
    ["--input-format", "confluent", "--schema-registry-url", url]
}

/// `driftwood run`'s flags for Confluent framing in and out through the registry at `url`.
pub fn confluent_both_ways(url: &str) -> Vec<&str> {
    let mut flags = confluent_in(url).to_vec();
    flags.extend(["--output-format", "confluent"]);
    flags
}

/// Where a test's `driftwood run` writes its log.
pub fn log(test: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(unique(&format!("schema-registry-{test}.log")))
}

//! Several models in one instance (`--route-by`, `--route-models`), on Apache Kafka: each
//! record is scored by the model its header or field names, the default model scores the
//! rest, a record naming a model not served is dead-lettered, and each model has its own
//! metrics and drift windows.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use driftwood::codec::encode::{AvroCodec, PredictionRecord};
use driftwood::drift::DriftReport;
use rdkafka::message::{Header, OwnedHeaders};

use crate::common::conservation::{decoded, read_to_end};
use crate::common::dressed::dressed_input;
use crate::common::process::Member;
use crate::common::registry::{driftwood, registry};
use crate::common::*;

const RECORDS: usize = 600;

/// The model record `i` is meant for: `small` every third, a model nobody serves every
/// 50th, the default (none named) otherwise.
fn meant_for(i: usize) -> Option<&'static str> {
    match i {
        i if i % 50 == 7 => Some("unknown"),
        i if i % 3 == 0 => Some("small"),
        _ => None,
    }
}

/// A registry with `breast-cancer` version 1 and a 20-tree forest `small` version 1, both
/// promoted.
fn two_models() -> String {
    let root = registry();
    let reg = root.to_str().unwrap().to_string();
    let args = ["train", "--dataset", "breast-cancer", "--trees", "20"];
    driftwood(&[&args[..], &["--name", "small", "--registry", &reg]].concat());
    reg
}

/// Runs an instance routing with `extra` flags over `config` until every record is handled;
/// returns, by input offset, the model that scored each prediction and each dead letter's
/// error kind, and the instance, still running.
async fn routed(
    config: &driftwood::config::RunConfig,
    reg: &str,
    extra: &[&str],
) -> (HashMap<i64, String>, HashMap<i64, String>, Member) {
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("routing.log"));
    let mut flags = vec!["--model-name", "breast-cancer", "--registry", reg];
    flags.extend(["--route-models", "small"]);
    flags.extend(extra);
    let mut member = Member::start(config, &flags, &log);
    let unroutable = (0..RECORDS)
        .filter(|&i| meant_for(i) == Some("unknown"))
        .count();
    member.wait_scored((RECORDS - unroutable) as f64, Duration::from_secs(60));
    let bootstrap = bootstrap();
    let predictions: Vec<PredictionRecord> =
        decoded(bootstrap, &config.output_topic, &AvroCodec::predictions());
    let scored_by = (predictions.into_iter())
        .map(|p| (p.source_offset, p.prediction.model_name))
        .collect();
    let dead = read_to_end(bootstrap, &config.dlq_topic, Duration::from_secs(30));
    let kinds = (dead.iter())
        .map(|m| {
            let offset = header(m, "driftwood.source.offset")
                .unwrap()
                .parse()
                .unwrap();
            (offset, header(m, "driftwood.error.kind").unwrap())
        })
        .collect();
    (scored_by, kinds, member)
}

/// What every routed run must show: each record scored by the model it named (the default
/// when it named none), the unknown name dead-lettered as `unroutable`, per-model counts in
/// the metrics and per-model drift windows.
async fn check_routing(config: driftwood::config::RunConfig, reg: &str, extra: &[&str]) {
    let (scored_by, kinds, member) = routed(&config, reg, extra).await;
    let mut expected_small = 0;
    for i in 0..RECORDS {
        let offset = i as i64;
        match meant_for(i) {
            Some("unknown") => {
                assert_eq!(kinds.get(&offset).map(String::as_str), Some("unroutable"));
                assert!(!scored_by.contains_key(&offset));
            }
            named => {
                let model = named.unwrap_or("breast-cancer");
                expected_small += usize::from(model == "small");
                assert_eq!(
                    scored_by.get(&offset).map(String::as_str),
                    Some(model),
                    "offset {offset}"
                );
            }
        }
    }
    assert_eq!(
        scored_by.len() + kinds.len(),
        RECORDS,
        "one output per record"
    );
    let count = |model: &str| {
        let sample = format!(
            "driftwood_model_records_total{{model=\"{model}\",outcome=\"scored\",version=\"1\"}}"
        );
        member.metric(&sample).unwrap()
    };
    assert_eq!(count("small"), expected_small as f64);
    assert_eq!(
        count("breast-cancer"),
        (scored_by.len() - expected_small) as f64
    );
    for model in ["breast-cancer", "small"] {
        let info = format!("driftwood_model_info{{name=\"{model}\",version=\"1\"}}");
        assert_eq!(member.metric(&info), Some(1.0), "{model} serves");
    }
    assert!(member.terminate(Duration::from_secs(30)));
    // The windows close at shutdown: one report per model, counting its records.
    let reports: Vec<DriftReport> = decoded(
        bootstrap(),
        &config.drift_topic,
        &AvroCodec::drift_reports(),
    );
    let mut per_model: HashMap<String, i64> = HashMap::new();
    for r in &reports {
        *per_model.entry(r.model_name.clone()).or_default() += r.counts.records;
    }
    assert_eq!(per_model["small"], expected_small as i64);
    assert_eq!(
        per_model["breast-cancer"],
        (scored_by.len() - expected_small) as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_go_to_the_model_their_header_names() {
    let reg = two_models();
    let config = dressed_input(bootstrap(), RECORDS, |i, payload| {
        let headers = meant_for(i).map(|model| {
            OwnedHeaders::new().insert(Header {
                key: "model",
                value: Some(model),
            })
        });
        (payload.to_vec(), headers)
    })
    .await;
    check_routing(config, &reg, &["--route-by", "header:model"]).await;
}

/// The bundled input schema with a nullable string field `model` last.
fn schema_with_model_field() -> std::path::PathBuf {
    let bundled = include_str!("../../schemas/features.avsc");
    let mut schema: serde_json::Value = serde_json::from_str(bundled).unwrap();
    let field = serde_json::json!({"name": "model", "type": ["null", "string"], "default": null});
    schema["fields"].as_array_mut().unwrap().push(field);
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("routed.avsc"));
    std::fs::write(&path, schema.to_string()).unwrap();
    path
}

/// `payload` (a record of the bundled schema) as a record of the schema with `model` last:
/// Avro writes a record's fields one after another, so the field's encoding (the union
/// branch, then the string's length and bytes) follows the others.
fn with_model(payload: &[u8], model: Option<&str>) -> Vec<u8> {
    let mut bytes = payload.to_vec();
    match model {
        None => bytes.push(0),
        Some(model) => {
            bytes.push(2);
            bytes.push((model.len() as u8) << 1);
            bytes.extend_from_slice(model.as_bytes());
        }
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_go_to_the_model_their_field_names() {
    let reg = two_models();
    let schema = schema_with_model_field();
    let config = dressed_input(bootstrap(), RECORDS, |i, payload| {
        (with_model(payload, meant_for(i)), None)
    })
    .await;
    let schema = schema.to_str().unwrap();
    let flags = ["--route-by", "field:model", "--input-schema", schema];
    check_routing(config, &reg, &flags).await;
}

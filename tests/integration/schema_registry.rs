//! driftwood with a real schema registry (Apicurio Registry's Confluent-compatible API):
//! writer schemas fetched by id as producers evolve them, unknown ids and schemas lacking a
//! feature dead-lettered, outputs registered and framed, a registry outage that holds only
//! the records of new ids, and the prediction schema's history checked for compatibility by
//! the registry itself.

use std::collections::HashMap;
use std::time::Duration;

use driftwood::codec::decode::BUNDLED_FEATURE_SCHEMA;
use driftwood::codec::encode::{AvroCodec, PREDICTION_SCHEMA, PredictionRecord};
use rdkafka::message::OwnedMessage;

use crate::common::framed::*;
use crate::common::schema_registry::{SchemaRegistry, get, post, register, schema_registry};
use crate::common::*;

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

    // Credentials in the URL (sent as basic auth; this registry does not ask for them) must
    // show nowhere.
    let with_credentials = url.replacen("://", "://driftwood:s3cr3t-pw@", 1);
    let mut flags = confluent_both_ways(&with_credentials);
    flags.extend([
        "--drift-window-records",
        "40",
        "--drift-window-min-seconds",
        "0",
    ]);
    let log = log("evolved");
    let member = Member::start(&config, &flags, &log);
    let predictions = read_topic(bootstrap, &config.output_topic, 80, Duration::from_secs(90));
    let dead = read_topic(bootstrap, &config.dlq_topic, 8, Duration::from_secs(30));
    let reports = read_topic(bootstrap, &config.drift_topic, 1, Duration::from_secs(30));
    let (_, metrics) = http_get(member.addr, "/metrics");
    let (_, ready) = http_get(member.addr, "/ready");
    assert!(
        member.terminate(Duration::from_secs(30)),
        "driftwood stops cleanly"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("driftwood started"), "{logged}");
    for (place, text) in [
        ("the log", &logged),
        ("/metrics", &metrics),
        ("/ready", &ready),
    ] {
        assert!(
            !text.contains("s3cr3t-pw"),
            "the registry password shows in {place}"
        );
    }

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
            (a.prediction.predicted_label, a.prediction.confidence),
            (b.prediction.predicted_label, b.prediction.confidence),
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
    let (mut registry, config, [(v1, v1_id), (v2, v2_id)]) = own_registry_with_two_schemas();
    let url = registry.url();
    let rows = rows(30);
    let known = |from: usize, to: usize| -> Vec<(i32, Vec<u8>)> {
        (from..to)
            .map(|i| (1, framed(&v1, v1_id, &format!("known-{i}"), &rows[i % 30])))
            .collect()
    };
    send(bootstrap, &config.input_topic, &known(0, 20));
    let member = Member::start(&config, &confluent_in(&url), &log("outage"));
    let addr = member.addr;
    read_topic(bootstrap, &config.output_topic, 20, Duration::from_secs(90));

    registry.stop();
    let new: Vec<(i32, Vec<u8>)> = (0..15)
        .map(|i| (0, framed(&v2, v2_id, &format!("new-{i}"), &rows[i])))
        .collect();
    send(bootstrap, &config.input_topic, &new);
    send(bootstrap, &config.input_topic, &known(20, 50));
    let during = read_topic(bootstrap, &config.output_topic, 50, Duration::from_secs(60));
    for _ in 0..20 {
        // Sampled over a few retries of the held id: steady, not flapping.
        let (status, ready) = http_get(addr, "/ready");
        let (_, metrics) = http_get(addr, "/metrics");
        assert_eq!(
            status, 503,
            "not ready while records wait for the registry: {ready}"
        );
        assert!(ready.contains("schema registry is unavailable"), "{ready}");
        let held = metric(&metrics, "driftwood_schema_held_partitions");
        assert_eq!(held, Some(1.0), "one partition waits");
        std::thread::sleep(Duration::from_millis(150));
    }
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

    // Back, with the schemas it kept.
    registry.restart();
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

/// A registry of the test's own (to stop and restart), holding the bundled schema and the
/// evolved one under the input subject of fresh 2-partition topics: the registry, the
/// topics, and each schema with its id.
fn own_registry_with_two_schemas() -> (
    SchemaRegistry,
    driftwood::config::RunConfig,
    [(String, u32); 2],
) {
    let registry = SchemaRegistry::start(free_port());
    let config = topics(2);
    let subject = format!("{}-value", config.input_topic);
    let schemas = [BUNDLED_FEATURE_SCHEMA.to_string(), evolved_schema()].map(|schema| {
        let id = register(&registry.url(), &subject, &schema);
        (schema, id)
    });
    (registry, config, schemas)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_comparisons_are_registered_and_framed_too() {
    let bootstrap = bootstrap();
    // A registry started here is waited for with a blocking client.
    let url = tokio::task::spawn_blocking(schema_registry).await.unwrap();
    let config = prepared_topics(bootstrap, 200, 0, |_| {}).await;
    let comparisons = unique("comparisons");
    create_topics(bootstrap, &[&comparisons], 1).await;
    let models = crate::common::registry::registry();
    let flags = [
        "--model-name",
        "breast-cancer",
        "--registry",
        models.to_str().unwrap(),
        "--shadow",
        "breast-cancer:1",
        "--comparison-topic",
        &comparisons,
        "--output-format",
        "confluent",
        "--schema-registry-url",
        url,
    ];
    let member = Member::start(&config, &flags, &log("shadow"));
    let (bootstrap_, topic) = (bootstrap.to_string(), comparisons.clone());
    let published = tokio::task::spawn_blocking(move || {
        read_topic(&bootstrap_, &topic, 200, Duration::from_secs(60))
    });
    let published = published.await.unwrap();
    assert!(
        member.terminate(Duration::from_secs(30)),
        "driftwood stops cleanly"
    );

    let subject = format!("{comparisons}-value");
    let id = tokio::task::spawn_blocking(move || latest_id(url, &subject))
        .await
        .unwrap();
    let codec = driftwood::codec::encode::AvroCodec::comparisons();
    for message in &published {
        let (framed_with, body) = unframe(message);
        assert_eq!(
            framed_with, id,
            "comparisons framed with their registered schema's id"
        );
        let comparison: driftwood::codec::encode::Comparison = codec.decode(&body).unwrap();
        assert!(
            comparison.agree,
            "the serving version agrees with itself: {comparison:?}"
        );
    }
}

#[test]
fn an_output_schema_the_registry_refuses_stops_driftwood_with_its_reason() {
    let url = schema_registry();
    let config = topics(1);
    // The subject already holds a schema the prediction schema cannot read, under BACKWARD.
    let subject = format!("{}-value", config.output_topic);
    register(
        url,
        &subject,
        r#"{"type":"record","name":"Other","fields":[{"name":"x","type":"string"}]}"#,
    );
    let put = reqwest::blocking::Client::new()
        .put(format!("{url}/config/{subject}"))
        .header("Content-Type", "application/json")
        .body(r#"{"compatibility":"BACKWARD"}"#)
        .send()
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);

    let log = log("refused");
    let flags = ["--output-format", "confluent", "--schema-registry-url", url];
    let member = Member::start(&config, &flags, &log);
    assert!(
        !member.wait_exit(Duration::from_secs(60)),
        "a refused schema is fatal"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains(&format!(
            "registering the schema of {} under {subject}",
            config.output_topic
        )) && logged.contains("refused: registering under"),
        "the error names the subject and the registry's answer:\n{logged}"
    );
    let (_, body) = get(url, &format!("/subjects/{subject}/versions"));
    assert_eq!(
        body,
        serde_json::json!([1]),
        "nothing registered beside the other schema"
    );
}

#[test]
fn a_held_partition_that_moves_to_another_member_loses_nothing() {
    let bootstrap = bootstrap();
    let (mut registry, config, [(v1, v1_id), (v2, v2_id)]) = own_registry_with_two_schemas();
    let url = registry.url();
    let rows = rows(20);
    let records = |partition: i32, schema: &str, id: u32| -> Vec<(i32, Vec<u8>)> {
        (rows.iter().enumerate())
            .map(|(i, row)| {
                (
                    partition,
                    framed(schema, id, &format!("{partition}-{i}"), row),
                )
            })
            .collect()
    };
    send(bootstrap, &config.input_topic, &records(1, &v1, v1_id));
    let flags = confluent_in(&url);
    let first = Member::start(&config, &flags, &log("moves-first"));
    read_topic(bootstrap, &config.output_topic, 20, Duration::from_secs(90));

    // The first member holds partition 0 at a new id; then it leaves, and the second member
    // takes partition 0 over while the registry is still down.
    registry.stop();
    send(bootstrap, &config.input_topic, &records(0, &v2, v2_id));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(wait_until(
        "the partition held",
        Duration::from_secs(60),
        || first.metric("driftwood_schema_held_partitions") == Some(1.0),
    ));
    let second = Member::start(&config, &flags, &log("moves-second"));
    assert!(
        first.terminate(Duration::from_secs(30)),
        "the first member stops cleanly"
    );
    runtime.block_on(wait_until(
        "the second member to hold it",
        Duration::from_secs(60),
        || second.metric("driftwood_schema_held_partitions") == Some(1.0),
    ));
    assert_eq!(
        read_available(bootstrap, &config.output_topic, 21, Duration::from_secs(2)).len(),
        20
    );

    registry.restart();
    let outputs = read_topic(bootstrap, &config.output_topic, 40, Duration::from_secs(90));
    assert!(
        second.terminate(Duration::from_secs(30)),
        "the second member stops cleanly"
    );
    let mut moved: Vec<i64> = (outputs.iter())
        .map(source_of_prediction)
        .filter(|(p, _)| *p == 0)
        .map(|(_, o)| o)
        .collect();
    moved.sort();
    assert_eq!(
        moved,
        (0..20).collect::<Vec<_>>(),
        "every held record once, by the new owner"
    );
    assert_eq!(outputs.len(), 40, "nothing twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framed_labels_are_read_by_schema_id_outputs_are_framed_and_restores_read_framed_predictions()
 {
    let bootstrap = bootstrap();
    let url = tokio::task::spawn_blocking(schema_registry).await.unwrap();
    let config = prepared_topics(bootstrap, 300, 0, |_| {}).await;
    let (labels, performance, review) = (unique("labels"), unique("performance"), unique("review"));
    create_topics(bootstrap, &[&labels, &performance, &review], 3).await;
    let flags = [
        labels::join_flags(&labels, &performance, "10").as_slice(),
        &[
            "--review-topic",
            &review,
            "--review-share",
            "0.1",
            "--output-format",
            "confluent",
            "--schema-registry-url",
            url,
            "--labels-format",
            "confluent",
            "--static-membership",
            "--instance-id",
            "framed-labels",
        ],
    ]
    .concat();
    let mut first = Member::start(&config, &flags, &log("labels"));
    first.wait_scored(300.0, Duration::from_secs(60));
    // Killed: the next process knows the predictions only by reading them back, framed.
    first.kill();
    let member = Member::start(&config, &flags, &log("labels"));
    let predictions = read_topic(
        bootstrap,
        &config.output_topic,
        300,
        Duration::from_secs(30),
    );
    let unframed: Vec<OwnedMessage> = (predictions.iter())
        .map(|m| {
            let (_, body) = unframe(m);
            m.clone().set_payload(Some(body))
        })
        .collect();
    // One label per record (the second process scored again what the first left uncommitted).
    let mut seen = std::collections::HashSet::new();
    let unframed: Vec<OwnedMessage> = (unframed.into_iter())
        .filter(|m| seen.insert(rdkafka::Message::key(m).map(<[u8]>::to_vec)))
        .collect();
    assert_eq!(unframed.len(), 300);
    // Labels framed with a writer schema of their own (a field more, first), by id.
    let evolved = evolved_ground_truth();
    let subject = format!("{labels}-value");
    let (url_, schema_) = (url.to_string(), evolved.clone());
    let id = std::thread::spawn(move || register(&url_, &subject, &schema_))
        .join()
        .unwrap();
    let framed_labels: Vec<(i32, Vec<u8>)> = crate::common::labels::ground_truths(&unframed)
        .into_iter()
        .map(|(p, plain)| (p, reframed(&evolved, id, &plain)))
        .collect();
    send(bootstrap, &labels, &framed_labels);
    let windows = read_topic(bootstrap, &performance, 27, Duration::from_secs(60));
    let requests = read_topic(bootstrap, &review, 10, Duration::from_secs(30));
    assert!(
        member.terminate(Duration::from_secs(30)),
        "driftwood stops cleanly"
    );

    let id_of = |topic: &str| {
        let (url, subject) = (url.to_string(), format!("{topic}-value"));
        std::thread::spawn(move || latest_id(&url, &subject))
            .join()
            .unwrap()
    };
    let (performance_id, review_id) = (id_of(&performance), id_of(&review));
    let codec = AvroCodec::performance();
    for message in &windows {
        let (framed_with, body) = unframe(message);
        assert_eq!(
            framed_with, performance_id,
            "windows framed with their schema's id"
        );
        let window: driftwood::labels::PerformanceWindow = codec.decode(&body).unwrap();
        assert_eq!(
            (window.labels.joined, window.labels.unknown),
            (10, 0),
            "every label found its prediction, read back framed: {window:?}"
        );
    }
    for message in &requests {
        assert_eq!(unframe(message).0, review_id, "review requests framed too");
    }
}

/// The bundled `GroundTruth` schema with a field more, first: what a producer of its own
/// might register.
fn evolved_ground_truth() -> String {
    let mut schema: serde_json::Value =
        serde_json::from_str(driftwood::codec::encode::GROUND_TRUTH_SCHEMA).unwrap();
    let fields = schema["fields"].as_array_mut().unwrap();
    fields.insert(0, serde_json::json!({"name": "reviewer", "type": "string"}));
    schema.to_string()
}

/// `plain` (a `GroundTruth` in the bundled schema) written again with `schema` (which adds
/// a string first), framed with `id`.
fn reframed(schema: &str, id: u32, plain: &[u8]) -> Vec<u8> {
    let reviewer = b"ann";
    let mut out = vec![0];
    out.extend(id.to_be_bytes());
    // An Avro string: its length (zig-zag varint), then its bytes; the rest is unchanged.
    out.push((reviewer.len() as u8) << 1);
    out.extend(reviewer);
    out.extend(plain);
    assert!(schema.contains("reviewer"));
    out
}

#[test]
fn framed_labels_wait_while_the_registry_is_away_and_join_when_it_is_back() {
    let bootstrap = bootstrap();
    let mut registry = SchemaRegistry::start(free_port());
    let url = registry.url();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = runtime.block_on(prepared_topics(bootstrap, 90, 0, |_| {}));
    let (labels, performance) = runtime.block_on(labels::labels_topics(bootstrap));
    let evolved = evolved_ground_truth();
    let id = register(&url, &format!("{labels}-value"), &evolved);
    let flags = [
        labels::join_flags(&labels, &performance, "10").as_slice(),
        &[
            "--labels-format",
            "confluent",
            "--schema-registry-url",
            &url,
        ],
    ]
    .concat();
    let mut member = Member::start(&config, &flags, &log("labels-outage"));
    member.wait_scored(90.0, Duration::from_secs(60));
    let predictions = read_topic(bootstrap, &config.output_topic, 90, Duration::from_secs(30));

    registry.stop();
    let framed_labels: Vec<(i32, Vec<u8>)> = crate::common::labels::ground_truths(&predictions)
        .into_iter()
        .map(|(p, plain)| (p, reframed(&evolved, id, &plain)))
        .collect();
    send(bootstrap, &labels, &framed_labels);
    let counted = |outcome: &str| {
        member
            .metric(&format!("driftwood_labels_total{{outcome=\"{outcome}\"}}"))
            .unwrap_or(0.0)
    };
    for _ in 0..20 {
        // Sampled over a few of the registry's retries: the labels wait, none is lost.
        assert_eq!(counted("joined"), 0.0, "nothing joined without the schema");
        assert_eq!(counted("dead_lettered"), 0.0, "nor dead-lettered");
        std::thread::sleep(Duration::from_millis(150));
    }

    // Back, with the schema it kept: every label joins.
    registry.restart();
    runtime.block_on(wait_until(
        "every label joined",
        Duration::from_secs(60),
        || counted("joined") == 90.0,
    ));
    // A window per ten labels of a partition.
    let expected: usize = (0..3)
        .map(|p| framed_labels.iter().filter(|(q, _)| *q == p).count() / 10)
        .sum();
    let windows = read_topic(bootstrap, &performance, expected, Duration::from_secs(30));
    assert!(
        member.terminate(Duration::from_secs(30)),
        "driftwood stops cleanly"
    );
    assert_eq!(windows.len(), expected);
}

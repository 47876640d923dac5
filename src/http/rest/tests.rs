use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::model::dataset::Dataset;
use crate::obs::health::Health;

/// A sidecar with the REST twin over the bundled model, on a port of its own; the runtime
/// keeps it serving.
fn sidecar(body_limit: usize) -> (tokio::runtime::Runtime, SocketAddr, Serving) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let serving = Serving::new(vec![Arc::new(Model::open(None).unwrap())]);
    let metrics = Metrics::new();
    let rest = Rest {
        serving: serving.clone(),
        body_limit,
        metrics: metrics.clone(),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let health = Arc::new(Health::default());
    let (addr, server) = runtime
        .block_on(crate::http::sidecar::bind(
            addr,
            health,
            metrics,
            Some(rest),
            std::future::pending(),
        ))
        .unwrap();
    runtime.spawn(server);
    (runtime, addr, serving)
}

/// Row `i` of the bundled data set as a request's features.
fn features(i: usize) -> Value {
    let data = Dataset::breast_cancer();
    let pairs = data.feature_names.iter().zip(&data.rows[i]);
    Value::Object(pairs.map(|(n, &v)| (n.clone(), json!(v))).collect())
}

fn post(
    addr: SocketAddr,
    content_type: &str,
    body: impl Into<reqwest::blocking::Body>,
) -> (u16, Value) {
    let response = reqwest::blocking::Client::new()
        .post(format!("http://{addr}/v1/predict"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_str(&response.text().unwrap()).unwrap(),
    )
}

fn post_json(addr: SocketAddr, body: &Value) -> (u16, Value) {
    post(addr, "application/json", body.to_string())
}

#[test]
fn one_record_is_scored_by_the_serving_version_as_the_engine_scores_it() {
    let (_runtime, addr, serving) = sidecar(1 << 20);
    let (status, body) = post_json(addr, &json!({"id": "r-0", "features": features(0)}));
    assert_eq!(status, 200, "{body}");
    let model = serving.default_model();
    let predicted = model.engine.predict_all(&Dataset::breast_cancer().rows[0]);
    let Predicted::Class { index, confidence } = predicted[0] else {
        panic!("a classifier")
    };
    assert_eq!(body["id"], "r-0");
    assert_eq!(body["model_name"], "breast-cancer");
    assert_eq!(body["model_version"], "1");
    assert_eq!(body["predicted_label"], model.metadata.classes[index]);
    assert_eq!(body["confidence"], confidence);
    assert_eq!(body["probabilities"].as_array().unwrap().len(), 2);
    assert_eq!(body["explanation"], Value::Null);

    // A version the stream swaps in is the one the next request gets.
    let mut next = (*model).clone();
    next.metadata.version = "2".into();
    serving.publish(Arc::new(next));
    let (_, body) = post_json(addr, &json!({"features": features(0)}));
    assert_eq!(body["model_version"], "2");
    assert_eq!(body["id"], Value::Null);
}

#[test]
fn a_batch_is_answered_in_order_and_explanations_add_up_to_the_confidence() {
    let (_runtime, addr, _) = sidecar(1 << 20);
    let batch: Vec<Value> = (0..5)
        .map(|i| json!({"id": format!("r-{i}"), "features": features(i), "explain": i == 3}))
        .collect();
    let (status, body) = post_json(addr, &Value::Array(batch));
    assert_eq!(status, 200, "{body}");
    let predictions = body.as_array().unwrap();
    let ids: Vec<&str> = predictions
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r-0", "r-1", "r-2", "r-3", "r-4"]);
    let explained: Vec<bool> = predictions
        .iter()
        .map(|p| !p["explanation"].is_null())
        .collect();
    assert_eq!(explained, [false, false, false, true, false]);
    let explanation = &predictions[3]["explanation"];
    let contributions = explanation["contributions"].as_array().unwrap();
    assert_eq!(contributions.len(), 30);
    assert_eq!(contributions[0]["feature"], "mean_radius");
    let total: f64 = contributions
        .iter()
        .map(|c| c["contribution"].as_f64().unwrap())
        .sum();
    let score = explanation["bias"].as_f64().unwrap() + total;
    let confidence = predictions[3]["confidence"].as_f64().unwrap();
    assert!(
        (score - confidence).abs() <= 1e-9,
        "{score} against {confidence}"
    );
    assert_eq!(explanation["label"], predictions[3]["predicted_label"]);
}

#[test]
fn every_field_problem_is_reported_where_it_is() {
    let (_runtime, addr, _) = sidecar(1 << 20);
    let mut wrong = features(0);
    let fields = wrong.as_object_mut().unwrap();
    fields.remove("mean_area");
    fields.insert("mean_texture".into(), json!("thin"));
    fields.insert("colour".into(), json!(1.0));
    fields.insert("mean_radius".into(), Value::Null);
    let body = json!([
        {"features": features(1)},
        {"id": 7, "features": wrong, "extra": true, "explain": "yes"},
        "a string",
    ]);
    let (status, body) = post_json(addr, &body);
    assert_eq!(status, 422);
    let mut found: Vec<(String, String)> = (body["errors"].as_array().unwrap().iter())
        .map(|e| {
            (
                e["field"].as_str().unwrap().into(),
                e["message"].as_str().unwrap().into(),
            )
        })
        .collect();
    found.sort();
    let expected = [
        ("/1/explain", "must be true or false"),
        (
            "/1/extra",
            "is not a field of a record (id, features, explain)",
        ),
        ("/1/features/colour", "is not a feature of the model"),
        ("/1/features/mean_area", "is missing"),
        ("/1/features/mean_texture", "must be a number or null"),
        ("/1/id", "must be a string"),
        ("/2", "must be an object"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(f, m)| (f.to_string(), m.to_string()))
        .collect();
    assert_eq!(
        found, expected,
        "a null feature is a missing value, not an error"
    );
}

#[test]
fn bodies_that_are_not_json_too_large_or_of_another_type_are_refused() {
    let (_runtime, addr, _) = sidecar(2_000);
    let (status, body) = post(addr, "application/json", "{\"features\": ");
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("not JSON")
    );
    let (status, _) = post(
        addr,
        "text/plain",
        json!({"features": features(0)}).to_string(),
    );
    assert_eq!(status, 415);
    let (status, _) = post_json(addr, &json!(42));
    assert_eq!(status, 422);
    let large = Value::Array(vec![json!({"features": features(0)}); 3]);
    let (status, body) = post_json(addr, &large);
    assert_eq!(status, 413, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("2000 bytes")
    );
}

#[test]
fn the_openapi_document_names_the_serving_models_features() {
    let (_runtime, addr, _) = sidecar(1 << 20);
    let text = reqwest::blocking::get(format!("http://{addr}/openapi.json"))
        .unwrap()
        .text()
        .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/v1/predict"]["post"].is_object());
    let schema = &doc["components"]["schemas"]["Features"];
    let required: Vec<&str> = (schema["required"].as_array().unwrap().iter())
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(required, Model::open(None).unwrap().metadata.features);
    assert_eq!(schema["additionalProperties"], false);
}

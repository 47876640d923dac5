//! The REST twin (`--rest`) of a running instance: schemathesis, from PyPI, finds no failing
//! case against its OpenAPI document, and it scores with the version the stream serves,
//! before and after a promotion.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::registry::{driftwood, following, registry, second_version};
use crate::common::*;

/// schemathesis's `st`: `DRIFTWOOD_SCHEMATHESIS`, which `scripts/test.sh` sets.
fn schemathesis() -> String {
    std::env::var("DRIFTWOOD_SCHEMATHESIS").unwrap_or_else(|_| {
        panic!(
            "set DRIFTWOOD_SCHEMATHESIS to schemathesis's st: \
             $(dirname $(scripts/py-env.sh tests/rest/requirements.txt))/st (scripts/test.sh does)"
        )
    })
}

/// The version `/v1/predict` says scored row 0 of the bundled data set.
fn rest_version(addr: std::net::SocketAddr) -> String {
    let data = driftwood::model::dataset::Dataset::breast_cancer();
    let features: serde_json::Map<String, Value> = (data.feature_names.iter())
        .zip(&data.rows[0])
        .map(|(name, &v)| (name.clone(), json!(v)))
        .collect();
    let response = reqwest::blocking::Client::new()
        .post(format!("http://{addr}/v1/predict"))
        .header("content-type", "application/json")
        .body(json!({ "features": features }).to_string())
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_str(&response.text().unwrap()).unwrap();
    body["model_version"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_and_requests_get_the_version_the_stream_serves() {
    let st = schemathesis();
    let root = registry();
    let reg = root.to_str().unwrap();
    second_version(reg);
    let (_config, _input, mut member, log) =
        following(bootstrap(), reg, (2_000, 1_000.0), &["--rest"]).await;
    member.wait_scored(100.0, Duration::from_secs(60));
    let addr = member.addr;

    let report = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("schemathesis"));
    let run = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .args(["run", &format!("http://{addr}/openapi.json")])
            .args(["--checks", "all", "--max-examples", "200", "--seed", "1"])
            .current_dir(env!("CARGO_TARGET_TMPDIR"))
            .env("SCHEMATHESIS_REPORT_DIR", &report)
            .output()
            .expect("running schemathesis")
    })
    .await
    .unwrap();
    let output = String::from_utf8_lossy(&run.stdout);
    println!("{output}");
    assert!(run.status.success(), "schemathesis failed:\n{output}");
    assert!(output.contains("No issues found"), "{output}");
    let ok = member.metric("driftwood_rest_requests_total{status=\"200\"}");
    let refused = member.metric("driftwood_rest_requests_total{status=\"422\"}");
    assert!(ok > Some(0.0) && refused > Some(0.0), "{ok:?} {refused:?}");

    // The stream and the REST twin swap together.
    let addr = member.addr;
    let before = tokio::task::spawn_blocking(move || rest_version(addr));
    assert_eq!(before.await.unwrap(), "1");
    driftwood(&["models", "promote", "breast-cancer", "2", "--registry", reg]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let addr = member.addr;
        let version = tokio::task::spawn_blocking(move || rest_version(addr))
            .await
            .unwrap();
        let serving = member.metric("driftwood_model_info{name=\"breast-cancer\",version=\"2\"}");
        if version == "2" {
            assert_eq!(
                serving,
                Some(1.0),
                "the REST twin is not ahead of the stream"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "REST still on version {version}; logs in {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        member.terminate(Duration::from_secs(30)),
        "logs in {}",
        log.display()
    );
}

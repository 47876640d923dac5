//! KEDA against the real lag: KEDA's own Kafka scaler (v2.20.2, built from the Go module proxy
//! by scripts/keda.sh; `DRIFTWOOD_KEDA_SCALER` names it), given the trigger metadata of
//! k8s/base/scaledobject.yaml pointed at the test broker, topic and group, reports what it
//! would hand the HorizontalPodAutoscaler while a backlog waits and while driftwood works it
//! off. The replica count is the HPA's arithmetic on that report, written out below.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use driftwood::config::tools::ProduceConfig;
use driftwood::tools::produce::produce;
use serde_yaml_ng::Value;

use crate::common::*;

/// What KEDA's scaler reports for the trigger (tests/keda/main.go).
#[derive(Debug, serde::Deserialize)]
struct Report {
    value: f64,
    target: f64,
    #[serde(rename = "targetType")]
    target_type: String,
    active: bool,
}

fn scaler() -> String {
    std::env::var("DRIFTWOOD_KEDA_SCALER").unwrap_or_else(|_| {
        panic!("DRIFTWOOD_KEDA_SCALER is not set: DRIFTWOOD_KEDA_SCALER=$(scripts/keda.sh) builds KEDA's Kafka scaler once (scripts/test.sh sets it)")
    })
}

fn ask(metadata: &BTreeMap<String, String>) -> Report {
    let output = Command::new(scaler())
        .arg(serde_json::to_string(metadata).unwrap())
        .output()
        .expect("running KEDA's scaler");
    assert!(
        output.status.success(),
        "KEDA's scaler: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The ScaledObject of k8s/base: its trigger's metadata and its replica bounds.
fn scaled_object() -> (BTreeMap<String, String>, f64, f64) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("k8s/base/scaledobject.yaml");
    let doc: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let spec = &doc["spec"];
    let metadata = spec["triggers"][0]["metadata"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().into(), v.as_str().unwrap().into()))
        .collect();
    let bound = |key: &str| spec[key].as_f64().unwrap();
    (metadata, bound("minReplicaCount"), bound("maxReplicaCount"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keda_asks_for_replicas_by_the_lag_and_fewer_as_driftwood_catches_up() {
    let bootstrap = bootstrap();
    let config = fresh_topics(bootstrap, 6, 1).await;
    let backlog = 250_000;
    let spec = ProduceConfig::new(bootstrap, &config.input_topic, backlog);
    tokio::task::spawn_blocking(move || produce(&spec))
        .await
        .unwrap()
        .expect("producing the backlog");

    let (mut metadata, min, max) = scaled_object();
    metadata.insert("bootstrapServers".into(), bootstrap.into());
    metadata.insert("topic".into(), config.input_topic.clone());
    metadata.insert("consumerGroup".into(), config.group_id.clone());
    // The HPA's arithmetic for an AverageValue target: ceil(value / target) replicas, within
    // the ScaledObject's bounds; below activationLagThreshold KEDA holds minReplicaCount.
    let replicas = |r: &Report| {
        let asked = if r.active {
            (r.value / r.target).ceil()
        } else {
            min
        };
        asked.clamp(min, max)
    };

    // No offset committed yet: with offsetResetPolicy earliest the whole backlog is lag.
    let before = ask(&metadata);
    assert_eq!(before.target_type, "AverageValue");
    assert_eq!(
        before.target,
        metadata["lagThreshold"].parse::<f64>().unwrap()
    );
    assert_eq!(before.value, backlog as f64);
    assert!(before.active);
    assert_eq!(replicas(&before), 3.0, "{before:?}");

    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("keda.log"));
    let _member = Member::start(&config, &[], &log);
    let mut seen = vec![replicas(&before)];
    let start = Instant::now();
    let after = loop {
        let report = ask(&metadata);
        seen.push(replicas(&report));
        if !report.active {
            break report;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "driftwood did not catch up in 180 s: {report:?}, replicas asked {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(after.value <= metadata["activationLagThreshold"].parse().unwrap());
    assert_eq!(replicas(&after), min);
    seen.dedup();
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "the replicas asked fall as the lag does: {seen:?}"
    );
    eprintln!("KEDA asked for {seen:?} replicas while driftwood caught up");
}

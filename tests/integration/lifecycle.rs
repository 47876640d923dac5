//! Model versions swapped in a running instance through the registry (`--model-name`):
//! promoted and rolled back mid-stream on Apache Kafka, and refused when they cannot serve,
//! all without a restart.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use driftwood::codec::encode::{AvroCodec, PredictionRecord};
use driftwood::drift::DriftReport;

use crate::common::conservation::decoded;
use crate::common::process::Member;
use crate::common::registry::{
    copy_version, driftwood, following, registry, scaled_version, second_version,
};
use crate::common::stream::settle;
use crate::common::*;

/// Waits until `member` has loaded `loads` versions from the pointer and scored `records`.
async fn wait_loaded(member: &Member, loads: f64, records: f64) {
    let loaded = "driftwood_model_reloads_total{outcome=\"loaded\"}";
    wait_until("the new version to serve", Duration::from_secs(60), || {
        member.metric(loaded) >= Some(loads) && member.scored() >= records
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_then_roll_back_mid_stream_scores_every_record_once_by_the_serving_version() {
    let root = registry();
    let reg = root.to_str().unwrap();
    // Version 2: another forest of the same features (20 trees, so its votes differ).
    let trained = second_version(reg);
    assert!(trained.contains("not serving yet"), "{trained}");

    let bootstrap = bootstrap();
    // 25 s of input, so that both changes land mid-stream.
    let (config, input, mut member, log) = following(bootstrap, reg, (100_000, 4_000.0), &[]).await;
    member.wait_scored(20_000.0, Duration::from_secs(60));
    assert_eq!(
        driftwood(&["models", "promote", "breast-cancer", "2", "--registry", reg]),
        "breast-cancer: 1 -> 2\n"
    );
    wait_loaded(&member, 1.0, 50_000.0).await;
    assert_eq!(
        driftwood(&["models", "rollback", "breast-cancer", "--registry", reg]),
        "breast-cancer: 2 -> 1\n"
    );
    wait_loaded(&member, 2.0, 0.0).await;
    let (exited_zero, c) = settle(bootstrap, &config, input, [member]).await;
    assert!(exited_zero, "logs in {}", log.display());
    assert_eq!(
        (c.missing_count, c.duplicates, c.strays),
        (0, 0, 0),
        "{c:?}"
    );

    // Per input partition, in offset order, the versions run 1, then 2, then 1 again.
    let mut by_partition: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    let predictions: Vec<PredictionRecord> =
        decoded(bootstrap, &config.output_topic, &AvroCodec::predictions());
    for p in predictions {
        (by_partition.entry(p.source_partition).or_default())
            .push((p.source_offset, p.prediction.model_version));
    }
    let mut per_version: BTreeMap<String, usize> = BTreeMap::new();
    for (partition, predictions) in &mut by_partition {
        predictions.sort();
        let mut runs: Vec<&str> = predictions.iter().map(|(_, v)| v.as_str()).collect();
        for (_, v) in predictions.iter() {
            *per_version.entry(v.clone()).or_default() += 1;
        }
        runs.dedup();
        assert_eq!(runs, ["1", "2", "1"], "partition {partition}");
    }
    println!("predictions per version: {per_version:?}");
    assert_eq!(per_version.values().sum::<usize>(), 100_000 - 100);

    // The drift window closes at each swap: reports of both versions.
    let reports: Vec<DriftReport> =
        decoded(bootstrap, &config.drift_topic, &AvroCodec::drift_reports());
    let mut counted: BTreeMap<String, i64> = BTreeMap::new();
    for r in reports {
        *counted.entry(r.model_version).or_default() += r.counts.records;
    }
    let per_version: BTreeMap<String, i64> = per_version
        .into_iter()
        .map(|(v, n)| (v, n as i64))
        .collect();
    assert_eq!(
        counted, per_version,
        "drift windows count each version's records"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_that_cannot_serve_are_refused_and_the_serving_one_stays() {
    let root = registry();
    let reg = root.to_str().unwrap();
    // Version 2: corrupt (its model file no longer matches its checksum).
    let v2 = root.join("breast-cancer/2");
    copy_version(&root.join("breast-cancer/1"), &v2, "2");
    let mut bytes = std::fs::read(v2.join("model.postcard")).unwrap();
    bytes[200] ^= 0xff;
    std::fs::write(v2.join("model.postcard"), bytes).unwrap();
    // Version 3: trained on features the input records do not have.
    let csv = root.join("other.csv");
    let rows: String = (0..60)
        .map(|i| format!("{},{},{}\n", i, 60 - i, i % 2))
        .collect();
    std::fs::write(&csv, format!("width,height,class\n{rows}")).unwrap();
    let csv = csv.to_str().unwrap();
    driftwood(&[
        "train",
        "--csv",
        csv,
        "--target",
        "class",
        "--name",
        "breast-cancer",
        "--registry",
        reg,
    ]);

    let bootstrap = bootstrap();
    let (config, input, mut member, log) = following(bootstrap, reg, (20_000, 2_000.0), &[]).await;
    member.wait_scored(2_000.0, Duration::from_secs(60));
    // The pointer edited by hand, as a ConfigMap is: `models promote` would refuse both.
    for (version, refusals) in [("2", 1.0), ("3", 2.0)] {
        let pointer = format!(
            "{{\"version\": \"{version}\", \"previous\": [\"1\"], \"changed_at\": \"2026-11-28T00:00:00Z\"}}"
        );
        std::fs::write(root.join("breast-cancer/serving.json"), pointer).unwrap();
        let refused = "driftwood_model_reloads_total{outcome=\"refused\"}";
        wait_until("the refusal", Duration::from_secs(30), || {
            member.metric(refused) >= Some(refusals)
        })
        .await;
    }
    let serving = "driftwood_model_info{name=\"breast-cancer\",version=\"1\"}";
    assert_eq!(member.metric(serving), Some(1.0));
    let (exited_zero, c) = settle(bootstrap, &config, input, [member]).await;
    assert!(exited_zero, "logs in {}", log.display());
    assert_eq!((c.missing_count, c.duplicates), (0, 0), "{c:?}");

    let predictions: Vec<PredictionRecord> =
        decoded(bootstrap, &config.output_topic, &AvroCodec::predictions());
    let versions: std::collections::BTreeSet<String> = predictions
        .into_iter()
        .map(|p| p.prediction.model_version)
        .collect();
    assert_eq!(versions, ["1".to_string()].into(), "only version 1 served");

    let logs = std::fs::read_to_string(&log).unwrap();
    let refusals: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("refusing the promoted version"))
        .collect();
    assert_eq!(refusals.len(), 2, "{logs}");
    assert!(refusals[0].contains("checksum"), "{}", refusals[0]);
    assert!(
        refusals[1].contains("lacks model features: width, height"),
        "{}",
        refusals[1]
    );

    let show = driftwood(&["models", "show", "breast-cancer", "--registry", reg]);
    let lines: Vec<&str> = show.lines().collect();
    assert!(lines[1].starts_with("  1: smartcore"), "{show}");
    // What the version's drift reference allows.
    assert!(
        lines[2].starts_with("    drift: reference of 455 ")
            && lines[2].contains("detects a 0.29 sd mean shift"),
        "{show}"
    );
    assert!(
        lines[3].starts_with("  2: REFUSED") && lines[3].contains("checksum"),
        "{show}"
    );
    assert!(
        lines[4].starts_with("  3: REFUSED") && lines[4].contains("width, height"),
        "{show}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_version_whose_drift_alerts_is_rolled_back_by_itself() {
    let root = registry();
    let reg = root.to_str().unwrap();
    // Version 2: trained on data three times the scale of what the stream carries.
    scaled_version(&root);

    let bootstrap = bootstrap();
    let flags = [
        "--auto-rollback-within",
        "5m",
        "--drift-window-records",
        "500",
        "--drift-window-min-seconds",
        "0",
    ];
    let (config, input, mut member, log) =
        following(bootstrap, reg, (30_000, 3_000.0), &flags).await;
    member.wait_scored(3_000.0, Duration::from_secs(60));
    driftwood(&["models", "promote", "breast-cancer", "2", "--registry", reg]);
    let rolled_back = "driftwood_model_auto_rollbacks_total{outcome=\"rolled_back\"}";
    wait_until("the automatic rollback", Duration::from_secs(60), || {
        member.metric(rolled_back) == Some(1.0)
    })
    .await;
    // The rollback moves the pointer and counts itself; version 1 serves once the watch
    // has loaded it again, a moment later.
    let serving = "driftwood_model_info{name=\"breast-cancer\",version=\"1\"}";
    wait_until("version 1 to serve again", Duration::from_secs(60), || {
        member.metric(serving) == Some(1.0)
    })
    .await;
    let (exited_zero, c) = settle(bootstrap, &config, input, [member]).await;
    assert!(exited_zero, "logs in {}", log.display());
    assert_eq!(
        (c.missing_count, c.duplicates, c.strays),
        (0, 0, 0),
        "{c:?}"
    );

    let pointer = std::fs::read_to_string(root.join("breast-cancer/serving.json")).unwrap();
    assert!(pointer.contains("\"version\": \"1\""), "{pointer}");
    let reports: Vec<DriftReport> =
        decoded(bootstrap, &config.drift_topic, &AvroCodec::drift_reports());
    let notices: Vec<String> = reports.into_iter().filter_map(|r| r.notice).collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].starts_with("automatic rollback breast-cancer: 2 -> 1: ")
            && notices[0].contains("drift windows flagged alert"),
        "{}",
        notices[0]
    );
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.contains("rolled the promoted version back automatically"),
        "{logs}"
    );
}

#[test]
fn check_config_loads_the_pointed_version_and_the_shadow_or_says_what_is_wrong() {
    let root = registry();
    let reg = root.to_str().unwrap();
    let check = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_driftwood"))
            .args(["run", "--check-config", "--registry", reg])
            .args(extra)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (
            out.status.success(),
            text + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = check(&[
        "--model-name",
        "breast-cancer",
        "--shadow",
        "breast-cancer:1",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("model     breast-cancer version 1"), "{out}");
    assert!(
        out.contains("shadow    breast-cancer version 1 on 1 of records"),
        "{out}"
    );
    let (ok, out) = check(&[
        "--model-name",
        "breast-cancer",
        "--shadow",
        "breast-cancer:7",
    ]);
    assert!(!ok);
    assert!(
        out.contains("--shadow breast-cancer:7: breast-cancer has no version \"7\""),
        "{out}"
    );
    let (ok, out) = check(&["--model-name", "cancer"]);
    assert!(!ok);
    assert!(
        out.contains("--model-name cancer: no version of it is promoted"),
        "{out}"
    );
}

//! Canary rollouts on Apache Kafka under live input from an external producer, every record
//! scored once: started and aborted by hand, the candidate scoring exactly the keys its share
//! takes; a candidate as good as the serving version going 10% → 50% → 100% and promoted by
//! its gates, each stage's share within a point; and a candidate whose drift windows alert
//! rolled back at its first window. Decisions are read from the rollout topic.

use std::collections::BTreeMap;
use std::time::Duration;

use driftwood::codec::encode::{AvroCodec, PredictionRecord};
use driftwood::codec::encode::{RolloutDecisionKind, RolloutRecord};
use driftwood::drift::DriftReport;
use driftwood::model::rollout::candidate_takes;

use crate::common::conservation::{Conservation, decoded};
use crate::common::process::Member;
use crate::common::registry::{driftwood, following, registry, scaled_version, second_version};
use crate::common::stream::{fresh_topics, settle, stream};
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_serves_its_share_of_the_keys_until_aborted_and_every_record_once() {
    let root = registry();
    let reg = root.to_str().unwrap();
    second_version(reg);
    let bootstrap = bootstrap();
    let (config, input, mut member, log) = following(bootstrap, reg, (60_000, 4_000.0), &[]).await;
    member.wait_scored(8_000.0, Duration::from_secs(60));
    let started = driftwood(&[
        "models",
        "canary",
        "breast-cancer",
        "2",
        "--stages",
        "10%,50%,100%",
        "--registry",
        reg,
    ]);
    assert!(
        started.starts_with("breast-cancer: rolling out 2 beside 1: stage 1 of 3, 10% of the keys"),
        "{started}"
    );
    wait_until("the candidate to serve", Duration::from_secs(30), || {
        member.metric(SHARE) == Some(0.1)
    })
    .await;
    let from = member.scored();
    wait_until(
        "25,000 records beside the candidate",
        Duration::from_secs(60),
        || member.scored() >= from + 25_000.0,
    )
    .await;
    let status = driftwood(&["models", "status", "breast-cancer", "--registry", reg]);
    assert!(status.contains("stage 1 of 3, 10% of the keys"), "{status}");
    assert!(
        status.contains("\n  gates: dead-letter share at most +0.01"),
        "{status}"
    );
    // The judging instance notes the stage's figures every 5 s.
    assert!(status.contains("\n  stage 1 so far (noted at "), "{status}");
    assert!(status.contains("): candidate 2: "), "{status}");
    let aborted = driftwood(&["models", "abort", "breast-cancer", "--registry", reg]);
    assert!(aborted.contains("rollout of 2 aborted at"), "{aborted}");
    candidate_stopped(&member).await;
    let (exited_zero, c) = settle(bootstrap, &config, input, [member]).await;
    assert!(exited_zero, "logs in {}", log.display());
    assert_eq!(
        (c.missing_count, c.duplicates, c.strays),
        (0, 0, 0),
        "{c:?}"
    );

    // Per partition in offset order: version 1, then from the first prediction of 2 to its
    // last, each record by 2 exactly when its key is among the tenth, then 1 again.
    let predictions: Vec<PredictionRecord> =
        decoded(bootstrap, &config.output_topic, &AvroCodec::predictions());
    let mut by_partition: BTreeMap<i32, Vec<(i64, String, String)>> = BTreeMap::new();
    for p in predictions {
        (by_partition.entry(p.source_partition).or_default()).push((
            p.source_offset,
            p.id,
            p.prediction.model_version,
        ));
    }
    let (mut during, mut by_candidate) = (0usize, 0usize);
    for (partition, predictions) in &mut by_partition {
        predictions.sort();
        let of_two = |p: &&(i64, String, String)| p.2 == "2";
        let first = predictions
            .iter()
            .position(|p| of_two(&p))
            .expect("the candidate scored");
        let last = predictions.iter().rposition(|p| of_two(&p)).unwrap();
        for (offset, id, version) in &predictions[first..=last] {
            let taken = candidate_takes(id.as_bytes(), 0.1);
            assert_eq!(
                version == "2",
                taken,
                "partition {partition} offset {offset} key {id}"
            );
        }
        during += last + 1 - first;
        by_candidate += predictions[first..=last].iter().filter(of_two).count();
        assert!(
            predictions[..first]
                .iter()
                .chain(&predictions[last + 1..])
                .all(|p| p.2 == "1")
        );
    }
    let served = by_candidate as f64 / during as f64;
    println!("the candidate scored {by_candidate} of {during} records while it ran ({served:.4})");
    assert!(during >= 20_000, "{during}");
    assert!((served - 0.1).abs() <= 0.01, "{served}");

    // Each version's drift windows count its own records.
    let reports: Vec<DriftReport> =
        decoded(bootstrap, &config.drift_topic, &AvroCodec::drift_reports());
    let candidate: i64 = (reports.iter())
        .filter(|r| r.model_version == "2")
        .map(|r| r.counts.records)
        .sum();
    assert_eq!(candidate, by_candidate as i64);
}

/// The share of the keys version 2 serves, while it serves.
const SHARE: &str = "driftwood_canary_share{name=\"breast-cancer\",version=\"2\"}";

/// Waits until `member` no longer serves the candidate.
async fn candidate_stopped(member: &Member) {
    wait_until("the candidate to stop", Duration::from_secs(30), || {
        member.metric(SHARE).is_none()
    })
    .await;
}

/// What a run whose candidate was rolled back left.
struct RolledBack {
    reg: String,
    config: driftwood::config::RunConfig,
    log: std::path::PathBuf,
    exited_zero: bool,
    conservation: Conservation,
    decided: Vec<RolloutRecord>,
}

/// Rolls out a forest trained on features three times the stream's scale beside the bundled
/// one (one instance with `run_flags`, stages that cannot pass in the run, `gates` flags)
/// until a gate rolls it back; the instance stopped, what came out.
async fn scaled_candidate_rolled_back(run_flags: &[&str], gates: &[&str]) -> RolledBack {
    let root = registry();
    let reg = root.to_str().unwrap().to_owned();
    scaled_version(&root);
    let bootstrap = bootstrap();
    let rollouts = unique("rollouts");
    create_topics(bootstrap, &[&rollouts], 1).await;
    let flags = [&["--rollout-topic", rollouts.as_str()], run_flags].concat();
    let (config, input, mut member, log) =
        following(bootstrap, &reg, (40_000, 4_000.0), &flags).await;
    member.wait_scored(4_000.0, Duration::from_secs(60));
    let canary = [
        "models",
        "canary",
        "breast-cancer",
        "2",
        "--min-records",
        "1000000",
    ];
    driftwood(&[&canary[..], gates, &["--registry", &reg]].concat());
    let rolled_back =
        "driftwood_rollout_decisions_total{decision=\"roll_back\",name=\"breast-cancer\"}";
    wait_until("the rollback", Duration::from_secs(60), || {
        member.metric(rolled_back) == Some(1.0)
    })
    .await;
    candidate_stopped(&member).await;
    let (exited_zero, conservation) = settle(bootstrap, &config, input, [member]).await;
    RolledBack {
        reg,
        config,
        log,
        exited_zero,
        conservation,
        decided: decisions(bootstrap, &rollouts),
    }
}

/// Starts rolling version 2 out in `reg` through 10%, 50% and 100%, each stage at least 5 s
/// and `min_records` of the candidate's records.
fn staged_canary(reg: &str, min_records: &str) {
    let stages = [
        "--stages",
        "10%,50%,100%",
        "--min-time",
        "5s",
        "--min-records",
        min_records,
    ];
    let canary = ["models", "canary", "breast-cancer", "2"];
    driftwood(&[&canary[..], &stages, &["--registry", reg]].concat());
}

/// The rollout decisions published on `topic`, in order.
fn decisions(bootstrap: &str, topic: &str) -> Vec<RolloutRecord> {
    decoded(bootstrap, topic, &AvroCodec::rollouts())
}

/// Now, in ms since the epoch.
fn now_ms() -> i64 {
    driftwood::obs::epoch_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_as_good_as_the_serving_one_passes_each_stage_and_is_promoted() {
    let root = registry();
    let reg = root.to_str().unwrap();
    second_version(reg);
    let bootstrap = bootstrap();
    let rollouts = unique("rollouts");
    create_topics(bootstrap, &[&rollouts], 1).await;
    let flags = ["--rollout-topic", rollouts.as_str()];
    let (config, input, mut member, log) =
        following(bootstrap, reg, (120_000, 4_000.0), &flags).await;
    member.wait_scored(8_000.0, Duration::from_secs(60));
    let started_at = now_ms();
    staged_canary(reg, "1500");
    let promoted = "driftwood_rollout_decisions_total{decision=\"promote\",name=\"breast-cancer\"}";
    wait_until("the promotion", Duration::from_secs(90), || {
        member.metric(promoted) == Some(1.0)
    })
    .await;
    let status = driftwood(&["models", "status", "breast-cancer", "--registry", reg]);
    assert!(
        status.starts_with("breast-cancer: 2 promoted over 1 at"),
        "{status}"
    );
    assert!(status.contains("\n  advance at stage 1 at "), "{status}");
    assert!(status.contains("\n  promote at stage 3 at "), "{status}");
    let (exited_zero, c) = settle(bootstrap, &config, input, [member]).await;
    assert!(exited_zero, "logs in {}", log.display());
    assert_eq!(
        (c.missing_count, c.duplicates, c.strays),
        (0, 0, 0),
        "{c:?}"
    );
    let pointer = std::fs::read_to_string(root.join("breast-cancer/serving.json")).unwrap();
    assert!(pointer.contains("\"version\": \"2\""), "{pointer}");

    let decided = decisions(bootstrap, &rollouts);
    let said: Vec<(RolloutDecisionKind, i32, f64)> = (decided.iter())
        .map(|d| (d.decision, d.stage, d.share))
        .collect();
    use RolloutDecisionKind::{Advance, Promote};
    assert_eq!(
        said,
        [(Advance, 0, 0.1), (Advance, 1, 0.5), (Promote, 2, 1.0)]
    );
    assert!(
        decided
            .iter()
            .all(|d| d.figures.starts_with("candidate 2: ")),
        "{decided:?}"
    );

    // Each stage's share of the records, away from its edges (the watch reads the rollout
    // within a second of a decision): within a point of the stage's.
    let predictions: Vec<PredictionRecord> =
        decoded(bootstrap, &config.output_topic, &AvroCodec::predictions());
    let edges = [
        started_at,
        decided[0].decided_at,
        decided[1].decided_at,
        decided[2].decided_at,
    ];
    for (stage, (from, to)) in edges.iter().zip(&edges[1..]).enumerate() {
        let inside: Vec<&PredictionRecord> = (predictions.iter())
            .filter(|p| p.scored_at > from + 1_500 && p.scored_at < to - 1_500)
            .collect();
        let by_candidate = inside
            .iter()
            .filter(|p| p.prediction.model_version == "2")
            .count();
        let share = by_candidate as f64 / inside.len() as f64;
        println!(
            "stage {stage}: the candidate scored {by_candidate} of {} records ({share:.4})",
            inside.len()
        );
        assert!(inside.len() >= 3_000, "stage {stage}: {}", inside.len());
        assert!(
            (share - said[stage].2).abs() <= 0.01,
            "stage {stage}: {share}"
        );
    }
    let reports: Vec<DriftReport> =
        decoded(bootstrap, &config.drift_topic, &AvroCodec::drift_reports());
    let notices: Vec<String> = reports.into_iter().filter_map(|r| r.notice).collect();
    assert!(
        notices
            .iter()
            .any(|n| n.starts_with("rollout breast-cancer 2: advance; candidate 2: ")),
        "{notices:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_whose_drift_windows_alert_is_rolled_back_at_its_first_window() {
    let run = scaled_candidate_rolled_back(
        &[
            "--drift-window-records",
            "500",
            "--drift-window-min-seconds",
            "0",
        ],
        &[],
    )
    .await;
    let (reg, bootstrap, c) = (run.reg.as_str(), bootstrap(), &run.conservation);
    assert!(run.exited_zero, "logs in {}", run.log.display());
    assert_eq!(
        (c.missing_count, c.duplicates, c.strays),
        (0, 0, 0),
        "{c:?}"
    );

    let decided = &run.decided;
    assert_eq!(decided.len(), 1, "{decided:?}");
    let d = &decided[0];
    assert_eq!(
        (d.decision, d.stage, d.next_share),
        (RolloutDecisionKind::RollBack, 0, None)
    );
    let reason = d.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("drift windows flagged alert"), "{reason}");
    // Decided on the candidate's first drift window.
    assert!(
        d.figures.contains(", 1 drift windows (1 alert)"),
        "{}",
        d.figures
    );
    let status = driftwood(&["models", "status", "breast-cancer", "--registry", reg]);
    assert!(status.contains("2 rolled back at"), "{status}");
    let pointer = std::fs::read_to_string(format!("{reg}/breast-cancer/serving.json")).unwrap();
    assert!(pointer.contains("\"version\": \"1\""), "{pointer}");
    let predictions: Vec<PredictionRecord> = decoded(
        bootstrap,
        &run.config.output_topic,
        &AvroCodec::predictions(),
    );
    let by_candidate = predictions
        .iter()
        .filter(|p| p.prediction.model_version == "2")
        .count();
    println!("the candidate scored {by_candidate} records before it stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_goes_on_across_a_kill_9_of_one_of_three_instances_and_a_restart_resumes_it() {
    let root = registry();
    let reg = root.to_str().unwrap();
    second_version(reg);
    let bootstrap = bootstrap();
    let rollouts = unique("rollouts");
    create_topics(bootstrap, &[&rollouts], 1).await;
    let config = fresh_topics(bootstrap, 6, 1).await;
    let input = stream(bootstrap, &config, 200_000, 4_000.0);
    // The dead member's partitions move on after 6 s, not the default 45.
    let flags = [
        "--model-name",
        "breast-cancer",
        "--registry",
        reg,
        "--reload-interval",
        "1s",
        "--rollout-topic",
        rollouts.as_str(),
        "--kafka-option",
        "consumer.session.timeout.ms=6000",
        "--revoke-drain",
        "5s",
    ];
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("three.log"));
    let mut members: Vec<Member> = (0..3)
        .map(|_| Member::start(&config, &flags, &log))
        .collect();
    for member in &mut members {
        member.wait_scored(1_000.0, Duration::from_secs(60));
    }
    let started_at = now_ms();
    staged_canary(reg, "1000");
    let status = || driftwood(&["models", "status", "breast-cancer", "--registry", reg]);
    wait_until("the first stage to pass", Duration::from_secs(60), || {
        status().contains("stage 2 of 3")
    })
    .await;
    members.remove(0).kill();
    // An instance started now (as the killed one would be restarted) serves the stage the
    // rollout is in, read from the registry.
    let restarted = Member::start(&config, &flags, &log);
    wait_until(
        "the restarted instance to serve the stage",
        Duration::from_secs(30),
        || restarted.metric(SHARE).is_some_and(|share| share >= 0.5),
    )
    .await;
    members.push(restarted);
    wait_until("the promotion", Duration::from_secs(120), || {
        status().contains("2 promoted over 1")
    })
    .await;
    let (exited_zero, c) = settle(bootstrap, &config, input, members).await;
    assert!(exited_zero, "logs in {}", log.display());
    // At least once across the kill: nothing missing, some records scored twice.
    assert_eq!((c.missing_count, c.strays), (0, 0), "{c:?}");

    let decided = decisions(bootstrap, &rollouts);
    let kinds: Vec<RolloutDecisionKind> = decided.iter().map(|d| d.decision).collect();
    use RolloutDecisionKind::{Advance, Promote};
    assert_eq!(kinds, [Advance, Advance, Promote], "{decided:?}");
    println!("{} records scored twice across the kill", c.duplicates);
    // No record scored by a version outside its stage: before a stage's decision no wider
    // share served, and once the instances had read a stage (two seconds on) the serving
    // version took none of its keys.
    let (t1, t2) = (decided[0].decided_at, decided[1].decided_at);
    let predictions: Vec<PredictionRecord> =
        decoded(bootstrap, &config.output_topic, &AvroCodec::predictions());
    for p in &predictions {
        let (by_two, at) = (p.prediction.model_version == "2", p.scored_at);
        let taken = |share| candidate_takes(p.id.as_bytes(), share);
        if by_two && at < t2 {
            assert!(
                taken(if at < t1 { 0.1 } else { 0.5 }),
                "{} by 2 at {at}",
                p.id
            );
        }
        if !by_two && at > started_at + 2_000 && at < t1 {
            assert!(!taken(0.1), "{} by 1 at {at}, stage 1", p.id);
        }
        if !by_two && at > t1 + 2_000 && at < t2 {
            assert!(!taken(0.5), "{} by 1 at {at}, stage 2", p.id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_that_disagrees_with_the_serving_one_is_rolled_back_by_the_agreement_gate() {
    // Every other gate open: only the agreement gate can decide.
    let gates = [
        "--min-agreement",
        "0.9",
        "--max-alert-share-increase",
        "1",
        "--max-mix-shift",
        "1",
        "--max-accuracy-drop",
        "1",
    ];
    let run = scaled_candidate_rolled_back(&[], &gates).await;
    let c = &run.conservation;
    assert!(run.exited_zero, "logs in {}", run.log.display());
    assert_eq!(
        (c.missing_count, c.duplicates, c.strays),
        (0, 0, 0),
        "{c:?}"
    );
    let decided = &run.decided;
    assert_eq!(decided.len(), 1, "{decided:?}");
    let reason = decided[0].reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("it agrees with the serving version on "),
        "{reason}"
    );
    println!("{reason}");
}

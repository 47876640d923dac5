//! A canary rollout on Apache Kafka under live input from an external producer: started and
//! aborted with `driftwood models canary` / `abort` while the instance runs, every record
//! scored once, and while the rollout ran the candidate scored exactly the keys its share
//! takes.

use std::collections::BTreeMap;
use std::time::Duration;

use driftwood::codec::encode::{AvroCodec, PredictionRecord};
use driftwood::drift::DriftReport;
use driftwood::model::rollout::candidate_takes;

use crate::common::conservation::decoded;
use crate::common::registry::{driftwood, following, registry, second_version};
use crate::common::stream::settle;
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
    let share = "driftwood_canary_share{name=\"breast-cancer\",version=\"2\"}";
    wait_until("the candidate to serve", Duration::from_secs(30), || {
        member.metric(share) == Some(0.1)
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
    let aborted = driftwood(&["models", "abort", "breast-cancer", "--registry", reg]);
    assert!(aborted.contains("rollout of 2 aborted at"), "{aborted}");
    wait_until("the candidate to stop", Duration::from_secs(30), || {
        member.metric(share).is_none()
    })
    .await;
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

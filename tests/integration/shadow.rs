//! Shadow scoring on Apache Kafka (`--shadow NAME:VERSION`): a candidate scores the records
//! too, and its agreement with the serving model shows in the metrics and on the comparison
//! topic, while predictions still come from the serving model.

use std::path::Path;
use std::time::Duration;

use driftwood::codec::encode::{AvroCodec, Comparison, PredictionRecord};

use crate::common::conservation::decoded;
use crate::common::process::Member;
use crate::common::*;

const RECORDS: usize = 4_000;
const CORRUPT: usize = 40;

/// A registry with the committed model as `breast-cancer` version 1 (promoted) and a
/// 20-tree forest as version 2.
fn registry() -> std::path::PathBuf {
    let root = crate::common::registry::registry();
    let reg = root.to_str().unwrap();
    crate::common::registry::second_version(reg);
    root
}

/// Shadowing with `candidate` at `share`: the agree and disagree counts, the predictions'
/// versions, and the comparisons published.
async fn shadowed(
    reg: &str,
    candidate: &str,
    share: &str,
) -> ((f64, f64), Vec<String>, Vec<Comparison>) {
    let bootstrap = bootstrap();
    let config = prepared_topics(bootstrap, RECORDS, CORRUPT, |_| {}).await;
    let comparisons = unique("comparisons");
    create_topics(bootstrap, &[&comparisons], 3).await;
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("shadow.log"));
    let flags = [
        "--model-name",
        "breast-cancer",
        "--registry",
        reg,
        "--shadow",
        candidate,
        "--shadow-share",
        share,
        "--comparison-topic",
        &comparisons,
    ];
    let mut member = Member::start(&config, &flags, &log);
    member.wait_scored((RECORDS - CORRUPT) as f64, Duration::from_secs(60));
    let count = |agreement: &str| {
        let sample = format!("driftwood_shadow_predictions_total{{agreement=\"{agreement}\"}}");
        member.metric(&sample).unwrap()
    };
    let counts = (count("agree"), count("disagree"));
    assert!(
        member.terminate(Duration::from_secs(30)),
        "logs in {}",
        log.display()
    );

    let predictions: Vec<PredictionRecord> =
        decoded(bootstrap, &config.output_topic, &AvroCodec::predictions());
    let versions = predictions
        .into_iter()
        .map(|p| p.prediction.model_version)
        .collect();
    let published = decoded(bootstrap, &comparisons, &AvroCodec::comparisons());
    (counts, versions, published)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serving_version_as_its_own_shadow_agrees_on_every_record() {
    let root = registry();
    let ((agree, disagree), versions, published) =
        shadowed(root.to_str().unwrap(), "breast-cancer:1", "1").await;
    let scored = (RECORDS - CORRUPT) as f64;
    assert_eq!((agree, disagree), (scored, 0.0));
    assert!(versions.iter().all(|v| v == "1"));
    assert_eq!(published.len(), RECORDS - CORRUPT);
    for c in &published {
        assert!(c.agree && c.serving_label == c.candidate_label, "{c:?}");
        assert_eq!(c.serving_confidence, c.candidate_confidence, "{c:?}");
        assert_eq!(
            (c.serving_version.as_str(), c.candidate_version.as_str()),
            ("1", "1")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_version_as_shadow_agrees_less_and_serves_nothing() {
    let root = registry();
    let ((agree, disagree), versions, published) =
        shadowed(root.to_str().unwrap(), "breast-cancer:2", "0.5").await;
    let compared = agree + disagree;
    println!("shadow 2 against 1: {agree} agree, {disagree} disagree");
    assert!(disagree > 0.0 && agree > 0.0, "{agree} {disagree}");
    // Half the records, chosen by position: 1,980 expected.
    let scored = (RECORDS - CORRUPT) as f64;
    assert!(
        (0.4 * scored..0.6 * scored).contains(&compared),
        "{compared} of {scored}"
    );
    assert!(
        versions.iter().all(|v| v == "1"),
        "predictions come from version 1 only"
    );
    assert_eq!(published.len() as f64, compared);
    let disagreeing = published.iter().filter(|c| !c.agree).count() as f64;
    assert_eq!(disagreeing, disagree);
    assert!(published.iter().all(|c| c.candidate_version == "2"));
}

//! Explanations on Apache Kafka (`--explain-header`): the predictions of records carrying
//! the header carry Saabas contributions that, with the bias, add up to the vote share the
//! prediction reports; the other predictions carry none.

use std::time::Duration;

use driftwood::codec::encode::{AvroCodec, PredictionRecord};
use driftwood::model::Model;
use rdkafka::message::{Header, OwnedHeaders};

use crate::common::conservation::decoded;
use crate::common::dressed::dressed_input;
use crate::common::process::Member;
use crate::common::*;

const RECORDS: usize = 400;
const HEADER: &str = "driftwood-explain";

/// Every fourth record asks for an explanation.
fn asking(i: usize, payload: &[u8]) -> (Vec<u8>, Option<OwnedHeaders>) {
    let header = Header {
        key: HEADER,
        value: Some("yes"),
    };
    let headers = i
        .is_multiple_of(4)
        .then(|| OwnedHeaders::new().insert(header));
    (payload.to_vec(), headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_asking_for_an_explanation_get_one_that_adds_up_to_the_vote_share() {
    let config = dressed_input(bootstrap(), RECORDS, asking).await;
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("explain.log"));
    let mut member = Member::start(&config, &["--explain-header", HEADER], &log);
    member.wait_scored(RECORDS as f64, Duration::from_secs(60));
    let explained = member.metric("driftwood_explanations_total").unwrap();
    assert!(
        member.terminate(Duration::from_secs(30)),
        "logs in {}",
        log.display()
    );

    let predictions: Vec<PredictionRecord> =
        decoded(bootstrap(), &config.output_topic, &AvroCodec::predictions());
    assert_eq!(predictions.len(), RECORDS);
    assert_eq!(explained, (RECORDS / 4) as f64);
    let features = Model::open(None).unwrap().metadata.features;
    let mut largest = 0.0f64;
    for p in &predictions {
        let asked = p.source_offset % 4 == 0;
        let Some(explanation) = &p.explanation else {
            assert!(
                !asked,
                "offset {} asked and got no explanation",
                p.source_offset
            );
            continue;
        };
        assert!(asked, "offset {} did not ask", p.source_offset);
        assert_eq!(explanation.label, p.prediction.predicted_label);
        let named: Vec<&str> = (explanation.contributions.iter())
            .map(|c| c.feature.as_str())
            .collect();
        assert_eq!(
            named, features,
            "one contribution per feature, in model order"
        );
        let total: f64 = explanation
            .contributions
            .iter()
            .map(|c| c.contribution)
            .sum();
        let confidence = p.prediction.confidence.unwrap();
        largest = largest.max((explanation.bias + total - confidence).abs());
    }
    assert!(
        largest <= 1e-9,
        "bias + contributions differ from the vote share by {largest}"
    );
}

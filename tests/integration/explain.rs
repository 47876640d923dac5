//! Explanations on Apache Kafka (`--explain-header`): the predictions of records carrying
//! the header carry Saabas contributions that, with the bias, add up to the vote share the
//! prediction reports; the other predictions carry none.

use std::time::Duration;

use driftwood::codec::encode::{AvroCodec, PredictionRecord};
use driftwood::model::Model;
use driftwood::tools::produce::{ProduceConfig, produce};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::common::conservation::decoded;
use crate::common::process::Member;
use crate::common::*;

const RECORDS: usize = 400;
const HEADER: &str = "driftwood-explain";

/// A run configuration whose one-partition input holds `RECORDS` feature records, every
/// fourth carrying the `HEADER` header.
async fn input_asking_every_fourth() -> driftwood::config::RunConfig {
    let bootstrap = bootstrap();
    let config = run_config(bootstrap);
    let staging = unique("staging");
    let topics = [
        &config.input_topic,
        &config.output_topic,
        &config.dlq_topic,
        &config.drift_topic,
        &staging,
    ];
    create_topics(bootstrap, &topics.map(String::as_str), 1).await;
    let spec = ProduceConfig::new(bootstrap, &staging, RECORDS);
    tokio::task::spawn_blocking(move || produce(&spec))
        .await
        .unwrap()
        .unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let staged = read_topic(bootstrap, &staging, RECORDS, Duration::from_secs(30));
    for (i, m) in staged.iter().enumerate() {
        let mut record =
            BaseRecord::<[u8], [u8]>::to(&config.input_topic).payload(m.payload().unwrap());
        if i % 4 == 0 {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: HEADER,
                value: Some("yes"),
            }));
        }
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_asking_for_an_explanation_get_one_that_adds_up_to_the_vote_share() {
    let config = input_asking_every_fourth().await;
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
        assert_eq!(explanation.label, p.predicted_label);
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
        let confidence = p.confidence.unwrap();
        largest = largest.max((explanation.bias + total - confidence).abs());
    }
    assert!(
        largest <= 1e-9,
        "bias + contributions differ from the vote share by {largest}"
    );
}

//! End to end on a real broker: every record is scored exactly as smartcore would score it,
//! or dead-lettered with its original bytes and key.

use std::time::Duration;

use driftwood::codec::dead_letter::{
    HEADER_ERROR_KIND, HEADER_ERROR_MESSAGE, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC,
};
use driftwood::codec::encode::{AvroCodec, PredictionRecord};
use driftwood::model::artifact::bundled_reference;
use driftwood::model::dataset::Dataset;
use driftwood::service::Service;
use driftwood::tools::produce::{is_corrupt, row_of};
use rdkafka::Message;
use smartcore::linalg::basic::matrix::DenseMatrix;

use crate::common::*;

const RECORDS: usize = 10_000;
const CORRUPT: usize = 50;

/// 10,000 records, 50 of them corrupt, through one instance: exactly 9,950 predictions, each
/// equal to smartcore's offline prediction, and 50 dead letters with the original bytes, key
/// and error headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_every_record_and_dead_letters_the_corrupt_ones() {
    scores_every_record_and_dead_letters_the_corrupt_ones_on(bootstrap()).await;
}

/// The test above on the broker at `bootstrap` (also run on Apache Kafka in Docker by
/// `kafka_container`).
pub async fn scores_every_record_and_dead_letters_the_corrupt_ones_on(bootstrap: &str) {
    let config = prepared_topics(bootstrap, RECORDS, CORRUPT, |_| {}).await;

    let service = Service::start(config.clone()).await.unwrap();
    let metrics = service.metrics().clone();
    wait_until(
        "every record to be scored or dead-lettered",
        Duration::from_secs(180),
        || metrics.scored() + metrics.dead_lettered() >= RECORDS as u64,
    )
    .await;
    service.stop().await.unwrap();
    assert_eq!(metrics.scored(), (RECORDS - CORRUPT) as u64);
    assert_eq!(metrics.dead_lettered(), CORRUPT as u64);

    let inputs = read_topic(
        bootstrap,
        &config.input_topic,
        RECORDS,
        Duration::from_secs(60),
    );
    let predictions = read_topic(
        bootstrap,
        &config.output_topic,
        RECORDS - CORRUPT,
        Duration::from_secs(60),
    );
    let dead = read_topic(
        bootstrap,
        &config.dlq_topic,
        CORRUPT,
        Duration::from_secs(60),
    );
    assert_eq!(
        predictions.len(),
        RECORDS - CORRUPT,
        "exactly one prediction per good record"
    );
    assert_eq!(
        dead.len(),
        CORRUPT,
        "exactly one dead letter per corrupt record"
    );
    let inputs = by_position(&inputs);

    // The offline reference: smartcore's own predict over the whole dataset.
    let data = Dataset::breast_cancer();
    let (metadata, reference) = bundled_reference().unwrap();
    let expected = reference
        .predict(&DenseMatrix::from_2d_vec(&data.rows).unwrap())
        .unwrap();

    let codec = AvroCodec::predictions();
    for message in &predictions {
        let p: PredictionRecord = codec.decode(message.payload().unwrap()).unwrap();
        let seq: usize = p.id.parse().unwrap();
        assert!(
            !is_corrupt(seq, RECORDS, CORRUPT),
            "corrupt record {seq} was scored"
        );
        let row = row_of(seq, &data);
        assert_eq!(
            p.prediction.predicted_label,
            Some(expected[row]),
            "record {seq} (row {row})"
        );
        assert_eq!(p.actual_label, Some(data.labels[row]));
        assert_eq!(p.prediction.model_name, metadata.name);
        assert_eq!(p.source_topic, config.input_topic);
        let input = inputs[&(p.source_partition, p.source_offset)];
        assert_eq!(input.key(), Some(p.id.as_bytes()));
        assert_eq!(
            message.key(),
            input.key(),
            "predictions are keyed like the input"
        );
        assert_eq!(
            message.timestamp().to_millis(),
            Some(p.scored_at),
            "a prediction's Kafka timestamp is its scoring time"
        );
        let shares: f64 = p
            .prediction
            .probabilities
            .iter()
            .map(|c| c.probability)
            .sum();
        assert!((shares - 1.0).abs() < 1e-9);
    }

    for message in &dead {
        let partition: i32 = header(message, HEADER_SOURCE_PARTITION)
            .unwrap()
            .parse()
            .unwrap();
        let offset: i64 = header(message, HEADER_SOURCE_OFFSET)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            header(message, HEADER_SOURCE_TOPIC).unwrap(),
            config.input_topic
        );
        assert_eq!(header(message, HEADER_ERROR_KIND).unwrap(), "undecodable");
        assert!(!header(message, HEADER_ERROR_MESSAGE).unwrap().is_empty());
        let input = inputs[&(partition, offset)];
        assert_eq!(message.payload(), input.payload(), "original bytes kept");
        assert_eq!(message.key(), input.key(), "original key kept");
        let seq: usize = std::str::from_utf8(input.key().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            is_corrupt(seq, RECORDS, CORRUPT),
            "good record {seq} was dead-lettered"
        );
    }
}

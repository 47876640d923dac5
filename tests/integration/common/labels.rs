//! Label records (`schemas/ground_truth.avsc`) for the predictions a test read back.

use driftwood::codec::encode::{AvroCodec, PredictionRecord};

use super::{create_topics, unique};
use rdkafka::Message;
use rdkafka::message::OwnedMessage;

/// A label record, shaped like `schemas/ground_truth.avsc`.
#[derive(serde::Serialize)]
pub struct GroundTruth {
    /// The input record's id.
    pub id: String,
    /// A classifier's true label.
    pub label: Option<i32>,
    /// A regressor's true value.
    pub value: Option<f64>,
    /// When the truth became known (ms).
    pub event_time: i64,
}

/// The Avro encoding of `truth`.
pub fn encoded(truth: &GroundTruth) -> Vec<u8> {
    let mut out = Vec::new();
    AvroCodec::ground_truth().encode(truth, &mut out).unwrap();
    out
}

/// A label for each of `predictions` (their input's own label, a second after its event),
/// to the labels partition numbered as its input's.
pub fn ground_truths(predictions: &[OwnedMessage]) -> Vec<(i32, Vec<u8>)> {
    let codec = AvroCodec::predictions();
    (predictions.iter())
        .map(|m| {
            codec
                .decode::<PredictionRecord>(m.payload().unwrap())
                .unwrap()
        })
        .map(|p| {
            let truth = GroundTruth {
                id: p.id,
                label: p.actual_label,
                value: None,
                event_time: p.event_time + 1_000,
            };
            (p.source_partition, encoded(&truth))
        })
        .collect()
}

/// The flags that join labels read from `labels` and publish a window of realized performance
/// per `window` labels to `performance`.
pub fn join_flags<'a>(labels: &'a str, performance: &'a str, window: &'a str) -> [&'a str; 6] {
    [
        "--labels-topic",
        labels,
        "--performance-topic",
        performance,
        "--performance-window",
        window,
    ]
}

/// Windows a short run fills: drift windows of exactly 200 records, statistics every second,
/// and labels read from `labels` joined into windows of 20 published to `performance`.
pub fn small_window_flags<'a>(labels: &'a str, performance: &'a str) -> Vec<&'a str> {
    let mut flags = vec![
        "--drift-window-records",
        "200",
        "--drift-window-min-seconds",
        "0",
        "--stats-interval",
        "1s",
    ];
    flags.extend(join_flags(labels, performance, "20"));
    flags
}

/// A fresh labels topic and performance topic of three partitions each (as the input's).
pub async fn labels_topics(bootstrap: &str) -> (String, String) {
    let (labels, performance) = (unique("labels"), unique("performance"));
    create_topics(bootstrap, &[&labels, &performance], 3).await;
    (labels, performance)
}

//! For unit tests of the Kafka side: librdkafka's in-process mock cluster (the real client
//! code on both ends), with topics and feature records in chosen partitions.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::events::{Event, Observer, Output};
use crate::codec::decode::{BUNDLED_FEATURE_SCHEMA, FeatureDecoder, InputFormat};
use crate::codec::encode::{FeatureEncoder, FeatureRow};
use crate::model::dataset::Dataset;

/// A one-broker mock cluster with `topics`, each of `partitions` partitions.
pub fn cluster(
    topics: &[&str],
    partitions: i32,
) -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster");
    for topic in topics {
        cluster
            .create_topic(topic, partitions, 1)
            .expect("mock topic");
    }
    cluster
}

/// Producer settings as driftwood's, against `bootstrap`.
pub fn producer_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "0");
    config
}

/// Writes one valid feature record (a row of the bundled dataset) to each of `partitions`.
pub fn produce_records(bootstrap: &str, topic: &str, partitions: &[i32]) {
    let data = Dataset::breast_cancer();
    let schema = FeatureDecoder::parse_schema(BUNDLED_FEATURE_SCHEMA, "bundled").unwrap();
    let encoder = FeatureEncoder::new(schema, InputFormat::Avro).unwrap();
    let producer: BaseProducer = producer_config(bootstrap).create().unwrap();
    for (i, &partition) in partitions.iter().enumerate() {
        let mut bytes = Vec::new();
        let row = FeatureRow {
            id: "r",
            event_time_ms: 1,
            names: &data.feature_names,
            values: &data.rows[i],
            label: Some(data.labels[i]),
        };
        encoder.encode(row, &mut bytes).unwrap();
        let record = BaseRecord::<(), _>::to(topic)
            .partition(partition)
            .payload(&bytes);
        producer.send(record).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// Polls `done` until it holds or `timeout` passes; whether it held.
pub fn eventually(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// What a test's output is, to the transport: a dead letter (which may be cut to fit) or not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A dead letter.
    DeadLetter,
    /// Anything else.
    Other,
}

/// An observer that keeps what it hears, for tests of the transport to look at.
#[derive(Default)]
pub struct Recorder {
    /// The outputs acknowledged, in order.
    pub acknowledged: Mutex<Vec<Output<Kind>>>,
    /// The other events, as `Debug` text.
    pub events: Mutex<Vec<String>>,
}

impl Observer for Recorder {
    type Outcome = Kind;

    fn truncatable(outcome: &Kind) -> bool {
        *outcome == Kind::DeadLetter
    }

    fn acknowledged(&self, output: &Output<Kind>) {
        self.acknowledged.lock().unwrap().push(*output);
    }

    fn on(&self, event: Event<'_>) {
        self.events.lock().unwrap().push(format!("{event:?}"));
    }
}

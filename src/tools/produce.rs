//! `driftwood produce`: a load and demo generator. Emits the bundled dataset's rows (with
//! their labels) as feature records, optionally shifted (to simulate drift) and with corrupt
//! records interleaved.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::codec::decode::{BUNDLED_FEATURE_SCHEMA, FeatureDecoder, InputFormat};
use crate::codec::encode::{AvroCodec, FeatureEncoder, FeatureRow, GroundTruthRecord};
use crate::codec::registry::{self, RegistryClient, RegistrySettings};
use crate::config::bootstrap_servers;
use crate::config::tools::ProduceConfig;
use crate::error::{Error, Result};
use crate::model::dataset::Dataset;
use crate::obs::epoch_millis;

/// Whether record `seq` of `count` is one of the `corrupt` ones (evenly spaced).
pub fn is_corrupt(seq: usize, count: usize, corrupt: usize) -> bool {
    if corrupt == 0 || count == 0 {
        return false;
    }
    let stride = count / corrupt.min(count);
    seq % stride == stride / 2 && seq / stride < corrupt
}

/// The dataset row record `seq` carries; its id is `seq` in decimal.
pub fn row_of(seq: usize, data: &Dataset) -> usize {
    seq % data.len()
}

/// What was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    /// Records acknowledged by the broker.
    pub records: usize,
    /// Of which corrupt.
    pub corrupt: usize,
    /// Wall time.
    pub elapsed: Duration,
}

struct CountingContext {
    failed: AtomicU64,
}

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            tracing::warn!(error = %e, "delivery failed");
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The id records are framed with: the bundled schema's, registered under `<topic>-value`
/// when a registry is named, else 1.
fn schema_id(config: &ProduceConfig) -> Result<u32> {
    let (Some(url), InputFormat::Confluent) = (&config.schema_registry_url, config.format) else {
        return Ok(1);
    };
    let settings = RegistrySettings {
        url: url.clone(),
        timeout: Duration::from_secs(10),
        ..RegistrySettings::default()
    };
    let client = RegistryClient::new(&settings)?;
    let subject = registry::value_subject(&config.topic);
    client
        .register(&subject, BUNDLED_FEATURE_SCHEMA)
        .map_err(|e| Error::SchemaRegistry {
            context: format!(
                "registering the feature schema under {subject} at {}",
                client.url()
            ),
            message: e.to_string(),
        })
}

/// Each feature's factor: 1 + `shift` for the features shifted, 1 for the others.
fn scales(config: &ProduceConfig, names: &[String]) -> Result<Vec<f64>> {
    if let Some(unknown) = (config.shift_features.iter()).find(|f| !names.contains(f)) {
        return Err(Error::tool(
            "produce",
            format!("--shift-features: no feature {unknown:?} in the bundled data set"),
        ));
    }
    let shifted =
        |name: &String| config.shift_features.is_empty() || config.shift_features.contains(name);
    Ok(names
        .iter()
        .map(|n| if shifted(n) { 1.0 + config.shift } else { 1.0 })
        .collect())
}

/// Emits the records and waits for every acknowledgement.
pub fn produce(config: &ProduceConfig) -> Result<Produced> {
    let data = Dataset::breast_cancer();
    let schema = FeatureDecoder::parse_schema(BUNDLED_FEATURE_SCHEMA, "bundled features.avsc")?;
    let encoder = FeatureEncoder::new(schema, config.format)?.with_schema_id(schema_id(config)?);
    let producer = counting_producer(config)?;
    let started = Instant::now();
    let scales = scales(config, &data.feature_names)?;
    let mut values = vec![0.0; data.feature_names.len()];
    let mut bytes = Vec::new();
    let mut corrupt = 0;
    for seq in 0..config.count {
        if config.rate > 0.0 {
            pace(started + Duration::from_secs_f64(seq as f64 / config.rate));
        }
        let row = row_of(seq, &data);
        for ((v, x), scale) in values.iter_mut().zip(&data.rows[row]).zip(&scales) {
            *v = x * scale;
        }
        let id = (config.first_id + seq).to_string();
        bytes.clear();
        let record = FeatureRow {
            id: &id,
            event_time_ms: epoch_millis(),
            names: &data.feature_names,
            values: &values,
            label: config.labels_topic.is_none().then(|| data.labels[row]),
        };
        encoder.encode(record, &mut bytes)?;
        if is_corrupt(seq, config.count, config.corrupt) {
            corrupt_in_place(&mut bytes, corrupt, config.format);
            corrupt += 1;
        }
        send(
            &producer,
            BaseRecord::to(&config.topic)
                .key(id.as_bytes())
                .payload(&bytes),
        )
        .map_err(|e| Error::kafka(format!("producing to {}", config.topic), e))?;
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(|e| Error::kafka("flushing", e))?;
    let failed = producer.context().failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(Error::tool(
            "produce",
            format!("{failed} of {} records were not acknowledged", config.count),
        ));
    }
    Ok(Produced {
        records: config.count,
        corrupt,
        elapsed: started.elapsed(),
    })
}

/// Writes the label of each record `produce` wrote (same ids, same rows) to
/// `config.labels_topic`, keyed like the record, as of now; how many.
pub fn produce_labels(config: &ProduceConfig) -> Result<usize> {
    let Some(topic) = &config.labels_topic else {
        return Ok(0);
    };
    let data = Dataset::breast_cancer();
    let producer = counting_producer(config)?;
    let codec = AvroCodec::ground_truth();
    let mut bytes = Vec::new();
    for seq in 0..config.count {
        let id = (config.first_id + seq).to_string();
        let truth = GroundTruthRecord {
            id: id.clone(),
            label: Some(data.labels[row_of(seq, &data)]),
            value: None,
            event_time: epoch_millis(),
        };
        bytes.clear();
        codec.encode(&truth, &mut bytes)?;
        let record = BaseRecord::to(topic).key(id.as_bytes()).payload(&bytes);
        send(&producer, record).map_err(|e| Error::kafka(format!("producing to {topic}"), e))?;
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(|e| Error::kafka("flushing", e))?;
    match producer.context().failed.load(Ordering::Relaxed) {
        0 => Ok(config.count),
        failed => Err(Error::tool(
            "produce",
            format!("{failed} of {} labels were not acknowledged", config.count),
        )),
    }
}

/// A producer that counts failed deliveries, with `config`'s options.
fn counting_producer(config: &ProduceConfig) -> Result<BaseProducer<CountingContext>> {
    let mut client = ClientConfig::new();
    client
        .set(
            "bootstrap.servers",
            bootstrap_servers(config.bootstrap_servers.as_deref()),
        )
        .set("linger.ms", "5")
        .set("acks", "all");
    for (k, v) in &config.kafka_options {
        client.set(k, v);
    }
    client
        .create_with_context(CountingContext {
            failed: AtomicU64::new(0),
        })
        .map_err(|e| Error::kafka("creating the producer", e))
}

/// Sleeps until `due`. (Not `producer.poll(due - now)`: librdkafka rounds sub-millisecond
/// timeouts down to zero, which turns pacing into a busy loop.)
fn pace(due: Instant) {
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

/// Sends `record`, waiting out a full queue.
fn send(
    producer: &BaseProducer<CountingContext>,
    mut record: BaseRecord<'_, [u8], Vec<u8>>,
) -> std::result::Result<(), KafkaError> {
    loop {
        match producer.send(record) {
            Ok(()) => break,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(Duration::from_millis(50));
            }
            Err((e, _)) => return Err(e),
        }
    }
    producer.poll(Duration::ZERO);
    Ok(())
}

/// Damages an encoded record so that it cannot be decoded, in one of three ways.
fn corrupt_in_place(bytes: &mut Vec<u8>, nth: usize, format: InputFormat) {
    match (nth % 3, format) {
        // Cut short: the Avro decoder runs out of bytes.
        (0, _) => bytes.truncate(bytes.len() / 2),
        // A wrong magic byte in front of a good record.
        (1, InputFormat::Confluent) => bytes[0] = 7,
        // Garbage: an over-long varint where the id's length should be.
        _ => {
            bytes.clear();
            bytes.extend_from_slice(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01garbage");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_records_are_spread_and_counted_exactly() {
        for (count, corrupt) in [(10_000, 50), (3000, 30), (10, 10), (7, 3), (5, 0)] {
            let n = (0..count)
                .filter(|&s| is_corrupt(s, count, corrupt))
                .count();
            assert_eq!(n, corrupt, "{count}/{corrupt}");
        }
    }

    #[test]
    fn every_corruption_is_undecodable() {
        let data = Dataset::breast_cancer();
        for format in [InputFormat::Avro, InputFormat::Confluent] {
            let schema = FeatureDecoder::parse_schema(BUNDLED_FEATURE_SCHEMA, "b").unwrap();
            let encoder = FeatureEncoder::new(schema.clone(), format).unwrap();
            let decoder =
                FeatureDecoder::new(schema, &data.feature_names, format, 1 << 20).unwrap();
            for nth in 0..3 {
                let mut bytes = Vec::new();
                let row = FeatureRow {
                    id: "1",
                    event_time_ms: 0,
                    names: &data.feature_names,
                    values: &data.rows[0],
                    label: None,
                };
                encoder.encode(row, &mut bytes).unwrap();
                corrupt_in_place(&mut bytes, nth, format);
                assert!(
                    decoder.decode(Some(&bytes), &mut Vec::new()).is_err(),
                    "{format:?} {nth}"
                );
            }
        }
    }
}

//! Input records as a producer of its own would send them: the generator's records re-sent
//! one by one with headers, or payloads, of the test's choosing.

use std::time::Duration;

use driftwood::config::RunConfig;
use driftwood::config::tools::ProduceConfig;
use driftwood::tools::produce::produce;
use rdkafka::ClientConfig;
use rdkafka::message::{Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::{create_topics, read_topic, run_config, unique};

/// A run configuration on fresh one-partition topics whose input holds `records` generated
/// feature records, record `i` sent as `dress(i, payload)` makes it: its payload (changed or
/// not) and its headers. Offset `i` is record `i`.
pub async fn dressed_input(
    bootstrap: &str,
    records: usize,
    dress: impl Fn(usize, &[u8]) -> (Vec<u8>, Option<OwnedHeaders>),
) -> RunConfig {
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
    let spec = ProduceConfig::new(bootstrap, &staging, records);
    tokio::task::spawn_blocking(move || produce(&spec))
        .await
        .unwrap()
        .unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let staged = read_topic(bootstrap, &staging, records, Duration::from_secs(30));
    for (i, m) in staged.iter().enumerate() {
        let (payload, headers) = dress(i, m.payload().unwrap());
        let mut record = BaseRecord::<[u8], [u8]>::to(&config.input_topic).payload(&payload);
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    config
}

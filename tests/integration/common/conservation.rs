//! Conservation, the promise every fault test checks: every input offset has an output (a
//! prediction or a dead letter). Outputs are read to the end of their topics, so duplicates
//! are counted exactly, with `read_committed` (librdkafka's default) so that outputs of
//! aborted transactions do not count.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use driftwood::config::RunConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::{count_sources, unique};

/// What a test run's outputs say about its inputs.
#[derive(Debug)]
pub struct Conservation {
    /// Input records.
    pub inputs: usize,
    /// Outputs (predictions and dead letters) read.
    pub outputs: usize,
    /// Input positions without any output (at most 10 shown).
    pub missing: Vec<(i32, i64)>,
    /// How many missing in all.
    pub missing_count: usize,
    /// Outputs beyond the first for their input.
    pub duplicates: usize,
    /// Outputs naming a position that is not an input.
    pub strays: usize,
}

fn client(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap()
}

/// `(partition, end offset)` of every partition of `topic`.
pub fn end_offsets(bootstrap: &str, topic: &str) -> Vec<(i32, i64)> {
    let client = client(bootstrap);
    let metadata = client
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("topic metadata");
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| {
            let (_, high) = client
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .expect("watermarks");
            (p.id(), high)
        })
        .collect()
}

/// Every committed record of `topic` (read as [`read_to_end`] does), decoded with `codec`.
pub fn decoded<T: serde::de::DeserializeOwned>(
    bootstrap: &str,
    topic: &str,
    codec: &driftwood::codec::encode::AvroCodec,
) -> Vec<T> {
    read_to_end(bootstrap, topic, Duration::from_secs(60))
        .iter()
        .map(|m| codec.decode(m.payload().unwrap()).unwrap())
        .collect()
}

/// Every committed message of `topic`, read until each partition's position reaches the end
/// it had when this started.
pub fn read_to_end(bootstrap: &str, topic: &str, timeout: Duration) -> Vec<OwnedMessage> {
    let ends = end_offsets(bootstrap, topic);
    let consumer = client(bootstrap);
    let mut tpl = TopicPartitionList::new();
    for (p, _) in &ends {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let at_end = |consumer: &BaseConsumer| {
        let positions = consumer.position().unwrap();
        ends.iter().all(|(p, end)| {
            *end == 0
                || matches!(positions.find_partition(topic, *p).map(|e| e.offset()),
                    Some(Offset::Offset(o)) if o >= *end)
        })
    };
    // Positions pass a transaction's markers, which no message shows, but asking for them is a
    // round trip to the client's thread: they are asked for when nothing came, or after a
    // thousand messages. Messages past the ends, written since, are left out.
    let mut unchecked = 0;
    loop {
        if unchecked == 0 && at_end(&consumer) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "reading {topic} to its end {ends:?} took over {timeout:?} ({} read)",
            out.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(m) => {
                let m = m.expect("consume");
                if ends
                    .iter()
                    .any(|(p, end)| *p == m.partition() && m.offset() < *end)
                {
                    out.push(m.detach());
                }
                unchecked = (unchecked + 1) % 1_000;
            }
            None => unchecked = 0,
        }
    }
}

/// Reads `config`'s input, predictions and dead letters to their ends and matches them up.
pub fn conservation(bootstrap: &str, config: &RunConfig) -> Conservation {
    let timeout = Duration::from_secs(120);
    let inputs: Vec<(i32, i64)> = read_to_end(bootstrap, &config.input_topic, timeout)
        .iter()
        .map(|m| (m.partition(), m.offset()))
        .collect();
    let predictions = read_to_end(bootstrap, &config.output_topic, timeout);
    let dead_letters = read_to_end(bootstrap, &config.dlq_topic, timeout);
    let seen: HashMap<(i32, i64), usize> = count_sources(&predictions, &dead_letters);
    let missing: Vec<(i32, i64)> = inputs
        .iter()
        .filter(|k| !seen.contains_key(k))
        .copied()
        .collect();
    let known: std::collections::HashSet<_> = inputs.iter().collect();
    Conservation {
        inputs: inputs.len(),
        outputs: predictions.len() + dead_letters.len(),
        missing_count: missing.len(),
        missing: missing.into_iter().take(10).collect(),
        duplicates: seen.values().map(|n| n - 1).sum(),
        strays: seen.keys().filter(|k| !known.contains(k)).count(),
    }
}

/// Reads what `config`'s group has committed for some input partitions, as any other
/// client would.
pub struct Committed {
    reader: BaseConsumer,
    partitions: TopicPartitionList,
    topic: String,
}

impl Committed {
    /// A reader of the group's commits for `partitions` of the input topic.
    pub fn reader(
        bootstrap: &str,
        config: &RunConfig,
        partitions: impl IntoIterator<Item = i32>,
    ) -> Self {
        let reader: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", &config.group_id)
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition(&config.input_topic, p);
        }
        Committed {
            reader,
            partitions: tpl,
            topic: config.input_topic.clone(),
        }
    }

    /// `(partition, committed offset)`, or the error of a broker that did not answer.
    pub fn read(&self) -> rdkafka::error::KafkaResult<Vec<(i32, Offset)>> {
        let committed = self
            .reader
            .committed_offsets(self.partitions.clone(), Duration::from_secs(10))?;
        Ok(committed
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| (e.partition(), e.offset()))
            .collect())
    }
}

/// Waits until `config`'s group has committed every input partition to its end.
pub fn wait_caught_up(bootstrap: &str, config: &RunConfig, timeout: Duration) {
    let ends = end_offsets(bootstrap, &config.input_topic);
    let committed = Committed::reader(bootstrap, config, ends.iter().map(|(p, _)| *p));
    let deadline = Instant::now() + timeout;
    loop {
        let now = committed.read().unwrap();
        let behind: Vec<_> = ends
            .iter()
            .filter(|(p, end)| {
                !now.iter()
                    .any(|(q, o)| q == p && matches!(o, Offset::Offset(o) if o >= end))
            })
            .collect();
        if behind.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the group did not commit to the ends {behind:?} within {timeout:?}: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

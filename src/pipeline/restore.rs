//! Bringing back the join's state for a partition this member was just assigned, on a thread
//! of its own: the predictions of the last two horizons, read back from the predictions
//! topic (with `--labels-topic` a prediction goes to the partition numbered as its input's),
//! and which of them the labels committed before were joined to, read back from the labels
//! topic up to the group's committed offset. Nothing else is kept anywhere: a restart, a
//! rebalance and kill -9 all end in the same restore.
//!
//! Hidden contract: a label replayed here is judged as the join judges it (its prediction
//! known, not late, the first of its id, a truth of the prediction's kind), so that the
//! marks are those the join left behind.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tracing::{info, warn};

use super::label_reader::LabelReader;
use crate::codec::encode::{AvroCodec, PredictionRecord};
use crate::codec::registry::RegistrySettings;
use crate::error::{Error, Result};
use crate::kafka::offsets::Lease;
use crate::labels::realized::{Said, Truth};

/// How long one restore may take before the member stops, saying so.
const RESTORE_DEADLINE: Duration = Duration::from_secs(600);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The topics a restore reads.
#[derive(Debug, Clone)]
pub struct RestoreTopics {
    /// The input topic (predictions of other inputs are skipped).
    pub input: String,
    /// The predictions topic.
    pub predictions: String,
    /// The labels topic.
    pub labels: String,
    /// Whether predictions are Confluent-framed (`--output-format confluent`).
    pub framed: bool,
}

/// A prediction read back.
#[derive(Debug)]
pub struct RestoredPrediction {
    /// Its model and version.
    pub model: (String, String),
    /// The model's classes, in its order (from the probabilities).
    pub classes: Vec<i32>,
    /// What it said.
    pub said: Said,
    /// Its input's event time (ms).
    pub event_time: i64,
    /// When it was scored (ms).
    pub scored_at: i64,
}

/// What a restore found for one partition.
#[derive(Debug, Default)]
pub struct RestoredState {
    /// The predictions, by id.
    pub predictions: HashMap<String, RestoredPrediction>,
    /// Ids joined before, with the offset of the label that joined each.
    pub joined: Vec<(String, i64)>,
    /// Labels replayed.
    pub labels_read: usize,
}

/// A finished restore of `partition`, begun under `lease`.
pub struct Restored {
    /// The partition.
    pub partition: i32,
    /// The assignment it was begun for.
    pub lease: Lease,
    /// What it found, or why it failed.
    pub state: Result<RestoredState>,
}

/// Runs restores on threads and hands back what they found.
pub struct Restorer {
    config: ClientConfig,
    topics: RestoreTopics,
    horizon_ms: i64,
    /// With Confluent-framed labels: the registry their schemas come from.
    registry: Option<RegistrySettings>,
    done: Sender<Restored>,
    results: Receiver<Restored>,
}

impl Restorer {
    /// Restores with clients like `consumer` (reading only: nothing committed, no group
    /// joined) from `topics`, the last two `horizon_ms`, reading Confluent-framed labels
    /// through `registry` when given.
    pub fn new(
        consumer: &ClientConfig,
        topics: RestoreTopics,
        horizon_ms: i64,
        registry: Option<RegistrySettings>,
    ) -> Self {
        let mut config = consumer.clone();
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .remove("group.instance.id");
        let (done, results) = mpsc::channel();
        Restorer {
            config,
            topics,
            horizon_ms,
            registry,
            done,
            results,
        }
    }

    /// Starts restoring `partition` for the assignment `lease`, as of `now` (ms).
    pub fn start(&self, partition: i32, lease: Lease, now: i64) -> Result<()> {
        let (config, topics, done) = (self.config.clone(), self.topics.clone(), self.done.clone());
        let registry = self.registry.clone();
        let since = now - 2 * self.horizon_ms;
        let horizon = self.horizon_ms;
        std::thread::Builder::new()
            .name(format!("driftwood-restore-{partition}"))
            .spawn(move || {
                let started = Instant::now();
                let sources = (&config, &topics, registry.as_ref());
                let state = restore(sources, partition, (since, horizon));
                if let Ok(s) = &state {
                    let (predictions, joined) = (s.predictions.len(), s.joined.len());
                    let took = started.elapsed();
                    info!(
                        partition,
                        predictions,
                        joined,
                        labels = s.labels_read,
                        ?took,
                        "restored"
                    );
                }
                let _ = done.send(Restored {
                    partition,
                    lease,
                    state,
                });
            })
            .map_err(Error::start("a restore thread"))?;
        Ok(())
    }

    /// The restores finished since the last call.
    pub fn finished(&self) -> impl Iterator<Item = Restored> + '_ {
        self.results.try_iter()
    }
}

/// Reads back `partition`'s predictions since `since` (ms), then the labels committed
/// before that joined them.
fn restore(
    (config, topics, registry): (&ClientConfig, &RestoreTopics, Option<&RegistrySettings>),
    partition: i32,
    (since, horizon_ms): (i64, i64),
) -> Result<RestoredState> {
    let consumer: BaseConsumer = config
        .create()
        .map_err(|e| Error::kafka("creating the restore consumer", e))?;
    let mut state = RestoredState::default();
    let codec = AvroCodec::predictions();
    let predictions = &topics.predictions;
    let (start, end) = range(&consumer, predictions, partition, since)?;
    read(&consumer, (predictions, partition), (start, end), |m| {
        let body = m.payload().map(|p| match topics.framed {
            true => p.get(5..).unwrap_or_default(),
            false => p,
        });
        let Some(record) = body.and_then(|p| codec.decode::<PredictionRecord>(p).ok()) else {
            return;
        };
        if record.source_topic == topics.input && record.source_partition == partition {
            state
                .predictions
                .insert(record.id.clone(), restored(record));
        }
    })?;
    let committed = committed(&consumer, &topics.labels, partition)?;
    let Some(committed) = committed else {
        return Ok(state);
    };
    let (start, _) = range(&consumer, &topics.labels, partition, since)?;
    let mut reader = LabelReader::new(registry)?;
    let mut marked = std::collections::HashSet::new();
    let mut refused = None;
    read(
        &consumer,
        (&topics.labels, partition),
        (start, committed),
        |m| {
            state.labels_read += 1;
            if let Err(e) = wait_ready(&mut reader, m) {
                refused.get_or_insert(e);
                return;
            }
            let Ok((id, truth, at)) = reader.read(m) else {
                return;
            };
            let Some(p) = state.predictions.get(id) else {
                return;
            };
            let fits = matches!(
                (&p.said, truth),
                (Said::Class { .. }, Truth::Class(_)) | (Said::Value(_), Truth::Value(_))
            );
            let on_time = at - p.event_time <= horizon_ms;
            if fits && on_time && marked.insert(id.to_owned()) {
                state.joined.push((id.to_owned(), m.offset()));
            }
        },
    )?;
    if let Some(refused) = refused {
        return Err(refused);
    }
    Ok(state)
}

/// Waits until `reader` knows `message`'s schema (the registry may be away a while).
fn wait_ready(reader: &mut LabelReader, message: &BorrowedMessage<'_>) -> Result<()> {
    let deadline = Instant::now() + RESTORE_DEADLINE;
    while !reader.ready(message)? {
        if Instant::now() > deadline {
            return Err(Error::Fatal {
                client: "schema registry",
                reason: format!("unreachable for {RESTORE_DEADLINE:?} while restoring labels"),
            });
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

fn restored(record: PredictionRecord) -> RestoredPrediction {
    let p = record.prediction;
    let classes: Vec<i32> = p.probabilities.iter().map(|c| c.label).collect();
    let said = match (p.predicted_label, p.value) {
        (Some(label), _) => Said::Class {
            label,
            probabilities: p
                .probabilities
                .iter()
                .map(|c| c.probability as f32)
                .collect(),
        },
        (None, value) => Said::Value(value.unwrap_or(f64::NAN)),
    };
    RestoredPrediction {
        model: (p.model_name, p.model_version),
        classes,
        said,
        event_time: record.event_time,
        scored_at: record.scored_at,
    }
}

/// The first offset of `partition` with a timestamp at or after `since`, and the end.
fn range(consumer: &BaseConsumer, topic: &str, partition: i32, since: i64) -> Result<(i64, i64)> {
    let kafka = |what: &str| {
        let what = format!("{what} of {topic} partition {partition} for a restore");
        move |e| Error::kafka(what, e)
    };
    let (low, high) = (consumer.fetch_watermarks(topic, partition, CALL_TIMEOUT))
        .map_err(kafka("reading the watermarks"))?;
    let mut at = TopicPartitionList::new();
    at.add_partition_offset(topic, partition, Offset::Offset(since.max(0)))
        .expect("valid offset");
    let found = (consumer.offsets_for_times(at, CALL_TIMEOUT))
        .map_err(kafka("finding the offset by time"))?;
    let start = match found.find_partition(topic, partition).map(|e| e.offset()) {
        Some(Offset::Offset(o)) => o,
        _ => high,
    };
    Ok((start.max(low), high))
}

/// The group's committed offset of `partition` (none when nothing was committed).
fn committed(consumer: &BaseConsumer, topic: &str, partition: i32) -> Result<Option<i64>> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let committed = (consumer.committed_offsets(tpl, CALL_TIMEOUT))
        .map_err(|e| Error::kafka(format!("reading the committed offset of {topic}"), e))?;
    Ok(
        match committed
            .find_partition(topic, partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        },
    )
}

/// Calls `each` on the messages of `partition` from `start` until the consumer's position
/// reaches `end` (control records of transactions count).
fn read(
    consumer: &BaseConsumer,
    (topic, partition): (&str, i32),
    (start, end): (i64, i64),
    mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
) -> Result<()> {
    if start >= end {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(start))
        .expect("valid offset");
    consumer
        .assign(&tpl)
        .map_err(|e| Error::kafka(format!("assigning {topic} for a restore"), e))?;
    let deadline = Instant::now() + RESTORE_DEADLINE;
    loop {
        // The position is asked for only when nothing came: it is a round trip to the client's
        // thread, and it is needed only past a transaction's markers, which no message shows.
        let done = match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) if m.offset() < end => {
                each(&m);
                m.offset() + 1 >= end
            }
            Some(Ok(_)) => true,
            Some(Err(e)) => {
                warn!(error = %e, topic, partition, "restore read error; trying on");
                false
            }
            None => {
                let position = (consumer.position().ok())
                    .and_then(|p| p.find_partition(topic, partition).map(|e| e.offset()));
                matches!(position, Some(Offset::Offset(o)) if o >= end)
            }
        };
        if done {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Fatal {
                client: "restore consumer",
                reason: format!(
                    "reading {topic} partition {partition} from {start} to {end} took over \
                     {RESTORE_DEADLINE:?}"
                ),
            });
        }
    }
}

//! Writer schemas fetched before a batch is decoded. Each Confluent-framed record's schema id
//! is looked up in the shared [`WriterSchemas`]; an id seen for the first time is fetched
//! from the registry there and then. When the registry cannot be asked (down, overloaded),
//! the record's partition is held: paused, and sought back to that record, so that nothing
//! after it is handled out of order or lost; records of known ids, on other partitions, keep
//! flowing. A held partition is let go when its id is due to be asked again (backing off
//! from 500 ms to 30 s), and `/ready` says 503 while any is held. An id the registry does
//! not know is remembered as unusable: its records are dead-lettered, not held.

use super::accounting::Input;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::codec::decode::FeatureDecoder;
use crate::codec::registry::client::Lookup;
use crate::codec::registry::{RegistryClient, RegistryError, WriterSchema, WriterSchemas};
use crate::error::{Error, Result};
use crate::obs::health::Health;
use crate::obs::metrics::Metrics;
use crate::obs::rate_limit::RateLimit;

/// An id the registry could not be asked about, and when to ask again.
struct Waiting {
    due: Instant,
    delays: ExponentialBackoff,
    error: String,
    /// When asking last failed.
    failed_at: Instant,
}

/// How long after a failed request `/ready` keeps saying so: longer than the longest
/// backoff, so that it does not flap while a held partition is let go to be asked again.
const UNREADY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// What one batch's pass has learnt so far.
#[derive(Default)]
struct Pass {
    /// The first failed request's error: the other new ids of the batch wait too, without a
    /// request each (a registry that times out would otherwise stall the loop once per id).
    down: Option<String>,
    /// The id of the last record found known: most batches carry one id, looked up once.
    known: Option<u32>,
}

/// Whether a held partition is paused or resumed before it is sought to its record.
#[derive(Debug, Clone, Copy)]
enum Fetching {
    Pause,
    Resume,
}

/// Resolves the schema ids of each batch, holding partitions while the registry is away.
pub(super) struct Resolver {
    client: RegistryClient,
    schemas: WriterSchemas,
    topic: String,
    waiting: HashMap<u32, Waiting>,
    /// Held partitions: the offset to read again from, and the id it waits for.
    held: BTreeMap<i32, (i64, u32)>,
    /// Partitions let go, until their first record shows they resumed where they were held.
    released: BTreeMap<i32, (i64, u32)>,
    health: Arc<Health>,
    metrics: Metrics,
    warnings: RateLimit,
}

impl Resolver {
    /// A resolver of `topic`'s records through `client` into `schemas`.
    pub(super) fn new(
        client: RegistryClient,
        schemas: WriterSchemas,
        topic: String,
        health: Arc<Health>,
        metrics: Metrics,
    ) -> Self {
        for outcome in ["found", "unknown", "unavailable", "refused"] {
            metrics
                .transport
                .registry_requests
                .with_label_values(&[outcome]);
        }
        Resolver {
            client,
            schemas,
            topic,
            waiting: HashMap::new(),
            held: BTreeMap::new(),
            released: BTreeMap::new(),
            health,
            metrics,
            warnings: RateLimit::every(Duration::from_secs(10)),
        }
    }

    /// The partitions held now.
    pub(super) fn held(&self) -> impl Iterator<Item = i32> + '_ {
        self.held.keys().copied()
    }

    /// Makes sure every id in `batch` is known, fetching new ones; takes out of `batch` each
    /// held partition's records from the first whose id could not be fetched, and holds
    /// the partition there. Fails when the registry refuses for good (credentials).
    pub(super) fn admit(
        &mut self,
        consumer: &Input,
        batch: &mut Vec<BorrowedMessage<'_>>,
    ) -> Result<()> {
        let mut hold_at: BTreeMap<i32, (i64, u32)> = BTreeMap::new();
        let mut pass = Pass::default();
        for message in batch.iter() {
            let partition = message.partition();
            if hold_at.contains_key(&partition) {
                continue;
            }
            if let Some(at) = self.hold_point(message, &mut pass)? {
                hold_at.insert(partition, at);
            }
        }
        let held = &self.held;
        batch.retain(|m| {
            let from = hold_at.get(&m.partition()).or(held.get(&m.partition()));
            from.is_none_or(|&(offset, _)| m.offset() < offset)
        });
        for (partition, at) in hold_at {
            self.hold(consumer, partition, at);
        }
        self.report();
        Ok(())
    }

    /// Where `message`'s partition must be held (offset, schema id), if anywhere: at
    /// `message` when its id is new and cannot be fetched now, or where it was held already.
    fn hold_point(
        &mut self,
        message: &BorrowedMessage<'_>,
        pass: &mut Pass,
    ) -> Result<Option<(i64, u32)>> {
        let partition = message.partition();
        if let Some(&(offset, id)) = self.held.get(&partition) {
            // A held partition should send nothing; one that does was assigned afresh
            // (revoked and given back in one rebalance): hold it again where it was.
            return Ok((message.offset() >= offset).then_some((offset, id)));
        }
        if let Some((offset, id)) = self.released.remove(&partition)
            && message.offset() > offset
        {
            // Resumed past the held record: never skip it; hold again, and seek again.
            warn!(
                partition,
                offset,
                at = message.offset(),
                "a partition let go resumed past its held record; going back"
            );
            return Ok(Some((offset, id)));
        }
        let Some(id) = crate::codec::registry::framed_id(message.payload()) else {
            return Ok(None);
        };
        if pass.known == Some(id) || self.schemas.contains(id) {
            pass.known = Some(id);
            return Ok(None);
        }
        let resolved = match &pass.down {
            None => self.fetch(id)?,
            Some(error) => {
                if !self.waiting.contains_key(&id) {
                    self.wait(id, error.clone());
                }
                false
            }
        };
        if resolved {
            pass.known = Some(id);
            return Ok(None);
        }
        if pass.down.is_none() {
            pass.down = self.waiting.get(&id).map(|w| w.error.clone());
        }
        Ok(Some((message.offset(), id)))
    }

    /// Lets go of the held partitions whose id is due to be asked again, and of those no
    /// longer assigned: resumes fetching them at the held record. Nothing is let go while
    /// `fetching` is false (paused for back-pressure, which resumes only what is not held).
    pub(super) fn release_due(&mut self, consumer: &Input, assigned: &[i32], fetching: bool) {
        self.released.retain(|p, _| assigned.contains(p));
        if !fetching {
            return;
        }
        let now = Instant::now();
        let due: Vec<i32> = (self.held.iter())
            .filter(|(p, (_, id))| {
                !assigned.contains(p) || self.waiting.get(id).is_none_or(|w| w.due <= now)
            })
            .map(|(p, _)| *p)
            .collect();
        if due.is_empty() {
            return;
        }
        for partition in due {
            let Some(at) = self.held.remove(&partition) else {
                continue;
            };
            if assigned.contains(&partition) {
                self.resume_at(consumer, partition, at);
            }
        }
        self.report();
    }

    /// Resumes `partition` and seeks it to the held record again: the seek made when it was
    /// held is not relied on alone. Its first record is checked (`hold_point`).
    fn resume_at(&mut self, consumer: &Input, partition: i32, at: (i64, u32)) {
        self.position(consumer, partition, at.0, Fetching::Resume);
        self.released.insert(partition, at);
    }

    /// Asks the registry for `id`: true once its records can be handled (decoded or
    /// dead-lettered), false while the registry cannot be asked.
    fn fetch(&mut self, id: u32) -> Result<bool> {
        if self
            .waiting
            .get(&id)
            .is_some_and(|w| w.due > Instant::now())
        {
            return Ok(false);
        }
        let outcome = match self.client.schema_by_id(id) {
            Ok(Lookup::Found(text)) => {
                let schema = match FeatureDecoder::parse_schema(&text, &format!("schema id {id}")) {
                    Ok(schema) => WriterSchema::Known(Arc::new(schema)),
                    Err(e) => WriterSchema::Unusable(e.to_string()),
                };
                info!(id, "writer schema fetched from the registry");
                self.schemas.insert(id, schema);
                "found"
            }
            Ok(Lookup::Unknown(reason)) => {
                self.schemas.insert(id, WriterSchema::Unusable(reason));
                "unknown"
            }
            Err(RegistryError::Unavailable(error)) => {
                self.count("unavailable");
                self.wait(id, error);
                return Ok(false);
            }
            Err(RegistryError::Refused(message)) => {
                self.count("refused");
                return Err(Error::SchemaRegistry {
                    context: format!("fetching writer schema id {id} from {}", self.client.url()),
                    message,
                });
            }
        };
        self.count(outcome);
        self.waiting.remove(&id);
        Ok(true)
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .transport
            .registry_requests
            .with_label_values(&[outcome])
            .inc();
    }

    /// Schedules the next request for `id`, further off each time.
    fn wait(&mut self, id: u32, error: String) {
        let waiting = self.waiting.entry(id).or_insert_with(|| Waiting {
            due: Instant::now(),
            delays: ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(30))
                .with_jitter()
                .without_max_times()
                .build(),
            error: String::new(),
            failed_at: Instant::now(),
        });
        waiting.failed_at = Instant::now();
        let delay = waiting.delays.next().unwrap_or(Duration::from_secs(30));
        waiting.due = Instant::now() + delay;
        if let Some(suppressed) = self.warnings.due() {
            warn!(id, %error, retry_in = ?delay, suppressed, "schema registry unavailable; holding the records of this schema id");
        }
        waiting.error = error;
    }

    /// Pauses `partition` and seeks it back to `offset`, where it is read again when let go.
    /// Paused first: a seek before a pause would be forgotten on resume.
    fn hold(&mut self, consumer: &Input, partition: i32, at: (i64, u32)) {
        self.position(consumer, partition, at.0, Fetching::Pause);
        self.held.insert(partition, at);
    }

    /// Pauses or resumes `partition`, then seeks it to `offset`; a failure is logged, and
    /// the first record after a resume is checked anyway.
    fn position(&self, consumer: &Input, partition: i32, offset: i64, fetching: Fetching) {
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.topic, partition);
        let switched = match fetching {
            Fetching::Pause => consumer.pause(&list),
            Fetching::Resume => consumer.resume(&list),
        };
        let to = Offset::Offset(offset);
        let sought = consumer.seek(&self.topic, partition, to, Duration::from_secs(5));
        if let Err(e) = switched.and(sought) {
            warn!(partition, offset, ?fetching, error = %e, "could not move a partition held for the schema registry");
        }
    }

    /// The held partitions in the metrics, and in `/ready` the registry's last error while
    /// an id still waits and asking for it failed within the last minute (an id whose
    /// partition moved to another member stops counting then).
    fn report(&self) {
        // A partition let go to be asked again counts until its record is decoded, so that
        // the gauge (and the alert on it) does not flap with each retry.
        let waiting = self.held.len() + self.released.len();
        self.metrics.transport.held_partitions.set(waiting as i64);
        let error = (self.waiting.values())
            .filter(|w| w.failed_at.elapsed() < UNREADY_AFTER_FAILURE)
            .max_by_key(|w| w.failed_at)
            .map(|w| w.error.clone());
        self.health.set_registry_error(error);
    }
}

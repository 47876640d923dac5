//! Kafka out: predictions and dead letters go through one producer. A record's input offset
//! counts as done only when the broker acknowledges its output; failed deliveries are re-sent
//! with backoff, never dropped.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use tracing::{error, warn};

use crate::codec::decode::DecodeErrorKind;
use crate::error::{Error, Result};
use crate::kafka::offsets::OffsetTracker;
use crate::ops::metrics::{Metrics, OutcomeCounters};

/// Header naming why a record was dead-lettered ([`DecodeErrorKind::as_str`]).
pub const HEADER_ERROR_KIND: &str = "driftwood.error.kind";
/// Header with a readable error message.
pub const HEADER_ERROR_MESSAGE: &str = "driftwood.error.message";
/// Header with the input topic.
pub const HEADER_SOURCE_TOPIC: &str = "driftwood.source.topic";
/// Header with the input partition (decimal).
pub const HEADER_SOURCE_PARTITION: &str = "driftwood.source.partition";
/// Header with the input offset (decimal).
pub const HEADER_SOURCE_OFFSET: &str = "driftwood.source.offset";
/// Header set when a dead letter's payload had to be cut to fit the broker's size limit; its
/// value is the original length.
pub const HEADER_TRUNCATED_FROM: &str = "driftwood.payload.truncated_from";

/// What an output stands for, counted in metrics once it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// A prediction.
    Scored {
        /// Predicted label.
        label: i32,
        /// Its vote share.
        confidence: f64,
        /// Whether it matched the record's ground truth, when it had one.
        correct: Option<bool>,
    },
    /// A dead letter.
    DeadLettered(DecodeErrorKind),
    /// The input forwarded unchanged (`--pass-through`, for benchmarks).
    PassedThrough,
    /// A drift report: belongs to no input offset, so it does not gate commits.
    DriftReport,
}

impl Outcome {
    /// Whether this output stands for an input offset that waits for it.
    fn tracks_offset(self) -> bool {
        !matches!(self, Outcome::DriftReport)
    }
}

/// The input record an output belongs to; travels through librdkafka as the delivery opaque.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    /// Input partition.
    pub partition: i32,
    /// Input offset.
    pub offset: i64,
    /// What the output is.
    pub outcome: Outcome,
    /// Deliveries tried so far.
    pub attempt: u32,
}

/// An output whose delivery failed, waiting to be sent again.
struct Retry {
    due: Instant,
    topic: String,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Option<OwnedHeaders>,
    pending: Pending,
}

/// Producer callbacks: acknowledgements advance the offset tracker, failures queue a retry.
pub struct SinkContext {
    tracker: Mutex<OffsetTracker>,
    retries: Mutex<Vec<Retry>>,
    counters: OutcomeCounters,
}

impl ClientContext for SinkContext {
    fn error(&self, error: KafkaError, reason: &str) {
        warn!(%error, reason, "producer error");
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Box<Pending>) {
        match result {
            Ok(_) => {
                if pending.outcome.tracks_offset() {
                    self.lock_tracker()
                        .acknowledged(pending.partition, pending.offset);
                }
                self.count(pending.outcome);
            }
            Err((err, message)) => {
                let delay = retry_delay(pending.attempt);
                warn!(
                    error = %err,
                    topic = message.topic(),
                    input_partition = pending.partition,
                    input_offset = pending.offset,
                    attempt = pending.attempt,
                    retry_in = ?delay,
                    "delivery failed; will send again"
                );
                self.counters.metrics().delivery_retries.inc();
                self.retries.lock().expect("retry queue").push(Retry {
                    due: Instant::now() + delay,
                    topic: message.topic().to_string(),
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().map(<[u8]>::to_vec),
                    headers: message.headers().map(|h| h.detach()),
                    pending: Pending {
                        attempt: pending.attempt + 1,
                        ..*pending
                    },
                });
            }
        }
    }
}

impl SinkContext {
    fn lock_tracker(&self) -> MutexGuard<'_, OffsetTracker> {
        self.tracker.lock().expect("offset tracker")
    }

    fn count(&self, outcome: Outcome) {
        let c = &self.counters;
        match outcome {
            Outcome::Scored {
                label,
                confidence,
                correct,
            } => c.scored(label, confidence, correct),
            Outcome::DeadLettered(kind) => c.dead_lettered(kind),
            Outcome::PassedThrough => c.passed_through(),
            Outcome::DriftReport => c.metrics().drift_reports.inc(),
        }
    }
}

/// Backoff before the `attempt`-th re-send: exponential from 100 ms, capped at 30 s, jittered.
fn retry_delay(attempt: u32) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempt as usize)
        .unwrap_or(Duration::from_secs(30))
}

/// The output side: one producer for predictions and dead letters.
pub struct Sink {
    producer: BaseProducer<SinkContext>,
}

impl Sink {
    /// Creates the producer (no broker contact yet).
    pub fn new(config: &ClientConfig, metrics: Metrics) -> Result<Self> {
        let context = SinkContext {
            tracker: Mutex::default(),
            retries: Mutex::default(),
            counters: OutcomeCounters::new(&metrics),
        };
        let producer = config
            .create_with_context(context)
            .map_err(|e| Error::kafka("creating the producer", e))?;
        Ok(Sink { producer })
    }

    /// The offset tracker (do not hold the guard across [`Sink::poll`] or [`Sink::send`]).
    pub fn tracker(&self) -> MutexGuard<'_, OffsetTracker> {
        self.producer.context().lock_tracker()
    }

    /// Sends one output for the input record in `pending`. Never drops it: a full queue is
    /// waited out, and any other error queues a retry.
    pub fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
        pending: Pending,
    ) {
        if pending.outcome.tracks_offset() {
            self.tracker().sent(pending.partition, pending.offset);
        }
        let mut payload = payload;
        let mut headers = headers;
        loop {
            let mut record = BaseRecord::with_opaque_to(topic, Box::new(pending));
            if let Some(payload) = payload {
                record = record.payload(payload);
            }
            if let Some(key) = key {
                record = record.key(key);
            }
            if let Some(h) = headers.take() {
                record = record.headers(h);
            }
            match self.producer.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), rejected)) => {
                    headers = rejected.headers;
                    self.poll(Duration::from_millis(100));
                }
                Err((
                    KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                    rejected,
                )) if matches!(pending.outcome, Outcome::DeadLettered(_))
                    && payload.is_some_and(|p| p.len() > 1024) =>
                {
                    // A dead letter must land even when the original is too large for the
                    // broker: keep the first part and say how long it was.
                    let full = payload.unwrap_or_default();
                    let original = full.len();
                    payload = Some(&full[..original / 2]);
                    let h = rejected.headers.unwrap_or_default().insert(Header {
                        key: HEADER_TRUNCATED_FROM,
                        value: Some(original.to_string().as_bytes()),
                    });
                    headers = Some(h);
                    warn!(original, "dead letter too large for the broker; truncating");
                }
                Err((err, rejected)) => {
                    error!(%err, topic, "could not enqueue output; will send again");
                    self.producer
                        .context()
                        .counters
                        .metrics()
                        .delivery_retries
                        .inc();
                    self.producer
                        .context()
                        .retries
                        .lock()
                        .expect("retry queue")
                        .push(Retry {
                            due: Instant::now() + retry_delay(pending.attempt),
                            topic: topic.to_string(),
                            key: key.map(<[u8]>::to_vec),
                            payload: payload.map(<[u8]>::to_vec),
                            headers: rejected.headers,
                            pending: Pending {
                                attempt: pending.attempt + 1,
                                ..pending
                            },
                        });
                    return;
                }
            }
        }
    }

    /// Serves delivery callbacks for up to `timeout`, re-sends retries that are due, and
    /// updates the in-flight gauge.
    pub fn poll(&self, timeout: Duration) {
        self.producer.poll(timeout);
        let context = self.producer.context();
        let due: Vec<Retry> = {
            let mut retries = context.retries.lock().expect("retry queue");
            if retries.is_empty() {
                Vec::new()
            } else {
                let now = Instant::now();
                let (due, later) = retries.drain(..).partition(|r| r.due <= now);
                *retries = later;
                due
            }
        };
        for retry in due {
            // A partition revoked since has a new owner who re-reads the record.
            if !retry.pending.outcome.tracks_offset()
                || self.tracker().is_assigned(retry.pending.partition)
            {
                self.send(
                    &retry.topic,
                    retry.key.as_deref(),
                    retry.payload.as_deref(),
                    retry.headers,
                    retry.pending,
                );
            }
        }
        let in_flight = self.tracker().in_flight();
        context.counters.metrics().in_flight.set(in_flight as i64);
    }

    /// Polls until every output of `partitions` is acknowledged or `timeout` passes; returns
    /// whether everything was acknowledged.
    pub fn drain(&self, partitions: &[i32], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.tracker().in_flight_in(partitions) == 0 {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.poll(left.min(Duration::from_millis(50)));
        }
    }

    /// Flushes librdkafka's queue (used at shutdown after draining).
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(timeout) {
            warn!(error = %e, "producer flush did not finish");
        }
    }
}

/// Dead-letter headers: the input's own headers, then the error and where the input came from.
pub fn dead_letter_headers(
    original: Option<OwnedHeaders>,
    error: &crate::codec::decode::DecodeError,
    topic: &str,
    partition: i32,
    offset: i64,
) -> OwnedHeaders {
    let mut headers = original.unwrap_or_default();
    for (key, value) in [
        (HEADER_ERROR_KIND, error.kind.as_str().to_string()),
        (HEADER_ERROR_MESSAGE, error.message.clone()),
        (HEADER_SOURCE_TOPIC, topic.to_string()),
        (HEADER_SOURCE_PARTITION, partition.to_string()),
        (HEADER_SOURCE_OFFSET, offset.to_string()),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    headers
}

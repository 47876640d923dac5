//! Kafka out: predictions, dead letters and drift reports go through one producer. A
//! record's input offset counts as done only when the broker acknowledges its output.
//! A failed delivery is sent again with backoff when another try can cure it. When it
//! cannot (authorization, a record the broker will never take, a fatal producer error),
//! the sink records the failure and the pipeline stops; that output stays unacknowledged,
//! so no commit passes it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use tracing::warn;

use super::events::{Event, Observer, Output};
use super::offsets::{Lease, Progress};
use super::retry::{self, Retry, RetryQueue};
use super::wakeup::Wakeup;
use crate::error::{Error, Result};
use crate::obs::rate_limit::RateLimit;

/// Header set when a dead letter's payload had to be cut to fit the broker's size limit; its
/// value is the original length.
pub const HEADER_TRUNCATED_FROM: &str = "driftwood.payload.truncated_from";

/// An output and the delivery attempt it is on; travels through librdkafka as the delivery
/// opaque.
#[derive(Debug, Clone, Copy)]
pub struct Tag<O> {
    /// What the output stands for.
    pub output: Output<O>,
    /// Deliveries tried before this one.
    pub attempt: u32,
    /// The assignment of the input partition the record was read under (records only).
    pub lease: Option<Lease>,
    /// The output partition, when the output names one (else the key's partitioner says).
    pub partition: Option<i32>,
    /// The output's timestamp (ms since the epoch), when the output names one (else
    /// librdkafka reads the clock as it queues the record).
    pub timestamp: Option<i64>,
}

/// Where an output goes and the time it carries.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// Its partition; else the key's partitioner chooses.
    pub partition: Option<i32>,
    /// Its timestamp (ms since the epoch); else librdkafka reads the clock as it queues it, a
    /// clock read a record.
    pub timestamp: Option<i64>,
}

impl<'a> Destination<'a> {
    /// `topic`, its partition chosen by the key's partitioner, stamped as it is queued.
    pub fn topic(topic: &'a str) -> Self {
        Destination {
            topic,
            partition: None,
            timestamp: None,
        }
    }
}

/// Why the outputs stopped: the first output that can never be delivered.
struct Stop {
    /// Its topic.
    topic: String,
    /// Why, as the broker or librdkafka said it.
    cause: String,
}

/// A dead letter this size or smaller is not truncated further.
const SMALLEST_TRUNCATION: usize = 1024;

/// The longest a wait for acknowledgements sleeps without looking whether one came.
const SERVE_SLICE: Duration = Duration::from_millis(1);

/// Producer callbacks: acknowledgements advance partition progress (the sink owns it), failures queue a retry or,
/// when no retry can succeed, record why the output cannot go on.
pub struct SinkContext<W: Observer> {
    progress: Progress,
    retries: Mutex<RetryQueue<W::Outcome>>,
    failure: Mutex<Option<Stop>>,
    observer: Arc<W>,
    /// Exactly-once: a failed delivery is not sent again; the transaction aborts instead and
    /// its records are read again.
    transactional: bool,
    /// Exactly-once: an output could not even be queued, so the open transaction lacks it.
    abort_needed: AtomicBool,
    failure_log: RateLimit,
}

impl<W: Observer> ClientContext for SinkContext<W> {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            self.fail("every topic", format!("fatal producer error: {reason}"));
        }
        warn!(%error, reason, "producer error");
    }
}

impl<W: Observer> ProducerContext for SinkContext<W> {
    type DeliveryOpaque = Box<Tag<W::Outcome>>;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: Box<Tag<W::Outcome>>) {
        match result {
            Ok(_) => self.acknowledged(*tag),
            Err((err, message)) => self.failed(err, message, *tag),
        }
    }
}

impl<W: Observer> SinkContext<W> {
    fn acknowledged(&self, tag: Tag<W::Outcome>) {
        match (tag.output, tag.lease) {
            (
                Output::Record {
                    partition, offset, ..
                },
                Some(lease),
            ) => {
                self.progress.lock().acknowledged(partition, lease, offset);
            }
            (
                Output::Label {
                    partition, offset, ..
                },
                Some(lease),
            ) => {
                self.progress
                    .labels()
                    .acknowledged(partition, lease, offset);
            }
            _ => {}
        }
        self.observer.acknowledged(&tag.output);
    }

    /// A delivery failed: queue it again (truncated, for a dead letter too large for the
    /// broker), or record that the output cannot go on.
    fn failed(
        &self,
        err: &KafkaError,
        message: &rdkafka::message::BorrowedMessage<'_>,
        tag: Tag<W::Outcome>,
    ) {
        let code = err.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail);
        let topic = message.topic();
        self.observer
            .on(Event::DeliveryFailed { topic, error: err });
        if self.transactional {
            if retry::is_permanent(code) {
                self.fail(topic, format!("{err} (for {:?})", tag.output));
            }
            return;
        }
        let mut payload = message.payload().map(<[u8]>::to_vec);
        let mut headers = message.headers().map(|h| h.detach());
        if retry::is_permanent(code) {
            if !(code == RDKafkaErrorCode::MessageSizeTooLarge
                && truncatable::<W>(tag, payload.as_deref()))
            {
                self.fail(topic, format!("{err} (for {:?})", tag.output));
                return;
            }
            let (cut, h) = truncated(payload.as_deref().unwrap_or_default(), headers);
            (payload, headers) = (Some(cut), Some(h));
        }
        let delay = retry::delay(tag.attempt);
        if let Some(suppressed) = self.failure_log.due() {
            // Once a second at most: an outage fails every queued output at once.
            warn!(error = %err, topic, output = ?tag.output, attempt = tag.attempt, retry_in = ?delay, suppressed, "delivery failed; will send again (suppressed: similar failures since the last warning)");
        }
        self.observer.on(Event::Resent);
        self.retries.lock().expect("retry queue").push(Retry {
            due: Instant::now() + delay,
            topic: topic.to_string(),
            key: message.key().map(<[u8]>::to_vec),
            payload,
            headers,
            tag: Tag {
                attempt: tag.attempt + 1,
                ..tag
            },
        });
    }

    /// Records the first permanent failure; the pipeline stops on it.
    fn fail(&self, topic: &str, cause: String) {
        let mut failure = self.failure.lock().expect("failure");
        if failure.is_none() {
            tracing::error!(topic, %cause, "outputs cannot be written; stopping");
            *failure = Some(Stop {
                topic: topic.to_string(),
                cause,
            });
        }
    }
}

/// Whether `payload` is an output (a dead letter) that may still be cut to fit the broker.
fn truncatable<W: Observer>(tag: Tag<W::Outcome>, payload: Option<&[u8]>) -> bool {
    W::truncatable(tag.output.outcome()) && payload.is_some_and(|p| p.len() > SMALLEST_TRUNCATION)
}

/// The first half of a dead letter's payload, with a header saying how long it was.
fn truncated(payload: &[u8], headers: Option<OwnedHeaders>) -> (Vec<u8>, OwnedHeaders) {
    let original = payload.len();
    warn!(original, "dead letter too large for the broker; truncating");
    let headers = headers.unwrap_or_default().insert(Header {
        key: HEADER_TRUNCATED_FROM,
        value: Some(original.to_string().as_bytes()),
    });
    (payload[..original / 2].to_vec(), headers)
}

/// The output side: one producer for every output.
pub struct Sink<W: Observer> {
    /// Declared first so that it drops first, while the producer still lives.
    wakeup: Wakeup,
    producer: BaseProducer<SinkContext<W>>,
}

impl<W: Observer> Sink<W> {
    /// Creates the producer (no broker contact yet), and the partition progress it owns:
    /// acknowledgements advance it, and go to `observer` with every other delivery event. A producer with a
    /// `transactional.id` never sends a failed output again: its transaction aborts instead.
    pub fn new(config: &ClientConfig, observer: Arc<W>) -> Result<Self> {
        let context = SinkContext {
            progress: Progress::default(),
            retries: Mutex::default(),
            failure: Mutex::default(),
            observer,
            transactional: config.get("transactional.id").is_some(),
            abort_needed: AtomicBool::new(false),
            failure_log: RateLimit::every(Duration::from_secs(1)),
        };
        let producer: BaseProducer<SinkContext<W>> = config
            .create_with_context(context)
            .map_err(|e| Error::kafka("creating the producer", e))?;
        let wakeup =
            Wakeup::new(producer.client().native_ptr()).map_err(|source| Error::Start {
                what: "the producer's wake-up pipe",
                source,
            })?;
        Ok(Sink { wakeup, producer })
    }

    /// Sends one output. Never drops it: a full queue is waited out, a dead letter too large
    /// for the producer is truncated, and any other error queues a retry.
    pub fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
        output: Output<W::Outcome>,
    ) {
        self.send_to(Destination::topic(topic), key, payload, headers, output);
    }

    /// [`Sink::send`] to `to`'s topic, with its partition and timestamp where it gives them.
    pub fn send_to(
        &self,
        to: Destination<'_>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
        output: Output<W::Outcome>,
    ) {
        let progress = &self.producer.context().progress;
        let lease = match output {
            Output::Record {
                partition, offset, ..
            } => progress.lock().sent(partition, offset),
            Output::Label {
                partition, offset, ..
            } => progress.labels().sent(partition, offset),
            Output::Detached(_) => None,
        };
        if lease.is_none() && !matches!(output, Output::Detached(_)) {
            // Revoked since it was read: its next owner reads it again.
            return;
        }
        let tag = Tag {
            output,
            attempt: 0,
            lease,
            partition: to.partition,
            timestamp: to.timestamp,
        };
        self.enqueue(to.topic, key, payload, headers, tag);
    }

    fn enqueue(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        mut headers: Option<OwnedHeaders>,
        tag: Tag<W::Outcome>,
    ) {
        // The payload once truncated to fit.
        let mut cut: Option<Vec<u8>> = None;
        loop {
            let current = cut.as_deref().or(payload);
            let mut record = BaseRecord::<[u8], [u8], _>::with_opaque_to(topic, Box::new(tag));
            record.partition = tag.partition;
            record.timestamp = tag.timestamp;
            record.payload = current;
            record.key = key;
            record.headers = headers.take();
            let (err, rejected_headers) = match self.producer.send(record) {
                Ok(()) => return,
                Err((err, rejected)) => (err, rejected.headers),
            };
            match err.rdkafka_error_code() {
                Some(RDKafkaErrorCode::QueueFull) => {
                    headers = rejected_headers;
                    self.poll(Duration::from_millis(100));
                }
                Some(RDKafkaErrorCode::MessageSizeTooLarge) if truncatable::<W>(tag, current) => {
                    // A dead letter must land even when the original is too large: keep the
                    // first part and say how long it was.
                    let (shorter, h) = truncated(current.unwrap_or_default(), rejected_headers);
                    cut = Some(shorter);
                    headers = Some(h);
                }
                code => {
                    let context = self.producer.context();
                    if code.is_some_and(retry::is_permanent) {
                        context.fail(topic, format!("{err} (for {:?})", tag.output));
                        return;
                    }
                    if context.transactional {
                        // Not in the transaction: it must not commit without this output.
                        context.abort_needed.store(true, Ordering::Relaxed);
                        context.observer.on(Event::NotQueued { topic, error: &err });
                        return;
                    }
                    warn!(%err, topic, "could not enqueue output; will send again");
                    context.observer.on(Event::Resent);
                    context.retries.lock().expect("retry queue").push(Retry {
                        due: Instant::now() + retry::delay(tag.attempt),
                        topic: topic.to_string(),
                        key: key.map(<[u8]>::to_vec),
                        payload: current.map(<[u8]>::to_vec),
                        headers: rejected_headers,
                        tag: Tag {
                            attempt: tag.attempt + 1,
                            ..tag
                        },
                    });
                    return;
                }
            }
        }
    }

    /// Serves delivery callbacks until one acknowledgement arrived or `timeout` passed,
    /// re-sends retries that are due, and updates the in-flight gauge.
    pub fn poll(&self, timeout: Duration) {
        self.serve(timeout);
        let context = self.producer.context();
        let due = context
            .retries
            .lock()
            .expect("retry queue")
            .take_due(Instant::now());
        for retry in due {
            // A partition revoked since (even if assigned again) re-reads the record.
            let owned = match (retry.tag.output, retry.tag.lease) {
                (Output::Record { partition, .. }, Some(lease)) => {
                    context.progress.lock().holds(partition, lease)
                }
                (Output::Label { partition, .. }, Some(lease)) => {
                    context.progress.labels().holds(partition, lease)
                }
                (Output::Record { .. } | Output::Label { .. }, None) => false,
                (Output::Detached(_), _) => true,
            };
            if owned {
                self.enqueue(
                    &retry.topic,
                    retry.key.as_deref(),
                    retry.payload.as_deref(),
                    retry.headers,
                    retry.tag,
                );
            }
        }
        let in_flight = context.progress.lock().in_flight();
        context.observer.on(Event::InFlight(in_flight));
    }

    /// rust-rdkafka's `BaseProducer::poll` serves events until its whole timeout has
    /// passed, never returning early, and spins through its last millisecond; so the wait
    /// is on librdkafka's wake-ups instead (`wakeup.rs`), in short slices, until the count
    /// of unacknowledged outputs drops.
    ///
    /// Every pass first serves all the reports already waiting. A poll with no time to wait
    /// serves one event (the reports of one partition's batch), and the loop polls once per
    /// batch of input: served one at a time, the reports fell behind the producer (three
    /// partitions, 5 ms batches), the unacknowledged count reached `--max-in-flight`, and
    /// the loop stalled on it, the more so the larger the bound.
    fn serve(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let before = self.producer.in_flight_count();
        loop {
            self.serve_waiting();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.producer.in_flight_count() < before {
                return;
            }
            // A wake-up taken here may stand for a report served above, or for one that
            // came since: serve again rather than wait.
            if !self.wakeup.take() {
                self.wakeup.wait(left.min(SERVE_SLICE));
            }
        }
    }

    /// Serves the events already queued, one poll each, until a poll serves no report.
    fn serve_waiting(&self) {
        loop {
            let waiting = self.producer.in_flight_count();
            self.producer.poll(Duration::ZERO);
            if self.producer.in_flight_count() >= waiting {
                return;
            }
        }
    }

    /// Sends everything queued at once (no linger) and serves delivery reports until none is
    /// outstanding; false if `timeout` passed first. Exactly-once calls it before
    /// `commit_transaction`, whose own flush would serve them in 100 ms polls; shutdown calls
    /// it after draining.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            // With no time to wait, librdkafka's flush only wakes the queued messages up.
            if self.producer.flush(Duration::ZERO).is_ok() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            self.serve(deadline.saturating_duration_since(Instant::now()));
        }
    }

    /// Bytes held by outputs waiting to be sent again.
    pub fn retry_bytes(&self) -> usize {
        self.producer
            .context()
            .retries
            .lock()
            .expect("retry queue")
            .bytes()
    }

    /// The permanent failure that stops the outputs, if one happened. A fatal producer error
    /// (fenced by a newer instance, say) is named as librdkafka names it, rather than by the
    /// generic error the deliveries it failed report.
    pub fn failure(&self) -> Option<Error> {
        let failure = self.producer.context().failure.lock().expect("failure");
        failure.as_ref()?;
        if let Some((code, reason)) = self.producer.client().fatal_error() {
            return Some(Error::Fatal {
                client: "producer",
                reason: format!("{code:?}: {reason}"),
            });
        }
        failure.as_ref().map(|stop| Error::Output {
            topic: stop.topic.clone(),
            cause: stop.cause.clone(),
        })
    }

    /// Polls until every output of `partitions` is acknowledged or `timeout` passes; returns
    /// whether everything was acknowledged.
    pub fn drain(&self, partitions: &[i32], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let progress = &self.producer.context().progress;
        loop {
            if progress.lock().in_flight_in(partitions) == 0 {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.failure().is_some() {
                return false;
            }
            self.poll(left.min(Duration::from_millis(50)));
        }
    }

    /// Exactly-once: whether an output of the open transaction could not be queued (the
    /// transaction must abort); clears the flag.
    pub(crate) fn take_abort_needed(&self) -> bool {
        self.producer
            .context()
            .abort_needed
            .swap(false, Ordering::Relaxed)
    }

    /// Partition progress: what is assigned, what is in flight, what may be committed. The
    /// sink owns it; the consumer context and the loop reach it through here.
    pub fn progress(&self) -> &Progress {
        &self.producer.context().progress
    }

    /// Who hears what the transport sees.
    pub(crate) fn observer(&self) -> &W {
        &self.producer.context().observer
    }

    /// The producer, for the transaction calls.
    pub(crate) fn producer(&self) -> &BaseProducer<SinkContext<W>> {
        &self.producer
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Headers;

    use super::*;
    use crate::kafka::testing::{Kind, Recorder};

    fn dead_letter() -> Tag<Kind> {
        Tag {
            output: Output::Record {
                partition: 0,
                offset: 7,
                outcome: Kind::DeadLetter,
            },
            attempt: 0,
            lease: None,
            partition: None,
            timestamp: None,
        }
    }

    #[test]
    fn a_dead_letter_too_large_is_cut_in_half_and_says_how_long_it_was() {
        let (cut, headers) = truncated(&[7; 5000], None);
        assert_eq!(cut, vec![7; 2500]);
        let header = headers.get(0);
        assert_eq!(header.key, HEADER_TRUNCATED_FROM);
        assert_eq!(header.value, Some(&b"5000"[..]));
    }

    #[test]
    fn only_dead_letters_above_a_kilobyte_are_cut() {
        assert!(truncatable::<Recorder>(dead_letter(), Some(&[0; 1025])));
        assert!(!truncatable::<Recorder>(dead_letter(), Some(&[0; 1024])));
        let prediction = Tag {
            output: Output::Record {
                partition: 0,
                offset: 7,
                outcome: Kind::Other,
            },
            attempt: 0,
            lease: None,
            partition: None,
            timestamp: None,
        };
        assert!(!truncatable::<Recorder>(prediction, Some(&[0; 5000])));
        let report = Tag {
            output: Output::Detached(Kind::Other),
            attempt: 0,
            lease: None,
            partition: None,
            timestamp: None,
        };
        assert!(!truncatable::<Recorder>(report, Some(&[0; 5000])));
    }
}

//! Kafka out: predictions, dead letters and drift reports go through one producer. A
//! record's input offset counts as done only when the broker acknowledges its output.
//! A failed delivery is sent again with backoff when another try can cure it. When it
//! cannot (authorization, a record the broker will never take, a fatal producer error),
//! the sink records the failure and the pipeline stops; that output stays unacknowledged,
//! so no commit passes it. The delivery reports are read by the producer's context
//! (`delivery.rs`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use tracing::warn;

use super::delivery::{SinkContext, Tag, truncatable, truncated};
use super::events::{Event, Observer, Output};
use super::offsets::Progress;
use super::retry::{self, Retry};
use super::wakeup::Wakeup;
use crate::error::{Error, Result};

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

/// The longest a wait for acknowledgements sleeps without looking whether one came.
const SERVE_SLICE: Duration = Duration::from_millis(1);

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
        let transactional = config.get("transactional.id").is_some();
        let context = SinkContext::new(observer, transactional);
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

//! What librdkafka hands back about each output. An output travels through it with its
//! tag; the producer's context turns each delivery report into an acknowledgement (partition
//! progress moves on), a retry (queued for the sink to send again), or the failure that
//! stops the outputs.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use tracing::warn;

use super::events::{Event, Observer, Output};
use super::offsets::{Lease, Progress};
use super::retry::{self, Retry, RetryQueue};
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

/// Why the outputs stopped: the first output that can never be delivered.
pub(super) struct Stop {
    /// Its topic.
    pub(super) topic: String,
    /// Why, as the broker or librdkafka said it.
    pub(super) cause: String,
}

/// A dead letter this size or smaller is not truncated further.
const SMALLEST_TRUNCATION: usize = 1024;

/// Producer callbacks: acknowledgements advance partition progress (the sink owns it), failures queue a retry or,
/// when no retry can succeed, record why the output cannot go on.
pub struct SinkContext<W: Observer> {
    pub(super) progress: Progress,
    pub(super) retries: Mutex<RetryQueue<W::Outcome>>,
    pub(super) failure: Mutex<Option<Stop>>,
    pub(super) observer: Arc<W>,
    /// Exactly-once: a failed delivery is not sent again; the transaction aborts instead and
    /// its records are read again.
    pub(super) transactional: bool,
    /// Exactly-once: an output could not even be queued, so the open transaction lacks it.
    pub(super) abort_needed: AtomicBool,
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
    /// The context of a producer whose reports go to `observer` (a `transactional` one never
    /// sends a failed output again: its transaction aborts instead).
    pub(super) fn new(observer: Arc<W>, transactional: bool) -> Self {
        SinkContext {
            progress: Progress::default(),
            retries: Mutex::default(),
            failure: Mutex::default(),
            observer,
            transactional,
            abort_needed: AtomicBool::new(false),
            failure_log: RateLimit::every(Duration::from_secs(1)),
        }
    }

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
    pub(super) fn fail(&self, topic: &str, cause: String) {
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
pub(super) fn truncatable<W: Observer>(tag: Tag<W::Outcome>, payload: Option<&[u8]>) -> bool {
    W::truncatable(tag.output.outcome()) && payload.is_some_and(|p| p.len() > SMALLEST_TRUNCATION)
}

/// The first half of a dead letter's payload, with a header saying how long it was.
pub(super) fn truncated(payload: &[u8], headers: Option<OwnedHeaders>) -> (Vec<u8>, OwnedHeaders) {
    let original = payload.len();
    warn!(original, "dead letter too large for the broker; truncating");
    let headers = headers.unwrap_or_default().insert(Header {
        key: HEADER_TRUNCATED_FROM,
        value: Some(original.to_string().as_bytes()),
    });
    (payload[..original / 2].to_vec(), headers)
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

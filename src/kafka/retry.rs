//! Outputs whose delivery failed: which failures another try can cure, the backoff before
//! it, and the queue that holds them meanwhile, counted in bytes so that back-pressure can
//! bound it.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::OwnedHeaders;

use super::sink::Tag;

/// Fetching pauses while the retry queue holds this many bytes (it holds copies of outputs
/// the broker has not taken yet).
pub const RETRY_QUEUE_BYTES: usize = 64 << 20;

/// Whether a delivery that failed with `code` will fail however often it is sent again:
/// authorization and authentication, a record the broker will never take, a fenced or
/// fatally failed idempotent producer. Everything else (timeouts, leader changes, missing
/// replicas, a topic not created yet) is worth another try.
pub fn is_permanent(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::Authentication
            | C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::MessageBatchTooLarge
            | C::InvalidRecord
            | C::InvalidTopic
            | C::InvalidRequiredAcks
            | C::UnsupportedForMessageFormat
            | C::UnsupportedVersion
            | C::ProducerFenced
            | C::Fatal
    )
}

/// Backoff before the `attempt`-th re-send: exponential from 100 ms, capped at 30 s, jittered.
pub fn delay(attempt: u32) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempt as usize)
        .unwrap_or(Duration::from_secs(30))
}

/// An output waiting to be sent again.
pub struct Retry {
    /// When it is due.
    pub due: Instant,
    /// Its topic.
    pub topic: String,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its payload.
    pub payload: Option<Vec<u8>>,
    /// Its headers.
    pub headers: Option<OwnedHeaders>,
    /// What it stands for, with the attempt it will be.
    pub tag: Tag,
}

impl Retry {
    fn bytes(&self) -> usize {
        self.topic.len()
            + self.key.as_ref().map_or(0, Vec::len)
            + self.payload.as_ref().map_or(0, Vec::len)
    }
}

/// Outputs waiting to be sent again, and the bytes they hold.
#[derive(Default)]
pub struct RetryQueue {
    entries: Vec<Retry>,
    bytes: usize,
}

impl RetryQueue {
    /// Queues `retry`.
    pub fn push(&mut self, retry: Retry) {
        self.bytes += retry.bytes();
        self.entries.push(retry);
    }

    /// Takes every entry due by `now`.
    pub fn take_due(&mut self, now: Instant) -> Vec<Retry> {
        if self.entries.is_empty() {
            return Vec::new();
        }
        let (due, later): (Vec<Retry>, Vec<Retry>) =
            self.entries.drain(..).partition(|r| r.due <= now);
        self.entries = later;
        self.bytes -= due.iter().map(Retry::bytes).sum::<usize>();
        due
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

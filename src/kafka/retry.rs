//! Outputs whose delivery failed: which failures another try can cure, the backoff before
//! it, and the queue that holds them meanwhile, counted in bytes so that back-pressure can
//! bound it.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::OwnedHeaders;

use super::delivery::Tag;

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
pub struct Retry<O> {
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
    pub tag: Tag<O>,
}

impl<O> Retry<O> {
    fn bytes(&self) -> usize {
        self.topic.len()
            + self.key.as_ref().map_or(0, Vec::len)
            + self.payload.as_ref().map_or(0, Vec::len)
    }
}

/// Outputs waiting to be sent again, and the bytes they hold.
pub struct RetryQueue<O> {
    entries: Vec<Retry<O>>,
    bytes: usize,
}

impl<O> Default for RetryQueue<O> {
    fn default() -> Self {
        RetryQueue {
            entries: Vec::new(),
            bytes: 0,
        }
    }
}

impl<O> RetryQueue<O> {
    /// Queues `retry`.
    pub fn push(&mut self, retry: Retry<O>) {
        self.bytes += retry.bytes();
        self.entries.push(retry);
    }

    /// Takes every entry due by `now`.
    pub fn take_due(&mut self, now: Instant) -> Vec<Retry<O>> {
        if self.entries.is_empty() {
            return Vec::new();
        }
        let (due, later): (Vec<Retry<O>>, Vec<Retry<O>>) =
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::events::Output;
    use RDKafkaErrorCode as C;

    #[test]
    fn failures_no_retry_can_cure_are_told_from_the_others() {
        for code in [
            C::TopicAuthorizationFailed,
            C::ClusterAuthorizationFailed,
            C::MessageSizeTooLarge,
            C::Fatal,
            C::ProducerFenced,
        ] {
            assert!(is_permanent(code), "{code:?}");
        }
        for code in [
            C::MessageTimedOut,
            C::NotEnoughReplicas,
            C::LeaderNotAvailable,
            C::NotLeaderForPartition,
            C::UnknownTopicOrPartition,
            C::UnknownTopic,
            C::AllBrokersDown,
            C::RequestTimedOut,
        ] {
            assert!(!is_permanent(code), "{code:?}");
        }
    }

    #[test]
    fn backoff_grows_from_a_tenth_of_a_second_and_levels_off() {
        assert!(delay(0) >= Duration::from_millis(100) && delay(0) < Duration::from_millis(250));
        assert!(delay(4) >= Duration::from_millis(1600), "{:?}", delay(4));
        for attempt in [12, 40, 1000] {
            let d = delay(attempt);
            assert!(
                d >= Duration::from_secs(30) && d <= Duration::from_secs(60),
                "{d:?}"
            );
        }
    }

    #[test]
    fn the_queue_counts_its_bytes_and_hands_out_what_is_due() {
        let now = Instant::now();
        let retry = |due, payload: usize| Retry {
            due,
            topic: "out".into(),
            key: Some(b"key".to_vec()),
            payload: Some(vec![0; payload]),
            headers: None,
            tag: Tag {
                output: Output::Detached(()),
                attempt: 1,
                lease: None,
                partition: None,
                timestamp: None,
            },
        };
        let mut queue = RetryQueue::default();
        queue.push(retry(now, 100));
        queue.push(retry(now + Duration::from_secs(60), 1000));
        assert_eq!(queue.bytes(), (3 + 3 + 100) + (3 + 3 + 1000));
        let due = queue.take_due(now);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].payload.as_ref().map(Vec::len), Some(100));
        assert_eq!(queue.bytes(), 3 + 3 + 1000);
        assert!(queue.take_due(now).is_empty());
    }
}

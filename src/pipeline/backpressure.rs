//! What the loop does when too many outputs wait for acknowledgement (or the retry queue
//! holds too many bytes): for a moment it waits on the acknowledgements, as a burst usually
//! clears within milliseconds; if the stall lasts, it pauses the assigned partitions and goes
//! on polling the consumer, so that the member stays in its group however long the output
//! is unwritable. Pausing is kept for long stalls because it is not free: it drops what
//! librdkafka had prefetched (up to `queued.max.messages.kbytes`), to be fetched again on
//! resume.

use super::accounting::Input;
use std::time::{Duration, Instant};

use rdkafka::TopicPartitionList;
use rdkafka::consumer::Consumer;
use tracing::{debug, warn};

use crate::kafka::retry::RETRY_QUEUE_BYTES;
use crate::obs::metrics::Metrics;

/// How long a stall may last before the partitions are paused; far below any
/// `max.poll.interval.ms`, beyond which a member that does not poll is evicted.
const PAUSE_AFTER: Duration = Duration::from_secs(1);

/// What the loop should do this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Fetch and score as usual.
    Fetch,
    /// Over the bound for a moment: wait on acknowledgements without fetching.
    Wait,
    /// Over the bound for a while: partitions paused; wait on acknowledgements and poll the
    /// consumer (for rebalances and membership) without expecting messages.
    Paused,
}

/// The back-pressure state of one consumer loop.
pub(super) struct Backpressure {
    bound: usize,
    over_since: Option<Instant>,
    paused: bool,
    metrics: Metrics,
}

impl Backpressure {
    /// Back-pressure at `bound` unacknowledged outputs.
    pub(super) fn new(bound: usize, metrics: Metrics) -> Self {
        Backpressure {
            bound,
            over_since: None,
            paused: false,
            metrics,
        }
    }

    /// The mode for `in_flight` unacknowledged outputs and `retry_bytes` queued for another
    /// try, pausing or resuming the assigned partitions as it changes. Once paused, fetching
    /// resumes only when half of the bound is through, so that it does not flap. The `held`
    /// partitions (waiting for the schema registry) stay paused when the rest resume.
    pub(super) fn apply(
        &mut self,
        consumer: &Input,
        in_flight: usize,
        retry_bytes: usize,
        held: &[i32],
    ) -> Mode {
        let over =
            |records: usize, bytes: usize| records >= self.bound || bytes >= RETRY_QUEUE_BYTES;
        if self.paused {
            let still = over(in_flight * 2, retry_bytes * 2);
            // Paused again on every pass: a partition assigned meanwhile must not fetch either.
            self.set_paused(consumer, still, in_flight, held);
            return if still { Mode::Paused } else { Mode::Fetch };
        }
        if !over(in_flight, retry_bytes) {
            self.over_since = None;
            return Mode::Fetch;
        }
        if self.over_since.get_or_insert_with(Instant::now).elapsed() < PAUSE_AFTER {
            return Mode::Wait;
        }
        self.set_paused(consumer, true, in_flight, held);
        Mode::Paused
    }

    fn set_paused(&mut self, consumer: &Input, pause: bool, in_flight: usize, held: &[i32]) {
        let mut assignment = consumer
            .assignment()
            .unwrap_or_else(|_| TopicPartitionList::new());
        if !pause && !held.is_empty() {
            let free = (assignment.elements().iter())
                .filter(|e| !held.contains(&e.partition()))
                .map(|e| {
                    (
                        (e.topic().to_string(), e.partition()),
                        rdkafka::Offset::Invalid,
                    )
                })
                .collect();
            assignment = TopicPartitionList::from_topic_map(&free).unwrap_or_default();
        }
        let result = if pause {
            consumer.pause(&assignment)
        } else {
            consumer.resume(&assignment)
        };
        if let Err(e) = result {
            warn!(error = %e, "could not pause or resume fetching");
        }
        if pause != self.paused {
            self.paused = pause;
            self.over_since = None;
            self.metrics.transport.fetch_paused.set(i64::from(pause));
            if pause {
                self.metrics.transport.fetch_pauses.inc();
            }
            debug!(
                in_flight,
                bound = self.bound,
                paused = pause,
                "back-pressure"
            );
        }
    }
}

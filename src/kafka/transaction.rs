//! Exactly-once: outputs and the input offsets they stand for are committed together in one
//! Kafka transaction, so a `read_committed` reader sees each input's output once whatever
//! fails. The transaction is opened before the first output after a commit and committed
//! when `--transaction-interval` has passed, at a revoke and at shutdown.
//!
//! Offsets go in with the consumer's group metadata (KIP-447): a member that lost its
//! partitions in a rebalance cannot commit them, and a restarted instance (same
//! `transactional.id`) fences its previous life and aborts what it left open.

use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::producer::{Producer, PurgeConfig};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use super::events::Observer;
use super::offsets::{Progress, Stream, Topics};
use super::retry;
use super::sink::Sink;
use crate::error::{Error, Result};

/// How long one transaction call may block.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a commit that failed with a retriable error is tried again before the
/// transaction is aborted instead.
const COMMIT_TRIES: usize = 3;

/// How long a commit may take in all before driftwood stops. librdkafka's
/// `send_offsets_to_transaction` can wait forever for a group coordinator that went away
/// (confluentinc/librdkafka#5456, #5511) whatever its timeout; stopping lets a restart resume
/// from the last committed transaction instead of hanging.
const COMMIT_DEADLINE: Duration = Duration::from_secs(60);

/// What a failed transaction call calls for.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Try the same call again.
    Retriable,
    /// Abort the transaction and read its records again.
    Abortable,
    /// The producer can do nothing more (fenced by a newer instance, or broken).
    Fatal,
}

fn classify(error: &KafkaError) -> Failure {
    match error {
        KafkaError::Transaction(e) if e.is_fatal() => Failure::Fatal,
        KafkaError::Transaction(e) if e.txn_requires_abort() => Failure::Abortable,
        KafkaError::Transaction(e) if e.is_retriable() => Failure::Retriable,
        // A flush that timed out, or anything else: the transaction cannot be trusted.
        _ => Failure::Abortable,
    }
}

fn fatal(what: &str, error: &KafkaError) -> Error {
    Error::Fatal {
        client: "producer",
        reason: format!("{what}: {error}"),
    }
}

/// How a commit ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Nothing was open.
    Idle,
    /// Outputs and offsets are committed.
    Committed,
    /// Aborted: read these `(stream, partition, position)` again.
    Aborted(Vec<(Stream, i32, i64)>),
}

/// The open transaction of one instance.
pub struct Transaction {
    interval: Duration,
    opened: Option<Instant>,
}

impl Transaction {
    /// Registers the `transactional.id` with the broker (fencing an earlier producer with the
    /// same id and aborting what it left open). Fails, saying so, when the cluster cannot
    /// run transactions.
    pub fn start<W: Observer>(sink: &Sink<W>, interval: Duration) -> Result<Self> {
        sink.producer()
            .init_transactions(CALL_TIMEOUT)
            .map_err(|source| Error::NoTransactions { source })?;
        info!(?interval, "transactions ready");
        Ok(Transaction {
            interval,
            opened: None,
        })
    }

    /// Opens a transaction unless one is open.
    pub fn ensure_open<W: Observer>(&mut self, sink: &Sink<W>) -> Result<()> {
        if self.opened.is_none() {
            sink.producer()
                .begin_transaction()
                .map_err(|e| fatal("beginning a transaction", &e))?;
            self.opened = Some(Instant::now());
        }
        Ok(())
    }

    /// Whether the open transaction has collected outputs for its interval.
    pub fn due(&self) -> bool {
        self.opened.is_some_and(|t| t.elapsed() >= self.interval)
    }

    /// Commits the open transaction with the positions `progress` has sent for `topics`;
    /// aborts it when it cannot commit, and rewinds `progress`.
    pub fn commit<W: Observer>(
        &mut self,
        sink: &Arc<Sink<W>>,
        progress: &Progress,
        topics: &Topics,
        group: Option<ConsumerGroupMetadata>,
    ) -> Result<Ended> {
        if self.opened.take().is_none() {
            return Ok(Ended::Idle);
        }
        let mut offsets = TopicPartitionList::new();
        let mut positions = Vec::new();
        for (stream, topic) in topics.streams() {
            let sent = progress.of(stream).transaction_positions();
            for &(p, position) in &sent {
                offsets
                    .add_partition_offset(topic, p, Offset::Offset(position))
                    .expect("valid offset");
            }
            positions.push((stream, sent));
        }
        let committed = match group {
            _ if sink.take_abort_needed() => Err(Failure::Abortable),
            Some(group) => commit_within_deadline(sink, offsets, group)?,
            None => Err(Failure::Abortable),
        };
        match committed {
            Ok(()) => {
                for (stream, sent) in &positions {
                    progress.of(*stream).transaction_committed(sent);
                }
                Ok(Ended::Committed)
            }
            Err(Failure::Fatal) => Err(Error::Fatal {
                client: "producer",
                reason: "a transaction failed for good (fenced by a newer instance with the same \
                         transactional.id, or the producer broke); see the log above"
                    .into(),
            }),
            Err(_) => self.abort(sink, progress),
        }
    }

    fn abort<W: Observer>(&mut self, sink: &Sink<W>, progress: &Progress) -> Result<Ended> {
        // The aborted outputs are dropped, not delivered: purge them, and serve their
        // delivery reports here, as abort_transaction waits for them without serving them.
        let producer = sink.producer();
        producer.purge(PurgeConfig::default().queue().inflight());
        let deadline = Instant::now() + CALL_TIMEOUT;
        while producer.in_flight_count() > 0 && Instant::now() < deadline {
            producer.poll(Duration::from_millis(10));
        }
        abort_within_deadline(sink)?;
        let rewound: Vec<(Stream, i32, i64)> = [Stream::Input, Stream::Labels]
            .into_iter()
            .flat_map(|stream| {
                let positions = progress.of(stream).rewind();
                positions.into_iter().map(move |(p, at)| (stream, p, at))
            })
            .collect();
        warn!(?rewound, "transaction aborted; its records are read again");
        Ok(Ended::Aborted(rewound))
    }
}

/// Aborts the open transaction, calling again while the call fails retriably (it times out
/// while the transaction coordinator is away, as in a broker restart: librdkafka says to
/// call again) until [`COMMIT_DEADLINE`] has passed; then, or on any other failure, the
/// producer is done for.
fn abort_within_deadline<W: Observer>(sink: &Sink<W>) -> Result<()> {
    let deadline = Instant::now() + COMMIT_DEADLINE;
    let mut attempt = 0;
    loop {
        let Err(e) = sink.producer().abort_transaction(CALL_TIMEOUT) else {
            return Ok(());
        };
        let delay = retry::delay(attempt);
        if classify(&e) != Failure::Retriable || Instant::now() + delay >= deadline {
            return Err(fatal("aborting a transaction", &e));
        }
        warn!(error = %e, ?delay, "aborting the transaction failed; calling again");
        std::thread::sleep(delay);
        attempt += 1;
    }
}

/// Runs [`try_commit`] on a thread of its own and waits at most [`COMMIT_DEADLINE`] for it.
fn commit_within_deadline<W: Observer>(
    sink: &Arc<Sink<W>>,
    offsets: TopicPartitionList,
    group: ConsumerGroupMetadata,
) -> Result<std::result::Result<(), Failure>> {
    let (done, outcome) = mpsc::channel();
    let sink = sink.clone();
    std::thread::Builder::new()
        .name("driftwood-txn".into())
        .spawn(move || {
            let _ = done.send(try_commit(&sink, &offsets, &group));
        })
        .map_err(Error::start("the transaction commit thread"))?;
    outcome
        .recv_timeout(COMMIT_DEADLINE)
        .map_err(|_| Error::Fatal {
            client: "producer",
            reason: format!(
                "a transaction commit did not finish within {COMMIT_DEADLINE:?} (librdkafka can \
             wait forever for a group coordinator that went away); stopping so that a restart \
             resumes from the last committed transaction"
            ),
        })
}

/// Sends the offsets and commits, trying a retriable failure again a few times.
fn try_commit<W: Observer>(
    sink: &Sink<W>,
    offsets: &TopicPartitionList,
    group: &ConsumerGroupMetadata,
) -> std::result::Result<(), Failure> {
    let producer = sink.producer();
    let mut backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_times(COMMIT_TRIES)
        .build();
    let mut call = |what: &str, result: std::result::Result<(), KafkaError>| match result {
        Ok(()) => Ok(true),
        Err(e) => {
            let failure = classify(&e);
            warn!(error = %e, ?failure, "{what} failed");
            match (failure, backoff.next()) {
                (Failure::Retriable, Some(delay)) => {
                    std::thread::sleep(delay);
                    Ok(false)
                }
                (Failure::Retriable, None) => Err(Failure::Abortable),
                (failure, _) => Err(failure),
            }
        }
    };
    if offsets.count() > 0 {
        while !call(
            "sending offsets to the transaction",
            producer.send_offsets_to_transaction(offsets, group, CALL_TIMEOUT),
        )? {}
    }
    // commit_transaction flushes first, but through rust-rdkafka's flush, which serves the
    // delivery reports in polls of 100 ms that always run their full length: 100 ms added to
    // every commit (measured). Flushing here first leaves it nothing to wait for.
    if !sink.flush(CALL_TIMEOUT) {
        warn!(timeout = ?CALL_TIMEOUT, "outputs of the transaction not delivered in time");
        return Err(Failure::Abortable);
    }
    while !call(
        "committing the transaction",
        producer.commit_transaction(CALL_TIMEOUT),
    )? {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_that_timed_out_aborts() {
        let e = KafkaError::Flush(rdkafka::error::RDKafkaErrorCode::MessageTimedOut);
        assert_eq!(classify(&e), Failure::Abortable);
    }
}

//! Kafka in: the consumer's context. Rebalances drain and commit revoked partitions before
//! they move; what the consumer sees (assignments, lag, whether a broker is up) goes to the
//! sink's observer as events.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use super::events::{Event, Observer};
use super::offsets::{Progress, Stream, Topics};
use super::sink::Sink;
use super::transaction::{Ended, Transaction};
use crate::error::{Error, Result};

/// How input offsets are committed.
pub enum Guarantee {
    /// Stored as their outputs are acknowledged; librdkafka commits them in the background.
    AtLeastOnce,
    /// In each transaction, with their outputs.
    ExactlyOnce(Box<Mutex<Transaction>>),
}

/// The consumer's callbacks.
pub struct SourceContext<W: Observer> {
    /// How input offsets are committed.
    pub guarantee: Guarantee,
    /// A failure inside a rebalance callback, for the loop to stop on.
    failure: Mutex<Option<Error>>,
    /// Set when an aborted transaction rewound partitions: records already polled past the
    /// rewind point must not be handled, as they are read again.
    rewound: AtomicBool,
    /// The sink, drained of a revoked partition's outputs before it moves; its observer
    /// hears what the consumer sees.
    pub sink: Arc<Sink<W>>,
    /// Whether a broker was up at last sight.
    brokers_up: AtomicBool,
    /// The input topic, and the labels topic if any.
    pub topics: Topics,
    /// How long a revocation waits for in-flight outputs.
    pub revoke_drain: Duration,
}

impl<W: Observer> SourceContext<W> {
    /// The callbacks of a consumer of `topics`.
    pub fn new(
        sink: Arc<Sink<W>>,
        topics: Topics,
        revoke_drain: Duration,
        guarantee: Guarantee,
    ) -> Self {
        SourceContext {
            guarantee,
            failure: Mutex::default(),
            rewound: AtomicBool::new(false),
            sink,
            brokers_up: AtomicBool::new(false),
            topics,
            revoke_drain,
        }
    }

    /// `tpl`'s partitions of `stream`'s topic.
    fn partitions(&self, tpl: &TopicPartitionList, stream: Stream) -> Vec<i32> {
        let Some(topic) = self.topics.name(stream) else {
            return Vec::new();
        };
        tpl.elements_for_topic(topic)
            .iter()
            .map(|e| e.partition())
            .collect()
    }

    /// Called on every pass of the loop: at-least-once hands acknowledged positions to
    /// librdkafka, which commits them in the background; exactly-once commits the
    /// transaction once its interval has passed.
    pub fn checkpoint(&self, consumer: &BaseConsumer<SourceContext<W>>) -> Result<()> {
        match &self.guarantee {
            Guarantee::AtLeastOnce => {
                self.store_offsets(consumer);
                Ok(())
            }
            Guarantee::ExactlyOnce(transaction) => {
                // Not while the brokers are away: a commit started then can hang in
                // librdkafka; the transaction waits (its outputs are held by back-pressure).
                let due = transaction.lock().expect("transaction").due()
                    && self.brokers_up.load(Ordering::Relaxed);
                if due {
                    self.end_transaction(consumer, transaction)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Before outputs are sent: exactly-once opens a transaction for them.
    pub fn before_send(&self) -> Result<()> {
        match &self.guarantee {
            Guarantee::AtLeastOnce => Ok(()),
            Guarantee::ExactlyOnce(transaction) => transaction
                .lock()
                .expect("transaction")
                .ensure_open(&self.sink),
        }
    }

    /// Whether an aborted transaction rewound partitions since the last call.
    pub fn take_rewound(&self) -> bool {
        self.rewound.swap(false, Ordering::Relaxed)
    }

    /// The failure a rebalance callback met, if any.
    pub fn take_failure(&self) -> Option<Error> {
        self.failure.lock().expect("failure").take()
    }

    /// Commits the open transaction; when it aborts, seeks its partitions back so their
    /// records are read and scored again.
    fn end_transaction(
        &self,
        consumer: &BaseConsumer<SourceContext<W>>,
        transaction: &Mutex<Transaction>,
    ) -> Result<()> {
        let ended = transaction.lock().expect("transaction").commit(
            &self.sink,
            self.progress(),
            &self.topics,
            consumer.group_metadata(),
        )?;
        match &ended {
            Ended::Committed => self.observer().on(Event::Committed),
            Ended::Aborted(_) => self.observer().on(Event::Aborted),
            Ended::Idle => {}
        }
        if let Ended::Aborted(positions) = ended {
            self.rewound.store(true, Ordering::Relaxed);
            for (stream, p, position) in positions {
                let topic = self
                    .topics
                    .name(stream)
                    .expect("a rewound stream is consumed");
                consumer
                    .seek(topic, p, Offset::Offset(position), Duration::from_secs(10))
                    .map_err(|e| Error::Fatal {
                        client: "consumer",
                        reason: format!(
                            "cannot read {topic} partition {p} again from {position} after an \
                             aborted transaction: {e}"
                        ),
                    })?;
            }
        }
        Ok(())
    }

    fn store_offsets(&self, consumer: &BaseConsumer<SourceContext<W>>) {
        let mut tpl = TopicPartitionList::new();
        for (stream, topic) in self.topics.streams() {
            let positions = self.progress().of(stream).take_committable();
            add_positions(&mut tpl, topic, &positions);
        }
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = consumer.store_offsets(&tpl) {
            // Happens for a partition revoked a moment ago; its new owner re-reads.
            warn!(error = %e, "could not store offsets");
        }
    }

    /// Commits now, before `partitions` (of the input, and of the labels topic) move or the
    /// consumer stops: at-least-once commits their acknowledged positions synchronously,
    /// exactly-once the open transaction (a failure is kept for the loop).
    pub fn commit(
        &self,
        consumer: &BaseConsumer<SourceContext<W>>,
        partitions: &[i32],
        labels: &[i32],
    ) {
        if let Guarantee::ExactlyOnce(transaction) = &self.guarantee {
            if let Err(e) = self.end_transaction(consumer, transaction) {
                *self.failure.lock().expect("failure") = Some(e);
            }
            return;
        }
        // Stored first: librdkafka commits the stored offsets again as the consumer closes,
        // and an older stored offset would then move the commit back.
        self.store_offsets(consumer);
        let mut tpl = TopicPartitionList::new();
        let mut positions = Vec::new();
        for ((stream, topic), partitions) in self.topics.streams().zip([partitions, labels]) {
            let committable = self.progress().of(stream).committable(partitions);
            add_positions(&mut tpl, topic, &committable);
            positions.extend(
                committable
                    .into_iter()
                    .map(|(p, at)| (topic.to_owned(), p, at)),
            );
        }
        if positions.is_empty() {
            return;
        }
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => info!(?positions, "committed"),
            Err(e) => {
                warn!(error = %e, ?positions, "commit failed; records after the last commit will be re-read")
            }
        }
    }

    /// Changes the assigned partitions and says how many are held.
    fn track(&self, change: impl FnOnce(&mut super::offsets::OffsetTracker)) {
        let mut progress = self.progress().lock();
        change(&mut progress);
        let holding = progress.assigned().count();
        drop(progress);
        self.observer().on(Event::Holding(holding));
    }

    /// Partition progress (the sink's).
    pub fn progress(&self) -> &Progress {
        self.sink.progress()
    }

    fn observer(&self) -> &W {
        self.sink.observer()
    }

    fn brokers_up(&self, up: bool) {
        self.brokers_up.store(up, Ordering::Relaxed);
        self.observer().on(Event::BrokersUp(up));
    }
}

/// Adds `topic`'s `(partition, position)`s to `tpl`.
fn add_positions(tpl: &mut TopicPartitionList, topic: &str, positions: &[(i32, i64)]) {
    for &(p, offset) in positions {
        tpl.add_partition_offset(topic, p, Offset::Offset(offset))
            .expect("valid offset");
    }
}

impl<W: Observer> ClientContext for SourceContext<W> {
    fn stats(&self, stats: Statistics) {
        self.brokers_up(stats.brokers.values().any(|b| b.state == "UP"));
        if let Some(topic) = stats.topics.get(&self.topics.input) {
            let tracker = self.progress().lock();
            for (&partition, p) in &topic.partitions {
                if partition >= 0 && tracker.is_assigned(partition) && p.consumer_lag >= 0 {
                    self.observer().on(Event::Lag {
                        topic: &self.topics.input,
                        partition,
                        lag: p.consumer_lag,
                    });
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.brokers_up(false);
        }
        warn!(%error, reason, "consumer error");
    }
}

impl<W: Observer> ConsumerContext for SourceContext<W> {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let partitions = self.partitions(tpl, Stream::Input);
            let labels = self.partitions(tpl, Stream::Labels);
            info!(?partitions, "partitions revoked; draining and committing");
            // A transaction's commit waits for its outputs itself.
            let at_least_once = matches!(self.guarantee, Guarantee::AtLeastOnce);
            if at_least_once && !self.sink.drain(&partitions, self.revoke_drain) {
                warn!(
                    ?partitions,
                    "some outputs were not acknowledged in time; their records will be re-read by the next owner"
                );
            }
            self.commit(consumer, &partitions, &labels);
            self.progress().labels().revoke(labels);
            self.track(|progress| progress.revoke(partitions.iter().copied()));
            self.observer().on(Event::Revoked {
                topic: &self.topics.input,
                partitions: &partitions,
            });
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let partitions = self.partitions(tpl, Stream::Input);
                let labels = self.partitions(tpl, Stream::Labels);
                info!(?partitions, ?labels, "partitions assigned");
                // librdkafka keeps a partition's paused flag through a revoke and a new
                // assignment: a partition paused for back-pressure before a rebalance would
                // never fetch again. Back-pressure pauses it again on its next pass if it must.
                if let Err(e) = consumer.resume(tpl) {
                    warn!(error = %e, ?partitions, "could not resume newly assigned partitions");
                }
                self.observer().on(Event::Assigned(&partitions));
                self.progress().labels().assign(labels);
                self.track(|progress| progress.assign(partitions));
                // Joining the group took a coordinator round trip: the broker is reachable.
                self.brokers_up(true);
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => warn!(error = %e, "rebalance failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::ClientConfig;

    use super::*;
    use crate::kafka::events::Output;
    use crate::kafka::testing::{Kind, Recorder, cluster, eventually, producer_config};

    #[test]
    fn a_revoke_waits_for_the_revoked_outputs_then_commits_past_them() {
        let cluster = cluster(&["in", "out"], 1);
        let bootstrap = cluster.bootstrap_servers();
        let recorder = Arc::new(Recorder::default());
        let sink = Arc::new(Sink::new(&producer_config(&bootstrap), recorder.clone()).unwrap());
        let progress = sink.progress().clone();
        let topics = Topics {
            input: "in".into(),
            labels: None,
        };
        let context = SourceContext::new(
            sink.clone(),
            topics,
            Duration::from_secs(10),
            Guarantee::AtLeastOnce,
        );
        let consumer: BaseConsumer<SourceContext<Recorder>> = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "g")
            .set("enable.auto.offset.store", "false")
            .create_with_context(context)
            .unwrap();
        consumer.subscribe(&["in"]).unwrap();
        let assigned = eventually(Duration::from_secs(30), || {
            consumer.poll(Duration::from_millis(100));
            progress.lock().is_assigned(0)
        });
        assert!(assigned, "partition 0 assigned");

        // Three outputs of partition 0 sent, not yet acknowledged (nothing polled the producer).
        for offset in 0..3 {
            let output = Output::Record {
                partition: 0,
                offset,
                outcome: Kind::Other,
            };
            sink.send("out", None, Some(b"x"), None, output);
        }
        assert_eq!(progress.lock().in_flight(), 3);

        consumer.unsubscribe();
        let revoked = eventually(Duration::from_secs(30), || {
            consumer.poll(Duration::from_millis(100));
            !progress.lock().is_assigned(0)
        });
        assert!(revoked, "partition 0 revoked");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition("in", 0);
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap();
        assert_eq!(
            committed.find_partition("in", 0).unwrap().offset(),
            Offset::Offset(3),
            "the revoke waited for the three outputs and committed past them"
        );
        assert_eq!(
            progress.lock().in_flight(),
            0,
            "nothing tracked after the revoke"
        );
    }
}

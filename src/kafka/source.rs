//! Kafka in: the consumer's context. Rebalances drain and commit revoked partitions before
//! they move; librdkafka statistics feed the lag gauge and broker reachability.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use super::offsets::Progress;
use super::sink::Sink;
use crate::ops::health::Health;
use crate::ops::metrics::Metrics;

/// The consumer's callbacks.
pub struct SourceContext {
    /// Partition progress: what is assigned, and what may be committed.
    pub progress: Progress,
    /// The sink, drained of a revoked partition's outputs before it moves.
    pub sink: Arc<Sink>,
    /// Health flags to update.
    pub health: Arc<Health>,
    /// Metrics to update.
    pub metrics: Metrics,
    /// The input topic.
    pub topic: String,
    /// How long a revocation waits for in-flight outputs.
    pub revoke_drain: Duration,
}

impl SourceContext {
    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect()
    }

    /// Hands acknowledged positions to librdkafka, which commits them in the background.
    pub fn store_offsets(&self, consumer: &BaseConsumer<SourceContext>) {
        let positions = self.progress.lock().take_committable();
        if positions.is_empty() {
            return;
        }
        let tpl = self.position_list(&positions);
        if let Err(e) = consumer.store_offsets(&tpl) {
            // Happens for a partition revoked a moment ago; its new owner re-reads.
            warn!(error = %e, "could not store offsets");
        }
    }

    /// Commits the acknowledged positions of `partitions` synchronously.
    pub fn commit(&self, consumer: &BaseConsumer<SourceContext>, partitions: &[i32]) {
        let positions = self.progress.lock().committable(partitions);
        if positions.is_empty() {
            return;
        }
        let tpl = self.position_list(&positions);
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => info!(?positions, "committed"),
            Err(e) => {
                warn!(error = %e, ?positions, "commit failed; records after the last commit will be re-read")
            }
        }
    }

    /// Changes the assigned partitions and shows their count in `/metrics`.
    fn track(&self, change: impl FnOnce(&mut super::offsets::OffsetTracker)) {
        let mut progress = self.progress.lock();
        change(&mut progress);
        self.metrics
            .assigned_partitions
            .set(progress.assigned().count() as i64);
    }

    fn position_list(&self, positions: &[(i32, i64)]) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for &(p, offset) in positions {
            tpl.add_partition_offset(&self.topic, p, Offset::Offset(offset))
                .expect("valid offset");
        }
        tpl
    }
}

impl ClientContext for SourceContext {
    fn stats(&self, stats: Statistics) {
        let reachable = stats.brokers.values().any(|b| b.state == "UP");
        self.health.set_broker_reachable(reachable);
        if let Some(topic) = stats.topics.get(&self.topic) {
            let tracker = self.progress.lock();
            for (partition, p) in &topic.partitions {
                if *partition >= 0 && tracker.is_assigned(*partition) && p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[&self.topic, &partition.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.health.set_broker_reachable(false);
        }
        warn!(%error, reason, "consumer error");
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let partitions = self.partitions(tpl);
            info!(?partitions, "partitions revoked; draining and committing");
            self.metrics.rebalances.with_label_values(&["revoke"]).inc();
            if !self.sink.drain(&partitions, self.revoke_drain) {
                warn!(
                    ?partitions,
                    "some outputs were not acknowledged in time; their records will be re-read by the next owner"
                );
            }
            self.commit(consumer, &partitions);
            self.track(|progress| progress.revoke(partitions.iter().copied()));
            for p in &partitions {
                let _ = self
                    .metrics
                    .consumer_lag
                    .remove_label_values(&[&self.topic, &p.to_string()]);
            }
            self.health.set_joined(false);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let partitions = self.partitions(tpl);
                info!(?partitions, "partitions assigned");
                // librdkafka keeps a partition's paused flag through a revoke and a new
                // assignment: a partition paused for back-pressure before a rebalance would
                // never fetch again. Back-pressure pauses it again on its next pass if it must.
                if let Err(e) = consumer.resume(tpl) {
                    warn!(error = %e, ?partitions, "could not resume newly assigned partitions");
                }
                self.metrics.rebalances.with_label_values(&["assign"]).inc();
                if !partitions.is_empty() {
                    self.health.set_input_topic_missing(false);
                }
                self.track(|progress| progress.assign(partitions));
                // Joining the group took a coordinator round trip: the broker is reachable.
                self.health.set_broker_reachable(true);
                self.health.set_joined(true);
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
    use crate::kafka::sink::{Outcome, Output};
    use crate::kafka::testing::{cluster, eventually, producer_config};

    #[test]
    fn a_revoke_waits_for_the_revoked_outputs_then_commits_past_them() {
        let cluster = cluster(&["in", "out"], 1);
        let bootstrap = cluster.bootstrap_servers();
        let progress = Progress::default();
        let metrics = Metrics::new();
        let health = Arc::new(Health::default());
        let sink = Arc::new(
            Sink::new(
                &producer_config(&bootstrap),
                progress.clone(),
                metrics.clone(),
                health.clone(),
            )
            .unwrap(),
        );
        let context = SourceContext {
            progress: progress.clone(),
            sink: sink.clone(),
            health,
            metrics,
            topic: "in".into(),
            revoke_drain: Duration::from_secs(10),
        };
        let consumer: BaseConsumer<SourceContext> = ClientConfig::new()
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
                outcome: Outcome::PassedThrough,
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

//! The consumer loop: poll a record, decode, score, send the prediction or dead letter, and
//! store offsets as outputs are acknowledged. Runs on its own thread; rebalance and delivery
//! callbacks run inside its polls, so all bookkeeping is single-threaded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use tracing::{info, warn};

use crate::config::{KafkaClients, RunConfig};
use crate::decode::FeatureDecoder;
use crate::drift::{DriftMonitor, DriftSettings, DriftThresholds};
use crate::error::{Error, Result};
use crate::health::{Health, LoopGuard};
use crate::metrics::Metrics;
use crate::model::Model;
use crate::scorer::Scorer;
use crate::sink::Sink;
use crate::source::SourceContext;

/// How long one consumer poll may block; bounds the reaction time to shutdown.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Everything the loop needs, built before it starts.
pub struct Pipeline {
    /// Settings.
    pub config: RunConfig,
    /// The Kafka clients' configurations.
    pub clients: KafkaClients,
    /// The model.
    pub model: Arc<Model>,
    /// The input decoder, matched to the model.
    pub decoder: FeatureDecoder,
    /// Metrics to update.
    pub metrics: Metrics,
    /// Health flags to update.
    pub health: Arc<Health>,
}

impl Pipeline {
    /// Runs until `stop` is set, then stops fetching, waits up to `deadline` for in-flight
    /// outputs, commits and leaves the group.
    pub fn run(self, stop: &AtomicBool, grace: Duration) -> Result<()> {
        let health = self.health.clone();
        let _guard = LoopGuard(&health);
        let config = &self.config;
        let sink = Arc::new(Sink::new(&self.clients.producer, self.metrics.clone())?);
        let context = SourceContext {
            sink: sink.clone(),
            health: self.health.clone(),
            metrics: self.metrics.clone(),
            topic: config.input_topic.clone(),
            revoke_drain: grace,
        };
        let consumer: BaseConsumer<SourceContext> = self
            .clients
            .consumer
            .create_with_context(context)
            .map_err(|e| Error::kafka("creating the consumer", e))?;
        consumer
            .subscribe(&[&config.input_topic])
            .map_err(|e| Error::kafka(format!("subscribing to {}", config.input_topic), e))?;
        info!(topic = %config.input_topic, group = %config.group_id, "consumer started");

        let mut scorer = Scorer::new(
            self.model.clone(),
            self.decoder,
            self.metrics.clone(),
            config.output_topic.clone(),
            config.dlq_topic.clone(),
            config.pass_through,
            DriftMonitor::new(
                self.model.clone(),
                DriftSettings {
                    topic: config.drift_topic.clone(),
                    window_records: config.drift_window_records,
                    window_age: config.drift_window_seconds,
                    thresholds: DriftThresholds {
                        warn: config.drift_warn_psi,
                        alert: config.drift_alert_psi,
                    },
                    instance_id: config.instance(),
                },
                self.metrics.clone(),
            ),
        );
        let max_batch = config.profile.max_batch();
        let mut batch = Vec::with_capacity(max_batch);
        let mut last_poll_warning: Option<Instant> = None;
        while !stop.load(Ordering::Relaxed) {
            health.heartbeat();
            sink.poll(Duration::ZERO);
            consumer.context().store_offsets(&consumer);
            if sink.tracker().in_flight() >= config.max_in_flight {
                // Back-pressure: let the broker catch up before fetching more.
                sink.poll(POLL_TIMEOUT);
                continue;
            }
            // Wait for the first message, then take whatever else is already fetched.
            let mut timeout = POLL_TIMEOUT;
            while batch.len() < max_batch {
                match consumer.poll(timeout) {
                    None => break,
                    Some(Ok(message)) => batch.push(message),
                    Some(Err(e)) => {
                        if e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition)
                        {
                            health.set_input_topic_missing(true);
                        }
                        // Usually transient (broker restarting, topic not created yet);
                        // librdkafka keeps retrying, so say so at most every 10 s.
                        if last_poll_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                            warn!(error = %e, "consumer poll error; librdkafka keeps retrying");
                            last_poll_warning = Some(Instant::now());
                        }
                        break;
                    }
                }
                timeout = Duration::ZERO;
            }
            if batch.is_empty() {
                scorer.tick(&sink);
            } else {
                scorer.handle_batch(&batch, &sink);
                batch.clear();
            }
        }

        let started = Instant::now();
        info!("stopping: finishing in-flight records");
        scorer.flush_drift(&sink);
        let assigned: Vec<i32> = consumer
            .assignment()
            .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
            .unwrap_or_default();
        if !sink.drain(&assigned, grace.saturating_sub(started.elapsed())) {
            warn!("grace period over with outputs unacknowledged; they will be re-read on restart");
        }
        consumer.context().store_offsets(&consumer);
        consumer.context().commit(&consumer, &assigned);
        sink.flush(
            grace
                .saturating_sub(started.elapsed())
                .min(Duration::from_secs(1)),
        );
        // Dropping the consumer leaves the group (its revoke callback commits once more).
        drop(consumer);
        info!(elapsed = ?started.elapsed(), "consumer stopped");
        Ok(())
    }
}

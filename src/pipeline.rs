//! The consumer loop: poll a record, decode, score, send the prediction or dead letter, and
//! store offsets as outputs are acknowledged. Runs on its own thread; rebalance and delivery
//! callbacks run inside its polls, so all bookkeeping is single-threaded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{BorrowedMessage, Message};
use tracing::{info, warn};

use crate::config::{ClientRole, RunConfig};
use crate::decode::FeatureDecoder;
use crate::encode::PredictionFields;
use crate::error::{Error, Result};
use crate::health::{Health, LoopGuard};
use crate::metrics::Metrics;
use crate::model::Model;
use crate::sink::{Outcome, Pending, Sink, dead_letter_headers};
use crate::source::SourceContext;

/// How long one consumer poll may block; bounds the reaction time to shutdown.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Everything the loop needs, built before it starts.
pub struct Pipeline {
    /// Settings.
    pub config: RunConfig,
    /// The model.
    pub model: Arc<Model>,
    /// The input decoder, matched to the model.
    pub decoder: FeatureDecoder,
    /// Metrics to update.
    pub metrics: Metrics,
    /// Health flags to update.
    pub health: Arc<Health>,
}

/// Turns one input message into one output.
struct Scorer {
    model: Arc<Model>,
    decoder: FeatureDecoder,
    metrics: Metrics,
    output_topic: String,
    dlq_topic: String,
    row: Vec<f64>,
    votes: Vec<u32>,
    probabilities: Vec<f64>,
    encoded: Vec<u8>,
}

impl Scorer {
    fn handle(&mut self, message: &BorrowedMessage<'_>, sink: &Sink) {
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let started = Instant::now();
        self.row.clear();
        match self.decoder.decode(message.payload(), &mut self.row) {
            Ok(meta) => {
                let forest = &self.model.forest;
                forest.score_batch(&self.row, &mut self.votes);
                let votes = forest.votes(&self.votes);
                let now = now_millis();
                self.probabilities.clear();
                self.probabilities.extend(votes.probabilities());
                let fallback_id;
                let id = match meta.id {
                    Some(id) => id,
                    None => {
                        fallback_id = format!("{topic}-{partition}-{offset}");
                        &fallback_id
                    }
                };
                let prediction = PredictionFields {
                    id,
                    model_name: &self.model.metadata.name,
                    model_version: &self.model.metadata.version,
                    predicted_label: votes.label(),
                    confidence: votes.confidence(),
                    classes: forest.classes(),
                    probabilities: &self.probabilities,
                    actual_label: meta.label,
                    source_topic: topic,
                    source_partition: partition,
                    source_offset: offset,
                    event_time: meta
                        .event_time_ms
                        .or_else(|| message.timestamp().to_millis())
                        .unwrap_or(now),
                    scored_at: now,
                };
                self.encoded.clear();
                prediction.encode(&mut self.encoded);
                self.metrics
                    .scoring_seconds
                    .observe(started.elapsed().as_secs_f64());
                let outcome = Outcome::Scored {
                    label: votes.label(),
                    confidence: votes.confidence(),
                    correct: meta.label.map(|l| l == votes.label()),
                };
                sink.send(
                    &self.output_topic,
                    message.key(),
                    Some(&self.encoded),
                    None,
                    Pending {
                        partition,
                        offset,
                        outcome,
                        attempt: 0,
                    },
                );
            }
            Err(error) => {
                let original = message.headers().map(|h| h.detach());
                let headers = dead_letter_headers(original, &error, topic, partition, offset);
                sink.send(
                    &self.dlq_topic,
                    message.key(),
                    message.payload(),
                    Some(headers),
                    Pending {
                        partition,
                        offset,
                        outcome: Outcome::DeadLettered(error.kind),
                        attempt: 0,
                    },
                );
            }
        }
    }
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Pipeline {
    /// Runs until `stop` is set, then stops fetching, waits up to `deadline` for in-flight
    /// outputs, commits and leaves the group.
    pub fn run(self, stop: &AtomicBool, grace: Duration) -> Result<()> {
        let health = self.health.clone();
        let _guard = LoopGuard(&health);
        let config = &self.config;
        let sink = Arc::new(Sink::new(
            &config.client_config(ClientRole::Producer)?,
            self.metrics.clone(),
        )?);
        let context = SourceContext {
            sink: sink.clone(),
            health: self.health.clone(),
            metrics: self.metrics.clone(),
            topic: config.input_topic.clone(),
            revoke_drain: grace,
        };
        let consumer: BaseConsumer<SourceContext> = config
            .client_config(ClientRole::Consumer)?
            .create_with_context(context)
            .map_err(|e| Error::kafka("creating the consumer", e))?;
        consumer
            .subscribe(&[&config.input_topic])
            .map_err(|e| Error::kafka(format!("subscribing to {}", config.input_topic), e))?;
        info!(topic = %config.input_topic, group = %config.group_id, "consumer started");

        let mut scorer = Scorer {
            model: self.model.clone(),
            decoder: self.decoder,
            metrics: self.metrics.clone(),
            output_topic: config.output_topic.clone(),
            dlq_topic: config.dlq_topic.clone(),
            row: Vec::new(),
            votes: Vec::new(),
            probabilities: Vec::new(),
            encoded: Vec::new(),
        };
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
            match consumer.poll(POLL_TIMEOUT) {
                None => {}
                Some(Ok(message)) => scorer.handle(&message, &sink),
                Some(Err(e)) => {
                    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition) {
                        health.set_input_topic_missing(true);
                    }
                    // Usually transient (broker restarting, topic not created yet); librdkafka
                    // keeps retrying, so say so at most every 10 s.
                    if last_poll_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        warn!(error = %e, "consumer poll error; librdkafka keeps retrying");
                        last_poll_warning = Some(Instant::now());
                    }
                }
            }
        }

        let started = Instant::now();
        info!("stopping: finishing in-flight records");
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

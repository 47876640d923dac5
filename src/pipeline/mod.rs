//! The consumer loop: poll a batch, decode, score, send each prediction or dead letter, and
//! store offsets as outputs are acknowledged. Runs on its own thread; rebalance and delivery
//! callbacks run inside its polls, so all bookkeeping is single-threaded.
//!
//! The loop never stops polling the consumer: when too many outputs wait for acknowledgement
//! it pauses the assigned partitions instead, so the member stays in its group however long
//! the output is unwritable.

mod accounting;
mod agreement;
mod backpressure;
mod canary;
pub(crate) mod explain;
pub(crate) mod label_reader;
pub(crate) mod labels;
mod lane;
mod outputs;
mod resolve;
mod restore;
pub(crate) mod review;
pub(crate) mod rollback;
pub(crate) mod route;
mod sample;
pub(crate) mod scorer;
pub(crate) mod serving;
pub(crate) mod shadow;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use tracing::{info, warn};

use crate::codec::decode::FeatureDecoder;
use crate::codec::registry::{
    self, OptionalOutputs, OutputSchemaIds, RegistryClient, RegistrySettings, WriterSchemas,
};
use crate::drift::DriftSettings;
use crate::error::{Error, Result};
use crate::kafka::KafkaClients;
use crate::kafka::offsets::Topics;
use crate::kafka::source::{Guarantee, SourceContext};
use crate::kafka::transaction::Transaction;
use crate::model::Model;
use crate::obs::health::{Health, LoopGuard};
use crate::obs::metrics::{LoopPhase, Metrics};
use crate::obs::rate_limit::RateLimit;
use accounting::{Accounting, Input, Sink};
use backpressure::{Backpressure, Mode};
use explain::ExplainSettings;
use label_reader::LabelReader;
use labels::{LabelSettings, Labels};
use resolve::Resolver;
use restore::{RestoreTopics, Restorer};
use review::{Review, ReviewSettings};
use scorer::{OutputTopics, Scorer, ScorerSettings};
use serving::ServingSet;

/// How long one consumer poll may block; bounds the reaction time to shutdown.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// What the loop is told, in its own terms (`config` builds it from the command line).
#[derive(Debug, Clone)]
pub struct LoopSettings {
    /// The input topic.
    pub input_topic: String,
    /// The consumer group.
    pub group_id: String,
    /// Where predictions, dead letters and drift reports go.
    pub outputs: OutputTopics,
    /// Whether the output schemas are registered and outputs framed with their ids
    /// (`--output-format confluent`).
    pub register_outputs: bool,
    /// `None` for at-least-once; with exactly-once, how long a transaction stays open.
    pub exactly_once: Option<Duration>,
    /// How long a revoked partition's outputs may take to be acknowledged.
    pub revoke_drain: Duration,
    /// Forward the input without decoding or scoring (`--pass-through`).
    pub pass_through: bool,
    /// Drift windows.
    pub drift: DriftSettings,
    /// Which records are explained.
    pub explain: ExplainSettings,
    /// Records polled at most per batch.
    pub max_batch: usize,
    /// Outputs awaiting acknowledgement before fetching pauses.
    pub max_in_flight: usize,
    /// Labels arriving later on a topic of their own (`--labels-topic`).
    pub labels: Option<LabelSettings>,
    /// Records chosen for labelling (`--review-topic`).
    pub review: Option<ReviewSettings>,
}

/// Everything the loop needs, built before it starts.
pub struct Pipeline {
    /// Settings.
    pub settings: LoopSettings,
    /// The Kafka clients' configurations.
    pub clients: KafkaClients,
    /// Metrics to update.
    pub metrics: Metrics,
    /// Health flags to update.
    pub health: Arc<Health>,
    /// The schema registry, when configured, and the writer schemas the decoders read
    /// Confluent-framed input with (filled from it by the loop).
    pub schema_registry: Option<(RegistrySettings, Option<WriterSchemas>)>,
}

/// A model served, with the decoder of the input for its features.
pub type Served = (Arc<Model>, FeatureDecoder);

impl Pipeline {
    /// Serves `serving`'s models until `stop` is set, then stops fetching, waits up to
    /// `grace` for in-flight outputs, commits and leaves the group.
    pub fn run(self, mut serving: ServingSet, stop: &AtomicBool, grace: Duration) -> Result<()> {
        let health = self.health.clone();
        let _guard = LoopGuard(&health);
        let (mut resolver, schema_ids) = self.registry(serving.comparison_topic(), stop)?;
        let (consumer, sink) = self.connect()?;
        serving.frame_comparisons(schema_ids.comparisons);
        let mut scorer = self.scorer(serving, schema_ids)?;
        let looped = self.consume(&consumer, &sink, &mut scorer, resolver.as_mut(), stop);
        let finished = self.finish(consumer, &sink, &mut scorer, grace);
        looped.and(finished)
    }

    /// With a schema registry: the resolver of input schema ids (for Confluent-framed
    /// input), and the output schemas' ids (registered with `--output-format confluent`).
    fn registry(
        &self,
        comparisons: Option<&str>,
        stop: &AtomicBool,
    ) -> Result<(Option<Resolver>, OutputSchemaIds)> {
        let Some((settings, schemas)) = &self.schema_registry else {
            return Ok((None, OutputSchemaIds::default()));
        };
        // Built here, on the loop's thread: the blocking client must not live in the async
        // runtime.
        let client = RegistryClient::new(settings)?;
        let settings = &self.settings;
        let ids = match settings.register_outputs {
            true => {
                let outputs = &settings.outputs;
                let topics = (outputs.predictions.as_str(), outputs.drift_reports.as_str());
                let optional = OptionalOutputs {
                    comparisons,
                    performance: (settings.labels.as_ref()).map(|l| l.performance_topic.as_str()),
                    reviews: settings.review.as_ref().map(|r| r.topic.as_str()),
                    rollouts: outputs.rollouts.as_deref(),
                };
                registry::register_outputs(&client, topics, optional, stop)?
            }
            false => OutputSchemaIds::default(),
        };
        let resolver = schemas.clone().map(|schemas| {
            let (topic, health) = (settings.input_topic.clone(), self.health.clone());
            Resolver::new(client, schemas, topic, health, self.metrics.clone())
        });
        Ok((resolver, ids))
    }

    /// Creates the producer (which owns the partition progress) and the consumer, and
    /// subscribes.
    fn connect(&self) -> Result<(Input, Arc<Sink>)> {
        let accounting = Accounting::new(&self.metrics, self.health.clone());
        let sink = Arc::new(Sink::new(&self.clients.producer, Arc::new(accounting))?);
        let settings = &self.settings;
        let guarantee = match settings.exactly_once {
            None => Guarantee::AtLeastOnce,
            Some(interval) => {
                Guarantee::ExactlyOnce(Box::new(Mutex::new(Transaction::start(&sink, interval)?)))
            }
        };
        let topics = Topics {
            input: settings.input_topic.clone(),
            labels: settings.labels.as_ref().map(|l| l.topic.clone()),
        };
        let context = SourceContext::new(
            sink.clone(),
            topics.clone(),
            settings.revoke_drain,
            guarantee,
        );
        let consumer: Input = self
            .clients
            .consumer
            .create_with_context(context)
            .map_err(|e| Error::kafka("creating the consumer", e))?;
        let subscribed: Vec<&str> = topics.streams().map(|(_, t)| t).collect();
        consumer
            .subscribe(&subscribed)
            .map_err(|e| Error::kafka(format!("subscribing to {subscribed:?}"), e))?;
        info!(topics = ?subscribed, group = %settings.group_id, "consumer started");
        Ok((consumer, sink))
    }

    fn scorer(&self, serving: ServingSet, ids: OutputSchemaIds) -> Result<Scorer> {
        let loop_settings = &self.settings;
        let settings = ScorerSettings {
            topics: OutputTopics {
                schema_ids: ids,
                ..loop_settings.outputs.clone()
            },
            pass_through: loop_settings.pass_through,
            drift: loop_settings.drift.clone(),
            explain: loop_settings.explain.clone(),
        };
        let mut scorer = Scorer::new(serving, self.metrics.clone(), settings);
        if let Some(review) = &loop_settings.review {
            let metrics = self.metrics.labels.clone();
            let review = Review::new(review.clone(), ids.reviews, metrics);
            scorer = scorer.with_review(review);
        }
        Ok(match &loop_settings.labels {
            None => scorer,
            Some(labels) => {
                let instance = &loop_settings.drift.instance_id;
                let topics = RestoreTopics {
                    input: loop_settings.input_topic.clone(),
                    predictions: loop_settings.outputs.predictions.clone(),
                    labels: labels.topic.clone(),
                    framed: ids.predictions.is_some(),
                };
                let horizon = labels.horizon.as_millis() as i64;
                let registry = (self.schema_registry.as_ref())
                    .map(|(s, _)| s)
                    .filter(|_| labels.framed);
                let consumer = &self.clients.consumer;
                let restorer = Restorer::new(consumer, topics, horizon, registry.cloned());
                let metrics = self.metrics.labels.clone();
                let reader = LabelReader::new(registry)?;
                let labels = Labels::new(labels, (instance, reader), restorer, metrics)?
                    .framed(ids.performance);
                scorer.with_labels(labels)
            }
        })
    }

    /// The loop proper, until `stop` is set or the consumer fails for good.
    fn consume(
        &self,
        consumer: &Input,
        sink: &Sink,
        scorer: &mut Scorer,
        mut resolver: Option<&mut Resolver>,
        stop: &AtomicBool,
    ) -> Result<()> {
        let max_batch = self.settings.max_batch;
        let mut batch = Vec::with_capacity(max_batch);
        let mut labels = Vec::new();
        let labels_topic = self.settings.labels.as_ref().map(|l| l.topic.as_str());
        let mut backpressure = Backpressure::new(self.settings.max_in_flight, self.metrics.clone());
        let mut poll_errors = PollErrors::default();
        let mut clock = LoopClock::new(&self.metrics);
        while !stop.load(Ordering::Relaxed) {
            self.health.heartbeat();
            sink.poll(Duration::ZERO);
            if let Some(failure) = sink.failure().or_else(|| consumer.context().take_failure()) {
                return Err(failure);
            }
            consumer.context().checkpoint(consumer)?;
            let (in_flight, assigned) = {
                let progress = consumer.context().progress().lock();
                (
                    progress.in_flight(),
                    progress.assigned().collect::<Vec<_>>(),
                )
            };
            let held: Vec<i32> = resolver.as_ref().map_or(vec![], |r| r.held().collect());
            let mode = backpressure.apply(consumer, in_flight, sink.retry_bytes(), &held);
            if let Some(r) = resolver.as_deref_mut() {
                r.release_due(consumer, &assigned, mode == Mode::Fetch);
            }
            clock.mark(LoopPhase::Work);
            let timeout = match mode {
                Mode::Fetch => POLL_TIMEOUT,
                Mode::Wait => {
                    sink.poll(Duration::from_millis(10));
                    clock.mark(LoopPhase::Acknowledgements);
                    continue;
                }
                // Wait on acknowledgements, and poll the consumer too so that it stays in
                // its group.
                Mode::Paused => {
                    sink.poll(POLL_TIMEOUT);
                    clock.mark(LoopPhase::Acknowledgements);
                    Duration::ZERO
                }
            };
            let polled = poll_batch(consumer, &mut batch, max_batch, timeout);
            clock.mark(LoopPhase::Input);
            if let Err(e) = polled {
                poll_errors.handle(consumer, &self.health, e)?;
            }
            if let Some(topic) = labels_topic {
                take_labels(&mut batch, &mut labels, topic);
            }
            if let Some(r) = resolver.as_deref_mut() {
                r.admit(consumer, &mut batch)?;
            }
            self.handle(consumer, sink, scorer, (&mut batch, &mut labels))?;
        }
        clock.mark(LoopPhase::Work);
        Ok(())
    }

    /// Sends the outputs of a polled batch of input records and of label records (then
    /// empties both), after any model version loaded meanwhile starts serving.
    fn handle(
        &self,
        consumer: &Input,
        sink: &Sink,
        scorer: &mut Scorer,
        (batch, labels): (&mut Vec<BorrowedMessage<'_>>, &mut Vec<BorrowedMessage<'_>>),
    ) -> Result<()> {
        consumer.context().before_send()?;
        for loaded in scorer.serving().loaded() {
            scorer.swap(loaded, sink);
        }
        scorer.follow_rollout(sink);
        if batch.is_empty() {
            scorer.tick(sink);
        } else {
            self.metrics
                .transport
                .batch_records
                .observe(batch.len() as f64);
            scorer.handle_batch(batch, sink);
            batch.clear();
        }
        let handled = scorer.handle_labels(labels, sink);
        labels.clear();
        handled
    }

    /// Finishes in-flight records within `grace`, commits what was acknowledged and leaves
    /// the group; fails when outputs were still unacknowledged at the deadline.
    fn finish(
        &self,
        consumer: Input,
        sink: &Sink,
        scorer: &mut Scorer,
        grace: Duration,
    ) -> Result<()> {
        let deadline = Instant::now() + grace;
        info!("stopping: finishing in-flight records");
        let context = consumer.context();
        context.before_send()?;
        scorer.flush_drift(sink);
        let assigned: Vec<i32> = context.progress().lock().assigned().collect();
        let labels: Vec<i32> = context.progress().labels().assigned().collect();
        sink.drain(
            &assigned,
            deadline.saturating_duration_since(Instant::now()),
        );
        context.commit(&consumer, &assigned, &labels);
        let failed = context.take_failure();
        let unacknowledged = {
            let mut progress = context.progress().lock();
            let left = progress.in_flight();
            // Done with: the revoke callback that runs as the consumer leaves finds nothing
            // to drain or commit, so shutdown waits for one grace period, not two.
            progress.revoke(assigned);
            left
        };
        let flush = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(1));
        if !sink.flush(flush) {
            warn!(timeout = ?flush, "outputs still queued in the producer at shutdown");
        }
        drop(consumer);
        info!(unacknowledged, "consumer stopped");
        if let Some(failure) = failed {
            return Err(failure);
        }
        if unacknowledged == 0 {
            Ok(())
        } else {
            Err(Error::Unfinished {
                unacknowledged,
                grace,
            })
        }
    }
}

/// Adds the loop's wall time to `driftwood_loop_seconds_total` by phase.
struct LoopClock {
    since: Instant,
    phases: [prometheus::Counter; 3],
}

impl LoopClock {
    fn new(metrics: &Metrics) -> Self {
        let phase = |p: LoopPhase| (metrics.transport.loop_seconds).with_label_values(&[p.label()]);
        LoopClock {
            since: Instant::now(),
            phases: LoopPhase::ALL.map(phase),
        }
    }

    /// Counts the time since the last mark as `phase`.
    fn mark(&mut self, phase: LoopPhase) {
        let now = Instant::now();
        self.phases[phase as usize].inc_by(now.duration_since(self.since).as_secs_f64());
        self.since = now;
    }
}

/// Waits up to `timeout` for the first message, then takes whatever else is already
/// fetched, up to `max` messages.
fn poll_batch<'c>(
    consumer: &'c Input,
    batch: &mut Vec<BorrowedMessage<'c>>,
    max: usize,
    mut timeout: Duration,
) -> std::result::Result<(), KafkaError> {
    while batch.len() < max {
        let polled = consumer.poll(timeout);
        if consumer.context().take_rewound() {
            // A transaction aborted inside this poll: what was collected is read again.
            batch.clear();
        }
        match polled {
            None => break,
            Some(Ok(message)) => batch.push(message),
            Some(Err(e)) => return Err(e),
        }
        timeout = Duration::ZERO;
    }
    Ok(())
}

/// Moves the records of the labels `topic` from `batch` to `labels`, keeping both in order.
fn take_labels<'c>(
    batch: &mut Vec<BorrowedMessage<'c>>,
    labels: &mut Vec<BorrowedMessage<'c>>,
    topic: &str,
) {
    if batch.iter().any(|m| m.topic() == topic) {
        let (l, input): (Vec<_>, Vec<_>) = batch.drain(..).partition(|m| m.topic() == topic);
        *batch = input;
        labels.extend(l);
    }
}

/// What the loop makes of a consumer error.
struct PollErrors {
    warnings: RateLimit,
}

impl Default for PollErrors {
    fn default() -> Self {
        PollErrors {
            warnings: RateLimit::every(Duration::from_secs(10)),
        }
    }
}

impl PollErrors {
    /// Records what the error means for readiness; fails for a fatal error, after which the
    /// consumer can do nothing. Anything else librdkafka keeps retrying by itself.
    fn handle(&mut self, consumer: &Input, health: &Health, error: KafkaError) -> Result<()> {
        if let Some((code, reason)) = consumer.client().fatal_error() {
            return Err(Error::Fatal {
                client: "consumer",
                reason: format!("{code:?}: {reason}"),
            });
        }
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition) => health.set_input_topic_missing(true),
            Some(RDKafkaErrorCode::PollExceeded) => {
                // librdkafka left the group; the next poll joins again.
                health.set_joined(false);
                warn!(error = %error, "the consumer left its group; rejoining");
                return Ok(());
            }
            _ => {}
        }
        // Usually transient (broker restarting, topic not created yet); say so at most
        // every 10 s.
        if let Some(suppressed) = self.warnings.due() {
            warn!(%error, suppressed, "consumer poll error; librdkafka keeps retrying");
        }
        Ok(())
    }
}

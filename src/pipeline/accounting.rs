//! What the transport's events mean here: the one place where deliveries, rebalances and
//! transactions become metrics and health. The transport hands each output's [`Outcome`]
//! back when the broker acknowledges it, and only then is the record counted.

use std::sync::Arc;

use rdkafka::consumer::BaseConsumer;
use rdkafka::error::RDKafkaErrorCode;

use crate::codec::dead_letter;
use crate::codec::decode::DecodeErrorKind;
use crate::kafka::events::{Event, Observer, Output};
use crate::kafka::source::SourceContext;
use crate::obs::health::Health;
use crate::obs::metrics::{Metrics, OutcomeCounters};

/// The producer every output goes through, reporting to [`Accounting`].
pub type Sink = crate::kafka::sink::Sink<Accounting>;
/// The consumer of the input, reporting to [`Accounting`] through its sink.
pub type Input = BaseConsumer<SourceContext<Accounting>>;

/// What an output stands for, counted in metrics once acknowledged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// A classifier's prediction.
    Classified {
        /// Predicted label.
        label: i32,
        /// Its probability.
        confidence: f64,
        /// Whether it matched the record's ground truth, when it had one.
        correct: Option<bool>,
    },
    /// A regressor's prediction.
    Valued,
    /// A dead letter.
    DeadLettered(DecodeErrorKind),
    /// The input forwarded unchanged (`--pass-through`, for benchmarks).
    PassedThrough,
    /// A drift report.
    DriftReport,
    /// A shadow comparison.
    Comparison,
    /// A rollout decision.
    RolloutDecision,
    /// An undecodable label record, dead-lettered.
    LabelDeadLettered(DecodeErrorKind),
    /// A window of realized performance.
    Performance,
    /// A record sent for review (labelling).
    Review,
}

/// The transport's observer: outcome counters, the Kafka metrics and the health flags the
/// transport drives.
pub struct Accounting {
    counters: OutcomeCounters,
    health: Arc<Health>,
}

impl Accounting {
    /// Counts into `metrics` and shows the transport's state in `health`.
    pub fn new(metrics: &Metrics, health: Arc<Health>) -> Self {
        Accounting {
            counters: OutcomeCounters::new(metrics, &dead_letter::kinds()),
            health,
        }
    }

    fn metrics(&self) -> &Metrics {
        self.counters.metrics()
    }
}

impl Observer for Accounting {
    type Outcome = Outcome;

    fn truncatable(outcome: &Outcome) -> bool {
        matches!(
            outcome,
            Outcome::DeadLettered(_) | Outcome::LabelDeadLettered(_)
        )
    }

    fn acknowledged(&self, output: &Output<Outcome>) {
        let c = &self.counters;
        match *output.outcome() {
            Outcome::Classified {
                label,
                confidence,
                correct,
            } => c.classified(label, confidence, correct),
            Outcome::Valued => c.valued(),
            Outcome::DeadLettered(kind) => c.dead_lettered(kind.as_str()),
            Outcome::PassedThrough => c.passed_through(),
            Outcome::DriftReport => self.metrics().outputs.drift_reports.inc(),
            Outcome::Comparison
            | Outcome::RolloutDecision
            | Outcome::LabelDeadLettered(_)
            | Outcome::Review => {}
            Outcome::Performance => self.metrics().labels.windows.inc(),
        }
        self.health.set_output_error(None);
    }

    fn on(&self, event: Event<'_>) {
        let (health, transport) = (&self.health, &self.metrics().transport);
        match event {
            Event::BrokersUp(up) => health.set_broker_reachable(up),
            Event::Assigned(partitions) => {
                transport.rebalances.with_label_values(&["assign"]).inc();
                if !partitions.is_empty() {
                    health.set_input_topic_missing(false);
                }
                health.set_joined(true);
            }
            Event::Revoked { topic, partitions } => {
                transport.rebalances.with_label_values(&["revoke"]).inc();
                for partition in partitions {
                    // The partition's lag is its next owner's to show.
                    let labels = [topic, &partition.to_string()];
                    let _ = transport.consumer_lag.remove_label_values(&labels);
                }
                health.set_joined(false);
            }
            Event::Holding(count) => transport.assigned_partitions.set(count as i64),
            Event::Lag {
                topic,
                partition,
                lag,
            } => (transport.consumer_lag)
                .with_label_values(&[topic, &partition.to_string()])
                .set(lag),
            Event::DeliveryFailed { topic, error } => {
                let code = error.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail);
                (transport.delivery_errors)
                    .with_label_values(&[&format!("{code:?}")])
                    .inc();
                health.set_output_error(Some(format!("delivery to {topic} failed: {error}")));
            }
            Event::NotQueued { topic, error } => {
                health.set_output_error(Some(format!("cannot send to {topic}: {error}")))
            }
            Event::Resent => transport.delivery_retries.inc(),
            Event::InFlight(count) => transport.in_flight.set(count as i64),
            Event::Committed => transport
                .transactions
                .with_label_values(&["committed"])
                .inc(),
            Event::Aborted => transport.transactions.with_label_values(&["aborted"]).inc(),
        }
    }
}

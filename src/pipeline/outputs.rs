//! A batch's outputs, one per input record: predictions (with their explanations and the
//! input's headers), dead letters, forwarded records, and drift reports.

use std::borrow::Cow;

use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use tracing::{debug, debug_span, warn};

use super::accounting::{Outcome, Sink};
use super::explain;
use super::serving::Decided;
use crate::codec::dead_letter;
use crate::codec::decode::{DecodeError, RecordMeta};
use crate::codec::encode::{AvroCodec, PredictionFields, RolloutDecisionKind, RolloutRecord};
use crate::codec::registry::{self, OutputSchemaIds};
use crate::drift::DriftReport;
use crate::kafka::events::Output;
use crate::kafka::sink::Destination;
use crate::kafka::trace;
use crate::model::ensemble::Explanation;
use crate::model::rollout::Decision;
use crate::model::{Labelled, Model, Predicted};
use crate::obs::metrics::Metrics;
use crate::obs::telemetry;

/// Where a scorer's outputs go.
#[derive(Debug, Clone)]
pub struct OutputTopics {
    /// Predictions (and, with pass-through, the forwarded input).
    pub predictions: String,
    /// Dead letters.
    pub dead_letters: String,
    /// Drift reports, keyed by instance id.
    pub drift_reports: String,
    /// Rollout decisions (`--rollout-topic`), keyed by model name.
    pub rollouts: Option<String>,
    /// With `--output-format confluent`: the ids predictions and drift reports are framed
    /// with.
    pub schema_ids: OutputSchemaIds,
}

/// A record scored: its index in the batch, what decoding said besides the features, its
/// row in its lane, and the batch's time.
pub struct Scoring<'a> {
    pub index: usize,
    pub meta: RecordMeta<'a>,
    pub row: usize,
    pub now: i64,
}

/// Encodes and sends outputs, with a buffer reused between them.
pub struct Outputs {
    topics: OutputTopics,
    metrics: Metrics,
    encoded: Vec<u8>,
    /// Predictions go to the partition numbered as their input's (with `--labels-topic`,
    /// so that a partition's predictions can be read back when it is assigned).
    like_input: bool,
}

impl Outputs {
    /// Outputs to `topics`, counting explanations in `metrics`.
    pub fn new(topics: OutputTopics, metrics: Metrics) -> Self {
        Outputs {
            topics,
            metrics,
            encoded: Vec::new(),
            like_input: false,
        }
    }

    /// Sends each prediction to the partition numbered as its input's.
    pub fn partition_like_input(&mut self) {
        self.like_input = true;
    }

    /// Sends a drift report keyed by `instance_id`.
    pub fn drift_report(&mut self, report: &DriftReport, instance_id: &str, sink: &Sink) {
        self.encoded.clear();
        if let Some(id) = self.topics.schema_ids.drift_reports {
            registry::frame(id, &mut self.encoded);
        }
        report.encode_avro(&mut self.encoded);
        sink.send(
            &self.topics.drift_reports,
            Some(instance_id.as_bytes()),
            Some(&self.encoded),
            None,
            Output::Detached(Outcome::DriftReport),
        );
    }

    /// Sends a rollout decision (this instance's, `instance_id`), with the rollout it was
    /// made on and the one it left, to the rollout topic, keyed by model name, when one is
    /// set.
    pub fn rollout_decision(&mut self, decided: &Decided, instance_id: &str, sink: &Sink) {
        let Some(topic) = &self.topics.rollouts else {
            return;
        };
        let (decision, judged, rollout) = (&decided.decision, &decided.judged, &decided.moved);
        let (stage, share) = judged.stage().map_or((0, 0.0), |(i, s)| (i, s.share));
        let record = RolloutRecord {
            model_name: rollout.name.clone(),
            candidate: rollout.candidate.clone(),
            baseline: rollout.baseline.clone(),
            decision: match decision {
                Decision::Advance { .. } => RolloutDecisionKind::Advance,
                Decision::Promote { .. } => RolloutDecisionKind::Promote,
                Decision::RollBack { .. } => RolloutDecisionKind::RollBack,
            },
            stage: stage as i32,
            share,
            next_share: rollout.share(),
            reason: match decision {
                Decision::RollBack { reason, .. } => Some(reason.clone()),
                _ => None,
            },
            figures: decision.figures().to_owned(),
            revision: rollout.revision as i64,
            instance_id: instance_id.to_owned(),
            decided_at: decided.at,
        };
        self.encoded.clear();
        if let Some(id) = self.topics.schema_ids.rollouts {
            registry::frame(id, &mut self.encoded);
        }
        if let Err(e) = AvroCodec::rollouts().encode(&record, &mut self.encoded) {
            warn!(error = %e, "cannot encode a rollout decision; it is in the log");
            return;
        }
        let key = Some(rollout.name.as_bytes());
        let output = Output::Detached(Outcome::RolloutDecision);
        sink.send(topic, key, Some(&self.encoded), None, output);
    }

    /// Sends `record`'s prediction by `model` (with its explanation, if any) to the
    /// predictions topic, keyed as its input, with the input's headers.
    pub fn prediction(
        &mut self,
        model: &Model,
        message: &BorrowedMessage<'_>,
        record: Scoring<'_>,
        (predicted, probabilities): (Predicted, &[f64]),
        explanation: Option<&Explanation>,
        sink: &Sink,
    ) {
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let (meta, now) = (record.meta, record.now);
        let metadata = &model.metadata;
        let Labelled {
            label,
            class_name,
            confidence,
            value,
        } = predicted.labelled(metadata);
        let id = record_id(message, &meta);
        let prediction = PredictionFields {
            id: &id,
            model_name: &metadata.name,
            model_version: &metadata.version,
            predicted_label: label,
            predicted_class: class_name,
            confidence,
            value,
            classes: &metadata.classes,
            class_names: metadata.class_names.as_deref(),
            probabilities,
            actual_label: meta.label,
            source_topic: topic,
            source_partition: partition,
            source_offset: offset,
            event_time: event_time(message, &meta, now),
            scored_at: now,
            explanation: explanation.map(|e| explain::fields(model, e)),
        };
        if explanation.is_some() {
            self.metrics.outputs.explanations.inc();
        }
        self.encoded.clear();
        if let Some(id) = self.topics.schema_ids.predictions {
            registry::frame(id, &mut self.encoded);
        }
        prediction.encode(&mut self.encoded);
        let headers = traced_headers(message, &prediction);
        let outcome = match (label, confidence) {
            (Some(label), Some(confidence)) => Outcome::Classified {
                label,
                confidence,
                correct: meta.label.map(|l| l == label),
            },
            _ => Outcome::Valued,
        };
        let to = Destination {
            topic: &self.topics.predictions,
            partition: self.like_input.then_some(partition),
            // Its scoring time, read once a batch: librdkafka would read the clock again for
            // each record (3% of the loop's time on stock-client input, docs/performance.md).
            timestamp: Some(now),
        };
        sink.send_to(
            to,
            message.key(),
            Some(&self.encoded),
            headers,
            Output::Record {
                partition,
                offset,
                outcome,
            },
        );
    }

    /// Sends `message` unchanged to the dead-letter topic, with headers saying why.
    pub fn dead_letter(&self, message: &BorrowedMessage<'_>, error: &DecodeError, sink: &Sink) {
        let output = Output::Record {
            partition: message.partition(),
            offset: message.offset(),
            outcome: Outcome::DeadLettered(error.kind),
        };
        self.dead_letter_as(message, error, sink, output);
    }

    /// Sends `message` unchanged to the dead-letter topic as `output`.
    pub fn dead_letter_as<M: Message>(
        &self,
        message: &M,
        error: &DecodeError,
        sink: &Sink,
        output: Output<Outcome>,
    ) {
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let mut headers = OwnedHeaders::new();
        for h in message.headers().into_iter().flat_map(|h| h.iter()) {
            headers = headers.insert(h);
        }
        for (key, value) in dead_letter::headers(error, topic, partition, offset) {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        sink.send(
            &self.topics.dead_letters,
            message.key(),
            message.payload(),
            Some(headers),
            output,
        );
    }

    /// Forwards `message` unchanged to the predictions topic (`--pass-through`), with its
    /// timestamp, as a relay such as MirrorMaker does.
    pub fn forward(&self, message: &BorrowedMessage<'_>, sink: &Sink) {
        let to = Destination {
            topic: &self.topics.predictions,
            partition: None,
            timestamp: message.timestamp().to_millis(),
        };
        sink.send_to(
            to,
            message.key(),
            message.payload(),
            None,
            Output::Record {
                partition: message.partition(),
                offset: message.offset(),
                outcome: Outcome::PassedThrough,
            },
        );
    }
}

/// The input record's id, or where it was read (`topic-partition-offset`) when it has none.
pub fn record_id<'m>(message: &BorrowedMessage<'_>, meta: &RecordMeta<'m>) -> Cow<'m, str> {
    match meta.id {
        Some(id) => Cow::Borrowed(id),
        None => {
            let (topic, partition, offset) =
                (message.topic(), message.partition(), message.offset());
            Cow::Owned(format!("{topic}-{partition}-{offset}"))
        }
    }
}

/// The input record's event time (ms): its `event_time`, else the message's timestamp, else
/// `now`.
pub fn event_time(message: &BorrowedMessage<'_>, meta: &RecordMeta<'_>, now: i64) -> i64 {
    (meta.event_time_ms)
        .or_else(|| message.timestamp().to_millis())
        .unwrap_or(now)
}

/// The prediction's headers: the input's, with its W3C `traceparent` (if any) replaced by
/// the scoring step's own span, a child of the producer's: logged at debug, and exported
/// when OTLP export is on (`obs::telemetry`).
fn traced_headers(
    message: &BorrowedMessage<'_>,
    prediction: &PredictionFields<'_>,
) -> Option<OwnedHeaders> {
    let input = message.headers();
    let Some(parent) = trace::trace_parent(input) else {
        return trace::forwarded(input, None);
    };
    let span = debug_span!(
        "score",
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.destination.name = message.topic(),
        messaging.destination.partition.id = message.partition(),
        messaging.kafka.offset = message.offset(),
        trace_id = %parent.trace_id_hex(),
        parent_span_id = %parent.span_id_hex(),
        span_id = tracing::field::Empty,
    );
    let child = telemetry::child_of(&span, &parent);
    span.record("span_id", tracing::field::display(child.span_id_hex()));
    span.in_scope(|| {
        debug!(
            id = prediction.id,
            label = prediction.predicted_label,
            confidence = prediction.confidence,
            "scored"
        )
    });
    trace::forwarded(input, Some(&child))
}

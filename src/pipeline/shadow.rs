//! Shadow scoring (`--shadow NAME:VERSION`): a share of the records the serving model scores
//! is scored by a candidate as well, and the two are compared: label agreement, confidence
//! delta and a confusion count per pair of labels in the metrics, and optionally one record
//! per comparison on `--comparison-topic`. Predictions still come from the serving model.

use std::sync::Arc;

use prometheus::IntCounter;
use rdkafka::message::{BorrowedMessage, Message};
use tracing::warn;

use super::accounting::{Outcome, Sink};
use super::sample::chosen;
use crate::codec::decode::FeatureDecoder;
use crate::codec::encode::{AvroCodec, Comparison};
use crate::kafka::events::Output;
use crate::model::{Model, Predicted, Scored};
use crate::obs::metrics::Metrics;

/// The candidate and what comparing needs, with buffers reused across batches.
pub struct Shadow {
    candidate: Arc<Model>,
    decoder: FeatureDecoder,
    /// Share of records compared, in [0, 1].
    share: f64,
    topic: Option<String>,
    metrics: Metrics,
    /// `agree` and `disagree` counters.
    agreement: [IntCounter; 2],
    /// Confusion counters by (serving, candidate) label.
    pairs: Vec<((i32, i32), IntCounter)>,
    /// Batch index and serving prediction of each record chosen in the current batch.
    noted: Vec<(usize, Predicted)>,
    rows: Vec<f64>,
    scored: Scored,
    codec: AvroCodec,
    encoded: Vec<u8>,
    /// With `--output-format confluent`: the id comparisons are framed with.
    schema_id: Option<u32>,
}

impl Shadow {
    /// Compares `share` of the records with `candidate` (read through `decoder`), publishing
    /// comparisons to `topic` when given. The candidate must be a classifier.
    pub fn new(
        candidate: Arc<Model>,
        decoder: FeatureDecoder,
        share: f64,
        topic: Option<String>,
        metrics: Metrics,
    ) -> Self {
        Shadow {
            candidate,
            decoder,
            share,
            topic,
            agreement: ["agree", "disagree"]
                .map(|a| metrics.serving.shadow_predictions.with_label_values(&[a])),
            pairs: Vec::new(),
            metrics,
            noted: Vec::new(),
            rows: Vec::new(),
            scored: Scored::default(),
            codec: AvroCodec::comparisons(),
            encoded: Vec::new(),
            schema_id: None,
        }
    }

    /// The comparison topic, if comparisons are published.
    pub fn topic(&self) -> Option<&str> {
        self.topic.as_deref()
    }

    /// Frames comparisons with schema `id` (Confluent wire format).
    pub fn frame_with(&mut self, id: Option<u32>) {
        self.schema_id = id;
    }

    /// Notes the serving model's prediction for the batch's record `index`, if the record
    /// is one of the share compared. The choice hangs on the record's position alone, so a
    /// record read again is compared again.
    pub fn note(&mut self, index: usize, message: &BorrowedMessage<'_>, served: Predicted) {
        if chosen(message.partition(), message.offset(), self.share) {
            self.noted.push((index, served));
        }
    }

    /// Scores the noted records of `batch` with the candidate and compares.
    pub fn compare(&mut self, batch: &[BorrowedMessage<'_>], serving: &Model, sink: &Sink) {
        self.rows.clear();
        let mut kept = Vec::with_capacity(self.noted.len());
        for &(index, served) in &self.noted {
            let message = &batch[index];
            if let Ok(meta) = self.decoder.decode(message.payload(), &mut self.rows) {
                kept.push((message, served, meta.id));
            }
        }
        self.noted.clear();
        self.candidate.engine.score(&self.rows, &mut self.scored);
        for (k, (message, served, id)) in kept.into_iter().enumerate() {
            let theirs = self.scored.predicted(k);
            if let Some(comparison) = self.count(message, (served, theirs), id, serving) {
                self.publish(message.key(), &comparison, sink);
            }
        }
    }

    /// Counts one comparison in the metrics; returns the record to publish, when there is a
    /// comparison topic.
    fn count(
        &mut self,
        message: &BorrowedMessage<'_>,
        (served, theirs): (Predicted, Predicted),
        id: Option<&str>,
        serving: &Model,
    ) -> Option<Comparison> {
        let (
            Predicted::Class {
                index: ours,
                confidence: c_ours,
            },
            Predicted::Class {
                index: theirs,
                confidence: c_theirs,
            },
        ) = (served, theirs)
        else {
            return None;
        };
        let ours = serving.metadata.classes[ours];
        let theirs = self.candidate.metadata.classes[theirs];
        let agree = ours == theirs;
        self.agreement[usize::from(!agree)].inc();
        self.metrics
            .serving
            .shadow_confidence_delta
            .observe(c_theirs - c_ours);
        self.confusion(ours, theirs).inc();
        self.topic.as_ref()?;
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        Some(Comparison {
            id: id.map_or_else(|| format!("{topic}-{partition}-{offset}"), str::to_string),
            source_topic: topic.into(),
            source_partition: partition,
            source_offset: offset,
            model_name: serving.metadata.name.clone(),
            serving_version: serving.metadata.version.clone(),
            candidate_name: self.candidate.metadata.name.clone(),
            candidate_version: self.candidate.metadata.version.clone(),
            serving_label: ours,
            candidate_label: theirs,
            serving_confidence: c_ours,
            candidate_confidence: c_theirs,
            agree,
        })
    }

    /// The confusion counter of a pair of labels, resolved on its first sight (there are
    /// few), so that counting hashes and allocates nothing.
    fn confusion(&mut self, ours: i32, theirs: i32) -> &IntCounter {
        let at = match self
            .pairs
            .iter()
            .position(|(pair, _)| *pair == (ours, theirs))
        {
            Some(at) => at,
            None => {
                let labels = [ours.to_string(), theirs.to_string()];
                let counter = (self.metrics.serving.shadow_confusion)
                    .with_label_values(&[&labels[0], &labels[1]]);
                self.pairs.push(((ours, theirs), counter));
                self.pairs.len() - 1
            }
        };
        &self.pairs[at].1
    }

    fn publish(&mut self, key: Option<&[u8]>, comparison: &Comparison, sink: &Sink) {
        let Some(topic) = &self.topic else {
            return;
        };
        self.encoded.clear();
        if let Some(id) = self.schema_id {
            crate::codec::registry::frame(id, &mut self.encoded);
        }
        if let Err(e) = self.codec.encode(comparison, &mut self.encoded) {
            warn!(error = %e, "cannot encode a shadow comparison; dropping it");
            return;
        }
        sink.send(
            topic,
            key,
            Some(&self.encoded),
            None,
            Output::Detached(Outcome::Comparison),
        );
    }
}

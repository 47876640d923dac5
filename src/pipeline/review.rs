//! The labelling queue (`--review-topic`): scored records chosen for someone to label, with
//! their features and the reason each was chosen. A share of all records is chosen by
//! position (`sample`, the same on every instance and after a rebalance), and every record
//! whose confidence is at or below the reference's `--review-least-sure` quantile of it
//! (`least_sure`). Their labels come back on the labels topic like any other.
//!
//! Review requests do not hold back the input's commits: with at-least-once, a crash between
//! a record's commit and its request's delivery loses that request (with exactly-once it is
//! in the record's transaction).

use std::collections::HashMap;

use rdkafka::message::{BorrowedMessage, Message};

use super::accounting::{Outcome, Sink};
use super::outputs::{self, Scoring};
use super::sample::chosen_for;
use crate::codec::encode::{AvroCodec, FeatureValue, ReviewRequest};
use crate::codec::registry;
use crate::kafka::events::Output;
use crate::model::{Model, Predicted};
use crate::obs::metrics::LabelMetrics;
use crate::stats::profile::Marginal;

/// What `sample::chosen_for` chooses review samples by.
const REVIEW_PURPOSE: u64 = 0x7265_7669_6577;

/// Where review requests go and which records are chosen.
#[derive(Debug, Clone)]
pub struct ReviewSettings {
    /// The topic (Avro `ReviewRequest`, `schemas/review.avsc`).
    pub topic: String,
    /// Share of all records chosen, by position.
    pub share: f64,
    /// Records whose confidence is at or below this quantile of the reference's are chosen
    /// (0: none).
    pub least_sure: f64,
}

/// Chooses records and sends their review requests.
pub struct Review {
    settings: ReviewSettings,
    codec: AvroCodec,
    metrics: LabelMetrics,
    /// Each model version's confidence threshold (none for a regressor).
    thresholds: HashMap<(String, String), Option<f64>>,
    /// With `--output-format confluent`: the schema id requests are framed with.
    schema_id: Option<u32>,
    encoded: Vec<u8>,
}

impl Review {
    /// A queue per `settings` (framed with `schema_id`, if any), counted in `metrics`.
    pub fn new(settings: ReviewSettings, schema_id: Option<u32>, metrics: LabelMetrics) -> Self {
        Review {
            settings,
            codec: AvroCodec::reviews(),
            metrics,
            thresholds: HashMap::new(),
            schema_id,
            encoded: Vec::new(),
        }
    }

    /// Sends a review request for `record` if it is chosen: `row` is its features, in
    /// `model`'s order.
    pub fn consider(
        &mut self,
        model: &Model,
        message: &BorrowedMessage<'_>,
        (record, row): (&Scoring<'_>, &[f64]),
        predicted: Predicted,
        sink: &Sink,
    ) {
        let (partition, offset) = (message.partition(), message.offset());
        let threshold = self.threshold(model);
        let reason = match predicted {
            Predicted::Class { confidence, .. } if threshold.is_some_and(|t| confidence <= t) => {
                "least_sure"
            }
            _ if chosen_for(REVIEW_PURPOSE, partition, offset, self.settings.share) => "sample",
            _ => return,
        };
        let labelled = predicted.labelled(&model.metadata);
        let request = ReviewRequest {
            id: outputs::record_id(message, &record.meta).into_owned(),
            reason: reason.into(),
            model_name: model.metadata.name.clone(),
            model_version: model.metadata.version.clone(),
            predicted_label: labelled.label,
            confidence: labelled.confidence,
            value: labelled.value,
            threshold: threshold.filter(|_| reason == "least_sure"),
            features: (model.metadata.features.iter().zip(row))
                .map(|(name, &value)| FeatureValue {
                    name: name.clone(),
                    value,
                })
                .collect(),
            source_topic: message.topic().into(),
            source_partition: partition,
            source_offset: offset,
            event_time: outputs::event_time(message, &record.meta, record.now),
            scored_at: record.now,
        };
        self.encoded.clear();
        if let Some(id) = self.schema_id {
            registry::frame(id, &mut self.encoded);
        }
        if self.codec.encode(&request, &mut self.encoded).is_err() {
            return; // Not reachable: the request is built to its schema.
        }
        let output = Output::Detached(Outcome::Review);
        sink.send(
            &self.settings.topic,
            message.key(),
            Some(&self.encoded),
            None,
            output,
        );
        self.metrics.reviews.with_label_values(&[reason]).inc();
    }

    /// The confidence at or below which `model`'s records are least sure.
    fn threshold(&mut self, model: &Model) -> Option<f64> {
        let key = (model.metadata.name.clone(), model.metadata.version.clone());
        let q = self.settings.least_sure;
        *(self.thresholds.entry(key)).or_insert_with(|| {
            let outputs = &model.drift_reference().outputs;
            let classifier = !outputs.classes.is_empty();
            (classifier && q > 0.0)
                .then(|| quantile(&outputs.distribution, q))
                .flatten()
        })
    }
}

/// The upper edge of the first bin of `marginal` where its cumulative share reaches `q`.
fn quantile(marginal: &Marginal, q: f64) -> Option<f64> {
    let total: u64 = marginal.counts.iter().sum();
    let mut seen = 0;
    for (i, &count) in marginal.counts.iter().enumerate() {
        seen += count;
        if seen as f64 >= q * total as f64 {
            return Some(marginal.edges.get(i).copied().unwrap_or(f64::INFINITY));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quantile_is_the_upper_edge_of_the_bin_that_reaches_it() {
        let m = Marginal::from_counts(vec![0.6, 0.8, 0.9], vec![1, 9, 40, 50], 0);
        assert_eq!(quantile(&m, 0.01), Some(0.6));
        assert_eq!(quantile(&m, 0.05), Some(0.8));
        assert_eq!(quantile(&m, 0.9), Some(f64::INFINITY));
    }
}

//! What became of the input records: outcomes, predictions, dead letters, reports.

use prometheus::{Histogram, IntCounter, IntCounterVec};

use super::Registrar;

/// What became of the input records: outcomes, predictions, dead letters, reports.
#[derive(Clone)]
pub struct OutputMetrics {
    /// `driftwood_records_total{outcome}`: input records whose output the broker acknowledged,
    /// by outcome (`scored`, `dead_lettered`).
    pub records: IntCounterVec,
    /// `driftwood_dead_letters_total{kind}`: dead-lettered records by error kind.
    pub dead_letters: IntCounterVec,
    /// `driftwood_scoring_duration_seconds`: decode plus score time per record.
    pub scoring_seconds: Histogram,
    /// `driftwood_prediction_confidence`: vote share of the predicted class.
    pub confidence: Histogram,
    /// `driftwood_predictions_total{label}`: predictions by predicted label.
    pub predictions: IntCounterVec,
    /// `driftwood_labeled_predictions_total{outcome}`: predictions of records that carried a
    /// ground-truth label, `correct` or `incorrect`.
    pub labeled: IntCounterVec,
    /// `driftwood_explanations_total`: predictions published with an explanation.
    pub explanations: IntCounter,
    /// `driftwood_model_records_total{model,version,outcome}`: records each model version
    /// `scored` or could not (`dead_lettered`), counted when sent (routing shows here).
    pub model_records: IntCounterVec,
    /// `driftwood_drift_reports_total`: drift reports acknowledged by the broker.
    pub drift_reports: IntCounter,
}

impl OutputMetrics {
    /// Creates and registers them.
    pub(super) fn new(r: &Registrar<'_>) -> Self {
        OutputMetrics {
            records: r.labelled_counters(
                "driftwood_records_total",
                "Input records whose output was acknowledged by the broker, by outcome.",
                "outcome",
                &["scored", "dead_lettered"],
            ),
            dead_letters: r.counter_vec(
                "driftwood_dead_letters_total",
                "Records sent to the dead-letter topic, by error kind.",
                &["kind"],
            ),
            scoring_seconds: r.histogram(
                "driftwood_scoring_duration_seconds",
                "Time to decode and score one record.",
                prometheus::exponential_buckets(1e-6, 2.0, 16).expect("valid buckets"),
            ),
            confidence: r.histogram(
                "driftwood_prediction_confidence",
                "Vote share of the predicted class.",
                vec![0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0],
            ),
            predictions: r.counter_vec(
                "driftwood_predictions_total",
                "Predictions by predicted label.",
                &["label"],
            ),
            labeled: r.counter_vec(
                "driftwood_labeled_predictions_total",
                "Predictions for records with a ground-truth label, by correctness.",
                &["outcome"],
            ),
            explanations: r.counter(
                "driftwood_explanations_total",
                "Predictions published with an explanation.",
            ),
            model_records: r.counter_vec(
                "driftwood_model_records_total",
                "Records each model version scored or dead-lettered, counted when sent.",
                &["model", "version", "outcome"],
            ),
            drift_reports: r.counter(
                "driftwood_drift_reports_total",
                "Drift reports acknowledged by the broker.",
            ),
        }
    }
}

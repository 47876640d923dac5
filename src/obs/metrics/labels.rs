//! The delayed-labels metrics: labels by outcome, the predictions awaiting theirs, and each
//! model version's realized performance in its last published window.

use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use super::register;

/// What `driftwood_labels_total` counts a label record as (`crate::labels::LabelOutcome`).
const LABEL_OUTCOMES: [&str; 6] = [
    "joined",
    "unknown",
    "duplicate",
    "late",
    "mismatched",
    "dead_lettered",
];

/// The delayed-labels metrics.
#[derive(Clone)]
pub struct LabelMetrics {
    /// `driftwood_labels_total{outcome}`: label records read, by what became of them.
    pub labels: IntCounterVec,
    /// `driftwood_awaiting_predictions`: predictions kept for their label.
    pub awaiting: IntGauge,
    /// `driftwood_awaiting_bytes`: their estimated heap bytes.
    pub awaiting_bytes: IntGauge,
    /// `driftwood_performance_windows_total`: windows of labels published.
    pub windows: IntCounter,
    /// `driftwood_review_requests_total{reason}`: records sent for review, by why.
    pub reviews: IntCounterVec,
    /// `driftwood_realized_performance{model,version,metric}`: the version's realized figure
    /// in the last window published with labels for it.
    pub realized: GaugeVec,
}

impl LabelMetrics {
    /// Creates and registers the metrics in `registry`.
    pub fn new(registry: &Registry) -> Self {
        let labels = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "driftwood_labels_total",
                    "Label records read from the labels topic, by outcome.",
                ),
                &["outcome"],
            ),
        );
        for outcome in LABEL_OUTCOMES {
            labels.with_label_values(&[outcome]);
        }
        let gauge = |name: &str, help: &str| register(registry, IntGauge::new(name, help));
        let reviews = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "driftwood_review_requests_total",
                    "Scored records sent to the review topic for labelling, by reason.",
                ),
                &["reason"],
            ),
        );
        for reason in ["sample", "least_sure"] {
            reviews.with_label_values(&[reason]);
        }
        LabelMetrics {
            labels,
            reviews,
            awaiting: gauge(
                "driftwood_awaiting_predictions",
                "Predictions kept in memory for their label.",
            ),
            awaiting_bytes: gauge(
                "driftwood_awaiting_bytes",
                "Estimated heap bytes of the predictions kept for their label.",
            ),
            windows: register(
                registry,
                IntCounter::new(
                    "driftwood_performance_windows_total",
                    "Windows of labels published to the performance topic.",
                ),
            ),
            realized: register(
                registry,
                GaugeVec::new(
                    Opts::new(
                        "driftwood_realized_performance",
                        "A model version's realized performance over the labels of the last \
                         window that had labels for it.",
                    ),
                    &["model", "version", "metric"],
                ),
            ),
        }
    }
}

//! The drift metrics: per model, what its last closed window showed.

use prometheus::{CounterVec, GaugeVec, IntCounterVec, Opts, Registry};

use super::register;

/// The drift metrics.
#[derive(Clone)]
pub struct DriftMetrics {
    /// `driftwood_feature_psi{model,feature}`: PSI of each feature of each model served in
    /// its last closed window (an effect size for dashboards).
    pub feature_psi: GaugeVec,
    /// `driftwood_prediction_psi{model}`: PSI of the predicted class mix in the model's last
    /// closed window.
    pub prediction_psi: GaugeVec,
    /// The model's performance in its last closed window, realized and expected.
    pub performance: PerformanceGauges,
    /// `driftwood_drift_alerts_total{model,level}`: windows flagged `warn` or `alert` by
    /// their tests, and `sequential` alarms.
    pub alerts: IntCounterVec,
    /// `driftwood_drift_feature_flag{model,feature}`: 0 ok, 1 warn, 2 alert, in the model's
    /// last tested window.
    pub feature_flag: GaugeVec,
    /// `driftwood_drift_feature_p_value{model,feature}`: the smallest adjusted p-value of the
    /// feature's tests in the last tested window.
    pub feature_p_value: GaugeVec,
    /// `driftwood_drift_detectable_shift{model,feature}`: the smallest mean shift (in
    /// reference standard deviations) the last tested window could detect with 90% power.
    pub detectable_shift: GaugeVec,
    /// `driftwood_drift_sequential_level{model,feature}`: each CUSUM's evidence over its
    /// threshold (1 raises the sequential alarm); feature `prediction` for the outputs.
    pub sequential_level: GaugeVec,
    /// `driftwood_drift_flagged_pairs{model}`: pairs of features whose correlation is flagged
    /// in the last tested window.
    pub flagged_pairs: GaugeVec,
    /// `driftwood_drift_vector_distance{model}`: the Mahalanobis distance of the mean scores
    /// in the last tested window.
    pub vector_distance: GaugeVec,
    /// `driftwood_drift_cpu_seconds_total{model}`: CPU time the scoring thread spent on
    /// drift windows: counting records, testing closed windows, publishing their reports.
    pub cpu_seconds: CounterVec,
}

impl DriftMetrics {
    /// Creates and registers the drift metrics in `registry`.
    pub fn new(registry: &Registry) -> Self {
        let gauges = |name: &str, help: &str, labels: &[&str]| {
            register(registry, GaugeVec::new(Opts::new(name, help), labels))
        };
        let per_feature = ["model", "feature"];
        DriftMetrics {
            feature_psi: gauges(
                "driftwood_feature_psi",
                "PSI of each feature against its drift reference, last closed window.",
                &per_feature,
            ),
            prediction_psi: gauges(
                "driftwood_prediction_psi",
                "PSI of the predicted class mix against the reference, last closed window.",
                &["model"],
            ),
            performance: PerformanceGauges::new(&gauges),
            alerts: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "driftwood_drift_alerts_total",
                        "Drift windows flagged, by model and level (warn, alert), and sequential alarms.",
                    ),
                    &["model", "level"],
                ),
            ),
            feature_flag: gauges(
                "driftwood_drift_feature_flag",
                "Each feature's flag in the last tested window: 0 ok, 1 warn, 2 alert.",
                &per_feature,
            ),
            feature_p_value: gauges(
                "driftwood_drift_feature_p_value",
                "Each feature's smallest adjusted p-value in the last tested window.",
                &per_feature,
            ),
            detectable_shift: gauges(
                "driftwood_drift_detectable_shift",
                "The smallest mean shift (reference standard deviations) the last tested window could detect with 90% power.",
                &per_feature,
            ),
            sequential_level: gauges(
                "driftwood_drift_sequential_level",
                "Each CUSUM's evidence of a persistent shift over its threshold (1 alarms).",
                &per_feature,
            ),
            flagged_pairs: gauges(
                "driftwood_drift_flagged_pairs",
                "Pairs of features whose correlation is flagged in the last tested window.",
                &["model"],
            ),
            vector_distance: gauges(
                "driftwood_drift_vector_distance",
                "Mahalanobis distance of the mean scores in the last tested window.",
                &["model"],
            ),
            cpu_seconds: register(
                registry,
                CounterVec::new(
                    Opts::new(
                        "driftwood_drift_cpu_seconds_total",
                        "CPU time the scoring thread spent on drift windows (counting, tests, reports).",
                    ),
                    &["model"],
                ),
            ),
        }
    }
}

/// A model's performance in its last closed window.
#[derive(Clone)]
pub struct PerformanceGauges {
    /// `driftwood_window_accuracy{model,version}`: accuracy among labeled records.
    pub accuracy: GaugeVec,
    /// `driftwood_window_estimated{model,version,metric}`: performance expected without labels
    /// (`accuracy`, `f1`, `roc_auc`), for a calibrated classifier.
    pub estimated: GaugeVec,
    /// `driftwood_window_estimate_unreliable{model,version}`: 1 when the window left the reference's
    /// support (the estimate rests on a calibration that saw few such records), else 0.
    pub unreliable: GaugeVec,
}

impl PerformanceGauges {
    fn new(gauges: &dyn Fn(&str, &str, &[&str]) -> GaugeVec) -> Self {
        PerformanceGauges {
            accuracy: gauges(
                "driftwood_window_accuracy",
                "Accuracy among labeled records, last closed window of the model version.",
                &["model", "version"],
            ),
            estimated: gauges(
                "driftwood_window_estimated",
                "Performance expected without labels from calibrated probabilities (CBPE), last closed window of the model version.",
                &["model", "version", "metric"],
            ),
            unreliable: gauges(
                "driftwood_window_estimate_unreliable",
                "1 when the last closed window left the reference's support, so that its estimated performance is unreliable.",
                &["model", "version"],
            ),
        }
    }
}

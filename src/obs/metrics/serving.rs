//! Which model serves and how it got there: versions, reloads, rollbacks, the shadow candidate, the REST twin.

use prometheus::{GaugeVec, Histogram, IntCounter, IntCounterVec, IntGaugeVec};

use super::Registrar;

/// Which model serves and how it got there: versions, reloads, rollbacks, the shadow candidate, the REST twin.
#[derive(Clone)]
pub struct ServingMetrics {
    /// `driftwood_model_info{name,version}`: 1 for the model serving.
    pub model_info: IntGaugeVec,
    /// `driftwood_model_reloads_total{outcome}`: versions the registry pointer named while
    /// running, `loaded` (and swapped in) or `refused`.
    pub model_reloads: IntCounterVec,
    /// `driftwood_model_pointer_reads_total`: reads of the registry pointer by the watch (a
    /// poll, or a file notification), which shows it alive.
    pub model_pointer_reads: IntCounter,
    /// `driftwood_model_auto_rollbacks_total{outcome}`: automatic rollbacks `rolled_back`, or
    /// `failed` (the pointer could not be moved).
    pub auto_rollbacks: IntCounterVec,
    /// `driftwood_shadow_predictions_total{agreement}`: records scored by the shadow
    /// candidate too, its label `agree`ing with the serving model's or not.
    pub shadow_predictions: IntCounterVec,
    /// `driftwood_shadow_confidence_delta`: the candidate's confidence minus the serving
    /// model's.
    pub shadow_confidence_delta: Histogram,
    /// `driftwood_shadow_confusion_total{serving,candidate}`: shadowed records by the pair
    /// of labels predicted.
    pub shadow_confusion: IntCounterVec,
    /// `driftwood_rest_requests_total{status}`: REST twin requests by response status.
    pub rest_requests: IntCounterVec,
    /// `driftwood_canary_share{name,version}`: the share of the keys a rollout's candidate
    /// serves here (absent when none runs).
    pub canary_share: GaugeVec,
    /// `driftwood_rollout_decisions_total{name,decision}`: rollout decisions this instance
    /// made, `advance`, `promote`, `roll_back`, or `not_carried_out` (the registry refused:
    /// another instance moved the rollout first).
    pub rollout_decisions: IntCounterVec,
}

impl ServingMetrics {
    /// Creates and registers them.
    pub(super) fn new(r: &Registrar<'_>) -> Self {
        ServingMetrics {
            model_info: r.gauge_vec(
                "driftwood_model_info",
                "The model serving (always 1).",
                &["name", "version"],
            ),
            model_reloads: r.labelled_counters(
                "driftwood_model_reloads_total",
                "Versions the registry pointer named while running: loaded or refused.",
                "outcome",
                &["loaded", "refused"],
            ),
            model_pointer_reads: r.counter(
                "driftwood_model_pointer_reads_total",
                "Reads of the registry pointer by the model watch.",
            ),
            auto_rollbacks: r.labelled_counters(
                "driftwood_model_auto_rollbacks_total",
                "Promoted versions rolled back automatically (rolled_back), or not (failed).",
                "outcome",
                &["rolled_back", "failed"],
            ),
            shadow_predictions: r.labelled_counters(
                "driftwood_shadow_predictions_total",
                "Records the shadow candidate scored too, by agreement with the serving model.",
                "agreement",
                &["agree", "disagree"],
            ),
            shadow_confidence_delta: r.histogram(
                "driftwood_shadow_confidence_delta",
                "The shadow candidate's confidence minus the serving model's.",
                vec![-1.0, -0.5, -0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2, 0.5, 1.0],
            ),
            shadow_confusion: r.counter_vec(
                "driftwood_shadow_confusion_total",
                "Shadowed records by serving and candidate label.",
                &["serving", "candidate"],
            ),
            rest_requests: r.counter_vec(
                "driftwood_rest_requests_total",
                "REST twin requests (POST /v1/predict), by response status.",
                &["status"],
            ),
            canary_share: r.float_gauge_vec(
                "driftwood_canary_share",
                "The share of the keys a rollout's candidate version serves.",
                &["name", "version"],
            ),
            rollout_decisions: r.counter_vec(
                "driftwood_rollout_decisions_total",
                "Rollout decisions this instance made, by decision.",
                &["name", "decision"],
            ),
        }
    }
}

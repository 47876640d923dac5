//! Every Prometheus metric driftwood exports, in one registry per service instance (so
//! several instances can live in one test process).

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

mod drift;

pub use drift::DriftMetrics;

/// The service's metrics. Cheap to clone handles; all share one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
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
    /// `driftwood_explanations_total`: predictions published with an explanation.
    pub explanations: IntCounter,
    /// `driftwood_rest_requests_total{status}`: REST twin requests by response status.
    pub rest_requests: IntCounterVec,
    /// `driftwood_consumer_lag{topic,partition}`: messages behind the partition's end, from
    /// librdkafka statistics.
    pub consumer_lag: IntGaugeVec,
    /// `driftwood_rebalances_total{kind}`: partition assignments and revocations.
    pub rebalances: IntCounterVec,
    /// `driftwood_transactions_total{outcome}`: exactly-once transactions `committed` or
    /// `aborted`.
    pub transactions: IntCounterVec,
    /// `driftwood_ready`: 1 while `/ready` answers 200 (set at each scrape), so that alerts
    /// can count ready replicas.
    pub ready: IntGauge,
    /// `driftwood_assigned_partitions`: input partitions this instance holds.
    pub assigned_partitions: IntGauge,
    /// `driftwood_delivery_retries_total`: outputs re-sent after a failed delivery.
    pub delivery_retries: IntCounter,
    /// `driftwood_delivery_errors_total{error}`: failed deliveries by librdkafka error code.
    pub delivery_errors: IntCounterVec,
    /// `driftwood_in_flight_records`: records sent but not yet acknowledged.
    pub in_flight: IntGauge,
    /// `driftwood_fetch_paused`: 1 while fetching is paused for back-pressure.
    pub fetch_paused: IntGauge,
    /// `driftwood_fetch_pauses_total`: times fetching paused for back-pressure.
    pub fetch_pauses: IntCounter,
    /// The drift metrics (`driftwood_feature_psi`, `driftwood_drift_*`, …).
    pub drift: DriftMetrics,
    /// `driftwood_model_records_total{model,version,outcome}`: records each model version
    /// `scored` or could not (`dead_lettered`), counted when sent (routing shows here).
    pub model_records: IntCounterVec,
    /// `driftwood_drift_reports_total`: drift reports acknowledged by the broker.
    pub drift_reports: IntCounter,
    /// `driftwood_schema_registry_requests_total{outcome}`: writer schemas asked for by id:
    /// `found`, `unknown`, `unavailable`, `refused`.
    pub registry_requests: IntCounterVec,
    /// `driftwood_schema_held_partitions`: partitions paused at a record whose writer schema
    /// the registry could not be asked for yet.
    pub held_partitions: IntGauge,
}

/// Registers a metric and hands it back. Names are fixed in this file, so a failure is a
/// programming error.
fn register<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> M {
    let metric = metric.expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

impl Metrics {
    /// Creates and registers all metrics, plus process metrics (`process_*`).
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntCounterVec::new(Opts::new(name, help), labels))
        };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntGaugeVec::new(Opts::new(name, help), labels))
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            register(
                &registry,
                Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)),
            )
        };
        let records = counter_vec(
            "driftwood_records_total",
            "Input records whose output was acknowledged by the broker, by outcome.",
            &["outcome"],
        );
        let dead_letters = counter_vec(
            "driftwood_dead_letters_total",
            "Records sent to the dead-letter topic, by error kind.",
            &["kind"],
        );
        let scoring_seconds = histogram(
            "driftwood_scoring_duration_seconds",
            "Time to decode and score one record.",
            prometheus::exponential_buckets(1e-6, 2.0, 16).expect("valid buckets"),
        );
        let confidence = histogram(
            "driftwood_prediction_confidence",
            "Vote share of the predicted class.",
            vec![0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0],
        );
        let predictions = counter_vec(
            "driftwood_predictions_total",
            "Predictions by predicted label.",
            &["label"],
        );
        let labeled = counter_vec(
            "driftwood_labeled_predictions_total",
            "Predictions for records with a ground-truth label, by correctness.",
            &["outcome"],
        );
        let model_info = gauge_vec(
            "driftwood_model_info",
            "The model serving (always 1).",
            &["name", "version"],
        );
        let model_reloads = counter_vec(
            "driftwood_model_reloads_total",
            "Versions the registry pointer named while running: loaded or refused.",
            &["outcome"],
        );
        let shadow_predictions = counter_vec(
            "driftwood_shadow_predictions_total",
            "Records the shadow candidate scored too, by agreement with the serving model.",
            &["agreement"],
        );
        let shadow_confidence_delta = histogram(
            "driftwood_shadow_confidence_delta",
            "The shadow candidate's confidence minus the serving model's.",
            vec![-1.0, -0.5, -0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2, 0.5, 1.0],
        );
        let shadow_confusion = counter_vec(
            "driftwood_shadow_confusion_total",
            "Shadowed records by serving and candidate label.",
            &["serving", "candidate"],
        );
        let model_pointer_reads = register(
            &registry,
            IntCounter::new(
                "driftwood_model_pointer_reads_total",
                "Reads of the registry pointer by the model watch.",
            ),
        );
        let auto_rollbacks = counter_vec(
            "driftwood_model_auto_rollbacks_total",
            "Promoted versions rolled back automatically (rolled_back), or not (failed).",
            &["outcome"],
        );
        let explanations = register(
            &registry,
            IntCounter::new(
                "driftwood_explanations_total",
                "Predictions published with an explanation.",
            ),
        );
        let rest_requests = counter_vec(
            "driftwood_rest_requests_total",
            "REST twin requests (POST /v1/predict), by response status.",
            &["status"],
        );
        let consumer_lag = gauge_vec(
            "driftwood_consumer_lag",
            "Messages between the consumer position and the partition end.",
            &["topic", "partition"],
        );
        let rebalances = counter_vec(
            "driftwood_rebalances_total",
            "Consumer group rebalances seen, by kind (assign, revoke).",
            &["kind"],
        );
        let transactions = counter_vec(
            "driftwood_transactions_total",
            "Exactly-once transactions, by outcome (committed, aborted).",
            &["outcome"],
        );
        let ready = register(
            &registry,
            IntGauge::new(
                "driftwood_ready",
                "1 while /ready answers 200 (set at each scrape).",
            ),
        );
        let assigned_partitions = register(
            &registry,
            IntGauge::new(
                "driftwood_assigned_partitions",
                "Input partitions this instance holds.",
            ),
        );
        let delivery_retries = register(
            &registry,
            IntCounter::new(
                "driftwood_delivery_retries_total",
                "Outputs re-sent after the producer gave up on a delivery.",
            ),
        );
        let delivery_errors = counter_vec(
            "driftwood_delivery_errors_total",
            "Failed output deliveries, by librdkafka error code.",
            &["error"],
        );
        let in_flight = register(
            &registry,
            IntGauge::new(
                "driftwood_in_flight_records",
                "Records sent to the broker and not yet acknowledged.",
            ),
        );
        let fetch_paused = register(
            &registry,
            IntGauge::new(
                "driftwood_fetch_paused",
                "1 while fetching is paused because too many outputs wait for acknowledgement.",
            ),
        );
        let fetch_pauses = register(
            &registry,
            IntCounter::new(
                "driftwood_fetch_pauses_total",
                "Times fetching paused because too many outputs waited for acknowledgement.",
            ),
        );
        let registry_requests = counter_vec(
            "driftwood_schema_registry_requests_total",
            "Writer schemas asked of the schema registry by id, by outcome.",
            &["outcome"],
        );
        let held_partitions = register(
            &registry,
            IntGauge::new(
                "driftwood_schema_held_partitions",
                "Partitions paused at a record whose writer schema the registry could not be asked for yet.",
            ),
        );
        let model_records = counter_vec(
            "driftwood_model_records_total",
            "Records each model version scored or dead-lettered, counted when sent.",
            &["model", "version", "outcome"],
        );
        let drift_reports = register(
            &registry,
            IntCounter::new(
                "driftwood_drift_reports_total",
                "Drift reports acknowledged by the broker.",
            ),
        );
        let drift = DriftMetrics::new(&registry);
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("unique metric");

        // Pre-create label values so dashboards see zeros rather than gaps.
        for outcome in ["scored", "dead_lettered"] {
            records.with_label_values(&[outcome]);
        }
        for kind in ["assign", "revoke"] {
            rebalances.with_label_values(&[kind]);
        }
        for outcome in ["loaded", "refused"] {
            model_reloads.with_label_values(&[outcome]);
        }
        for agreement in ["agree", "disagree"] {
            shadow_predictions.with_label_values(&[agreement]);
        }
        for outcome in ["rolled_back", "failed"] {
            auto_rollbacks.with_label_values(&[outcome]);
        }
        for outcome in ["committed", "aborted"] {
            transactions.with_label_values(&[outcome]);
        }
        Metrics {
            registry,
            records,
            dead_letters,
            scoring_seconds,
            confidence,
            predictions,
            labeled,
            model_info,
            model_reloads,
            model_pointer_reads,
            auto_rollbacks,
            shadow_predictions,
            shadow_confidence_delta,
            shadow_confusion,
            explanations,
            rest_requests,
            consumer_lag,
            rebalances,
            transactions,
            ready,
            assigned_partitions,
            delivery_retries,
            delivery_errors,
            in_flight,
            fetch_paused,
            fetch_pauses,
            drift,
            model_records,
            drift_reports,
            registry_requests,
            held_partitions,
        }
    }

    /// Records scored and acknowledged so far.
    pub fn scored(&self) -> u64 {
        self.records.with_label_values(&["scored"]).get()
    }

    /// Records dead-lettered and acknowledged so far.
    pub fn dead_lettered(&self) -> u64 {
        self.records.with_label_values(&["dead_lettered"]).get()
    }

    /// Input records handled so far, whatever the outcome.
    pub fn processed(&self) -> u64 {
        ["scored", "dead_lettered", "passed_through"]
            .iter()
            .map(|o| self.records.with_label_values(&[o]).get())
            .sum()
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("exposition is UTF-8")
    }
}

/// Counter handles for each output outcome, resolved once so that counting an acknowledged
/// record hashes no label values and allocates nothing.
pub struct OutcomeCounters {
    scored: IntCounter,
    dead_lettered: IntCounter,
    passed_through: IntCounter,
    correct: IntCounter,
    incorrect: IntCounter,
    dead_letter_kinds: Vec<(&'static str, IntCounter)>,
    /// Predictions per label, added on first sight of a label (there are few).
    by_label: std::sync::Mutex<Vec<(i32, IntCounter)>>,
    metrics: Metrics,
}

impl OutcomeCounters {
    /// Resolves the handles of `metrics`, with a dead-letter counter for each of the kinds
    /// of failure (zeros on dashboards from the start).
    pub fn new(metrics: &Metrics, dead_letter_kinds: &[&'static str]) -> Self {
        OutcomeCounters {
            scored: metrics.records.with_label_values(&["scored"]),
            dead_lettered: metrics.records.with_label_values(&["dead_lettered"]),
            passed_through: metrics.records.with_label_values(&["passed_through"]),
            correct: metrics.labeled.with_label_values(&["correct"]),
            incorrect: metrics.labeled.with_label_values(&["incorrect"]),
            dead_letter_kinds: (dead_letter_kinds.iter())
                .map(|&k| (k, metrics.dead_letters.with_label_values(&[k])))
                .collect(),
            by_label: std::sync::Mutex::default(),
            metrics: metrics.clone(),
        }
    }

    /// The metrics these handles belong to.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A regressor's prediction acknowledged.
    pub fn valued(&self) {
        self.scored.inc();
    }

    /// A classifier's prediction acknowledged.
    pub fn classified(&self, label: i32, confidence: f64, correct: Option<bool>) {
        self.scored.inc();
        {
            let mut by_label = self.by_label.lock().expect("label counters");
            match by_label.iter().find(|(l, _)| *l == label) {
                Some((_, counter)) => counter.inc(),
                None => {
                    let counter = self
                        .metrics
                        .predictions
                        .with_label_values(&[&label.to_string()]);
                    counter.inc();
                    by_label.push((label, counter));
                }
            }
        }
        self.metrics.confidence.observe(confidence);
        match correct {
            Some(true) => self.correct.inc(),
            Some(false) => self.incorrect.inc(),
            None => {}
        }
    }

    /// A dead letter acknowledged.
    pub fn dead_lettered(&self, kind: &str) {
        self.dead_lettered.inc();
        match self.dead_letter_kinds.iter().find(|(k, _)| *k == kind) {
            Some((_, counter)) => counter.inc(),
            None => self.metrics.dead_letters.with_label_values(&[kind]).inc(),
        }
    }

    /// A pass-through output acknowledged.
    pub fn passed_through(&self) {
        self.passed_through.inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

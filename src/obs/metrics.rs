//! Every Prometheus metric driftwood exports, in one registry per service instance (so
//! several instances can live in one test process).

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

mod drift;
mod labels;
mod outputs;
mod serving;
mod transport;

pub use drift::DriftMetrics;
pub use labels::LabelMetrics;
pub use outputs::OutputMetrics;
pub use serving::ServingMetrics;
pub use transport::{LoopPhase, TransportMetrics};

/// The service's metrics, by concern. Cheap to clone handles; all share one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// What became of the input records.
    pub outputs: OutputMetrics,
    /// Which model serves and how it got there.
    pub serving: ServingMetrics,
    /// The Kafka side.
    pub transport: TransportMetrics,
    /// The drift metrics (`driftwood_feature_psi`, `driftwood_drift_*`, …).
    pub drift: DriftMetrics,
    /// The delayed-labels metrics (`driftwood_labels_total`, `driftwood_realized_*`, …).
    pub labels: LabelMetrics,
    /// `driftwood_ready`: 1 while `/ready` answers 200 (set at each scrape), so that alerts
    /// can count ready replicas.
    pub ready: IntGauge,
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

/// Makes metrics and registers them in one registry.
struct Registrar<'a>(&'a Registry);

impl Registrar<'_> {
    fn counter(&self, name: &str, help: &str) -> IntCounter {
        register(self.0, IntCounter::new(name, help))
    }

    fn gauge(&self, name: &str, help: &str) -> IntGauge {
        register(self.0, IntGauge::new(name, help))
    }

    fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        register(self.0, IntCounterVec::new(Opts::new(name, help), labels))
    }

    /// Counters by one label whose `values` are created at once, so that dashboards see
    /// zeros rather than gaps.
    fn labelled_counters(
        &self,
        name: &str,
        help: &str,
        label: &str,
        values: &[&str],
    ) -> IntCounterVec {
        let counters = self.counter_vec(name, help, &[label]);
        for value in values {
            counters.with_label_values(&[value]);
        }
        counters
    }

    fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        register(self.0, IntGaugeVec::new(Opts::new(name, help), labels))
    }

    fn float_gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> prometheus::GaugeVec {
        register(
            self.0,
            prometheus::GaugeVec::new(Opts::new(name, help), labels),
        )
    }

    fn histogram(&self, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
        register(
            self.0,
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)),
        )
    }
}

impl Metrics {
    /// Creates and registers all metrics, plus process metrics (`process_*`).
    pub fn new() -> Self {
        let registry = Registry::new();
        let r = Registrar(&registry);
        let metrics = Metrics {
            outputs: OutputMetrics::new(&r),
            serving: ServingMetrics::new(&r),
            transport: TransportMetrics::new(&r),
            drift: DriftMetrics::new(&registry),
            labels: LabelMetrics::new(&registry),
            ready: r.gauge(
                "driftwood_ready",
                "1 while /ready answers 200 (set at each scrape).",
            ),
            registry: registry.clone(),
        };
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("unique metric");
        metrics
    }

    /// Records scored and acknowledged so far.
    pub fn scored(&self) -> u64 {
        self.outputs.records.with_label_values(&["scored"]).get()
    }

    /// Records dead-lettered and acknowledged so far.
    pub fn dead_lettered(&self) -> u64 {
        self.outputs
            .records
            .with_label_values(&["dead_lettered"])
            .get()
    }

    /// Input records handled so far, whatever the outcome.
    pub fn processed(&self) -> u64 {
        ["scored", "dead_lettered", "passed_through"]
            .iter()
            .map(|o| self.outputs.records.with_label_values(&[o]).get())
            .sum()
    }

    /// Every metric family, as the registry gathers them (for the status page).
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
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
            scored: metrics.outputs.records.with_label_values(&["scored"]),
            dead_lettered: metrics
                .outputs
                .records
                .with_label_values(&["dead_lettered"]),
            passed_through: metrics
                .outputs
                .records
                .with_label_values(&["passed_through"]),
            correct: metrics.outputs.labeled.with_label_values(&["correct"]),
            incorrect: metrics.outputs.labeled.with_label_values(&["incorrect"]),
            dead_letter_kinds: (dead_letter_kinds.iter())
                .map(|&k| (k, metrics.outputs.dead_letters.with_label_values(&[k])))
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
                        .outputs
                        .predictions
                        .with_label_values(&[&label.to_string()]);
                    counter.inc();
                    by_label.push((label, counter));
                }
            }
        }
        self.metrics.outputs.confidence.observe(confidence);
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
            None => self
                .metrics
                .outputs
                .dead_letters
                .with_label_values(&[kind])
                .inc(),
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

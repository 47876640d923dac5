//! The status page (`/`) and what it reads (`/status.json`): the serving model and version,
//! records by outcome (the page turns two readings into records per second), the consumer
//! lag, each model's last drift window (its flagged features, the shift it could detect, the
//! accuracy expected without labels beside the realized one) and each version's realized
//! performance from delayed labels. All of it read from the metrics the instance keeps
//! anyway, so the page adds no state and changes nothing. No build step, no external assets:
//! one HTML file with its script and style inline (`status.html`).

use std::collections::BTreeMap;

use prometheus::proto::{MetricFamily, MetricType};
use serde::Serialize;

use crate::obs::health::Health;
use crate::obs::metrics::Metrics;

/// The page itself.
pub const PAGE: &str = include_str!("status.html");

/// What `/status.json` says.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Status {
    /// Whether `/ready` would answer 200.
    pub ready: bool,
    /// Model versions serving (`driftwood_model_info`).
    pub serving: Vec<Serving>,
    /// Input records by outcome so far (`driftwood_records_total`).
    pub records: BTreeMap<String, f64>,
    /// Messages behind, over the assigned partitions (`driftwood_consumer_lag`).
    pub lag: f64,
    /// Each model's last drift window.
    pub drift: Vec<ModelDrift>,
    /// Each version's realized performance from delayed labels, by metric.
    pub realized: Vec<Realized>,
    /// Label records by outcome (`driftwood_labels_total`).
    pub labels: BTreeMap<String, f64>,
}

/// A model version serving.
#[derive(Debug, Serialize, PartialEq)]
pub struct Serving {
    /// The model.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// A model's last drift window, as its gauges show it.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct ModelDrift {
    /// The model.
    pub model: String,
    /// Features flagged `warn` (1) or `alert` (2), most severe first.
    pub flagged: Vec<(String, f64)>,
    /// The smallest mean shift (sd) the window could detect, over its features.
    pub detectable_shift: Option<f64>,
    /// Accuracy expected without labels.
    pub expected_accuracy: Option<f64>,
    /// Accuracy over the window's records that carried a label.
    pub realized_accuracy: Option<f64>,
    /// Whether the window left the reference's support.
    pub unreliable: bool,
}

/// One version's realized figures from delayed labels.
#[derive(Debug, Serialize, PartialEq)]
pub struct Realized {
    /// The model.
    pub model: String,
    /// Its version.
    pub version: String,
    /// Figure by metric (accuracy, expected_accuracy, f1, …).
    pub figures: BTreeMap<String, f64>,
}

/// The status now.
pub fn status(metrics: &Metrics, health: &Health) -> Status {
    let families = metrics.gather();
    let series = |name: &str| samples(&families, name);
    let serving = (series("driftwood_model_info").into_iter())
        .filter(|(_, v)| *v > 0.0)
        .map(|(l, _)| Serving {
            name: label(&l, "name"),
            version: label(&l, "version"),
        })
        .collect();
    let by = |name: &str, key: &str| -> BTreeMap<String, f64> {
        (series(name).into_iter())
            .map(|(l, v)| (label(&l, key), v))
            .collect()
    };
    Status {
        ready: health.readiness().ready,
        serving,
        records: by("driftwood_records_total", "outcome"),
        lag: series("driftwood_consumer_lag")
            .iter()
            .map(|(_, v)| v)
            .sum(),
        drift: drift(&families),
        realized: realized(&families),
        labels: by("driftwood_labels_total", "outcome"),
    }
}

/// Each model's last drift window, from the drift gauges.
fn drift(families: &[MetricFamily]) -> Vec<ModelDrift> {
    let mut models: BTreeMap<String, ModelDrift> = BTreeMap::new();
    for (l, v) in samples(families, "driftwood_drift_feature_flag") {
        if v > 0.0 {
            of(&mut models, &l).flagged.push((label(&l, "feature"), v));
        }
    }
    for (l, v) in samples(families, "driftwood_drift_detectable_shift") {
        let shift = &mut of(&mut models, &l).detectable_shift;
        *shift = Some(shift.map_or(v, |d| d.min(v)));
    }
    for (l, v) in samples(families, "driftwood_window_estimated") {
        if label(&l, "metric") == "accuracy" {
            of(&mut models, &l).expected_accuracy = Some(v);
        }
    }
    for (l, v) in samples(families, "driftwood_window_accuracy") {
        of(&mut models, &l).realized_accuracy = Some(v);
    }
    for (l, v) in samples(families, "driftwood_window_estimate_unreliable") {
        of(&mut models, &l).unreliable |= v > 0.0;
    }
    let mut out: Vec<ModelDrift> = models.into_values().collect();
    for m in &mut out {
        m.flagged
            .sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    }
    out
}

/// The drift of the model `labels` name.
fn of<'a>(models: &'a mut BTreeMap<String, ModelDrift>, labels: &Labels) -> &'a mut ModelDrift {
    let model = label(labels, "model");
    models.entry(model.clone()).or_insert_with(|| ModelDrift {
        model,
        ..ModelDrift::default()
    })
}

/// Each version's realized figures from delayed labels.
fn realized(families: &[MetricFamily]) -> Vec<Realized> {
    let mut versions: BTreeMap<(String, String), BTreeMap<String, f64>> = BTreeMap::new();
    for (l, v) in samples(families, "driftwood_realized_performance") {
        let key = (label(&l, "model"), label(&l, "version"));
        versions
            .entry(key)
            .or_default()
            .insert(label(&l, "metric"), v);
    }
    (versions.into_iter())
        .map(|((model, version), figures)| Realized {
            model,
            version,
            figures,
        })
        .collect()
}

/// A sample's labels.
type Labels = Vec<(String, String)>;

/// The samples of the family `name`: labels and value (counter or gauge).
fn samples(families: &[MetricFamily], name: &str) -> Vec<(Labels, f64)> {
    let Some(family) = families.iter().find(|f| f.name() == name) else {
        return Vec::new();
    };
    (family.get_metric().iter())
        .map(|m| {
            let labels = (m.get_label().iter())
                .map(|l| (l.name().to_owned(), l.value().to_owned()))
                .collect();
            let value = match family.get_field_type() {
                MetricType::COUNTER => m.get_counter().get_value(),
                _ => m.get_gauge().get_value(),
            };
            (labels, value)
        })
        .collect()
}

fn label(labels: &Labels, name: &str) -> String {
    (labels.iter())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_reads_the_gauges_each_part_of_the_page_shows() {
        let metrics = Metrics::new();
        let serving = &metrics.serving.model_info;
        serving.with_label_values(&["forest", "2"]).set(1);
        serving.with_label_values(&["forest", "1"]).set(0);
        metrics
            .outputs
            .records
            .with_label_values(&["scored"])
            .inc_by(40);
        let drift = &metrics.drift;
        let flag = |feature: &str, level: f64| {
            drift
                .feature_flag
                .with_label_values(&["forest", feature])
                .set(level)
        };
        flag("a", 1.0);
        flag("b", 2.0);
        flag("c", 0.0);
        for (feature, shift) in [("a", 0.4), ("b", 0.3)] {
            (drift
                .detectable_shift
                .with_label_values(&["forest", feature]))
            .set(shift);
        }
        let performance = &drift.performance;
        let estimated = ["forest", "2", "accuracy"];
        performance.estimated.with_label_values(&estimated).set(0.9);
        let realized = &metrics.labels.realized;
        realized
            .with_label_values(&["forest", "2", "accuracy"])
            .set(0.8);
        metrics
            .labels
            .labels
            .with_label_values(&["joined"])
            .inc_by(5);

        let s = status(&metrics, &Health::default());
        let serving = [("forest", "2")].map(|(name, version)| Serving {
            name: name.into(),
            version: version.into(),
        });
        assert_eq!(s.serving, serving, "only the version serving");
        assert_eq!(s.records["scored"], 40.0);
        let d = &s.drift[0];
        assert_eq!(d.flagged, [("b".to_string(), 2.0), ("a".to_string(), 1.0)]);
        assert_eq!(
            (d.detectable_shift, d.expected_accuracy),
            (Some(0.3), Some(0.9))
        );
        assert_eq!(s.realized[0].figures["accuracy"], 0.8);
        assert_eq!(s.labels["joined"], 5.0);
    }
}

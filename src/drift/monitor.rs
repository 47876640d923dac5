//! The pipeline's side of drift detection: counts every record into a tumbling window,
//! closes it by record count or age, and hands back the report (the scorer publishes it)
//! after updating the drift metrics.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;

use super::window::{DriftReport, DriftThresholds, DriftWindow, Flag, WindowOrigin};
use crate::codec::epoch_millis;
use crate::model::{Model, Predicted};
use crate::ops::metrics::Metrics;

/// When windows close.
#[derive(Debug, Clone)]
pub struct DriftSettings {
    /// A window closes after this many records (scored and invalid).
    pub window_records: i64,
    /// A window with records closes after this long, however few it has.
    pub window_age: Duration,
    /// PSI levels of the flags.
    pub thresholds: DriftThresholds,
    /// This instance's id in the reports.
    pub instance_id: String,
}

/// Counts records into windows and computes a report per window.
pub struct DriftMonitor {
    model: Arc<Model>,
    settings: DriftSettings,
    window: DriftWindow,
    partitions: BTreeSet<i32>,
    opened: Instant,
    opened_at_ms: i64,
    metrics: Metrics,
}

impl DriftMonitor {
    /// A monitor with an empty window.
    pub fn new(model: Arc<Model>, settings: DriftSettings, metrics: Metrics) -> Self {
        // Zeros rather than gaps on dashboards, from the model's first window on.
        for level in ["warn", "alert"] {
            (metrics.drift_alerts).with_label_values(&[&model.metadata.name, level]);
        }
        DriftMonitor {
            window: DriftWindow::new(&model.metadata),
            model,
            settings,
            partitions: BTreeSet::new(),
            opened: Instant::now(),
            opened_at_ms: epoch_millis(),
            metrics,
        }
    }

    /// Counts a scored record.
    pub fn observe(
        &mut self,
        partition: i32,
        row: &[f64],
        predicted: Predicted,
        actual: Option<i32>,
    ) {
        self.partitions.insert(partition);
        self.window.observe(row, predicted, actual);
    }

    /// Counts a record that could not be scored.
    pub fn observe_invalid(&mut self, partition: i32) {
        self.partitions.insert(partition);
        self.window.observe_invalid();
    }

    /// Closes the window if it is full or old enough; `assigned` are the partitions the
    /// instance owns now.
    pub fn close_if_due(&mut self, assigned: &[i32]) -> Option<DriftReport> {
        let full = self.window.len() >= self.settings.window_records;
        let old = !self.window.is_empty() && self.opened.elapsed() >= self.settings.window_age;
        if full || old {
            self.close(assigned)
        } else {
            None
        }
    }

    /// Closes the window now (at shutdown), unless it is empty.
    pub fn close(&mut self, assigned: &[i32]) -> Option<DriftReport> {
        if self.window.is_empty() {
            return None;
        }
        let now = epoch_millis();
        // Assigned now, plus any partition the window counted records from (one revoked
        // since still contributed).
        self.partitions.extend(assigned);
        let origin = WindowOrigin {
            instance_id: self.settings.instance_id.clone(),
            partitions: std::mem::take(&mut self.partitions).into_iter().collect(),
            window_start: self.opened_at_ms,
            window_end: now,
        };
        let report = DriftReport::compute(
            &self.model.metadata,
            &self.settings.thresholds,
            origin,
            self.window.take(),
        );
        self.opened = Instant::now();
        self.opened_at_ms = now;
        self.record_metrics(&report);
        Some(report)
    }

    fn record_metrics(&self, report: &DriftReport) {
        let m = &self.metrics;
        let model = self.model.metadata.name.as_str();
        for f in &report.features {
            m.feature_psi
                .with_label_values(&[model, &f.name])
                .set(f.divergence.psi);
        }
        (m.prediction_psi.with_label_values(&[model])).set(report.prediction.psi);
        if let Some(accuracy) = report.accuracy {
            m.window_accuracy.with_label_values(&[model]).set(accuracy);
        }
        if report.flag != Flag::Ok {
            let level = if report.flag == Flag::Alert {
                "alert"
            } else {
                "warn"
            };
            m.drift_alerts.with_label_values(&[model, level]).inc();
            let flagged: Vec<&str> = report
                .features
                .iter()
                .filter(|f| f.flag != Flag::Ok)
                .map(|f| f.name.as_str())
                .collect();
            info!(flag = level, features = ?flagged, prediction_psi = report.prediction.psi, records = report.counts.records, "drift detected");
        }
    }
}

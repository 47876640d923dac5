//! The pipeline's side of drift detection: counts every record into a tumbling window,
//! closes it by record count or age, publishes the report and updates the drift metrics.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::{info, warn};

use super::window::{DriftReport, DriftThresholds, DriftWindow, Flag, WindowOrigin};
use crate::codec::encode::AvroCodec;
use crate::kafka::sink::{Outcome, Pending, Sink};
use crate::model::Model;
use crate::ops::metrics::Metrics;

/// When windows close and where their reports go.
#[derive(Debug, Clone)]
pub struct DriftSettings {
    /// Topic the Avro reports are written to, keyed by instance id.
    pub topic: String,
    /// A window closes after this many records (scored and invalid).
    pub window_records: i64,
    /// A window with records closes after this long, however few it has.
    pub window_age: Duration,
    /// PSI levels of the flags.
    pub thresholds: DriftThresholds,
    /// This instance's id in the reports.
    pub instance_id: String,
}

/// Counts records into windows and publishes a report per window.
pub struct DriftMonitor {
    model: Arc<Model>,
    settings: DriftSettings,
    window: DriftWindow,
    partitions: BTreeSet<i32>,
    opened: Instant,
    opened_at_ms: i64,
    codec: AvroCodec,
    encoded: Vec<u8>,
    metrics: Metrics,
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl DriftMonitor {
    /// A monitor with an empty window.
    pub fn new(model: Arc<Model>, settings: DriftSettings, metrics: Metrics) -> Self {
        DriftMonitor {
            window: DriftWindow::new(&model.metadata),
            model,
            settings,
            partitions: BTreeSet::new(),
            opened: Instant::now(),
            opened_at_ms: now_millis(),
            codec: AvroCodec::drift_reports(),
            encoded: Vec::new(),
            metrics,
        }
    }

    /// Counts a scored record.
    pub fn observe(
        &mut self,
        partition: i32,
        row: &[f64],
        class_index: usize,
        confidence: f64,
        actual: Option<i32>,
    ) {
        self.partitions.insert(partition);
        self.window.observe(row, class_index, confidence, actual);
    }

    /// Counts a record that could not be scored.
    pub fn observe_invalid(&mut self, partition: i32) {
        self.partitions.insert(partition);
        self.window.observe_invalid();
    }

    /// Closes and publishes the window if it is full or old enough.
    pub fn close_if_due(&mut self, sink: &Sink) {
        let full = self.window.len() >= self.settings.window_records;
        let old = !self.window.is_empty() && self.opened.elapsed() >= self.settings.window_age;
        if full || old {
            self.close(sink);
        }
    }

    /// Closes and publishes the window now (at shutdown), unless it is empty.
    pub fn close(&mut self, sink: &Sink) {
        if self.window.is_empty() {
            return;
        }
        let now = now_millis();
        // Assigned now, plus any partition the window counted records from (one revoked
        // since still contributed).
        self.partitions.extend(sink.tracker().assigned());
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
        self.encoded.clear();
        if let Err(e) = self.codec.encode(&report, &mut self.encoded) {
            warn!(error = %e, "cannot encode a drift report; dropping it");
            return;
        }
        sink.send(
            &self.settings.topic,
            Some(self.settings.instance_id.as_bytes()),
            Some(&self.encoded),
            None,
            Pending {
                partition: -1,
                offset: -1,
                outcome: Outcome::DriftReport,
                attempt: 0,
            },
        );
    }

    fn record_metrics(&self, report: &DriftReport) {
        let m = &self.metrics;
        for f in &report.features {
            m.feature_psi
                .with_label_values(&[&f.name])
                .set(f.divergence.psi);
        }
        m.prediction_psi.set(report.prediction.psi);
        if let Some(accuracy) = report.accuracy {
            m.window_accuracy.set(accuracy);
        }
        if report.flag != Flag::Ok {
            let level = if report.flag == Flag::Alert {
                "alert"
            } else {
                "warn"
            };
            m.drift_alerts.with_label_values(&[level]).inc();
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

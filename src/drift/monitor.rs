//! The pipeline's side of drift detection: counts every record into a tumbling window,
//! closes it by record count (once it is old enough) or age, feeds the sequential alarm, and
//! hands back the report (the scorer publishes it) after updating the drift metrics.
//!
//! The scorer notes a batch's records as it sends their outputs and the monitor counts them
//! in one pass at the batch's end (`count_batch`), checking a window's age once a batch
//! rather than reading the clock for every record. The windows, their records and their
//! order stay the same. (Counting in one pass was also meant to keep a window's tables in
//! cache; `driftwood bench` could not tell that apart from its noise, docs/drift.md#cost.)

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use prometheus::Gauge;
use tracing::{info, warn};

use super::compute::Inputs;
use super::plan::{DriftSettings, MIN_TESTED_RECORDS, Plan};
use super::report::{DriftReport, Flag, WindowOrigin};
use super::sample::FeatureSample;
use super::sequential::Sequential;
use super::window::DriftWindow;
use crate::model::{Model, Predicted};
use crate::obs::epoch_millis;
use crate::obs::metrics::{DriftMetrics, Metrics};

/// Counts records into windows and computes a report per window.
pub struct DriftMonitor {
    model: Arc<Model>,
    settings: DriftSettings,
    plan: Plan,
    window: DriftWindow,
    sequential: Sequential,
    partitions: BTreeSet<i32>,
    /// The partition of the last record noted (records come in runs per partition).
    last_partition: Option<i32>,
    /// The batch's records, noted in order, not yet counted.
    noted: Vec<Noted>,
    /// Each feature's gauges, looked up once.
    gauges: Vec<FeatureGauges>,
    opened: Instant,
    opened_at_ms: i64,
    metrics: DriftMetrics,
}

impl DriftMonitor {
    /// A monitor with an empty window.
    pub fn new(model: Arc<Model>, settings: DriftSettings, metrics: Metrics) -> Self {
        let metrics = metrics.drift.clone();
        let name = &model.metadata.name;
        // Zeros rather than gaps on dashboards, from the model's first window on.
        for level in ["warn", "alert", "sequential"] {
            (metrics.alerts).with_label_values(&[name, level]);
        }
        if settings.window_records < MIN_TESTED_RECORDS {
            warn!(
                model = %name,
                window_records = settings.window_records,
                "drift windows of fewer than {MIN_TESTED_RECORDS} records are reported but not tested"
            );
        }
        let reference = model.drift_reference();
        let mut window = DriftWindow::new(reference, &model.metadata.classes);
        if let Some(target) = settings.sample_target(reference.rows) {
            window = window.sampling_features(FeatureSample::new(target, settings.window_min_age));
        }
        let gauges = (model.metadata.features.iter())
            .map(|f| FeatureGauges::new(&metrics, name, f))
            .collect();
        DriftMonitor {
            gauges,
            plan: Plan::new(&model.metadata, reference, &settings),
            window,
            sequential: Sequential::new(
                &model.metadata.features,
                model.metadata.classes.is_empty(),
            ),
            model,
            settings,
            partitions: BTreeSet::new(),
            last_partition: None,
            noted: Vec::new(),
            opened: Instant::now(),
            opened_at_ms: epoch_millis(),
            metrics,
        }
    }

    /// Notes a scored record: the `row`-th of the rows `count_batch` is given.
    pub fn note(&mut self, partition: i32, row: usize, predicted: Predicted, actual: Option<i32>) {
        if self.settings.enabled {
            let scored = Some((row, predicted, actual));
            self.noted.push(Noted { partition, scored });
        }
    }

    /// Notes a record that could not be scored.
    pub fn note_invalid(&mut self, partition: i32) {
        if self.settings.enabled {
            self.noted.push(Noted {
                partition,
                scored: None,
            });
        }
    }

    /// Counts the records noted since the last call, in order, with `rows` the batch's
    /// rows (row-major); a window that fills is closed (at the record that fills it, or with
    /// a minimum age at the end, once old enough), as is one grown old, and its report
    /// handed to `publish`.
    pub fn count_batch(
        &mut self,
        rows: &[f64],
        assigned: &[i32],
        mut publish: impl FnMut(DriftReport),
    ) {
        if self.noted.is_empty() && self.window.is_empty() {
            return;
        }
        let started = thread_cpu();
        let n = self.model.engine.n_features();
        let noted = std::mem::take(&mut self.noted);
        let mut scored = Vec::new();
        let mut rest = &noted[..];
        // Without a minimum age a window closes at the record that fills it; with one, at
        // the end of the first batch that finds it full and old enough (`close_if_due`).
        let exact = self.settings.window_min_age.is_zero();
        while let Some(first) = rest.first() {
            let room = if exact {
                (self.settings.window_records - self.window.len()).max(1) as usize
            } else {
                usize::MAX
            };
            let run = consecutive_rows(rest, room);
            // A record not scored is a run of its own.
            let taken = run.max(1);
            for record in &rest[..taken] {
                self.note_partition(record.partition);
            }
            match first.scored {
                Some((row, ..)) => {
                    let outcomes = rest[..run].iter().filter_map(|r| r.scored);
                    scored.clear();
                    scored.extend(outcomes.map(|(_, predicted, actual)| (predicted, actual)));
                    (self.window).observe_rows(&rows[row * n..(row + run) * n], &scored);
                }
                None => self.window.observe_invalid(),
            }
            rest = &rest[taken..];
            if exact && self.window.len() >= self.settings.window_records {
                publish(self.close(assigned).expect("a full window"));
            }
        }
        self.noted = noted;
        self.noted.clear();
        if let Some(report) = self.close_if_due(assigned) {
            publish(report);
        }
        if let (Some(started), Some(now)) = (started, thread_cpu()) {
            let cpu = now.saturating_sub(started).as_secs_f64();
            let model = self.model.metadata.name.as_str();
            self.metrics
                .cpu_seconds
                .with_label_values(&[model])
                .inc_by(cpu);
        }
    }

    /// Notes a record's partition, for the report's origin.
    fn note_partition(&mut self, partition: i32) {
        if self.last_partition != Some(partition) {
            self.partitions.insert(partition);
            self.last_partition = Some(partition);
        }
    }

    /// Closes the window if it is full and past its minimum age, or has records and is
    /// past its maximum; `assigned` are the partitions the instance owns now.
    pub fn close_if_due(&mut self, assigned: &[i32]) -> Option<DriftReport> {
        if self.window.is_empty() {
            return None;
        }
        let age = self.opened.elapsed();
        let full = self.window.holds(self.settings.window_records);
        if (full && age >= self.settings.window_min_age) || age >= self.settings.window_age {
            self.close(assigned)
        } else {
            // The sample (a fast stream's) follows the window's rate, for the next batch.
            self.window.pace(age);
            None
        }
    }

    /// Closes the window now (at shutdown), unless it is empty (as it always is with drift
    /// turned off).
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
            // (the next window notes its first record's partition again)
            window_start: self.opened_at_ms,
            window_end: now,
        };
        self.last_partition = None;
        let counts = self.window.take();
        let (metadata, reference) = (&self.model.metadata, self.model.drift_reference());
        let sequential = self.sequential.update(&counts, reference, &self.plan);
        let inputs = Inputs {
            metadata,
            reference,
            plan: &self.plan,
            sequential: &sequential,
        };
        let report = DriftReport::compute(&inputs, origin, counts);
        self.opened = Instant::now();
        self.opened_at_ms = now;
        self.record(&report);
        Some(report)
    }

    /// The window's metrics and log line.
    fn record(&self, report: &DriftReport) {
        let m = &self.metrics;
        let model = self.model.metadata.name.as_str();
        for (f, gauges) in report.features.iter().zip(&self.gauges) {
            gauges.psi.set(f.divergence.psi);
            gauges.sequential.set(f.sequential);
        }
        if self.model.metadata.classes.is_empty() {
            let level = self.sequential_output_level(report);
            m.sequential_level
                .with_label_values(&[model, "prediction"])
                .set(level);
        }
        (m.prediction_psi.with_label_values(&[model])).set(report.prediction.psi);
        let version = self.model.metadata.version.as_str();
        if let Some(accuracy) = report.accuracy {
            (m.performance.accuracy.with_label_values(&[model, version])).set(accuracy);
        }
        if let Some(e) = report.estimated {
            (m.performance
                .unreliable
                .with_label_values(&[model, version]))
            .set(f64::from(u8::from(e.unreliable)));
            for (metric, value) in [
                ("accuracy", e.accuracy),
                ("f1", e.f1),
                ("roc_auc", e.roc_auc),
            ] {
                if let Some(value) = value {
                    let labels = [model, version, metric];
                    (m.performance.estimated.with_label_values(&labels)).set(value);
                }
            }
        }
        if !report.sequential.is_empty() {
            m.alerts.with_label_values(&[model, "sequential"]).inc();
            info!(model, alarms = ?report.sequential, "sequential drift alarm: a persistent shift");
        }
        if report.untested.is_some() {
            return;
        }
        self.record_tests(report);
    }

    /// A regressor's value CUSUM's level: the last one the sequential alarm keeps.
    fn sequential_output_level(&self, report: &DriftReport) -> f64 {
        let alarmed = report.sequential.iter().any(|a| a.name == "prediction");
        let level = self
            .sequential
            .level(self.model.metadata.features.len(), &self.plan);
        if alarmed { level.max(1.0) } else { level }
    }

    fn record_tests(&self, report: &DriftReport) {
        let m = &self.metrics;
        let model = self.model.metadata.name.as_str();
        for (f, gauges) in report.features.iter().zip(&self.gauges) {
            gauges.flag.set(flag_value(f.flag));
            gauges.p_value.set(f.p_value);
            if let Some(shift) = f.detectable_shift {
                gauges.detectable_shift.set(shift);
            }
        }
        (m.flagged_pairs.with_label_values(&[model])).set(report.pairs.len() as f64);
        if let Some(v) = &report.vector {
            m.vector_distance
                .with_label_values(&[model])
                .set(v.distance);
        }
        if report.flag == Flag::Ok {
            return;
        }
        let level = if report.flag == Flag::Alert {
            "alert"
        } else {
            "warn"
        };
        m.alerts.with_label_values(&[model, level]).inc();
        let flagged: Vec<&str> = (report.features.iter())
            .filter(|f| f.flag != Flag::Ok)
            .map(|f| f.name.as_str())
            .collect();
        let pairs: Vec<String> = report
            .pairs
            .iter()
            .map(|p| format!("{}~{}", p.a, p.b))
            .collect();
        info!(
            model,
            flag = level,
            features = ?flagged,
            pairs = ?pairs,
            prediction = ?report.prediction_flag,
            records = report.counts.records,
            "drift detected"
        );
    }
}

fn flag_value(flag: Flag) -> f64 {
    match flag {
        Flag::Ok => 0.0,
        Flag::Warn => 1.0,
        Flag::Alert => 2.0,
    }
}

/// How many of the records from the first of `noted` are scored, on consecutive rows, up to
/// `room` (none when the first was not scored).
fn consecutive_rows(noted: &[Noted], room: usize) -> usize {
    let Some((first, ..)) = noted.first().and_then(|r| r.scored) else {
        return 0;
    };
    (noted.iter().take(room))
        .enumerate()
        .take_while(|(k, r)| r.scored.is_some_and(|(row, ..)| row == first + k))
        .count()
}

/// A record of the batch, noted in order: its partition, and its row, prediction and label
/// if it was scored.
struct Noted {
    partition: i32,
    scored: Option<(usize, Predicted, Option<i32>)>,
}

/// One feature's drift gauges.
struct FeatureGauges {
    psi: Gauge,
    sequential: Gauge,
    flag: Gauge,
    p_value: Gauge,
    detectable_shift: Gauge,
}

impl FeatureGauges {
    fn new(m: &DriftMetrics, model: &str, feature: &str) -> Self {
        let labels = [model, feature];
        // Before the first tested window: nothing significant, nothing known to detect.
        m.feature_p_value.with_label_values(&labels).set(1.0);
        m.detectable_shift.with_label_values(&labels).set(f64::NAN);
        FeatureGauges {
            psi: m.feature_psi.with_label_values(&labels),
            sequential: m.sequential_level.with_label_values(&labels),
            flag: m.feature_flag.with_label_values(&labels),
            p_value: m.feature_p_value.with_label_values(&labels),
            detectable_shift: m.detectable_shift.with_label_values(&labels),
        }
    }
}

/// The CPU time the calling thread has used (`None` where the clock cannot be read).
fn thread_cpu() -> Option<std::time::Duration> {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    let read = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    let nanos = u32::try_from(t.tv_nsec).ok()?;
    (read == 0).then(|| std::time::Duration::new(t.tv_sec as u64, nanos))
}

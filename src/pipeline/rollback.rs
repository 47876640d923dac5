//! Automatic rollback (opt-in, `--auto-rollback-within`): for a while after a new version is
//! promoted, the scorer watches its dead-letter share, the share of its drift windows
//! flagged `alert`, and (with `--auto-rollback-accuracy-drop`) its windows' accuracy, realized
//! or expected without labels, against its own holdout accuracy; when one crosses its bound,
//! it moves the registry pointer back to the version that served before. Every instance following the pointer then swaps back, as after
//! `driftwood models rollback`.

use std::time::{Duration, Instant};

use prometheus::IntCounter;
use tracing::{error, info, warn};

use crate::drift::{DriftReport, Flag};
use crate::error::Result;
use crate::model::registry::Change;
use crate::obs::metrics::Metrics;

/// Fewest records before the dead-letter share may judge a version.
const MIN_RECORDS: u64 = 200;
/// Fewest closed drift windows before their alert share may judge a version.
const MIN_WINDOWS: u32 = 2;

/// When a newly promoted version is rolled back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollbackPolicy {
    /// How long after its promotion a version is watched.
    pub within: Duration,
    /// Dead-letter share of its records above which it is rolled back.
    pub dead_letter_share: f64,
    /// Share of its drift windows flagged `alert` at or above which it is rolled back.
    pub alert_share: f64,
    /// How far below its holdout accuracy its windows' mean accuracy may fall.
    pub accuracy_drop: Option<f64>,
}

/// Moves the pointer of the model back from the version given (which must still serve).
pub type RollBack = Box<dyn Fn(&str) -> Result<Change> + Send>;

/// A promoted version under watch.
pub struct Guard {
    policy: RollbackPolicy,
    version: String,
    since: Instant,
    records: u64,
    dead_letters: u64,
    windows: u32,
    alerts: u32,
    /// The version's holdout accuracy, which its windows' accuracy is held to.
    baseline: Option<f64>,
    accuracy: WindowAccuracy,
}

/// The accuracy of a watched version's windows: realized where records carried labels,
/// else expected without labels, unless the window left the reference's support.
#[derive(Debug, Default)]
struct WindowAccuracy {
    sum: f64,
    windows: u32,
    realized: u32,
}

impl WindowAccuracy {
    fn add(&mut self, report: &DriftReport) {
        let expected = (report.estimated)
            .filter(|e| !e.unreliable)
            .and_then(|e| e.accuracy);
        if let Some(accuracy) = report.accuracy.or(expected) {
            self.sum += accuracy;
            self.windows += 1;
            self.realized += u32::from(report.accuracy.is_some());
        }
    }

    /// A window of delayed labels: its realized accuracy.
    fn add_realized(&mut self, accuracy: f64) {
        self.sum += accuracy;
        self.windows += 1;
        self.realized += 1;
    }

    fn mean(&self) -> Option<f64> {
        (self.windows >= MIN_WINDOWS).then(|| self.sum / f64::from(self.windows))
    }
}

impl Guard {
    /// Starts watching `version`, promoted now, whose holdout accuracy is `baseline`.
    pub fn new(policy: RollbackPolicy, version: String, baseline: Option<f64>) -> Self {
        Guard {
            policy,
            version,
            since: Instant::now(),
            records: 0,
            dead_letters: 0,
            windows: 0,
            alerts: 0,
            baseline,
            accuracy: WindowAccuracy::default(),
        }
    }

    /// The version watched.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Counts a batch's outcomes.
    pub fn batch(&mut self, scored: u64, dead_letters: u64) {
        self.records += scored + dead_letters;
        self.dead_letters += dead_letters;
    }

    /// Counts a closed drift window of the watched version.
    pub fn report(&mut self, report: &DriftReport) {
        if report.model_version == self.version {
            self.windows += 1;
            self.alerts += u32::from(report.flag == Flag::Alert);
            self.accuracy.add(report);
        }
    }

    /// Counts the realized accuracy of a window of delayed labels for `version`.
    pub fn labelled(&mut self, version: &str, accuracy: f64) {
        if version == self.version {
            self.accuracy.add_realized(accuracy);
        }
    }

    /// Whether the watch is over (the version stays).
    pub fn expired(&self) -> bool {
        self.since.elapsed() > self.policy.within
    }

    /// Why the version must be rolled back, if it must.
    pub fn verdict(&self) -> Option<String> {
        let p = &self.policy;
        let dead_share = self.dead_letters as f64 / self.records.max(1) as f64;
        if self.records >= MIN_RECORDS && dead_share > p.dead_letter_share {
            return Some(format!(
                "dead-letter share {dead_share:.3} of {} records is above {}",
                self.records, p.dead_letter_share
            ));
        }
        let alert_share = f64::from(self.alerts) / f64::from(self.windows.max(1));
        if self.windows >= MIN_WINDOWS && alert_share >= p.alert_share {
            return Some(format!(
                "{} of {} drift windows flagged alert (bound {})",
                self.alerts, self.windows, p.alert_share
            ));
        }
        self.accuracy_verdict()
    }

    /// Whether the windows' mean accuracy fell further below the holdout accuracy than the
    /// policy allows.
    fn accuracy_verdict(&self) -> Option<String> {
        let (drop, baseline) = (self.policy.accuracy_drop?, self.baseline?);
        let mean = self.accuracy.mean()?;
        (mean < baseline - drop).then(|| {
            let a = &self.accuracy;
            format!(
                "mean accuracy {mean:.3} of {} windows ({} realized, the others expected \
                 without labels) is more than {drop} below its holdout accuracy {baseline:.3}",
                a.windows, a.realized
            )
        })
    }
}

/// Automatic rollback as it runs: the bounds, how to move the pointer back, and the promoted
/// version under watch.
pub struct AutoRollback {
    policy: RollbackPolicy,
    roll_back: RollBack,
    guard: Option<Guard>,
    /// `driftwood_model_auto_rollbacks_total`: rolled back, failed.
    outcomes: [IntCounter; 2],
}

impl AutoRollback {
    /// Rolls newly promoted versions back by `roll_back` when they cross `policy`'s bounds.
    pub fn new(policy: RollbackPolicy, roll_back: RollBack, metrics: &Metrics) -> Self {
        let rollbacks = &metrics.serving.auto_rollbacks;
        AutoRollback {
            policy,
            roll_back,
            guard: None,
            outcomes: ["rolled_back", "failed"].map(|o| rollbacks.with_label_values(&[o])),
        }
    }

    /// A version of the watched model now serves: watched if it was promoted, else the watch
    /// ends.
    pub fn swapped(&mut self, version: &str, promoted: bool, baseline: Option<f64>) {
        self.guard = promoted.then(|| Guard::new(self.policy, version.to_string(), baseline));
    }

    /// Counts a closed drift window of the watched model.
    pub fn report(&mut self, report: &DriftReport) {
        if let Some(guard) = &mut self.guard {
            guard.report(report);
        }
    }

    /// Counts the realized accuracy of a window of delayed labels for the watched model's
    /// `version`.
    pub fn labelled(&mut self, version: &str, accuracy: f64) {
        if let Some(guard) = &mut self.guard {
            guard.labelled(version, accuracy);
        }
    }

    /// Counts a batch of the watched model, and rolls the promoted version back if it crossed
    /// a bound: the pointer moves, and every instance following it swaps back. Returns the
    /// notice of a rollback done.
    pub fn batch(&mut self, scored: u64, dead_letters: u64) -> Option<String> {
        let guard = self.guard.as_mut()?;
        guard.batch(scored, dead_letters);
        if guard.expired() {
            info!(version = %guard.version(), "the promoted version passed its watch");
            self.guard = None;
            return None;
        }
        let reason = guard.verdict()?;
        let version = guard.version().to_string();
        self.guard = None;
        match (self.roll_back)(&version) {
            Ok(change) => {
                warn!(%change, %reason, "rolled the promoted version back automatically");
                self.outcomes[0].inc();
                Some(format!("automatic rollback {change}: {reason}"))
            }
            Err(e) => {
                error!(%version, %reason, error = %e, "cannot roll the promoted version back");
                self.outcomes[1].inc();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RollbackPolicy {
        RollbackPolicy {
            within: Duration::from_secs(600),
            dead_letter_share: 0.05,
            alert_share: 0.5,
            accuracy_drop: Some(0.05),
        }
    }

    #[test]
    fn a_dead_letter_share_above_the_bound_rolls_back_once_enough_records_came() {
        let mut guard = Guard::new(policy(), "2".into(), None);
        guard.batch(90, 10);
        assert_eq!(guard.verdict(), None, "too few records to judge");
        guard.batch(90, 10);
        let verdict = guard.verdict().unwrap();
        assert!(verdict.contains("0.100 of 200 records"), "{verdict}");

        let mut fine = Guard::new(policy(), "2".into(), None);
        fine.batch(1_000, 50);
        assert_eq!(fine.verdict(), None, "4.8% is under 5%");
        assert!(!fine.expired());
    }

    #[test]
    fn windows_whose_accuracy_falls_further_below_the_holdout_than_the_drop_roll_back() {
        use crate::drift::{DriftSettings, EstimatedPerformance, Tester};
        use crate::model::Model;
        let model = Model::open(None).unwrap();
        let data = crate::model::dataset::Dataset::breast_cancer();
        let settings = DriftSettings::new("test".into());
        let mut tester = Tester::new(&model.metadata, model.drift_reference(), &settings);
        let rows: Vec<f64> = data.rows[..200].iter().flatten().copied().collect();
        let predicted = model.engine.predict_all(&rows);
        let records = (rows.chunks(30).zip(predicted)).map(|(r, p)| (r, p, None));
        let counts = tester.count(records);
        let mut report = tester.report(counts);
        (report.model_version, report.flag) = ("2".into(), Flag::Ok);
        let window = |realized: Option<f64>, expected: f64, unreliable: bool| {
            let mut r = report.clone();
            r.accuracy = realized;
            r.estimated = Some(EstimatedPerformance {
                accuracy: Some(expected),
                unreliable,
                ..EstimatedPerformance::default()
            });
            r
        };
        let mut guard = Guard::new(policy(), "2".into(), Some(0.95));
        guard.report(&window(None, 0.93, false));
        guard.report(&window(None, 0.50, true));
        assert_eq!(guard.verdict(), None, "an unreliable window does not count");
        guard.report(&window(None, 0.94, false));
        assert_eq!(guard.verdict(), None, "0.935 is within 0.05 of 0.95");
        guard.report(&window(Some(0.70), 0.94, false));
        let verdict = guard.verdict().expect("a mean of 0.857");
        assert!(
            verdict.contains("of 3 windows (1 realized"),
            "the realized accuracy counts where there is one: {verdict}"
        );
        let mut off = Guard::new(policy(), "2".into(), None);
        off.report(&window(Some(0.1), 0.1, false));
        off.report(&window(Some(0.1), 0.1, false));
        assert_eq!(off.verdict(), None, "no holdout accuracy to hold it to");
    }

    #[test]
    fn windows_of_delayed_labels_count_as_realized_accuracy() {
        let mut guard = Guard::new(policy(), "2".into(), Some(0.95));
        guard.labelled("1", 0.2);
        guard.labelled("2", 0.93);
        assert_eq!(
            guard.verdict(),
            None,
            "another version's labels do not count"
        );
        guard.labelled("2", 0.80);
        let verdict = guard.verdict().expect("a mean of 0.865");
        assert!(verdict.contains("of 2 windows (2 realized"), "{verdict}");
    }
}

//! Automatic rollback (opt-in, `--auto-rollback-within`): for a while after a new version is
//! promoted, the scorer watches its dead-letter share and the share of its drift windows
//! flagged `alert`; when either crosses its bound, it moves the registry pointer back to the
//! version that served before. Every instance following the pointer then swaps back, as after
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
}

impl Guard {
    /// Starts watching `version`, promoted now.
    pub fn new(policy: RollbackPolicy, version: String) -> Self {
        Guard {
            policy,
            version,
            since: Instant::now(),
            records: 0,
            dead_letters: 0,
            windows: 0,
            alerts: 0,
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
        None
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
    pub fn swapped(&mut self, version: &str, promoted: bool) {
        self.guard = promoted.then(|| Guard::new(self.policy, version.to_string()));
    }

    /// Counts a closed drift window of the watched model.
    pub fn report(&mut self, report: &DriftReport) {
        if let Some(guard) = &mut self.guard {
            guard.report(report);
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
        }
    }

    #[test]
    fn a_dead_letter_share_above_the_bound_rolls_back_once_enough_records_came() {
        let mut guard = Guard::new(policy(), "2".into());
        guard.batch(90, 10);
        assert_eq!(guard.verdict(), None, "too few records to judge");
        guard.batch(90, 10);
        let verdict = guard.verdict().unwrap();
        assert!(verdict.contains("0.100 of 200 records"), "{verdict}");

        let mut fine = Guard::new(policy(), "2".into());
        fine.batch(1_000, 50);
        assert_eq!(fine.verdict(), None, "4.8% is under 5%");
        assert!(!fine.expired());
    }
}

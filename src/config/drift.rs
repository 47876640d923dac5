//! How drift windows close and what their flags promise: `driftwood run`'s `--drift-*`
//! flags.

use std::time::Duration;

use clap::Args;

use crate::drift::{DriftSettings, Rates};
use crate::error::{Error, Result};

/// The drift flags.
#[derive(Debug, Clone, Args)]
pub struct DriftArgs {
    /// A drift window closes once it has this many records and is --drift-window-min-seconds
    /// old.
    #[arg(
        long = "drift-window-records",
        env = "DRIFTWOOD_DRIFT_WINDOW_RECORDS",
        default_value_t = 1000
    )]
    pub window_records: i64,

    /// A full drift window stays open until it is this old, so that a fast stream's window
    /// holds this long of it (at most one report per this long, whatever the rate); 0 closes
    /// every window at exactly --drift-window-records records.
    #[arg(long = "drift-window-min-seconds", env = "DRIFTWOOD_DRIFT_WINDOW_MIN_SECONDS", default_value = "10s", value_parser = humantime::parse_duration)]
    pub window_min_seconds: Duration,

    /// A window past its minimum age counts the features of a random sample of this many to
    /// twice as many records (or ten times the drift reference's rows, if more) once the
    /// stream fills windows with twice as many; outputs, labels and estimates still count
    /// every record. 0 counts every record's features.
    #[arg(
        long = "drift-sample-records",
        env = "DRIFTWOOD_DRIFT_SAMPLE_RECORDS",
        default_value_t = 100_000
    )]
    pub sample_records: i64,

    /// A drift window with records closes after this long, however few it has.
    #[arg(long = "drift-window-seconds", env = "DRIFTWOOD_DRIFT_WINDOW_SECONDS", default_value = "60s", value_parser = humantime::parse_duration)]
    pub window_seconds: Duration,

    /// The chance that a window without drift is flagged `alert`: the family-wise
    /// false-alarm rate over all of a window's tests.
    #[arg(
        long = "drift-alert-rate",
        env = "DRIFTWOOD_DRIFT_ALERT_RATE",
        default_value_t = 0.01
    )]
    pub alert_rate: f64,

    /// The chance that a window without drift is flagged `warn` (or `alert`).
    #[arg(
        long = "drift-warn-rate",
        env = "DRIFTWOOD_DRIFT_WARN_RATE",
        default_value_t = 0.05
    )]
    pub warn_rate: f64,

    /// A significant statistic is flagged only when its effect reaches this (a mean shift
    /// of this many standard deviations, a correlation change this large, a Cohen's w or h
    /// this large); 0 flags every significant one.
    #[arg(
        long = "drift-min-effect",
        env = "DRIFTWOOD_DRIFT_MIN_EFFECT",
        default_value_t = 0.0
    )]
    pub min_effect: f64,

    /// The sequential alarm (a shift too slow for one window) raises a false alarm at most
    /// once per this many windows; that share comes out of the alert rate (and the warn
    /// rate), so it must be more than 1 / --drift-alert-rate.
    #[arg(
        long = "drift-sequential-windows",
        env = "DRIFTWOOD_DRIFT_SEQUENTIAL_WINDOWS",
        default_value_t = 1000.0
    )]
    pub sequential_windows: f64,

    /// Score without drift windows: no reports, no drift metrics (for pipelines that watch
    /// drift elsewhere, and to measure what drift costs).
    #[arg(long = "no-drift", env = "DRIFTWOOD_NO_DRIFT")]
    pub no_drift: bool,

    /// Removed: PSI flags nothing any more (see --drift-warn-rate).
    #[arg(long = "drift-warn-psi", env = "DRIFTWOOD_DRIFT_WARN_PSI", hide = true)]
    pub removed_warn_psi: Option<f64>,

    /// Removed: PSI flags nothing any more (see --drift-alert-rate).
    #[arg(
        long = "drift-alert-psi",
        env = "DRIFTWOOD_DRIFT_ALERT_PSI",
        hide = true
    )]
    pub removed_alert_psi: Option<f64>,
}

impl DriftArgs {
    /// Refuses what cannot hold: rates outside (0, 1) or warn below alert, a negative
    /// minimum effect, and the removed PSI levels.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.removed_warn_psi.is_some() || self.removed_alert_psi.is_some() {
            return bad("--drift-warn-psi and --drift-alert-psi (DRIFTWOOD_DRIFT_*_PSI) were removed: drift flags are statistical tests now, with false-alarm rates set by --drift-warn-rate (0.05) and --drift-alert-rate (0.01); --drift-min-effect keeps small shifts quiet, and PSI stays in the reports".into());
        }
        if self.sample_records < 0 {
            return bad("--drift-sample-records must be 0 (every record) or more".into());
        }
        if self.window_records < 1 || self.window_seconds.is_zero() {
            return bad(
                "--drift-window-records and --drift-window-seconds must be positive".into(),
            );
        }
        let (alert, warn) = (self.alert_rate, self.warn_rate);
        if !(0.0 < alert && alert <= warn && warn < 1.0) {
            return bad(format!(
                "--drift-alert-rate ({alert}) and --drift-warn-rate ({warn}) must satisfy 0 < alert ≤ warn < 1"
            ));
        }
        if !(self.min_effect >= 0.0 && self.min_effect.is_finite()) {
            return bad(format!(
                "--drift-min-effect ({}) must be 0 or more",
                self.min_effect
            ));
        }
        // The sequential alarm's share, 1/L, comes out of the alert rate.
        if !(self.sequential_windows * alert > 1.0 && self.sequential_windows.is_finite()) {
            return bad(format!(
                "--drift-sequential-windows ({}) must be more than 1 / --drift-alert-rate ({}): its false alarms, one per that many windows, come out of the alert rate",
                self.sequential_windows,
                1.0 / alert
            ));
        }
        Ok(())
    }

    /// The monitor's settings, for the instance `instance_id`.
    pub fn settings(&self, instance_id: String) -> DriftSettings {
        DriftSettings {
            window_records: self.window_records,
            window_min_age: self.window_min_seconds,
            window_age: self.window_seconds,
            sample_records: (self.sample_records > 0).then_some(self.sample_records),
            rates: Rates {
                alert: self.alert_rate,
                warn: self.warn_rate,
            },
            min_effect: self.min_effect,
            sequential_windows: self.sequential_windows,
            enabled: !self.no_drift,
            instance_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        drift: DriftArgs,
    }

    fn parse(args: &[&str]) -> DriftArgs {
        let args = std::iter::once("driftwood").chain(args.iter().copied());
        Wrapper::try_parse_from(args).unwrap().drift
    }

    #[test]
    fn defaults_hold_the_stated_rates() {
        let d = parse(&[]);
        d.validate().unwrap();
        let s = d.settings("i".into());
        assert_eq!(
            (s.rates.alert, s.rates.warn, s.min_effect),
            (0.01, 0.05, 0.0)
        );
        assert!(s.enabled);
        assert!(!parse(&["--no-drift"]).settings("i".into()).enabled);
        // A window of at least 1,000 records and 10 s, at most 60 s.
        assert_eq!(
            (s.window_records, s.window_min_age, s.window_age),
            (1000, Duration::from_secs(10), Duration::from_secs(60))
        );
        let exact = parse(&["--drift-window-min-seconds", "0"]).settings("i".into());
        assert!(exact.window_min_age.is_zero());
        // Windows count the features of about 100,000 records at least, or of every one.
        assert_eq!(s.sample_records, Some(100_000));
        let every = parse(&["--drift-sample-records", "0"]).settings("i".into());
        assert_eq!(every.sample_records, None);
    }

    #[test]
    fn impossible_rates_and_the_removed_psi_levels_are_refused_with_why() {
        let error = |args: &[&str]| parse(args).validate().unwrap_err().to_string();
        let removed = error(&["--drift-warn-psi", "0.1"]);
        assert!(
            removed.contains("were removed") && removed.contains("--drift-warn-rate"),
            "{removed}"
        );
        let swapped = error(&["--drift-alert-rate", "0.1", "--drift-warn-rate", "0.05"]);
        assert!(swapped.contains("0 < alert ≤ warn < 1"), "{swapped}");
        assert!(error(&["--drift-min-effect=-1"]).contains("--drift-min-effect"));
        let too_often = error(&["--drift-sequential-windows", "100"]);
        assert!(
            too_often.contains("more than 1 / --drift-alert-rate (100)"),
            "{too_often}"
        );
    }
}

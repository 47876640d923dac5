//! Judging a rollout's stage: what the candidate and the serving version each did over the
//! same stretch of the stream (records and dead letters, drift windows and their alerts,
//! prediction mix, accuracy realized or expected), and the decision the rollout's gates give.
//!
//! Hidden contract: every instance serving the split keeps these figures for its own
//! partitions, but only the one holding input partition 0 decides (the keys' hash spreads
//! both versions evenly over the partitions, so its share is a sample of the whole); the
//! registry refuses a decision made on a revision that moved since, so two instances that
//! both believe they hold partition 0 during a rebalance cannot both move it. A failed gate
//! rolls back at once, whenever the evidence is there; a stage passes only once it lasted its
//! least time and the candidate scored its fewest records.

use std::time::Instant;

use crate::drift::{DriftReport, Flag};
use crate::model::rollout::{Decision, Gates, Rollout, Stage};

/// Fewest records of each version before dead-letter shares are compared.
const MIN_RECORDS: u64 = 200;

/// A lane's batch: records scored and dead-lettered; rows scored and the seconds the model
/// took on them.
pub type BatchFigures = ((u64, u64), (u64, f64));

/// What one version did in the stage.
#[derive(Debug, Default, Clone)]
struct Tally {
    records: u64,
    dead_letters: u64,
    windows: u32,
    alerts: u32,
    /// Predictions per class (from the drift windows' counts).
    classes: Vec<i64>,
    accuracy_sum: f64,
    accuracy_windows: u32,
    /// Rows scored and the seconds the model took on them.
    scored_rows: u64,
    scoring_seconds: f64,
}

impl Tally {
    fn dead_share(&self) -> f64 {
        self.dead_letters as f64 / self.records.max(1) as f64
    }

    fn alert_share(&self) -> f64 {
        f64::from(self.alerts) / f64::from(self.windows.max(1))
    }

    /// Microseconds of scoring a record, once there are enough.
    fn scoring_us(&self) -> Option<f64> {
        (self.scored_rows >= MIN_RECORDS)
            .then(|| self.scoring_seconds * 1e6 / self.scored_rows as f64)
    }

    fn accuracy(&self) -> Option<f64> {
        (self.accuracy_windows > 0).then(|| self.accuracy_sum / f64::from(self.accuracy_windows))
    }

    fn describe(&self) -> String {
        let accuracy = self.accuracy().map_or("-".into(), |a| format!("{a:.4}"));
        let scoring = self
            .scoring_us()
            .map_or("-".into(), |us| format!("{us:.2} µs"));
        format!(
            "{} records, dead-letter share {:.4}, {} drift windows ({} alert), accuracy {accuracy}, scoring {scoring} a record",
            self.records,
            self.dead_share(),
            self.windows,
            self.alerts
        )
    }
}

/// The stage being judged.
#[derive(Debug)]
pub struct StageJudge {
    rollout: Rollout,
    started: Instant,
    /// The candidate's, then the serving version's.
    tallies: [Tally; 2],
    /// Records scored by both that agreed, and all so compared.
    agreement: (u64, u64),
}

impl StageJudge {
    /// Judges `rollout`'s running stage, from now.
    pub fn new(rollout: Rollout) -> Self {
        StageJudge {
            rollout,
            started: Instant::now(),
            tallies: Default::default(),
            agreement: (0, 0),
        }
    }

    /// The rollout judged.
    pub fn rollout(&self) -> &Rollout {
        &self.rollout
    }

    fn tally(&mut self, version: &str) -> Option<&mut Tally> {
        let r = &self.rollout;
        let i = [&r.candidate, &r.baseline]
            .iter()
            .position(|v| *v == version)?;
        Some(&mut self.tallies[i])
    }

    /// Counts a batch of `version`: records scored and dead-lettered, rows scored and the
    /// seconds it took.
    pub fn batch(&mut self, version: &str, ((scored, dead), (rows, seconds)): BatchFigures) {
        if let Some(t) = self.tally(version) {
            t.records += scored + dead;
            t.dead_letters += dead;
            t.scored_rows += rows;
            t.scoring_seconds += seconds;
        }
    }

    /// Counts a closed drift window.
    pub fn report(&mut self, report: &DriftReport) {
        let Some(t) = self.tally(&report.model_version) else {
            return;
        };
        t.windows += 1;
        t.alerts += u32::from(report.flag == Flag::Alert);
        let predictions = &report.counts.predictions;
        if t.classes.len() < predictions.len() {
            t.classes.resize(predictions.len(), 0);
        }
        for (sum, n) in t.classes.iter_mut().zip(predictions) {
            *sum += n;
        }
        let expected = (report.estimated)
            .filter(|e| !e.unreliable)
            .and_then(|e| e.accuracy);
        if let Some(accuracy) = report.accuracy.or(expected) {
            t.accuracy_sum += accuracy;
            t.accuracy_windows += 1;
        }
    }

    /// Counts records scored by both versions: how many agreed, of how many.
    pub fn agreement(&mut self, (agreed, compared): (u64, u64)) {
        self.agreement.0 += agreed;
        self.agreement.1 += compared;
    }

    /// Whether the agreement gate is set (records are then compared).
    pub fn compares(&self) -> bool {
        self.rollout.gates.min_agreement.is_some()
    }

    /// Counts a window of delayed labels' realized accuracy of `version`.
    pub fn labelled(&mut self, version: &str, accuracy: f64) {
        if let Some(t) = self.tally(version) {
            t.accuracy_sum += accuracy;
            t.accuracy_windows += 1;
        }
    }

    /// The decision the figures give now, if any: a failed gate at once, else the stage's
    /// pass once it lasted long enough over enough records.
    pub fn decide(&self) -> Option<Decision> {
        let (_, stage) = self.rollout.stage()?;
        let figures = self.figures();
        if let Some(reason) = self.failed(&self.rollout.gates, stage) {
            return Some(Decision::RollBack { reason, figures });
        }
        let [candidate, _] = &self.tallies;
        let lasted = self.started.elapsed().as_secs() >= stage.min_seconds;
        if !lasted || candidate.records < stage.min_records.max(1) {
            return None;
        }
        Some(match stage.share >= 1.0 {
            true => Decision::Promote { figures },
            false => Decision::Advance { figures },
        })
    }

    /// The first gate the candidate failed, in words.
    fn failed(&self, gates: &Gates, stage: &Stage) -> Option<String> {
        let [c, b] = &self.tallies;
        let dead = c.dead_share() - b.dead_share();
        if c.records >= MIN_RECORDS && b.records >= MIN_RECORDS && dead > gates.dead_letter_increase
        {
            return Some(format!(
                "its dead-letter share is {dead:+.4} beside the serving version's (bound {})",
                gates.dead_letter_increase
            ));
        }
        let alerts = c.alert_share() - b.alert_share();
        if c.windows >= 1 && alerts > gates.alert_share_increase {
            return Some(format!(
                "its share of drift windows flagged alert is {alerts:+.2} beside the serving version's (bound {})",
                gates.alert_share_increase
            ));
        }
        if let (Some(ca), Some(ba)) = (c.accuracy(), b.accuracy())
            && ba - ca > gates.accuracy_drop
        {
            return Some(format!(
                "its accuracy {ca:.4} is {:.4} below the serving version's {ba:.4} (bound {})",
                ba - ca,
                gates.accuracy_drop
            ));
        }
        let slower = match (c.scoring_us(), b.scoring_us(), gates.latency_ratio) {
            (Some(cu), Some(bu), Some(ratio)) => (cu > bu * ratio).then_some((cu, bu, ratio)),
            _ => None,
        };
        if let Some((cu, bu, ratio)) = slower {
            return Some(format!(
                "it takes {cu:.2} µs to score a record against the serving version's {bu:.2} (bound {ratio}×)"
            ));
        }
        let (agreed, compared) = self.agreement;
        let share = agreed as f64 / compared.max(1) as f64;
        if let Some(min) = gates
            .min_agreement
            .filter(|&m| compared >= MIN_RECORDS && share < m)
        {
            return Some(format!(
                "it agrees with the serving version on {share:.4} of {compared} records scored by both (bound {min})"
            ));
        }
        let shift = mix_shift(&c.classes, &b.classes);
        let enough = c.records >= stage.min_records.max(MIN_RECORDS);
        if let Some(shift) = shift.filter(|&s| enough && s > gates.mix_shift) {
            return Some(format!(
                "its prediction mix is {shift:.4} apart from the serving version's (bound {})",
                gates.mix_shift
            ));
        }
        None
    }

    /// Both versions' figures, in words.
    pub fn figures(&self) -> String {
        let [c, b] = &self.tallies;
        let shift = mix_shift(&c.classes, &b.classes).map_or("-".into(), |s| format!("{s:.4}"));
        let (agreed, compared) = self.agreement;
        let agreement = match compared {
            0 => String::new(),
            n => format!(
                "; agreement {:.4} of {n} records scored by both",
                agreed as f64 / n as f64
            ),
        };
        format!(
            "candidate {}: {}; serving {}: {}; prediction mix {shift} apart{agreement}",
            self.rollout.candidate,
            c.describe(),
            self.rollout.baseline,
            b.describe()
        )
    }
}

/// The total variation distance between two class mixes (`None` while either is empty).
fn mix_shift(a: &[i64], b: &[i64]) -> Option<f64> {
    let (na, nb) = (a.iter().sum::<i64>(), b.iter().sum::<i64>());
    if na == 0 || nb == 0 {
        return None;
    }
    let n = a.len().max(b.len());
    let share =
        |x: &[i64], total: i64, i: usize| x.get(i).map_or(0.0, |&v| v as f64 / total as f64);
    Some(
        (0..n)
            .map(|i| (share(a, na, i) - share(b, nb, i)).abs())
            .sum::<f64>()
            / 2.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rollout::{Phase, parse_stages};

    fn judge(stages: &str, min_records: u64) -> StageJudge {
        StageJudge::new(Rollout {
            name: "m".into(),
            candidate: "2".into(),
            baseline: "1".into(),
            stages: parse_stages(stages, 0, min_records).unwrap(),
            gates: Gates::default(),
            phase: Phase::Running {
                stage: 0,
                since: String::new(),
            },
            revision: 1,
            decisions: Vec::new(),
            started_at: String::new(),
        })
    }

    #[test]
    fn a_stage_passes_after_its_records_and_the_last_promotes() {
        let mut j = judge("10%,100%", 1_000);
        j.batch("2", ((999, 0), (0, 0.0)));
        j.batch("1", ((9_000, 0), (0, 0.0)));
        assert_eq!(j.decide(), None, "one record short");
        j.batch("2", ((1, 0), (0, 0.0)));
        assert!(matches!(j.decide(), Some(Decision::Advance { .. })));
        let mut last = judge("100%", 10);
        last.batch("2", ((10, 0), (0, 0.0)));
        assert!(matches!(last.decide(), Some(Decision::Promote { .. })));
    }

    #[test]
    fn a_candidate_that_dead_letters_is_rolled_back_at_once() {
        let mut j = judge("10%,100%", 1_000_000);
        j.batch("2", ((180, 20), (0, 0.0)));
        j.batch("1", ((2_000, 2), (0, 0.0)));
        let Some(Decision::RollBack { reason, figures }) = j.decide() else {
            panic!("rolled back")
        };
        assert!(reason.contains("dead-letter share is +0.0990"), "{reason}");
        assert!(figures.contains("candidate 2: 200 records"), "{figures}");
        j.batch("3", ((0, 1_000), (0, 0.0)));
        assert!(figures.contains("serving 1: 2002 records"), "{figures}");
    }

    #[test]
    fn a_slower_candidate_is_rolled_back_only_when_the_latency_gate_is_set() {
        let mut j = judge("10%,100%", 1_000_000);
        j.batch("2", ((500, 0), (500, 0.005)));
        j.batch("1", ((5_000, 0), (5_000, 0.010)));
        assert_eq!(j.decide(), None, "10 µs against 2, no bound set");
        j.rollout.gates.latency_ratio = Some(3.0);
        let Some(Decision::RollBack { reason, .. }) = j.decide() else {
            panic!("rolled back")
        };
        let said = "10.00 µs to score a record against the serving version's 2.00";
        assert!(reason.contains(said), "{reason}");
    }

    #[test]
    fn a_candidate_that_disagrees_is_rolled_back_once_enough_records_are_compared() {
        let mut j = judge("10%,100%", 1_000_000);
        j.rollout.gates.min_agreement = Some(0.9);
        j.agreement((150, 199));
        assert_eq!(j.decide(), None, "199 compared, under the 200 needed");
        j.agreement((0, 1));
        let Some(Decision::RollBack { reason, figures }) = j.decide() else {
            panic!("rolled back")
        };
        assert!(
            reason.contains("agrees with the serving version on 0.7500 of 200"),
            "{reason}"
        );
        assert!(
            figures.ends_with("; agreement 0.7500 of 200 records scored by both"),
            "{figures}"
        );
    }

    #[test]
    fn mixes_apart_are_measured_by_total_variation() {
        assert_eq!(mix_shift(&[50, 50], &[50, 50]), Some(0.0));
        assert_eq!(mix_shift(&[100, 0], &[0, 100]), Some(1.0));
        assert!((mix_shift(&[30, 70], &[50, 50, 0]).unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(mix_shift(&[], &[1]), None);
    }
}

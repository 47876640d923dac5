//! A canary rollout: a candidate version serving a share of a model's records, stage by
//! stage, kept in the registry beside the pointer (`models/<name>/rollout.json`) where every
//! instance of a group reads it. `driftwood models canary` writes it, `status` reads it,
//! `abort` ends it; each instance's model watch follows it like the pointer, and serves the
//! candidate to the stage's share of the record keys ([`candidate_takes`]: a hash of
//! the key, so that one key sees one version during a stage, on every instance).
//!
//! Hidden contract: the file is replaced whole (written beside it and renamed over it), and
//! each change raises `revision`, so that a writer can refuse to move a rollout another
//! moved since it read it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::stats::spread::{fnv1a, mix, within};

/// The file a model's rollout is kept in, in its directory.
pub const ROLLOUT_FILE: &str = "rollout.json";
/// The running stage's figures as the judging instance last noted them, beside it.
pub const FIGURES_FILE: &str = "rollout-figures.json";

/// The running stage's figures, noted by the judging instance every few seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Noted {
    /// The rollout's revision and stage they are of.
    pub revision: u64,
    pub stage: usize,
    pub figures: String,
    pub at: String,
}

/// A decision as the rollout keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decided {
    /// `advance`, `promote` or `roll_back`.
    pub decision: String,
    /// The stage judged.
    pub stage: usize,
    #[serde(default)]
    pub reason: Option<String>,
    pub figures: String,
    pub at: String,
}

/// One stage: the candidate's share of the records, and how long and over how many of its
/// records it must hold before the next.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// In (0, 1].
    pub share: f64,
    /// The least time the stage lasts.
    pub min_seconds: u64,
    /// The fewest records the candidate scores in it.
    pub min_records: u64,
}

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Phase {
    /// Serving the candidate to stage `stage`'s share since `since` (RFC 3339).
    Running { stage: usize, since: String },
    /// The last stage passed; the candidate serves every record.
    Promoted { at: String },
    /// A gate failed; the baseline serves every record again.
    RolledBack { at: String, reason: String },
    /// Stopped by `driftwood models abort`; the baseline serves every record again.
    Aborted { at: String },
}

/// The bounds a stage's figures are held to, the candidate against the serving version over
/// the same stretch of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gates {
    /// How far the candidate's dead-letter share may exceed the serving version's.
    pub dead_letter_increase: f64,
    /// How far the candidate's share of drift windows flagged `alert` may exceed the serving
    /// version's.
    pub alert_share_increase: f64,
    /// The largest total variation distance between the two versions' prediction mixes.
    pub mix_shift: f64,
    /// How far the candidate's mean accuracy (realized where labels came, else expected
    /// without labels) may fall below the serving version's.
    pub accuracy_drop: f64,
    /// How many times the serving version's scoring time a record the candidate may take
    /// (off when unset: a candidate's smaller batches cost more a record).
    #[serde(default)]
    pub latency_ratio: Option<f64>,
    /// The least share of the records scored by both (a sample of the serving version's) on
    /// which the candidate predicts the same class (off when unset).
    #[serde(default)]
    pub min_agreement: Option<f64>,
}

impl Default for Gates {
    fn default() -> Self {
        Gates {
            dead_letter_increase: 0.01,
            alert_share_increase: 0.5,
            mix_shift: 0.1,
            accuracy_drop: 0.02,
            latency_ratio: None,
            min_agreement: None,
        }
    }
}

/// What the instance judging a stage decided, with the figures it decided on.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The stage passed: on to the next.
    Advance { figures: String },
    /// The last stage passed: the candidate is promoted.
    Promote { figures: String },
    /// A gate failed: the serving version takes every record again.
    RollBack { reason: String, figures: String },
}

impl Decision {
    /// `advance`, `promote` or `roll_back`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Advance { .. } => "advance",
            Decision::Promote { .. } => "promote",
            Decision::RollBack { .. } => "roll_back",
        }
    }

    /// The figures it was made on.
    pub fn figures(&self) -> &str {
        match self {
            Decision::Advance { figures }
            | Decision::Promote { figures }
            | Decision::RollBack { figures, .. } => figures,
        }
    }
}

/// A model's rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub name: String,
    /// The version rolled out.
    pub candidate: String,
    /// The version serving the rest (the pointer's when the rollout began).
    pub baseline: String,
    pub stages: Vec<Stage>,
    #[serde(default)]
    pub gates: Gates,
    pub phase: Phase,
    /// Raised by every change.
    pub revision: u64,
    /// The decisions made on it, oldest first.
    #[serde(default)]
    pub decisions: Vec<Decided>,
    pub started_at: String,
}

impl Rollout {
    /// The candidate's share of the records now: the running stage's, else none.
    pub fn share(&self) -> Option<f64> {
        match &self.phase {
            Phase::Running { stage, .. } => self.stages.get(*stage).map(|s| s.share),
            _ => None,
        }
    }

    /// Whether it is running.
    pub fn running(&self) -> bool {
        matches!(self.phase, Phase::Running { .. })
    }

    /// The running stage's index and settings.
    pub fn stage(&self) -> Option<(usize, &Stage)> {
        match &self.phase {
            Phase::Running { stage, .. } => Some((*stage, self.stages.get(*stage)?)),
            _ => None,
        }
    }
}

/// Whether the candidate takes a record of key `key` at `share`: FNV-1a over the key's
/// bytes, spread, in the first `share` of `u64`. Alike on every instance and build, so that
/// one key sees one version while a share holds, and a wider share keeps every key of a
/// narrower one.
pub fn candidate_takes(key: &[u8], share: f64) -> bool {
    within(mix(fnv1a(key)), share)
}

/// Why a rollout's stages were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StagesError {
    #[error("{0:?} is not a share: write stages as percentages, e.g. 10%,50%,100%")]
    NotAShare(String),
    #[error("stage shares must rise, each in (0%, 100%], the last 100%: {0}")]
    Order(String),
}

/// Stages from `10%,50%,100%`, each lasting `min_seconds` and `min_records`.
pub fn parse_stages(
    text: &str,
    min_seconds: u64,
    min_records: u64,
) -> std::result::Result<Vec<Stage>, StagesError> {
    let shares: Vec<f64> = (text.split(','))
        .map(|s| {
            let s = s.trim();
            let number = s.strip_suffix('%').unwrap_or(s);
            (number.parse::<f64>().ok())
                .filter(|p| p.is_finite())
                .map(|p| p / 100.0)
                .ok_or_else(|| StagesError::NotAShare(s.to_owned()))
        })
        .collect::<std::result::Result<_, _>>()?;
    let rising = shares.windows(2).all(|w| w[0] < w[1]);
    let bounded = shares.iter().all(|&s| s > 0.0 && s <= 1.0);
    if !rising || !bounded || shares.last() != Some(&1.0) {
        return Err(StagesError::Order(text.to_owned()));
    }
    Ok(shares
        .into_iter()
        .map(|share| Stage {
            share,
            min_seconds,
            min_records,
        })
        .collect())
}

/// The rollout file of `name` in the registry at `root`.
pub fn path(root: &Path, name: &str) -> PathBuf {
    root.join(name).join(ROLLOUT_FILE)
}

/// `name`'s rollout, if one was ever started.
pub fn read(root: &Path, name: &str) -> Result<Option<Rollout>> {
    super::registry::read_if_there(&path(root, name), "a rollout")
}

/// Now, as the rollout file writes times.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_rise_to_all_of_the_records() {
        let stages = parse_stages("10%, 50%,100%", 60, 1_000).unwrap();
        let shares: Vec<f64> = stages.iter().map(|s| s.share).collect();
        assert_eq!(shares, [0.1, 0.5, 1.0]);
        assert_eq!((stages[0].min_seconds, stages[0].min_records), (60, 1_000));
        for bad in ["50%,10%,100%", "10%,50%", "0%,100%", "10%,150%"] {
            assert!(
                matches!(parse_stages(bad, 0, 0), Err(StagesError::Order(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_stages("ten,100%", 0, 0),
            Err(StagesError::NotAShare(_))
        ));
    }

    #[test]
    fn only_a_running_stage_has_a_share() {
        let mut rollout = Rollout {
            name: "m".into(),
            candidate: "2".into(),
            baseline: "1".into(),
            stages: parse_stages("10%,100%", 0, 0).unwrap(),
            gates: Gates::default(),
            phase: Phase::Running {
                stage: 0,
                since: now(),
            },
            revision: 1,
            decisions: Vec::new(),
            started_at: now(),
        };
        assert_eq!(rollout.share(), Some(0.1));
        let json = serde_json::to_string(&rollout).unwrap();
        assert!(json.contains(r#""state":"running""#), "{json}");
        assert_eq!(serde_json::from_str::<Rollout>(&json).unwrap(), rollout);
        rollout.phase = Phase::Aborted { at: now() };
        assert_eq!(rollout.share(), None);
    }

    /// Keys as producers write them (sequential ids): a tenth and a half are chosen within
    /// a point of 100,000, and every key of the tenth is in the half.
    #[test]
    fn a_share_of_keys_is_that_share_and_a_wider_one_keeps_the_narrower() {
        let keys: Vec<String> = (0..100_000).map(|i| format!("rec-{i:08}")).collect();
        let chosen = |share| -> Vec<bool> {
            keys.iter()
                .map(|k| candidate_takes(k.as_bytes(), share))
                .collect()
        };
        let (tenth, half) = (chosen(0.1), chosen(0.5));
        let count = |c: &[bool]| c.iter().filter(|&&x| x).count();
        assert!(
            (9_000..11_000).contains(&count(&tenth)),
            "{}",
            count(&tenth)
        );
        assert!((49_000..51_000).contains(&count(&half)), "{}", count(&half));
        assert!(tenth.iter().zip(&half).all(|(&t, &h)| !t || h));
        assert_eq!(count(&chosen(1.0)), 100_000);
        assert_eq!(count(&chosen(0.0)), 0);
    }
}

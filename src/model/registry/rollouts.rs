//! The registry's rollouts (`super::rollout`): started beside the serving version, moved
//! by the judging instance's decisions with a revision check, aborted; the running stage's
//! figures as that instance notes them.

use super::{FeatureCheck, Registry, read_if_there, write_atomically};
use crate::error::{RegistryError, Result};
use crate::model::rollout::{self, Decision, Gates, Phase, Rollout, Stage};

impl Registry {
    /// `name`'s rollout, if one was ever started.
    pub fn rollout(&self, name: &str) -> Result<Option<Rollout>> {
        rollout::read(&self.root, name)
    }

    /// Starts rolling `candidate` out through `stages` beside the version serving now, after
    /// verifying it as `promote` does (and, with `require_evaluation`, its evaluation).
    pub fn start_rollout(
        &self,
        (name, candidate): (&str, &str),
        (stages, gates): (Vec<Stage>, Gates),
        features: FeatureCheck<'_>,
        require_evaluation: bool,
    ) -> Result<Rollout> {
        if let Some(running) = self.rollout(name)?.filter(Rollout::running) {
            return Err(RegistryError::RolloutRunning {
                name: name.into(),
                candidate: running.candidate,
            }
            .into());
        }
        let serving = (self.pointer(name)?)
            .ok_or_else(|| RegistryError::NotServing(name.into()))?
            .version;
        if serving == candidate {
            return Err(RegistryError::AlreadyServing {
                name: name.into(),
                version: serving,
            }
            .into());
        }
        self.verify(name, candidate, features)?;
        if require_evaluation {
            self.check_evaluated(name, candidate)?;
        }
        let revision = self.rollout(name)?.map_or(0, |r| r.revision) + 1;
        let rollout = Rollout {
            name: name.into(),
            candidate: candidate.into(),
            baseline: serving,
            stages,
            gates,
            phase: Phase::Running {
                stage: 0,
                since: rollout::now(),
            },
            revision,
            decisions: Vec::new(),
            started_at: rollout::now(),
        };
        self.write_rollout(&rollout)?;
        Ok(rollout)
    }

    /// Stops `name`'s running rollout: the baseline serves every record again.
    pub fn abort_rollout(&self, name: &str) -> Result<Rollout> {
        let mut rollout = (self.rollout(name)?)
            .filter(Rollout::running)
            .ok_or_else(|| RegistryError::NoRollout(name.into()))?;
        rollout.phase = Phase::Aborted { at: rollout::now() };
        rollout.revision += 1;
        self.write_rollout(&rollout)?;
        Ok(rollout)
    }

    /// Carries out `decision` on `name`'s rollout, unless it moved since revision
    /// `revision` (another instance decided first): the next stage, or the candidate
    /// promoted (the pointer moves), or the rollout rolled back.
    pub fn decide_rollout(
        &self,
        (name, revision): (&str, u64),
        decision: &Decision,
        features: FeatureCheck<'_>,
    ) -> Result<Rollout> {
        let mut rollout = (self.rollout(name)?)
            .filter(|r| r.running() && r.revision == revision)
            .ok_or_else(|| RegistryError::RolloutMoved {
                name: name.into(),
                revision,
            })?;
        let at = rollout::now();
        let judged = rollout.stage().map_or(0, |(i, _)| i);
        rollout.decisions.push(rollout::Decided {
            decision: decision.as_str().into(),
            stage: judged,
            reason: match decision {
                Decision::RollBack { reason, .. } => Some(reason.clone()),
                _ => None,
            },
            figures: decision.figures().into(),
            at: at.clone(),
        });
        rollout.phase = match (decision, &rollout.phase) {
            (Decision::Advance { .. }, Phase::Running { stage, .. })
                if stage + 1 < rollout.stages.len() =>
            {
                Phase::Running {
                    stage: stage + 1,
                    since: at,
                }
            }
            (Decision::Advance { .. } | Decision::Promote { .. }, _) => {
                self.promote(name, &rollout.candidate, features)?;
                Phase::Promoted { at }
            }
            (Decision::RollBack { reason, .. }, _) => Phase::RolledBack {
                at,
                reason: reason.clone(),
            },
        };
        rollout.revision += 1;
        self.write_rollout(&rollout)?;
        Ok(rollout)
    }

    /// Keeps `rollout`'s running stage's `figures` where `models status` reads them.
    pub fn note_rollout(&self, rollout: &Rollout, figures: &str) -> Result<()> {
        let noted = rollout::Noted {
            revision: rollout.revision,
            stage: rollout.stage().map_or(0, |(i, _)| i),
            figures: figures.into(),
            at: rollout::now(),
        };
        let text = serde_json::to_string_pretty(&noted).expect("figures serialize");
        let path = self.root.join(&rollout.name).join(rollout::FIGURES_FILE);
        write_atomically(&path, &(text + "\n"))
    }

    /// The figures last noted of `name`'s rollout, if any.
    pub fn noted_rollout(&self, name: &str) -> Result<Option<rollout::Noted>> {
        read_if_there(
            &self.root.join(name).join(rollout::FIGURES_FILE),
            "rollout figures",
        )
    }

    fn write_rollout(&self, rollout: &Rollout) -> Result<()> {
        let text = serde_json::to_string_pretty(rollout).expect("a rollout serializes");
        write_atomically(&rollout::path(&self.root, &rollout.name), &(text + "\n"))
    }
}

//! Which model serves: the one owner of the serving policy. The lanes (one per model served,
//! the default first), the router that chooses among them, the watches that bring new
//! versions, automatic rollback, the shadow candidate, and the handle the versions serving
//! are published through (with the `driftwood_model_info` gauge) all live here. The scorer
//! asks it which lane a record goes to and tells it what each batch and window showed; it
//! does the rest.

use std::sync::Arc;

use tracing::{info, warn};

use super::Served;
use super::agreement::Agreement;
use super::canary::{BatchFigures, StageJudge};
use super::lane::Lane;
use super::rollback::{AutoRollback, RollBack, RollbackPolicy};
use super::route::Router;
use super::shadow::Shadow;
use crate::codec::decode::FeatureDecoder;
use crate::drift::{DriftReport, DriftSettings};
use crate::error::Result;
use crate::labels::PerformanceWindow;
use crate::model::rollout::{Decision, Rollout};
use crate::model::watch::{CanaryChange, Loaded, ModelWatch};
use crate::model::{Model, Serving};
use crate::obs::metrics::Metrics;

/// The models records may be routed to besides the default, and the router that chooses.
pub struct Routes {
    /// Chooses each record's model.
    pub router: Router,
    /// The models besides the default, in the router's order, with their decoders.
    pub models: Vec<Served>,
}

/// Where this instance moves the rollouts it judges, and notes their stage's figures.
pub trait RolloutStore: Send {
    /// Carries out `decision`, made on `rollout`'s revision (refused when the rollout moved
    /// since); the rollout as it now stands.
    fn decide(&self, rollout: &Rollout, decision: &Decision) -> Result<Rollout>;
    /// Keeps the running stage's `figures` where `models status` reads them.
    fn note(&self, rollout: &Rollout, figures: &str) -> Result<()>;
}

/// How often the judging instance notes the stage's figures.
const NOTE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// A rollout decision carried out: what was decided, on which rollout, what it left, and
/// when (ms since the epoch, taken before the registry moved).
#[derive(Debug, Clone)]
pub struct Decided {
    pub decision: Decision,
    pub judged: Rollout,
    pub moved: Rollout,
    pub at: i64,
}

/// A rollout's candidate, as the scorer splits the default model's records.
#[derive(Debug, Clone, Copy)]
pub struct CanaryLane {
    /// Its lane.
    pub lane: usize,
    /// Its share of the default model's keys.
    pub share: f64,
}

/// The models serving and the policy that changes them.
pub struct ServingSet {
    /// One lane per model served, the default first.
    pub(super) lanes: Vec<Lane>,
    /// How records choose a lane, when several models serve.
    pub(super) router: Option<Router>,
    /// The shadow candidate, compared with the default model.
    pub(super) shadow: Option<Shadow>,
    /// A rollout's candidate beside the default model: its lane (the last) and its share of
    /// the default model's keys.
    pub(super) canary: Option<CanaryLane>,
    /// The running stage's figures, and how a decision moves the rollout.
    judge: Option<StageJudge>,
    /// With the agreement gate: the serving version's records the candidate scores too.
    pub(super) agreement: Option<Agreement>,
    rollout_store: Option<Box<dyn RolloutStore>>,
    noted: std::time::Instant,
    watches: Vec<ModelWatch<FeatureDecoder>>,
    rollback: Option<AutoRollback>,
    /// Said in the default model's next drift report.
    notice: Option<String>,
    published: Serving,
    drift: DriftSettings,
    metrics: Metrics,
}

impl ServingSet {
    /// Serves `default` alone, with drift windows as `drift` says.
    pub fn new(default: Served, drift: &DriftSettings, metrics: &Metrics) -> Self {
        let (model, decoder) = default;
        let set = ServingSet {
            published: Serving::new(vec![model.clone()]),
            lanes: vec![Lane::new(model.clone(), decoder, drift, metrics)],
            router: None,
            shadow: None,
            canary: None,
            judge: None,
            agreement: None,
            rollout_store: None,
            noted: std::time::Instant::now(),
            watches: Vec::new(),
            rollback: None,
            notice: None,
            drift: drift.clone(),
            metrics: metrics.clone(),
        };
        set.show(&model);
        set
    }

    /// Routes records by `routes.router` among the default model and `routes.models`.
    pub fn with_routes(mut self, routes: Routes) -> Self {
        for (model, decoder) in routes.models {
            self.show(&model);
            self.published.publish(model.clone());
            let lane = Lane::new(model, decoder, &self.drift, &self.metrics);
            self.lanes.push(lane);
        }
        self.router = Some(routes.router);
        self
    }

    /// Swaps in the versions `watches` load.
    pub fn with_watches(mut self, watches: Vec<ModelWatch<FeatureDecoder>>) -> Self {
        self.watches = watches;
        self
    }

    /// Rolls newly promoted versions of the default model back by `roll_back` when they
    /// cross `policy`'s bounds.
    pub fn with_rollback(mut self, policy: RollbackPolicy, roll_back: RollBack) -> Self {
        self.rollback = Some(AutoRollback::new(policy, roll_back, &self.metrics));
        self
    }

    /// Moves the default model's rollouts in `store` when this instance judges them.
    pub fn with_rollouts(mut self, store: Box<dyn RolloutStore>) -> Self {
        self.rollout_store = Some(store);
        self
    }

    /// Scores a share of the default model's records with `shadow`'s candidate as well.
    pub fn with_shadow(mut self, shadow: Shadow) -> Self {
        self.shadow = Some(shadow);
        self
    }

    /// The versions serving, as the REST twin reads them.
    pub fn published(&self) -> Serving {
        self.published.clone()
    }

    /// The models serving now, the default first.
    pub fn models(&self) -> Vec<Arc<Model>> {
        self.lanes.iter().map(|l| l.model.clone()).collect()
    }

    /// The topic the shadow's comparisons go to, if they are published.
    pub(super) fn comparison_topic(&self) -> Option<&str> {
        self.shadow.as_ref().and_then(Shadow::topic)
    }

    /// Frames the shadow's comparisons with schema `id` (Confluent wire format).
    pub(super) fn frame_comparisons(&mut self, id: Option<u32>) {
        if let Some(shadow) = &mut self.shadow {
            shadow.frame_with(id);
        }
    }

    /// The versions the watches loaded since the last call.
    pub(super) fn loaded(&self) -> Vec<Loaded<FeatureDecoder>> {
        self.watches.iter().filter_map(ModelWatch::take).collect()
    }

    /// Applies the default model's rollout changes since the last call (from the next batch
    /// on); returns the candidate's reports not yet published and its window, closed, when
    /// it stops serving or another takes its place (with its lane).
    pub(super) fn follow_rollout(&mut self, assigned: &[i32]) -> Vec<(usize, Vec<DriftReport>)> {
        let Some(watch) = self.watches.first() else {
            return Vec::new();
        };
        let mut closed = Vec::new();
        for change in watch.take_canary() {
            match change {
                CanaryChange::Start(canary) => {
                    closed.extend(self.end_canary(assigned));
                    let (model, share) = (canary.model, canary.rollout.share().unwrap_or(0.0));
                    let name = &self.lanes[0].model.metadata.name;
                    info!(model = %name, candidate = %model.metadata.version, share, "serving a rollout's candidate beside the serving version");
                    let lane = Lane::new(model, canary.extra, &self.drift, &self.metrics);
                    self.lanes.push(lane);
                    let lane = self.lanes.len() - 1;
                    self.canary = Some(CanaryLane { lane, share });
                    self.judge_stage(StageJudge::new(canary.rollout));
                }
                CanaryChange::Stage(rollout) => {
                    if let Some(c) = &mut self.canary {
                        c.share = rollout.share().unwrap_or(0.0);
                        info!(
                            share = c.share,
                            "the rollout's candidate serves a new stage"
                        );
                    }
                    self.judge_stage(StageJudge::new(rollout));
                }
                CanaryChange::Off => {
                    (self.judge, self.agreement) = (None, None);
                    closed.extend(self.end_canary(assigned));
                }
            }
            self.show_canary();
        }
        closed
    }

    /// Whether a watch follows the default model's registry entry (and so its rollouts).
    pub(super) fn follows_rollouts(&self) -> bool {
        !self.watches.is_empty()
    }

    /// Judges a stage by `judge`, comparing records when its gates ask for it.
    fn judge_stage(&mut self, judge: StageJudge) {
        self.agreement = judge.compares().then(Agreement::default);
        self.judge = Some(judge);
    }

    /// Counts records of the batch scored by both versions: how many agreed, of how many.
    pub(super) fn judge_agreement(&mut self, counts: (u64, u64)) {
        if let Some(judge) = &mut self.judge {
            judge.agreement(counts);
        }
    }

    /// Counts a batch's records of each version for the rollout's stage.
    pub(super) fn judge_batch(&mut self, counts: &[(usize, BatchFigures)]) {
        if let Some(judge) = &mut self.judge {
            for &(l, batch) in counts {
                judge.batch(&self.lanes[l].model.metadata.version, batch);
            }
        }
    }

    /// When this instance judges the rollout (it holds input partition 0), the decision the
    /// stage's figures give now, carried out in the registry: said in the log, the metrics
    /// and the default model's next drift report; the decision and the rollout as it now
    /// stands (with the rollout judged), to publish.
    pub(super) fn decide_rollout(&mut self, judges: bool) -> Option<Decided> {
        let judge = self.judge.as_ref().filter(|_| judges)?;
        let store = self.rollout_store.as_ref()?;
        let Some(decision) = judge.decide() else {
            if self.noted.elapsed() >= NOTE_EVERY {
                self.noted = std::time::Instant::now();
                if let Err(e) = store.note(judge.rollout(), &judge.figures()) {
                    warn!(error = %e, "cannot note the rollout's figures");
                }
            }
            return None;
        };
        let judge = self.judge.take().expect("judged above");
        let rollout = judge.rollout();
        let (name, candidate) = (&rollout.name, &rollout.candidate);
        let said = match &decision {
            Decision::RollBack { reason, .. } => {
                format!("rollout {name} {candidate}: rolled back: {reason}")
            }
            other => format!("rollout {name} {candidate}: {}", other.as_str()),
        };
        let decisions = &self.metrics.serving.rollout_decisions;
        // Before the registry moves: no instance serves the new stage earlier.
        let at = crate::obs::epoch_millis();
        match store.decide(rollout, &decision) {
            Ok(moved) => {
                warn!(model = %name, %candidate, decision = decision.as_str(), figures = decision.figures(), "{said}");
                decisions
                    .with_label_values(&[name, decision.as_str()])
                    .inc();
                self.notice = Some(format!("{said}; {}", decision.figures()));
                let judged = judge.rollout().clone();
                Some(Decided {
                    decision,
                    judged,
                    moved,
                    at,
                })
            }
            Err(e) => {
                warn!(model = %name, %candidate, error = %e, "the rollout decision was not carried out");
                decisions
                    .with_label_values(&[name, "not_carried_out"])
                    .inc();
                None
            }
        }
    }

    /// Stops serving the candidate; its lane and its window, closed.
    fn end_canary(&mut self, assigned: &[i32]) -> Option<(usize, Vec<DriftReport>)> {
        let canary = self.canary.take()?;
        let mut lane = self.lanes.remove(canary.lane);
        let version = &lane.model.metadata.version;
        info!(candidate = %version, "the rollout's candidate stops serving");
        let name = &lane.model.metadata.name;
        let _ = (self.metrics.serving.canary_share).remove_label_values(&[name, version]);
        Some((canary.lane, lane.drift.close(assigned)))
    }

    /// Shows the candidate's share in `driftwood_canary_share`.
    fn show_canary(&self) {
        if let Some(c) = &self.canary {
            let m = &self.lanes[c.lane].model.metadata;
            (self.metrics.serving.canary_share)
                .with_label_values(&[&m.name, &m.version])
                .set(c.share);
        }
    }

    /// Serves `loaded` in place of the version of its name from the next batch on, with a
    /// new drift window; returns the old version's reports not yet published and its window,
    /// closed, to publish (with its lane). Called between batches, so each record is scored once, by the version serving when its batch
    /// came.
    pub(super) fn swap(
        &mut self,
        loaded: Loaded<FeatureDecoder>,
        assigned: &[i32],
    ) -> Option<(usize, Vec<DriftReport>)> {
        let model = loaded.model;
        let name = &model.metadata.name;
        let Some(l) = self
            .lanes
            .iter()
            .position(|l| &l.model.metadata.name == name)
        else {
            warn!(model = %name, "a version of a model not served was loaded; ignored");
            return None;
        };
        let closed = Some((l, self.lanes[l].drift.close(assigned)));
        if l == 0
            && let Some(rollback) = &mut self.rollback
        {
            let metadata = &model.metadata;
            rollback.swapped(
                &metadata.version,
                loaded.promoted,
                metadata.holdout_accuracy,
            );
        }
        let old = &self.lanes[l].model.metadata.version;
        let _ = (self.metrics.serving.model_info).remove_label_values(&[name, old]);
        self.show(&model);
        info!(model = %name, from = %old, to = %model.metadata.version, "swapped the serving model");
        self.published.publish(model.clone());
        let lane = Lane::new(model, loaded.extra, &self.drift, &self.metrics);
        self.lanes[l] = lane;
        closed
    }

    /// Counts a batch's records of the default model for automatic rollback; true when it
    /// rolled the promoted version back (the caller closes the drift windows, the first of
    /// which carries the notice).
    pub(super) fn batch_done(&mut self, scored: u64, dead_letters: u64) -> bool {
        let notice = (self.rollback.as_mut()).and_then(|r| r.batch(scored, dead_letters));
        let rolled_back = notice.is_some();
        self.notice = notice.or(self.notice.take());
        rolled_back
    }

    /// A drift window of lane `lane` closed: the default model's (lane 0) counts for
    /// automatic rollback, and takes the notice its report is to carry.
    pub(super) fn reported(&mut self, lane: usize, report: &DriftReport) -> Option<String> {
        if let Some(judge) = &mut self.judge {
            judge.report(report);
        }
        if lane != 0 {
            return None;
        }
        if let Some(rollback) = &mut self.rollback {
            rollback.report(report);
        }
        self.notice.take()
    }

    /// A window of delayed labels was published: the default model's realized accuracy
    /// counts for automatic rollback.
    pub(super) fn labelled(&mut self, window: &PerformanceWindow) {
        if let Some(judge) = &mut self.judge {
            for v in &window.versions {
                if let Some(accuracy) = v.accuracy {
                    judge.labelled(&v.model_version, accuracy);
                }
            }
        }
        let (Some(rollback), Some(lane)) = (&mut self.rollback, self.lanes.first()) else {
            return;
        };
        for v in &window.versions {
            if let (true, Some(accuracy)) = (v.model_name == lane.model.metadata.name, v.accuracy) {
                rollback.labelled(&v.model_version, accuracy);
            }
        }
    }

    /// Shows `model` as serving in `driftwood_model_info`.
    fn show(&self, model: &Model) {
        let (name, version) = (&model.metadata.name, &model.metadata.version);
        (self.metrics.serving.model_info)
            .with_label_values(&[name, version])
            .set(1);
    }
}

//! The settings of the models an instance serves: which (a directory, the bundled model, or
//! registry names to follow), how records are routed among several, and what watches a
//! version: automatic rollback, a shadow candidate, explanations.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::pipeline::explain::ExplainSettings;

/// Which models serve, and how their versions change.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Model artifact directory [default: the bundled breast-cancer model, built into the
    /// binary].
    #[arg(long, env = "DRIFTWOOD_MODEL")]
    pub model: Option<PathBuf>,

    /// Serve this model of the registry (`--registry`) at the version its pointer names, and
    /// follow the pointer: `driftwood models promote` or `rollback` swaps the model between
    /// batches, without a restart.
    #[arg(long, env = "DRIFTWOOD_MODEL_NAME", conflicts_with = "model")]
    pub model_name: Option<String>,

    /// The model registry's root directory (read with `--model-name`).
    #[arg(long, env = "DRIFTWOOD_REGISTRY", default_value = "models")]
    pub registry: PathBuf,

    /// With `--model-name`: the longest time between two reads of the pointer. File
    /// notifications wake the watch at once where the file system delivers them.
    #[arg(long, env = "DRIFTWOOD_RELOAD_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub reload_interval: Duration,

    /// Route each record to a model by a Kafka header (`header:NAME`) or a string field of
    /// the record (`field:NAME`): its value names the model. Records without it go to the
    /// default model (`--model-name`); a value naming no model served is dead-lettered
    /// (`unroutable`). Needs `--route-models`.
    #[arg(long, env = "DRIFTWOOD_ROUTE_BY", requires = "route_models")]
    pub route_by: Option<RouteBy>,

    /// The registry's models that records may be routed to besides the default one,
    /// comma-separated; each follows its own pointer, with drift windows and metrics of its
    /// own. Needs `--model-name` (the default) and `--route-by`.
    #[arg(
        long,
        env = "DRIFTWOOD_ROUTE_MODELS",
        value_delimiter = ',',
        requires = "route_by",
        requires = "model_name"
    )]
    pub route_models: Vec<String>,

    /// With `--model-name`: watch each newly promoted version this long, and roll it back
    /// by itself (moving the registry pointer) when its dead-letter share or its share of
    /// drift windows flagged `alert` crosses the bounds below. Off when unset.
    #[arg(long, env = "DRIFTWOOD_AUTO_ROLLBACK_WITHIN", requires = "model_name", value_parser = humantime::parse_duration)]
    pub auto_rollback_within: Option<Duration>,

    /// Dead-letter share (of at least 200 records) above which a watched version is rolled
    /// back.
    #[arg(
        long,
        env = "DRIFTWOOD_AUTO_ROLLBACK_DEAD_LETTER_SHARE",
        default_value_t = 0.05
    )]
    pub auto_rollback_dead_letter_share: f64,

    /// Share of drift windows (at least 2) flagged `alert` at or above which a watched
    /// version is rolled back.
    #[arg(
        long,
        env = "DRIFTWOOD_AUTO_ROLLBACK_ALERT_SHARE",
        default_value_t = 0.5
    )]
    pub auto_rollback_alert_share: f64,

    /// Accuracy drop at which a watched version is rolled back: the mean accuracy of its
    /// drift windows (at least 2) below its own holdout accuracy by more than this. A
    /// window counts its realized accuracy where records carried labels, else the accuracy
    /// expected without labels (windows flagged unreliable do not count); each window of
    /// delayed labels (--labels-topic) counts its realized accuracy. Off when unset.
    #[arg(long, env = "DRIFTWOOD_AUTO_ROLLBACK_ACCURACY_DROP")]
    pub auto_rollback_accuracy_drop: Option<f64>,

    /// Score a share of the records with this candidate as well (`NAME:VERSION` of the
    /// registry), and compare: label agreement, confidence delta and confusion in the
    /// metrics, and on `--comparison-topic` if given. Predictions still come from the
    /// serving model. The candidate must be a classifier.
    #[arg(long, env = "DRIFTWOOD_SHADOW")]
    pub shadow: Option<String>,

    /// Share of records the shadow candidate scores, in (0, 1].
    #[arg(
        long,
        env = "DRIFTWOOD_SHADOW_SHARE",
        default_value_t = 1.0,
        requires = "shadow"
    )]
    pub shadow_share: f64,

    /// Topic for one Avro `ShadowComparison` per shadowed record.
    #[arg(long, env = "DRIFTWOOD_COMPARISON_TOPIC", requires = "shadow")]
    pub comparison_topic: Option<String>,

    /// Topic for one Avro `RolloutDecision` (`schemas/rollout.avsc`) per decision on a
    /// canary rollout's stage (`driftwood models canary`), with the figures it was made on,
    /// keyed by model name. Decisions are also logged, counted and noted in the drift
    /// reports. Needs `--model-name`. [default: not published]
    #[arg(long, env = "DRIFTWOOD_ROLLOUT_TOPIC", requires = "model_name")]
    pub rollout_topic: Option<String>,

    /// Explain the prediction of every record that carries a Kafka header of this name
    /// (any value): Saabas contributions per feature, in the prediction's `explanation`.
    #[arg(long, env = "DRIFTWOOD_EXPLAIN_HEADER")]
    pub explain_header: Option<String>,

    /// Explain this share of the predictions, in [0, 1], chosen by record position.
    #[arg(long, env = "DRIFTWOOD_EXPLAIN_SHARE", default_value_t = 0.0)]
    pub explain_share: f64,
}

/// What records are routed by (`--route-by`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteBy {
    /// The value of a Kafka header.
    Header(String),
    /// The value of a string field of the record.
    Field(String),
}

impl FromStr for RouteBy {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.split_once(':') {
            Some(("header", name)) if !name.is_empty() => Ok(RouteBy::Header(name.into())),
            Some(("field", name)) if !name.is_empty() => Ok(RouteBy::Field(name.into())),
            _ => Err(format!("{s:?}: give header:NAME or field:NAME")),
        }
    }
}

impl ModelArgs {
    /// Checks the settings against each other; the error names the flag.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        for (flag, share) in [
            (
                "--auto-rollback-dead-letter-share",
                self.auto_rollback_dead_letter_share,
            ),
            (
                "--auto-rollback-alert-share",
                self.auto_rollback_alert_share,
            ),
            ("--shadow-share", self.shadow_share),
            (
                "--auto-rollback-accuracy-drop",
                self.auto_rollback_accuracy_drop.unwrap_or(1.0),
            ),
        ] {
            if !(share > 0.0 && share <= 1.0) {
                return bad(format!("{flag} {share} is not a share in (0, 1]"));
            }
        }
        if !(0.0..=1.0).contains(&self.explain_share) {
            return bad(format!(
                "--explain-share {} is not a share in [0, 1]",
                self.explain_share
            ));
        }
        let mut names: Vec<&String> = self.model_name.iter().collect();
        for name in &self.route_models {
            if names.contains(&name) {
                return bad(format!(
                    "--route-models names {name:?} twice, or the default model"
                ));
            }
            names.push(name);
        }
        Ok(())
    }

    /// Which predictions carry an explanation.
    pub(crate) fn explain(&self) -> ExplainSettings {
        ExplainSettings {
            header: self.explain_header.clone(),
            share: self.explain_share,
        }
    }
}

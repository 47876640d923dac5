//! The models an instance serves, loaded and checked before anything connects: the default
//! one, those records may be routed to, the shadow candidate; and what follows their
//! registry pointers (the watches) and moves them back (automatic rollback).

use std::sync::Arc;

use crate::codec::decode::FeatureDecoder;
use crate::codec::registry::WriterSchemas;
use crate::codec::route::RouteField;
use crate::config::{RouteBy, RunConfig};
use crate::drift::DriftSettings;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::registry::Registry;
use crate::model::rollout::{Decision, Rollout};
use crate::model::watch::{Loader, ModelWatch, WatchSettings};
use crate::obs::metrics::Metrics;
use crate::pipeline::Served;
use crate::pipeline::rollback::{RollBack, RollbackPolicy};
use crate::pipeline::route::{RouteSource, Router};
use crate::pipeline::serving::RolloutStore;
use crate::pipeline::serving::{Routes, ServingSet};
use crate::pipeline::shadow::Shadow;

/// The model `--model` or `--model-name` names (the bundled one without either), checked.
pub(super) fn open_model(config: &RunConfig, decoders: &Decoders) -> Result<Model> {
    let Some(name) = &config.models.model_name else {
        let model = Model::open(config.models.model.as_deref());
        return (model.and_then(|m| decoders.check(&m).map(|()| m))).map_err(|e| match e {
            // A model the operator named: say which flag named it.
            Error::Model { path, message } if config.models.model.is_some() => {
                Error::Config(format!("--model {}: {message}", path.display()))
            }
            other => other,
        });
    };
    open_registered(config, name, "--model-name", decoders)
}

/// The version of registry model `name` its pointer names, checked; errors name `flag`.
fn open_registered(
    config: &RunConfig,
    name: &str,
    flag: &str,
    decoders: &Decoders,
) -> Result<Model> {
    let registry = Registry::new(&config.models.registry);
    let pointer = registry.pointer(name)?.ok_or_else(|| {
        Error::Config(format!(
            "{flag} {name}: no version of it is promoted in {} (`driftwood models promote`)",
            config.models.registry.display()
        ))
    })?;
    registry
        .verify(name, &pointer.version, &|m| decoders.check(m))
        .map_err(|e| {
            Error::Config(format!(
                "{flag} {name} version {}: {}",
                pointer.version,
                detail(e)
            ))
        })
}

/// With `--route-by`, the routes: each of `--route-models` at the version its pointer names.
pub(super) fn routes(
    config: &RunConfig,
    default: &Model,
    decoders: &Decoders,
) -> Result<Option<Routes>> {
    let Some(by) = &config.models.route_by else {
        return Ok(None);
    };
    let mut models = Vec::new();
    for name in &config.models.route_models {
        let model = open_registered(config, name, "--route-models", decoders)?;
        let decoder = decoders.for_model(&model)?;
        models.push((Arc::new(model), decoder));
    }
    let source = match by {
        RouteBy::Header(name) => RouteSource::Header(name.clone()),
        RouteBy::Field(name) => {
            RouteSource::Field(RouteField::new(&decoders.schema, name, decoders.format)?)
        }
    };
    let default = std::iter::once(default.metadata.name.clone());
    let names = default.chain(config.models.route_models.iter().cloned());
    let router = Router::new(source, names.collect());
    Ok(Some(Routes { router, models }))
}

/// What builds the input decoder for a model: the input's schema and framing.
#[derive(Clone)]
pub(super) struct Decoders {
    pub(super) schema: apache_avro::Schema,
    pub(super) format: crate::codec::decode::InputFormat,
    pub(super) max_message_bytes: usize,
    /// What a null or NaN feature makes of its record.
    pub(super) missing: crate::codec::decode::MissingFeatures,
    /// Whether predictions are explained, so that a version must be explainable.
    pub(super) explaining: bool,
    /// With a schema registry for Confluent-framed input: the writer schemas by id, which
    /// replace `schema` (each is matched against a model's features on first sight).
    pub(super) registered: Option<WriterSchemas>,
}

impl Decoders {
    /// Whether `model` may serve: the input supplies every feature, and when predictions are
    /// explained, the artifact keeps reference rows to explain with.
    pub(super) fn check(&self, model: &Model) -> Result<()> {
        if self.registered.is_none() {
            FeatureDecoder::check_features(&self.schema, &model.metadata.features)?;
        }
        match self.explaining {
            true => model.explainer().map(drop).map_err(Error::Config),
            false => Ok(()),
        }
    }

    /// A decoder of the input for `model`'s features; fails when the input lacks one.
    pub(super) fn for_model(&self, model: &Model) -> Result<FeatureDecoder> {
        let features = &model.metadata.features;
        if let Some(schemas) = &self.registered {
            let decoder =
                FeatureDecoder::registered(features, self.max_message_bytes, schemas.clone());
            return Ok(decoder.with_missing(self.missing));
        }
        let decoder = FeatureDecoder::new(
            self.schema.clone(),
            features,
            self.format,
            self.max_message_bytes,
        )?;
        Ok(decoder.with_missing(self.missing))
    }
}

/// With `--shadow NAME:VERSION`, the candidate loaded from the registry and checked, and
/// its decoder.
pub(super) fn shadow_candidate(config: &RunConfig, decoders: &Decoders) -> Result<Option<Served>> {
    let Some(spec) = &config.models.shadow else {
        return Ok(None);
    };
    let refuse = |why: String| Error::Config(format!("--shadow {spec}: {why}"));
    let (name, version) = spec
        .split_once(':')
        .ok_or_else(|| refuse("expected NAME:VERSION of the registry".into()))?;
    let registry = Registry::new(&config.models.registry);
    let candidate = registry
        .verify(name, version, &|m| decoders.check(m))
        .map_err(|e| refuse(detail(e)))?;
    if candidate.engine.n_classes() == 0 {
        return Err(refuse(
            "a regressor; shadow scoring compares classes".into(),
        ));
    }
    let decoder = decoders.for_model(&candidate)?;
    Ok(Some((Arc::new(candidate), decoder)))
}

/// What serves at start, as `prepare` loaded and checked it.
pub(super) struct Start {
    /// The default model and its decoder.
    pub default: Served,
    /// The models records are routed to besides the default, and the router.
    pub routes: Option<Routes>,
    /// The shadow candidate and its decoder (`--shadow`).
    pub shadow: Option<Served>,
    /// What builds decoders for versions loaded later.
    pub decoders: Decoders,
}

/// The models serving at start and the policy that changes them: the routes, the watches of
/// the registry pointers, automatic rollback and the shadow candidate.
pub(super) fn serving_set(
    config: &RunConfig,
    start: Start,
    drift: &DriftSettings,
    metrics: &Metrics,
) -> Result<ServingSet> {
    let mut set = ServingSet::new(start.default, drift, metrics);
    if let Some(routes) = start.routes {
        set = set.with_routes(routes);
    }
    let served = set.models();
    let served: Vec<&Model> = served.iter().map(|m| m.as_ref()).collect();
    set = set.with_watches(watches(config, &served, &start.decoders, metrics)?);
    if let Some(move_rollout) = rollouts(config, start.decoders.clone()) {
        set = set.with_rollouts(move_rollout);
    }
    if let Some((policy, roll_back)) = rollback(config, start.decoders) {
        set = set.with_rollback(policy, roll_back);
    }
    if let Some((candidate, decoder)) = start.shadow {
        let models = &config.models;
        let (share, topic) = (models.shadow_share, models.comparison_topic.clone());
        let shadow = Shadow::new(candidate, decoder, share, topic, metrics.clone());
        set = set.with_shadow(shadow);
    }
    Ok(set)
}

/// With `--model-name`, how this instance carries out the decisions it makes on the model's
/// rollouts: in the registry, refused there when another instance moved the rollout first.
fn rollouts(config: &RunConfig, decoders: Decoders) -> Option<Box<dyn RolloutStore>> {
    config.models.model_name.as_ref()?;
    let registry = Registry::new(&config.models.registry);
    Some(Box::new(RegistryRollouts { registry, decoders }))
}

/// The registry, as the judging instance moves rollouts in it.
struct RegistryRollouts {
    registry: Registry,
    decoders: Decoders,
}

impl RolloutStore for RegistryRollouts {
    fn decide(&self, rollout: &Rollout, decision: &Decision) -> Result<Rollout> {
        let check = |m: &Model| self.decoders.check(m);
        (self.registry).decide_rollout((&rollout.name, rollout.revision), decision, &check)
    }

    fn note(&self, rollout: &Rollout, figures: &str) -> Result<()> {
        self.registry.note_rollout(rollout, figures)
    }
}

/// With `--auto-rollback-within`, the bounds and the pointer move back.
fn rollback(config: &RunConfig, decoders: Decoders) -> Option<(RollbackPolicy, RollBack)> {
    let (within, name) = (
        config.models.auto_rollback_within?,
        config.models.model_name.clone()?,
    );
    let policy = RollbackPolicy {
        within,
        dead_letter_share: config.models.auto_rollback_dead_letter_share,
        alert_share: config.models.auto_rollback_alert_share,
        accuracy_drop: config.models.auto_rollback_accuracy_drop,
    };
    let registry = Registry::new(&config.models.registry);
    let roll_back: RollBack = Box::new(move |from| {
        let check = |m: &Model| decoders.check(m);
        registry.rollback_from(&name, Some(from), &check)
    });
    Some((policy, roll_back))
}

/// The watches that load each version the registry pointers name: of the default model
/// with `--model-name`, and of every model records are routed to.
fn watches(
    config: &RunConfig,
    serving: &[&Model],
    decoders: &Decoders,
    metrics: &Metrics,
) -> Result<Vec<ModelWatch<FeatureDecoder>>> {
    if config.models.model_name.is_none() {
        return Ok(Vec::new());
    }
    (serving.iter())
        .map(|model| {
            let registry = Registry::new(&config.models.registry);
            let (from, name) = (registry.clone(), model.metadata.name.clone());
            let decoders = decoders.clone();
            let load: Loader<FeatureDecoder> = Box::new(move |version| {
                let model = from.verify(&name, version, &|m| decoders.check(m))?;
                let decoder = decoders.for_model(&model)?;
                Ok((Arc::new(model), decoder))
            });
            let settings = WatchSettings {
                registry,
                name: model.metadata.name.clone(),
                serving: model.metadata.version.clone(),
                interval: config.models.reload_interval,
            };
            ModelWatch::start(settings, load, metrics.clone())
        })
        .collect()
}

/// What an error says, without the "invalid configuration" of a configuration error or the
/// "model registry" of a registry's refusal (the caller's message says that already).
pub(super) fn detail(e: Error) -> String {
    match e {
        Error::Config(message) => message,
        Error::ModelRegistry(refused) => refused.to_string(),
        other => other.to_string(),
    }
}

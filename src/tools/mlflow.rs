//! `driftwood models import-mlflow` and `follow-mlflow`: a version of MLflow's Model Registry
//! (`models:/NAME/VERSION` or `models:/NAME@ALIAS`, its artifacts holding `model.onnx` and
//! `reference.csv`) checked and written into driftwood's registry as `import` does, the MLflow
//! version it came from recorded as its source (so that it is imported once); and an alias
//! followed: each version it moves to is imported and rolled out as `models canary` does.

use std::time::Duration;

use tracing::warn;

use crate::error::Result;
use crate::model::import::{self, ImportRequest};
use crate::model::mlflow::{self, Found, Mlflow, ModelUri};
use crate::model::registry::{FeatureCheck, Registry};
use crate::model::rollout::{Gates, Stage};

/// Where to read from and how to import.
pub struct Source<'a> {
    pub tracking_uri: &'a str,
    pub uri: &'a str,
    /// driftwood's name for the model [default: MLflow's].
    pub name: Option<&'a str>,
    /// The reference CSV's target column.
    pub target: &'a str,
}

/// What became of the version an MLflow URI names.
pub struct Imported {
    pub found: Found,
    /// driftwood's name and version for it.
    pub name: String,
    pub version: String,
    /// Whether this call imported it (else an earlier one had).
    pub new: bool,
}

/// The source string a version imported from `found` at `tracking_uri` records.
fn source_of(found: &Found, tracking_uri: &str) -> String {
    format!(
        "mlflow {tracking_uri} models:/{}/{}",
        found.name, found.version
    )
}

/// Imports the version `source.uri` names now into `registry`, unless a version imported
/// from it is there already.
pub fn import(registry: &Registry, source: &Source<'_>) -> Result<Imported> {
    let uri: ModelUri = mlflow::parse(source.uri)?;
    let server = Mlflow::new(source.tracking_uri)?;
    let found = server.find(&uri)?;
    let name = source.name.unwrap_or(&uri.name).to_owned();
    let recorded = source_of(&found, source.tracking_uri);
    if let Some(version) = imported_from(registry, &name, &recorded)? {
        return Ok(Imported {
            found,
            name,
            version,
            new: false,
        });
    }
    let dir = tempfile::tempdir().map_err(|e| crate::error::Error::io(std::env::temp_dir(), e))?;
    let model = server.download(&found, mlflow::MODEL_FILE, dir.path())?;
    let reference = server.download(&found, mlflow::REFERENCE_FILE, dir.path())?;
    let outcome = import::run(&ImportRequest {
        model,
        name: name.clone(),
        version: None,
        reference,
        target: source.target.to_owned(),
        output: registry.root().to_owned(),
        source: Some(recorded),
    })?;
    Ok(Imported {
        found,
        name,
        version: outcome.metadata.version,
        new: true,
    })
}

/// The version of `name` imported from `recorded`, if one was.
fn imported_from(registry: &Registry, name: &str, recorded: &str) -> Result<Option<String>> {
    for version in registry.versions(name)? {
        let path = registry.artifact_dir(name, &version).join("metadata.json");
        let text = std::fs::read_to_string(&path).map_err(|e| crate::error::Error::io(&path, e))?;
        let metadata: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if metadata["imported"]["source"].as_str() == Some(recorded) {
            return Ok(Some(version));
        }
    }
    Ok(None)
}

/// How a followed alias's new versions are rolled out.
pub struct Follow<'a> {
    pub source: Source<'a>,
    pub stages: Vec<Stage>,
    pub gates: Gates,
    pub interval: Duration,
    /// Look once and return (else follow until the process is stopped).
    pub once: bool,
}

/// Follows an alias: each version it moves to is imported and, beside the version serving,
/// rolled out (the first version of a model serves at once, as `import` makes it). Returns
/// what it did (with `once`); otherwise runs until the process is stopped, logging what
/// it does and what failed (an unreachable server is asked again at the next look).
pub fn follow(
    registry: &Registry,
    follow: &Follow<'_>,
    features: FeatureCheck<'_>,
) -> Result<String> {
    loop {
        match look(registry, follow, features) {
            Ok(said) if follow.once => return Ok(said),
            Ok(said) => {
                if !said.is_empty() {
                    tracing::info!("{}", said.trim_end());
                }
            }
            Err(e) if follow.once => return Err(e),
            Err(e) => warn!(error = %e, "following the MLflow alias failed; looking again later"),
        }
        std::thread::sleep(follow.interval);
    }
}

/// One look at the alias: the version it names imported and rolled out if new; what was
/// done, in words.
fn look(registry: &Registry, follow: &Follow<'_>, features: FeatureCheck<'_>) -> Result<String> {
    let imported = import(registry, &follow.source)?;
    let (name, version) = (&imported.name, &imported.version);
    let found = &imported.found;
    let mut said = format!(
        "{} is MLflow version {}: {name} version {version}",
        follow.source.uri, found.version
    );
    let serving = registry.pointer(name)?.map(|p| p.version);
    let running = registry.rollout(name)?.filter(|r| r.running());
    if serving.as_deref() == Some(version) || running.is_some_and(|r| &r.candidate == version) {
        said += if imported.new {
            ", imported; serving"
        } else {
            ", serving or rolling out already"
        };
        return Ok(said + "\n");
    }
    let plan = (follow.stages.clone(), follow.gates);
    let started = registry.start_rollout((name, version), plan, features, false)?;
    said += if imported.new { ", imported; " } else { "; " };
    Ok(said + &super::models::status_line(&started))
}

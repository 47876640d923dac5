//! `driftwood models`: the registry from the command line. `list` and `show` read it (`show`
//! verifies an artifact as a running instance would before serving it, and says why one is
//! refused); `promote` and `rollback` move a model's pointer, which running instances
//! watch, and print what changed.

use std::fmt::Write;

use crate::codec::decode::FeatureDecoder;
use crate::config::tools::{ModelsArgs, ModelsCommand};
use crate::drift::{DriftSettings, Plan};
use crate::error::Result;
use crate::model::Model;
use crate::model::registry::{Pointer, Registry};

/// Runs the operation; returns what to print.
pub fn run(args: &ModelsArgs) -> Result<String> {
    let registry = Registry::new(&args.registry);
    let schema = FeatureDecoder::read_schema(args.input_schema.as_deref())?;
    // The check a running instance makes: a decoder must map every feature of the model.
    let features =
        |model: &Model| FeatureDecoder::check_features(&schema, &model.metadata.features);
    match &args.command {
        ModelsCommand::List => list(&registry),
        ModelsCommand::Show { name } => show(&registry, name, &features),
        ModelsCommand::Promote { name, version } => {
            Ok(format!("{}\n", registry.promote(name, version, &features)?))
        }
        ModelsCommand::Rollback { name } => {
            Ok(format!("{}\n", registry.rollback(name, &features)?))
        }
    }
}

fn list(registry: &Registry) -> Result<String> {
    let mut out = String::new();
    let names = registry.names()?;
    if names.is_empty() {
        writeln!(out, "no models in {}", registry.root().display()).expect("to a string");
    }
    for name in names {
        let serving = registry.pointer(&name)?.map(|p| p.version);
        let versions = registry.versions(&name)?;
        let versions: Vec<String> = (versions.iter())
            .map(|v| match serving.as_deref() == Some(v.as_str()) {
                true => format!("{v} (serving)"),
                false => v.clone(),
            })
            .collect();
        writeln!(out, "{name}: {}", versions.join(", ")).expect("to a string");
    }
    Ok(out)
}

/// What a version's drift reference allows, with the default settings: where it came
/// from, its size, which tests it supports, and the shift a window of 1,000 records
/// detects.
pub fn drift_allows(model: &Model) -> String {
    let reference = model.drift_reference();
    let settings = DriftSettings::new(String::new());
    let plan = Plan::new(&model.metadata, reference, &settings);
    format!(
        "reference of {} ({} bytes per feature); {}",
        reference.source,
        reference_bytes(model) / model.metadata.features.len().max(1),
        plan.summary(reference, settings.window_records),
    )
}

/// The drift reference's size as stored (JSON).
fn reference_bytes(model: &Model) -> usize {
    serde_json::to_vec(model.drift_reference()).map_or(0, |j| j.len())
}

fn show(
    registry: &Registry,
    name: &str,
    features: &dyn Fn(&Model) -> Result<()>,
) -> Result<String> {
    let mut out = String::new();
    let line = |out: &mut String, text: String| writeln!(out, "{text}").expect("to a string");
    match registry.pointer(name)? {
        Some(Pointer {
            version,
            previous,
            changed_at,
        }) => line(
            &mut out,
            format!(
                "{name}: serving {version} since {changed_at}; before it: {}",
                if previous.is_empty() {
                    "none".into()
                } else {
                    previous.join(", ")
                }
            ),
        ),
        None => line(&mut out, format!("{name}: no version promoted")),
    }
    for version in registry.versions(name)? {
        match registry.verify(name, &version, features) {
            Ok(model) => {
                let m = &model.metadata;
                line(
                    &mut out,
                    format!(
                        "  {version}: {} ({} features, {}), created {}, sha256 {}",
                        m.algorithm,
                        m.features.len(),
                        m.outputs_and_fit(),
                        m.created_at,
                        m.model_sha256
                    ),
                );
                line(&mut out, format!("    drift: {}", drift_allows(&model)));
            }
            Err(e) => line(&mut out, format!("  {version}: REFUSED: {e}")),
        }
    }
    Ok(out)
}

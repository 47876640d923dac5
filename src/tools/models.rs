//! `driftwood models`: the registry from the command line. `list` and `show` read it (`show`
//! verifies an artifact as a running instance would before serving it, and says why one is
//! refused); `promote` and `rollback` move a model's pointer, which running instances
//! watch, and print what changed; `evaluate` compares a candidate with the serving version
//! on labelled rows (`model::evaluate`) and keeps the verdict `promote --require-evaluation`
//! reads.

use std::fmt::Write;

use crate::codec::decode::FeatureDecoder;
use crate::config::tools::{MlflowArgs, ModelsArgs, ModelsCommand};
use crate::drift::{DriftSettings, Plan};
use crate::error::{Error, RegistryError, Result, Unevaluated};
use crate::model::Model;
use crate::model::evaluate::{self, EvaluateRequest, Evaluation};
use crate::model::registry::{Pointer, Registry};
use crate::model::rollout::{Phase, Rollout};

/// What an operation prints, and the error to exit with after printing it (a failed
/// evaluation).
#[derive(Debug)]
pub struct Report {
    pub text: String,
    pub failure: Option<Error>,
}

impl From<String> for Report {
    fn from(text: String) -> Self {
        Report {
            text,
            failure: None,
        }
    }
}

/// Runs the operation; returns what to print.
pub fn run(args: &ModelsArgs) -> Result<Report> {
    let registry = Registry::new(&args.registry);
    let schema = FeatureDecoder::read_schema(args.input_schema.as_deref())?;
    // The check a running instance makes: a decoder must map every feature of the model.
    let features =
        |model: &Model| FeatureDecoder::check_features(&schema, &model.metadata.features);
    let text = match &args.command {
        ModelsCommand::List => list(&registry)?,
        ModelsCommand::Show { name } => show(&registry, name, &features)?,
        ModelsCommand::Promote {
            name,
            version,
            require_evaluation,
        } => {
            let change = match require_evaluation {
                true => registry.promote_evaluated(name, version, &features)?,
                false => registry.promote(name, version, &features)?,
            };
            format!("{change}\n")
        }
        ModelsCommand::Rollback { name } => format!("{}\n", registry.rollback(name, &features)?),
        ModelsCommand::Evaluate { .. } => return evaluate(&registry, &args.command, &features),
        ModelsCommand::Canary {
            name,
            version,
            stages,
            require_evaluation,
            gates,
        } => {
            let stages = stages.stages()?;
            let started = (registry.start_rollout(
                (name, version),
                (stages, (*gates).into()),
                &features,
                *require_evaluation,
            ))?;
            status_line(&started)
        }
        ModelsCommand::ImportMlflow { uri, mlflow } => {
            let imported = super::mlflow::import(&registry, &source(uri, mlflow))?;
            let (name, version, found) = (&imported.name, &imported.version, &imported.found);
            let done = if imported.new {
                "imported as"
            } else {
                "imported before as"
            };
            format!(
                "{uri} is MLflow version {}: {done} {name} version {version}\n",
                found.version
            )
        }
        ModelsCommand::FollowMlflow {
            uri,
            mlflow,
            stages,
            gates,
            interval,
            once,
        } => {
            let stages = stages.stages()?;
            let follow = super::mlflow::Follow {
                source: source(uri, mlflow),
                stages,
                gates: (*gates).into(),
                interval: *interval,
                once: *once,
            };
            super::mlflow::follow(&registry, &follow, &features)?
        }
        ModelsCommand::Status { name } => status(&registry, name)?,
        ModelsCommand::Abort { name } => status_line(&registry.abort_rollout(name)?),
    };
    Ok(text.into())
}

/// The MLflow source of `uri` read through `mlflow`'s settings.
fn source<'a>(uri: &'a str, mlflow: &'a MlflowArgs) -> super::mlflow::Source<'a> {
    super::mlflow::Source {
        tracking_uri: &mlflow.tracking_uri,
        uri,
        name: mlflow.name.as_deref(),
        target: &mlflow.target,
    }
}

/// `models evaluate`: the comparison printed, kept in the registry, and a failure to exit
/// with when the candidate did not pass.
fn evaluate(
    registry: &Registry,
    command: &ModelsCommand,
    features: &dyn Fn(&Model) -> Result<()>,
) -> Result<Report> {
    let ModelsCommand::Evaluate {
        name,
        candidate,
        data,
        target,
        against,
        tolerance,
    } = command
    else {
        unreachable!("called for evaluate")
    };
    let baseline = match against {
        Some(v) => v.clone(),
        None => {
            (registry.pointer(name)?)
                .ok_or_else(|| Error::from(RegistryError::NotServing(name.clone())))?
                .version
        }
    };
    let [c, b] = [candidate, &baseline].map(|v| registry.verify(name, v, features));
    let request = EvaluateRequest {
        data,
        target,
        tolerance: *tolerance,
    };
    let evaluation = evaluate::evaluate((&c?, &b?), &request)?;
    let kept = registry.keep_evaluation(&evaluation)?;
    let text = format!(
        "{}kept in {}\n",
        evaluation_table(&evaluation),
        kept.display()
    );
    let failure = (!evaluation.verdict.passed).then(|| {
        Error::from(RegistryError::NotEvaluated {
            name: name.clone(),
            version: candidate.clone(),
            why: Unevaluated::Failed(evaluation.verdict.reason.clone()),
        })
    });
    Ok(Report { text, failure })
}

/// `models status`: the rollout's stage, its gates, the decisions made and the running
/// stage's figures as the judging instance last noted them.
fn status(registry: &Registry, name: &str) -> Result<String> {
    let Some(r) = registry.rollout(name)? else {
        return Ok(format!("{name}: no rollout\n"));
    };
    let g = &r.gates;
    let latency = g.latency_ratio.map_or("not gated".into(), |x| {
        format!("{x}× the serving version's")
    });
    let agreement = g
        .min_agreement
        .map_or("not gated".into(), |x| format!("at least {x}"));
    let mut out = status_line(&r);
    let line = |out: &mut String, text: String| writeln!(out, "  {text}").expect("to a string");
    line(
        &mut out,
        format!(
            "gates: dead-letter share at most +{}, alert share at most +{}, prediction mix at most {} apart, accuracy at most {} below, scoring time {latency}, agreement {agreement}",
            g.dead_letter_increase, g.alert_share_increase, g.mix_shift, g.accuracy_drop
        ),
    );
    for d in &r.decisions {
        let reason = d
            .reason
            .as_ref()
            .map_or(String::new(), |r| format!(" ({r})"));
        line(
            &mut out,
            format!(
                "{} at stage {} at {}{reason}: {}",
                d.decision,
                d.stage + 1,
                d.at,
                d.figures
            ),
        );
    }
    let noted = registry
        .noted_rollout(name)?
        .filter(|n| n.revision == r.revision && r.running());
    if let Some(n) = noted {
        line(
            &mut out,
            format!(
                "stage {} so far (noted at {}): {}",
                n.stage + 1,
                n.at,
                n.figures
            ),
        );
    }
    Ok(out)
}

/// A rollout in one line: its stage and share, or how it ended.
pub fn status_line(r: &Rollout) -> String {
    let shares: Vec<String> = (r.stages.iter())
        .map(|s| format!("{}%", s.share * 100.0))
        .collect();
    let plan = match r.stages.first() {
        Some(s) => format!(
            "stages {} (each at least {} and {} records)",
            shares.join(", "),
            humantime::format_duration(std::time::Duration::from_secs(s.min_seconds)),
            s.min_records
        ),
        None => "no stages".into(),
    };
    let (name, candidate, baseline) = (&r.name, &r.candidate, &r.baseline);
    match &r.phase {
        Phase::Running { stage, since } => format!(
            "{name}: rolling out {candidate} beside {baseline}: stage {} of {}, {} of the keys, since {since}; {plan}\n",
            stage + 1,
            r.stages.len(),
            shares.get(*stage).map_or("?", String::as_str),
        ),
        Phase::Promoted { at } => format!("{name}: {candidate} promoted over {baseline} at {at}\n"),
        Phase::RolledBack { at, reason } => {
            format!("{name}: {candidate} rolled back at {at} ({reason}); {baseline} serves\n")
        }
        Phase::Aborted { at } => {
            format!("{name}: rollout of {candidate} aborted at {at}; {baseline} serves\n")
        }
    }
}

/// The evaluation as a table: each figure of both versions, the difference and its interval.
pub fn evaluation_table(e: &Evaluation) -> String {
    let mut out = format!(
        "{} version {} against version {} on {} rows of {}\n",
        e.name, e.candidate.version, e.baseline.version, e.rows, e.data
    );
    let interval =
        |i: Option<(f64, f64)>| i.map_or(String::new(), |(l, h)| format!(" [{l:.4}, {h:.4}]"));
    writeln!(
        out,
        "  {:<22} {:>8} {:>26} {:>26} {:>10} {:>24}",
        "metric", "rows", "candidate", "serving", "difference", "95% interval"
    )
    .expect("to a string");
    for f in &e.figures {
        writeln!(
            out,
            "  {:<22} {:>8} {:>26} {:>26} {:>+10.4} {:>24}",
            f.metric,
            f.rows,
            format!("{:.4}{}", f.candidate, interval(f.candidate_interval)),
            format!("{:.4}{}", f.baseline, interval(f.baseline_interval)),
            f.difference,
            format!("[{:+.4}, {:+.4}]", f.low, f.high),
        )
        .expect("to a string");
    }
    let verdict = if e.verdict.passed { "PASSED" } else { "FAILED" };
    writeln!(out, "verdict: {verdict}: {}", e.verdict.reason).expect("to a string");
    out
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

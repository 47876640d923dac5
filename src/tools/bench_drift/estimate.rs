//! Performance without labels, measured: on the classification data sets of the `nannyml`
//! wheel, each analysis chunk's accuracy as driftwood's drift windows estimate it (the data
//! set's model's probabilities calibrated on its reference period, as `train` and `import`
//! calibrate, and the chunk counted by the pipeline's window code), as NannyML's CBPE estimates it with its
//! defaults (`scripts/estimate-peers/cbpe.py`), and as realized from the chunk's targets.
//! Per tool: the chunks within 1.5 points of the realized accuracy (with their Wilson
//! interval), and the 95th percentile and largest of the errors in accuracy and ROC AUC.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use super::real::{Data, RawTable, load, manifest, read_csv, test};
use super::{BenchDriftArgs, Output, Row};
use crate::drift::{DriftSettings, EstimatedPerformance, Tester};
use crate::error::{Error, Result};
use crate::model::calibrate::{CalibrationPass, positive_probability};
use crate::stats::cbpe::{self, Scored};

/// The classification data sets (two binary, one of three classes).
const DATA_SETS: [&str; 3] = ["synthetic_car_loan", "employment_MA", "mc"];

/// The bound on the accuracy's error the issue sets.
const WITHIN: f64 = 0.015;

/// Runs the comparison on every data set.
pub fn run(args: &BenchDriftArgs, out: &mut Output) -> Result<()> {
    let (manifest, path) = manifest(args)?;
    for name in DATA_SETS {
        let data = load(&manifest, name, 0)?;
        let (reference, analysis) = targets(&manifest, name, &data)?;
        let chunks = data.analysis.predicted.len() / data.chunk;
        let realized: Vec<EstimatedPerformance> =
            (0..chunks).map(|c| realized(&data, &analysis, c)).collect();
        let mut tools = vec![("driftwood", driftwood(&data, &reference, chunks))];
        if let Some(python) = &args.estimate_python {
            let script = &args.estimate_script;
            tools.push((
                "nannyml-cbpe",
                cbpe(python, script, &path, name, data.chunk)?,
            ));
        }
        for (tool, estimates) in tools {
            write(out, name, tool, data.chunk, &estimates, &realized)?;
        }
    }
    Ok(())
}

/// Each chunk's estimate by the drift window of a reference calibrated on the reference
/// period's targets.
fn driftwood(data: &Data, targets: &[Truth], chunks: usize) -> Vec<EstimatedPerformance> {
    let (metadata, mut reference) = super::real::model_of(data);
    let mut pass = CalibrationPass::new(data.classes.len()).expect("a classifier");
    let p = data.features.len();
    let rows = data.reference.rows.chunks(p);
    for ((row, &predicted), &t) in rows.zip(&data.reference.predicted).zip(targets) {
        pass.add(row, predicted, t);
    }
    reference.outputs.calibration = pass.finish();
    let mut settings = DriftSettings::new("bench".into());
    settings.window_records = data.chunk as i64;
    let mut tester = Tester::new(&metadata, &reference, &settings);
    (0..chunks)
        .map(|c| {
            let span = c * data.chunk..(c + 1) * data.chunk;
            let rows = &data.analysis.rows[span.start * p..span.end * p];
            let report = test(&mut tester, p, rows, &data.analysis.predicted[span]);
            report
                .estimated
                .expect("a calibrated classifier's estimate")
        })
        .collect()
}

/// A chunk's accuracy (and a binary classifier's F1 and ROC AUC) from its targets (rows
/// without one left out).
fn realized(data: &Data, targets: &[Truth], chunk: usize) -> EstimatedPerformance {
    let span = chunk * data.chunk..(chunk + 1) * data.chunk;
    let pairs = || (data.analysis.predicted[span.clone()].iter()).zip(&targets[span.clone()]);
    if data.classes.len() > 2 {
        let labelled: Vec<bool> = pairs()
            .filter_map(|(p, t)| Some(p.class() == Some((*t)?)))
            .collect();
        let right = labelled.iter().filter(|&&r| r).count();
        return EstimatedPerformance {
            accuracy: Some(right as f64 / labelled.len().max(1) as f64),
            ..EstimatedPerformance::default()
        };
    }
    let scored: Vec<Scored> = pairs()
        .filter_map(|(&p, &t)| {
            Some(Scored {
                score: positive_probability(p)?,
                predicted_positive: p.class() == Some(1),
                probability: f64::from(u8::from(t? == 1)),
            })
        })
        .collect();
    let e = cbpe::estimate(&scored);
    EstimatedPerformance {
        accuracy: e.accuracy,
        f1: e.f1,
        roc_auc: e.roc_auc,
        ..EstimatedPerformance::default()
    }
}

/// A row's target: its class's index among the model's classes (`None`: no target, or one
/// the model does not know).
type Truth = Option<usize>;

/// Each reference and analysis row's target; analysis targets are joined by id when they
/// live in a file of their own.
fn targets(
    manifest: &serde_json::Value,
    name: &str,
    data: &Data,
) -> Result<(Vec<Truth>, Vec<Truth>)> {
    let entry = &manifest["datasets"][name];
    let field = |key: &str| entry[key].as_str().unwrap_or_default().to_string();
    let (target, id) = (field("target"), field("id"));
    let csv = |part: &str| -> Result<RawTable> {
        let path = entry["files"][part]["csv"].as_str().ok_or_else(|| {
            Error::tool(
                "bench-drift",
                format!("the manifest has no {part} CSV of {name}"),
            )
        })?;
        read_csv(Path::new(path))
    };
    let number = |s: &str| s.parse::<f64>().ok();
    let class_of = |cell: &str| -> Truth {
        (data.classes.iter()).position(|class| {
            !cell.is_empty()
                && (cell == class || number(cell).is_some_and(|v| Some(v) == number(class)))
        })
    };
    let reference = csv("reference")?
        .column(&target)?
        .iter()
        .map(|c| class_of(c))
        .collect();
    let analysis = csv("analysis")?;
    let analysis = match analysis.column(&target) {
        Ok(column) => column.iter().map(|c| class_of(c)).collect(),
        Err(_) => {
            let joined = csv("analysis_target")?;
            let by_id: HashMap<&str, &str> = (joined.column(&id)?.iter())
                .zip(joined.column(&target)?)
                .map(|(i, t)| (i.as_str(), t.as_str()))
                .collect();
            (analysis.column(&id)?.iter())
                .map(|i| by_id.get(i.as_str()).and_then(|t| class_of(t)))
                .collect()
        }
    };
    Ok((reference, analysis))
}

/// NannyML CBPE's estimates of the same chunks, from its script's JSON lines.
fn cbpe(
    python: &Path,
    script: &Path,
    manifest: &Path,
    name: &str,
    chunk: usize,
) -> Result<Vec<EstimatedPerformance>> {
    let output = Command::new(python)
        .arg(script)
        .arg("--manifest")
        .arg(manifest)
        .args(["--dataset", name, "--chunk", &chunk.to_string()])
        .output()
        .map_err(|e| Error::tool("bench-drift", format!("{}: {e}", python.display())))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Error::tool(
            "bench-drift",
            format!("{}: {stderr}", script.display()),
        ));
    }
    let value = |line: &serde_json::Value, key: &str| line[key].as_f64();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| {
            let line: serde_json::Value = serde_json::from_str(l)
                .map_err(|e| Error::tool("bench-drift", format!("{l:?}: {e}")))?;
            Ok(EstimatedPerformance {
                accuracy: value(&line, "accuracy"),
                f1: value(&line, "f1"),
                roc_auc: value(&line, "roc_auc"),
                ..EstimatedPerformance::default()
            })
        })
        .collect()
}

/// A tool's row: chunks within [`WITHIN`] of the realized accuracy; the errors' 95th
/// percentile and maximum, in accuracy and ROC AUC, beside it.
fn write(
    out: &mut Output,
    name: &str,
    tool: &str,
    n: usize,
    estimates: &[EstimatedPerformance],
    realized: &[EstimatedPerformance],
) -> Result<()> {
    let errors = |metric: fn(&EstimatedPerformance) -> Option<f64>| -> Vec<f64> {
        let mut e: Vec<f64> = (estimates.iter().zip(realized))
            .filter_map(|(e, r)| Some((metric(e)? - metric(r)?).abs()))
            .collect();
        e.sort_by(f64::total_cmp);
        e
    };
    let accuracy = errors(|e| e.accuracy);
    let auc = errors(|e| e.roc_auc);
    let within = accuracy.iter().filter(|&&e| e <= WITHIN).count() as u64;
    let quantile = |e: &[f64], q: f64| {
        e.get(((e.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
    };
    let mut row = Row::new(
        name,
        tool,
        "within 1.5 points",
        n,
        (within, accuracy.len() as u64),
    );
    row.extra = Some(serde_json::json!({
        "accuracy_error_p95": quantile(&accuracy, 0.95),
        "accuracy_error_max": accuracy.last(),
        "roc_auc_error_p95": quantile(&auc, 0.95),
        "roc_auc_error_max": auc.last(),
        "estimated_accuracy": estimates.iter().map(|e| e.accuracy).collect::<Vec<_>>(),
        "realized_accuracy": realized.iter().map(|e| e.accuracy).collect::<Vec<_>>(),
        "unreliable": estimates.iter().map(|e| e.unreliable).collect::<Vec<_>>(),
    }));
    out.row(row)
}

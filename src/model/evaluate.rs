//! `driftwood models evaluate`: a candidate version and the serving one scored on the same
//! labelled rows. Each figure comes with the difference between the two and a 95% interval
//! of that difference from the paired rows (the same rows scored twice: the spread of the
//! per-row differences, not of two independent samples); rates also with each version's
//! Wilson interval. The verdict (a non-inferiority gate on accuracy, or on MAE for a
//! regressor) is kept in the registry for `promote --require-evaluation`.
//!
//! The file's columns are matched to each version's features by name, so the two versions
//! may order or choose their features differently; the target column is read as each
//! version's classes (names or integer labels) or as a number for a regressor.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::artifact::Model;
use super::dataset::{CsvRows, Missing};
use super::engine::Scored;
use crate::error::{Error, Result};
use crate::stats::dist::normal_upper;
use crate::stats::wilson::wilson;

/// Probabilities are clipped to this before the log (scikit-learn's `log_loss` does too).
const EPSILON: f64 = 1e-15;

/// What to evaluate on, and the gate.
#[derive(Debug, Clone)]
pub struct EvaluateRequest<'a> {
    /// The labelled CSV file.
    pub data: &'a Path,
    /// Its target column.
    pub target: &'a str,
    /// The most the candidate may be worse and pass: accuracy points (0.01 = one point)
    /// for a classifier, a share of the serving version's MAE for a regressor.
    pub tolerance: f64,
}

/// One version's identity in an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub version: String,
    /// Its model file's checksum: an evaluation holds for these bytes only.
    pub model_sha256: String,
}

/// One figure of both versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// `accuracy`, `log_loss`, `recall[CLASS]`, `mae` or `rmse`.
    pub metric: String,
    /// Rows it was computed on.
    pub rows: u64,
    pub candidate: f64,
    pub baseline: f64,
    /// Candidate minus baseline, and its 95% interval.
    pub difference: f64,
    pub low: f64,
    pub high: f64,
    /// For a rate: each version's Wilson 95% interval.
    #[serde(default)]
    pub candidate_interval: Option<(f64, f64)>,
    #[serde(default)]
    pub baseline_interval: Option<(f64, f64)>,
    /// Whether a higher value is better (accuracy, recall) or a lower (losses, errors).
    pub higher_is_better: bool,
}

/// The gate's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The figure it reads.
    pub metric: String,
    pub tolerance: f64,
    pub passed: bool,
    /// In words, with the figures.
    pub reason: String,
}

/// A finished evaluation, as kept in the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub name: String,
    pub candidate: Side,
    pub baseline: Side,
    /// The file and its checksum.
    pub data: String,
    pub data_sha256: String,
    pub rows: u64,
    pub figures: Vec<Figure>,
    pub verdict: Verdict,
    pub evaluated_at: String,
}

/// Scores the file's rows with `candidate` and `baseline` and compares them.
pub fn evaluate(
    (candidate, baseline): (&Model, &Model),
    request: &EvaluateRequest<'_>,
) -> Result<Evaluation> {
    let bytes = std::fs::read(request.data).map_err(|e| Error::io(request.data, e))?;
    let (header, rows, targets) = read(request)?;
    let both = [candidate, baseline];
    if both.iter().any(|m| m.metadata.classes.is_empty())
        != both.iter().all(|m| m.metadata.classes.is_empty())
    {
        return Err(bad(
            request,
            "one version is a classifier, the other a regressor".into(),
        ));
    }
    let [c, b] = both.map(|m| outcomes(m, (&header, &rows, &targets), request));
    let (c, b) = (c?, b?);
    let figures = match (&c, &b) {
        (Outcomes::Classes(c), Outcomes::Classes(b)) => classifier_figures(c, b),
        (Outcomes::Values(c), Outcomes::Values(b)) => regressor_figures(c, b),
        _ => unreachable!("checked above"),
    };
    let verdict = verdict(&figures, request.tolerance);
    let side = |m: &Model| Side {
        version: m.metadata.version.clone(),
        model_sha256: m.metadata.model_sha256.clone(),
    };
    Ok(Evaluation {
        name: candidate.metadata.name.clone(),
        candidate: side(candidate),
        baseline: side(baseline),
        data: request.data.display().to_string(),
        data_sha256: super::artifact::sha256_hex(&bytes),
        rows: rows.len() as u64,
        figures,
        verdict,
        evaluated_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    })
}

fn bad(request: &EvaluateRequest<'_>, message: String) -> Error {
    Error::Training(format!("{}: {message}", request.data.display()))
}

/// A labelled file: its feature names, rows (NaN where empty) and target cells.
type Labelled = (Vec<String>, Vec<Vec<f64>>, Vec<String>);

/// The file's feature names, rows and target cells.
fn read(request: &EvaluateRequest<'_>) -> Result<Labelled> {
    let stream = CsvRows::open(
        request.data,
        request.target,
        "a label",
        |cell: &str| Some(cell.to_owned()),
        Missing::Allowed,
    )?;
    let header = stream.feature_names.clone();
    let (mut rows, mut targets) = (Vec::new(), Vec::new());
    for row in stream {
        let (row, target) = row?;
        rows.push(row);
        targets.push(target);
    }
    if rows.is_empty() {
        return Err(bad(request, "no data rows".into()));
    }
    Ok((header, rows, targets))
}

/// Per row, what one version made of it.
enum Outcomes {
    /// A classifier's: the true class's label as written, whether it was right, and the
    /// log loss of its probability for the true class.
    Classes(Vec<(String, bool, f64)>),
    /// A regressor's: the error (prediction minus truth).
    Values(Vec<f64>),
}

fn outcomes(
    model: &Model,
    (header, rows, targets): (&[String], &[Vec<f64>], &[String]),
    request: &EvaluateRequest<'_>,
) -> Result<Outcomes> {
    let m = &model.metadata;
    let columns: Vec<usize> = (m.features.iter())
        .map(|f| {
            header.iter().position(|h| h == f).ok_or_else(|| {
                bad(
                    request,
                    format!("no column for feature {f:?} of version {}", m.version),
                )
            })
        })
        .collect::<Result<_>>()?;
    let flat: Vec<f64> = (rows.iter())
        .flat_map(|r| columns.iter().map(|&c| r[c]))
        .collect();
    let mut scored = Scored::default();
    model.engine.score(&flat, &mut scored);
    if m.classes.is_empty() {
        return (targets.iter().enumerate())
            .map(|(i, t)| match t.trim().parse::<f64>() {
                Ok(truth) => Ok(scored.probabilities[i] - truth),
                Err(_) => Err(bad(
                    request,
                    format!("row {}: target {t:?} is not a number", i + 1),
                )),
            })
            .collect::<Result<_>>()
            .map(Outcomes::Values);
    }
    let names: Vec<String> = match &m.class_names {
        Some(names) => names.clone(),
        None => m.classes.iter().map(i32::to_string).collect(),
    };
    let outcomes = (targets.iter().enumerate())
        .map(|(i, t)| {
            let truth = names.iter().position(|n| n == t.trim());
            let right = truth == Some(scored.classes[i]);
            let p = truth.map_or(0.0, |k| scored.row(i)[k]);
            (t.trim().to_owned(), right, -p.clamp(EPSILON, 1.0).ln())
        })
        .collect();
    Ok(Outcomes::Classes(outcomes))
}

/// The mean of the paired differences `d` and its 95% interval.
fn paired(d: &[f64]) -> (f64, f64, f64) {
    let n = d.len() as f64;
    let mean = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let half = normal_upper(0.025) * (var / n).sqrt();
    (mean, mean - half, mean + half)
}

fn mean(x: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = x.fold((0.0, 0u64), |(s, n), v| (s + v, n + 1));
    sum / n.max(1) as f64
}

/// A rate's figure over rows where `c` and `b` say whether each version was right.
fn rate(metric: String, pairs: &[(bool, bool)]) -> Figure {
    let n = pairs.len() as u64;
    let hits = |f: fn(&(bool, bool)) -> bool| pairs.iter().filter(|p| f(p)).count() as u64;
    let (kc, kb) = (hits(|p| p.0), hits(|p| p.1));
    let d: Vec<f64> = (pairs.iter())
        .map(|&(c, b)| f64::from(u8::from(c)) - f64::from(u8::from(b)))
        .collect();
    let (difference, low, high) = paired(&d);
    Figure {
        metric,
        rows: n,
        candidate: kc as f64 / n as f64,
        baseline: kb as f64 / n as f64,
        difference,
        low,
        high,
        candidate_interval: Some(wilson(kc, n, 0.95)),
        baseline_interval: Some(wilson(kb, n, 0.95)),
        higher_is_better: true,
    }
}

/// A loss's mean for both versions (lower is better), from each row's loss.
fn mean_loss(metric: &str, c: &[f64], b: &[f64]) -> Figure {
    let d: Vec<f64> = c.iter().zip(b).map(|(c, b)| c - b).collect();
    let (difference, low, high) = paired(&d);
    Figure {
        metric: metric.into(),
        rows: c.len() as u64,
        candidate: mean(c.iter().copied()),
        baseline: mean(b.iter().copied()),
        difference,
        low,
        high,
        candidate_interval: None,
        baseline_interval: None,
        higher_is_better: false,
    }
}

fn classifier_figures(c: &[(String, bool, f64)], b: &[(String, bool, f64)]) -> Vec<Figure> {
    let pairs: Vec<(bool, bool)> = c.iter().zip(b).map(|(c, b)| (c.1, b.1)).collect();
    let mut figures = vec![rate("accuracy".into(), &pairs)];
    let loss = |r: &[(String, bool, f64)]| r.iter().map(|r| r.2).collect::<Vec<_>>();
    figures.push(mean_loss("log_loss", &loss(c), &loss(b)));
    let mut classes: Vec<&str> = c.iter().map(|r| r.0.as_str()).collect();
    classes.sort_unstable();
    classes.dedup();
    for class in classes {
        let of: Vec<(bool, bool)> = (c.iter().zip(b))
            .filter(|(c, _)| c.0 == class)
            .map(|(c, b)| (c.1, b.1))
            .collect();
        figures.push(rate(format!("recall[{class}]"), &of));
    }
    figures
}

fn regressor_figures(c: &[f64], b: &[f64]) -> Vec<Figure> {
    let n = c.len() as u64;
    let abs = |e: &[f64]| e.iter().map(|e| e.abs()).collect::<Vec<_>>();
    let mae = mean_loss("mae", &abs(c), &abs(b));
    let (rc, rb) = (
        mean(c.iter().map(|e| e * e)).sqrt(),
        mean(b.iter().map(|e| e * e)).sqrt(),
    );
    // The delta method: each row's influence on the difference of the two root means.
    let influence: Vec<f64> = (c.iter().zip(b))
        .map(|(c, b)| {
            c * c / (2.0 * rc).max(f64::MIN_POSITIVE) - b * b / (2.0 * rb).max(f64::MIN_POSITIVE)
        })
        .collect();
    let (_, low, high) = paired(&influence);
    let centre = (low + high) / 2.0;
    let rmse = Figure {
        metric: "rmse".into(),
        rows: n,
        candidate: rc,
        baseline: rb,
        difference: rc - rb,
        low: rc - rb - (centre - low),
        high: rc - rb + (high - centre),
        candidate_interval: None,
        baseline_interval: None,
        higher_is_better: false,
    };
    vec![mae, rmse]
}

/// Passes when the candidate is, at 95%, not worse than the baseline by more than the
/// tolerance: the accuracy difference's lower bound at least `-tolerance`, or the MAE
/// difference's upper bound at most `tolerance` × the baseline's MAE.
fn verdict(figures: &[Figure], tolerance: f64) -> Verdict {
    let f = &figures[0];
    let (passed, reason) = match f.metric.as_str() {
        "accuracy" => (
            f.low >= -tolerance,
            format!(
                "accuracy {:.4} against {:.4}: difference {:+.4}, 95% interval [{:+.4}, {:+.4}]; \
                 the candidate may be at most {tolerance} worse",
                f.candidate, f.baseline, f.difference, f.low, f.high
            ),
        ),
        _ => (
            f.high <= tolerance * f.baseline,
            format!(
                "MAE {:.6} against {:.6}: difference {:+.6}, 95% interval [{:+.6}, {:+.6}]; \
                 the candidate may be at most {:.6} ({tolerance} of the serving MAE) worse",
                f.candidate,
                f.baseline,
                f.difference,
                f.low,
                f.high,
                tolerance * f.baseline
            ),
        ),
    };
    Verdict {
        metric: f.metric.clone(),
        tolerance,
        passed,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paired_interval_is_narrower_than_the_rates_apart() {
        // 1,000 rows; the candidate right on the same 900 as the baseline and 10 more.
        let pairs: Vec<(bool, bool)> = (0..1_000).map(|i| (i < 910, i < 900)).collect();
        let f = rate("accuracy".into(), &pairs);
        assert_eq!((f.candidate, f.baseline), (0.91, 0.9));
        assert!((f.difference - 0.01).abs() < 1e-12);
        // Ten discordant rows: the difference's interval is about ±0.0062, where two
        // independent samples of 1,000 would give about ±0.026.
        assert!(f.low > 0.003 && f.high < 0.017, "{f:?}");
        let (cl, ch) = f.candidate_interval.unwrap();
        assert!(cl < 0.91 && ch > 0.91);
        assert!(verdict(std::slice::from_ref(&f), 0.0).passed);
        let worse = rate(
            "accuracy".into(),
            &pairs.iter().map(|&(c, b)| (b, c)).collect::<Vec<_>>(),
        );
        assert!(!verdict(std::slice::from_ref(&worse), 0.0).passed);
        assert!(
            verdict(&[worse], 0.02).passed,
            "within a tolerance of two points"
        );
    }

    #[test]
    fn a_regressor_is_judged_by_its_mae() {
        let c: Vec<f64> = (0..500)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let b: Vec<f64> = c.iter().map(|e| e * 2.0).collect();
        let figures = regressor_figures(&c, &b);
        assert_eq!(figures[0].metric, "mae");
        assert_eq!((figures[0].candidate, figures[0].baseline), (1.0, 2.0));
        assert!(
            (figures[1].difference + 1.0).abs() < 1e-12,
            "{:?}",
            figures[1]
        );
        assert!(verdict(&figures, 0.0).passed);
        let figures = regressor_figures(&b, &c);
        assert!(
            !verdict(&figures, 0.5).passed,
            "twice the error is over half again"
        );
    }
}

//! A window's performance expected without labels, for a classifier whose artifact carries a
//! calibration (`model::calibrate`). A binary classifier's record adds its calibrated
//! probability to the expected confusion matrix and to its score bin, and the report reads
//! accuracy, F1 and ROC AUC from those sums (`stats::cbpe`); another classifier's adds the
//! calibrated probability that its prediction is right, and the report reads the expected
//! accuracy. The sums add up across replicas like the rest of the
//! window's counts. Records are ranked for the AUC by bin ([`SCORE_BINS`] equal bins of the
//! model's probability), records of one bin counting as ties.

use serde::{Deserialize, Serialize};

use super::window::WindowCounts;
use crate::model::Predicted;
use crate::model::calibrate::{Calibration, Fit, positive_probability};
use crate::model::drift_reference::DriftReference;
use crate::stats::cbpe::{self, Confusion};

/// Equal bins of the model's probability of the second class.
pub const SCORE_BINS: usize = 100;

/// What a window's counts let be expected of the model's performance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EstimatedPerformance {
    pub accuracy: Option<f64>,
    pub f1: Option<f64>,
    pub roc_auc: Option<f64>,
    /// The largest share of a feature's values in the reference's two outermost bins (see
    /// `outside_share`).
    #[serde(default)]
    pub outside_share: Option<f64>,
    /// The window left the reference's support (see `outside_share`): the estimate rests on a
    /// calibration that saw few such records.
    #[serde(default)]
    pub unreliable: bool,
    /// The accuracy expected over the window's records that carried a label, beside the
    /// realized accuracy over the same records: their difference is the estimate's error.
    #[serde(default)]
    pub labeled_accuracy: Option<f64>,
}

/// A window is unreliable when some feature has at least this share of its values in the
/// reference's two outermost bins…
pub const OUTSIDE_SHARE: f64 = 0.10;
/// …where the reference holds at most this share of its own (the percentile bins' 2%, not
/// a discrete feature's lumped values)…
const MAX_OUTER_MASS: f64 = 0.05;
/// …and the excess is beyond chance: this many standard errors above the reference's share.
const OUTSIDE_Z: f64 = 4.0;

/// Of the features whose reference holds at most [`MAX_OUTER_MASS`] of its values in the two
/// outermost bins, the largest share the window holds there, and whether one is at least
/// [`OUTSIDE_SHARE`] and [`OUTSIDE_Z`] standard errors above the reference's: where the
/// reference has 2% of its rows, the window has a tenth of its own.
pub fn outside_share(counts: &WindowCounts, reference: &DriftReference) -> (Option<f64>, bool) {
    let (mut largest, mut unreliable) = (None::<f64>, false);
    for (m, c) in reference.features.iter().zip(&counts.features) {
        let (total, n): (u64, i64) = (m.counts.iter().sum(), c.iter().sum());
        if m.counts.len() < 3 || total == 0 || n == 0 {
            continue;
        }
        let r = (m.counts[0] + m.counts[m.counts.len() - 1]) as f64 / total as f64;
        if r > MAX_OUTER_MASS {
            continue;
        }
        let k = (c[0] + c[c.len() - 1]) as f64;
        let share = k / n as f64;
        largest = Some(largest.map_or(share, |l| l.max(share)));
        let z = (k - n as f64 * r) / (n as f64 * r * (1.0 - r)).sqrt().max(f64::MIN_POSITIVE);
        unreliable |= share >= OUTSIDE_SHARE && z >= OUTSIDE_Z;
    }
    (largest, unreliable)
}

/// Shapes `counts` for the estimate: four cells and the score bins.
pub fn shape(counts: &mut WindowCounts) {
    counts.expected = vec![0.0; 4];
    counts.score_records = vec![0; SCORE_BINS];
    counts.score_positives = vec![0.0; SCORE_BINS];
}

/// The correction (`model::calibrate::Correction`, a forest walk of about 1.3 µs) is read
/// for one record in this many, its shift from the isotonic probability counted this many
/// times over: the window's sums stay unbiased and a record costs a quarter of the walk.
pub const CORRECT_EVERY: i64 = 4;

/// Counts one prediction of a calibrated classifier (its features `row`; `labelled` when
/// its label came with it); the calibrated probability that it is right, for a labelled
/// record (see `labeled_expected_correct`).
pub fn observe(
    counts: &mut WindowCounts,
    calibration: &Calibration,
    (row, predicted): (&[f64], Predicted),
    labelled: bool,
) -> Option<f64> {
    match (calibration, predicted) {
        (Calibration::Binary(fit), _) => observe_binary(counts, fit, (row, predicted), labelled),
        (Calibration::Correctness(fit), Predicted::Class { confidence, .. }) => {
            let (counted, own) = calibrated(counts, fit, (confidence, row), labelled);
            let sum = counts.expected_correct.as_mut()?;
            *sum += counted;
            labelled.then_some(own)
        }
        (Calibration::Correctness(_), Predicted::Value(_)) => None,
    }
}

/// A record's calibrated probability as the window counts it (the isotonic map's, plus for
/// one record in [`CORRECT_EVERY`] the correction's shift that many times over) and as it
/// is for the record itself (the correction read when the record is `labelled`).
fn calibrated(
    counts: &WindowCounts,
    fit: &Fit,
    (score, row): (f64, &[f64]),
    labelled: bool,
) -> (f64, f64) {
    let p = fit.apply(score, None);
    let sampled = counts.records % CORRECT_EVERY == 0;
    if fit.correction.is_none() || !(sampled || labelled) {
        return (p, p);
    }
    let own = fit.apply(score, Some(row));
    let counted = match sampled {
        true => p + CORRECT_EVERY as f64 * (own - p),
        false => p,
    };
    (counted, own)
}

fn observe_binary(
    counts: &mut WindowCounts,
    fit: &Fit,
    (row, predicted): (&[f64], Predicted),
    labelled: bool,
) -> Option<f64> {
    let score = positive_probability(predicted)?;
    let (p, own) = calibrated(counts, fit, (score, row), labelled);
    let cell = match predicted {
        Predicted::Class { index: 1, .. } => 0,
        _ => 2,
    };
    counts.expected[cell] += p;
    counts.expected[cell + 1] += 1.0 - p;
    let bin = ((score * SCORE_BINS as f64) as usize).min(SCORE_BINS - 1);
    counts.score_records[bin] += 1;
    counts.score_positives[bin] += p;
    labelled.then_some(if cell == 0 { own } else { 1.0 - own })
}

/// The estimate of a window's counts against `reference`; `None` without a calibration or
/// records.
pub fn estimate(counts: &WindowCounts, reference: &DriftReference) -> Option<EstimatedPerformance> {
    let (outside_share, unreliable) = outside_share(counts, reference);
    let known = EstimatedPerformance {
        outside_share,
        unreliable,
        labeled_accuracy: (counts.labeled > 0)
            .then(|| counts.labeled_expected_correct / counts.labeled as f64),
        ..EstimatedPerformance::default()
    };
    if let Some(correct) = counts.expected_correct {
        return (counts.records > 0).then(|| EstimatedPerformance {
            accuracy: Some(correct / counts.records as f64),
            ..known
        });
    }
    let [tp, fp, fn_, tn] = counts.expected[..] else {
        return None;
    };
    let confusion = Confusion {
        true_positive: tp,
        false_positive: fp,
        false_negative: fn_,
        true_negative: tn,
    };
    if confusion.total() <= 0.0 {
        return None;
    }
    // Highest scores first.
    let steps = (counts
        .score_records
        .iter()
        .zip(&counts.score_positives)
        .rev())
    .map(|(&n, &positives)| (positives, n as f64 - positives));
    Some(EstimatedPerformance {
        accuracy: confusion.accuracy(),
        f1: confusion.f1(),
        roc_auc: cbpe::area_under_steps(steps),
        ..known
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::window::DriftWindow;

    /// The rule as written: a tenth of the window where the reference has 2% is flagged;
    /// what chance puts there, or a twentieth, is not.
    #[test]
    fn a_window_is_unreliable_when_a_tenth_of_it_lies_where_the_reference_is_thin() {
        let rows: Vec<Vec<f64>> = (0..20_000).map(|i| vec![i as f64 / 20_000.0]).collect();
        let predicted = Predicted::Class {
            index: 0,
            confidence: 0.9,
        };
        let reference = DriftReference::from_rows(
            "uniform".into(),
            &rows,
            ("uniform".into(), &vec![predicted; rows.len()]),
            2,
        );
        let window = |far: usize| {
            let mut w = DriftWindow::new(&reference, &[0, 1]);
            for i in 0..5_000 {
                let x = if i < far {
                    5.0
                } else {
                    (i as f64 + 0.5) / 5_000.0
                };
                w.observe(&[x], predicted, None);
            }
            outside_share(&w.take(), &reference)
        };
        let (share, unreliable) = window(0);
        assert!(share.unwrap() < 0.03 && !unreliable, "{share:?}");
        let (share, unreliable) = window(250);
        assert!(share.unwrap() < OUTSIDE_SHARE && !unreliable, "{share:?}");
        let (share, unreliable) = window(500);
        assert!(share.unwrap() >= OUTSIDE_SHARE && unreliable, "{share:?}");
    }

    /// The score says 0.7 for every record; the truth is 0.9 where the feature is positive,
    /// 0.5 where it is not. A window of positive features expects about 0.9 with the
    /// correction read for one record in four, as the exact per-record sum says, where the
    /// score alone says 0.7.
    #[test]
    fn a_window_counts_the_correction_of_a_sample_without_bias() {
        use crate::model::calibrate::CalibrationPass;
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let predicted = Predicted::Class {
            index: 1,
            confidence: 0.7,
        };
        let rows: Vec<Vec<f64>> = (0..20_000)
            .map(|_| vec![rng.random_range(-1.0..1.0)])
            .collect();
        let mut reference = DriftReference::from_rows(
            "uniform".into(),
            &rows,
            ("uniform".into(), &vec![predicted; rows.len()]),
            2,
        );
        let mut pass = CalibrationPass::new(2).unwrap();
        for row in &rows {
            let p = if row[0] > 0.0 { 0.9 } else { 0.5 };
            pass.add(row, predicted, Some(usize::from(rng.random::<f64>() < p)));
        }
        let calibration = pass.finish().expect("a calibration");
        reference.outputs.calibration = Some(calibration.clone());
        let mut w = DriftWindow::new(&reference, &[0, 1]);
        let window: Vec<f64> = (0..4_000).map(|_| rng.random_range(0.0..1.0)).collect();
        for &x in &window {
            w.observe(&[x], predicted, None);
        }
        let estimated = estimate(&w.take(), &reference).unwrap().accuracy.unwrap();
        let exact: f64 = (window.iter())
            .map(|&x| calibration.chance_right(predicted, Some(&[x])).unwrap())
            .sum::<f64>()
            / window.len() as f64;
        let score_alone = calibration.chance_right(predicted, None).unwrap();
        assert!((exact - 0.9).abs() < 0.03, "{exact}");
        assert!((score_alone - 0.7).abs() < 0.03, "{score_alone}");
        assert!((estimated - exact).abs() < 0.005, "{estimated} {exact}");
    }
}

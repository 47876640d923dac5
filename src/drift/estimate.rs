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
use crate::model::calibrate::{Calibration, positive_probability};
use crate::stats::calibration::Isotonic;
use crate::stats::cbpe::{self, Confusion};

/// Equal bins of the model's probability of the second class.
pub const SCORE_BINS: usize = 100;

/// What a window's counts let be expected of the model's performance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EstimatedPerformance {
    pub accuracy: Option<f64>,
    pub f1: Option<f64>,
    pub roc_auc: Option<f64>,
}

/// Shapes `counts` for the estimate: four cells and the score bins.
pub fn shape(counts: &mut WindowCounts) {
    counts.expected = vec![0.0; 4];
    counts.score_records = vec![0; SCORE_BINS];
    counts.score_positives = vec![0.0; SCORE_BINS];
}

/// Counts one prediction of a calibrated classifier.
pub fn observe(counts: &mut WindowCounts, calibration: &Calibration, predicted: Predicted) {
    match (calibration, predicted) {
        (Calibration::Binary(fit), _) => observe_binary(counts, fit, predicted),
        (Calibration::Correctness(fit), Predicted::Class { confidence, .. }) => {
            if let Some(sum) = &mut counts.expected_correct {
                *sum += fit.apply(confidence).clamp(0.0, 1.0);
            }
        }
        (Calibration::Correctness(_), Predicted::Value(_)) => {}
    }
}

fn observe_binary(counts: &mut WindowCounts, calibration: &Isotonic, predicted: Predicted) {
    let (Some(score), false) = (positive_probability(predicted), counts.expected.is_empty()) else {
        return;
    };
    let p = calibration.apply(score).clamp(0.0, 1.0);
    let cell = match predicted {
        Predicted::Class { index: 1, .. } => 0,
        _ => 2,
    };
    counts.expected[cell] += p;
    counts.expected[cell + 1] += 1.0 - p;
    let bin = ((score * SCORE_BINS as f64) as usize).min(SCORE_BINS - 1);
    counts.score_records[bin] += 1;
    counts.score_positives[bin] += p;
}

/// The estimate of a window's counts; `None` without a calibration or records.
pub fn estimate(counts: &WindowCounts) -> Option<EstimatedPerformance> {
    if let Some(correct) = counts.expected_correct {
        return (counts.records > 0).then(|| EstimatedPerformance {
            accuracy: Some(correct / counts.records as f64),
            f1: None,
            roc_auc: None,
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
    })
}

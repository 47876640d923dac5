//! A classifier's calibration, fitted where the model is made (`train` on its held-out rows,
//! `import` on the reference rows) and kept in its drift reference; the label-free
//! performance estimate rests on it (`crate::drift::estimate`, `crate::stats::cbpe`). A binary
//! classifier's maps its probability of the second class to how often a record with it is of
//! that class; any other classifier's maps its confidence to how often it is right.
//!
//! Beside the isotonic map, a calibration fitted on enough rows carries a [`Correction`]: a
//! small forest over the score and the features for what the score alone hides
//! (`correction`). The window's estimate reads both; a prediction awaiting its label (which
//! keeps no features) is judged by the isotonic map alone.
//!
//! Rows the model learned from make it look surer than it is on new records, so the rows
//! should be ones it did not learn from: a trained model's held-out rows; for an imported
//! model, the reference CSV should be such rows too (docs/drift.md says so).

use serde::{Deserialize, Serialize};

use super::engine::Predicted;
use crate::stats::calibration::Isotonic;

mod correction;
pub use correction::{Correction, CorrectionRows};

/// A classifier's calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    /// A binary classifier's: the probability that a record is of the second class, from
    /// the model's probability of it (CBPE's expected confusion matrix rests on it).
    Binary(Fit),
    /// A classifier of three classes or more: the probability that its prediction is right,
    /// from its confidence (the expected accuracy rests on it).
    Correctness(Fit),
}

/// The isotonic map of the score, and the correction that also reads the features (absent
/// when fitted on too few rows, and in artifacts made before it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    #[serde(flatten)]
    pub isotonic: Isotonic,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<Correction>,
}

impl Fit {
    /// The calibrated probability of `score` for a record with features `row` (the isotonic
    /// map alone without `row` or a correction), within [0, 1].
    pub fn apply(&self, score: f64, row: Option<&[f64]>) -> f64 {
        let p = self.isotonic.apply(score);
        let shift = match (&self.correction, row) {
            (Some(c), Some(row)) => c.apply(score, row),
            _ => 0.0,
        };
        (p + shift).clamp(0.0, 1.0)
    }
}

impl Calibration {
    /// Whether it is the kind a classifier of `classes` classes has.
    pub fn fits(&self, classes: usize) -> bool {
        match self {
            Calibration::Binary(_) => classes == 2,
            Calibration::Correctness(_) => classes > 2,
        }
    }

    /// The calibrated chance that `predicted` is right, for a record with features `row` when
    /// they are known.
    pub fn chance_right(&self, predicted: Predicted, row: Option<&[f64]>) -> Option<f64> {
        match (self, predicted) {
            (Calibration::Binary(fit), Predicted::Class { index, .. }) => {
                let p = fit.apply(positive_probability(predicted)?, row);
                Some(if index == 1 { p } else { 1.0 - p })
            }
            (Calibration::Correctness(fit), Predicted::Class { confidence, .. }) => {
                Some(fit.apply(confidence, row))
            }
            _ => None,
        }
    }
}

/// The model's probability that a binary classifier's record is of its second class (the
/// class of index 1): its confidence when it predicted that class, one minus it otherwise.
pub fn positive_probability(predicted: Predicted) -> Option<f64> {
    match predicted {
        Predicted::Class {
            index: 1,
            confidence,
        } => Some(confidence),
        Predicted::Class {
            index: 0,
            confidence,
        } => Some(1.0 - confidence),
        _ => None,
    }
}

/// Labelled rows gathered for the fit: (score, outcome) pairs of the calibration's kind, and
/// a sample of the rows with their features for the correction.
#[derive(Debug)]
pub struct CalibrationPass {
    binary: bool,
    scores: Vec<f64>,
    outcomes: Vec<bool>,
    rows: CorrectionRows,
}

impl CalibrationPass {
    /// For a classifier of `classes` classes; `None` for a regressor (or a single class).
    pub fn new(classes: usize) -> Option<Self> {
        (classes >= 2).then(|| CalibrationPass {
            binary: classes == 2,
            scores: Vec::new(),
            outcomes: Vec::new(),
            rows: CorrectionRows::default(),
        })
    }

    /// One row (its features `row`): the model's prediction and the index of its true class,
    /// if it has one.
    pub fn add(&mut self, row: &[f64], predicted: Predicted, truth: Option<usize>) {
        let (Predicted::Class { index, confidence }, Some(truth)) = (predicted, truth) else {
            return;
        };
        let (score, outcome) = match positive_probability(predicted).filter(|_| self.binary) {
            Some(score) => (score, truth == 1),
            None => (confidence, truth == index),
        };
        self.scores.push(score);
        self.outcomes.push(outcome);
        self.rows.add(score, row, outcome);
    }

    /// The fit; `None` without labelled rows.
    pub fn finish(self) -> Option<Calibration> {
        let isotonic = Isotonic::fit(&self.scores, &self.outcomes).ok()?;
        let correction = self.rows.fit(|score| isotonic.apply(score));
        let fit = Fit {
            isotonic,
            correction,
        };
        Some(match self.binary {
            true => Calibration::Binary(fit),
            false => Calibration::Correctness(fit),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_classifier_is_calibrated_by_class_and_others_by_correctness() {
        assert!(CalibrationPass::new(1).is_none());
        assert!(CalibrationPass::new(2).unwrap().finish().is_none());
        let class = |index, confidence| Predicted::Class { index, confidence };
        let mut pass = CalibrationPass::new(2).unwrap();
        // Sure of class 1 and right; sure of class 0 and wrong half the time.
        pass.add(&[], class(1, 0.9), Some(1));
        pass.add(&[], class(0, 0.9), Some(0));
        pass.add(&[], class(0, 0.9), Some(1));
        pass.add(&[], class(1, 0.9), None);
        let Some(Calibration::Binary(fit)) = pass.finish() else {
            panic!("a binary calibration")
        };
        assert_eq!(fit.apply(0.9, None), 1.0);
        assert_eq!(fit.apply(1.0 - 0.9, None), 0.5);
        assert!(fit.correction.is_none(), "too few rows for a correction");

        let mut pass = CalibrationPass::new(3).unwrap();
        pass.add(&[], class(2, 0.6), Some(2));
        pass.add(&[], class(2, 0.6), Some(0));
        pass.add(&[], class(1, 0.9), Some(1));
        let Some(Calibration::Correctness(fit)) = pass.finish() else {
            panic!("a correctness calibration")
        };
        assert_eq!((fit.apply(0.6, None), fit.apply(0.9, None)), (0.5, 1.0));
    }
}

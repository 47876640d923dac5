//! A binary classifier's calibration, fitted where the model is made (`train` on its held-out
//! rows, `import` on the reference rows) and kept in its drift reference: an isotonic map
//! from the model's probability of the second class to how often a record with it is of that
//! class. The label-free performance estimate rests on it (see `crate::stats::cbpe`).
//!
//! Rows the model learned from make it look surer than it is on new records, so the rows
//! should be ones it did not learn from: a trained model's held-out rows; for an imported
//! model, the reference CSV should be such rows too (docs/models.md says so).

use super::engine::Predicted;
use crate::stats::calibration::Isotonic;

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

/// Labelled rows gathered for the fit (a binary classifier's only).
#[derive(Debug, Default)]
pub struct CalibrationPass {
    scores: Vec<f64>,
    outcomes: Vec<bool>,
}

impl CalibrationPass {
    /// For a model of `classes` classes: `None` unless there are two.
    pub fn new(classes: usize) -> Option<Self> {
        (classes == 2).then(Self::default)
    }

    /// One row: the model's prediction and the index of its true class, if it has one.
    pub fn add(&mut self, predicted: Predicted, truth: Option<usize>) {
        if let (Some(score), Some(truth)) = (positive_probability(predicted), truth) {
            self.scores.push(score);
            self.outcomes.push(truth == 1);
        }
    }

    /// The fit; `None` without labelled rows.
    pub fn finish(self) -> Option<Isotonic> {
        Isotonic::fit(&self.scores, &self.outcomes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_binary_classifier_with_labels_is_calibrated() {
        assert!(CalibrationPass::new(3).is_none());
        assert!(CalibrationPass::new(2).unwrap().finish().is_none());
        let mut pass = CalibrationPass::new(2).unwrap();
        let class = |index, confidence| Predicted::Class { index, confidence };
        // Sure of class 1 and right; sure of class 0 and wrong half the time.
        pass.add(class(1, 0.9), Some(1));
        pass.add(class(0, 0.9), Some(0));
        pass.add(class(0, 0.9), Some(1));
        pass.add(class(1, 0.9), None);
        let fit = pass.finish().unwrap();
        assert_eq!(fit.apply(0.9), 1.0);
        assert_eq!(fit.apply(1.0 - 0.9), 0.5);
    }
}

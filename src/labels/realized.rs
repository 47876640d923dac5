//! One model version's realized performance over one window of joined labels: sums that a
//! window adds to label by label, and the figures read from them (`schemas/performance.avsc`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Probabilities are clipped to this before their log, as scikit-learn's `log_loss` does
/// for float64 (its `eps="auto"`).
const LOG_LOSS_FLOOR: f64 = f64::EPSILON;

/// What the model said of a record, kept until its label comes.
#[derive(Debug, Clone, PartialEq)]
pub enum Said {
    /// A classifier's predicted class (its label) and its probability of every class, in
    /// the model's class order.
    Class {
        /// The predicted label.
        label: i32,
        /// Every class's probability.
        probabilities: Box<[f32]>,
    },
    /// A regressor's value.
    Value(f64),
}

/// The truth a label record brings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Truth {
    /// A class label.
    Class(i32),
    /// A regressor's true value.
    Value(f64),
}

/// Sums over one version's joined pairs in one window.
#[derive(Debug, Default, Clone)]
pub struct Realized {
    joined: u64,
    /// `(actual, predicted)` → count.
    confusion: BTreeMap<(i32, i32), u64>,
    log_loss: f64,
    /// A binary classifier's (probability of its second class, whether the record is of it).
    scores: Vec<(f32, bool)>,
    /// Sum of the calibrated chances of being right, over the pairs that had one.
    chance_right: f64,
    with_chance: u64,
    regression: Regression,
    /// Pairs whose truth did not fit the prediction (a value for a class, or back).
    mismatched: u64,
}

#[derive(Debug, Default, Clone)]
struct Regression {
    n: u64,
    abs: f64,
    sq: f64,
    y: f64,
    y2: f64,
}

/// One version's realized performance in one window, as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionPerformance {
    /// The model.
    pub model_name: String,
    /// Its version.
    pub model_version: String,
    /// Labels joined to this version's predictions.
    pub joined: i64,
    /// Share of the joined predictions that were right (classifier).
    pub accuracy: Option<f64>,
    /// A binary classifier's F1 of its second class; another classifier's macro F1.
    pub f1: Option<f64>,
    /// A binary classifier's ROC AUC (its probability of the second class, ties halved).
    pub roc_auc: Option<f64>,
    /// Mean log loss of the probability given to the true class.
    pub log_loss: Option<f64>,
    /// Per class: support, precision and recall.
    pub classes: Vec<ClassPerformance>,
    /// The accuracy the calibration expected of the same predictions: its difference from
    /// `accuracy` is the label-free estimate's error.
    pub expected_accuracy: Option<f64>,
    /// A regressor's mean absolute error.
    pub mae: Option<f64>,
    /// A regressor's root mean squared error.
    pub rmse: Option<f64>,
    /// A regressor's R² (none when the true values do not vary).
    pub r2: Option<f64>,
}

/// One class's realized figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassPerformance {
    /// The class label.
    pub label: i32,
    /// Joined records truly of this class.
    pub support: i64,
    /// Of the records predicted as this class, the share that were (none if none was).
    pub precision: Option<f64>,
    /// Of the records of this class, the share predicted as it (none if none was of it).
    pub recall: Option<f64>,
}

impl Realized {
    /// Adds one joined pair: what the model said, with the calibrated chance that it was
    /// right if known, against the truth. `classes` is the model's class order.
    pub fn add(&mut self, said: &Said, chance_right: Option<f32>, truth: Truth, classes: &[i32]) {
        match (said, truth) {
            (
                Said::Class {
                    label,
                    probabilities,
                },
                Truth::Class(actual),
            ) => {
                self.joined += 1;
                *self.confusion.entry((actual, *label)).or_default() += 1;
                let p_true = (classes.iter().position(|&c| c == actual))
                    .and_then(|i| probabilities.get(i))
                    .map_or(0.0, |&p| f64::from(p));
                self.log_loss -= p_true.clamp(LOG_LOSS_FLOOR, 1.0).ln();
                if classes.len() == 2 {
                    self.scores.push((probabilities[1], actual == classes[1]));
                }
                if let Some(chance) = chance_right {
                    self.chance_right += f64::from(chance);
                    self.with_chance += 1;
                }
            }
            (Said::Value(predicted), Truth::Value(actual)) => {
                self.joined += 1;
                let r = &mut self.regression;
                let error = predicted - actual;
                r.n += 1;
                r.abs += error.abs();
                r.sq += error * error;
                r.y += actual;
                r.y2 += actual * actual;
            }
            _ => self.mismatched += 1,
        }
    }

    /// Pairs whose truth did not fit the prediction's kind.
    pub fn mismatched(&self) -> u64 {
        self.mismatched
    }

    /// The figures, for `model_name` `model_version` with `classes`.
    pub fn figures(&self, model: (&str, &str), classes: &[i32]) -> VersionPerformance {
        let n = self.joined as f64;
        let classified = !self.confusion.is_empty();
        let correct: u64 = (self.confusion.iter())
            .filter(|((a, p), _)| a == p)
            .map(|(_, c)| c)
            .sum();
        let per_class = self.per_class(classes);
        let r = &self.regression;
        let rn = r.n as f64;
        let sst = r.y2 - r.y * r.y / rn.max(1.0);
        VersionPerformance {
            model_name: model.0.to_owned(),
            model_version: model.1.to_owned(),
            joined: self.joined as i64,
            accuracy: classified.then(|| correct as f64 / n),
            f1: classified.then(|| f1(&per_class, classes)).flatten(),
            roc_auc: (classes.len() == 2)
                .then(|| roc_auc(&self.scores))
                .flatten(),
            log_loss: classified.then(|| self.log_loss / n),
            classes: if classified { per_class } else { Vec::new() },
            expected_accuracy: (self.with_chance > 0)
                .then(|| self.chance_right / self.with_chance as f64),
            mae: (r.n > 0).then(|| r.abs / rn),
            rmse: (r.n > 0).then(|| (r.sq / rn).sqrt()),
            r2: (r.n > 0 && sst > 0.0).then(|| 1.0 - r.sq / sst),
        }
    }

    fn per_class(&self, classes: &[i32]) -> Vec<ClassPerformance> {
        let mut labels: Vec<i32> = classes.to_vec();
        for &(a, p) in self.confusion.keys() {
            for c in [a, p] {
                if !labels.contains(&c) {
                    labels.push(c);
                }
            }
        }
        (labels.into_iter())
            .map(|c| {
                let count = |f: &dyn Fn(i32, i32) -> bool| -> u64 {
                    (self.confusion.iter())
                        .filter(|((a, p), _)| f(*a, *p))
                        .map(|(_, n)| n)
                        .sum()
                };
                let hit = count(&|a, p| a == c && p == c);
                let support = count(&|a, _| a == c);
                let predicted = count(&|_, p| p == c);
                let share = |of: u64| (of > 0).then(|| hit as f64 / of as f64);
                ClassPerformance {
                    label: c,
                    support: support as i64,
                    precision: share(predicted),
                    recall: share(support),
                }
            })
            .collect()
    }
}

/// A binary classifier's F1 of its second class; another's macro F1 over the classes with
/// records (true or predicted). F1 of a class none was of and none predicted as is skipped.
fn f1(per_class: &[ClassPerformance], classes: &[i32]) -> Option<f64> {
    let of = |c: &ClassPerformance| match (c.precision, c.recall) {
        (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
        (None, None) => None,
        _ => Some(0.0),
    };
    if classes.len() == 2 {
        let positive = per_class.iter().find(|c| c.label == classes[1])?;
        return of(positive);
    }
    let scores: Vec<f64> = per_class.iter().filter_map(of).collect();
    (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64)
}

/// The ROC AUC of `(score, positive)` pairs: the share of (positive, negative) pairs the
/// score orders right, ties counting half (Mann–Whitney); none without both kinds.
pub fn roc_auc(scores: &[(f32, bool)]) -> Option<f64> {
    let mut sorted = scores.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut negatives_below, mut pairs_right) = (0.0f64, 0.0f64);
    let mut i = 0;
    while i < sorted.len() {
        let tied = sorted[i..]
            .iter()
            .take_while(|s| s.0 == sorted[i].0)
            .count();
        let group = &sorted[i..i + tied];
        let positives = group.iter().filter(|s| s.1).count() as f64;
        let negatives = tied as f64 - positives;
        pairs_right += positives * (negatives_below + negatives / 2.0);
        negatives_below += negatives;
        i += tied;
    }
    let positives = scores.iter().filter(|s| s.1).count() as f64;
    let negatives = scores.len() as f64 - positives;
    (positives > 0.0 && negatives > 0.0).then(|| pairs_right / (positives * negatives))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(label: i32, p1: f32) -> Said {
        Said::Class {
            label,
            probabilities: vec![1.0 - p1, p1].into(),
        }
    }

    #[test]
    fn a_binary_window_reads_as_scikit_learn_would() {
        // y_true [0, 0, 1, 1, 1], p(1) [0.2, 0.6, 0.7, 0.4, 0.9], predicted by p >= 0.5.
        // scikit-learn: accuracy 0.6, f1 (pos 1) 2/3, roc_auc 5/6, log_loss 0.5318.
        let mut r = Realized::default();
        for (actual, p) in [(0, 0.2f32), (0, 0.6), (1, 0.7), (1, 0.4), (1, 0.9)] {
            let said = class(i32::from(p >= 0.5), p);
            r.add(&said, Some(0.5), Truth::Class(actual), &[0, 1]);
        }
        let f = r.figures(("m", "1"), &[0, 1]);
        assert_eq!(f.joined, 5);
        assert!((f.accuracy.unwrap() - 0.6).abs() < 1e-12);
        assert!((f.f1.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((f.roc_auc.unwrap() - 5.0 / 6.0).abs() < 1e-12);
        let expected_loss = -[0.8f32, 0.4, 0.7, 0.4, 0.9]
            .iter()
            .map(|&p| f64::from(p).ln())
            .sum::<f64>()
            / 5.0;
        assert!(
            (f.log_loss.unwrap() - expected_loss).abs() < 1e-6,
            "probabilities are kept as f32"
        );
        assert_eq!(f.expected_accuracy, Some(0.5));
        let one = f.classes.iter().find(|c| c.label == 1).unwrap();
        assert_eq!(
            (one.support, one.precision, one.recall),
            (3, Some(2.0 / 3.0), Some(2.0 / 3.0))
        );
        assert_eq!((f.mae, f.rmse, f.r2), (None, None, None));
    }

    #[test]
    fn tied_scores_count_half_in_the_auc() {
        assert_eq!(roc_auc(&[(0.5, true), (0.5, false)]), Some(0.5));
        assert_eq!(roc_auc(&[(0.1, false), (0.9, true)]), Some(1.0));
        assert_eq!(roc_auc(&[(0.1, true)]), None, "one kind only");
    }

    #[test]
    fn a_regressor_window_reads_mae_rmse_and_r2() {
        let mut r = Realized::default();
        for (predicted, actual) in [(1.0, 1.5), (2.0, 2.0), (3.0, 2.5)] {
            r.add(&Said::Value(predicted), None, Truth::Value(actual), &[]);
        }
        r.add(&Said::Value(1.0), None, Truth::Class(1), &[]);
        let f = r.figures(("m", "1"), &[]);
        assert_eq!((f.joined, r.mismatched()), (3, 1));
        assert!((f.mae.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!((f.rmse.unwrap() - (0.5f64 / 3.0).sqrt()).abs() < 1e-12);
        // SST = 0.5, SSE = 0.5.
        assert!(f.r2.unwrap().abs() < 1e-12);
        assert_eq!((f.accuracy, f.log_loss, f.classes.len()), (None, None, 0));
    }
}

//! A binary classifier's performance expected from its calibrated probabilities, before any
//! label arrives (confidence-based performance estimation, as NannyML's CBPE): a record
//! predicted positive with calibrated probability p counts p of a true positive and 1 − p of
//! a false positive, and so on, giving an expected confusion matrix; accuracy and F1 are read
//! from it, and ROC AUC from the scores' ranking with the probabilities as fractional labels.
//!
//! The estimate holds under covariate shift (the features move, their relation to the label
//! does not) and within the reference's support, where the calibration was fitted. Concept
//! drift cannot be seen without labels.

/// One scored record: its raw score for the positive class (what the model ranks by), the
/// class it predicted, and the calibrated probability that it is positive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub score: f64,
    pub predicted_positive: bool,
    pub probability: f64,
}

/// A window's expected confusion matrix (sums of probabilities, not counts).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Confusion {
    pub true_positive: f64,
    pub false_positive: f64,
    pub false_negative: f64,
    pub true_negative: f64,
}

impl Confusion {
    /// Adds one record's expected share of each cell.
    pub fn add(&mut self, predicted_positive: bool, probability: f64) {
        let p = probability.clamp(0.0, 1.0);
        if predicted_positive {
            self.true_positive += p;
            self.false_positive += 1.0 - p;
        } else {
            self.false_negative += p;
            self.true_negative += 1.0 - p;
        }
    }

    /// Records counted.
    pub fn total(&self) -> f64 {
        self.true_positive + self.false_positive + self.false_negative + self.true_negative
    }

    /// (TP + TN) / n; `None` when empty.
    pub fn accuracy(&self) -> Option<f64> {
        let n = self.total();
        (n > 0.0).then(|| (self.true_positive + self.true_negative) / n)
    }

    /// 2 TP / (2 TP + FP + FN); `None` when there is nothing positive either way.
    pub fn f1(&self) -> Option<f64> {
        let d = 2.0 * self.true_positive + self.false_positive + self.false_negative;
        (d > 0.0).then(|| 2.0 * self.true_positive / d)
    }
}

/// A window's expected accuracy, F1 and ROC AUC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expected {
    pub confusion: Confusion,
    pub accuracy: Option<f64>,
    pub f1: Option<f64>,
    pub roc_auc: Option<f64>,
}

/// The expected performance over `records` (a window).
pub fn estimate(records: &[Scored]) -> Expected {
    let mut confusion = Confusion::default();
    for r in records {
        confusion.add(r.predicted_positive, r.probability);
    }
    Expected {
        confusion,
        accuracy: confusion.accuracy(),
        f1: confusion.f1(),
        roc_auc: expected_roc_auc(records),
    }
}

/// The area under the ROC curve traced by ranking `records` by score, each counting p of a
/// positive and 1 − p of a negative (ties in score make one step, the trapezoid between);
/// `None` when the expected positives or negatives are zero.
pub fn expected_roc_auc(records: &[Scored]) -> Option<f64> {
    let mut ranked: Vec<(f64, f64)> = (records.iter())
        .filter(|r| r.score.is_finite() && r.probability.is_finite())
        .map(|r| (r.score, r.probability.clamp(0.0, 1.0)))
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let ties = ranked.chunk_by(|a, b| a.0 == b.0);
    area_under_steps(ties.map(|tie| {
        let positives: f64 = tie.iter().map(|r| r.1).sum();
        (positives, tie.len() as f64 - positives)
    }))
}

/// The area under the ROC curve of `steps`, groups of records from the highest score down,
/// each (expected positives, expected negatives), records of a group tied; `None` when
/// either total is zero.
pub fn area_under_steps(steps: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
    let (mut tp, mut fp, mut area) = (0.0, 0.0, 0.0);
    for (positives, negatives) in steps {
        area += negatives * (2.0 * tp + positives) / 2.0;
        tp += positives;
        fp += negatives;
    }
    (tp > 0.0 && fp > 0.0).then(|| area / (tp * fp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certain_probabilities_give_the_realized_figures() {
        // With probabilities 0 or 1 the expectation is the count itself.
        let r = |score: f64, predicted_positive: bool, positive: bool| Scored {
            score,
            predicted_positive,
            probability: f64::from(u8::from(positive)),
        };
        let records = [
            r(0.9, true, true),
            r(0.8, true, false),
            r(0.7, true, true),
            r(0.3, false, true),
            r(0.2, false, false),
        ];
        let e = estimate(&records);
        assert_eq!(e.accuracy, Some(3.0 / 5.0));
        assert_eq!(e.f1, Some(4.0 / 6.0));
        // Positives ranked 1, 3, 4 of 5; negatives 2 and 5: pairs positive above negative
        // 2 + 1 + 1 = 4 of 6 (the Mann-Whitney count).
        assert_eq!(e.roc_auc, Some(4.0 / 6.0));
    }

    #[test]
    fn fractional_labels_count_as_such_and_ties_take_half() {
        let records = [
            Scored {
                score: 0.5,
                predicted_positive: true,
                probability: 1.0,
            },
            Scored {
                score: 0.5,
                predicted_positive: true,
                probability: 0.0,
            },
        ];
        assert_eq!(expected_roc_auc(&records), Some(0.5));
        let all_negative = [Scored {
            score: 0.1,
            predicted_positive: false,
            probability: 0.0,
        }];
        assert_eq!(expected_roc_auc(&all_negative), None);
        assert_eq!(estimate(&[]).accuracy, None);
    }
}

/// The estimate against the realized figures on simulated covariate shift: a model whose
/// scores are monotone in the truth but not calibrated, calibrated on reference rows of one
/// seed, estimated on windows of another.
#[cfg(test)]
mod simulation {
    use rand::{Rng, SeedableRng};
    use rand_distr::StandardNormal;

    use super::*;
    use crate::stats::calibration::Isotonic;

    fn sigmoid(z: f64) -> f64 {
        1.0 / (1.0 + (-z).exp())
    }

    /// A record at feature `x`: the model's score, and its true label drawn from
    /// P(positive | x) = sigmoid(2x), the same in every window.
    fn draw(rng: &mut impl Rng, shift: f64) -> (f64, bool) {
        let x = shift + rng.sample::<f64, _>(StandardNormal);
        let score = sigmoid(3.0 * x + 0.5);
        (score, rng.random::<f64>() < sigmoid(2.0 * x))
    }

    #[test]
    fn calibrated_estimates_land_within_a_point_and_a_half_under_covariate_shift() {
        let mut reference = rand::rngs::StdRng::seed_from_u64(11);
        let (scores, outcomes): (Vec<f64>, Vec<bool>) =
            (0..20_000).map(|_| draw(&mut reference, 0.0)).unzip();
        let calibration = Isotonic::fit(&scores, &outcomes).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        let (mut within, mut raw_within, mut windows) = (0, 0, 0);
        for shift in [-0.5, -0.25, 0.0, 0.25, 0.5] {
            for _ in 0..40 {
                let rows: Vec<(f64, bool)> = (0..5_000).map(|_| draw(&mut rng, shift)).collect();
                let realized = (rows.iter()).filter(|(s, y)| (*s >= 0.5) == *y).count() as f64
                    / rows.len() as f64;
                let scored = |calibrate: bool| -> Vec<Scored> {
                    (rows.iter())
                        .map(|&(score, _)| Scored {
                            score,
                            predicted_positive: score >= 0.5,
                            probability: if calibrate {
                                calibration.apply(score)
                            } else {
                                score
                            },
                        })
                        .collect()
                };
                let error =
                    |calibrate| (estimate(&scored(calibrate)).accuracy.unwrap() - realized).abs();
                within += usize::from(error(true) <= 0.015);
                raw_within += usize::from(error(false) <= 0.015);
                windows += 1;
            }
        }
        eprintln!("within 1.5 points: calibrated {within}, raw scores {raw_within}, of {windows}");
        assert!(
            within * 100 >= windows * 95,
            "{within} of {windows} windows within 1.5 points"
        );
        assert!(
            raw_within < within,
            "the uncalibrated scores do worse: {raw_within} against {within} of {windows}"
        );
    }
}

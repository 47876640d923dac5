//! A classifier's scores turned into probabilities that match how often it is right: isotonic
//! regression (pool adjacent violators) of the outcome on the score, fitted on labelled
//! reference rows. The fit is monotone and piecewise linear between the pooled blocks, as
//! scikit-learn's `IsotonicRegression(out_of_bounds="clip")`, which NannyML's CBPE uses.
//!
//! It is what a label-free performance estimate rests on: where the calibrated probability
//! says 0.8, about 80% of such records are positive, as long as the relation between features
//! and label stays as in the reference (covariate shift only; a changed relation is concept
//! drift, which no estimate made without labels can see).

use serde::{Deserialize, Serialize};

/// A fitted isotonic map from score to probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isotonic {
    /// Increasing scores (each block's lowest and highest, duplicates removed).
    scores: Vec<f64>,
    /// The probability at each of `scores`, non-decreasing.
    values: Vec<f64>,
}

/// Why a calibration could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// Scores and outcomes of different lengths.
    #[error("{scores} scores but {outcomes} outcomes")]
    Lengths { scores: usize, outcomes: usize },
    /// No row, or no row with a finite score.
    #[error("no labelled row with a finite score to calibrate on")]
    Empty,
}

impl Isotonic {
    /// Fits the outcome (`true` for the positive class) on the score. Rows whose score is
    /// not finite are left out.
    pub fn fit(scores: &[f64], outcomes: &[bool]) -> Result<Self, FitError> {
        if scores.len() != outcomes.len() {
            return Err(FitError::Lengths {
                scores: scores.len(),
                outcomes: outcomes.len(),
            });
        }
        let mut rows: Vec<(f64, f64)> = (scores.iter().zip(outcomes))
            .filter(|(s, _)| s.is_finite())
            .map(|(&s, &y)| (s, f64::from(u8::from(y))))
            .collect();
        if rows.is_empty() {
            return Err(FitError::Empty);
        }
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let blocks = pool_adjacent_violators(&rows);
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for b in &blocks {
            for x in [b.low, b.high] {
                if xs.last() != Some(&x) {
                    xs.push(x);
                    ys.push(b.mean);
                }
            }
        }
        Ok(Isotonic {
            scores: xs,
            values: ys,
        })
    }

    /// The calibrated probability of a score: linear between the fitted points, clipped to
    /// the first and last outside them. A NaN score maps to NaN.
    pub fn apply(&self, score: f64) -> f64 {
        let (xs, ys) = (&self.scores, &self.values);
        if score.is_nan() {
            return f64::NAN;
        }
        let i = xs.partition_point(|&x| x <= score);
        if i == 0 {
            return ys[0];
        }
        if i == xs.len() {
            return ys[xs.len() - 1];
        }
        let (x0, x1, y0, y1) = (xs[i - 1], xs[i], ys[i - 1], ys[i]);
        y0 + (y1 - y0) * (score - x0) / (x1 - x0)
    }

    /// How many points the fitted function has (for the artifact's size).
    pub fn points(&self) -> usize {
        self.scores.len()
    }
}

/// A run of rows pooled to one value.
struct Block {
    low: f64,
    high: f64,
    /// Rows in the block and their outcomes' sum.
    weight: f64,
    sum: f64,
    mean: f64,
}

/// The isotonic fit of `rows` (score, outcome), sorted by score: rows of equal score are
/// pooled first, then adjacent blocks whose means decrease, until none do.
fn pool_adjacent_violators(rows: &[(f64, f64)]) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for &(x, y) in rows {
        match blocks.last_mut() {
            Some(last) if last.high == x => {
                last.weight += 1.0;
                last.sum += y;
                last.mean = last.sum / last.weight;
            }
            _ => blocks.push(Block {
                low: x,
                high: x,
                weight: 1.0,
                sum: y,
                mean: y,
            }),
        }
        while blocks.len() > 1 && blocks[blocks.len() - 2].mean >= blocks[blocks.len() - 1].mean {
            let last = blocks.pop().expect("two blocks");
            let before = blocks.last_mut().expect("two blocks");
            before.high = last.high;
            before.weight += last.weight;
            before.sum += last.sum;
            before.mean = before.sum / before.weight;
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_makes_the_fit_monotone_and_keeps_the_means() {
        // Outcomes by increasing score 0 1 0 0 1 1 0 1: PAV pools (1 0 0) to 1/3 and (1 1 0)
        // to 2/3, worked by hand.
        let scores = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let outcomes = [false, true, false, false, true, true, false, true];
        let fit = Isotonic::fit(&scores, &outcomes).unwrap();
        let fitted: Vec<f64> = scores.iter().map(|&s| fit.apply(s)).collect();
        // Monotone, and the fitted values add up to the outcomes (PAV keeps block sums).
        assert!(fitted.windows(2).all(|w| w[0] <= w[1]), "{fitted:?}");
        let total: f64 = fitted.iter().sum();
        assert!((total - 4.0).abs() < 1e-12, "{total}");
        let (third, two_thirds) = (1.0 / 3.0, 2.0 / 3.0);
        let expected = [
            0.0, third, third, third, two_thirds, two_thirds, two_thirds, 1.0,
        ];
        for (got, want) in fitted.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{fitted:?}");
        }
    }

    #[test]
    fn between_blocks_it_interpolates_and_outside_it_clips() {
        let fit = Isotonic::fit(&[0.0, 1.0], &[false, true]).unwrap();
        assert_eq!(fit.apply(0.25), 0.25);
        assert_eq!(fit.apply(-3.0), 0.0);
        assert_eq!(fit.apply(9.0), 1.0);
        assert!(fit.apply(f64::NAN).is_nan());
    }

    #[test]
    fn ties_are_pooled_and_bad_input_is_named() {
        let fit = Isotonic::fit(&[0.5, 0.5, 0.5, 0.5], &[true, false, true, true]).unwrap();
        assert_eq!(fit.apply(0.5), 0.75);
        assert_eq!(fit.points(), 1);
        assert_eq!(
            Isotonic::fit(&[0.1], &[]),
            Err(FitError::Lengths {
                scores: 1,
                outcomes: 0
            })
        );
        assert_eq!(Isotonic::fit(&[f64::NAN], &[true]), Err(FitError::Empty));
    }
}

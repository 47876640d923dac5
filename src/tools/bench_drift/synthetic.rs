//! The synthetic world of the drift benchmark: 30 correlated Gaussian features (correlation
//! 0.5^|i−j|), a linear classifier on them, and the scenarios windows are drawn under.

use rand::Rng;
use rand::seq::IndexedRandom;

use crate::model::Predicted;
use crate::stats::dist::normal_upper;
use crate::stats::simulate::Gaussian;

/// Features.
pub const FEATURES: usize = 30;
/// Correlation of neighbouring features; it decays as a power of the distance.
const NEIGHBOURS: f64 = 0.5;

/// What windows are drawn under.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scenario {
    /// Nothing moves.
    Null,
    /// One random feature's mean moves this many standard deviations.
    Mean(f64),
    /// One random feature's standard deviation is multiplied by this.
    Scale(f64),
    /// One random pair's correlation grows by this, every marginal unchanged.
    Correlation(f64),
    /// Every feature moves a little along the classifier's direction, so that the share of
    /// class 1 predictions goes from 50% to this; no feature moves enough to see alone.
    ClassMix(f64),
    /// One random feature's mean moves this much, from the first window on, for good.
    Persistent(f64),
}

impl Scenario {
    /// A short name for tables.
    pub fn name(&self) -> String {
        match *self {
            Scenario::Null => "no shift".into(),
            Scenario::Mean(d) => format!("mean {d:.2} sd"),
            Scenario::Scale(s) => format!("scale ×{s:.2}"),
            Scenario::Correlation(r) => format!("correlation +{r:.2}"),
            Scenario::ClassMix(p) => format!("class mix 50% → {:.0}%", p * 100.0),
            Scenario::Persistent(d) => format!("persistent {d:.2} sd"),
        }
    }
}

/// Where a window's shift is.
#[derive(Debug, Clone)]
pub struct Target {
    /// The feature moved, if one is.
    pub feature: Option<usize>,
    /// The pair whose correlation changed, if one did.
    pub pair: Option<(usize, usize)>,
    /// The distribution the window is drawn from when its covariance changed.
    changed: Option<Gaussian>,
}

/// The features' distribution and the classifier.
#[derive(Debug, Clone)]
pub struct World {
    gaussian: Gaussian,
    /// Standard deviation of the sum of the features.
    sum_sd: f64,
}

fn covariance(i: usize, j: usize) -> f64 {
    NEIGHBOURS.powi(i.abs_diff(j) as i32)
}

impl Default for World {
    fn default() -> Self {
        let variance: f64 = (0..FEATURES)
            .flat_map(|i| (0..FEATURES).map(move |j| covariance(i, j)))
            .sum();
        World {
            gaussian: Gaussian::new(FEATURES, covariance),
            sum_sd: variance.sqrt(),
        }
    }
}

impl World {
    /// `n` rows of the unshifted world, row-major.
    pub fn rows(&self, n: usize, rng: &mut impl Rng) -> Vec<f64> {
        (0..n).flat_map(|_| self.gaussian.draw(rng)).collect()
    }

    /// The sum of a row's features over its standard deviation.
    pub fn standardized_sum(&self, row: &[f64]) -> f64 {
        row.iter().sum::<f64>() / self.sum_sd
    }

    /// The classifier: class 1 when the standardized sum of the features is positive,
    /// confident as the logistic of twice its size.
    pub fn predict(&self, row: &[f64]) -> Predicted {
        let s = self.standardized_sum(row);
        Predicted::Class {
            index: usize::from(s > 0.0),
            confidence: 1.0 / (1.0 + (-2.0 * s.abs()).exp()),
        }
    }

    /// Where `scenario` puts a window's shift: a random feature or pair.
    pub fn target(&self, scenario: Scenario, rng: &mut impl Rng) -> Target {
        let feature = rng.random_range(0..FEATURES);
        let mut target = Target {
            feature: None,
            pair: None,
            changed: None,
        };
        match scenario {
            Scenario::Mean(_) | Scenario::Scale(_) | Scenario::Persistent(_) => {
                target.feature = Some(feature)
            }
            Scenario::Correlation(by) => {
                let pairs: Vec<(usize, usize)> = (0..FEATURES)
                    .flat_map(|i| (i + 1..FEATURES).map(move |j| (i, j)))
                    .collect();
                // A pair whose changed matrix is still a covariance (almost all are).
                loop {
                    let &(a, b) = pairs.choose(rng).expect("pairs");
                    let changed = |i: usize, j: usize| {
                        let bump = if (i, j) == (a, b) || (j, i) == (a, b) {
                            by
                        } else {
                            0.0
                        };
                        covariance(i, j) + bump
                    };
                    let factor = crate::stats::linalg::Cholesky::new(FEATURES, changed);
                    if factor.rank() == FEATURES {
                        target.pair = Some((a, b));
                        target.changed = Some(Gaussian::new(FEATURES, changed));
                        break;
                    }
                }
            }
            Scenario::Null | Scenario::ClassMix(_) => {}
        }
        target
    }

    /// `n` rows of a window under `scenario` at `target`, row-major.
    pub fn window(
        &self,
        scenario: Scenario,
        target: &Target,
        n: usize,
        rng: &mut impl Rng,
    ) -> Vec<f64> {
        let gaussian = target.changed.as_ref().unwrap_or(&self.gaussian);
        let mut rows: Vec<f64> = (0..n).flat_map(|_| gaussian.draw(rng)).collect();
        let every = |rows: &mut Vec<f64>, f: usize, change: &dyn Fn(f64) -> f64| {
            rows.iter_mut()
                .skip(f)
                .step_by(FEATURES)
                .for_each(|x| *x = change(*x));
        };
        match (scenario, target.feature) {
            (Scenario::Mean(d) | Scenario::Persistent(d), Some(f)) => {
                every(&mut rows, f, &|x| x + d)
            }
            (Scenario::Scale(s), Some(f)) => every(&mut rows, f, &|x| x * s),
            (Scenario::ClassMix(share), _) => {
                // P(sum > 0) = share when every feature moves by c: c · p / sd(sum) = z.
                let c = normal_upper(1.0 - share) * self.sum_sd / FEATURES as f64;
                rows.iter_mut().for_each(|x| *x += c);
            }
            _ => {}
        }
        rows
    }
}

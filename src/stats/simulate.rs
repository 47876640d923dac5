//! Seeded data for checking the tests: correlated Gaussian rows.

use rand::Rng;
use rand_distr::StandardNormal;

use super::linalg::Cholesky;

/// A zero-mean Gaussian vector with a given covariance.
#[derive(Debug, Clone)]
pub struct Gaussian {
    p: usize,
    factor: Cholesky,
}

impl Gaussian {
    /// Covariance `covariance(i, j)` of p variables (positive definite).
    pub fn new(p: usize, covariance: impl Fn(usize, usize) -> f64) -> Self {
        let factor = Cholesky::new(p, covariance);
        assert_eq!(factor.rank(), p, "the covariance must be positive definite");
        Gaussian { p, factor }
    }

    /// p unit-variance variables, every pair correlated `rho`.
    pub fn equicorrelated(p: usize, rho: f64) -> Self {
        Gaussian::new(p, |i, j| if i == j { 1.0 } else { rho })
    }

    /// Variables.
    pub fn dimension(&self) -> usize {
        self.p
    }

    /// One draw.
    pub fn draw(&self, rng: &mut impl Rng) -> Vec<f64> {
        let z: Vec<f64> = (0..self.p).map(|_| rng.sample(StandardNormal)).collect();
        self.factor.correlate(&z)
    }
}

/// Counts `values` into the bins of `marginal` (missing values left out).
pub fn count_into(
    marginal: &super::profile::Marginal,
    values: impl Iterator<Item = f64>,
) -> Vec<f64> {
    let mut counts = vec![0.0; marginal.counts.len()];
    for v in values.filter(|v| !v.is_nan()) {
        counts[marginal.bin(v)] += 1.0;
    }
    counts
}

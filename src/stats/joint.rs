//! Tests of the joint distribution, on the normal scores of complete rows
//! ([`crate::stats::profile`]): a change of correlation in a pair of variables, and a shift
//! of the whole vector of means (Hotelling's T²).

use super::dist::{f_upper, normal_two_sided};
use super::linalg::Cholesky;
use super::profile::{Joint, packed, pair_index};

/// A window's sums over the scores of its complete rows: mergeable by addition.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSums {
    /// Complete rows.
    pub rows: f64,
    /// Σ s per variable.
    pub sums: Vec<f64>,
    /// Σ s_i s_j, upper triangle with the diagonal ([`packed`]).
    pub products: Vec<f64>,
}

impl ScoreSums {
    /// Variables.
    pub fn dimension(&self) -> usize {
        self.sums.len()
    }

    /// The sample correlation of variables i < j (NaN when either does not vary).
    pub fn correlation(&self, i: usize, j: usize) -> f64 {
        let (p, n) = (self.dimension(), self.rows);
        let (mi, mj) = (self.sums[i] / n, self.sums[j] / n);
        let cov =
            |a: usize, b: usize, ma: f64, mb: f64| self.products[packed(p, a, b)] / n - ma * mb;
        let (vi, vj) = (cov(i, i, mi, mi), cov(j, j, mj, mj));
        if vi <= 0.0 || vj <= 0.0 {
            return f64::NAN;
        }
        cov(i, j, mi, mj) / (vi * vj).sqrt()
    }
}

/// One pair's correlation in the window against the reference's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairTest {
    /// The reference's correlation of the pair's scores.
    pub reference: f64,
    /// The window's.
    pub window: f64,
    /// z = (atanh r_w − atanh ρ_r) / √(v (1/n + 1/m)), v the reference's Fisher variance
    /// factor: asymptotically standard normal when the correlation has not changed.
    pub z: f64,
    /// Its two-sided p-value.
    pub p_value: f64,
}

/// Whether the pair (i, j) can be tested against `reference`: both vary, the correlation is
/// not ±1 and its Fisher variance is known.
pub fn testable_pair(reference: &Joint, i: usize, j: usize) -> bool {
    let p = reference.means.len();
    let rho = reference.correlation(i, j);
    let v = reference.fisher_variance[pair_index(p, i, j)];
    rho.is_finite() && rho.abs() < 0.999 && v.is_finite() && v > 0.0
}

/// A pair's side of its test in the reference, computed once for every window: its
/// correlation, Fisher's transform of it and its variance factor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairReference {
    /// The pair's first variable…
    pub i: usize,
    /// …and its second (i < j).
    pub j: usize,
    rho: f64,
    fisher: f64,
    v: f64,
    rows: f64,
}

impl PairReference {
    /// The pair (i, j), i < j, of `reference`.
    pub fn new(reference: &Joint, i: usize, j: usize) -> Self {
        let p = reference.means.len();
        let rho = reference.correlation(i, j);
        PairReference {
            i,
            j,
            rho,
            fisher: rho.atanh(),
            v: reference.fisher_variance[pair_index(p, i, j)],
            rows: reference.rows as f64,
        }
    }
}

/// Tests a pair of `window` against its side in the reference.
pub fn pair(window: &ScoreSums, reference: &PairReference) -> PairTest {
    let PairReference { i, j, rho, v, .. } = *reference;
    let r = window.correlation(i, j);
    let (n, m) = (window.rows, reference.rows);
    let z = (r.clamp(-0.999_999, 0.999_999).atanh() - reference.fisher)
        / (v * (1.0 / n + 1.0 / m)).sqrt();
    PairTest {
        reference: rho,
        window: r,
        z,
        p_value: normal_two_sided(z),
    }
}

/// Hotelling's two-sample T² on the vector of mean scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hotelling {
    /// T² = dᵀ S⁻¹ d / (1/n + 1/m), d the difference of mean scores, S the reference's
    /// covariance of them (over the variables it keeps, see [`Cholesky`]).
    pub t2: f64,
    /// Variables tested (the rank of S).
    pub rank: usize,
    /// T² (ν − q + 1) / (ν q) is F(q, ν − q + 1)-distributed under normality with ν = m − 1
    /// (S estimated from the reference alone): its upper tail.
    pub p_value: f64,
    /// The Mahalanobis distance √(dᵀ S⁻¹ d): the shift in the reference's standard
    /// deviations, along the data's own axes.
    pub distance: f64,
}

/// Tests the window's mean scores against the reference's; `factor` is the Cholesky factor
/// of the reference's score covariance. `None` when the reference has too few rows for the
/// F distribution (m ≤ q + 1) or the window no complete rows.
pub fn hotelling(window: &ScoreSums, reference: &Joint, factor: &Cholesky) -> Option<Hotelling> {
    let (n, m) = (window.rows, reference.rows as f64);
    let q = factor.rank() as f64;
    let nu = m - 1.0;
    if n < 1.0 || q < 1.0 || nu - q + 1.0 <= 0.0 {
        return None;
    }
    let d: Vec<f64> = (window.sums.iter().zip(&reference.means))
        .map(|(s, mu)| s / n - mu)
        .collect();
    let quadratic = factor.quadratic_form(&d);
    let t2 = quadratic / (1.0 / n + 1.0 / m);
    let f = t2 * (nu - q + 1.0) / (nu * q);
    Some(Hotelling {
        t2,
        rank: factor.rank(),
        p_value: f_upper(f, q, nu - q + 1.0),
        distance: quadratic.sqrt(),
    })
}

/// The Cholesky factor of `reference`'s score covariance.
pub fn factor(reference: &Joint) -> Cholesky {
    let p = reference.means.len();
    Cholesky::new(p, |i, j| {
        reference.covariance[packed(p, i.min(j), i.max(j))]
    })
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::stats::profile::{Marginal, profile_rows};
    use crate::stats::simulate::Gaussian;
    use crate::stats::wilson::binomial_interval;

    /// The window's score sums over the reference's bins.
    fn sums(marginals: &[Marginal], rows: &[Vec<f64>]) -> ScoreSums {
        let p = marginals.len();
        let mut s = ScoreSums {
            rows: rows.len() as f64,
            sums: vec![0.0; p],
            products: vec![0.0; p * (p + 1) / 2],
        };
        for row in rows {
            let scores: Vec<f64> = (marginals.iter().zip(row))
                .map(|(m, &x)| m.scores[m.bin(x)])
                .collect();
            for i in 0..p {
                s.sums[i] += scores[i];
                for j in i..p {
                    s.products[packed(p, i, j)] += scores[i] * scores[j];
                }
            }
        }
        s
    }

    #[test]
    fn null_rejection_rates_are_nominal() {
        let gaussian = Gaussian::new(4, |i, j| {
            if i == j {
                1.0
            } else {
                0.3 + 0.1 * (i + j) as f64 / 5.0
            }
        });
        let mut rng = rand::rngs::StdRng::seed_from_u64(21);
        let windows = 10_000u64;
        let (mut pair_hits, mut vector_hits) = (0u64, 0u64);
        for w in 0..windows {
            let reference: Vec<Vec<f64>> = (0..600).map(|_| gaussian.draw(&mut rng)).collect();
            let (marginals, joint) = profile_rows(reference.iter().map(Vec::as_slice), 4, true, w);
            let joint = joint.unwrap();
            let window: Vec<Vec<f64>> = (0..300).map(|_| gaussian.draw(&mut rng)).collect();
            let s = sums(&marginals, &window);
            pair_hits += u64::from(pair(&s, &PairReference::new(&joint, 0, 3)).p_value < 0.05);
            let t = hotelling(&s, &joint, &factor(&joint)).unwrap();
            vector_hits += u64::from(t.p_value < 0.05);
        }
        let (lo, hi) = binomial_interval(windows, 0.05, 0.999);
        assert!(
            (lo..=hi).contains(&pair_hits),
            "pair: {pair_hits} of {windows}, not in [{lo}, {hi}]"
        );
        assert!(
            (lo..=hi).contains(&vector_hits),
            "vector: {vector_hits} of {windows}, not in [{lo}, {hi}]"
        );
    }

    #[test]
    fn a_correlation_change_is_seen_and_the_vector_shift_measured() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let before = Gaussian::equicorrelated(3, 0.3);
        let reference: Vec<Vec<f64>> = (0..50_000).map(|_| before.draw(&mut rng)).collect();
        let (marginals, joint) = profile_rows(reference.iter().map(Vec::as_slice), 3, true, 1);
        let joint = joint.unwrap();
        let after = Gaussian::new(3, |i, j| match (i, j) {
            _ if i == j => 1.0,
            (0, 1) | (1, 0) => 0.4,
            _ => 0.3,
        });
        let window: Vec<Vec<f64>> = (0..5000).map(|_| after.draw(&mut rng)).collect();
        let s = sums(&marginals, &window);
        // atanh 0.4 − atanh 0.3 = 0.1141; / √(1/5000 + 1/50000) = 7.7.
        let changed = pair(&s, &PairReference::new(&joint, 0, 1));
        assert!(changed.z > 4.5, "{changed:?}");
        assert!(pair(&s, &PairReference::new(&joint, 0, 2)).z.abs() < 4.0);
        let t = hotelling(&s, &joint, &factor(&joint)).unwrap();
        assert_eq!(t.rank, 3);
        assert!(t.distance < 0.05, "{t:?}");
    }
}

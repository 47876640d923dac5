//! A data set's profile: what the two-sample tests need of it, kept from every row in two
//! passes over the rows (so a file of any size can be read as a stream, twice).
//!
//! - Pass 1 ([`Sketch`]) keeps a seeded reservoir sample of rows, from which each variable's
//!   fine quantile bins ([`FINE_BINS`] of them) and their normal scores are fixed.
//! - Pass 2 ([`Accumulator`]) counts every row into those bins exactly and adds up the
//!   moments: each variable's mean and variance, and the joint moments of the scores of
//!   complete rows (means, covariance, and per pair the fourth moments that give the
//!   sampling variance of a correlation without assuming normality).
//!
//! A *score* is the normal quantile of a bin's mid-rank in the reference: a value's position
//! in the reference distribution on a Gaussian scale. Scores are bounded (about ±2.6 with
//! 100 bins), so means and correlations of scores obey the central limit theorem quickly
//! whatever the variable's own tails, and for a normal variable they are the variable
//! itself, standardized.

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::dist::normal_quantile;

/// Quantile bins per variable: percentiles, so that ten consecutive bins are a decile.
pub const FINE_BINS: usize = 100;

/// At most this many values (rows × variables) are sampled in pass 1.
const SAMPLE_VALUES: usize = 4_000_000;
/// At most this many rows are sampled in pass 1: enough to place percentile edges within a
/// fraction of a percent of the true quantiles; smaller data sets are kept whole.
const SAMPLE_ROWS: usize = 100_000;

/// One variable's reference distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marginal {
    /// Inner bin edges, strictly increasing: bins `(-inf, e0], (e0, e1], …, (e_last, +inf)`.
    pub edges: Vec<f64>,
    /// Reference values per bin.
    pub counts: Vec<u64>,
    /// Each bin's normal score (see the module documentation).
    pub scores: Vec<f64>,
    /// Reference rows where the variable was missing (null or NaN).
    #[serde(default)]
    pub missing: u64,
    /// Mean and variance of the present values, in the variable's own units (absent where
    /// the reference kept only bins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moments: Option<Moments>,
}

/// Mean and variance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// The mean.
    pub mean: f64,
    /// The (population) variance.
    pub variance: f64,
}

impl Marginal {
    /// A marginal of bins already counted (e.g. a histogram of known size): scores from the
    /// counts, no moments.
    pub fn from_counts(edges: Vec<f64>, counts: Vec<u64>, missing: u64) -> Self {
        Marginal {
            scores: scores_from_counts(&counts),
            edges,
            counts,
            missing,
            moments: None,
        }
    }

    /// The bin `value` falls in (bins are closed on the right).
    pub fn bin(&self, value: f64) -> usize {
        bin(&self.edges, value)
    }

    /// Present reference values.
    pub fn present(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Reference rows: present and missing.
    pub fn rows(&self) -> u64 {
        self.present() + self.missing
    }
}

/// The bin `value` falls in over inner `edges`: the number of edges below it.
pub fn bin(edges: &[f64], value: f64) -> usize {
    edges.partition_point(|&e| e < value)
}

/// Normal scores of bins with these reference counts: Φ⁻¹ of each bin's mid-rank over
/// (total + 1); an empty bin gets the score of the point between its neighbours.
pub fn scores_from_counts(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    let mut below = 0u64;
    counts
        .iter()
        .map(|&c| {
            let mid_rank = below as f64 + (c as f64 + 1.0) / 2.0;
            below += c;
            normal_quantile(mid_rank / (total as f64 + 1.0))
        })
        .collect()
}

/// Inner edges at the 1/bins … (bins−1)/bins quantiles of `sorted` (bins closed on the
/// right, so the q-th edge is the last value of the q-th slice), repeated edges merged.
pub fn quantile_edges(sorted: &[f64], bins: usize) -> Vec<f64> {
    if sorted.is_empty() {
        return Vec::new();
    }
    let mut edges: Vec<f64> = (1..bins)
        .map(|q| sorted[(q * sorted.len()).div_ceil(bins).saturating_sub(1)])
        .collect();
    edges.dedup();
    edges
}

/// The joint distribution of the scores of complete rows (every variable present).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Joint {
    /// Complete rows.
    pub rows: u64,
    /// Mean score per variable.
    pub means: Vec<f64>,
    /// Covariance of the scores, upper triangle with the diagonal, row by row
    /// (see [`packed`]).
    pub covariance: Vec<f64>,
    /// Per pair i < j (row by row, see [`pair_index`]): n times the asymptotic variance of
    /// the Fisher transform of the pair's correlation in n rows, from the reference's fourth
    /// moments; 1 for normally distributed scores.
    pub fisher_variance: Vec<f64>,
}

/// Index of (i, j), i ≤ j, in a packed upper triangle with the diagonal of a p × p matrix.
pub fn packed(p: usize, i: usize, j: usize) -> usize {
    debug_assert!(i <= j && j < p);
    i * p - i * (i + 1) / 2 + j
}

/// Index of the pair (i, j), i < j, among the p(p−1)/2 pairs taken row by row.
pub fn pair_index(p: usize, i: usize, j: usize) -> usize {
    debug_assert!(i < j && j < p);
    i * p - i * (i + 1) / 2 + (j - i - 1)
}

impl Joint {
    /// The scores' correlation of variables i and j.
    pub fn correlation(&self, i: usize, j: usize) -> f64 {
        let p = self.means.len();
        let (i, j) = (i.min(j), i.max(j));
        let c = |a, b| self.covariance[packed(p, a, b)];
        c(i, j) / (c(i, i) * c(j, j)).sqrt()
    }
}

/// Pass 1: a seeded reservoir sample of rows.
#[derive(Debug)]
pub struct Sketch {
    p: usize,
    capacity: usize,
    sample: Vec<f64>,
    seen: u64,
    rng: rand::rngs::StdRng,
}

impl Sketch {
    /// A sketch of rows of `p` variables; `seed` fixes which rows a large data set keeps.
    pub fn new(p: usize, seed: u64) -> Self {
        Sketch {
            p,
            capacity: SAMPLE_ROWS.min(SAMPLE_VALUES / p.max(1)).max(1),
            sample: Vec::new(),
            seen: 0,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
        }
    }

    /// Adds one row (NaN where a value is missing).
    pub fn add(&mut self, row: &[f64]) {
        debug_assert_eq!(row.len(), self.p);
        self.seen += 1;
        let kept = self.sample.len() / self.p.max(1);
        if kept < self.capacity {
            self.sample.extend_from_slice(row);
        } else {
            let slot = self.rng.random_range(0..self.seen) as usize;
            if slot < self.capacity {
                self.sample[slot * self.p..(slot + 1) * self.p].copy_from_slice(row);
            }
        }
    }

    /// Rows added.
    pub fn rows(&self) -> u64 {
        self.seen
    }

    /// Each variable's bins and scores, from the sample.
    pub fn bins(&self) -> Vec<Bins> {
        (0..self.p)
            .map(|v| {
                let mut values: Vec<f64> = (self.sample.iter().skip(v).step_by(self.p))
                    .copied()
                    .filter(|x| !x.is_nan())
                    .collect();
                values.sort_by(f64::total_cmp);
                let edges = quantile_edges(&values, FINE_BINS);
                let mut counts = vec![0u64; edges.len() + 1];
                for &x in &values {
                    counts[bin(&edges, x)] += 1;
                }
                Bins {
                    scores: scores_from_counts(&counts),
                    edges,
                }
            })
            .collect()
    }
}

/// A variable's bins, fixed after pass 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Bins {
    /// Inner edges.
    pub edges: Vec<f64>,
    /// Normal score per bin.
    pub scores: Vec<f64>,
}

/// Pass 2: exact counts and moments over fixed bins.
#[derive(Debug)]
pub struct Accumulator {
    bins: Vec<Bins>,
    counts: Vec<Vec<u64>>,
    missing: Vec<u64>,
    welford: Vec<(u64, f64, f64)>,
    joint: Option<JointSums>,
    scores: Vec<f64>,
}

impl Accumulator {
    /// Counts over `bins`; with `joint`, the scores' joint moments too.
    pub fn new(bins: Vec<Bins>, joint: bool) -> Self {
        let p = bins.len();
        Accumulator {
            counts: bins.iter().map(|b| vec![0; b.edges.len() + 1]).collect(),
            missing: vec![0; p],
            welford: vec![(0, 0.0, 0.0); p],
            joint: joint.then(|| JointSums::new(p)),
            scores: vec![0.0; p],
            bins,
        }
    }

    /// Adds one row (NaN where a value is missing).
    pub fn add(&mut self, row: &[f64]) {
        let mut complete = true;
        for (v, &x) in row.iter().enumerate() {
            if x.is_nan() {
                self.missing[v] += 1;
                complete = false;
                continue;
            }
            let b = bin(&self.bins[v].edges, x);
            self.counts[v][b] += 1;
            self.scores[v] = self.bins[v].scores[b];
            let (n, mean, m2) = &mut self.welford[v];
            *n += 1;
            let delta = x - *mean;
            *mean += delta / *n as f64;
            *m2 += delta * (x - *mean);
        }
        if let (true, Some(joint)) = (complete, &mut self.joint) {
            joint.add(&self.scores);
        }
    }

    /// The marginals, and the joint moments when asked for (and at least two complete rows).
    pub fn finish(self) -> (Vec<Marginal>, Option<Joint>) {
        let marginals = (self.bins.into_iter().zip(self.counts))
            .zip(self.missing.iter().zip(&self.welford))
            .map(|((bins, counts), (&missing, &(n, mean, m2)))| Marginal {
                edges: bins.edges,
                counts,
                scores: bins.scores,
                missing,
                moments: (n > 0).then(|| Moments {
                    mean,
                    variance: m2 / n as f64,
                }),
            })
            .collect();
        (marginals, self.joint.and_then(JointSums::finish))
    }
}

/// Raw power sums of the scores of complete rows.
#[derive(Debug)]
struct JointSums {
    p: usize,
    rows: u64,
    /// Per variable: Σs, Σs², Σs³, Σs⁴.
    powers: Vec<[f64; 4]>,
    /// Per pair i < j: Σ s_i s_j, s_i² s_j, s_i s_j², s_i² s_j², s_i³ s_j, s_i s_j³.
    pairs: Vec<[f64; 6]>,
}

impl JointSums {
    fn new(p: usize) -> Self {
        JointSums {
            p,
            rows: 0,
            powers: vec![[0.0; 4]; p],
            pairs: vec![[0.0; 6]; p * p.saturating_sub(1) / 2],
        }
    }

    fn add(&mut self, s: &[f64]) {
        self.rows += 1;
        for (sum, &x) in self.powers.iter_mut().zip(s) {
            let x2 = x * x;
            *sum = [sum[0] + x, sum[1] + x2, sum[2] + x2 * x, sum[3] + x2 * x2];
        }
        let mut k = 0;
        for i in 0..self.p {
            let (x, x2) = (s[i], s[i] * s[i]);
            for &y in &s[i + 1..] {
                let (xy, y2) = (x * y, y * y);
                let m = &mut self.pairs[k];
                m[0] += xy;
                m[1] += x2 * y;
                m[2] += x * y2;
                m[3] += x2 * y2;
                m[4] += x2 * xy;
                m[5] += xy * y2;
                k += 1;
            }
        }
    }

    fn finish(self) -> Option<Joint> {
        if self.rows < 2 {
            return None;
        }
        let (p, n) = (self.p, self.rows as f64);
        let raw: Vec<[f64; 5]> = (self.powers.iter())
            .map(|s| [1.0, s[0] / n, s[1] / n, s[2] / n, s[3] / n])
            .collect();
        let means: Vec<f64> = raw.iter().map(|r| r[1]).collect();
        let mut covariance = vec![0.0; p * (p + 1) / 2];
        let mut fisher_variance = vec![0.0; self.pairs.len()];
        for i in 0..p {
            covariance[packed(p, i, i)] = raw[i][2] - means[i] * means[i];
            for j in i + 1..p {
                let sums = &self.pairs[pair_index(p, i, j)];
                let moments = PairMoments::new(&raw[i], &raw[j], sums, n);
                covariance[packed(p, i, j)] = moments.central(1, 1);
                // 0 marks a pair whose variance is unknown (a variable that never varies).
                let v = moments.fisher_variance();
                fisher_variance[pair_index(p, i, j)] = if v.is_finite() { v } else { 0.0 };
            }
        }
        Some(Joint {
            rows: self.rows,
            means,
            covariance,
            fisher_variance,
        })
    }
}

/// Raw moments E[x^k y^l] of one pair, turned into central ones.
struct PairMoments<'a> {
    x: &'a [f64; 5],
    y: &'a [f64; 5],
    cross: [f64; 6],
}

impl<'a> PairMoments<'a> {
    fn new(x: &'a [f64; 5], y: &'a [f64; 5], sums: &[f64; 6], n: f64) -> Self {
        PairMoments {
            x,
            y,
            cross: sums.map(|s| s / n),
        }
    }

    /// E[x^k y^l], raw.
    fn raw(&self, k: usize, l: usize) -> f64 {
        match (k, l) {
            (k, 0) => self.x[k],
            (0, l) => self.y[l],
            (1, 1) => self.cross[0],
            (2, 1) => self.cross[1],
            (1, 2) => self.cross[2],
            (2, 2) => self.cross[3],
            (3, 1) => self.cross[4],
            (1, 3) => self.cross[5],
            _ => unreachable!("moment ({k}, {l}) is not kept"),
        }
    }

    /// E[(x − μx)^r (y − μy)^s], by the binomial expansion.
    fn central(&self, r: usize, s: usize) -> f64 {
        let (mx, my) = (self.x[1], self.y[1]);
        let mut total = 0.0;
        for k in 0..=r {
            for l in 0..=s {
                let coefficient = choose(r, k) * choose(s, l);
                let shift = (-mx).powi((r - k) as i32) * (-my).powi((s - l) as i32);
                total += coefficient * shift * self.raw(k, l);
            }
        }
        total
    }

    /// n · Var(atanh r) for the pair's sample correlation r in n rows (the delta method on
    /// the correlation's asymptotic variance for any distribution with fourth moments).
    fn fisher_variance(&self) -> f64 {
        let (vx, vy) = (self.central(2, 0), self.central(0, 2));
        if vx <= 0.0 || vy <= 0.0 {
            return f64::NAN;
        }
        let (sx, sy) = (vx.sqrt(), vy.sqrt());
        let rho = self.central(1, 1) / (sx * sy);
        let m22 = self.central(2, 2) / (vx * vy);
        let m31 = self.central(3, 1) / (vx * sx * sy);
        let m13 = self.central(1, 3) / (sx * vy * sy);
        let m40 = self.central(4, 0) / (vx * vx);
        let m04 = self.central(0, 4) / (vy * vy);
        let r2 = rho * rho;
        let v = (1.0 + r2 / 2.0) * m22 - rho * (m31 + m13) + r2 / 4.0 * (m40 + m04);
        v / ((1.0 - r2) * (1.0 - r2))
    }
}

fn choose(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |c, i| c * (n - i) as f64 / (i + 1) as f64)
}

impl PairMoments<'_> {
    #[cfg(test)]
    fn of(x: &[f64], y: &[f64]) -> f64 {
        let n = x.len() as f64;
        let power = |v: &[f64]| {
            let mut r = [1.0, 0.0, 0.0, 0.0, 0.0];
            for &a in v {
                for (k, slot) in r.iter_mut().enumerate().skip(1) {
                    *slot += a.powi(k as i32) / n;
                }
            }
            r
        };
        let (px, py) = (power(x), power(y));
        let mut sums = [0.0; 6];
        for (&a, &b) in x.iter().zip(y) {
            let terms = [
                a * b,
                a * a * b,
                a * b * b,
                a * a * b * b,
                a.powi(3) * b,
                a * b.powi(3),
            ];
            for (s, t) in sums.iter_mut().zip(terms) {
                *s += t;
            }
        }
        PairMoments::new(&px, &py, &sums, n).fisher_variance()
    }
}

/// Builds a profile from rows held in memory: both passes over `rows`, with `joint` moments
/// when asked for (for the statistics' own tests).
#[cfg(test)]
pub fn profile_rows<'a>(
    rows: impl Iterator<Item = &'a [f64]> + Clone,
    p: usize,
    joint: bool,
    seed: u64,
) -> (Vec<Marginal>, Option<Joint>) {
    let mut sketch = Sketch::new(p, seed);
    rows.clone().for_each(|r| sketch.add(r));
    let mut accumulator = Accumulator::new(sketch.bins(), joint);
    rows.for_each(|r| accumulator.add(r));
    accumulator.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::simulate::Gaussian;

    #[test]
    fn percentile_bins_hold_a_percent_each_and_merge_ties() {
        let values: Vec<f64> = (0..1000).map(f64::from).collect();
        let edges = quantile_edges(&values, FINE_BINS);
        assert_eq!(edges.len(), 99);
        let rows: Vec<[f64; 1]> = values.iter().map(|&v| [v]).collect();
        let (m, _) = profile_rows(rows.iter().map(|r| &r[..]), 1, false, 1);
        assert!(m[0].counts.iter().all(|&c| c == 10), "{:?}", m[0].counts);
        let moments = m[0].moments.unwrap();
        assert!((moments.mean - 499.5).abs() < 1e-9);
        assert!((moments.variance - (1000.0f64.powi(2) - 1.0) / 12.0).abs() < 1e-6);
        // Scores are symmetric around 0 for a symmetric sample.
        assert!((m[0].scores[0] + m[0].scores[99]).abs() < 1e-12);

        let mostly_zero: Vec<[f64; 1]> = (0..100).map(|i| [f64::from(u8::from(i >= 80))]).collect();
        let (m, _) = profile_rows(mostly_zero.iter().map(|r| &r[..]), 1, false, 1);
        assert_eq!(m[0].edges, vec![0.0, 1.0]);
        assert_eq!(m[0].counts, vec![80, 20, 0]);
    }

    #[test]
    fn missing_values_are_counted_apart_and_joint_moments_use_complete_rows() {
        let rows = [[1.0, 2.0], [f64::NAN, 3.0], [3.0, 5.0], [2.0, f64::NAN]];
        let (m, joint) = profile_rows(rows.iter().map(|r| &r[..]), 2, true, 1);
        assert_eq!((m[0].missing, m[0].present()), (1, 3));
        assert_eq!((m[1].missing, m[1].present()), (1, 3));
        assert_eq!(joint.unwrap().rows, 2);
    }

    #[test]
    fn the_joint_moments_match_a_direct_computation() {
        let gaussian = Gaussian::equicorrelated(3, 0.5);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let rows: Vec<Vec<f64>> = (0..20_000).map(|_| gaussian.draw(&mut rng)).collect();
        let (m, joint) = profile_rows(rows.iter().map(Vec::as_slice), 3, true, 7);
        let joint = joint.unwrap();
        // Scores of a normal variable are close to the variable standardized.
        assert!(
            joint.means.iter().all(|m| m.abs() < 1e-3),
            "{:?}",
            joint.means
        );
        for (i, marginal) in m.iter().enumerate() {
            let v = joint.covariance[packed(3, i, i)];
            assert!((v - 1.0).abs() < 0.05, "score variance {v}");
            assert!((marginal.moments.unwrap().variance - 1.0).abs() < 0.05);
        }
        assert!((joint.correlation(0, 2) - 0.5).abs() < 0.02);
        // For normal scores the Fisher transform's variance factor is 1.
        for (k, &f) in joint.fisher_variance.iter().enumerate() {
            assert!((f - 1.0).abs() < 0.1, "pair {k}: {f}");
        }
        // The packed expansion agrees with the moments computed directly.
        let score =
            |v: usize| -> Vec<f64> { rows.iter().map(|r| m[v].scores[m[v].bin(r[v])]).collect() };
        let direct = PairMoments::of(&score(0), &score(1));
        assert!((direct - joint.fisher_variance[pair_index(3, 0, 1)]).abs() < 1e-9);
    }

    #[test]
    fn indices_of_packed_triangles() {
        let p = 4;
        let all: Vec<usize> = (0..p)
            .flat_map(|i| (i..p).map(move |j| packed(p, i, j)))
            .collect();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        let pairs: Vec<usize> = (0..p)
            .flat_map(|i| (i + 1..p).map(move |j| pair_index(p, i, j)))
            .collect();
        assert_eq!(pairs, (0..6).collect::<Vec<_>>());
    }
}

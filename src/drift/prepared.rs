//! What every window's tests of one reference distribution (a feature's bins, or the
//! outputs') reuse: its counts as numbers, the moments of its bins' scores, and its groups
//! for the shape test and for the deciles. Computed once per plan, not once per window.

use crate::stats::binned::{equal_mass_groups, grouped, smoothed};
use crate::stats::profile::Marginal;
use crate::stats::rank::Sums;

/// Groups of the shape test: deciles, fewer in a small window or reference, so that each
/// expects at least 10 values.
pub const SHAPE_GROUPS: usize = 10;

/// Groups of the divergences (PSI, KL, JS).
const DECILES: usize = 10;

/// A reference distribution, prepared for testing windows against.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The reference's counts per bin.
    pub counts: Vec<f64>,
    /// The mean and variance of the bins' scores over the reference.
    pub moments: (f64, f64),
    /// The sums of its scores (and its count, `n`), for the rank tests.
    pub sums: Sums,
    /// The reference's deciles: each bin's group, and the reference's counts per group.
    pub deciles: Groups,
}

/// Bins grouped into groups of about equal reference mass.
#[derive(Debug, Clone)]
pub struct Groups {
    /// Each bin's group.
    pub of_bin: Vec<usize>,
    /// How many groups.
    pub groups: usize,
    /// The reference's counts per group.
    pub reference: Vec<f64>,
    /// Their proportions as the divergences take them (`None` without counts).
    pub smoothed: Option<Vec<f64>>,
}

impl Groups {
    /// `groups` groups of `reference`'s bins.
    pub fn new(reference: &[f64], groups: usize) -> Self {
        let of_bin = equal_mass_groups(reference, groups);
        let reference = grouped(reference, &of_bin, groups);
        Groups {
            smoothed: smoothed(&reference),
            reference,
            of_bin,
            groups,
        }
    }

    /// A window's counts per group.
    pub fn window(&self, window: &[f64]) -> Vec<f64> {
        grouped(window, &self.of_bin, self.groups)
    }
}

impl Prepared {
    /// `m`, prepared.
    pub fn new(m: &Marginal) -> Self {
        let counts: Vec<f64> = m.counts.iter().map(|&c| c as f64).collect();
        Prepared {
            moments: score_moments(&counts, &m.scores),
            sums: Sums::new(&counts, &m.scores),
            deciles: Groups::new(&counts, DECILES),
            counts,
        }
    }

    /// The shape test's groups for a window of `n` values: the deciles, unless window or
    /// reference is too small for each to expect 10.
    pub fn shape_groups(&self, n: f64) -> std::borrow::Cow<'_, Groups> {
        let groups = SHAPE_GROUPS
            .min((n.min(self.sums.n) / 10.0) as usize)
            .max(2);
        match groups == self.deciles.groups {
            true => std::borrow::Cow::Borrowed(&self.deciles),
            false => std::borrow::Cow::Owned(Groups::new(&self.counts, groups)),
        }
    }
}

/// Mean and variance of the scores of binned counts.
pub fn score_moments(counts: &[f64], scores: &[f64]) -> (f64, f64) {
    let n: f64 = counts.iter().sum();
    let mean = counts.iter().zip(scores).map(|(c, s)| c * s).sum::<f64>() / n;
    let var = counts
        .iter()
        .zip(scores)
        .map(|(c, s)| c * (s - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var)
}

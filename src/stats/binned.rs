//! Tests and effect sizes on binned counts: Pearson's chi-square test of homogeneity of a
//! window's counts and a reference's, over groups of bins, and the divergences (PSI, KL, JS)
//! dashboards show.

use super::dist::chi_squared_upper;

/// Groups of consecutive bins holding about equal reference mass: bin b goes to the group
/// its reference mid-mass falls in, of `target` groups. Returns each bin's group.
pub fn equal_mass_groups(reference: &[f64], target: usize) -> Vec<usize> {
    let total: f64 = reference.iter().sum();
    let target = target.max(1);
    let mut below = 0.0;
    reference
        .iter()
        .map(|&r| {
            let mid = if total > 0.0 {
                (below + r / 2.0) / total
            } else {
                0.0
            };
            below += r;
            ((mid * target as f64) as usize).min(target - 1)
        })
        .collect()
}

/// Sums `counts` by `groups` (each entry's group index) into `n_groups` totals.
pub fn grouped(counts: &[f64], groups: &[usize], n_groups: usize) -> Vec<f64> {
    let mut out = vec![0.0; n_groups];
    for (&c, &g) in counts.iter().zip(groups) {
        out[g] += c;
    }
    out
}

/// Pearson's chi-square test that `window` and `reference` (counts over the same groups)
/// come from one distribution: X² = Σ (m w − n r)² / (n m (w + r)), asymptotically χ² with
/// one degree of freedom fewer than the groups with any count. Good when every group
/// expects at least 5 in each sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChiSquared {
    /// X².
    pub statistic: f64,
    /// Degrees of freedom.
    pub df: f64,
    /// P(χ²_df ≥ X²).
    pub p_value: f64,
    /// Cohen's w: √(Σ (p_w − p_r)² / p̄), the share differences against the pooled shares.
    pub effect: f64,
}

/// The chi-square test of homogeneity (see [`ChiSquared`]); `None` when either side is
/// empty or fewer than two groups have counts.
pub fn chi_squared(window: &[f64], reference: &[f64]) -> Option<ChiSquared> {
    let n: f64 = window.iter().sum();
    let m: f64 = reference.iter().sum();
    if n == 0.0 || m == 0.0 {
        return None;
    }
    let (mut statistic, mut groups, mut w2) = (0.0, 0usize, 0.0);
    for (&w, &r) in window.iter().zip(reference) {
        if w + r == 0.0 {
            continue;
        }
        groups += 1;
        statistic += (m * w - n * r).powi(2) / (n * m * (w + r));
        w2 += (w / n - r / m).powi(2) / ((w + r) / (n + m));
    }
    if groups < 2 {
        return None;
    }
    let df = (groups - 1) as f64;
    Some(ChiSquared {
        statistic,
        df,
        p_value: chi_squared_upper(statistic, df),
        effect: w2.sqrt(),
    })
}

/// Floor for a bin's proportion in the divergences, so that empty bins do not make the
/// logarithms infinite.
pub const EPSILON: f64 = 1e-4;

/// PSI, KL divergence and Jensen–Shannon distance of a window's counts against a
/// reference's, over the same bins: effect sizes with no error rate of their own.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Divergence {
    /// Population stability index: Σ (o − b) · ln(o / b).
    pub psi: f64,
    /// Kullback–Leibler divergence of observed from baseline: Σ o · ln(o / b), in nats.
    pub kl: f64,
    /// Jensen–Shannon distance (square root of the divergence in bits), in [0, 1].
    pub js: f64,
}

/// Proportions, each floored at [`EPSILON`] and renormalised: what [`divergence_from`]
/// takes of a reference. `None` when there are no counts.
pub fn smoothed(counts: &[f64]) -> Option<Vec<f64>> {
    let total: f64 = counts.iter().sum();
    if total == 0.0 {
        return None;
    }
    let floored: Vec<f64> = counts.iter().map(|&c| (c / total).max(EPSILON)).collect();
    let sum: f64 = floored.iter().sum();
    Some(floored.into_iter().map(|p| p / sum).collect())
}

/// The divergences of `window` from `reference` (counts over the same bins); zeros when
/// either is empty.
pub fn divergence(reference: &[f64], window: &[f64]) -> Divergence {
    match smoothed(reference) {
        Some(b) => divergence_from(&b, window),
        None => Divergence::default(),
    }
}

/// The divergences of `window` (counts) from a reference's [`smoothed`] proportions over the
/// same bins; zeros when the window is empty.
pub fn divergence_from(reference: &[f64], window: &[f64]) -> Divergence {
    let Some(o) = smoothed(window).filter(|o| o.len() == reference.len()) else {
        return Divergence::default();
    };
    let mut d = Divergence::default();
    let mut js = 0.0;
    for (&b, &o) in reference.iter().zip(&o) {
        d.psi += (o - b) * (o / b).ln();
        d.kl += o * (o / b).ln();
        let mid = 0.5 * (o + b);
        js += 0.5 * o * (o / mid).log2() + 0.5 * b * (b / mid).log2();
    }
    d.js = js.max(0.0).sqrt();
    d
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_distr::StandardNormal;

    use super::*;
    use crate::stats::profile::profile_rows;
    use crate::stats::simulate::count_into;
    use crate::stats::wilson::binomial_interval;

    #[test]
    fn groups_split_the_reference_mass_evenly() {
        let groups = equal_mass_groups(&[10.0; 100], 10);
        assert_eq!(groups[..10], [0; 10]);
        assert_eq!(groups[90..], [9; 10]);
        // A big atom takes a group of its own and the groups it covers stay empty.
        assert_eq!(equal_mass_groups(&[80.0, 10.0, 10.0], 10), vec![4, 8, 9]);
    }

    #[test]
    fn chi_square_null_rejection_rate_is_nominal() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let windows = 10_000;
        let mut hits = 0;
        for _ in 0..windows {
            let rows: Vec<[f64; 1]> = (0..500).map(|_| [rng.sample(StandardNormal)]).collect();
            let r = profile_rows(rows.iter().map(|r| &r[..]), 1, false, 3)
                .0
                .remove(0);
            let reference: Vec<f64> = r.counts.iter().map(|&c| c as f64).collect();
            let window = count_into(&r, (0..200).map(|_| rng.sample(StandardNormal)));
            let groups = equal_mass_groups(&reference, 10);
            let test = chi_squared(
                &grouped(&window, &groups, 10),
                &grouped(&reference, &groups, 10),
            );
            hits += usize::from(test.unwrap().p_value < 0.05);
        }
        let (lo, hi) = binomial_interval(windows as u64, 0.05, 0.999);
        assert!(
            (lo..=hi).contains(&(hits as u64)),
            "{hits} of {windows} null windows rejected at 5%, outside [{lo}, {hi}]"
        );
    }

    #[test]
    fn divergences_of_known_counts() {
        let d = divergence(&[25.0, 25.0, 50.0], &[25.0, 25.0, 50.0]);
        assert!(
            d.psi.abs() < 1e-12 && d.kl.abs() < 1e-12 && d.js.abs() < 1e-6,
            "{d:?}"
        );
        // Baseline 50/50, observed 90/10: PSI = 0.4·ln(1.8) + (−0.4)·ln(0.2) ≈ 0.8789.
        let d = divergence(&[50.0, 50.0], &[90.0, 10.0]);
        assert!((d.psi - 0.8789).abs() < 1e-3, "{d:?}");
        let d = divergence(&[1.0, 0.0], &[0.0, 10.0]);
        assert!(d.psi.is_finite() && d.js > 0.99, "{d:?}");
        assert_eq!(divergence(&[1.0, 1.0], &[0.0, 0.0]), Divergence::default());
    }
}

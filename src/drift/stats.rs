//! Divergences between a baseline distribution and an observed one, over the same bins.

/// Floor for a bin's proportion, so that empty bins do not make the logarithms infinite.
pub const EPSILON: f64 = 1e-4;

/// PSI, KL divergence and Jensen–Shannon distance of observed counts against baseline
/// proportions.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Divergence {
    /// Population stability index: Σ (o − b) · ln(o / b).
    pub psi: f64,
    /// Kullback–Leibler divergence of observed from baseline: Σ o · ln(o / b), in nats.
    pub kl: f64,
    /// Jensen–Shannon distance (square root of the divergence in bits), in [0, 1].
    pub js: f64,
}

/// Proportions of `counts`, each floored at [`EPSILON`] and renormalised.
fn smoothed(proportions: impl Iterator<Item = f64>) -> Vec<f64> {
    let floored: Vec<f64> = proportions.map(|p| p.max(EPSILON)).collect();
    let total: f64 = floored.iter().sum();
    floored.into_iter().map(|p| p / total).collect()
}

/// Compares `counts` (observed per bin) with `baseline` (proportions per bin). Returns zeros
/// for an empty window.
pub fn divergence(baseline: &[f64], counts: &[i64]) -> Divergence {
    let n: i64 = counts.iter().sum();
    if n == 0 || baseline.len() != counts.len() {
        return Divergence::default();
    }
    let b = smoothed(baseline.iter().copied());
    let o = smoothed(counts.iter().map(|&c| c as f64 / n as f64));
    let mut d = Divergence::default();
    let mut js = 0.0;
    for (&b, &o) in b.iter().zip(&o) {
        d.psi += (o - b) * (o / b).ln();
        d.kl += o * (o / b).ln();
        let m = 0.5 * (o + b);
        js += 0.5 * o * (o / m).log2() + 0.5 * b * (b / m).log2();
    }
    d.js = js.max(0.0).sqrt();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_distributions_do_not_diverge() {
        let d = divergence(&[0.25, 0.25, 0.5], &[25, 25, 50]);
        assert!(
            d.psi.abs() < 1e-12 && d.kl.abs() < 1e-12 && d.js.abs() < 1e-6,
            "{d:?}"
        );
    }

    #[test]
    fn known_values() {
        // Baseline 50/50, observed 90/10: PSI = 0.4·ln(1.8) + (−0.4)·ln(0.2) ≈ 0.8789.
        let d = divergence(&[0.5, 0.5], &[90, 10]);
        assert!((d.psi - 0.8789).abs() < 1e-3, "{d:?}");
        assert!((d.kl - (0.9 * 1.8f64.ln() + 0.1 * 0.2f64.ln())).abs() < 1e-3);
        assert!(d.js > 0.0 && d.js < 1.0);
        // An empty bin is smoothed, not infinite; disjoint supports give JS distance ≈ 1.
        let d = divergence(&[1.0, 0.0], &[0, 10]);
        assert!(d.psi.is_finite() && d.kl.is_finite());
        assert!(d.js > 0.99, "{d:?}");
        assert_eq!(divergence(&[0.5, 0.5], &[0, 0]), Divergence::default());
    }
}

//! Intervals for rates measured by counting: Wilson's score interval for an observed rate,
//! and the central interval of a count under a nominal rate.

use super::dist::normal_upper;

/// Wilson's score interval of `k` successes in `n` trials at confidence `level` (e.g.
/// 0.95): `(lower, upper)`; `(0, 1)` without trials.
pub fn wilson(k: u64, n: u64, level: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = normal_upper((1.0 - level) / 2.0);
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The central interval `[lo, hi]` holding a Binomial(`n`, `rate`) count with probability at
/// least `level`: each tail outside it has probability at most (1 − level) / 2. Exact, from
/// the probability mass function. (For the statistics' own tests.)
#[cfg(test)]
pub fn binomial_interval(n: u64, rate: f64, level: f64) -> (u64, u64) {
    let tail = (1.0 - level) / 2.0;
    let ln_pmf = |k: u64| {
        use statrs::function::gamma::ln_gamma;
        let (k, nf) = (k as f64, n as f64);
        ln_gamma(nf + 1.0) - ln_gamma(k + 1.0) - ln_gamma(nf - k + 1.0)
            + k * rate.ln()
            + (nf - k) * (1.0 - rate).ln()
    };
    let (mut lo, mut below) = (0u64, 0.0);
    while lo < n && below + ln_pmf(lo).exp() <= tail {
        below += ln_pmf(lo).exp();
        lo += 1;
    }
    let (mut hi, mut above) = (n, 0.0);
    while hi > lo && above + ln_pmf(hi).exp() <= tail {
        above += ln_pmf(hi).exp();
        hi -= 1;
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // 10 of 100 at 95%: (0.0552, 0.1744), as every table gives.
        let (lo, hi) = wilson(10, 100, 0.95);
        assert!(
            (lo - 0.0552).abs() < 1e-4 && (hi - 0.1744).abs() < 1e-4,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson(0, 3000, 0.95);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.00128).abs() < 1e-5, "{hi}");
        // 10,000 trials at 5%: 500 ± about 3.29 standard deviations (21.8).
        let (lo, hi) = binomial_interval(10_000, 0.05, 0.999);
        assert!(
            (426..=430).contains(&lo) && (570..=575).contains(&hi),
            "{lo} {hi}"
        );
    }
}

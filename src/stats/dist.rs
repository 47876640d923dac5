//! Tail probabilities and quantiles of the distributions the tests refer to, from `statrs`.

use statrs::distribution::{ChiSquared, ContinuousCDF, FisherSnedecor, Normal};

/// P(|Z| ≥ |z|) for a standard normal Z: the two-sided p-value of a z statistic. A NaN
/// statistic (a test that could not be computed) has p-value 1.
pub fn normal_two_sided(z: f64) -> f64 {
    if z.is_nan() {
        return 1.0;
    }
    statrs::function::erf::erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0)
}

/// The z with P(Z > z) = `p`, for `p` in (0, 1).
pub fn normal_upper(p: f64) -> f64 {
    -normal_quantile(p)
}

/// The standard normal quantile Φ⁻¹(`u`), for `u` in (0, 1).
pub fn normal_quantile(u: f64) -> f64 {
    Normal::standard().inverse_cdf(u)
}

/// P(X ≥ `x`) for X chi-square with `df` degrees of freedom.
pub fn chi_squared_upper(x: f64, df: f64) -> f64 {
    if x.is_nan() || df <= 0.0 {
        return 1.0;
    }
    match ChiSquared::new(df) {
        Ok(d) => d.sf(x.max(0.0)),
        Err(_) => 1.0,
    }
}

/// P(X ≥ `x`) for X with Fisher's F distribution, `d1` and `d2` degrees of freedom.
pub fn f_upper(x: f64, d1: f64, d2: f64) -> f64 {
    if x.is_nan() || d1 <= 0.0 || d2 <= 0.0 {
        return 1.0;
    }
    match FisherSnedecor::new(d1, d2) {
        Ok(d) => d.sf(x.max(0.0)),
        Err(_) => 1.0,
    }
}

/// Two-sided p-value of `k` successes in `n` Bernoulli(`p`) trials: twice the smaller tail,
/// at most 1. Exact, summed term by term (for small `n`).
pub fn binomial_two_sided(k: u64, n: u64, p: f64) -> f64 {
    if n == 0 || p <= 0.0 || p >= 1.0 {
        return 1.0;
    }
    let ln_pmf = |i: u64| {
        let (i, n) = (i as f64, n as f64);
        ln_choose(n, i) + i * p.ln() + (n - i) * (1.0 - p).ln()
    };
    let lower: f64 = (0..=k).map(|i| ln_pmf(i).exp()).sum();
    let upper: f64 = (k..=n).map(|i| ln_pmf(i).exp()).sum();
    (2.0 * lower.min(upper)).min(1.0)
}

fn ln_choose(n: f64, k: f64) -> f64 {
    use statrs::function::gamma::ln_gamma;
    ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert!((normal_two_sided(1.959_963_985) - 0.05).abs() < 1e-9);
        assert!((normal_two_sided(-4.0) - 6.334_248_366e-5).abs() < 1e-13);
        assert_eq!(normal_two_sided(f64::NAN), 1.0);
        assert!((normal_upper(0.025) - 1.959_963_985).abs() < 1e-8);
        // Deep tails stay accurate: P(Z > 6) = 9.8659e-10.
        assert!((normal_two_sided(6.0) / 1.973_175_5e-9 - 1.0).abs() < 1e-6);
        assert!((chi_squared_upper(16.918_977_6, 9.0) - 0.05).abs() < 1e-8);
        // F(d1, ∞) is χ²_d1 / d1.
        let f = f_upper(2.0, 5.0, 1e9);
        assert!((f - chi_squared_upper(10.0, 5.0)).abs() < 1e-6, "{f}");
        // 0 of 10 at p = 0.5: 2 · 0.5^10.
        assert!((binomial_two_sided(0, 10, 0.5) - 2.0 / 1024.0).abs() < 1e-12);
        assert_eq!(binomial_two_sided(5, 10, 0.5), 1.0);
    }
}

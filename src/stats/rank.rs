//! Two-sample linear rank tests on binned data. Each bin carries a score; the statistic is
//! the window's mean score minus the reference's, over its standard error under the null
//! hypothesis that both are samples of one distribution:
//!
//! z = (ā_w − ā_r) / √(S² (1/n + 1/m)),  S² = Σ_b t_b (a_b − ā)² / (N − 1),
//!
//! where t_b is the pooled count of bin b, ā the pooled mean score and N = n + m. S² (1/n +
//! 1/m) is the exact variance of the difference when the pooled values are dealt to the two
//! samples at random (the permutation distribution, ties kept in their bins), so z is
//! asymptotically standard normal for any distribution; with bounded scores it is close to
//! normal already at n = 100.
//!
//! With normal scores ([`crate::stats::profile`]) the location test is van der Waerden's and
//! the scale test Klotz's: as efficient as the t and F tests when the data are normal, and
//! valid when they are not.

/// The z statistic of the window's scores against the reference's, over bins with the given
/// counts and scores (NaN when either side is empty or the pooled scores do not vary).
pub fn z(window: &[f64], reference: &[f64], scores: impl Fn(usize) -> f64) -> f64 {
    let (mut n, mut m, mut sw, mut sr) = (0.0, 0.0, 0.0, 0.0);
    for (b, (&w, &r)) in window.iter().zip(reference).enumerate() {
        let a = scores(b);
        n += w;
        m += r;
        sw += w * a;
        sr += r * a;
    }
    if n == 0.0 || m == 0.0 {
        return f64::NAN;
    }
    let pooled = (sw + sr) / (n + m);
    let spread: f64 = (window.iter().zip(reference).enumerate())
        .map(|(b, (&w, &r))| (w + r) * (scores(b) - pooled).powi(2))
        .sum::<f64>()
        / (n + m - 1.0);
    if spread <= 0.0 {
        return f64::NAN;
    }
    (sw / n - sr / m) / (spread * (1.0 / n + 1.0 / m)).sqrt()
}

/// Location: van der Waerden's test with the bins' normal scores.
pub fn location(window: &[f64], reference: &[f64], scores: &[f64]) -> f64 {
    z(window, reference, |b| scores[b])
}

/// Scale: Klotz's test, the squared normal scores.
pub fn scale(window: &[f64], reference: &[f64], scores: &[f64]) -> f64 {
    z(window, reference, |b| scores[b] * scores[b])
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Exp, StandardNormal};

    use super::*;
    use crate::stats::dist::normal_two_sided;
    use crate::stats::profile::{Marginal, profile_rows};
    use crate::stats::simulate::count_into;
    use crate::stats::wilson::binomial_interval;

    /// A reference of `m` values from `draw` and its marginal.
    fn reference(
        m: usize,
        rng: &mut impl Rng,
        draw: &impl Fn(&mut dyn rand::RngCore) -> f64,
    ) -> Marginal {
        let rows: Vec<[f64; 1]> = (0..m).map(|_| [draw(rng)]).collect();
        profile_rows(rows.iter().map(|r| &r[..]), 1, false, rng.random())
            .0
            .remove(0)
    }

    /// Rejection counts at 5% of the location and scale tests over `windows` null windows of
    /// `n` against a fresh reference of `m` per window.
    fn null_rejections(
        windows: usize,
        n: usize,
        m: usize,
        seed: u64,
        draw: impl Fn(&mut dyn rand::RngCore) -> f64,
    ) -> (usize, usize) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let (mut location_hits, mut scale_hits) = (0, 0);
        for _ in 0..windows {
            let r = reference(m, &mut rng, &draw);
            let reference: Vec<f64> = r.counts.iter().map(|&c| c as f64).collect();
            let window = count_into(&r, (0..n).map(|_| draw(&mut rng)));
            location_hits +=
                usize::from(normal_two_sided(location(&window, &reference, &r.scores)) < 0.05);
            scale_hits +=
                usize::from(normal_two_sided(scale(&window, &reference, &r.scores)) < 0.05);
        }
        (location_hits, scale_hits)
    }

    #[test]
    fn null_rejection_rates_are_nominal_for_normal_and_skewed_data() {
        let exp = Exp::new(1.0).unwrap();
        let normal = |rng: &mut dyn rand::RngCore| rng.sample::<f64, _>(StandardNormal);
        // Exponential: skewness 2, kurtosis 9, where the t and F tests' tails are wrong.
        let skewed = |rng: &mut dyn rand::RngCore| rng.sample(exp);
        type Draw<'a> = &'a dyn Fn(&mut dyn rand::RngCore) -> f64;
        let cases: [(&str, u64, Draw); 2] = [("normal", 1, &normal), ("exponential", 2, &skewed)];
        let (lo, hi) = binomial_interval(10_000, 0.05, 0.999);
        for (name, seed, draw) in cases {
            let (location, scale) = null_rejections(10_000, 200, 400, seed, draw);
            assert!(
                (lo..=hi).contains(&(location as u64)),
                "{name} location: {location} of 10,000, not in [{lo}, {hi}]"
            );
            assert!(
                (lo..=hi).contains(&(scale as u64)),
                "{name} scale: {scale} of 10,000, not in [{lo}, {hi}]"
            );
        }
    }

    #[test]
    fn shifts_and_scale_changes_are_seen() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let normal = |rng: &mut dyn rand::RngCore| rng.sample::<f64, _>(StandardNormal);
        let r = reference(50_000, &mut rng, &normal);
        let reference: Vec<f64> = r.counts.iter().map(|&c| c as f64).collect();
        let shifted = count_into(&r, (0..5000).map(|_| normal(&mut rng) + 0.1));
        // Expected z: 0.1 / √(1/5000 + 1/50000) = 6.7.
        let z = location(&shifted, &reference, &r.scores);
        assert!((4.0..9.5).contains(&z), "{z}");
        let wider = count_into(&r, (0..5000).map(|_| normal(&mut rng) * 1.1));
        assert!(scale(&wider, &reference, &r.scores) > 4.0);
        assert!(location(&wider, &reference, &r.scores).abs() < 4.0);
    }
}

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

/// A sample's sums over its bins: how many values, and the sums of their scores, squared
/// scores and fourth powers. Both tests and the sample's moments read them, in one pass over
/// its bins (a reference's once for every window).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sums {
    /// Values.
    pub n: f64,
    /// Σ a.
    pub scores: f64,
    /// Σ a².
    pub squares: f64,
    /// Σ a⁴.
    pub fourth: f64,
}

impl Sums {
    /// The sums of `counts` over bins with these `scores`.
    pub fn new(counts: &[f64], scores: &[f64]) -> Self {
        let mut s = Sums::default();
        for (&c, &a) in counts.iter().zip(scores) {
            let square = a * a;
            s.n += c;
            s.scores += c * a;
            s.squares += c * square;
            s.fourth += c * square * square;
        }
        s
    }

    /// The scores' mean and (population) variance; NaN for no values.
    pub fn moments(&self) -> (f64, f64) {
        let mean = self.scores / self.n;
        (mean, (self.squares / self.n - mean * mean).max(0.0))
    }
}

/// The z statistic of `n` values whose scores sum to `sw` against `m` whose scores sum to
/// `sr`, the scores' squares summing to `pooled_squares` over both (NaN when either side is
/// empty or the pooled scores do not vary). The spread is Σ t (a − ā)² = Σ t a² − ā Σ t a,
/// in one pass; the scores are bounded and centred, so little cancels, and a spread under
/// 10⁻¹² of Σ t a² (every value in one bin, but for rounding) is taken for none.
fn z(n: f64, sw: f64, m: f64, sr: f64, pooled_squares: f64) -> f64 {
    if n == 0.0 || m == 0.0 {
        return f64::NAN;
    }
    let total = sw + sr;
    let spread = pooled_squares - total * total / (n + m);
    if spread <= 1e-12 * pooled_squares {
        return f64::NAN;
    }
    (sw / n - sr / m) / (spread / (n + m - 1.0) * (1.0 / n + 1.0 / m)).sqrt()
}

/// Location: van der Waerden's test with the bins' normal scores.
pub fn location(window: &Sums, reference: &Sums) -> f64 {
    let squares = window.squares + reference.squares;
    z(
        window.n,
        window.scores,
        reference.n,
        reference.scores,
        squares,
    )
}

/// Scale: Klotz's test, the squared normal scores.
pub fn scale(window: &Sums, reference: &Sums) -> f64 {
    let fourth = window.fourth + reference.fourth;
    z(
        window.n,
        window.squares,
        reference.n,
        reference.squares,
        fourth,
    )
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
            let (window, reference) = (
                Sums::new(&window, &r.scores),
                Sums::new(&reference, &r.scores),
            );
            location_hits += usize::from(normal_two_sided(location(&window, &reference)) < 0.05);
            scale_hits += usize::from(normal_two_sided(scale(&window, &reference)) < 0.05);
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
        let reference = Sums::new(&reference, &r.scores);
        let sums = |counts: Vec<f64>| Sums::new(&counts, &r.scores);
        let shifted = sums(count_into(&r, (0..5000).map(|_| normal(&mut rng) + 0.1)));
        // Expected z: 0.1 / √(1/5000 + 1/50000) = 6.7.
        let z = location(&shifted, &reference);
        assert!((4.0..9.5).contains(&z), "{z}");
        let wider = sums(count_into(&r, (0..5000).map(|_| normal(&mut rng) * 1.1)));
        assert!(scale(&wider, &reference) > 4.0);
        assert!(location(&wider, &reference).abs() < 4.0);
    }

    #[test]
    fn samples_all_in_one_bin_have_no_statistic() {
        let scores = [-1.2, -0.3, 0.4, 1.5];
        let one_bin = |n: f64| Sums::new(&[0.0, 0.0, n, 0.0], &scores);
        let (window, reference) = (one_bin(500.0), one_bin(20_000.0));
        assert!(location(&window, &reference).is_nan());
        assert!(scale(&window, &reference).is_nan());
        // One value in another bin is a spread, however small beside the rest.
        let reference = Sums::new(&[0.0, 1.0, 20_000.0, 0.0], &scores);
        assert!(location(&window, &reference).is_finite());
        assert!(scale(&window, &reference).is_finite());
    }
}

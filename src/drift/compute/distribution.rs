//! The tests of one distribution in a window (a feature's, or the model's outputs'), against
//! the reference's: location, scale, shape, missing values and a classifier's class mix.

use std::borrow::Cow;

use super::{Inputs, Owner, Raw};
use crate::drift::plan::{Family, MIN_TESTED_RECORDS};
use crate::drift::prepared::Prepared;
use crate::drift::report::TestKind;
use crate::drift::window::WindowCounts;
use crate::stats::binned::{Divergence, chi_squared, divergence_from, grouped};
use crate::stats::dist::{binomial_two_sided, normal_two_sided};
use crate::stats::profile::Marginal;
use crate::stats::rank;

/// Missing values in a feature are tested exactly (binomial) below this many in window and
/// reference together, by the normal approximation above.
const EXACT_MISSING: f64 = 30.0;

/// A window's counts of one distribution as numbers, and by the reference's deciles: what its
/// tests and its divergences both read.
pub(super) struct Seen {
    counts: Vec<f64>,
    deciles: Vec<f64>,
}

impl Seen {
    pub(super) fn new(counts: &[i64], prepared: &Prepared) -> Self {
        let counts = as_f64(counts);
        Seen {
            deciles: prepared.deciles.window(&counts),
            counts,
        }
    }

    /// The divergences from the reference's deciles.
    pub(super) fn divergence(&self, prepared: &Prepared) -> Divergence {
        match &prepared.deciles.smoothed {
            Some(reference) => divergence_from(reference, &self.deciles),
            None => Divergence::default(),
        }
    }
}

pub(super) fn as_f64<T: Copy + Into<i128>>(counts: &[T]) -> Vec<f64> {
    counts
        .iter()
        .map(|&c| Into::<i128>::into(c) as f64)
        .collect()
}

/// Location, scale and shape of one distribution (a feature's or the outputs').
pub(super) fn distribution_tests(
    owner: Owner,
    seen: &Seen,
    m: &Marginal,
    prepared: &Prepared,
    weight: &dyn Fn(TestKind) -> f64,
) -> Vec<Raw> {
    let window = &seen.counts;
    let sums = rank::Sums::new(window, &m.scores);
    let (n, mr) = (sums.n, prepared.sums.n);
    if n < MIN_TESTED_RECORDS as f64 || mr < 2.0 {
        return Vec::new();
    }
    let (mean_w, var_w) = sums.moments();
    let (mean_r, var_r) = prepared.moments;
    let sd_r = var_r.sqrt();
    let test = |kind, statistic: f64, p_value: f64, effect: f64| Raw {
        owner,
        test: Some(kind),
        statistic,
        p_value,
        effect,
        weight: weight(kind),
        extra: (0.0, 0.0),
    };
    let location = rank::location(&sums, &prepared.sums);
    let scale = rank::scale(&sums, &prepared.sums);
    let mut tests = vec![
        test(
            TestKind::Location,
            location,
            normal_two_sided(location),
            (mean_w - mean_r) / sd_r,
        ),
        test(
            TestKind::Scale,
            scale,
            normal_two_sided(scale),
            (var_w / var_r).sqrt() - 1.0,
        ),
    ];
    let groups = prepared.shape_groups(n);
    let shape = match &groups {
        Cow::Borrowed(_) => chi_squared(&seen.deciles, &groups.reference),
        Cow::Owned(groups) => chi_squared(&groups.window(window), &groups.reference),
    };
    tests.extend(shape.map(|s| test(TestKind::Shape, s.statistic, s.p_value, s.effect)));
    tests
}

/// The share of missing values: `k` of the window's `n` records against the reference's.
/// Given how many are missing in both, the window's count is hypergeometric under no change:
/// tested exactly (binomial) when few, by the normal approximation otherwise.
pub(super) fn missing_test(owner: Owner, k: i64, n: i64, m: &Marginal, weight: f64) -> Raw {
    let (k, n, km, rows) = (k as f64, n as f64, m.missing as f64, m.rows() as f64);
    let total = k + km;
    let share = n / (n + rows);
    let big_n = n + rows;
    let variance = total * share * (1.0 - share) * (big_n - total) / (big_n - 1.0).max(1.0);
    let z = if variance > 0.0 {
        (k - total * share) / variance.sqrt()
    } else {
        0.0
    };
    let p_value = match total {
        0.0 => 1.0,
        t if t < EXACT_MISSING => binomial_two_sided(k as u64, t as u64, share),
        _ => normal_two_sided(z),
    };
    let h = |p: f64| 2.0 * p.sqrt().asin();
    Raw {
        owner,
        test: Some(TestKind::Missing),
        statistic: z,
        p_value,
        effect: h(k / n.max(1.0)) - h(km / rows.max(1.0)),
        weight,
        extra: (0.0, 0.0),
    }
}

/// The model's outputs: a classifier's class mix, a regressor's values (location, scale,
/// shape). A classifier's confidence is not tested: it depends on whether the model has
/// seen a row (a forest is surer on its own training rows than on new ones), so against
/// held-out rows it flags a replay of training data, and against training rows every
/// stream of new data. Its divergence and mean stay in the report.
pub(super) fn output_tests(inputs: &Inputs, c: &WindowCounts) -> Vec<Raw> {
    let (plan, outputs) = (inputs.plan, &inputs.reference.outputs);
    let weight = plan.weight(Family::Outputs);
    match plan.class_mix {
        true => class_mix(&as_f64(&c.predictions), &as_f64(&outputs.classes), weight)
            .into_iter()
            .collect(),
        false => distribution_tests(
            Owner::Output,
            &Seen::new(&c.predictions, &plan.prepared.outputs),
            &outputs.distribution,
            &plan.prepared.outputs,
            &|kind| plan.output_weight(kind),
        ),
    }
}

/// The chi-square test of the predicted classes, classes that expect fewer than 5 records
/// in the window taken together.
fn class_mix(window: &[f64], reference: &[f64], weight: f64) -> Option<Raw> {
    let (n, m): (f64, f64) = (window.iter().sum(), reference.iter().sum());
    if m == 0.0 || n == 0.0 {
        return None;
    }
    let rare = |&r: &f64| n * r / m < 5.0;
    let groups: Vec<usize> = (reference.iter())
        .scan(0, |next, r| {
            Some(match rare(r) {
                true => 0,
                false => {
                    *next += 1;
                    *next
                }
            })
        })
        .collect();
    let k = groups.iter().max().map_or(1, |g| g + 1);
    let test = chi_squared(
        &grouped(window, &groups, k),
        &grouped(reference, &groups, k),
    )?;
    Some(Raw {
        owner: Owner::Output,
        test: Some(TestKind::ClassMix),
        statistic: test.statistic,
        p_value: test.p_value,
        effect: test.effect,
        weight,
        extra: (0.0, 0.0),
    })
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Binomial, Distribution};

    use super::*;
    use crate::stats::wilson::binomial_interval;

    /// Rejections at 5% of 10,000 null windows, against a fresh reference each.
    fn null_rejections(mut p_value: impl FnMut(&mut rand::rngs::StdRng) -> f64, seed: u64) -> u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..10_000)
            .map(|_| u64::from(p_value(&mut rng) < 0.05))
            .sum()
    }

    #[test]
    fn the_missing_share_tests_null_rate_is_nominal_and_rare_missing_values_stay_under_it() {
        let (lo, hi) = binomial_interval(10_000, 0.05, 0.999);
        // 10% missing, window 200 records, reference 400 rows: the normal approximation.
        let missing = |share: f64| {
            move |rng: &mut rand::rngs::StdRng| {
                let window = Binomial::new(200, share).unwrap().sample(rng) as i64;
                let reference = Binomial::new(400, share).unwrap().sample(rng);
                let m = Marginal::from_counts(Vec::new(), vec![400 - reference], reference);
                missing_test(Owner::Feature(0), window, 200, &m, 1.0).p_value
            }
        };
        let hits = null_rejections(missing(0.1), 1);
        assert!(
            (lo..=hi).contains(&hits),
            "{hits} of 10,000 at 10% missing, not in [{lo}, {hi}]"
        );
        // 0.5% missing: few in all, tested exactly, which is conservative (discrete).
        let hits = null_rejections(missing(0.005), 2);
        assert!(hits <= hi, "{hits} of 10,000 at 0.5% missing, over {hi}");
    }

    #[test]
    fn the_class_mix_tests_null_rate_is_nominal() {
        let shares = [0.5, 0.3, 0.15, 0.05];
        let draw = |n: usize, rng: &mut rand::rngs::StdRng| {
            let mut counts = vec![0.0; shares.len()];
            for _ in 0..n {
                let u: f64 = rng.random();
                let k = (shares.iter().scan(0.0, |c, s| {
                    *c += s;
                    Some(*c)
                }))
                .position(|c| u < c)
                .unwrap_or(shares.len() - 1);
                counts[k] += 1.0;
            }
            counts
        };
        let hits = null_rejections(
            |rng| {
                let (window, reference) = (draw(300, rng), draw(500, rng));
                class_mix(&window, &reference, 1.0).unwrap().p_value
            },
            3,
        );
        let (lo, hi) = binomial_interval(10_000, 0.05, 0.999);
        assert!(
            (lo..=hi).contains(&hits),
            "{hits} of 10,000, not in [{lo}, {hi}]"
        );
    }
}

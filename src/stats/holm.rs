//! Holm's step-down correction with weights: the family-wise error rate over many tests is
//! held at α, each test's share of α set by its weight.
//!
//! Tests are taken in increasing order of p/w; the test at step j is rejected when it and
//! every earlier one have p ≤ α · w / W_j, W_j being the weight of the tests not yet
//! rejected. The first step is Bonferroni's (p ≤ α · w / W), so whether any test is
//! rejected (a window flagged at all) is decided exactly as by a weighted Bonferroni
//! correction; the later steps let a second and third shifted feature through more easily.
//! No assumption about how the tests depend on each other is made.

/// Adjusted p-values: test i is rejected at level α when `adjusted[i] <= α`. Weights must be
/// positive; they are normalized here.
///
/// Once a step reaches 1, every later test's adjusted p-value is 1 too, whatever its order:
/// the tests are put in order a few at a time, the smallest first, and the rest are left
/// unsorted once that happens (in a window that has not moved, within the first few).
pub fn adjusted(p: &[f64], weights: &[f64]) -> Vec<f64> {
    assert_eq!(p.len(), weights.len());
    let mut order: Vec<(f64, usize)> = (p.iter().zip(weights).enumerate())
        .map(|(i, (p, w))| (p / w, i))
        .collect();
    let by_key = |a: &(f64, usize), b: &(f64, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    let mut remaining: f64 = weights.iter().sum();
    let mut running = 0.0f64;
    let mut out = vec![1.0; p.len()];
    let mut rest = &mut order[..];
    while !rest.is_empty() && running < 1.0 {
        let (first, others) = smallest_in_order(rest, FEW, by_key);
        for &(_, i) in first.iter() {
            let step = (p[i] * remaining / weights[i]).min(1.0);
            running = running.max(step);
            out[i] = running;
            remaining -= weights[i];
        }
        rest = others;
    }
    out
}

/// Tests put in order at once.
const FEW: usize = 16;

/// Splits `items` into its `k` smallest, in order, and the others (in no order).
fn smallest_in_order<T>(
    items: &mut [T],
    k: usize,
    by: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> (&mut [T], &mut [T]) {
    if items.len() > k {
        items.select_nth_unstable_by(k, &by);
    }
    let (first, others) = items.split_at_mut(k.min(items.len()));
    first.sort_unstable_by(by);
    (first, others)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn equal_weights_give_holm() {
        // Holm on (0.01, 0.04, 0.03, 0.005): 4·0.005, 3·0.01, 2·0.03, 1·0.04 → monotone.
        let a = adjusted(&[0.01, 0.04, 0.03, 0.005], &[1.0; 4]);
        let expected = [0.03, 0.06, 0.06, 0.02];
        for (x, e) in a.iter().zip(expected) {
            assert!((x - e).abs() < 1e-12, "{a:?}");
        }
    }

    #[test]
    fn the_smallest_adjusted_p_is_weighted_bonferroni() {
        let w = [0.5, 0.25, 0.25];
        let a = adjusted(&[0.001, 0.2, 0.9], &w);
        assert!((a[0] - 0.002).abs() < 1e-12, "{a:?}");
        assert!(
            (a[1] - 0.4).abs() < 1e-12 && (a[2] - 0.9).abs() < 1e-12,
            "{a:?}"
        );
    }

    /// Holm's steps over every test in order, as the correction was first written: what
    /// ordering a few at a time must give, exactly.
    fn sorted_in_full(p: &[f64], weights: &[f64]) -> Vec<f64> {
        let keys: Vec<f64> = p.iter().zip(weights).map(|(p, w)| p / w).collect();
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
        let mut remaining: f64 = weights.iter().sum();
        let (mut running, mut out) = (0.0f64, vec![1.0; p.len()]);
        for &i in &order {
            running = running.max((p[i] * remaining / weights[i]).min(1.0));
            out[i] = running;
            remaining -= weights[i];
        }
        out
    }

    #[test]
    fn ordering_a_few_at_a_time_gives_the_full_sorts_answer() {
        let mut rng = StdRng::seed_from_u64(7);
        for case in 0..300 {
            let n = rng.random_range(1..700);
            // Uniform p-values (a window that has not moved), many small ones (the steps go
            // past the first few), and a few values only (ties).
            let p: Vec<f64> = (0..n)
                .map(|i| match case % 3 {
                    0 => rng.random::<f64>(),
                    1 if i % 4 == 0 => rng.random::<f64>() * 1e-6,
                    1 => rng.random::<f64>(),
                    _ => f64::from(rng.random_range(0..5u8)) / 4.0,
                })
                .collect();
            let w: Vec<f64> = (0..n).map(|_| rng.random_range(0.1..2.0)).collect();
            assert_eq!(adjusted(&p, &w), sorted_in_full(&p, &w), "case {case}");
        }
    }
}

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
}

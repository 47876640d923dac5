//! Training baselines stored with a model, against which drift is measured later:
//! quantile bins per feature, the class mix of predictions and a confidence histogram.

use serde::{Deserialize, Serialize};

/// How many quantile bins each feature gets.
pub const FEATURE_BINS: usize = 10;

/// Inner edges of the confidence histogram: ten equal bins over [0, 1].
pub const CONFIDENCE_EDGES: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// A histogram over bins `(-inf, e0], (e0, e1], …, (e_last, +inf)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Inner bin edges, strictly increasing; `edges.len() + 1` bins.
    pub edges: Vec<f64>,
    /// Share of the training values that fell in each bin; sums to 1.
    pub proportions: Vec<f64>,
}

impl Histogram {
    /// The bin a value falls in.
    pub fn bin(edges: &[f64], value: f64) -> usize {
        edges.partition_point(|&e| e < value)
    }

    /// Proportions of `values` over the bins given by `edges`.
    pub fn over(edges: Vec<f64>, values: impl IntoIterator<Item = f64>) -> Self {
        let mut counts = vec![0u64; edges.len() + 1];
        let mut total = 0u64;
        for v in values {
            counts[Self::bin(&edges, v)] += 1;
            total += 1;
        }
        let proportions = counts
            .iter()
            .map(|&c| c as f64 / total.max(1) as f64)
            .collect();
        Histogram { edges, proportions }
    }

    /// Quantile bins of `values`: edges at the 1/bins … (bins-1)/bins quantiles, with
    /// repeated edges merged (a feature that is often zero gets fewer, wider bins).
    pub fn quantiles(values: &[f64], bins: usize) -> Self {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mut edges: Vec<f64> = (1..bins)
            // Bins are closed on the right, so the q-th edge is the last value of the q-th
            // slice of the sorted values.
            .map(|q| sorted[(q * sorted.len()).div_ceil(bins).saturating_sub(1)])
            .collect();
        edges.dedup();
        Self::over(edges, values.iter().copied())
    }
}

/// Share of one class among predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassShare {
    /// The class label.
    pub label: i32,
    /// Its share of the holdout predictions.
    pub proportion: f64,
}

/// Everything drift detection compares a live window against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    /// Per feature, in model feature order: quantile bins over the training rows.
    pub features: Vec<FeatureBaseline>,
    /// Class mix of the model's predictions on the holdout rows.
    pub prediction_classes: Vec<ClassShare>,
    /// Confidence of the model's predictions on the holdout rows.
    pub confidence: Histogram,
}

impl Baselines {
    /// What drift is measured against: the distribution of each feature over `rows` (the
    /// training rows, or an imported model's reference rows), and the class mix and
    /// confidence of `predictions` (`(label, confidence)` on held-out or reference rows).
    pub fn measure(
        feature_names: &[String],
        rows: &[Vec<f64>],
        classes: &[i32],
        predictions: &[(i32, f64)],
    ) -> Self {
        Baselines {
            features: feature_names
                .iter()
                .enumerate()
                .map(|(f, name)| FeatureBaseline {
                    name: name.clone(),
                    histogram: Histogram::quantiles(
                        &rows.iter().map(|r| r[f]).collect::<Vec<_>>(),
                        FEATURE_BINS,
                    ),
                })
                .collect(),
            prediction_classes: classes
                .iter()
                .map(|&label| ClassShare {
                    label,
                    proportion: predictions.iter().filter(|(l, _)| *l == label).count() as f64
                        / predictions.len() as f64,
                })
                .collect(),
            confidence: Histogram::over(
                CONFIDENCE_EDGES.to_vec(),
                predictions.iter().map(|(_, c)| *c),
            ),
        }
    }
}

/// One feature's training distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureBaseline {
    /// Feature name.
    pub name: String,
    /// Its quantile histogram.
    #[serde(flatten)]
    pub histogram: Histogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_bins_split_evenly_and_merge_ties() {
        let values: Vec<f64> = (0..100).map(f64::from).collect();
        let h = Histogram::quantiles(&values, 10);
        assert_eq!(h.edges.len(), 9);
        assert!(
            h.proportions.iter().all(|p| (p - 0.1).abs() < 1e-9),
            "{h:?}"
        );

        let mostly_zero: Vec<f64> = (0..100).map(|i| if i < 80 { 0.0 } else { 1.0 }).collect();
        let h = Histogram::quantiles(&mostly_zero, 10);
        assert_eq!(h.edges, vec![0.0, 1.0]);
        assert_eq!(h.proportions, vec![0.8, 0.2, 0.0]);
    }
}

//! Training baselines stored with a model, against which drift is measured later:
//! quantile bins per feature, and the class mix of predictions and a confidence histogram
//! (a classifier's) or quantile bins of the predicted values (a regressor's).

use serde::{Deserialize, Serialize};

use super::engine::Predicted;

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
        if values.is_empty() {
            return Self::over(Vec::new(), []);
        }
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
    /// A classifier's class mix of predictions on the holdout rows (empty for a regressor).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prediction_classes: Vec<ClassShare>,
    /// A classifier's confidence of predictions on the holdout rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Histogram>,
    /// A regressor's predicted values on the reference rows, in quantile bins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_values: Option<Histogram>,
}

impl Baselines {
    /// What drift is measured against: the distribution of each feature over `rows` (the
    /// training rows, or an imported model's reference rows), and the distribution of the
    /// model's `predictions` on held-out or reference rows: for a classifier (`classes` its
    /// labels) the class mix and confidence, for a regressor (no classes) the values.
    pub fn measure(
        feature_names: &[String],
        rows: &[Vec<f64>],
        classes: &[i32],
        predictions: &[Predicted],
    ) -> Self {
        let features = feature_names
            .iter()
            .enumerate()
            .map(|(f, name)| FeatureBaseline {
                name: name.clone(),
                histogram: Histogram::quantiles(
                    &(rows.iter().map(|r| r[f]))
                        .filter(|v| !v.is_nan())
                        .collect::<Vec<_>>(),
                    FEATURE_BINS,
                ),
            })
            .collect();
        let (mut indices, mut confidences, mut values) = (Vec::new(), Vec::new(), Vec::new());
        for p in predictions {
            match *p {
                Predicted::Class { index, confidence } => {
                    indices.push(index);
                    confidences.push(confidence);
                }
                Predicted::Value(v) => values.push(v),
            }
        }
        let share = |class: usize| {
            indices.iter().filter(|&&i| i == class).count() as f64 / predictions.len() as f64
        };
        Baselines {
            features,
            prediction_classes: (classes.iter().enumerate())
                .map(|(class, &label)| ClassShare {
                    label,
                    proportion: share(class),
                })
                .collect(),
            confidence: (!classes.is_empty())
                .then(|| Histogram::over(CONFIDENCE_EDGES.to_vec(), confidences)),
            prediction_values: classes
                .is_empty()
                .then(|| Histogram::quantiles(&values, FEATURE_BINS)),
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

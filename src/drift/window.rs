//! One tumbling window of scored records: its raw counts against the model's drift
//! reference. The counts are sums, so the windows of several replicas add up (and the report
//! of the sum is the report of the whole).

use serde::{Deserialize, Serialize};

use crate::model::Predicted;
use crate::model::drift_reference::{DriftReference, output_value};
use crate::stats::profile::{Marginal, bin, packed};
use crate::stats::search::BinIndex;

/// A window's raw counts. Reports of the same window from several replicas add up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowCounts {
    /// Records scored.
    pub records: i64,
    /// Records that could not be scored (dead-lettered).
    pub invalid: i64,
    /// Per feature (model order), present values per reference bin.
    pub features: Vec<Vec<i64>>,
    /// Per feature, records where it was missing (null or NaN).
    #[serde(default)]
    pub missing: Vec<i64>,
    /// Per feature, Σ (x − reference mean) over present values.
    #[serde(default)]
    pub deviations: Vec<f64>,
    /// Per feature, Σ (x − reference mean)².
    #[serde(default)]
    pub squares: Vec<f64>,
    /// Records with every feature present, whose scores the next two sums add up.
    #[serde(default)]
    pub complete: i64,
    /// Per feature, the sum of its normal scores over complete records.
    #[serde(default)]
    pub score_sums: Vec<f64>,
    /// Per pair of features i ≤ j (upper triangle with the diagonal, row by row), the sum of
    /// the products of their scores over complete records.
    #[serde(default)]
    pub score_products: Vec<f64>,
    /// A classifier's predictions per class (model class order); a regressor's per output
    /// reference bin of predicted values.
    pub predictions: Vec<i64>,
    /// A classifier's predictions per output reference bin of confidence (empty for a
    /// regressor).
    pub confidence: Vec<i64>,
    /// Sum of the confidences, for the mean.
    pub confidence_sum: f64,
    /// Sum of a regressor's predicted values, for the mean.
    #[serde(default)]
    pub value_sum: f64,
    /// Records that carried a ground-truth label.
    pub labeled: i64,
    /// Labeled records predicted correctly.
    pub correct: i64,
    /// Labeled records per true class.
    pub class_support: Vec<i64>,
    /// Correct predictions per true class.
    pub class_hits: Vec<i64>,
}

impl WindowCounts {
    /// Zero counts shaped like `reference` (of a model with `classes` classes).
    pub fn empty(reference: &DriftReference, classes: usize) -> Self {
        let p = reference.features.len();
        let joint = reference.joint.is_some();
        let bins = |m: &Marginal| vec![0; m.counts.len()];
        let outputs = bins(&reference.outputs.distribution);
        let regressor = classes == 0;
        WindowCounts {
            records: 0,
            invalid: 0,
            features: reference.features.iter().map(bins).collect(),
            missing: vec![0; p],
            deviations: vec![0.0; p],
            squares: vec![0.0; p],
            complete: 0,
            score_sums: vec![0.0; if joint { p } else { 0 }],
            score_products: vec![0.0; if joint { p * (p + 1) / 2 } else { 0 }],
            predictions: if regressor {
                outputs.clone()
            } else {
                vec![0; classes]
            },
            confidence: if regressor { Vec::new() } else { outputs },
            confidence_sum: 0.0,
            value_sum: 0.0,
            labeled: 0,
            correct: 0,
            class_support: vec![0; classes],
            class_hits: vec![0; classes],
        }
    }
}

impl WindowCounts {
    /// Bytes the counts hold (what a window keeps, besides the fixed parts).
    pub fn bytes(&self) -> usize {
        let ints = self.features.iter().map(Vec::len).sum::<usize>()
            + self.missing.len()
            + self.predictions.len()
            + self.confidence.len()
            + self.class_support.len()
            + self.class_hits.len();
        let floats = self.deviations.len()
            + self.squares.len()
            + self.score_sums.len()
            + self.score_products.len();
        8 * (ints + floats) + std::mem::size_of::<WindowCounts>()
    }

    /// Adds `other`'s counts (a window of the same model from another replica, or the next
    /// window): the report of the sum is the report of all their records together.
    pub fn add(&mut self, other: &WindowCounts) {
        fn ints(a: &mut [i64], b: &[i64]) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
        fn floats(a: &mut [f64], b: &[f64]) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
        self.records += other.records;
        self.invalid += other.invalid;
        (self.features.iter_mut().zip(&other.features)).for_each(|(a, b)| ints(a, b));
        ints(&mut self.missing, &other.missing);
        floats(&mut self.deviations, &other.deviations);
        floats(&mut self.squares, &other.squares);
        self.complete += other.complete;
        floats(&mut self.score_sums, &other.score_sums);
        floats(&mut self.score_products, &other.score_products);
        ints(&mut self.predictions, &other.predictions);
        ints(&mut self.confidence, &other.confidence);
        self.confidence_sum += other.confidence_sum;
        self.value_sum += other.value_sum;
        self.labeled += other.labeled;
        self.correct += other.correct;
        ints(&mut self.class_support, &other.class_support);
        ints(&mut self.class_hits, &other.class_hits);
    }
}

/// One feature's bins as a window counts into them.
#[derive(Debug, Clone)]
struct FeatureBins {
    index: BinIndex,
    scores: Vec<f64>,
    mean: f64,
}

/// Accumulates one window's records.
#[derive(Debug, Clone)]
pub struct DriftWindow {
    features: Vec<FeatureBins>,
    joint: bool,
    output_edges: Vec<f64>,
    classes: Vec<i32>,
    counts: WindowCounts,
    /// Zero counts of the right shape, to start each window from.
    empty: WindowCounts,
    /// The current record's scores.
    scores: Vec<f64>,
}

impl DriftWindow {
    /// An empty window against `reference`, for a model with these `classes` (none for a
    /// regressor).
    pub fn new(reference: &DriftReference, classes: &[i32]) -> Self {
        let empty = WindowCounts::empty(reference, classes.len());
        DriftWindow {
            features: (reference.features.iter())
                .map(|m| FeatureBins {
                    index: BinIndex::new(&m.edges),
                    scores: m.scores.clone(),
                    mean: m.moments.map_or(0.0, |x| x.mean),
                })
                .collect(),
            joint: reference.joint.is_some(),
            output_edges: reference.outputs.distribution.edges.clone(),
            classes: classes.to_vec(),
            scores: vec![0.0; reference.features.len()],
            counts: empty.clone(),
            empty,
        }
    }

    /// Counts one scored record: its features (model order, NaN where missing), what the
    /// model predicted, and its ground truth (a class label), if any.
    pub fn observe(&mut self, row: &[f64], predicted: Predicted, actual: Option<i32>) {
        let c = &mut self.counts;
        c.records += 1;
        let mut complete = true;
        for (f, (bins, &x)) in self.features.iter().zip(row).enumerate() {
            if x.is_nan() {
                c.missing[f] += 1;
                complete = false;
                continue;
            }
            let b = bins.index.bin(x);
            c.features[f][b] += 1;
            let d = x - bins.mean;
            c.deviations[f] += d;
            c.squares[f] += d * d;
            self.scores[f] = bins.scores[b];
        }
        if complete && self.joint {
            add_products(c, &self.scores);
        }
        self.observe_output(predicted, actual);
    }

    fn observe_output(&mut self, predicted: Predicted, actual: Option<i32>) {
        let c = &mut self.counts;
        let b = bin(&self.output_edges, output_value(predicted));
        let class_index = match predicted {
            Predicted::Class { index, confidence } => {
                c.predictions[index] += 1;
                c.confidence[b] += 1;
                c.confidence_sum += confidence;
                index
            }
            Predicted::Value(value) => {
                c.predictions[b] += 1;
                c.value_sum += value;
                return;
            }
        };
        if let Some(truth) = actual.and_then(|l| self.classes.iter().position(|&k| k == l)) {
            c.labeled += 1;
            c.class_support[truth] += 1;
            if truth == class_index {
                c.correct += 1;
                c.class_hits[truth] += 1;
            }
        }
    }

    /// Counts one record that could not be scored.
    pub fn observe_invalid(&mut self) {
        self.counts.invalid += 1;
    }

    /// Records seen (scored and invalid).
    pub fn len(&self) -> i64 {
        self.counts.records + self.counts.invalid
    }

    /// True before the first record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw counts.
    pub fn counts(&self) -> &WindowCounts {
        &self.counts
    }

    /// Closes the window: returns its counts and starts over.
    pub fn take(&mut self) -> WindowCounts {
        std::mem::replace(&mut self.counts, self.empty.clone())
    }
}

/// Adds a complete record's scores to the sums and the products of pairs: compiled for AVX2
/// where the processor has it (4 products an instruction instead of 2; the same sums).
fn add_products(c: &mut WindowCounts, scores: &[f64]) {
    c.complete += 1;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2, checked just above.
        unsafe { add_products_avx2(c, scores) };
        return;
    }
    add_products_portable(c, scores);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_products_avx2(c: &mut WindowCounts, scores: &[f64]) {
    add_products_portable(c, scores)
}

#[inline(always)]
fn add_products_portable(c: &mut WindowCounts, scores: &[f64]) {
    let p = scores.len();
    for (sum, s) in c.score_sums.iter_mut().zip(scores) {
        *sum += s;
    }
    for (i, &si) in scores.iter().enumerate() {
        let row = &mut c.score_products[packed(p, i, i)..packed(p, i, p - 1) + 1];
        for (product, &sj) in row.iter_mut().zip(&scores[i..]) {
            *product += si * sj;
        }
    }
}

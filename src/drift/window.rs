//! One tumbling window of scored records: its raw counts against the model's drift
//! reference. The counts are sums, so the windows of several replicas add up (and the report
//! of the sum is the report of the whole).

use serde::{Deserialize, Serialize};

use super::estimate;
use super::products::Products;
use super::sample::FeatureSample;
use crate::model::Predicted;
use crate::model::calibrate::Calibration;
use crate::model::drift_reference::{DriftReference, output_value};
use crate::stats::bins::Bins;
use crate::stats::profile::Marginal;
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
    /// A calibrated binary classifier's expected confusion matrix (TP, FP, FN, TN), sums of
    /// calibrated probabilities; empty without a calibration (see `drift::estimate`).
    #[serde(default)]
    pub expected: Vec<f64>,
    /// Per bin of the model's probability of the second class, records…
    #[serde(default)]
    pub score_records: Vec<i64>,
    /// …and the sum of their calibrated probabilities.
    #[serde(default)]
    pub score_positives: Vec<f64>,
    /// A classifier of three classes or more with a calibration: the sum of its
    /// predictions' calibrated probabilities of being right.
    #[serde(default)]
    pub expected_correct: Option<f64>,
    /// A calibrated classifier: over the labeled records, the sum of their predictions'
    /// calibrated probabilities of being right (the estimate on the records whose realized
    /// accuracy is known).
    #[serde(default)]
    pub labeled_expected_correct: f64,
    /// Records whose features were counted, when the window counted a sample of them (a
    /// fast stream's: `drift::sample`); `None` when it counted every scored record's.
    #[serde(default)]
    pub sampled: Option<i64>,
}

impl WindowCounts {
    /// Zero counts shaped like `reference` (of a model with `classes` classes).
    pub fn empty(reference: &DriftReference, classes: usize) -> Self {
        let p = reference.features.len();
        let joint = reference.joint.is_some();
        let bins = |m: &Marginal| vec![0; m.counts.len()];
        let outputs = bins(&reference.outputs.distribution);
        let regressor = classes == 0;
        let mut counts = WindowCounts {
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
            expected: Vec::new(),
            score_records: Vec::new(),
            score_positives: Vec::new(),
            expected_correct: None,
            labeled_expected_correct: 0.0,
            sampled: None,
        };
        match fitting(reference, classes) {
            Some(Calibration::Binary(_)) => estimate::shape(&mut counts),
            Some(Calibration::Correctness(_)) => counts.expected_correct = Some(0.0),
            None => {}
        }
        counts
    }
}

impl WindowCounts {
    /// Records whose features were counted: the sample's, or every scored record.
    pub fn feature_records(&self) -> i64 {
        self.sampled.unwrap_or(self.records)
    }

    /// Bytes the counts hold (what a window keeps, besides the fixed parts).
    pub fn bytes(&self) -> usize {
        let ints = self.features.iter().map(Vec::len).sum::<usize>()
            + self.missing.len()
            + self.predictions.len()
            + self.confidence.len()
            + self.class_support.len()
            + self.class_hits.len()
            + self.score_records.len();
        let floats = self.expected.len()
            + self.score_positives.len()
            + self.deviations.len()
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
        if self.sampled.is_some() || other.sampled.is_some() {
            self.sampled = Some(self.feature_records() + other.feature_records());
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
        floats(&mut self.expected, &other.expected);
        ints(&mut self.score_records, &other.score_records);
        floats(&mut self.score_positives, &other.score_positives);
        if let (Some(a), Some(b)) = (&mut self.expected_correct, other.expected_correct) {
            *a += b;
        }
        self.labeled_expected_correct += other.labeled_expected_correct;
    }
}

/// The reference's calibration, if it is of the kind a classifier of `classes` classes has:
/// a window counts the estimate's sums for it alone.
fn fitting(reference: &DriftReference, classes: usize) -> Option<&Calibration> {
    (reference.outputs.calibration.as_ref()).filter(|c| c.fits(classes))
}

/// Accumulates one window's records.
#[derive(Debug, Clone)]
pub struct DriftWindow {
    features: Features,
    joint: bool,
    /// The outputs' bins (a classifier's confidence, a regressor's value).
    output: BinIndex,
    classes: Vec<i32>,
    /// A classifier's calibration, for the expected performance.
    calibration: Option<Calibration>,
    counts: WindowCounts,
    /// Zero counts of the right shape, to start each window from.
    empty: WindowCounts,
    /// Complete records' scores, for the sums of their products.
    products: Products,
    /// Every feature's bins' counts since they were last added to `counts`, in one array
    /// (numbered as `Features::bins`), beside `Features::scores`.
    tally: Vec<i64>,
    /// The normal scores of the rows being counted, row-major.
    scores: Vec<f64>,
    /// Which records' features are counted (every one's without).
    sample: Option<FeatureSample>,
    /// Records whose features this window counted.
    counted: i64,
    /// The sampled rows of the rows being counted, row-major.
    sampled_rows: Vec<f64>,
}

/// Rows a window bins a feature at a time (`Bins::tally_rows`): their values and scores,
/// 7.5 KB each at 30 features, stay in the first-level cache beside a feature's bins.
const ROWS_AT_ONCE: usize = 32;

/// The features' bins and reference means, one array per field: a record's deviations are
/// then computed for all its features at once, in vector instructions, and its bins tallied
/// by `stats::bins` (eight features at a time where the processor can).
#[derive(Debug, Clone)]
struct Features {
    bins: Bins,
    /// Every feature's bins' normal scores, in one array (numbered as `bins`).
    scores: Vec<f64>,
    means: Vec<f64>,
}

impl DriftWindow {
    /// An empty window against `reference`, for a model with these `classes` (none for a
    /// regressor).
    pub fn new(reference: &DriftReference, classes: &[i32]) -> Self {
        let empty = WindowCounts::empty(reference, classes.len());
        let marginals = &reference.features;
        let bins = Bins::new(marginals.iter().map(|m| m.edges.as_slice()));
        let p = marginals.len();
        DriftWindow {
            tally: vec![0; bins.bin_count()],
            scores: Vec::new(),
            sample: None,
            counted: 0,
            sampled_rows: Vec::new(),
            features: Features {
                scores: marginals.iter().flat_map(|m| m.scores.clone()).collect(),
                means: (marginals.iter())
                    .map(|m| m.moments.map_or(0.0, |x| x.mean))
                    .collect(),
                bins,
            },
            joint: reference.joint.is_some(),
            output: BinIndex::new(&reference.outputs.distribution.edges),
            classes: classes.to_vec(),
            calibration: fitting(reference, classes.len()).cloned(),
            products: Products::new(p),
            counts: empty.clone(),
            empty,
        }
    }

    /// The same window, counting the features of the records `sample` picks
    /// (`drift::sample`); the outputs still count every record.
    pub fn sampling_features(mut self, sample: FeatureSample) -> Self {
        self.sample = Some(sample);
        self
    }

    /// Paces the sample (if any) by the window's rate at `age`.
    pub fn pace(&mut self, age: std::time::Duration) {
        let records = self.len();
        if let Some(sample) = &mut self.sample {
            sample.pace(records, age);
        }
    }

    /// Whether the window holds `records` records: invalid ones and those whose features it
    /// counted (all scored ones, unless it counts a sample).
    pub fn holds(&self, records: i64) -> bool {
        self.counted + self.counts.invalid >= records
    }

    /// The same window, binning a record's features one at a time where it would bin eight
    /// at once (`stats::bins`): to compare the two.
    pub fn binning_one_at_a_time(mut self) -> Self {
        self.features.bins = self.features.bins.one_at_a_time();
        self
    }

    /// The same window, binning a record's features eight at a time wherever the processor
    /// can, even where one at a time is its default (`stats::bins`): to compare the two.
    pub fn binning_eight_at_a_time(mut self) -> Self {
        self.features.bins = self.features.bins.eight_at_a_time();
        self
    }

    /// Counts one scored record: its features (model order, NaN where missing), what the
    /// model predicted, and its ground truth (a class label), if any.
    pub fn observe(&mut self, row: &[f64], predicted: Predicted, actual: Option<i32>) {
        self.observe_rows(row, &[(predicted, actual)]);
    }

    /// Counts scored records, as [`DriftWindow::observe`] each in turn: `rows` holds their
    /// features (row-major), `scored` what the model predicted and the ground truth of each.
    /// Their features (or the sample's) are binned 32 rows at a time (`Bins::tally_rows`).
    pub fn observe_rows(&mut self, rows: &[f64], scored: &[(Predicted, Option<i32>)]) {
        let p = self.features.means.len();
        assert_eq!(
            rows.len(),
            scored.len() * p,
            "a row of {p} features a record"
        );
        let mut sampled = std::mem::take(&mut self.sampled_rows);
        for (rows, scored) in rows
            .chunks(ROWS_AT_ONCE * p)
            .zip(scored.chunks(ROWS_AT_ONCE))
        {
            match &mut self.sample {
                Some(sample) if sample.one_in() > 1 => {
                    sampled.clear();
                    for row in rows.chunks_exact(p).filter(|_| sample.counts_next()) {
                        sampled.extend_from_slice(row);
                    }
                    self.counted += (sampled.len() / p) as i64;
                    self.count_features(&sampled);
                }
                _ => {
                    self.counted += scored.len() as i64;
                    self.count_features(rows);
                }
            }
            for (row, &(predicted, actual)) in rows.chunks_exact(p).zip(scored) {
                self.counts.records += 1;
                self.observe_output(row, predicted, actual);
            }
        }
        self.sampled_rows = sampled;
    }

    /// Counts the features of up to [`ROWS_AT_ONCE`] rows (row-major): missing values,
    /// moments, bins, and a complete row's scores' products.
    fn count_features(&mut self, rows: &[f64]) {
        let p = self.features.means.len();
        if rows.is_empty() || p == 0 {
            return;
        }
        let mut complete = [false; ROWS_AT_ONCE];
        // The rows in order first: read in turn, they come into the cache for the columns
        // (the loop's thread wrote them, on another core).
        for (row, complete) in rows.chunks_exact(p).zip(&mut complete) {
            *complete = moments(&self.features, row, &mut self.counts);
        }
        let mut scores = std::mem::take(&mut self.scores);
        scores.resize(rows.len(), 0.0);
        let fs = &self.features;
        (fs.bins).tally_rows(rows, &mut self.tally, &fs.scores, &mut scores);
        if self.joint {
            for (scores, _) in scores.chunks_exact(p).zip(complete).filter(|(_, c)| *c) {
                self.counts.complete += 1;
                self.products.next_row().copy_from_slice(scores);
                (self.products).add(&mut self.counts.score_sums);
            }
        }
        self.scores = scores;
    }

    fn observe_output(&mut self, row: &[f64], predicted: Predicted, actual: Option<i32>) {
        let c = &mut self.counts;
        let b = self.output.bin(output_value(predicted));
        let mut right = None;
        let class_index = match predicted {
            Predicted::Class { index, confidence } => {
                if let Some(calibration) = &self.calibration {
                    right = estimate::observe(c, calibration, (row, predicted), actual.is_some());
                }
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
            c.labeled_expected_correct += right.unwrap_or(0.0);
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

    /// Closes the window: returns its counts and starts over.
    pub fn take(&mut self) -> WindowCounts {
        if self.joint {
            self.products.take(&mut self.counts.score_products);
        }
        let offsets = self.features.bins.offsets();
        for (&offset, counts) in offsets.iter().zip(&mut self.counts.features) {
            let tally = &mut self.tally[offset..][..counts.len()];
            for (count, t) in counts.iter_mut().zip(tally) {
                *count += std::mem::take(t);
            }
        }
        let mut counts = std::mem::replace(&mut self.counts, self.empty.clone());
        let counted = std::mem::take(&mut self.counted);
        counts.sampled = (counted < counts.records).then_some(counted);
        counts
    }
}

/// Counts `row`'s missing values and adds its present values' deviations from the
/// reference means and their squares; whether every value is present. Compiled for AVX2
/// where the processor has it.
fn moments(fs: &Features, row: &[f64], c: &mut WindowCounts) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2, checked just above.
        return unsafe { moments_avx2(fs, row, c) };
    }
    moments_portable(fs, row, c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn moments_avx2(fs: &Features, row: &[f64], c: &mut WindowCounts) -> bool {
    moments_portable(fs, row, c)
}

#[inline(always)]
fn moments_portable(fs: &Features, row: &[f64], c: &mut WindowCounts) -> bool {
    let p = fs.means.len();
    let (row, means) = (&row[..p], &fs.means[..p]);
    let (missing, deviations) = (&mut c.missing[..p], &mut c.deviations[..p]);
    let squares = &mut c.squares[..p];
    let mut absent = 0;
    for f in 0..p {
        let x = row[f];
        let present = !x.is_nan();
        absent += i64::from(!present);
        missing[f] += i64::from(!present);
        let d = if present { x - means[f] } else { 0.0 };
        deviations[f] += d;
        squares[f] += d * d;
    }
    absent == 0
}

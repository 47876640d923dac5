//! Which of a window's records have their features counted. A window of a fast stream holds
//! millions of records (ten seconds of it); past about ten times the reference's rows, more
//! records barely sharpen its tests, whose variance carries the reference's sampling error
//! too (1/n + 1/m), while counting them costs most of drift's CPU. Such a window counts the
//! features of a random sample instead: each record independently with chance 1/k, where k
//! is the window's rate so far times its minimum age over the target. Which records are
//! counted depends on their order and the clock, never on their values, so under no drift
//! the counted records are as random a sample as the window's, and the tests, calibrated for
//! the count, keep their error rates; at a steady rate k holds still, and the sample is
//! uniform over the window. The outputs, labels and performance estimate count every record.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Geometric};

/// A window counts the features of at least this many records, or of every one.
pub const MIN_TARGET: i64 = 100_000;

/// A window counts the features of at least this many times the reference's rows: then its
/// detectable shift, which goes as √(1/n + 1/m), is at most √1.1 (5%) above counting them
/// all.
pub const REFERENCE_MULTIPLE: i64 = 10;

/// A window's rate is measured once it is this old; before, it keeps the last window's k.
pub const WARM_UP: Duration = Duration::from_millis(100);

/// Seeds the draws, so that the same records at the same pace count the same sample.
const SEED: u64 = 0x5eed_d71f;

/// Which records a window counts the features of.
#[derive(Debug, Clone)]
pub struct FeatureSample {
    /// A window counts about this many records' features, when it has more.
    target: i64,
    /// The age at which a full window closes.
    min_age: Duration,
    /// One record in this many, on average (1: every one).
    one_in: i64,
    /// The gaps between counted records (none when every record counts).
    gaps: Option<Geometric>,
    /// Records to pass over before the next counted one.
    skip: u64,
    rng: StdRng,
}

impl FeatureSample {
    /// Every record's features until a window's rate would fill it with more than `target`
    /// records by `min_age`; then each record's with chance about target / that many.
    pub fn new(target: i64, min_age: Duration) -> Self {
        FeatureSample {
            target: target.max(1),
            min_age,
            one_in: 1,
            gaps: None,
            skip: 0,
            rng: StdRng::seed_from_u64(SEED),
        }
    }

    /// The target for a reference of `reference_rows` rows and windows of at least
    /// `window_records`, at least `requested`.
    pub fn target(requested: i64, reference_rows: u64, window_records: i64) -> i64 {
        let multiple = i64::try_from(reference_rows).unwrap_or(i64::MAX);
        (requested.max(window_records)).max(multiple.saturating_mul(REFERENCE_MULTIPLE))
    }

    /// One record in this many is counted, on average (1: every one).
    pub fn one_in(&self) -> i64 {
        self.one_in
    }

    /// Whether the next record's features are counted.
    #[inline]
    pub fn counts_next(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        if let Some(gaps) = &self.gaps {
            self.skip = gaps.sample(&mut self.rng);
        }
        true
    }

    /// Sets k from a window that has `records` records (scored and invalid) at `age`: the
    /// records it would hold at its minimum age over the target, rounded down. A window
    /// younger than `WARM_UP` keeps the last k.
    pub fn pace(&mut self, records: i64, age: Duration) {
        if age < WARM_UP {
            return;
        }
        let expected = records as f64 * self.min_age.as_secs_f64() / age.as_secs_f64();
        self.set_one_in((expected / self.target as f64) as i64);
    }

    /// One record in `k`, whatever the rate (to test windows without a clock).
    pub fn one_in_every(k: i64) -> Self {
        let mut sample = FeatureSample::new(1, Duration::ZERO);
        sample.set_one_in(k);
        sample
    }

    /// Counts one record in `k` (every one for k ≤ 1).
    pub fn set_one_in(&mut self, k: i64) {
        let k = k.max(1);
        if k == self.one_in {
            return;
        }
        self.one_in = k;
        self.gaps = (k > 1).then(|| Geometric::new(1.0 / k as f64).expect("a chance in (0, 1)"));
        self.skip = match &self.gaps {
            Some(gaps) => gaps.sample(&mut self.rng),
            None => 0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::{DriftSettings, DriftWindow, Tester};
    use crate::model::Model;
    use crate::model::dataset::Dataset;
    use crate::stats::wilson::binomial_interval;

    #[test]
    fn a_window_counts_one_record_in_its_rate_times_its_minimum_age_over_the_target() {
        let mut sample = FeatureSample::new(1000, Duration::from_secs(10));
        // Younger than the warm-up: the last k (every record, at first).
        sample.pace(50_000, Duration::from_millis(50));
        assert_eq!(sample.one_in(), 1);
        assert!((0..5000).all(|_| sample.counts_next()));
        // 500 records a second fill 10 s with 5,000: one in 5.
        sample.pace(500, Duration::from_secs(1));
        assert_eq!(sample.one_in(), 5);
        // 1,999 in 10 s: every record.
        sample.pace(1999, Duration::from_secs(10));
        assert_eq!(sample.one_in(), 1);
        assert!((0..5000).all(|_| sample.counts_next()));
    }

    #[test]
    fn a_sampling_window_counts_each_record_with_chance_one_in_k_independently() {
        let mut sample = FeatureSample::one_in_every(8);
        let counted: Vec<bool> = (0..400_000).map(|_| sample.counts_next()).collect();
        // Each count lies in its central 99.9% interval under Binomial(n, 1/8).
        let hits = counted.iter().filter(|&&c| c).count() as u64;
        let (low, high) = binomial_interval(counted.len() as u64, 0.125, 0.999);
        assert!(
            (low..=high).contains(&hits),
            "{hits} counted: [{low}, {high}]"
        );
        // Independent: after a counted record the next is counted with the same chance.
        let pairs = counted.windows(2).filter(|w| w[0]);
        let (after, next) = pairs.fold((0, 0), |(a, n), w| (a + 1, n + u64::from(w[1])));
        let (low, high) = binomial_interval(after, 0.125, 0.999);
        assert!(
            (low..=high).contains(&next),
            "{next} of {after}: [{low}, {high}]"
        );
    }

    #[test]
    fn a_sampling_window_counts_a_random_sample_of_features_and_every_output() {
        let model = Model::open(None).unwrap();
        let data = Dataset::breast_cancer();
        let (reference, classes) = (model.drift_reference(), &model.metadata.classes);
        let sample = FeatureSample::one_in_every(9);
        let mut all = DriftWindow::new(reference, classes);
        let mut window = DriftWindow::new(reference, classes).sampling_features(sample);
        let rows: Vec<f64> = data.rows.concat();
        let predicted = model.engine.predict_all(&rows);
        let labels = data.labels.iter().map(|&l| Some(l));
        let scored: Vec<_> = predicted.into_iter().zip(labels).collect();
        let p = data.feature_names.len();
        for _ in 0..16 {
            all.observe_rows(&rows, &scored);
            window.observe_rows(&rows, &scored);
        }
        let records = 16 * 569;
        assert!(
            window.len() >= 2000 && !window.holds(2000),
            "a window holds what it counted"
        );
        let (all, sampled) = (all.take(), window.take());
        assert_eq!(
            all.sampled, None,
            "a window of every record says none was left out"
        );
        let counted = sampled.sampled.expect("a sampled window");
        let (low, high) = binomial_interval(records as u64, 1.0 / 9.0, 0.999);
        assert!(
            (low..=high).contains(&(counted as u64)),
            "{counted} in [{low}, {high}]"
        );
        // Every counted record is in each feature's bins (none is missing here) and the
        // pairs' sums; every record is in the outputs and labels.
        for f in 0..p {
            let binned = sampled.features[f].iter().sum::<i64>();
            assert_eq!(binned + sampled.missing[f], counted);
        }
        assert_eq!(sampled.complete, counted);
        assert_eq!(sampled.records, records);
        assert_eq!(sampled.predictions.iter().sum::<i64>(), records);
        assert_eq!(sampled.labeled, records);
        // A random sample: each feature's mean deviation within 4.5 standard errors of the
        // whole's (30 features).
        for f in 0..p {
            let n = counted as f64;
            let mean = all.deviations[f] / records as f64;
            let sd = (all.squares[f] / records as f64 - mean * mean).sqrt();
            let z = (sampled.deviations[f] / n - mean) / (sd / n.sqrt());
            assert!(z.abs() < 4.5, "feature {f}: z = {z}");
        }
        // Its report tests the features on the counted records, and their missing share.
        let settings = DriftSettings::new("test".into());
        let mut tester = Tester::new(&model.metadata, reference, &settings);
        let report = tester.report(sampled);
        let tested = |f: &crate::drift::report::FeatureDrift| f.tests.len() == 4;
        assert!(
            report
                .features
                .iter()
                .all(|f| tested(f) && f.missing_share == 0.0)
        );
    }

    #[test]
    fn the_target_is_at_least_ten_reference_rows_and_a_window() {
        assert_eq!(FeatureSample::target(MIN_TARGET, 455, 1000), MIN_TARGET);
        assert_eq!(FeatureSample::target(MIN_TARGET, 50_000, 1000), 500_000);
        assert_eq!(FeatureSample::target(MIN_TARGET, 455, 200_000), 200_000);
    }
}

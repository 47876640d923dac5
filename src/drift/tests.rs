//! The drift tests end to end on the bundled model: its own data replayed stays quiet at
//! the stated rates, a shifted feature is flagged and named, reports survive the schema.

use rand::{Rng, SeedableRng};

use super::plan::DriftSettings;
use super::report::{DriftReport, Flag, SequentialAlarm};
use super::tester::Tester;
use super::window::WindowCounts;
use crate::model::Model;
use crate::model::dataset::Dataset;
use crate::stats::wilson::binomial_interval;

/// Scores `rows` and reports them as the tester's next window.
fn report(model: &Model, tester: &mut Tester, rows: &[(Vec<f64>, i32)]) -> DriftReport {
    let counts = counted(model, rows);
    tester.report(counts)
}

/// `n` rows drawn at random from the data set, features in `shift` moved by `by` of their
/// standard deviation.
fn sample(
    data: &Dataset,
    rng: &mut impl Rng,
    n: usize,
    shift: &[usize],
    by: f64,
    sd: &[f64],
) -> Vec<(Vec<f64>, i32)> {
    (0..n)
        .map(|_| {
            let i = rng.random_range(0..data.len());
            let mut row = data.rows[i].clone();
            for &f in shift {
                row[f] += by * sd[f];
            }
            (row, data.labels[i])
        })
        .collect()
}

fn sds(data: &Dataset) -> Vec<f64> {
    let n = data.len() as f64;
    (0..data.feature_names.len())
        .map(|f| {
            let mean = data.rows.iter().map(|r| r[f]).sum::<f64>() / n;
            (data.rows.iter().map(|r| (r[f] - mean).powi(2)).sum::<f64>() / n).sqrt()
        })
        .collect()
}

#[test]
fn replaying_the_bundled_data_set_stays_within_the_stated_rates() {
    let model = Model::open(None).unwrap();
    let data = Dataset::breast_cancer();
    let settings = DriftSettings::new("test".into());
    let mut tester = Tester::new(&model.metadata, model.drift_reference(), &settings);
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let windows = 300u64;
    let sd = sds(&data);
    let reports: Vec<DriftReport> = (0..windows)
        .map(|_| {
            report(
                &model,
                &mut tester,
                &sample(&data, &mut rng, 1000, &[], 0.0, &sd),
            )
        })
        .collect();
    let alerts = reports.iter().filter(|r| r.flag == Flag::Alert).count() as u64;
    let warns = reports.iter().filter(|r| r.flag != Flag::Ok).count() as u64;
    let sequential: usize = reports.iter().map(|r| r.sequential.len()).sum();
    eprintln!(
        "{windows} replayed windows: {alerts} alert, {warns} warn or alert, {sequential} sequential alarms"
    );
    // The most a 1% (5%) rate gives in 300 windows, but for a chance of 1 in 2,000.
    let (_, most_alerts) = binomial_interval(windows, 0.01, 0.999);
    let (_, most_warns) = binomial_interval(windows, 0.05, 0.999);
    assert!(
        alerts <= most_alerts,
        "{alerts} alerts in {windows} drift-free windows"
    );
    assert!(
        warns <= most_warns,
        "{warns} warns in {windows} drift-free windows"
    );
    assert!(
        sequential <= 1,
        "{sequential} false sequential alarms within 300 windows"
    );
}

#[test]
fn shifted_features_are_flagged_and_named_and_the_others_are_not() {
    let model = Model::open(None).unwrap();
    let data = Dataset::breast_cancer();
    let settings = DriftSettings::new("test".into());
    let mut tester = Tester::new(&model.metadata, model.drift_reference(), &settings);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let sd = sds(&data);
    // mean radius, mean area, mean concave points, worst radius, worst concave points
    let shifted = [0usize, 3, 7, 20, 27];
    let before = report(
        &model,
        &mut tester,
        &sample(&data, &mut rng, 1000, &[], 0.0, &sd),
    );
    assert_eq!(
        before.flag,
        Flag::Ok,
        "{:?}",
        before
            .features
            .iter()
            .map(|f| f.p_value)
            .collect::<Vec<_>>()
    );
    let after = report(
        &model,
        &mut tester,
        &sample(&data, &mut rng, 1000, &shifted, 0.5, &sd),
    );
    assert_eq!(after.flag, Flag::Alert);
    for (i, f) in after.features.iter().enumerate() {
        match shifted.contains(&i) {
            true => assert_eq!(
                f.flag,
                Flag::Alert,
                "shifted {} not flagged: {:?}",
                f.name,
                f.tests
            ),
            false => assert_eq!(
                f.flag,
                Flag::Ok,
                "unshifted {} flagged: {:?}",
                f.name,
                f.tests
            ),
        }
    }
    // What a window of 1,000 against 455 reference rows detects: about 0.3 standard deviations.
    let detectable = after.features[0].detectable_shift.unwrap();
    assert!((0.25..0.35).contains(&detectable), "{detectable}");
    let moved = after.features[0].mean_shift.unwrap();
    assert!((0.4..0.6).contains(&moved), "mean radius moved {moved} sd");
}

#[test]
fn a_window_too_small_to_test_is_reported_untested() {
    let model = Model::open(None).unwrap();
    let data = Dataset::breast_cancer();
    let settings = DriftSettings::new("test".into());
    let mut tester = Tester::new(&model.metadata, model.drift_reference(), &settings);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let sd = sds(&data);
    // One record, far out: a window closed by age after an outage.
    let one = report(
        &model,
        &mut tester,
        &sample(&data, &mut rng, 1, &[0, 1, 2], 5.0, &sd),
    );
    assert_eq!(one.flag, Flag::Ok);
    assert!(
        one.untested
            .as_ref()
            .is_some_and(|u| u.contains("1 records scored")),
        "{:?}",
        one.untested
    );
    assert!(
        one.features
            .iter()
            .all(|f| f.tests.is_empty() && f.flag == Flag::Ok)
    );
    assert_eq!(one.tests, 0);
}

#[test]
fn reports_round_trip_through_the_published_schema_and_windows_add_up() {
    let model = Model::open(None).unwrap();
    let data = Dataset::breast_cancer();
    let settings = DriftSettings::new("test".into());
    let mut tester = Tester::new(&model.metadata, model.drift_reference(), &settings);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let sd = sds(&data);
    let mut rows = sample(&data, &mut rng, 600, &[], 0.0, &sd);
    // Mean concavity taken from other records: its marginal stays, its correlations go.
    let donors: Vec<f64> = (0..rows.len())
        .map(|_| data.rows[rng.random_range(0..data.len())][6])
        .collect();
    for (row, donor) in rows.iter_mut().zip(donors) {
        row.0[6] = donor;
    }
    let report = report(&model, &mut tester, &rows);
    assert!(
        report
            .pairs
            .iter()
            .any(|p| p.a == "mean_concavity" || p.b == "mean_concavity"),
        "{:?}",
        report.pairs
    );
    assert_eq!(
        report.features[6].flag,
        Flag::Ok,
        "{:?}",
        report.features[6].tests
    );
    assert!(report.vector.is_some());
    let codec = crate::codec::encode::AvroCodec::drift_reports();
    let mut bytes = Vec::new();
    codec.encode(&report, &mut bytes).unwrap();
    let back: DriftReport = codec.decode(&bytes).unwrap();
    assert!(back == report, "the report changed through Avro");

    // driftwood's own encoder writes apache-avro's bytes, with every optional part present
    // and absent.
    let mut full = report.clone();
    full.notice = Some("a notice".into());
    full.untested = Some("too few".into());
    full.sequential = vec![SequentialAlarm {
        name: "mean_radius".into(),
        direction: "up".into(),
    }];
    full.confidence_flag = Some(Flag::Warn);
    full.mean_value = Some(-1.5);
    full.recall[0].name = None;
    full.recall[1].recall = None;
    let mut bare = report.clone();
    (bare.vector, bare.confidence, bare.accuracy) = (None, None, None);
    (bare.features, bare.pairs, bare.recall, bare.outputs) = (vec![], vec![], vec![], vec![]);
    bare.counts.score_products.clear();
    for r in [&report, &full, &bare] {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        r.encode_avro(&mut ours);
        codec.encode(r, &mut theirs).unwrap();
        assert!(ours == theirs, "the encodings differ");
    }

    // Two replicas' halves of the window add up to the whole.
    let (first, second) = rows.split_at(250);
    let mut counts = counted(&model, first);
    counts.add(&counted(&model, second));
    let whole = counted(&model, &rows);
    assert_eq!(
        (counts.records, &counts.features, counts.complete),
        (whole.records, &whole.features, whole.complete)
    );
    let close = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-9 * (1.0 + y.abs()))
    };
    assert!(
        close(&counts.score_products, &whole.score_products)
            && close(&counts.deviations, &whole.deviations)
    );
}

/// The counts of one window of `rows`.
fn counted(model: &Model, rows: &[(Vec<f64>, i32)]) -> super::window::WindowCounts {
    counted_against(model, model.drift_reference(), rows)
}

/// The counts of one window of `rows` against `reference`.
fn counted_against(
    model: &Model,
    reference: &crate::model::drift_reference::DriftReference,
    rows: &[(Vec<f64>, i32)],
) -> super::window::WindowCounts {
    let settings = DriftSettings::new("test".into());
    let mut tester = Tester::new(&model.metadata, reference, &settings);
    let predicted = model
        .engine
        .predict_all(&rows.iter().flat_map(|(r, _)| r.clone()).collect::<Vec<_>>());
    let records = rows
        .iter()
        .zip(predicted)
        .map(|((row, label), p)| (row.as_slice(), p, Some(*label)));
    tester.count(records)
}

#[test]
fn with_drift_turned_off_nothing_is_counted_or_reported() {
    let model = std::sync::Arc::new(Model::open(None).unwrap());
    let mut settings = DriftSettings::new("test".into());
    settings.enabled = false;
    settings.window_records = 1;
    let metrics = crate::obs::metrics::Metrics::new();
    let mut monitor = super::DriftMonitor::new(model.clone(), settings, metrics);
    let row = Dataset::breast_cancer().rows[0].clone();
    let predicted = model.engine.predict_all(&row)[0];
    monitor.note(0, 0, predicted, None);
    monitor.note_invalid(0);
    let mut reports = 0;
    monitor.count_batch(&row, &[0], |_| reports += 1);
    assert_eq!(reports, 0);
    assert!(monitor.close_if_due(&[0]).is_none());
    assert!(monitor.close(&[0]).is_none());
}

#[test]
fn a_batch_is_counted_in_order_and_windows_close_at_their_size_within_it() {
    let model = std::sync::Arc::new(Model::open(None).unwrap());
    let mut settings = DriftSettings::new("test".into());
    settings.window_records = 100;
    let metrics = crate::obs::metrics::Metrics::new();
    let mut monitor = super::DriftMonitor::new(model.clone(), settings, metrics);
    let data = Dataset::breast_cancer();
    let rows: Vec<f64> = data.rows[..240].concat();
    let predicted = model.engine.predict_all(&rows);
    for (i, &p) in predicted.iter().enumerate() {
        monitor.note(i as i32 % 3, i, p, Some(data.labels[i]));
        if i % 60 == 59 {
            monitor.note_invalid(1);
        }
    }
    let mut reports = Vec::new();
    monitor.count_batch(&rows, &[0, 1, 2], |report| reports.push(report));
    // 244 records in order (an invalid one after every 60 scored): two full windows, 44
    // left for the next.
    let sizes: Vec<(i64, i64)> = (reports.iter())
        .map(|r| (r.counts.records, r.counts.invalid))
        .collect();
    assert_eq!(sizes, [(99, 1), (98, 2)]);
    let last = monitor.close(&[0]).expect("the records left");
    assert_eq!((last.counts.records, last.counts.invalid), (43, 1));
}

/// A window counts the same, to the bit, whether its records come one at a time or in
/// batches whose features are binned a feature at a time: rows with missing values, labels
/// and none, over several batches of `Bins::tally_rows`.
#[test]
fn rows_counted_in_batches_count_what_a_record_at_a_time_counts() {
    let model = Model::open(None).unwrap();
    let data = Dataset::breast_cancer();
    let mut rows: Vec<f64> = data.rows[..150].concat();
    let p = data.rows[0].len();
    for k in (5..rows.len()).step_by(37) {
        rows[k] = f64::NAN;
    }
    let predicted = model.engine.predict_all(&rows);
    let scored: Vec<_> = (predicted.iter().enumerate())
        .map(|(i, &p)| (p, (i % 4 != 0).then_some(data.labels[i])))
        .collect();
    let reference = model.drift_reference();
    let classes = &model.metadata.classes;
    let mut one = super::window::DriftWindow::new(reference, classes);
    for (row, &(predicted, actual)) in rows.chunks_exact(p).zip(&scored) {
        one.observe(row, predicted, actual);
    }
    let mut batched = super::window::DriftWindow::new(reference, classes);
    batched.observe_rows(&rows[..100 * p], &scored[..100]);
    batched.observe_rows(&rows[100 * p..], &scored[100..]);
    let (one, batched) = (one.take(), batched.take());
    assert!(one.complete > 0 && one.complete < 150, "{}", one.complete);
    assert_eq!(one, batched);
}

/// The windows counted on the drift thread are the windows counted on the loop's: the same
/// records in the same order, each report handed out once, in order, by a later call at the
/// latest, and `close` hands out every one still held before the last window's. With batches
/// smaller than a hand-over (rows copied after the first batch's) and larger (rows moved).
#[test]
fn the_drift_thread_closes_the_same_windows_as_the_loop_and_hands_out_each_report_once() {
    let model = std::sync::Arc::new(Model::open(None).unwrap());
    let mut settings = DriftSettings::new("test".into());
    settings.window_records = 100;
    let data = Dataset::breast_cancer();
    for (size, batches) in [(70, 5), (280, 2)] {
        let mut here =
            super::DriftMonitor::new(model.clone(), settings.clone(), Default::default());
        let mut worker =
            super::DriftWorker::new(model.clone(), settings.clone(), Default::default());
        let (mut counted_here, mut counted_there) = (Vec::new(), Vec::new());
        for batch in 0..batches {
            let rows: Vec<f64> = data.rows[batch * size..][..size].concat();
            let predicted = model.engine.predict_all(&rows);
            for (i, &p) in predicted.iter().enumerate() {
                let label = Some(data.labels[batch * size + i]);
                here.note(i as i32 % 3, i, p, label);
                worker.note(i as i32 % 3, i, p, label);
            }
            here.note_invalid(1);
            worker.note_invalid(1);
            here.count_batch(&rows, &[0, 1, 2], |r| counted_here.push(r));
            let mut taken = rows.clone();
            worker.count_batch(&mut taken, &[0, 1, 2], |r| counted_there.push(r));
            assert!(taken.is_empty(), "the worker takes the batch's rows");
        }
        counted_here.extend(here.close(&[0]));
        counted_there.extend(worker.close(&[0]));
        assert!(worker.close(&[0]).is_empty(), "nothing is handed out twice");

        // 355 records in batches of 71: three full windows and 55 left for the last; 562
        // in batches of 281: five and 62.
        let windows = (size + 1) * batches / 100 + 1;
        assert_eq!(counted_here.len(), windows, "batches of {size}");
        let counts = |reports: &[DriftReport]| -> Vec<WindowCounts> {
            reports.iter().map(|r| r.counts.clone()).collect()
        };
        assert_eq!(
            counts(&counted_there),
            counts(&counted_here),
            "batches of {size}"
        );
        let flags = |reports: &[DriftReport]| reports.iter().map(|r| r.flag).collect::<Vec<_>>();
        assert_eq!(
            flags(&counted_there),
            flags(&counted_here),
            "batches of {size}"
        );
    }
}

/// A binary classifier whose reference carries a calibration gets the expected performance
/// of each window: the sums a window keeps give what `stats::cbpe` gives on its records, add
/// up across replicas, and go through the published schema.
#[test]
fn a_calibrated_classifier_s_windows_carry_the_expected_performance() {
    use crate::model::calibrate::{CalibrationPass, positive_probability};
    use crate::stats::cbpe::{self, Scored};
    let model = Model::open(None).unwrap();
    let data = Dataset::breast_cancer();
    let classes = &model.metadata.classes;
    let all = model
        .engine
        .predict_all(&data.rows.iter().flatten().copied().collect::<Vec<_>>());
    let mut pass = CalibrationPass::new(2).unwrap();
    for ((row, &p), label) in data.rows.iter().zip(&all).zip(&data.labels) {
        pass.add(row, p, classes.iter().position(|c| c == label));
    }
    let mut reference = model.drift_reference().clone();
    reference.outputs.calibration = pass.finish();
    let Some(crate::model::calibrate::Calibration::Binary(calibration)) =
        reference.outputs.calibration.clone()
    else {
        panic!("a binary calibration")
    };
    let settings = DriftSettings::new("test".into());
    let count = |rows: &[(Vec<f64>, i32)]| counted_against(&model, &reference, rows);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let rows = sample(&data, &mut rng, 600, &[], 0.0, &sds(&data));
    let mut tester = Tester::new(&model.metadata, &reference, &settings);
    let report = tester.report(count(&rows));
    let estimated = report.estimated.expect("an estimate");

    let flat: Vec<f64> = rows.iter().flat_map(|(r, _)| r.clone()).collect();
    let scored: Vec<Scored> = (model.engine.predict_all(&flat).into_iter())
        .zip(&rows)
        .map(|(p, (row, _))| {
            let score = positive_probability(p).unwrap();
            Scored {
                score,
                predicted_positive: p.class() == Some(1),
                probability: calibration.apply(score, Some(row)),
            }
        })
        .collect();
    let direct = cbpe::estimate(&scored);
    let near = |a: Option<f64>, b: Option<f64>, tolerance: f64| {
        (a.unwrap() - b.unwrap()).abs() <= tolerance
    };
    assert!(
        near(estimated.accuracy, direct.accuracy, 1e-9),
        "{estimated:?} {direct:?}"
    );
    assert!(
        near(estimated.f1, direct.f1, 1e-9),
        "{estimated:?} {direct:?}"
    );
    // Ranked by 100 bins instead of exact scores: a forest's vote shares are multiples of
    // 1/trees, so the bins change little.
    assert!(
        near(estimated.roc_auc, direct.roc_auc, 0.01),
        "{estimated:?} {direct:?}"
    );
    // Every record carried its label: the expectation over the labeled ones is the whole's,
    // beside the realized accuracy of the same records.
    assert!(
        near(estimated.labeled_accuracy, estimated.accuracy, 1e-9),
        "{estimated:?}"
    );
    assert!(report.accuracy.is_some());

    let (first, second) = rows.split_at(250);
    let mut halves = count(first);
    halves.add(&count(second));
    let whole = count(&rows);
    assert_eq!(halves.score_records, whole.score_records);
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-9);
    assert!(close(&halves.expected, &whole.expected));
    assert!(close(&halves.score_positives, &whole.score_positives));

    let codec = crate::codec::encode::AvroCodec::drift_reports();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    report.encode_avro(&mut ours);
    codec.encode(&report, &mut theirs).unwrap();
    assert!(ours == theirs, "the encodings differ");
    let back: DriftReport = codec.decode(&ours).unwrap();
    assert_eq!(back.estimated, report.estimated);
}

/// A classifier of three classes calibrated by correctness: its windows carry the expected
/// accuracy, the mean of its predictions' calibrated chances of being right, which adds up
/// across replicas and goes through the published schema.
#[test]
fn a_multiclass_classifier_s_windows_carry_the_expected_accuracy() {
    use crate::model::Predicted;
    use crate::model::calibrate::{Calibration, CalibrationPass};
    let model = Model::open(None).unwrap();
    let data = Dataset::breast_cancer();
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    // A made-up three-class model: its confidence says how often it is right.
    let mut predict = |_: &[f64]| -> (Predicted, bool) {
        let confidence = rng.random_range(0.34..1.0);
        let right = rng.random_bool(confidence);
        let index = rng.random_range(0..3);
        (Predicted::Class { index, confidence }, right)
    };
    let made: Vec<(Predicted, bool)> = data.rows.iter().map(|r| predict(r)).collect();
    let predictions: Vec<Predicted> = made.iter().map(|m| m.0).collect();
    let mut metadata = model.metadata.clone();
    metadata.classes = vec![0, 1, 2];
    let mut reference = crate::model::drift_reference::DriftReference::from_rows(
        "rows".into(),
        &data.rows,
        ("rows".into(), &predictions),
        3,
    );
    let mut pass = CalibrationPass::new(3).unwrap();
    for (row, (p, right)) in data.rows.iter().zip(&made) {
        let Predicted::Class { index, .. } = *p else {
            unreachable!()
        };
        pass.add(row, *p, Some(if *right { index } else { (index + 1) % 3 }));
    }
    reference.outputs.calibration = pass.finish();
    let Some(Calibration::Correctness(fit)) = reference.outputs.calibration.clone() else {
        panic!("a correctness calibration")
    };
    let settings = DriftSettings::new("test".into());
    let window: Vec<(&[f64], Predicted)> = (data.rows.iter().take(400))
        .map(|r| (r.as_slice(), predict(r).0))
        .collect();
    let count = |records: &[(&[f64], Predicted)]| {
        let mut tester = Tester::new(&metadata, &reference, &settings);
        tester.count(records.iter().map(|&(row, p)| (row, p, None)))
    };
    let mut tester = Tester::new(&metadata, &reference, &settings);
    let report = tester.report(count(&window));
    let expected: f64 = (window.iter())
        .map(|(row, p)| match p {
            Predicted::Class { confidence, .. } => fit.apply(*confidence, Some(row)),
            Predicted::Value(_) => unreachable!(),
        })
        .sum::<f64>()
        / window.len() as f64;
    let estimated = report.estimated.expect("an expected accuracy");
    assert!(
        (estimated.accuracy.unwrap() - expected).abs() < 1e-9,
        "{estimated:?}"
    );
    assert_eq!((estimated.f1, estimated.roc_auc), (None, None));
    assert_eq!(
        estimated.labeled_accuracy, None,
        "no record carried a label"
    );

    let mut halves = count(&window[..150]);
    halves.add(&count(&window[150..]));
    let whole = count(&window);
    assert!((halves.expected_correct.unwrap() - whole.expected_correct.unwrap()).abs() < 1e-9);

    let codec = crate::codec::encode::AvroCodec::drift_reports();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    report.encode_avro(&mut ours);
    codec.encode(&report, &mut theirs).unwrap();
    assert!(ours == theirs, "the encodings differ");
}

#[test]
fn with_a_minimum_age_a_full_window_stays_open_until_it_is_old_enough() {
    use std::time::{Duration, Instant};
    let model = std::sync::Arc::new(Model::open(None).unwrap());
    let mut settings = DriftSettings::new("test".into());
    settings.window_records = 100;
    let min_age = Duration::from_secs(1);
    settings.window_min_age = min_age;
    let metrics = crate::obs::metrics::Metrics::new();
    // Read before the monitor opens its window, so that this clock's age bounds the window's.
    let opened = Instant::now();
    let mut monitor = super::DriftMonitor::new(model.clone(), settings, metrics);
    let data = Dataset::breast_cancer();
    let rows: Vec<f64> = data.rows[..240].concat();
    for (i, &p) in model.engine.predict_all(&rows).iter().enumerate() {
        monitor.note(0, i, p, None);
    }
    let mut reports = Vec::new();
    monitor.count_batch(&rows, &[0], |report| reports.push(report));
    // Two windows' worth, counted in far less than the minimum age: none closes.
    assert!(reports.is_empty());
    let report = loop {
        if let Some(report) = monitor.close_if_due(&[0]) {
            break report;
        }
        assert!(opened.elapsed() < 10 * min_age, "the window never closed");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(opened.elapsed() >= min_age);
    // One window of every record, not two of 100 and 40 left over.
    assert_eq!(report.counts.records, 240);
    assert!(monitor.close(&[0]).is_none());
}

#[test]
fn with_a_minimum_age_a_fast_streams_window_counts_a_sample_of_features() {
    use std::time::{Duration, Instant};
    let model = std::sync::Arc::new(Model::open(None).unwrap());
    let mut settings = DriftSettings::new("test".into());
    settings.window_records = 100;
    settings.window_min_age = Duration::from_secs(1);
    // The target is then ten times the reference's rows (about 4,550), which this loop's
    // rate fills in far less than the minimum age.
    settings.sample_records = Some(1);
    let metrics = crate::obs::metrics::Metrics::new();
    let mut monitor = super::DriftMonitor::new(model.clone(), settings, metrics);
    let data = Dataset::breast_cancer();
    let rows: Vec<f64> = data.rows.concat();
    let predicted = model.engine.predict_all(&rows);
    let started = Instant::now();
    let mut reports = Vec::new();
    while reports.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no window closed"
        );
        for (i, &p) in predicted.iter().enumerate() {
            monitor.note(0, i, p, None);
        }
        monitor.count_batch(&rows, &[0], |report| reports.push(report));
    }
    let counts = &reports[0].counts;
    let counted = counts.sampled.expect("a sampled window");
    assert!(
        (100..counts.records / 2).contains(&counted),
        "{counted} of {} counted",
        counts.records
    );
    assert_eq!(counts.predictions.iter().sum::<i64>(), counts.records);
    assert!(reports[0].features.iter().all(|f| f.tests.len() == 4));
}

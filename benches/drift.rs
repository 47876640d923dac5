//! Drift's cost per record: counting one scored record into a window (`drift/observe`), at
//! 30 features against a reference of 50,000 correlated Gaussian rows (99 percentile edges
//! per feature, joint score moments), the same with a calibration whose correction forest
//! reads one record in four (`drift/observe_calibrated`; every labelled record: `_labelled`), and on the bundled model's reference; and closing a
//! window of 5,000 records (every test, the correction, the report), whose cost spreads
//! over its records (`drift/close_5000`), and a window of the bundled model's 1,000
//! (`drift/close_bundled_1000`, the pipeline's default window).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use driftwood::drift::{DriftSettings, DriftWindow, Tester};
use driftwood::model::calibrate::CalibrationPass;
use driftwood::model::drift_reference::DriftReference;
use driftwood::model::{Model, ModelMetadata, Predicted};
use driftwood::stats::simulate::Gaussian;
use rand::{Rng, SeedableRng};

/// 30 correlated features (correlation 0.3 between neighbours, decaying).
fn gaussian() -> Gaussian {
    Gaussian::new(30, |i, j| 0.3f64.powi((i as i32 - j as i32).abs()))
}

fn synthetic_reference(rows: &[Vec<f64>]) -> DriftReference {
    let predictions: Vec<Predicted> = (rows.iter())
        .map(|r| Predicted::Class {
            index: usize::from(r[0] > 0.0),
            confidence: 0.5 + r[0].abs().min(1.0) / 2.0,
        })
        .collect();
    DriftReference::from_rows(
        "synthetic".into(),
        rows,
        ("synthetic".into(), &predictions),
        2,
    )
}

/// `reference` with a binary calibration (and its correction) fitted on `rows`, whose
/// outcome leans on the first feature as the synthetic model does and on the second too.
fn calibrated(reference: &DriftReference, rows: &[Vec<f64>]) -> DriftReference {
    let mut pass = CalibrationPass::new(2).unwrap();
    for row in rows {
        let predicted = Predicted::Class {
            index: usize::from(row[0] > 0.0),
            confidence: 0.5 + row[0].abs().min(1.0) / 2.0,
        };
        pass.add(
            row,
            predicted,
            Some(usize::from(row[0] + row[1] / 2.0 > 0.0)),
        );
    }
    let mut reference = reference.clone();
    reference.outputs.calibration = pass.finish();
    reference
}

fn observe(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let g = gaussian();
    let reference_rows: Vec<Vec<f64>> = (0..50_000).map(|_| g.draw(&mut rng)).collect();
    let reference = synthetic_reference(&reference_rows);
    let rows: Vec<Vec<f64>> = (0..4096).map(|_| g.draw(&mut rng)).collect();
    let predicted = Predicted::Class {
        index: 1,
        confidence: 0.8,
    };
    let mut group = c.benchmark_group("drift");
    group.throughput(Throughput::Elements(1));
    let mut window = DriftWindow::new(&reference, &[0, 1]);
    let mut i = 0;
    group.bench_function("observe", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            window.observe(black_box(&rows[i]), predicted, Some(1));
        })
    });
    let mut marginal_only = reference.clone();
    marginal_only.joint = None;
    let mut window = DriftWindow::new(&marginal_only, &[0, 1]);
    group.bench_function("observe_no_joint", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            window.observe(black_box(&rows[i]), predicted, Some(1));
        })
    });
    // Without labels, as records mostly come: one in four reads the correction; a record
    // that carries its label always does (`observe_calibrated_labelled`).
    let calibrated = calibrated(&reference, &reference_rows);
    for (name, label) in [
        ("observe_calibrated", None),
        ("observe_calibrated_labelled", Some(1)),
    ] {
        let mut window = DriftWindow::new(&calibrated, &[0, 1]);
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) & 4095;
                window.observe(black_box(&rows[i]), predicted, label);
            })
        });
    }
    let model = Model::open(None).unwrap();
    let data = driftwood::model::dataset::Dataset::breast_cancer();
    // Features binned as this processor does by default, eight at a time where it can
    // (AVX-512), and one at a time.
    let bundled = DriftWindow::new(model.drift_reference(), &model.metadata.classes);
    let eight_at_a_time = bundled.clone().binning_eight_at_a_time();
    let one_at_a_time = bundled.clone().binning_one_at_a_time();
    for (name, mut window) in [
        ("observe_bundled", bundled),
        ("observe_bundled_eight_at_a_time", eight_at_a_time),
        ("observe_bundled_one_at_a_time", one_at_a_time),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % data.len();
                window.observe(black_box(&data.rows[i]), predicted, Some(1));
            })
        });
    }
    // As the drift thread counts a batch: 512 records at once, a time per record. The rows
    // in no order a branch predictor could learn (records from several partitions come
    // interleaved): 4,096 drawn at random, a batch of 512 of them in turn.
    let drawn: Vec<f64> = (0..4096)
        .flat_map(|_| data.rows[rng.random_range(0..data.len())].clone())
        .collect();
    let p = data.rows[0].len();
    let scored = vec![(predicted, Some(1)); 512];
    let batched = DriftWindow::new(model.drift_reference(), &model.metadata.classes);
    let eight_at_a_time = batched.clone().binning_eight_at_a_time();
    group.throughput(Throughput::Elements(512));
    for (name, mut window) in [
        ("observe_rows_bundled", batched),
        ("observe_rows_bundled_eight_at_a_time", eight_at_a_time),
    ] {
        let mut batch = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                batch = (batch + 1) % 8;
                window.observe_rows(black_box(&drawn[batch * 512 * p..][..512 * p]), &scored)
            })
        });
    }
    group.finish();
    close(c, &model.metadata, &reference, &rows);
}

fn close(
    c: &mut Criterion,
    metadata: &ModelMetadata,
    reference: &DriftReference,
    rows: &[Vec<f64>],
) {
    let mut metadata = metadata.clone();
    metadata.features = (0..30).map(|f| format!("x{f}")).collect();
    let settings = DriftSettings::new("bench".into());
    let mut tester = Tester::new(&metadata, reference, &settings);
    let predicted = Predicted::Class {
        index: 0,
        confidence: 0.9,
    };
    let counts =
        tester.count((0..5000).map(|i| (rows[i % rows.len()].as_slice(), predicted, None)));
    eprintln!("a window's counts at 30 features: {} bytes", counts.bytes());
    c.bench_function("drift/close_5000", |b| {
        b.iter(|| black_box(tester.report(counts.clone())))
    });
}

criterion_group!(benches, observe, encode);
criterion_main!(benches);

/// Publishing a report: the Avro encoding of a window's report (bundled model, 1,000 records).
fn encode(c: &mut Criterion) {
    let model = Model::open(None).unwrap();
    let data = driftwood::model::dataset::Dataset::breast_cancer();
    let settings = DriftSettings::new("bench".into());
    let mut tester = Tester::new(&model.metadata, model.drift_reference(), &settings);
    let predicted = model.engine.predict_all(&data.rows.concat());
    let records = (0..1000).map(|i| {
        (
            data.rows[i % data.len()].as_slice(),
            predicted[i % data.len()],
            Some(data.labels[i % data.len()]),
        )
    });
    let counts = tester.count(records);
    // Closing it, as the pipeline closes each window of the default 1,000 records.
    c.bench_function("drift/close_bundled_1000", |b| {
        b.iter(|| black_box(tester.report(counts.clone())))
    });
    let report = tester.report(counts);
    let mut bytes = Vec::new();
    c.bench_function("drift/encode_report", |b| {
        b.iter(|| {
            bytes.clear();
            black_box(&report).encode_avro(&mut bytes);
        })
    });
    eprintln!("a report of the bundled model: {} bytes", bytes.len());
}

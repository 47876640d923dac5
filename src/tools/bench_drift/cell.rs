//! One cell of the synthetic benchmark: a scenario at a window size, run through the same
//! window code as the pipeline (and, for a share of the windows, through the peers), and
//! what each tool flagged.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::peers::{Header, Peers, Run};
use super::synthetic::{FEATURES, Scenario, Target, World};
use crate::drift::{DriftReport, DriftSettings, Flag, Tester};
use crate::error::Result;
use crate::model::ModelMetadata;
use crate::model::drift_reference::DriftReference;

/// Rows of each reference.
pub const REFERENCE_ROWS: usize = 50_000;
/// Windows drawn against one reference before the next is drawn: a user has one reference,
/// and driftwood's rates are averages over references.
pub const WINDOWS_PER_REFERENCE: usize = 100;

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Cell {
    /// The scenario.
    pub scenario: Scenario,
    /// Records per window.
    pub n: usize,
    /// Windows driftwood tests.
    pub windows: usize,
    /// Seed of the cell's data.
    pub seed: u64,
    /// Windows of `n` times this many records count the features of one in this many (1:
    /// windows of `n`, every record counted).
    pub one_in: usize,
}

/// What a tool did over a cell's windows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Windows.
    pub windows: u64,
    /// Flagged `alert` (a peer: alerted).
    pub alerts: u64,
    /// Flagged `warn` or `alert`.
    pub warns: u64,
    /// Alerts that named the shifted feature, pair or the class mix.
    pub named: u64,
    /// Sequential alarms.
    pub sequential: u64,
    /// Seconds spent testing (driftwood: counting and closing windows, not drawing them).
    pub seconds: f64,
}

/// What the cell found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// driftwood.
    pub driftwood: Tally,
    /// driftwood on the windows the peers saw.
    pub driftwood_shared: Tally,
    /// Each peer tool.
    pub peers: BTreeMap<String, Tally>,
}

/// A model's metadata for the synthetic world: features x0…x29, classes 0 and 1.
pub fn metadata(features: usize, classes: Vec<i32>) -> ModelMetadata {
    let json = serde_json::json!({
        "format_version": 1, "name": "synthetic", "version": "1", "algorithm": "linear",
        "features": (0..features).map(|f| format!("x{f}")).collect::<Vec<_>>(),
        "classes": classes, "created_at": "", "model_file": "", "model_sha256": "",
        "baselines": {"features": []},
    });
    serde_json::from_value(json).expect("synthetic metadata")
}

/// A reference of [`REFERENCE_ROWS`] rows of the world, with the classifier's outputs.
pub fn reference(world: &World, rng: &mut StdRng) -> (Vec<f64>, DriftReference) {
    let flat = world.rows(REFERENCE_ROWS, rng);
    let rows: Vec<Vec<f64>> = flat.chunks(FEATURES).map(<[f64]>::to_vec).collect();
    let predictions: Vec<_> = rows.iter().map(|r| world.predict(r)).collect();
    let source = format!("{REFERENCE_ROWS} synthetic rows");
    let reference = DriftReference::from_rows(source.clone(), &rows, (source, &predictions), 2);
    (flat, reference)
}

/// Tests one window of rows (row-major) and returns the report, adding the time to `spent`.
pub fn test_window(
    world: &World,
    tester: &mut Tester,
    rows: &[f64],
    spent: &mut Duration,
) -> DriftReport {
    let started = Instant::now();
    let records = rows
        .chunks(FEATURES)
        .map(|row| (row, world.predict(row), None));
    let counts = tester.count(records);
    let report = tester.report(counts);
    *spent += started.elapsed();
    report
}

/// Whether `report` names the shift at `target` at the alert level.
pub fn named(report: &DriftReport, scenario: Scenario, target: &Target) -> bool {
    let feature = |f: usize| report.features[f].flag == Flag::Alert;
    match (scenario, target.feature, target.pair) {
        (_, Some(f), _) => feature(f),
        (_, _, Some((a, b))) => (report.pairs.iter())
            .any(|p| p.flag == Flag::Alert && p.a == format!("x{a}") && p.b == format!("x{b}")),
        (Scenario::ClassMix(_), _, _) => report.prediction_flag == Flag::Alert,
        _ => false,
    }
}

/// Runs `cell`; each group of peers sees the first windows of the cell, as many as its
/// quota, reference after reference (one start of `peers.py` per reference it sees).
pub fn run(world: &World, cell: Cell, groups: &[(Peers, usize)]) -> Result<Outcome> {
    let metadata = metadata(FEATURES, vec![0, 1]);
    let mut settings = DriftSettings::new("bench".into());
    settings.window_records = cell.n as i64;
    let mut outcome = Outcome {
        driftwood: Tally::default(),
        driftwood_shared: Tally::default(),
        peers: BTreeMap::new(),
    };
    let mut spent = Duration::ZERO;
    let blocks = cell.windows.div_ceil(WINDOWS_PER_REFERENCE);
    for block in 0..blocks {
        let mut rng = StdRng::seed_from_u64(cell.seed ^ (block as u64) << 32);
        let (reference_rows, reference) = reference(world, &mut rng);
        let mut tester = Tester::new(&metadata, &reference, &settings);
        if cell.one_in > 1 {
            tester = tester.sampling_features(cell.one_in as i64);
        }
        let first = block * WINDOWS_PER_REFERENCE;
        let windows = WINDOWS_PER_REFERENCE.min(cell.windows - first);
        // Each group's windows of this block, and its run.
        let mut runs = Vec::new();
        for (peers, quota) in groups {
            let shared = quota.saturating_sub(first).min(windows);
            if shared > 0 {
                runs.push((
                    shared,
                    start(peers, &metadata, &cell, shared, &reference_rows)?,
                ));
            }
        }
        let widest = runs.iter().map(|(shared, _)| *shared).max().unwrap_or(0);
        for w in 0..windows {
            let target = world.target(cell.scenario, &mut rng);
            let records = cell.n * cell.one_in;
            let rows = world.window(cell.scenario, &target, records, &mut rng);
            let report = test_window(world, &mut tester, &rows, &mut spent);
            let hit = named(&report, cell.scenario, &target);
            count(&mut outcome.driftwood, &report, hit);
            if w < widest {
                count(&mut outcome.driftwood_shared, &report, hit);
            }
            for (_, run) in runs.iter_mut().filter(|(shared, _)| w < *shared) {
                run.window(&rows)?;
            }
        }
        for (_, run) in runs {
            for v in run.finish()? {
                let t = outcome.peers.entry(v.tool).or_default();
                t.windows += 1;
                t.alerts += u64::from(v.alert == Some(true));
                t.seconds += v.seconds;
            }
        }
    }
    outcome.driftwood.seconds = spent.as_secs_f64();
    Ok(outcome)
}

fn start(
    peers: &Peers,
    metadata: &ModelMetadata,
    cell: &Cell,
    windows: usize,
    reference: &[f64],
) -> Result<Run> {
    let header = Header {
        features: FEATURES,
        feature_names: &metadata.features,
        reference_rows: REFERENCE_ROWS,
        window_rows: cell.n,
        windows,
        scenario: cell.scenario.name(),
    };
    peers.start(&header, reference)
}

/// Adds a report to a tally.
pub fn count(t: &mut Tally, report: &DriftReport, named: bool) {
    t.windows += 1;
    t.alerts += u64::from(report.flag == Flag::Alert);
    t.warns += u64::from(report.flag != Flag::Ok);
    t.named += u64::from(named);
    t.sequential += u64::from(!report.sequential.is_empty());
}

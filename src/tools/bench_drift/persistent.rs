//! A persistent shift too small for one window: 0.04 standard deviations in one feature
//! from the first window on. Each run draws its own reference and counts the windows until
//! the shifted feature is flagged, by a window's tests or by the sequential alarm.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::cell::{self, metadata};
use super::peers::{Header, Peers};
use super::synthetic::FEATURES;
use super::synthetic::{Scenario, World};
use super::{BenchDriftArgs, Output, Row};
use crate::drift::{DriftSettings, Flag, Tester};
use crate::error::Result;

/// The shift.
const SHIFT: f64 = 0.04;
/// A run gives up after this many windows.
const MAX_WINDOWS: usize = 40;
/// The target: flagged within this many windows, at the median.
const WITHIN: usize = 10;
/// Windows the peers see of each of their runs.
const PEER_WINDOWS: usize = 20;

/// How one run went: the window that flagged the feature (1-based), and whether it was the
/// sequential alarm.
type Detection = Option<(usize, bool)>;

/// Each peer tool's first alerting window (1-based), if any.
type FirstAlerts = Vec<(String, Option<usize>)>;

/// Runs the persistent shift at each window size.
pub fn run(
    args: &BenchDriftArgs,
    world: &World,
    peers: Option<&Peers>,
    out: &mut Output,
) -> Result<()> {
    for &n in &args.sizes {
        let scenario = Scenario::Persistent(SHIFT);
        let mut detections: Vec<Detection> = Vec::new();
        let mut peer_delays: std::collections::BTreeMap<String, Vec<Option<usize>>> =
            Default::default();
        for r in 0..args.persistent_runs {
            let seed = args.seed ^ 0x5e9 ^ ((n as u64) << 40) ^ ((r as u64) << 8);
            let share = peers.filter(|_| r < args.peer_runs);
            let (detection, peers_seen) = one_run(world, n, seed, share)?;
            detections.push(detection);
            for (tool, delay) in peers_seen {
                peer_delays.entry(tool).or_default().push(delay);
            }
        }
        let name = scenario.name();
        let caught = detections
            .iter()
            .filter(|d| d.is_some_and(|(w, _)| w <= WITHIN))
            .count() as u64;
        let mut row = Row::new(
            "persistent",
            "driftwood",
            &name,
            n,
            (caught, detections.len() as u64),
        );
        let by_sequential = detections
            .iter()
            .filter(|d| d.is_some_and(|(_, s)| s))
            .count();
        row.extra = Some(serde_json::json!({
            "within_windows": WITHIN,
            "median_windows": median(detections.iter().map(|d| d.map(|(w, _)| w))),
            "quartiles": quartiles(detections.iter().map(|d| d.map(|(w, _)| w))),
            "first_by_sequential_alarm": by_sequential,
        }));
        out.row(row)?;
        for (tool, delays) in peer_delays {
            let caught = delays
                .iter()
                .filter(|d| d.is_some_and(|w| w <= WITHIN))
                .count() as u64;
            let mut row = Row::new("persistent", &tool, &name, n, (caught, delays.len() as u64));
            row.extra = Some(serde_json::json!({
                "within_windows": WITHIN,
                "median_windows": median(delays.iter().copied()),
                "windows_seen": PEER_WINDOWS,
            }));
            out.row(row)?;
        }
    }
    Ok(())
}

/// One run: windows until the shifted feature is flagged. With `peers`, they see the first
/// [`PEER_WINDOWS`] windows; each one's first alert is returned.
fn one_run(
    world: &World,
    n: usize,
    seed: u64,
    peers: Option<&Peers>,
) -> Result<(Detection, FirstAlerts)> {
    let metadata = metadata(FEATURES, vec![0, 1]);
    let mut settings = DriftSettings::new("bench".into());
    settings.window_records = n as i64;
    let mut rng = StdRng::seed_from_u64(seed);
    let (reference_rows, reference) = cell::reference(world, &mut rng);
    let mut tester = Tester::new(&metadata, &reference, &settings);
    let scenario = Scenario::Persistent(SHIFT);
    let target = world.target(scenario, &mut rng);
    let feature = target.feature.expect("a persistent shift has a feature");
    let name = format!("x{feature}");
    let mut peer_run = match peers {
        Some(p) => {
            let header = Header {
                features: FEATURES,
                feature_names: &metadata.features,
                reference_rows: cell::REFERENCE_ROWS,
                window_rows: n,
                windows: PEER_WINDOWS,
                scenario: scenario.name(),
            };
            Some(p.start(&header, &reference_rows)?)
        }
        None => None,
    };
    let mut detection = None;
    let mut spent = std::time::Duration::ZERO;
    for w in 1..=MAX_WINDOWS.max(if peer_run.is_some() { PEER_WINDOWS } else { 0 }) {
        let rows = world.window(scenario, &target, n, &mut rng);
        if let Some(run) = peer_run.as_mut().filter(|_| w <= PEER_WINDOWS) {
            run.window(&rows)?;
        }
        if detection.is_none() && w <= MAX_WINDOWS {
            let report = cell::test_window(world, &mut tester, &rows, &mut spent);
            let by_test = report.features[feature].flag == Flag::Alert;
            let by_sequential = report.sequential.iter().any(|a| a.name == name);
            if by_test || by_sequential {
                detection = Some((w, by_sequential && !by_test));
            }
        } else if peer_run.is_none() {
            break;
        }
    }
    let mut first_alerts = Vec::new();
    if let Some(run) = peer_run {
        let mut by_tool: std::collections::BTreeMap<String, Option<usize>> = Default::default();
        for v in run.finish()? {
            let first = by_tool.entry(v.tool).or_insert(None);
            if v.alert == Some(true) && first.is_none_or(|f| v.window + 1 < f) {
                *first = Some(v.window + 1);
            }
        }
        first_alerts = by_tool.into_iter().collect();
    }
    Ok((detection, first_alerts))
}

/// The median of runs' delays, a run never caught counting as the longest.
fn median(delays: impl Iterator<Item = Option<usize>>) -> Option<usize> {
    let mut sorted: Vec<usize> = delays.map(|d| d.unwrap_or(usize::MAX)).collect();
    sorted.sort_unstable();
    sorted
        .get(sorted.len() / 2)
        .copied()
        .filter(|&m| m != usize::MAX)
}

fn quartiles(delays: impl Iterator<Item = Option<usize>>) -> [Option<usize>; 2] {
    let mut sorted: Vec<usize> = delays.map(|d| d.unwrap_or(usize::MAX)).collect();
    sorted.sort_unstable();
    let at = |q: usize| {
        sorted
            .get(sorted.len() * q / 4)
            .copied()
            .filter(|&m| m != usize::MAX)
    };
    [at(1), at(3)]
}

//! `driftwood bench-drift`: what the drift tests promise, measured. The same window code as
//! the pipeline runs in process on seeded windows:
//!
//! - **synthetic**: 30 correlated Gaussian features, references of 50,000 rows, windows of
//!   1,000, 5,000 and 20,000 records, under no shift (the false-alarm rates), mean shifts of
//!   0.05–0.5 standard deviations in one feature, a scale change, a correlation change in one
//!   pair, a class-mix change of the predictions;
//! - **persistent**: a 0.04 standard deviation shift from the first window on, and how many
//!   windows pass before it is flagged;
//! - **bundled**: the bundled model's own data set replayed, as a new user would;
//! - **real**: the time-ordered data sets in the `nannyml` wheel, window by window;
//! - **estimate** (only when asked for): performance estimated without labels, chunk by
//!   chunk of the binary `nannyml` data sets, against the realized and NannyML's CBPE.
//!
//! With `--peers-python`, the peers (`scripts/drift-peers/peers.py`) see a share of the same
//! windows. Every rate comes with its Wilson 95% interval; results go to a JSON-lines file
//! (`scripts/drift-peers/plot.py` draws the power curve from it).

mod cell;
mod estimate;
mod estimate_synthetic;
mod peers;
mod persistent;
mod real;
mod synthetic;

use std::io::Write;

use serde::Serialize;

use crate::config::tools::{BenchDriftArgs, Part};
use crate::error::{Error, Result};
use crate::stats::wilson::wilson;
pub use cell::Tally;
use peers::Peers;
use synthetic::{Scenario, World};

/// One result: a tool's rate over a cell's windows.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `synthetic`, `persistent`, `bundled` or a data set's name.
    pub part: String,
    /// `driftwood alert`, `driftwood warn`, or a peer tool.
    pub tool: String,
    /// The scenario.
    pub scenario: String,
    /// Records per window.
    pub n: usize,
    /// Windows (or runs).
    pub windows: u64,
    /// Windows flagged (or runs caught).
    pub flagged: u64,
    /// flagged / windows.
    pub rate: f64,
    /// Wilson 95% interval of the rate.
    pub low: f64,
    /// Its upper end.
    pub high: f64,
    /// A figure of the part's own (windows to detection, ns per record, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<serde_json::Value>,
}

impl Row {
    fn new(
        part: &str,
        tool: &str,
        scenario: &str,
        n: usize,
        (flagged, windows): (u64, u64),
    ) -> Self {
        let (low, high) = wilson(flagged, windows, 0.95);
        Row {
            part: part.into(),
            tool: tool.into(),
            scenario: scenario.into(),
            n,
            windows,
            flagged,
            rate: flagged as f64 / windows.max(1) as f64,
            low,
            high,
            extra: None,
        }
    }
}

/// Writes rows as they come, and prints them.
pub struct Output {
    file: std::fs::File,
}

impl Output {
    fn create(path: &std::path::Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        println!(
            "{:<12} {:<22} {:<26} {:>6} {:>6} {:>8}  {:<17}",
            "part", "tool", "scenario", "n", "windows", "rate", "Wilson 95%"
        );
        Ok(Output { file })
    }

    /// Records `row`.
    pub fn row(&mut self, row: Row) -> Result<()> {
        println!(
            "{:<12} {:<22} {:<26} {:>6} {:>7} {:>8.4}  [{:.4}, {:.4}]{}",
            row.part,
            row.tool,
            row.scenario,
            row.n,
            row.windows,
            row.rate,
            row.low,
            row.high,
            row.extra
                .as_ref()
                .map_or(String::new(), |e| format!("  {e}"))
        );
        let line = serde_json::to_string(&row).expect("a row serializes");
        writeln!(self.file, "{line}")
            .map_err(|e| Error::tool("bench-drift", format!("writing results: {e}")))
    }
}

/// Runs the parts asked for.
pub fn run(args: &BenchDriftArgs) -> Result<()> {
    let mut out = Output::create(&args.output)?;
    let peers = args.peers_python.as_ref().map(|python| Peers {
        python: python.clone(),
        script: args.peers_script.clone(),
        tools: args.peers_tools.clone(),
    });
    let world = World::default();
    if args.parts.contains(&Part::Synthetic) {
        synthetic(args, &world, peers.as_ref(), &mut out)?;
    }
    if args.parts.contains(&Part::Persistent) {
        persistent::run(args, &world, peers.as_ref(), &mut out)?;
    }
    if args.parts.contains(&Part::Bundled) {
        real::bundled(args, peers.as_ref(), &mut out)?;
    }
    if args.parts.contains(&Part::Real) {
        real::nannyml(args, peers.as_ref(), &mut out)?;
    }
    if args.parts.contains(&Part::Estimate) {
        estimate_synthetic::run(args, &mut out)?;
        estimate::run(args, &mut out)?;
    }
    println!("\nresults in {}", args.output.display());
    Ok(())
}

/// The peers split into the slow and the fast, with how many windows of a shift scenario
/// each sees.
fn peer_groups(args: &BenchDriftArgs, peers: Option<&Peers>) -> Vec<(Peers, usize)> {
    let Some(peers) = peers else {
        return Vec::new();
    };
    let slow: Vec<&str> = args.slow_peers.split(',').collect();
    let (slow_tools, fast_tools): (Vec<&str>, Vec<&str>) =
        peers.tools.split(',').partition(|t| slow.contains(t));
    [
        (fast_tools, args.fast_peer_windows),
        (slow_tools, args.peer_windows),
    ]
    .into_iter()
    .filter(|(tools, quota)| !tools.is_empty() && *quota > 0)
    .map(|(tools, quota)| {
        let group = Peers {
            tools: tools.join(","),
            ..peers.clone()
        };
        (group, quota)
    })
    .collect()
}

/// The synthetic scenarios at every window size.
fn synthetic(
    args: &BenchDriftArgs,
    world: &World,
    peers: Option<&Peers>,
    out: &mut Output,
) -> Result<()> {
    let groups = peer_groups(args, peers);
    let scenarios = [
        Scenario::Null,
        Scenario::Mean(0.05),
        Scenario::Mean(0.10),
        Scenario::Mean(0.25),
        Scenario::Mean(0.5),
        Scenario::Scale(1.1),
        Scenario::Correlation(0.1),
        Scenario::ClassMix(0.55),
    ];
    for &n in &args.sizes {
        for (k, &scenario) in scenarios.iter().enumerate() {
            let null = scenario == Scenario::Null;
            let cell = cell::Cell {
                scenario,
                n,
                windows: if null {
                    args.null_windows
                } else {
                    args.shift_windows
                },
                seed: args.seed ^ ((n as u64) << 40) ^ ((k as u64) << 20),
                one_in: args.sample_one_in.max(1),
            };
            if cell.windows == 0 {
                continue;
            }
            let times = if null { 2 } else { 1 };
            let quotas: Vec<(Peers, usize)> = (groups.iter())
                .filter(|_| cell.one_in == 1)
                .map(|(p, quota)| (p.clone(), times * quota))
                .collect();
            let outcome = cell::run(world, cell, &quotas)?;
            report(out, &cell, &outcome)?;
        }
    }
    Ok(())
}

/// The rows of a cell: driftwood's alert and warn rates, then each peer's.
fn report(out: &mut Output, cell: &cell::Cell, outcome: &cell::Outcome) -> Result<()> {
    let (name, n) = (cell.scenario.name(), cell.n);
    let d = &outcome.driftwood;
    let records = (d.windows * (n * cell.one_in) as u64).max(1) as f64;
    let mut alert = Row::new(
        "synthetic",
        "driftwood alert",
        &name,
        n,
        (d.alerts, d.windows),
    );
    alert.extra = Some(serde_json::json!({
        "sample_one_in": cell.one_in,
        "named": d.named,
        "sequential_alarms": d.sequential,
        "ns_per_record": d.seconds * 1e9 / records,
    }));
    out.row(alert)?;
    out.row(Row::new(
        "synthetic",
        "driftwood warn",
        &name,
        n,
        (d.warns, d.windows),
    ))?;
    if !outcome.peers.is_empty() {
        let shared = &outcome.driftwood_shared;
        let pair = (shared.alerts, shared.windows);
        out.row(Row::new(
            "synthetic",
            "driftwood alert, peers' windows",
            &name,
            n,
            pair,
        ))?;
        let pair = (shared.warns, shared.windows);
        out.row(Row::new(
            "synthetic",
            "driftwood warn, peers' windows",
            &name,
            n,
            pair,
        ))?;
    }
    for (tool, t) in &outcome.peers {
        let mut row = Row::new("synthetic", tool, &name, n, (t.alerts, t.windows));
        row.extra =
            Some(serde_json::json!({"seconds_per_window": t.seconds / t.windows.max(1) as f64}));
        out.row(row)?;
    }
    Ok(())
}

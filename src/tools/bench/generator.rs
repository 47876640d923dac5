//! The throughput runs on the generator's input: `--throughput-rounds` rounds of the
//! pass-through and the pipeline, each round in the reverse order of the round before (a
//! slow stretch of the machine falls on both alike), then the exactly-once pipeline with
//! 100 ms transactions and with a transaction per batch. Each run reads the whole input in a
//! group of its own.

use super::instance::RunTopics;
use super::{RunKind, Throughput, alternating, median, throughput_run};
use crate::config::tools::BenchConfig;
use crate::error::Result;

/// The runs on the generator's input.
pub(super) struct GeneratorRuns {
    /// The pass-through runs, in the order they ran.
    pub pass_through: Vec<Throughput>,
    /// The pipeline runs, in the order they ran.
    pub pipeline: Vec<Throughput>,
    pub exactly_once: Throughput,
    pub exactly_once_per_batch: Throughput,
}

/// The topics of each kind of run (a pass-through or pipeline round reads in a group of its
/// own, named after the kind's).
pub(super) struct GeneratorTopics<'a> {
    pub pass: &'a RunTopics,
    pub full: &'a RunTopics,
    pub exact: &'a RunTopics,
    pub per_batch: &'a RunTopics,
}

const EXACTLY_ONCE: &[&str] = &["--processing-guarantee", "exactly-once"];
const PER_BATCH: &[&str] = &[
    "--processing-guarantee",
    "exactly-once",
    "--transaction-interval",
    "0s",
];

/// Runs them all.
pub(super) fn generator_runs(
    config: &BenchConfig,
    brokers: &str,
    topics: GeneratorTopics<'_>,
) -> Result<GeneratorRuns> {
    let (mut pass_through, mut pipeline) = (Vec::new(), Vec::new());
    let kinds = [RunKind::PassThrough, RunKind::Pipeline];
    for (k, kind) in alternating(&kinds, config.throughput_rounds)
        .into_iter()
        .enumerate()
    {
        let round = k / kinds.len();
        let (what, base, flags, runs): (_, _, &[&str], _) = match kind {
            RunKind::PassThrough => (
                "pass-through ceiling",
                topics.pass,
                &["--pass-through"],
                &mut pass_through,
            ),
            // The pipeline: the only other kind these rounds run.
            _ => ("full pipeline", topics.full, &[], &mut pipeline),
        };
        let topics = RunTopics {
            group: format!("{}-{round}", base.group),
            ..base.clone()
        };
        eprintln!("{what}, round {}…", round + 1);
        runs.push(throughput_run(config, brokers, &topics, flags)?);
    }
    eprintln!("exactly-once pipeline…");
    let exactly_once = throughput_run(config, brokers, topics.exact, EXACTLY_ONCE)?;
    eprintln!("exactly-once pipeline, a transaction per batch…");
    let exactly_once_per_batch = throughput_run(config, brokers, topics.per_batch, PER_BATCH)?;
    Ok(GeneratorRuns {
        pass_through,
        pipeline,
        exactly_once,
        exactly_once_per_batch,
    })
}

/// The run of the median rate (of an even count, the lower of the middle two): the figures a
/// table shows for its kind.
pub(super) fn median_run(runs: &[Throughput]) -> Throughput {
    let mut sorted: Vec<&Throughput> = runs.iter().collect();
    sorted.sort_by(|a, b| a.records_per_second.total_cmp(&b.records_per_second));
    sorted[(sorted.len() - 1) / 2].clone()
}

/// The median of the runs' records per second.
pub(super) fn median_rate(runs: &[Throughput]) -> f64 {
    median(runs.iter().map(|t| t.records_per_second).collect())
}

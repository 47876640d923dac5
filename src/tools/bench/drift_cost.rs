//! What drift windows cost the pipeline: the same input scored with drift and with
//! `--no-drift`, in pairs whose order alternates (with first, then without first), each run
//! on its own output and group. A pair's difference of CPU per record is drift's cost; the
//! median over the pairs is the figure, and the spread shows how far one pair can be
//! trusted on a shared machine. (A single pair, always in one order, read 0.9 to 2.2 µs over
//! eleven bench runs on this project's 2-core box: the order and the box's noise, not drift.)

use serde::Serialize;

use super::instance::RunTopics;
use super::{BenchConfig, Throughput, create_topics, throughput_run};
use crate::error::Result;

/// One pair of runs over the same input.
#[derive(Debug, Clone, Serialize)]
pub struct DriftPair {
    /// Whether the run with drift went first.
    pub with_first: bool,
    /// The pipeline with drift windows (the default).
    pub with: Throughput,
    /// The pipeline with `--no-drift`.
    pub without: Throughput,
    /// `with − without` CPU per record, µs.
    pub cpu_us_per_record: f64,
}

/// Drift's cost over every pair.
#[derive(Debug, Clone, Serialize)]
pub struct DriftCost {
    /// The pairs, in the order they ran.
    pub pairs: Vec<DriftPair>,
    /// The median of the pairs' differences of CPU per record, µs.
    pub cpu_us_per_record: f64,
    /// The median over the runs with drift of the scoring thread's own CPU on drift
    /// windows, µs per record: what drift costs directly, without the knock-on effects on
    /// the rest of the process that the differences also count.
    pub own_cpu_us_per_record: f64,
}

/// Runs `config.drift_pairs` pairs over the throughput input (`shared.input`).
pub fn measure(
    config: &BenchConfig,
    brokers: &str,
    name: &dyn Fn(&str) -> String,
    shared: &RunTopics,
) -> Result<DriftCost> {
    let mut pairs = Vec::new();
    for k in 0..config.drift_pairs.max(1) {
        let with_first = k % 2 == 0;
        let topics = |drift: bool| RunTopics {
            output: name(&format!("out-drift{k}-{drift}")),
            group: name(&format!("g-drift{k}-{drift}")),
            ..shared.clone()
        };
        let (with_topics, without_topics) = (topics(true), topics(false));
        create_topics(
            brokers,
            &[&with_topics.output, &without_topics.output],
            config.partitions,
        )?;
        let run = |drift: bool| {
            eprintln!(
                "drift's cost, pair {} of {}: pipeline {} drift…",
                k + 1,
                config.drift_pairs.max(1),
                if drift { "with" } else { "without" }
            );
            match drift {
                true => throughput_run(config, brokers, &with_topics, &[]),
                false => throughput_run(config, brokers, &without_topics, &["--no-drift"]),
            }
        };
        let (with, without) = match with_first {
            true => {
                let with = run(true)?;
                (with, run(false)?)
            }
            false => {
                let without = run(false)?;
                (run(true)?, without)
            }
        };
        pairs.push(DriftPair {
            with_first,
            cpu_us_per_record: with.cpu_us_per_record - without.cpu_us_per_record,
            with,
            without,
        });
    }
    let differences = pairs.iter().map(|p| p.cpu_us_per_record).collect();
    let own = pairs
        .iter()
        .map(|p| p.with.drift_own_cpu_us_per_record)
        .collect();
    Ok(DriftCost {
        pairs,
        cpu_us_per_record: median(differences),
        own_cpu_us_per_record: median(own),
    })
}

/// The median of `values` (NaN when there are none).
pub(super) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[middle],
        _ => (values[middle - 1] + values[middle]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn the_median_of_odd_and_even_counts() {
        assert_eq!(median(vec![2.0, 0.5, 1.0]), 1.0);
        assert_eq!(median(vec![2.0, 0.5, 1.0, 4.0]), 1.5);
        assert!(median(Vec::new()).is_nan());
    }
}

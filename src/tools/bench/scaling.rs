//! Scaling out: 1, 2, 3… instances in one group over the same input on more partitions, each
//! count on its own group and output. The instances start together; the measurement starts
//! once every one holds partitions (what was scored before that does not count).

use serde::Serialize;

use super::instance::{Instance, RunTopics, wait_assigned};
use super::throughput::{Start, Throughput, measure};
use crate::error::Result;

/// The instances of one scaling run and what they did together.
#[derive(Debug, Clone, Serialize)]
pub struct Scaled {
    /// Instances in the group.
    pub instances: usize,
    /// Their records per second and CPU together.
    pub throughput: Throughput,
    /// Records per second over one instance's.
    pub speedup: f64,
    /// Records handled before the group settled (not measured).
    pub before_settled: u64,
}

/// What a scaling run needs.
pub(super) struct ScalingSpec<'a> {
    pub brokers: &'a str,
    pub binary: (Option<&'a std::path::Path>, Option<&'a std::path::Path>),
    pub records: u64,
    pub partitions: i32,
    pub broker: Option<u32>,
}

/// Runs each count of `counts` instances over `input` (written already).
pub(super) fn scaling_runs(
    spec: &ScalingSpec<'_>,
    counts: &[usize],
    topics: &dyn Fn(usize) -> RunTopics,
) -> Result<Vec<Scaled>> {
    let mut out: Vec<Scaled> = Vec::new();
    for &n in counts.iter().filter(|n| **n > 0) {
        eprintln!(
            "scaling: {n} instance(s) on {} partitions…",
            spec.partitions
        );
        let topics = topics(n);
        // A member learns of a rebalance at its next heartbeat (3 s by default), and the
        // first one scores alone until then.
        let flags = ["--kafka-option", "consumer.heartbeat.interval.ms=100"];
        let mut instances = (0..n)
            .map(|_| Instance::spawn(spec.brokers, spec.binary, &topics, &flags))
            .collect::<Result<Vec<_>>>()?;
        for instance in &instances {
            instance.wait_ready(std::time::Duration::from_secs(60))?;
        }
        wait_assigned(&mut instances, spec.partitions)?;
        let before_settled = (instances.iter()).map(|i| i.processed().unwrap_or(0)).sum();
        let throughput = measure(&mut instances, spec.records, spec.broker, Start::Now)?;
        drop(instances);
        let one = (out.first()).map_or(throughput.records_per_second, |s| {
            s.throughput.records_per_second / s.instances as f64
        });
        out.push(Scaled {
            instances: n,
            speedup: throughput.records_per_second / one,
            before_settled,
            throughput,
        });
    }
    Ok(out)
}

//! Scaling out: 1, 2, 3… instances in one group over the same input on more partitions, each
//! run on a group of its own. The instances start together; the measurement starts
//! once every one holds partitions (what was scored before that does not count). With a CPU
//! limit, each instance runs in a cgroup of its own with that quota, as a pod would. The
//! counts run in rounds of alternating order (1, 2, 3, then 3, 2, 1, then 1, 2, 3 by
//! default), and one instance's rate is the mean of its runs: a single run of one instance
//! under a quota read from 105k to 140k records/s on the same build (docs/performance.md).

use serde::Serialize;

use super::cgroup::Throttling;
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
    /// Records per second over one instance's: the mean over the runs of the fewest
    /// instances of their records per second per instance.
    pub speedup: f64,
    /// Records handled before the group settled (not measured).
    pub before_settled: u64,
    /// The cores each instance was limited to, if it was.
    pub cpu_limit_cores: Option<f64>,
    /// With a limit: the share of the instances' CFS periods, while measured, in which they
    /// used up their quota (near 1: the limit, not the input or the broker, held them).
    pub throttled_share: Option<f64>,
}

/// What a scaling run needs.
pub(super) struct ScalingSpec<'a> {
    pub brokers: &'a str,
    pub binary: (Option<&'a std::path::Path>, Option<&'a std::path::Path>),
    pub records: u64,
    pub partitions: i32,
    pub broker: Option<u32>,
    /// Cores each instance is limited to.
    pub cpu_limit: Option<f64>,
}

/// Runs each count of `counts` instances over `input` (written already); `topics(run)` names
/// the topics and the group of the `run`-th run (a group of its own each, so that a count
/// repeated starts from the beginning of the input again).
pub(super) fn scaling_runs(
    spec: &ScalingSpec<'_>,
    counts: &[usize],
    topics: &dyn Fn(usize) -> RunTopics,
) -> Result<Vec<Scaled>> {
    let mut measured: Vec<Measured> = Vec::new();
    for (run, &n) in counts.iter().filter(|n| **n > 0).enumerate() {
        eprintln!(
            "scaling: {n} instance(s) on {} partitions…",
            spec.partitions
        );
        let topics = topics(run);
        // A member learns of a rebalance at its next heartbeat (3 s by default), and the
        // first one scores alone until then.
        let flags = ["--kafka-option", "consumer.heartbeat.interval.ms=100"];
        let mut instances = (0..n)
            .map(|_| start(spec, &topics, &flags))
            .collect::<Result<Vec<_>>>()?;
        for instance in &instances {
            instance.wait_ready(std::time::Duration::from_secs(60))?;
        }
        wait_assigned(&mut instances, spec.partitions)?;
        let before_settled = (instances.iter()).map(|i| i.processed().unwrap_or(0)).sum();
        let throttled_before = throttling(&instances);
        let throughput = measure(&mut instances, spec.records, spec.broker, Start::Now)?;
        let throttled = throttling(&instances).since(throttled_before);
        drop(instances);
        measured.push((n, throughput, before_settled, throttled.share()));
    }
    let one = per_instance_of_fewest(&measured);
    let scaled = |(instances, throughput, before_settled, throttled_share): Measured| Scaled {
        instances,
        speedup: throughput.records_per_second / one,
        before_settled,
        throughput,
        cpu_limit_cores: spec.cpu_limit,
        throttled_share,
    };
    Ok(measured.into_iter().map(scaled).collect())
}

/// One run as measured: its instances, what they did, what they did before the group
/// settled, and their throttled share.
type Measured = (usize, Throughput, u64, Option<f64>);

/// One instance's records per second: the mean over the runs of the fewest instances (a
/// count run more than once weighs each run alike).
fn per_instance_of_fewest(runs: &[Measured]) -> f64 {
    let fewest = runs.iter().map(|r| r.0).min().unwrap_or(1);
    let rates: Vec<f64> = (runs.iter().filter(|r| r.0 == fewest))
        .map(|(n, throughput, ..)| throughput.records_per_second / *n as f64)
        .collect();
    rates.iter().sum::<f64>() / rates.len() as f64
}

/// One instance of the group, under the CPU limit if there is one.
fn start(spec: &ScalingSpec<'_>, topics: &RunTopics, flags: &[&str]) -> Result<Instance> {
    let mut instance = Instance::spawn(spec.brokers, spec.binary, topics, flags)?;
    if let Some(cores) = spec.cpu_limit {
        instance.limit_cpu(cores)?;
    }
    Ok(instance)
}

/// The instances' throttling counts together (zeros without limits).
fn throttling(instances: &[Instance]) -> Throttling {
    (instances.iter().filter_map(Instance::throttling)).fold(Throttling::default(), Throttling::add)
}

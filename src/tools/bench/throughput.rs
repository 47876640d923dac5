//! One throughput measurement: one or more `driftwood run` instances over an input written
//! before they start, from a starting moment until every record is handled, with their CPU
//! time and (for a broker on this machine) the broker's beside it.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::instance::{Counters, Instance};
use super::proc::{self, MachineTicks, ThreadCpu};
use crate::error::{Error, Result};

/// One throughput measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Records handled.
    pub records: u64,
    /// Seconds from the start of the measurement to the last record.
    pub seconds: f64,
    /// Records per second.
    pub records_per_second: f64,
    /// CPU time (user + system) of the `driftwood run` processes per record over the same
    /// span, µs: the cost a platform team budgets by.
    pub cpu_us_per_record: f64,
    /// Of that, what the scoring threads spent on drift windows (their own CPU clock, read
    /// around their work), µs per record.
    pub drift_own_cpu_us_per_record: f64,
    /// The CPU time per record by thread (µs): where the cost above is spent.
    pub threads: ThreadShares,
    /// Peak resident memory of the largest `driftwood run` process, bytes.
    pub peak_rss_bytes: u64,
    /// Cores the `driftwood run` processes used on average (CPU time over wall time).
    pub driftwood_cores: f64,
    /// Cores the broker process used meanwhile, when it runs on this machine.
    pub broker_cores: Option<f64>,
    /// The share of the loop's time it waited on input or on acknowledgements rather than
    /// working (`driftwood_loop_seconds_total`), over the instances; none from a build
    /// without that metric.
    pub loop_waiting: Option<f64>,
    /// The share of the time the loops were ready to run but waited for a core (the
    /// kernel's `schedstat`), over the instances: high where driftwood, its librdkafka
    /// threads and the broker want more cores than the machine has; none where the kernel
    /// does not say.
    pub loop_queued: Option<f64>,
    /// The share of the machine's time stolen by its host meanwhile; none where
    /// `/proc/stat` cannot be read. A run with much of it says more about the host.
    pub steal_share: Option<f64>,
}

/// CPU time per record (µs) of the `driftwood run` processes' threads, by what they do.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ThreadShares {
    /// The consumer loop: poll, decode, score, encode, send, serve acknowledgements.
    pub loop_thread: f64,
    /// The drift windows' threads: counting records, closing windows.
    pub drift: f64,
    /// librdkafka's threads: fetching and parsing input, compressing and sending output.
    pub librdkafka: f64,
    /// The rest (HTTP sidecar, start-up work).
    pub other: f64,
}

/// Where a measurement starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// At the first record handled (one instance: nothing to wait for).
    FirstRecord,
    /// Now (the group has formed); what was handled before does not count.
    Now,
}

/// Counters of the instances and the broker at one moment.
struct Sample {
    at: Instant,
    done: u64,
    cpu: Duration,
    threads: ThreadCpu,
    drift: Duration,
    /// Seconds of the loops' time spent waiting, and in all.
    looped: (f64, f64),
    broker: Option<Duration>,
    machine: Option<MachineTicks>,
}

fn sample(instances: &[Instance], broker: Option<u32>) -> Sample {
    let counters: Vec<Counters> = (instances.iter())
        .map(|i| i.counters().unwrap_or_default())
        .collect();
    Sample {
        at: Instant::now(),
        done: counters.iter().map(|c| c.processed).sum(),
        cpu: instances.iter().map(Instance::cpu_time).sum(),
        threads: (instances.iter().map(Instance::thread_cpu))
            .fold(ThreadCpu::default(), ThreadCpu::add),
        drift: counters.iter().map(|c| c.drift_cpu).sum(),
        looped: (
            counters.iter().map(|c| c.loop_waiting).sum(),
            counters.iter().map(|c| c.loop_total).sum(),
        ),
        broker: broker.and_then(proc::cpu_time),
        machine: MachineTicks::now(),
    }
}

/// Measures `instances` from `start` until they have handled `total` records between them.
pub(super) fn measure(
    instances: &mut [Instance],
    total: u64,
    broker: Option<u32>,
    start: Start,
) -> Result<Throughput> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first = (start == Start::Now).then(|| sample(instances, broker));
    loop {
        let now = sample(instances, broker);
        if first.is_none() && now.done > 0 {
            first = Some(now);
            continue;
        }
        if let Some(first) = &first
            && now.done >= total
        {
            return Ok(figures(first, &now, total, instances));
        }
        for instance in instances.iter_mut() {
            instance.check_running()?;
        }
        if now.at > deadline {
            let done = now.done;
            return Err(Error::tool(
                "bench",
                format!("only {done} of {total} records in 10 minutes"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn figures(first: &Sample, last: &Sample, total: u64, instances: &[Instance]) -> Throughput {
    let seconds = last.at.duration_since(first.at).as_secs_f64().max(1e-3);
    let records = total.saturating_sub(first.done).max(1) as f64;
    let per_record = |d: Duration| d.as_secs_f64() * 1e6 / records;
    let cpu = last.cpu.saturating_sub(first.cpu);
    let broker = first
        .broker
        .zip(last.broker)
        .map(|(a, b)| b.saturating_sub(a));
    Throughput {
        records: total,
        seconds,
        records_per_second: records / seconds,
        cpu_us_per_record: per_record(cpu),
        drift_own_cpu_us_per_record: per_record(last.drift.saturating_sub(first.drift)),
        threads: {
            let t = last.threads.since(first.threads);
            ThreadShares {
                loop_thread: per_record(t.loop_thread),
                drift: per_record(t.drift),
                librdkafka: per_record(t.librdkafka),
                other: per_record(t.other),
            }
        },
        peak_rss_bytes: instances.iter().map(Instance::peak_rss).max().unwrap_or(0),
        driftwood_cores: cpu.as_secs_f64() / seconds,
        broker_cores: broker.map(|b| b.as_secs_f64() / seconds),
        loop_waiting: {
            let looped = last.looped.1 - first.looped.1;
            (looped > 0.0).then(|| (last.looped.0 - first.looped.0) / looped)
        },
        loop_queued: (last.threads.since(first.threads).loop_queued)
            .map(|queued| queued.as_secs_f64() / (seconds * instances.len().max(1) as f64)),
        steal_share: (last.machine.zip(first.machine)).and_then(|(l, f)| l.steal_since(f)),
    }
}

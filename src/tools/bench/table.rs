//! The human-readable summary of a bench run (the JSON holds the same figures).

use super::{BenchReport, Latency, Relay, RunKind, STOCK_KINDS, Throughput, alternating, median};

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A share as a whole percentage, or "-" where it is not known.
fn percent(share: Option<f64>) -> String {
    share.map_or("-".into(), |s| format!("{:.0}%", s * 100.0))
}

/// Prints the report to stdout.
pub(super) fn print(r: &BenchReport) {
    println!();
    println!(
        "driftwood bench: {} records, {} partitions ({})",
        r.records, r.partitions, r.machine
    );
    println!(
        "{:<28} {:>12} {:>15} {:>10} {:>7} {:>7} {:>9} {:>11} {:>7}   µs/record by thread: loop + drift + librdkafka + other",
        "throughput",
        "records/s",
        "CPU µs/record",
        "peak RSS",
        "cores",
        "broker",
        "loop idle",
        "loop queued",
        "stolen",
    );
    println!(
        "{:<28} {:>12.0}",
        "produce input (generator)", r.produce_records_per_second
    );
    let runs = [
        ("pass-through ceiling", Some(&r.pass_through)),
        ("full pipeline", Some(&r.pipeline)),
        ("exactly-once, 100 ms txns", Some(&r.exactly_once)),
        (
            "exactly-once, txn per batch",
            Some(&r.exactly_once_per_batch),
        ),
        ("pipeline following pointer", r.following_pointer.as_ref()),
    ];
    for (name, t) in runs.into_iter().filter_map(|(n, t)| Some((n, t?))) {
        print_run(name, t);
    }
    println!(
        "{:<28} {:>12.2}",
        "pipeline / ceiling (medians)", r.pipeline_to_ceiling
    );
    print_rounds(r);
    println!(
        "{:<28} {:>12.2}",
        "exactly-once / pipeline", r.exactly_once_to_pipeline
    );
    print_drift(r);
    if let Some(ratio) = r.following_pointer_to_pipeline {
        println!("{:<28} {:>12.2}", "following pointer / pipeline", ratio);
    }
    print_stock(r);
    print_scaling(r);
    if !r.latency.is_empty() {
        print_latency(r);
    }
}

/// Each round's pass-through and pipeline rates (the rows above are their median runs).
fn print_rounds(r: &BenchReport) {
    let rates = |runs: &[Throughput]| {
        let rates: Vec<String> = (runs.iter())
            .map(|t| format!("{:.0}", t.records_per_second))
            .collect();
        rates.join(", ")
    };
    println!(
        "{:<28} pass-through {}; pipeline {} (the rows above: each kind's median)",
        format!("{} rounds, records/s", r.pass_through_rounds.len()),
        rates(&r.pass_through_rounds),
        rates(&r.pipeline_rounds),
    );
}

/// The pairs of runs with and without drift windows, and drift's cost.
fn print_drift(r: &BenchReport) {
    // Each pair's runs in the order they ran.
    for (k, pair) in r.drift.pairs.iter().enumerate() {
        let mut runs = [("with", &pair.with), ("without", &pair.without)];
        if !pair.with_first {
            runs.reverse();
        }
        for (what, t) in runs {
            println!(
                "{:<28} {:>12.0} {:>15.2}",
                format!("drift pair {}: {what}", k + 1),
                t.records_per_second,
                t.cpu_us_per_record,
            );
        }
    }
    let each = |figure: fn(&super::DriftPair) -> f64| {
        let figures: Vec<String> = (r.drift.pairs.iter())
            .map(|p| format!("{:.2}", figure(p)))
            .collect();
        figures.join(", ")
    };
    println!(
        "{:<28} {:>28.2}  (median of the pairs: {})",
        "drift's CPU µs/record",
        r.drift.cpu_us_per_record,
        each(|p| p.cpu_us_per_record)
    );
    println!(
        "{:<28} {:>28.2}  (median of the runs with drift: {})",
        "drift windows' own µs/record",
        r.drift.own_cpu_us_per_record,
        each(|p| p.with.drift_own_cpu_us_per_record)
    );
}

/// One throughput row.
fn print_run(name: &str, t: &Throughput) {
    let th = &t.threads;
    println!(
        "{name:<28} {:>12.0} {:>15.2} {:>7.1} MB {:>7.2} {:>7} {:>9} {:>11} {:>7}   {:.2} + {:.2} + {:.2} + {:.2}",
        t.records_per_second,
        t.cpu_us_per_record,
        mb(t.peak_rss_bytes),
        t.driftwood_cores,
        t.broker_cores.map_or("-".into(), |c| format!("{c:.2}")),
        percent(t.loop_waiting),
        percent(t.loop_queued),
        percent(t.steal_share),
        th.loop_thread,
        th.drift,
        th.librdkafka,
        th.other,
    );
}

/// The runs on stock-client input, in the order they ran.
fn print_stock(r: &BenchReport) {
    let s = &r.stock_input;
    println!();
    println!(
        "stock-client input ({} producers with librdkafka's defaults at {:.0} records/s: {:.0} achieved)",
        s.producers, s.offered_rate, s.produce_records_per_second
    );
    let mut pass = s.pass_through.iter();
    let mut pipe = s.pipeline.iter();
    let mut bare = s.pipeline_without_drift.iter();
    for (k, kind) in alternating(&STOCK_KINDS, s.rounds).into_iter().enumerate() {
        let (run, name) = match kind {
            RunKind::PassThrough => (pass.next(), "pass-through"),
            RunKind::Pipeline => (pipe.next(), "pipeline"),
            RunKind::WithoutDrift => (bare.next(), "pipeline, no drift"),
        };
        if let Some(t) = run {
            print_run(&format!("{}. {name}", k + 1), t);
        }
    }
    println!(
        "{:<28} {:>12.2}",
        "pipeline / ceiling (medians)", s.pipeline_to_ceiling
    );
    println!(
        "{:<28} {:>12.2}",
        "no drift / ceiling (medians)", s.without_drift_to_ceiling
    );
}

/// The scaling runs.
fn print_scaling(r: &BenchReport) {
    if r.scaling.is_empty() {
        return;
    }
    println!();
    println!(
        "scaling out: instances in one group on {} partitions, stock-client input",
        r.scaling_partitions
    );
    if let Some(cores) = r.scaling.first().and_then(|s| s.cpu_limit_cores) {
        println!("each instance limited to {cores} cores (a cgroup's CPU quota, as a pod's limit)");
    }
    for s in &r.scaling {
        print_run(&format!("{} instance(s)", s.instances), &s.throughput);
        println!(
            "{:<28} {:>12.2}  ({} records before the group settled, not measured)",
            "  × one instance", s.speedup, s.before_settled
        );
        if let Some(share) = s.throttled_share {
            println!("{:<28} {:>12.2}", "  periods throttled", share);
        }
    }
    let by_count = grouped(&r.scaling, |s| s.instances);
    if by_count.iter().any(|(_, runs)| runs.len() > 1) {
        println!("× one instance (the mean of its runs), median and range over the runs:");
        for (n, runs) in by_count {
            let (middle, low, high) = median_and_range(runs.iter().map(|s| s.speedup).collect());
            let label = format!("  {n} instance(s)");
            println!("{label:<28} {middle:>12.2}  ({low:.2} to {high:.2})");
        }
    }
}

/// `items` grouped by `key`, the groups in the order their keys first come.
fn grouped<T, K: PartialEq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<(K, Vec<&T>)> {
    let mut groups: Vec<(K, Vec<&T>)> = Vec::new();
    for item in items {
        let k = key(item);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(item),
            None => groups.push((k, vec![item])),
        }
    }
    groups
}

/// The median of `values`, their lowest and their highest.
fn median_and_range(values: Vec<f64>) -> (f64, f64, f64) {
    let (low, high) = (values.iter()).fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    (median(values), low, high)
}

/// The latency runs, and driftwood's share of each rate's latency.
fn print_latency(r: &BenchReport) {
    println!();
    println!(
        "latency, event time -> output read, ms (after a {:.0} s warm-up)",
        r.latency_warmup_seconds
    );
    println!(
        "{:>9} {:<13} {:>10} {:>8} {:>6} {:>6} {:>6} {:>6} {:>12} {:>8} {:>7}",
        "offered/s",
        "relay",
        "achieved/s",
        "samples",
        "p50",
        "p99",
        "p99.9",
        "max",
        "CPU µs/rec",
        "RSS MB",
        "stolen"
    );
    for l in &r.latency {
        println!(
            "{:>9.0} {:<13} {:>10.0} {:>8} {:>6.0} {:>6.0} {:>6.0} {:>6.0} {:>12} {:>8} {:>7}",
            l.offered_rate,
            format!("{} #{}", relay_name(l.relay), l.round + 1),
            l.achieved_rate,
            l.samples,
            l.p50_ms,
            l.p99_ms,
            l.p999_ms,
            l.max_ms,
            l.cpu_us_per_record
                .map_or("-".into(), |c| format!("{c:.1}")),
            l.peak_rss_bytes
                .map_or("-".into(), |b| format!("{:.1}", mb(b))),
            percent(l.steal_share),
        );
    }
    print_spread(r);
    for pipeline in r.latency.iter().filter(|l| l.relay == Relay::Pipeline) {
        let relay = r.latency.iter().find(|l| {
            l.relay == Relay::PassThrough
                && l.offered_rate == pipeline.offered_rate
                && l.round == pipeline.round
        });
        if let (Some(relay), Some((leg50, leg99))) = (relay, pipeline.input_leg_ms) {
            println!(
                "at {:.0}/s, round {}: driftwood's share (pipeline - relay): p50 {:+.0} ms, p99 {:+.0} ms; event -> scored p50 {leg50:.0}, p99 {leg99:.0} ms; stolen {} and {}",
                pipeline.offered_rate,
                pipeline.round + 1,
                pipeline.p50_ms - relay.p50_ms,
                pipeline.p99_ms - relay.p99_ms,
                percent(pipeline.steal_share),
                percent(relay.steal_share),
            );
        }
    }
}

/// Per rate and relay, over the rounds: the median p50 and p99 and their range.
fn print_spread(r: &BenchReport) {
    let rounds = r.latency.iter().map(|l| l.round).max().map_or(0, |m| m + 1);
    if rounds < 2 {
        return;
    }
    println!("over the {rounds} rounds: median (min–max), ms");
    for ((rate, relay), runs) in grouped(&r.latency, |l| (l.offered_rate, l.relay)) {
        let spread = |f: fn(&Latency) -> f64| {
            let (middle, lo, hi) = median_and_range(runs.iter().map(|l| f(l)).collect());
            format!("{middle:.1} ({lo:.0}–{hi:.0})")
        };
        println!(
            "{rate:>9.0} {:<13} p50 {:<16} p99 {}",
            relay_name(relay),
            spread(|l| l.p50_ms),
            spread(|l| l.p99_ms)
        );
    }
}

fn relay_name(relay: Relay) -> &'static str {
    match relay {
        Relay::Pipeline => "pipeline",
        Relay::PipelineExactlyOnce => "exactly-once",
        Relay::PassThrough => "relay",
        Relay::BrokerAlone => "broker alone",
    }
}

//! `driftwood bench` end to end on Apache Kafka, on 50,000 records so that it takes about a
//! minute (the report's shape is checked here, not its figures): the throughput runs report
//! their records per second and CPU split by thread, the generator's in rounds whose medians
//! make the ratio, the scaling runs (a count repeated, under a CPU limit) each read the whole
//! input, and the topics the bench wrote are deleted when it ends. The CPU limit needs root
//! or a delegated cgroup.

use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::Value;

use crate::common::bootstrap;

/// Topic names on the broker now.
fn topic_names(bootstrap: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .collect()
}

#[test]
fn the_bench_reports_cpu_by_thread_and_deletes_its_topics() {
    let bootstrap = bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_driftwood"))
        .args(["bench", "--bootstrap-servers", bootstrap])
        .args([
            // Enough that every run's librdkafka threads spend a few clock ticks (10 ms):
            // with 20,000 records they spent under one in a run on a fast machine.
            "--records",
            "50000",
            "--partitions",
            "1",
            "--drift-pairs",
            "1",
        ])
        .args(["--latency-rates", "0", "--scaling-instances", "1,1"])
        .args(["--scaling-partitions", "2", "--scaling-cpu-limit", "0.5"])
        .args([
            "--stock-rate",
            "200000",
            "--stock-rounds",
            "2",
            "--throughput-rounds",
            "3",
            "--log",
            "warn",
        ])
        .arg("--registry")
        .arg(dir.path().join("no-registry"))
        .arg("--json")
        .arg(&json)
        .output()
        .expect("driftwood bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stderr}");

    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let stock = &report["stock_input"];
    let runs = [
        ("pipeline", &report["pipeline"]),
        ("pass-through", &report["pass_through"]),
        ("stock pipeline", &stock["pipeline"][1]),
        ("stock pass-through", &stock["pass_through"][1]),
        ("stock without drift", &stock["pipeline_without_drift"][1]),
    ];
    // CPU time is read in clock ticks (10 ms), charged to whichever thread runs at each
    // tick: a run of 50,000 records takes a fifth of a second on a warm broker, where a
    // thread category of a few ticks may read 0 in one run. So the split is checked over the
    // runs together: it exists, and accounts for most of the whole.
    let (mut loop_thread, mut librdkafka, mut threads, mut total) = (0.0, 0.0, 0.0, 0.0);
    for (name, run) in runs {
        let figure = |path: &[&str]| {
            let value = path.iter().fold(run, |v, key| &v[key]);
            value
                .as_f64()
                .unwrap_or_else(|| panic!("{name}: no {path:?} in {run}"))
        };
        assert!(figure(&["records_per_second"]) > 0.0, "{name}: {run}");
        let stolen = figure(&["steal_share"]);
        assert!((0.0..=1.0).contains(&stolen), "{name}: {run}");
        // The loop's wait for a core is a share of the run's time (a little over 1 can
        // only come of reading the clock and the kernel's counters at different moments).
        let queued = figure(&["loop_queued"]);
        assert!((0.0..=1.05).contains(&queued), "{name}: {run}");
        loop_thread += figure(&["threads", "loop_thread"]);
        librdkafka += figure(&["threads", "librdkafka"]);
        threads += ["loop_thread", "drift", "librdkafka", "other"]
            .iter()
            .map(|t| figure(&["threads", t]))
            .sum::<f64>();
        total += figure(&["cpu_us_per_record"]);
    }
    assert!(loop_thread > 0.0 && librdkafka > 0.0, "{runs:?}");
    assert!(
        (threads - total).abs() <= 0.25 * total,
        "threads {threads} against {total} µs a record, over the runs"
    );
    for kind in ["pass_through", "pipeline", "pipeline_without_drift"] {
        let runs = stock[kind].as_array().map(Vec::len);
        assert_eq!(runs, Some(2), "two rounds: two {kind} runs");
    }
    // The generator's runs: three rounds of each kind, the shown run the one of the median
    // rate, and the ratio the medians'.
    let rates = |kind: &str| -> Vec<f64> {
        let runs = report[kind].as_array().expect("the rounds' runs");
        runs.iter()
            .map(|r| r["records_per_second"].as_f64().unwrap())
            .collect()
    };
    let (mut pass, mut pipeline) = (rates("pass_through_rounds"), rates("pipeline_rounds"));
    assert_eq!((pass.len(), pipeline.len()), (3, 3), "three rounds of each");
    pass.sort_by(f64::total_cmp);
    pipeline.sort_by(f64::total_cmp);
    assert_eq!(
        report["pass_through"]["records_per_second"].as_f64(),
        Some(pass[1])
    );
    assert_eq!(
        report["pipeline"]["records_per_second"].as_f64(),
        Some(pipeline[1])
    );
    let ratio = report["pipeline_to_ceiling"].as_f64().unwrap();
    assert!((ratio - pipeline[1] / pass[1]).abs() < 1e-9, "{ratio}");
    for run in [&report["pipeline"], &stock["pipeline"][0]] {
        assert!(run["threads"]["drift"].as_f64() > Some(0.0), "{run}");
    }
    assert_eq!(
        stock["pipeline_without_drift"][0]["threads"]["drift"].as_f64(),
        Some(0.0),
        "no drift thread with --no-drift"
    );
    assert_eq!(
        report["pass_through"]["threads"]["drift"].as_f64(),
        Some(0.0),
        "no drift thread in pass-through"
    );

    let scaling = report["scaling"].as_array().expect("scaling runs");
    assert_eq!(scaling.len(), 2, "{scaling:?}");
    // One instance's rate is the mean of its runs: the two runs' speedups average 1.
    let speedups: f64 = scaling.iter().filter_map(|r| r["speedup"].as_f64()).sum();
    assert!((speedups - 2.0).abs() < 1e-9, "{scaling:?}");
    for run in scaling {
        assert_eq!(run["instances"].as_u64(), Some(1), "{run}");
        assert_eq!(run["cpu_limit_cores"].as_f64(), Some(0.5), "{run}");
        let throttled = run["throttled_share"].as_f64().expect("a throttled share");
        assert!((0.0..=1.0).contains(&throttled), "{run}");
        assert_eq!(
            run["throughput"]["records"].as_u64(),
            Some(150_000),
            "{run}"
        );
        assert!(
            run["throughput"]["records_per_second"].as_f64() > Some(0.0),
            "{run}"
        );
    }

    let said = stderr
        .lines()
        .find_map(|l| l.strip_prefix("deleted the "))
        .unwrap_or_else(|| panic!("the bench says what it deleted:\n{stderr}"));
    let (count, rest) = said.split_once(' ').unwrap();
    let prefix = rest
        .split_once('(')
        .and_then(|(_, p)| p.strip_suffix("*)"))
        .unwrap();
    assert!(count.parse::<usize>().unwrap() >= 10, "{said}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let left = loop {
        let left: Vec<String> = (topic_names(bootstrap).into_iter())
            .filter(|t| t.starts_with(prefix))
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(left.is_empty(), "topics left behind: {left:?}");
}

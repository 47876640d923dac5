//! The alert rules (`monitoring/prometheus/alerts.yml`) and the Grafana dashboard
//! (`monitoring/grafana/driftwood.json`) query what driftwood serves: a running instance's
//! `/metrics` has every metric they name, with every label they group or match by.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::common::process::Member;
use crate::common::*;

/// Labels Prometheus adds when it scrapes (`job`, `instance`), or a histogram's buckets
/// carry (`le`): not driftwood's to serve.
const ADDED_BY_PROMETHEUS: [&str; 3] = ["job", "instance", "le"];

/// Every PromQL expression of the rule file and the dashboard, with where it comes from.
fn expressions() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring");
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root.join("prometheus/alerts.yml")).unwrap(),
    )
    .unwrap();
    let mut found = Vec::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().unwrap();
            found.push((
                format!("alert {name}"),
                rule["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("grafana/driftwood.json")).unwrap(),
    )
    .unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let title = panel["title"].as_str().unwrap();
            found.push((
                format!("panel {title:?}"),
                target["expr"].as_str().unwrap().into(),
            ));
        }
    }
    found
}

/// The metric names an expression reads (driftwood's and the process collector's).
fn metric_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("driftwood_") || t.starts_with("process_"))
        .map(str::to_string)
        .collect()
}

/// The label names an expression groups by (`by (…)`, `without (…)`) or matches on
/// (`{name="…"}`).
fn label_names(expr: &str) -> BTreeSet<String> {
    let mut labels = BTreeSet::new();
    for keyword in ["by (", "without ("] {
        for (at, _) in expr.match_indices(keyword) {
            let rest = &expr[at + keyword.len()..];
            let list = &rest[..rest.find(')').unwrap()];
            labels.extend(list.split(',').map(|l| l.trim().to_string()));
        }
    }
    for (at, _) in expr.match_indices('{') {
        let rest = &expr[at + 1..];
        let inside = &rest[..rest.find('}').unwrap()];
        for matcher in inside.split(',') {
            let name = matcher.split(['=', '!']).next().unwrap().trim();
            labels.insert(name.to_string());
        }
    }
    labels.retain(|l| !l.is_empty() && !ADDED_BY_PROMETHEUS.contains(&l.as_str()));
    labels
}

/// Each sample's metric name in `exposition` and the label names its series carry.
fn served(exposition: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut served: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name_end = line.find(['{', ' ']).unwrap();
        let labels = served.entry(line[..name_end].to_string()).or_default();
        if let Some(inside) = line
            .strip_prefix(&line[..name_end])
            .and_then(|l| l.strip_prefix('{'))
        {
            let inside = &inside[..inside.find('}').unwrap()];
            labels.extend(
                inside
                    .split(',')
                    .filter_map(|kv| Some(kv.split_once('=')?.0.to_string())),
            );
        }
    }
    served
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_and_label_the_alerts_and_the_dashboard_query_is_served() {
    let bootstrap = bootstrap();
    let config = prepared_topics(bootstrap, 2_000, 20, |_| {}).await;
    let (labels, performance) = labels::labels_topics(bootstrap).await;
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("monitoring.log"));
    let flags = labels::small_window_flags(&labels, &performance);
    let mut member = Member::start(&config, &flags, &log);
    member.wait_scored(1_980.0, Duration::from_secs(60));
    // Realized performance comes with the first window of labels.
    let predictions = read_topic(
        bootstrap,
        &config.output_topic,
        300,
        Duration::from_secs(30),
    );
    framed::send(bootstrap, &labels, &labels::ground_truths(&predictions));
    // Lag comes with librdkafka's statistics, drift gauges with the first closed window.
    let mut exposition = String::new();
    let wanted = [
        "driftwood_consumer_lag{",
        "driftwood_drift_flagged_pairs{",
        "driftwood_realized_performance{",
    ];
    wait_until(
        "lag, drift and realized gauges",
        Duration::from_secs(30),
        || {
            let (_, body) = driftwood::http::sidecar::probe(member.addr, "/metrics").unwrap();
            exposition = body;
            wanted.iter().all(|m| exposition.contains(m))
        },
    )
    .await;
    let served = served(&exposition);

    let mut problems = Vec::new();
    let queries = expressions();
    assert!(
        queries.len() >= 30,
        "14 alerts and 14 panels: {}",
        queries.len()
    );
    for (source, expr) in &queries {
        let metrics = metric_names(expr);
        assert!(!metrics.is_empty(), "{source} reads no metric: {expr}");
        let mut labels_served = BTreeSet::new();
        for metric in &metrics {
            match served.get(metric) {
                Some(labels) => labels_served.extend(labels.iter().cloned()),
                None => problems.push(format!("{source}: {metric} is not served")),
            }
        }
        for label in label_names(expr) {
            if !labels_served.contains(&label) {
                problems.push(format!(
                    "{source}: no series of {metrics:?} has label {label}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        member.terminate(Duration::from_secs(30)),
        "logs in {}",
        log.display()
    );
}

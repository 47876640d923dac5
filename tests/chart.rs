//! The Helm chart (charts/driftwood) against the kustomize overlays (k8s/overlays) and the
//! code. Each overlay has a twin value file in charts/driftwood/ci/; rendered by Helm and by
//! kustomize, the two must give the same objects, field for field, except for what only one
//! of them can say (listed in `only_helm_says`). So a knob changed in one and not the other
//! fails here.
//!
//! Needs Helm (`HELM`, from scripts/helm.sh) and kubectl with kustomize (`KUBECTL`, from the
//! venv of tests/k8s/requirements.txt); scripts/test.sh sets both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tool a variable names, or a failure saying how to get it.
fn tool(variable: &str, how: &str) -> String {
    std::env::var(variable)
        .unwrap_or_else(|_| panic!("{variable} is not set: {how} (scripts/test.sh sets it)"))
}

fn helm() -> String {
    tool("HELM", "HELM=$(scripts/helm.sh) builds Helm v4 once")
}

fn kubectl() -> String {
    tool(
        "KUBECTL",
        "KUBECTL=$(dirname $(scripts/py-env.sh tests/k8s/requirements.txt))/kubectl",
    )
}

/// Runs a command from the repository root: its stdout, or its stderr as the error.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{program} {args:?}: {stderr}"))
    }
}

/// The objects of a multi-document YAML stream, by kind and name.
fn objects(stream: &str) -> BTreeMap<(String, String), Value> {
    let mut found = BTreeMap::new();
    for document in serde_yaml_ng::Deserializer::from_str(stream) {
        let object = Value::deserialize(document).unwrap();
        if object.is_null() {
            continue;
        }
        let kind = object["kind"].as_str().unwrap().to_string();
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        found.insert((kind, name), object);
    }
    found
}

fn helm_template(values: &str, namespace: &str) -> BTreeMap<(String, String), Value> {
    let args = [
        "template",
        "driftwood",
        "charts/driftwood",
        "--namespace",
        namespace,
        "-f",
        values,
    ];
    objects(&run(&helm(), &args).unwrap())
}

fn kustomize(overlay: &str) -> BTreeMap<(String, String), Value> {
    objects(&run(&kubectl(), &["kustomize", overlay]).unwrap())
}

/// Labels and annotations only the chart writes: the release's (Helm's conventions, so that
/// two releases can share a namespace) and the checksum that rolls the pods when a setting
/// changes (kustomize's generated ConfigMap names do that instead).
const ONLY_HELM: [&str; 5] = [
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
    "checksum/config",
];

/// Removes what only the chart says: the release's labels and the checksum, anywhere (in
/// metadata, pod templates and selectors).
fn only_helm_says(value: &mut Value) {
    match value {
        Value::Mapping(map) => {
            for key in ONLY_HELM {
                map.remove(key);
            }
            for (_, v) in map.iter_mut() {
                only_helm_says(v);
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(only_helm_says),
        _ => {}
    }
}

/// The first path at which two values differ, for a readable failure.
fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Mapping(x), Value::Mapping(y)) => {
            let keys: BTreeSet<String> = x.keys().chain(y.keys()).map(key_text).collect();
            keys.into_iter().find_map(|k| {
                let (va, vb) = (get(x, &k), get(y, &k));
                first_difference(&format!("{path}.{k}"), &va, &vb)
            })
        }
        (Value::Sequence(x), Value::Sequence(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (va, vb))| first_difference(&format!("{path}[{i}]"), va, vb)),
        _ if a == b => None,
        _ => Some(format!("{path}: kustomize {a:?}, chart {b:?}")),
    }
}

fn key_text(key: &Value) -> String {
    key.as_str()
        .map_or_else(|| format!("{key:?}"), str::to_string)
}

fn get(map: &Mapping, key: &str) -> Value {
    map.get(key).cloned().unwrap_or(Value::Null)
}

#[test]
fn the_chart_renders_the_overlays_objects() {
    for (overlay, values, namespace) in [
        (
            "k8s/overlays/dev",
            "charts/driftwood/ci/dev-values.yaml",
            "driftwood-dev",
        ),
        (
            "k8s/overlays/prod",
            "charts/driftwood/ci/prod-values.yaml",
            "driftwood",
        ),
    ] {
        let mut ours = kustomize(overlay);
        let mut chart = helm_template(values, namespace);
        // Helm creates the namespace (--create-namespace); kustomize lists it.
        assert!(
            ours.remove(&("Namespace".into(), namespace.into()))
                .is_some()
        );
        let kinds = |objects: &BTreeMap<(String, String), Value>| -> Vec<(String, String)> {
            objects.keys().cloned().collect()
        };
        assert_eq!(
            kinds(&ours),
            kinds(&chart),
            "{overlay} and {values}: objects"
        );
        for (key, object) in &mut ours {
            let rendered = chart.get_mut(key).unwrap();
            only_helm_says(object);
            only_helm_says(rendered);
            let difference = first_difference(&format!("{key:?}"), object, rendered);
            assert!(
                difference.is_none(),
                "{overlay} and {values} differ at {}",
                difference.unwrap()
            );
            assert_eq!(object, rendered, "{overlay} and {values}: {key:?}");
        }
    }
}

#[test]
fn the_chart_passes_helm_lint_strict_with_each_value_file() {
    for values in [
        "charts/driftwood/values.yaml",
        "charts/driftwood/ci/dev-values.yaml",
        "charts/driftwood/ci/prod-values.yaml",
    ] {
        let args = ["lint", "--strict", "charts/driftwood", "-f", values];
        let report = run(&helm(), &args).unwrap_or_else(|e| panic!("{e}"));
        assert!(report.contains("0 chart(s) failed"), "{values}: {report}");
    }
}

#[test]
fn the_values_schema_refuses_a_misspelt_key_a_wrong_type_and_an_unknown_setting() {
    for (set, says) in [
        ("keda.lagTreshold=5", "'lagTreshold' not allowed"),
        ("keda.lagThreshold=lots", "want integer"),
        ("config.DRIFTWOOD_GROUP=g", "'DRIFTWOOD_GROUP'"),
        ("image.digest=latest", "/image/digest"),
    ] {
        let args = ["template", "x", "charts/driftwood", "--set", set];
        let error = run(&helm(), &args).expect_err(set);
        assert!(error.contains(says), "--set {set}: {error}");
    }
    // Numbers and booleans are settings too, written as the strings a ConfigMap holds.
    let args = [
        "template",
        "x",
        "charts/driftwood",
        "--set",
        "config.DRIFTWOOD_MAX_IN_FLIGHT=5000",
    ];
    let rendered = objects(&run(&helm(), &args).unwrap());
    let data = &rendered[&("ConfigMap".to_string(), "x-driftwood".to_string())]["data"];
    assert_eq!(data["DRIFTWOOD_MAX_IN_FLIGHT"].as_str(), Some("5000"));
}

/// The schema's list of settings is every variable `driftwood run` reads, but the two the
/// chart sets itself: a setting added to the code and not to the schema fails here.
#[test]
fn the_values_schema_knows_every_setting_driftwood_reads() {
    let help = Command::new(env!("CARGO_BIN_EXE_driftwood"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let read: BTreeSet<&str> = help
        .split("[env: ")
        .skip(1)
        .map(|rest| rest.split(['=', ']']).next().unwrap())
        .collect();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("charts/driftwood/values.schema.json")).unwrap(),
    )
    .unwrap();
    let listed: BTreeSet<&str> = schema["properties"]["config"]["propertyNames"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let set_by_the_chart = BTreeSet::from(["DRIFTWOOD_HTTP_ADDR", "DRIFTWOOD_INSTANCE_ID"]);
    let expected: BTreeSet<&str> = read.difference(&set_by_the_chart).copied().collect();
    assert_eq!(listed, expected);
    assert!(read.is_superset(&set_by_the_chart));
}

//! Models from MLflow's Model Registry, end to end, against a real MLflow tracking server
//! (`MLFLOW_TRACKING_URI`, which `scripts/test.sh` starts: `scripts/mlflow.sh`) and its
//! Python client (`DRIFTWOOD_MLFLOW_PYTHON`): a team registers an ONNX model in MLflow and
//! points an alias at it; driftwood imports it and serves it under live input; the team
//! registers a second version and moves the alias; following the alias imports it and starts
//! a canary, which the running instance serves and its gates promote.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use driftwood::codec::encode::{AvroCodec, PredictionRecord};

use crate::common::conservation::decoded;
use crate::common::registry::{driftwood, following, train_twenty_trees};
use crate::common::stream::settle;
use crate::common::*;

/// The tracking server and the Python with MLflow's client, or how to start them.
fn mlflow() -> (String, String) {
    let hint = "start one with `scripts/mlflow.sh start 5000` and set \
                MLFLOW_TRACKING_URI=http://127.0.0.1:5000 and \
                DRIFTWOOD_MLFLOW_PYTHON=$(scripts/mlflow.sh python) (scripts/test.sh does)";
    let uri = std::env::var("MLFLOW_TRACKING_URI").unwrap_or_else(|_| panic!("no MLflow: {hint}"));
    let python = std::env::var("DRIFTWOOD_MLFLOW_PYTHON")
        .unwrap_or_else(|_| panic!("no MLflow client: {hint}"));
    (uri, python)
}

/// Registers `model` with `reference` as a new version of `name` in MLflow and moves
/// `alias` to it (tests/mlflow/register.py); the version's number.
fn register(
    python: &str,
    uri: &str,
    name: &str,
    (model, reference): (&Path, &Path),
    alias: &str,
) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mlflow/register.py");
    let out = Command::new(python)
        .arg(script)
        .args([uri, name])
        .args([model, reference])
        .arg(alias)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_an_mlflow_alias_starts_a_canary_that_the_running_instance_serves() {
    let (uri, python) = mlflow();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("mlflow"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str| dir.join(name);
    let path = |name: &str| file(name).to_str().unwrap().to_owned();
    // Two ONNX models as a team would have them: the bundled forest, and a 20-tree forest
    // whose held-out rows (with their target) are the reference rows of both.
    driftwood(&["export", "--output", &path("v1.onnx")]);
    let scratch = path("scratch");
    let holdout = path("reference.csv");
    train_twenty_trees(&scratch, &["--holdout-csv", &holdout]);
    let second = format!("{scratch}/breast-cancer/1");
    driftwood(&["export", "--model", &second, "--output", &path("v2.onnx")]);

    let name = unique("fraud");
    let alias_uri = format!("models:/{name}@champion");
    let reg = path("registry");
    let follow = |extra: &[&str]| {
        let args = [
            "models",
            "follow-mlflow",
            &alias_uri,
            "--tracking-uri",
            &uri,
            "--name",
            "breast-cancer",
            "--registry",
            &reg,
            "--once",
        ];
        driftwood(&[&args[..], extra].concat())
    };
    let first = register(
        &python,
        &uri,
        &name,
        (&file("v1.onnx"), &file("reference.csv")),
        "champion",
    );
    assert_eq!(first, "1");
    let said = follow(&[]);
    assert!(
        said.ends_with("breast-cancer version 1, imported; serving\n"),
        "{said}"
    );

    let bootstrap = bootstrap();
    let (config, input, mut member, log) = following(bootstrap, &reg, (80_000, 4_000.0), &[]).await;
    member.wait_scored(6_000.0, Duration::from_secs(60));
    let second = register(
        &python,
        &uri,
        &name,
        (&file("v2.onnx"), &file("reference.csv")),
        "champion",
    );
    assert_eq!(second, "2");
    let stages = [
        "--stages",
        "10%,100%",
        "--min-time",
        "3s",
        "--min-records",
        "500",
    ];
    let said = follow(&stages);
    assert!(
        said.contains("is MLflow version 2: breast-cancer version 2, imported; breast-cancer: rolling out 2 beside 1: stage 1 of 2, 10% of the keys"),
        "{said}"
    );
    let share = "driftwood_canary_share{name=\"breast-cancer\",version=\"2\"}";
    wait_until("the canary to start", Duration::from_secs(30), || {
        member.metric(share) == Some(0.1)
    })
    .await;
    let promoted = "driftwood_rollout_decisions_total{decision=\"promote\",name=\"breast-cancer\"}";
    wait_until("the promotion", Duration::from_secs(90), || {
        member.metric(promoted) == Some(1.0)
    })
    .await;
    // Following again changes nothing: the version is imported once.
    assert!(follow(&[]).ends_with("serving or rolling out already\n"));
    let (exited_zero, c) = settle(bootstrap, &config, input, [member]).await;
    assert!(exited_zero, "logs in {}", log.display());
    assert_eq!(
        (c.missing_count, c.duplicates, c.strays),
        (0, 0, 0),
        "{c:?}"
    );

    let metadata = std::fs::read_to_string(format!("{reg}/breast-cancer/2/metadata.json")).unwrap();
    assert!(
        metadata.contains(&format!("models:/{name}/2")),
        "{metadata}"
    );
    let predictions: Vec<PredictionRecord> =
        decoded(bootstrap, &config.output_topic, &AvroCodec::predictions());
    let by_two = predictions
        .iter()
        .filter(|p| p.prediction.model_version == "2")
        .count();
    assert!(
        by_two > 0 && by_two < predictions.len(),
        "{by_two} of {}",
        predictions.len()
    );
}

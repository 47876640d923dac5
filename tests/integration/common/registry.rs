//! A model registry for tests, and the `driftwood` commands that edit it.

use std::path::{Path, PathBuf};
use std::process::Command;

use driftwood::config::RunConfig;

use super::process::Member;
use super::stream::{Stream, fresh_topics, stream};
use super::unique;

/// `driftwood <args>`, which must succeed; its standard output.
pub fn driftwood(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_driftwood"))
        .args(args)
        .env("DRIFTWOOD_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "driftwood {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Copies every file of the artifact in `from` into `to`, naming the copy version
/// `version` in its metadata.
pub fn copy_version(from: &Path, to: &Path, version: &str) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let file = entry.unwrap().file_name();
        std::fs::copy(from.join(&file), to.join(&file)).unwrap();
    }
    let path = to.join("metadata.json");
    let mut metadata: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    metadata["version"] = version.into();
    std::fs::write(&path, serde_json::to_string_pretty(&metadata).unwrap()).unwrap();
}

/// A registry holding the committed model as `breast-cancer` version 1, promoted.
pub fn registry() -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("registry"));
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/breast-cancer/1");
    copy_version(&committed, &root.join("breast-cancer/1"), "1");
    let reg = root.to_str().unwrap();
    driftwood(&["models", "promote", "breast-cancer", "1", "--registry", reg]);
    root
}

/// Trains version 2 of `breast-cancer` into `reg`: a 20-tree forest of the same features,
/// so its votes differ from version 1's; `driftwood train`'s output.
pub fn second_version(reg: &str) -> String {
    train_twenty_trees(reg, &[])
}

/// Trains a 20-tree forest of the bundled data into `reg` as the next version of
/// `breast-cancer`, with `extra` flags of `driftwood train`; its output.
pub fn train_twenty_trees(reg: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--dataset",
        "breast-cancer",
        "--trees",
        "20",
        "--registry",
        reg,
    ];
    args.extend_from_slice(extra);
    driftwood(&args)
}

/// Trains version 2 of `breast-cancer` into the registry at `root` on data three times the
/// scale of what the stream carries, as a model fit on the wrong units would be: every drift
/// window against it alerts.
pub fn scaled_version(root: &Path) {
    let data = driftwood::model::dataset::Dataset::breast_cancer();
    let mut csv = data.feature_names.join(",") + ",target\n";
    for (row, label) in data.rows.iter().zip(&data.labels) {
        let scaled: Vec<String> = row.iter().map(|v| (v * 3.0).to_string()).collect();
        csv += &format!("{},{label}\n", scaled.join(","));
    }
    let path = root.join("scaled.csv");
    std::fs::write(&path, csv).unwrap();
    let (path, reg) = (path.to_str().unwrap(), root.to_str().unwrap());
    let args = [
        "train",
        "--csv",
        path,
        "--target",
        "target",
        "--name",
        "breast-cancer",
    ];
    driftwood(&[&args[..], &["--registry", reg]].concat());
}

/// An instance following `breast-cancer`'s pointer in `reg` (read every second) with `extra`
/// flags, over fresh 3-partition topics fed `records` at `rate` a second; its log file.
pub async fn following(
    bootstrap: &str,
    reg: &str,
    (records, rate): (usize, f64),
    extra: &[&str],
) -> (RunConfig, Stream, Member, PathBuf) {
    let config = fresh_topics(bootstrap, 3, 1).await;
    let input = stream(bootstrap, &config, records, rate);
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("following.log"));
    let mut flags = vec!["--model-name", "breast-cancer", "--registry", reg];
    flags.extend(["--reload-interval", "1s"]);
    flags.extend(extra);
    let member = Member::start(&config, &flags, &log);
    (config, input, member, log)
}

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

/// A registry holding the committed model as `breast-cancer` version 1, promoted.
pub fn registry() -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("registry"));
    let v1 = root.join("breast-cancer/1");
    std::fs::create_dir_all(&v1).unwrap();
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/breast-cancer/1");
    for file in ["model.postcard", "metadata.json", "reference.csv"] {
        std::fs::copy(committed.join(file), v1.join(file)).unwrap();
    }
    let reg = root.to_str().unwrap();
    driftwood(&["models", "promote", "breast-cancer", "1", "--registry", reg]);
    root
}

/// Trains version 2 of `breast-cancer` into `reg`: a 20-tree forest of the same features,
/// so its votes differ from version 1's; `driftwood train`'s output.
pub fn second_version(reg: &str) -> String {
    driftwood(&[
        "train",
        "--dataset",
        "breast-cancer",
        "--trees",
        "20",
        "--registry",
        reg,
    ])
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

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Instant;

use super::*;

/// Copies the committed model into `root` as `breast-cancer` version `version`.
fn artifact(root: &Path, version: &str) {
    let dir = root.join("breast-cancer").join(version);
    crate::model::testing::copy_committed(&dir, "breast-cancer", version);
}

/// Writes a pointer to `version` into `dir` (a directory of the ConfigMap's data).
fn pointer_in(dir: &Path, version: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let pointer = format!(
        "{{\"version\": \"{version}\", \"previous\": [], \"changed_at\": \"2026-11-28T00:00:00Z\"}}"
    );
    std::fs::write(dir.join(POINTER), pointer).unwrap();
}

const POINTER: &str = super::super::registry::POINTER_FILE;

/// A watch of `breast-cancer` in `registry`, version 1 serving, loading what it is told.
fn watching(registry: &Registry, interval: Duration) -> ModelWatch<()> {
    let settings = WatchSettings {
        registry: registry.clone(),
        name: "breast-cancer".into(),
        serving: "1".into(),
        interval,
    };
    let from = registry.clone();
    let load: Loader<()> = Box::new(move |version| {
        let model = from.verify("breast-cancer", version, &|_| Ok(()))?;
        Ok((Arc::new(model), ()))
    });
    ModelWatch::start(settings, load, Metrics::new()).unwrap()
}

/// The layout the kubelet gives a mounted ConfigMap: the file is a symlink through `..data`,
/// itself a symlink to a timestamped directory; an update writes a new directory and swaps
/// `..data` by rename. The watch sees the swap by notification, long before its poll.
#[test]
fn a_configmap_style_symlink_swap_is_noticed_without_waiting_for_the_poll() {
    let root = tempfile::tempdir().unwrap();
    for v in ["1", "2"] {
        artifact(root.path(), v);
    }
    let model_dir = root.path().join("breast-cancer");
    pointer_in(&model_dir.join("..2026_11_28_first"), "1");
    symlink("..2026_11_28_first", model_dir.join("..data")).unwrap();
    symlink(format!("..data/{POINTER}"), model_dir.join(POINTER)).unwrap();

    let watch = watching(&Registry::new(root.path()), Duration::from_secs(600));
    // Let the watcher start before the swap.
    std::thread::sleep(Duration::from_millis(300));
    assert!(watch.take().is_none());

    pointer_in(&model_dir.join("..2026_11_28_second"), "2");
    symlink("..2026_11_28_second", model_dir.join("..data_tmp")).unwrap();
    std::fs::rename(model_dir.join("..data_tmp"), model_dir.join("..data")).unwrap();

    let started = Instant::now();
    let loaded = loop {
        if let Some(loaded) = watch.take() {
            break loaded;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no swap noticed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(loaded.model.metadata.version, "2");
    // A ConfigMap's hidden entries are no versions.
    assert_eq!(
        Registry::new(root.path())
            .versions("breast-cancer")
            .unwrap(),
        ["1", "2"]
    );
}

/// Reading the pointer is itself a file event (an access); the watch must not wake on it, or
/// it reads the pointer round and round (it did, at a quarter of a core).
#[test]
fn reading_the_pointer_does_not_wake_the_watch_again() {
    let root = tempfile::tempdir().unwrap();
    artifact(root.path(), "1");
    let registry = Registry::new(root.path());
    registry.promote("breast-cancer", "1", &|_| Ok(())).unwrap();
    let settings = WatchSettings {
        registry: registry.clone(),
        name: "breast-cancer".into(),
        serving: "1".into(),
        interval: Duration::from_millis(400),
    };
    let load: Loader<()> = Box::new(|_| unreachable!("the pointer does not move"));
    let metrics = Metrics::new();
    let watch = ModelWatch::start(settings, load, metrics.clone()).unwrap();
    std::thread::sleep(Duration::from_millis(2_100));
    drop(watch);
    let reads = metrics.serving.model_pointer_reads.get();
    assert!(
        (3..=7).contains(&reads),
        "{reads} reads in 2.1 s at one per 0.4 s"
    );
}

/// A rollout started, widened, then aborted: the watch hands over the candidate with its
/// share, the new share, and the end, in order.
#[test]
fn the_watch_follows_a_rollout_from_start_to_abort() {
    use crate::model::rollout::parse_stages;
    let root = tempfile::tempdir().unwrap();
    for v in ["1", "2"] {
        artifact(root.path(), v);
    }
    let registry = Registry::new(root.path());
    registry.promote("breast-cancer", "1", &|_| Ok(())).unwrap();
    let watch = watching(&registry, Duration::from_millis(100));
    let next = || {
        let started = Instant::now();
        loop {
            if let Some(change) = watch.take_canary().into_iter().next() {
                return change;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no change seen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let stages = parse_stages("10%,50%,100%", 0, 0).unwrap();
    let plan = (stages, crate::model::rollout::Gates::default());
    let started =
        (registry.start_rollout(("breast-cancer", "2"), plan, &|_| Ok(()), false)).unwrap();
    let CanaryChange::Start(canary) = next() else {
        panic!("the candidate starts")
    };
    let share = canary.rollout.share();
    assert_eq!(
        (canary.model.metadata.version.as_str(), share),
        ("2", Some(0.1))
    );

    let mut wider = started.clone();
    wider.phase = crate::model::rollout::Phase::Running {
        stage: 1,
        since: crate::model::rollout::now(),
    };
    wider.revision += 1;
    let text = serde_json::to_string(&wider).unwrap();
    std::fs::write(
        crate::model::rollout::path(root.path(), "breast-cancer"),
        text,
    )
    .unwrap();
    assert!(matches!(next(), CanaryChange::Stage(r) if r.share() == Some(0.5)));

    registry.abort_rollout("breast-cancer").unwrap();
    assert!(matches!(next(), CanaryChange::Off));
    assert!(watch.take().is_none(), "the pointer did not move");
}

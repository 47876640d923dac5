use std::path::Path;

use super::*;

/// Copies the committed model into `root` as `name` version `version`.
fn artifact(root: &Path, name: &str, version: &str) {
    crate::model::testing::copy_committed(&root.join(name).join(version), name, version);
}

fn any_features(_: &Model) -> Result<()> {
    Ok(())
}

#[test]
fn versions_sort_by_number_and_the_next_one_follows_the_highest() {
    let root = tempfile::tempdir().unwrap();
    let registry = Registry::new(root.path());
    assert_eq!(registry.next_version("cancer").unwrap(), "1");
    for v in ["10", "2", "1"] {
        artifact(root.path(), "cancer", v);
    }
    std::fs::create_dir_all(root.path().join("cancer/scratch")).unwrap();
    assert_eq!(registry.versions("cancer").unwrap(), ["1", "2", "10"]);
    assert_eq!(registry.next_version("cancer").unwrap(), "11");
    assert_eq!(registry.names().unwrap(), ["cancer"]);
}

#[test]
fn promote_and_rollback_move_the_pointer_and_say_what_changed() {
    let root = tempfile::tempdir().unwrap();
    let registry = Registry::new(root.path());
    for v in ["1", "2", "3"] {
        artifact(root.path(), "cancer", v);
    }
    assert_eq!(registry.pointer("cancer").unwrap(), None);
    let changes: Vec<String> = ["1", "2", "3"]
        .iter()
        .map(|v| {
            registry
                .promote("cancer", v, &any_features)
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        changes,
        ["cancer: (none) -> 1", "cancer: 1 -> 2", "cancer: 2 -> 3"]
    );
    let pointer = registry.pointer("cancer").unwrap().unwrap();
    assert_eq!(
        (pointer.version.as_str(), pointer.previous.as_slice()),
        ("3", &["2".to_string(), "1".to_string()][..])
    );

    let back = registry.rollback("cancer", &any_features).unwrap();
    assert_eq!(back.to_string(), "cancer: 3 -> 2");
    let back = registry.rollback("cancer", &any_features).unwrap();
    assert_eq!(back.to_string(), "cancer: 2 -> 1");
    let refused = registry
        .rollback("cancer", &any_features)
        .unwrap_err()
        .to_string();
    assert!(refused.contains("nothing to roll back to"), "{refused}");
    assert_eq!(registry.pointer("cancer").unwrap().unwrap().version, "1");
    // No temporary file is left beside the pointer.
    let files: Vec<_> = std::fs::read_dir(root.path().join("cancer"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !["1", "2", "3"].contains(&n.as_str()))
        .collect();
    assert_eq!(files, [POINTER_FILE]);
}

#[test]
fn an_artifact_that_fails_verification_is_not_promoted() {
    let root = tempfile::tempdir().unwrap();
    let registry = Registry::new(root.path());
    for v in ["1", "2", "3"] {
        artifact(root.path(), "cancer", v);
    }
    registry.promote("cancer", "1", &any_features).unwrap();

    // A corrupt model file: its checksum no longer matches.
    let model = root.path().join("cancer/2/model.postcard");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&model, bytes).unwrap();
    let refused = registry
        .promote("cancer", "2", &any_features)
        .unwrap_err()
        .to_string();
    assert!(refused.contains("checksum"), "{refused}");

    // Features the input cannot supply, as the caller's check reports them.
    let no_input = |_: &Model| {
        Err(Error::Config(
            "the input schema has no field mean_radius".into(),
        ))
    };
    let refused = registry
        .promote("cancer", "3", &no_input)
        .unwrap_err()
        .to_string();
    assert!(refused.contains("mean_radius"), "{refused}");

    let missing = registry
        .promote("cancer", "9", &any_features)
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("no version \"9\"") && missing.contains("1, 2, 3"),
        "{missing}"
    );
    assert_eq!(registry.pointer("cancer").unwrap().unwrap().version, "1");
}

/// `promote --require-evaluation` refuses each reason by name, and promotes a version that
/// passed against the version serving now.
#[test]
fn a_version_serves_after_an_evaluation_against_the_serving_one_passed() {
    use crate::error::{RegistryError, Unevaluated};
    use crate::model::evaluate::{EvaluateRequest, evaluate};
    let root = tempfile::tempdir().unwrap();
    let registry = Registry::new(root.path());
    for v in ["1", "2", "3"] {
        artifact(root.path(), "cancer", v);
    }
    registry.promote("cancer", "1", &any_features).unwrap();
    let data = crate::model::dataset::Dataset::breast_cancer();
    let file = root.path().join("holdout.csv");
    data.write_csv(&file, "target", &(0..data.len()).collect::<Vec<_>>())
        .unwrap();
    let request = EvaluateRequest {
        data: &file,
        target: "target",
        tolerance: 0.0,
    };
    let why = |version| match registry.promote_evaluated("cancer", version, &any_features) {
        Err(Error::ModelRegistry(RegistryError::NotEvaluated { why, .. })) => why,
        other => panic!("{other:?}"),
    };
    assert_eq!(why("2"), Unevaluated::Never);

    let model = |v| registry.verify("cancer", v, &any_features).unwrap();
    let evaluation = evaluate((&model("2"), &model("1")), &request).unwrap();
    assert_eq!(evaluation.rows, 569);
    assert!(
        evaluation.verdict.passed,
        "the same forest: {:?}",
        evaluation.verdict
    );
    registry.keep_evaluation(&evaluation).unwrap();
    let mut failed = evaluation.clone();
    failed.verdict.passed = false;
    registry.keep_evaluation(&failed).unwrap();
    assert!(matches!(why("2"), Unevaluated::Failed(_)));
    let mut changed = evaluation.clone();
    changed.candidate.model_sha256 = "0".repeat(64);
    registry.keep_evaluation(&changed).unwrap();
    assert_eq!(why("2"), Unevaluated::ArtifactChanged("2".into()));
    registry.keep_evaluation(&evaluation).unwrap();
    let change = registry
        .promote_evaluated("cancer", "2", &any_features)
        .unwrap();
    assert_eq!(change.to_string(), "cancer: 1 -> 2");

    // 3 was evaluated against 1, but 2 serves now.
    let against_one = evaluate((&model("3"), &model("1")), &request).unwrap();
    registry.keep_evaluation(&against_one).unwrap();
    assert_eq!(
        why("3"),
        Unevaluated::AgainstAnother {
            evaluated_against: "1".into(),
            serving: "2".into()
        }
    );
    assert_eq!(registry.versions("cancer").unwrap(), ["1", "2", "3"]);
}

/// A rollout's decisions move it stage by stage to a promotion (the pointer moves), and a
/// decision made on a revision that moved since is refused.
#[test]
fn rollout_decisions_advance_promote_and_are_refused_on_a_moved_revision() {
    use crate::error::RegistryError;
    use crate::model::rollout::{Decision, Gates, Phase, parse_stages};
    let root = tempfile::tempdir().unwrap();
    let registry = Registry::new(root.path());
    for v in ["1", "2"] {
        artifact(root.path(), "cancer", v);
    }
    registry.promote("cancer", "1", &any_features).unwrap();
    let plan = (parse_stages("10%,100%", 0, 0).unwrap(), Gates::default());
    let started = registry.start_rollout(("cancer", "2"), plan.clone(), &any_features, false);
    let started = started.unwrap();
    let again = registry.start_rollout(("cancer", "2"), plan, &any_features, false);
    assert!(matches!(
        again,
        Err(Error::ModelRegistry(RegistryError::RolloutRunning { .. }))
    ));
    let pass = Decision::Advance {
        figures: String::new(),
    };
    let decide = |revision| registry.decide_rollout(("cancer", revision), &pass, &any_features);
    let second = decide(started.revision).unwrap();
    assert!(matches!(second.phase, Phase::Running { stage: 1, .. }));
    assert!(matches!(
        decide(started.revision),
        Err(Error::ModelRegistry(RegistryError::RolloutMoved { .. }))
    ));
    let promoted = decide(second.revision).unwrap();
    assert!(matches!(promoted.phase, Phase::Promoted { .. }));
    assert_eq!(registry.pointer("cancer").unwrap().unwrap().version, "2");
    assert_eq!(registry.rollout("cancer").unwrap(), Some(promoted));
}

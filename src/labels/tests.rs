use super::realized::Said;
use super::*;

/// The join with its predictions in memory, and on disk (with the directory that holds
/// them): every test holds for both.
fn joins(window_records: usize) -> Vec<(Join<u32>, Option<tempfile::TempDir>)> {
    let settings = |spill| JoinSettings {
        horizon_ms: 1_000,
        window_records,
        instance_id: "i".into(),
        labels_topic: "labels".into(),
        spill,
    };
    let dir = tempfile::tempdir().unwrap();
    let spill = spill::SpillDir::open(&dir.path().join("awaiting")).unwrap();
    vec![
        (Join::new(settings(None)), None),
        (Join::new(settings(Some(spill))), Some(dir)),
    ]
}

fn metadata(version: &str) -> ModelMetadata {
    let json = serde_json::json!({
        "format_version": 1, "name": "m", "version": version, "algorithm": "linear",
        "features": ["x"], "classes": [0, 1], "created_at": "", "model_file": "",
        "model_sha256": "", "baselines": {"features": []},
    });
    serde_json::from_value(json).expect("metadata")
}

fn predicted(version: u16, label: i32, event_time: i64) -> Awaited {
    let p1 = if label == 1 { 0.8 } else { 0.3 };
    Awaited {
        version,
        said: Said::Class {
            label,
            probabilities: vec![1.0 - p1, p1].into(),
        },
        chance_right: Some(0.75),
        event_time,
        scored_at: event_time,
        joined_at: None,
    }
}

#[test]
fn labels_join_by_id_and_count_what_does_not() {
    for (mut j, _dir) in joins(6) {
        let v = j.version(&metadata("1"), None);
        j.awaits(0, "a", predicted(v, 1, 100)).unwrap();
        j.awaits(0, "b", predicted(v, 0, 100)).unwrap();
        j.awaits(0, "c", predicted(v, 1, 100)).unwrap();
        let outcomes: Vec<LabelOutcome> = [
            Some(("b", Truth::Class(1), 500)),
            Some(("a", Truth::Class(1), 500)),
            Some(("a", Truth::Class(0), 600)),
            Some(("zz", Truth::Class(0), 600)),
            Some(("c", Truth::Class(1), 2_000)),
            None,
        ]
        .into_iter()
        .enumerate()
        .map(|(o, label)| j.label((0, 10 + o as i64, 7), label, 9).unwrap().outcome)
        .collect();
        use LabelOutcome::*;
        assert_eq!(
            outcomes,
            [Joined, Joined, Duplicate, Unknown, Late, DeadLettered]
        );
    }
}

#[test]
fn a_window_closes_after_its_records_and_says_what_it_joined() {
    for (mut j, _dir) in joins(3) {
        let v1 = j.version(&metadata("1"), None);
        let v2 = j.version(&metadata("2"), None);
        assert_eq!((v1, v2), (0, 1));
        j.awaits(0, "a", predicted(v1, 1, 0)).unwrap();
        j.awaits(0, "b", predicted(v2, 0, 0)).unwrap();
        let first = j
            .label((0, 5, 1), Some(("a", Truth::Class(1), 0)), 9)
            .unwrap();
        assert_eq!((first.opened, first.closed.is_none()), (Some(5), true));
        let second = j
            .label((0, 6, 1), Some(("b", Truth::Class(1), 0)), 9)
            .unwrap();
        assert_eq!(second.opened, None, "the same window");
        let third = j
            .label((0, 7, 1), Some(("x", Truth::Class(1), 0)), 9)
            .unwrap();
        let window = third.closed.expect("three records close it");
        assert_eq!((window.first_offset, window.last_offset), (5, 7));
        assert_eq!((window.labels.joined, window.labels.unknown), (2, 1));
        let accuracy: Vec<(String, Option<f64>)> = (window.versions.iter())
            .map(|v| (v.model_version.clone(), v.accuracy))
            .collect();
        assert_eq!(
            accuracy,
            [("1".to_string(), Some(1.0)), ("2".to_string(), Some(0.0))]
        );
        assert_eq!(window.versions[0].expected_accuracy, Some(0.75));
        let next = j.label((0, 8, 1), None, 9).unwrap();
        assert_eq!(next.opened, Some(8), "the next window opens");
    }
}

#[test]
fn labels_read_again_under_a_new_lease_rebuild_the_window_and_join_again() {
    for (mut j, _dir) in joins(10) {
        let v = j.version(&metadata("1"), None);
        j.awaits(0, "a", predicted(v, 1, 0)).unwrap();
        j.label((0, 20, 1), Some(("a", Truth::Class(1), 0)), 9)
            .unwrap();
        j.label((0, 21, 1), Some(("a", Truth::Class(1), 0)), 9)
            .unwrap();
        // Rewound to 20 (an aborted transaction, or the partition moved and came back).
        let again = j
            .label((0, 20, 2), Some(("a", Truth::Class(1), 0)), 9)
            .unwrap();
        assert_eq!(again.opened, Some(20));
        assert_eq!(again.outcome, LabelOutcome::Joined, "joined at 20 before");
        let dup = j
            .label((0, 21, 2), Some(("a", Truth::Class(1), 0)), 9)
            .unwrap();
        assert_eq!(dup.outcome, LabelOutcome::Duplicate);
    }
}

#[test]
fn revoked_partitions_and_old_predictions_are_forgotten() {
    for (mut j, _dir) in joins(10) {
        let v = j.version(&metadata("1"), None);
        j.awaits(0, "a", predicted(v, 1, 0)).unwrap();
        j.awaits(1, "b", predicted(v, 1, 5_000)).unwrap();
        j.label((1, 0, 3), Some(("b", Truth::Class(1), 5_000)), 9)
            .unwrap();
        assert_eq!(j.awaiting().0, 2);
        assert_eq!(
            j.sweep(3_000).unwrap(),
            1,
            "a, scored over twice the horizon ago"
        );
        j.retain(|p| p == 0, |_, lease| lease == 4).unwrap();
        assert_eq!(j.awaiting().0, 0);
        let reopened = j.label((1, 1, 3), None, 9).unwrap();
        assert_eq!(reopened.opened, Some(1), "the old window was dropped");
    }
}

use super::*;

/// A one-split tree whose true leaf scores 1 and false leaf 0.
fn stump(
    comparison: Comparison,
    threshold: f64,
    missing_true: bool,
    precision: Precision,
) -> Ensemble {
    let tree = vec![
        TreeNode::Split {
            feature: 0,
            comparison,
            threshold,
            true_child: 1,
            false_child: 2,
            missing_true,
        },
        TreeNode::Leaf(vec![(0, 1.0)]),
        TreeNode::Leaf(vec![(0, 0.0)]),
    ];
    let head = Head::Regressor {
        n_targets: 1,
        base_values: vec![],
        post: PostTransform::None,
    };
    Ensemble::new(1, precision, &[tree], Aggregate::Sum, head).unwrap()
}

fn goes_true(ensemble: &Ensemble, x: f64) -> bool {
    let (mut scores, mut classes) = (Vec::new(), Vec::new());
    ensemble.predict(&[x], &mut scores, &mut classes);
    scores[0] == 1.0
}

#[test]
fn every_comparison_and_missing_track_takes_the_side_onnx_defines() {
    let t = 0.1f32;
    let just_below = f64::from(t.next_down());
    let just_above = f64::from(t.next_up());
    // 0.1 as float64 rounds to t as float32 (the input is float32 in the model).
    let values = [
        just_below,
        0.1,
        f64::from(t),
        just_above,
        -1e30,
        1e30,
        f64::NAN,
        -0.0,
    ];
    for comparison in [
        Comparison::Leq,
        Comparison::Lt,
        Comparison::Gte,
        Comparison::Gt,
    ] {
        for missing_true in [false, true] {
            let model = stump(comparison, f64::from(t), missing_true, Precision::F32);
            for x in values {
                let v = x as f32;
                let expected = if v.is_nan() {
                    missing_true
                } else {
                    match comparison {
                        Comparison::Leq => v <= t,
                        Comparison::Lt => v < t,
                        Comparison::Gte => v >= t,
                        Comparison::Gt => v > t,
                    }
                };
                assert_eq!(
                    goes_true(&model, x),
                    expected,
                    "{comparison:?} missing_true={missing_true} x={x}"
                );
            }
        }
    }
}

#[test]
fn double_models_compare_in_double() {
    let model = stump(Comparison::Lt, 0.1, false, Precision::F64);
    assert!(goes_true(&model, 0.1f64.next_down()));
    assert!(!goes_true(&model, 0.1));
    // In float32 both round to the same value and would compare equal.
    let float = stump(Comparison::Lt, 0.1, false, Precision::F32);
    assert!(!goes_true(&float, 0.1f64.next_down()));
}

#[test]
fn malformed_trees_are_refused_naming_tree_and_node() {
    let head = Head::Regressor {
        n_targets: 1,
        base_values: vec![],
        post: PostTransform::None,
    };
    let split = |feature, yes, no| TreeNode::Split {
        feature,
        comparison: Comparison::Leq,
        threshold: 0.0,
        true_child: yes,
        false_child: no,
        missing_true: false,
    };
    let cases = [
        (vec![split(0, 0, 0)], "tree 0 node 0: the tree has a cycle"),
        (
            vec![split(3, 1, 2)],
            "tree 0 node 0: split on feature 3, beyond the input",
        ),
        (
            vec![split(0, 1, 5), TreeNode::Leaf(vec![])],
            "tree 0 node 5: missing",
        ),
        (
            vec![TreeNode::Leaf(vec![(2, 1.0)])],
            "a leaf value for output 2",
        ),
    ];
    for (tree, expected) in cases {
        let error = Ensemble::new(1, Precision::F32, &[tree], Aggregate::Sum, head.clone())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(expected),
            "{error} should contain {expected:?}"
        );
    }
}

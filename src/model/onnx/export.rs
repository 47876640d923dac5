//! Writing a forest driftwood trained as an ONNX `TreeEnsembleClassifier`, so that other
//! runtimes (onnxruntime, and treelite through it) can score the same trees: `driftwood
//! export`, and the model comparison in `scripts/bench-models.sh`.
//!
//! The model reads a `tensor(double)` and keeps float64 thresholds (`nodes_values_as_tensor`,
//! `ai.onnx.ml` opset 3), so onnxruntime compares as smartcore does. A leaf's vote becomes a
//! class weight of 1/trees; with two classes only class 1's share is written, the form
//! onnxruntime reads as a probability (as skl2onnx writes scikit-learn's forests).

use prost::Message;

use super::proto;
use crate::model::ensemble::{Ensemble, Head, Labels, TreeNode};

/// A forest driftwood trained (a majority vote) as ONNX bytes; `None` for any other ensemble
/// (an imported model is ONNX already).
pub fn forest(forest: &Ensemble) -> Option<Vec<u8>> {
    let Head::Vote {
        labels: Labels::Int(labels),
    } = forest.head()
    else {
        return None;
    };
    let trees = forest.tree_nodes();
    let n_classes = labels.len();
    let share = 1.0 / forest.n_trees() as f32;
    let mut a = Lists::default();
    for (t, tree) in trees.iter().enumerate() {
        for (i, node) in tree.iter().enumerate() {
            a.tree_ids.push(t as i64);
            a.node_ids.push(i as i64);
            match node {
                TreeNode::Split {
                    feature,
                    threshold,
                    true_child,
                    false_child,
                    ..
                } => {
                    a.push_split(*feature, *threshold, *true_child, *false_child);
                }
                TreeNode::Leaf(votes) => {
                    a.push_leaf();
                    for &(class, _) in votes {
                        // Two classes: class 1's share alone, under class id 0.
                        if n_classes == 2 && class == 0 {
                            continue;
                        }
                        let id = if n_classes == 2 { 0 } else { class as i64 };
                        a.weights.push((t as i64, i as i64, id, share));
                    }
                }
            }
        }
    }
    Some(model(a.node(labels.clone()), forest.n_features()).encode_to_vec())
}

#[derive(Default)]
struct Lists {
    tree_ids: Vec<i64>,
    node_ids: Vec<i64>,
    features: Vec<i64>,
    modes: Vec<Vec<u8>>,
    values: Vec<f64>,
    true_ids: Vec<i64>,
    false_ids: Vec<i64>,
    weights: Vec<(i64, i64, i64, f32)>,
}

impl Lists {
    fn push_split(&mut self, feature: usize, threshold: f64, yes: usize, no: usize) {
        self.features.push(feature as i64);
        self.modes.push(b"BRANCH_LEQ".to_vec());
        self.values.push(threshold);
        self.true_ids.push(yes as i64);
        self.false_ids.push(no as i64);
    }

    fn push_leaf(&mut self) {
        self.features.push(0);
        self.modes.push(b"LEAF".to_vec());
        self.values.push(0.0);
        self.true_ids.push(0);
        self.false_ids.push(0);
    }

    fn node(self, labels: Vec<i64>) -> proto::NodeProto {
        let ints = |name: &str, v: Vec<i64>| proto::AttributeProto {
            name: Some(name.into()),
            r#type: Some(proto::attribute_proto::AttributeType::Ints as i32),
            ints: v,
            ..Default::default()
        };
        let thresholds = proto::TensorProto {
            dims: vec![self.values.len() as i64],
            data_type: Some(proto::tensor_proto::DataType::Double as i32),
            double_data: self.values,
            ..Default::default()
        };
        let attributes = vec![
            ints("nodes_treeids", self.tree_ids),
            ints("nodes_nodeids", self.node_ids),
            ints("nodes_featureids", self.features),
            proto::AttributeProto {
                name: Some("nodes_modes".into()),
                r#type: Some(proto::attribute_proto::AttributeType::Strings as i32),
                strings: self.modes,
                ..Default::default()
            },
            proto::AttributeProto {
                name: Some("nodes_values_as_tensor".into()),
                r#type: Some(proto::attribute_proto::AttributeType::Tensor as i32),
                t: Some(thresholds),
                ..Default::default()
            },
            ints("nodes_truenodeids", self.true_ids),
            ints("nodes_falsenodeids", self.false_ids),
            ints("class_treeids", self.weights.iter().map(|w| w.0).collect()),
            ints("class_nodeids", self.weights.iter().map(|w| w.1).collect()),
            ints("class_ids", self.weights.iter().map(|w| w.2).collect()),
            proto::AttributeProto {
                name: Some("class_weights".into()),
                r#type: Some(proto::attribute_proto::AttributeType::Floats as i32),
                floats: self.weights.iter().map(|w| w.3).collect(),
                ..Default::default()
            },
            ints("classlabels_int64s", labels),
        ];
        proto::NodeProto {
            input: vec!["X".into()],
            output: vec!["label".into(), "probabilities".into()],
            name: Some("forest".into()),
            op_type: Some("TreeEnsembleClassifier".into()),
            domain: Some("ai.onnx.ml".into()),
            attribute: attributes,
            ..Default::default()
        }
    }
}

fn tensor_value(name: &str, elem_type: i32, dims: &[Option<i64>]) -> proto::ValueInfoProto {
    use proto::tensor_shape_proto::{Dimension, dimension};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(v) => dimension::Value::DimValue(*v),
                None => dimension::Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    proto::ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(proto::TypeProto {
            value: Some(proto::type_proto::Value::TensorType(
                proto::type_proto::Tensor {
                    elem_type: Some(elem_type),
                    shape: Some(proto::TensorShapeProto { dim }),
                },
            )),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn model(node: proto::NodeProto, n_features: usize) -> proto::ModelProto {
    let graph = proto::GraphProto {
        node: vec![node],
        name: Some("driftwood-forest".into()),
        input: vec![tensor_value("X", 11, &[None, Some(n_features as i64)])],
        output: vec![
            tensor_value("label", 7, &[None]),
            tensor_value("probabilities", 1, &[None, None]),
        ],
        ..Default::default()
    };
    let opset = |domain: &str, version| proto::OperatorSetIdProto {
        domain: Some(domain.into()),
        version: Some(version),
    };
    proto::ModelProto {
        ir_version: Some(8),
        producer_name: Some("driftwood".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        opset_import: vec![opset("", 17), opset("ai.onnx.ml", 3)],
        graph: Some(graph),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use crate::model::dataset::Dataset;
    use crate::model::{Engine, Model, Scored};

    #[test]
    fn the_bundled_forest_exported_and_imported_again_scores_the_same() {
        let model = Model::open(None).unwrap();
        let bytes = super::forest(model.engine.ensemble()).unwrap();
        let imported = crate::model::onnx::decode(&bytes, "bundled.onnx".as_ref()).unwrap();
        let rows = Dataset::breast_cancer().rows.concat();
        let (mut ours, mut theirs) = (Scored::default(), Scored::default());
        model.engine.score(&rows, &mut ours);
        Engine::new(imported.ensemble).score(&rows, &mut theirs);
        assert_eq!(ours.classes, theirs.classes);
        let largest = ours
            .probabilities
            .iter()
            .zip(&theirs.probabilities)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        // Vote shares summed as float32 1/100s against exact counts.
        assert!(largest < 1e-6, "{largest}");
    }
}

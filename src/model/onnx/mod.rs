//! Reading tree models from ONNX, the format scikit-learn (`skl2onnx`), XGBoost and LightGBM
//! (`onnxmltools`) export to: the `ai.onnx.ml` operators `TreeEnsembleClassifier` and
//! `TreeEnsembleRegressor`, compiled into an [`Ensemble`].
//!
//! driftwood does not run ONNX graphs. It takes the one tree operator of the graph and checks
//! that every other node leaves its outputs as they are (`Identity`, `Cast`, a multiplication
//! by one, `ZipMap`); anything else, and any attribute or mode it does not implement, is
//! refused with a message naming it, rather than scored differently from onnxruntime.

mod attributes;
pub mod export;

use std::path::Path;

use prost::Message;

use super::ensemble::{Aggregate, Ensemble, Head, Labels, PostTransform, Precision};
use crate::error::{Error, Result};
use attributes::{Attributes, build_trees};

/// Types generated from ONNX's published schema (`proto/onnx-ml.proto`).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

/// ONNX's code for `tensor(float)`.
const FLOAT: i32 = 1;
/// ONNX's code for `tensor(double)`.
const DOUBLE: i32 = 11;

/// A tree model read from ONNX.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    /// The compiled trees.
    pub ensemble: Ensemble,
    /// The operator it came from, e.g. `TreeEnsembleClassifier`.
    pub operator: String,
    /// `producer_name` and `producer_version` of the file, e.g. `skl2onnx 1.20.0`.
    pub producer: String,
}

/// Reads and compiles the tree model in the ONNX file at `path`.
pub fn load(path: &Path) -> Result<OnnxModel> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode(&bytes, path)
}

/// Compiles the tree model in `bytes`, an ONNX file read from `path` (named in errors).
pub fn decode(bytes: &[u8], path: &Path) -> Result<OnnxModel> {
    let refuse = |message: String| Error::Model {
        path: path.into(),
        message,
    };
    let model =
        proto::ModelProto::decode(bytes).map_err(|e| refuse(format!("not an ONNX model: {e}")))?;
    convert(&model).map_err(refuse)
}

/// Compiles a decoded model; the error says what is not supported or malformed.
pub fn convert(model: &proto::ModelProto) -> std::result::Result<OnnxModel, String> {
    let graph = model.graph.as_ref().ok_or("the model has no graph")?;
    let trees: Vec<&proto::NodeProto> = graph
        .node
        .iter()
        .filter(|n| n.op_type().starts_with("TreeEnsemble"))
        .collect();
    let node = match trees.as_slice() {
        [one] => *one,
        [] => return Err("no TreeEnsembleClassifier or TreeEnsembleRegressor in the graph".into()),
        more => {
            return Err(format!(
                "{} tree operators; driftwood serves one",
                more.len()
            ));
        }
    };
    check_other_nodes(graph, node)?;
    let input = graph_input(graph, node)?;
    let (precision, width) = input_type(input)?;
    let attrs = Attributes::of(node);
    let operator = node.op_type().to_string();
    let (head, aggregate) = match operator.as_str() {
        "TreeEnsembleClassifier" => (classifier_head(&attrs)?, Aggregate::Sum),
        "TreeEnsembleRegressor" => regressor_head(&attrs)?,
        "TreeEnsemble" => {
            return Err(
                "operator TreeEnsemble (ai.onnx.ml opset 5) is not supported: \
                 export with ai.onnx.ml opset 3 or 4 (skl2onnx and onnxmltools do by default), \
                 which writes TreeEnsembleClassifier or TreeEnsembleRegressor"
                    .into(),
            );
        }
        other => {
            return Err(format!(
                "operator {other} is not supported (TreeEnsembleClassifier and \
                 TreeEnsembleRegressor are)"
            ));
        }
    };
    let (trees, max_feature) = build_trees(&attrs, &operator)?;
    let n_features = match width {
        Some(w) => w,
        None => max_feature + 1,
    };
    let ensemble =
        Ensemble::new(n_features, precision, &trees, aggregate, head).map_err(|e| e.to_string())?;
    attrs.refuse_unread()?;
    Ok(OnnxModel {
        ensemble,
        operator,
        producer: format!("{} {}", model.producer_name(), model.producer_version()),
    })
}

/// Nodes other than the tree operator must pass its outputs on unchanged.
fn check_other_nodes(
    graph: &proto::GraphProto,
    tree: &proto::NodeProto,
) -> std::result::Result<(), String> {
    for node in graph.node.iter().filter(|n| !std::ptr::eq(*n, tree)) {
        let unchanged = match node.op_type() {
            "Identity" | "Cast" | "ZipMap" => true,
            "Mul" | "Div" => node.input.iter().skip(1).all(|i| is_one(graph, i)),
            _ => false,
        };
        if !unchanged {
            return Err(format!(
                "the graph has a {} node ({:?}) beside the trees; driftwood serves tree \
                 ensembles alone (export the model without pre- or post-processing steps)",
                node.op_type(),
                node.name()
            ));
        }
    }
    Ok(())
}

/// Whether `name` is an initializer whose every value is 1.
fn is_one(graph: &proto::GraphProto, name: &str) -> bool {
    graph
        .initializer
        .iter()
        .find(|t| t.name() == name)
        .is_some_and(|t| {
            let floats = attributes::tensor_values(t);
            !floats.is_empty() && floats.iter().all(|&v| v == 1.0)
        })
}

/// The graph input the tree operator reads, directly or through `Identity`/`Cast` nodes.
fn graph_input<'a>(
    graph: &'a proto::GraphProto,
    tree: &proto::NodeProto,
) -> std::result::Result<&'a proto::ValueInfoProto, String> {
    let mut name = tree
        .input
        .first()
        .ok_or("the tree operator has no input")?
        .clone();
    for _ in 0..graph.node.len() {
        if let Some(input) = graph.input.iter().find(|i| i.name() == name) {
            return Ok(input);
        }
        let producer = graph
            .node
            .iter()
            .find(|n| n.output.contains(&name))
            .ok_or_else(|| format!("the trees read {name:?}, which nothing produces"))?;
        name = producer.input.first().cloned().unwrap_or_default();
    }
    Err("the trees' input does not come from a graph input".into())
}

/// The input's element type and, when the file states it, its width.
fn input_type(
    input: &proto::ValueInfoProto,
) -> std::result::Result<(Precision, Option<usize>), String> {
    use proto::type_proto::Value;
    let Some(Value::TensorType(tensor)) = input.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(format!("input {:?} is not a tensor", input.name()));
    };
    let precision = match tensor.elem_type() {
        FLOAT => Precision::F32,
        DOUBLE => Precision::F64,
        other => {
            return Err(format!(
                "input {:?} has element type {other}; float (1) and double (11) are supported",
                input.name()
            ));
        }
    };
    let dims = tensor
        .shape
        .as_ref()
        .map(|s| s.dim.as_slice())
        .unwrap_or(&[]);
    let width = match dims {
        [_, last] => match last.value {
            Some(proto::tensor_shape_proto::dimension::Value::DimValue(w)) if w > 0 => {
                Some(w as usize)
            }
            _ => None,
        },
        _ => {
            return Err(format!(
                "input {:?} has {} dimensions; a [rows, features] matrix is supported",
                input.name(),
                dims.len()
            ));
        }
    };
    Ok((precision, width))
}

fn post_transform(attrs: &Attributes) -> std::result::Result<PostTransform, String> {
    match attrs.string("post_transform").as_deref() {
        None | Some("NONE") => Ok(PostTransform::None),
        Some("LOGISTIC") => Ok(PostTransform::Logistic),
        Some("SOFTMAX") => Ok(PostTransform::Softmax),
        Some(other) => Err(format!(
            "post_transform {other} is not supported (NONE, LOGISTIC and SOFTMAX are)"
        )),
    }
}

fn classifier_head(attrs: &Attributes) -> std::result::Result<Head, String> {
    let labels = match (
        attrs.ints("classlabels_int64s"),
        attrs.strings("classlabels_strings"),
    ) {
        (Some(ints), _) if !ints.is_empty() => Labels::Int(ints),
        (_, Some(strings)) if !strings.is_empty() => Labels::Text(strings),
        _ => return Err("the classifier names no class labels".into()),
    };
    let ids = attrs.ints("class_ids").unwrap_or_default();
    let weights = attrs.float_list("class_weights")?.unwrap_or_default();
    let mut scored = vec![false; labels.len()];
    for &id in &ids {
        *scored
            .get_mut(id as usize)
            .ok_or_else(|| format!("class_ids names class {id} of {}", labels.len()))? = true;
    }
    Ok(Head::Classifier {
        labels,
        base_values: attrs.float_list("base_values")?.unwrap_or_default(),
        post: post_transform(attrs)?,
        scored,
        all_positive: weights.iter().all(|&w| w >= 0.0),
    })
}

fn regressor_head(attrs: &Attributes) -> std::result::Result<(Head, Aggregate), String> {
    let aggregate = match attrs.string("aggregate_function").as_deref() {
        None | Some("SUM") => Aggregate::Sum,
        Some("AVERAGE") => Aggregate::Average,
        Some(other) => {
            return Err(format!(
                "aggregate_function {other} is not supported (SUM and AVERAGE are)"
            ));
        }
    };
    let n_targets = attrs.int("n_targets").unwrap_or(1);
    if n_targets < 1 {
        return Err(format!("n_targets is {n_targets}"));
    }
    let head = Head::Regressor {
        n_targets: n_targets as usize,
        base_values: attrs.float_list("base_values")?.unwrap_or_default(),
        post: post_transform(attrs)?,
    };
    Ok((head, aggregate))
}

#[cfg(test)]
mod tests;

//! What an import refuses, and that the refusal names it: each case edits one part of a
//! valid model (the bundled forest as `driftwood export` writes it).

use prost::Message;

use super::{convert, proto};
use crate::model::Model;

/// The bundled forest as a decoded ONNX model.
fn valid() -> proto::ModelProto {
    let model = Model::open(None).unwrap();
    let bytes = super::export::forest(model.engine.ensemble()).unwrap();
    proto::ModelProto::decode(&bytes[..]).unwrap()
}

/// The tree operator of `model`, to edit.
fn trees(model: &mut proto::ModelProto) -> &mut proto::NodeProto {
    let graph = model.graph.as_mut().unwrap();
    let tree = |n: &&mut proto::NodeProto| n.op_type().starts_with("TreeEnsemble");
    graph.node.iter_mut().find(tree).unwrap()
}

/// The refusal of `model`.
fn refusal(model: &proto::ModelProto) -> String {
    convert(model).map(|_| ()).unwrap_err()
}

#[test]
fn the_unedited_model_is_accepted() {
    assert!(convert(&valid()).is_ok());
}

#[test]
fn the_opset_5_tree_ensemble_is_refused_by_name_with_what_to_do() {
    let mut model = valid();
    trees(&mut model).op_type = Some("TreeEnsemble".into());
    let message = refusal(&model);
    assert!(message.contains("operator TreeEnsemble"), "{message}");
    assert!(message.contains("opset 3 or 4"), "{message}");
}

#[test]
fn an_attribute_it_does_not_read_is_refused_by_name() {
    let mut model = valid();
    let attribute = |name: &str| proto::AttributeProto {
        name: Some(name.into()),
        r#type: Some(proto::attribute_proto::AttributeType::Floats as i32),
        floats: vec![1.0],
        ..Default::default()
    };
    // Hit rates only guide a runtime's layout; they change no score.
    trees(&mut model)
        .attribute
        .push(attribute("nodes_hitrates"));
    assert!(convert(&model).is_ok());
    // TreeEnsemble's membership sets, on an older operator.
    trees(&mut model)
        .attribute
        .push(attribute("membership_values"));
    assert_eq!(
        refusal(&model),
        "attribute membership_values is not supported"
    );
}

#[test]
fn an_unsupported_node_mode_and_post_transform_are_refused_by_name() {
    let mut model = valid();
    let modes = (trees(&mut model).attribute.iter_mut())
        .find(|a| a.name() == "nodes_modes")
        .unwrap();
    modes.strings[0] = b"BRANCH_EQ".to_vec();
    assert_eq!(refusal(&model), "node mode BRANCH_EQ is not supported");

    let mut model = valid();
    trees(&mut model).attribute.push(proto::AttributeProto {
        name: Some("post_transform".into()),
        r#type: Some(proto::attribute_proto::AttributeType::String as i32),
        s: Some(b"PROBIT".to_vec()),
        ..Default::default()
    });
    let message = refusal(&model);
    assert!(message.contains("PROBIT"), "{message}");
}

#[test]
fn a_processing_node_beside_the_trees_is_refused_by_its_operator() {
    let mut model = valid();
    let graph = model.graph.as_mut().unwrap();
    graph.node.push(proto::NodeProto {
        op_type: Some("Abs".into()),
        name: Some("abs".into()),
        input: vec!["x".into()],
        output: vec!["y".into()],
        ..Default::default()
    });
    let message = refusal(&model);
    assert!(message.contains("Abs node (\"abs\")"), "{message}");
}

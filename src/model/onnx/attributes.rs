//! A tree operator's attributes, read by name, and the trees they describe. Every attribute
//! read is recorded, so that one driftwood does not know can be refused by name instead of
//! silently ignored.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use super::proto;
use crate::model::ensemble::{Comparison, TreeNode};

/// Attributes that change nothing driftwood computes.
const IGNORED: [&str; 2] = ["nodes_hitrates", "nodes_hitrates_as_tensor"];

/// A node's attributes by name.
pub(super) struct Attributes<'a> {
    by_name: HashMap<&'a str, &'a proto::AttributeProto>,
    read: RefCell<BTreeSet<String>>,
}

impl<'a> Attributes<'a> {
    pub(super) fn of(node: &'a proto::NodeProto) -> Self {
        Attributes {
            by_name: node.attribute.iter().map(|a| (a.name(), a)).collect(),
            read: RefCell::default(),
        }
    }

    fn get(&self, name: &str) -> Option<&'a proto::AttributeProto> {
        self.read.borrow_mut().insert(name.to_string());
        self.by_name.get(name).copied()
    }

    pub(super) fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }

    pub(super) fn int(&self, name: &str) -> Option<i64> {
        self.get(name).map(|a| a.i())
    }

    pub(super) fn string(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|a| String::from_utf8_lossy(a.s()).into_owned())
    }

    pub(super) fn strings(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).map(|a| {
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
    }

    /// `name` as floats, or `name_as_tensor` (newer opsets, float or double) as float32:
    /// onnxruntime runs a float model's trees in float32 either way.
    pub(super) fn float_list(&self, name: &str) -> Result<Option<Vec<f32>>, String> {
        let plain = self.get(name).map(|a| a.floats.clone());
        let tensor = self.get(&format!("{name}_as_tensor"));
        match (plain, tensor) {
            (Some(_), Some(_)) => Err(format!("both {name} and {name}_as_tensor are set")),
            (Some(floats), None) => Ok(Some(floats)),
            (None, Some(t)) => Ok(Some(
                tensor_values(
                    t.t.as_ref()
                        .ok_or(format!("{name}_as_tensor holds no tensor"))?,
                )
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            )),
            (None, None) => Ok(None),
        }
    }

    /// Thresholds keep float64 when stored so (`nodes_values_as_tensor` of a double model).
    fn thresholds(&self) -> Result<Vec<f64>, String> {
        let plain = self.get("nodes_values").map(|a| a.floats.clone());
        let tensor = self.get("nodes_values_as_tensor");
        match (plain, tensor.and_then(|a| a.t.as_ref())) {
            (Some(floats), None) => Ok(floats.into_iter().map(f64::from).collect()),
            (None, Some(t)) => Ok(tensor_values(t)),
            (None, None) => Ok(Vec::new()),
            (Some(_), Some(_)) => {
                Err("both nodes_values and nodes_values_as_tensor are set".into())
            }
        }
    }

    /// Fails naming the first attribute nobody read (and that matters).
    pub(super) fn refuse_unread(&self) -> Result<(), String> {
        let read = self.read.borrow();
        let mut unread: Vec<&str> = self
            .by_name
            .keys()
            .copied()
            .filter(|n| !read.contains(*n) && !IGNORED.contains(n))
            .collect();
        unread.sort_unstable();
        match unread.first() {
            None => Ok(()),
            Some(name) => Err(format!("attribute {name} is not supported")),
        }
    }
}

/// A tensor's values as float64 (float, double, from typed fields or raw little-endian
/// bytes); empty for other types.
pub(super) fn tensor_values(t: &proto::TensorProto) -> Vec<f64> {
    match t.data_type() {
        1 if !t.raw_data().is_empty() => t
            .raw_data()
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes"))))
            .collect(),
        1 => t.float_data.iter().map(|&v| f64::from(v)).collect(),
        11 if !t.raw_data().is_empty() => t
            .raw_data()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect(),
        11 => t.double_data.clone(),
        _ => Vec::new(),
    }
}

/// The nodes of one tree, from the `nodes_*` lists, positions of the lists.
struct Lists {
    tree_ids: Vec<i64>,
    node_ids: Vec<i64>,
    features: Vec<i64>,
    modes: Vec<String>,
    thresholds: Vec<f64>,
    true_ids: Vec<i64>,
    false_ids: Vec<i64>,
    missing_true: Vec<i64>,
}

/// The trees (in the order their ids first appear, which is the order onnxruntime sums them)
/// and the largest feature index a split reads.
pub(super) fn build_trees(
    attrs: &Attributes,
    operator: &str,
) -> Result<(Vec<Vec<TreeNode>>, usize), String> {
    let lists = Lists {
        tree_ids: attrs.ints("nodes_treeids").unwrap_or_default(),
        node_ids: attrs.ints("nodes_nodeids").unwrap_or_default(),
        features: attrs.ints("nodes_featureids").unwrap_or_default(),
        modes: attrs.strings("nodes_modes").unwrap_or_default(),
        thresholds: attrs.thresholds()?,
        true_ids: attrs.ints("nodes_truenodeids").unwrap_or_default(),
        false_ids: attrs.ints("nodes_falsenodeids").unwrap_or_default(),
        missing_true: attrs
            .ints("nodes_missing_value_tracks_true")
            .unwrap_or_default(),
    };
    let n = lists.node_ids.len();
    let lengths = [
        lists.tree_ids.len(),
        lists.features.len(),
        lists.modes.len(),
        lists.thresholds.len(),
        lists.true_ids.len(),
        lists.false_ids.len(),
    ];
    if n == 0 || lengths.iter().any(|&l| l != n) {
        return Err(format!(
            "the nodes_* attributes have different lengths ({n} node ids, {lengths:?})"
        ));
    }
    if !lists.missing_true.is_empty() && lists.missing_true.len() != n {
        return Err("nodes_missing_value_tracks_true does not cover every node".into());
    }
    let leaves = leaf_values(attrs, operator)?;
    let mut order: Vec<i64> = Vec::new();
    let mut members: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, &t) in lists.tree_ids.iter().enumerate() {
        members
            .entry(t)
            .or_insert_with(|| {
                order.push(t);
                Vec::new()
            })
            .push(i);
    }
    let mut max_feature = 0;
    let trees = order
        .iter()
        .map(|t| tree(&lists, *t, &members[t], &leaves, &mut max_feature))
        .collect::<Result<Vec<_>, String>>()?;
    Ok((trees, max_feature))
}

/// Leaf values by (tree id, node id): `(output column, value)` pairs.
type LeafValues = HashMap<(i64, i64), Vec<(usize, f32)>>;

/// The `class_*` (or `target_*`) lists as [`LeafValues`].
fn leaf_values(attrs: &Attributes, operator: &str) -> Result<LeafValues, String> {
    let prefix = if operator == "TreeEnsembleClassifier" {
        "class"
    } else {
        "target"
    };
    let trees = attrs.ints(&format!("{prefix}_treeids")).unwrap_or_default();
    let nodes = attrs.ints(&format!("{prefix}_nodeids")).unwrap_or_default();
    let ids = attrs.ints(&format!("{prefix}_ids")).unwrap_or_default();
    let weights = attrs
        .float_list(&format!("{prefix}_weights"))?
        .unwrap_or_default();
    if [nodes.len(), ids.len(), weights.len()]
        .iter()
        .any(|&l| l != trees.len())
    {
        return Err(format!("the {prefix}_* attributes have different lengths"));
    }
    let mut out = LeafValues::new();
    for i in 0..trees.len() {
        let column = usize::try_from(ids[i]).map_err(|_| format!("{prefix}_ids has {}", ids[i]))?;
        out.entry((trees[i], nodes[i]))
            .or_default()
            .push((column, weights[i]));
    }
    Ok(out)
}

/// One tree's nodes, its root first.
fn tree(
    lists: &Lists,
    tree_id: i64,
    positions: &[usize],
    leaves: &LeafValues,
    max_feature: &mut usize,
) -> Result<Vec<TreeNode>, String> {
    let children: BTreeSet<i64> = positions
        .iter()
        .filter(|&&p| lists.modes[p] != "LEAF")
        .flat_map(|&p| [lists.true_ids[p], lists.false_ids[p]])
        .collect();
    let roots: Vec<usize> = positions
        .iter()
        .copied()
        .filter(|&p| !children.contains(&lists.node_ids[p]))
        .collect();
    let [root] = roots.as_slice() else {
        return Err(format!("tree {tree_id} has {} roots", roots.len()));
    };
    // The root first, then the other nodes in file order.
    let ordered: Vec<usize> = std::iter::once(*root)
        .chain(positions.iter().copied().filter(|p| p != root))
        .collect();
    let local: HashMap<i64, usize> = ordered
        .iter()
        .enumerate()
        .map(|(i, &p)| (lists.node_ids[p], i))
        .collect();
    let child = |id: i64| {
        local
            .get(&id)
            .copied()
            .ok_or_else(|| format!("tree {tree_id}: a split points to node {id}, which it lacks"))
    };
    ordered
        .iter()
        .map(|&p| {
            let comparison = match lists.modes[p].as_str() {
                "LEAF" => {
                    let key = (tree_id, lists.node_ids[p]);
                    return Ok(TreeNode::Leaf(
                        leaves.get(&key).cloned().unwrap_or_default(),
                    ));
                }
                "BRANCH_LEQ" => Comparison::Leq,
                "BRANCH_LT" => Comparison::Lt,
                "BRANCH_GTE" => Comparison::Gte,
                "BRANCH_GT" => Comparison::Gt,
                other => return Err(format!("node mode {other} is not supported")),
            };
            let feature = usize::try_from(lists.features[p])
                .map_err(|_| format!("tree {tree_id}: feature {}", lists.features[p]))?;
            *max_feature = (*max_feature).max(feature);
            Ok(TreeNode::Split {
                feature,
                comparison,
                threshold: lists.thresholds[p],
                true_child: child(lists.true_ids[p])?,
                false_child: child(lists.false_ids[p])?,
                missing_true: lists.missing_true.get(p).is_some_and(|&m| m != 0),
            })
        })
        .collect()
}

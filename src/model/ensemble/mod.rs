//! The general tree engine: an ensemble of decision trees whose leaves carry values (one per
//! class or per target), summed or averaged over trees, offset by base values and passed
//! through a post transform. This is what ONNX's `TreeEnsembleClassifier` and
//! `TreeEnsembleRegressor` describe, and so what scikit-learn's forests and gradient boosting,
//! XGBoost and LightGBM export to. smartcore's majority vote is the case of leaves that cast
//! one vote (value 1) for their class under the vote head; such an ensemble also takes the
//! vote walks of `model::forest` (leaf masks, an 8-row lock step over float64 thresholds).
//!
//! Scores must equal onnxruntime's, so the arithmetic is its arithmetic: a model with float
//! inputs compares float32 features against float32 thresholds and accumulates float32
//! scores tree by tree, in tree order; `finalize` applies base values, the post transform
//! and onnxruntime's rules for two classes.
//!
//! Every split is normalized at build time to one form, "true side when `x <= t`, NaN to the
//! false side", so the walks need one comparison: `x < t` becomes `x <= t'` with `t'` the
//! next float below `t` (exact, because features are rounded to the model's precision first);
//! `x >= t` and `x > t` compare the negated feature, which prepared rows carry after the
//! features; a split whose missing values go to the true side swaps its children and
//! compares the negated feature.

mod explain;
mod finalize;
mod lockstep;
mod pick;
mod walk;

pub use explain::{Explainer, Explanation};
pub use finalize::{Head, Labels, PostTransform};
pub use walk::{EnsembleWalk, Workspace};

use super::forest::{Forest, Walk};
use crate::error::{Error, Result};

/// Marks a leaf in [`Node::feature`]; the leaf's index (in the vote walks' layout, its
/// class) is kept in `children`.
pub(crate) const LEAF: u32 = u32::MAX;

/// One node in 16 bytes, so a visit touches one cache line. A split sends a (prepared) row
/// to `children` when `row[feature] <= threshold` (NaN never), else to `children + 1`:
/// siblings are stored side by side. The vote walks (`model::forest`) read a copy whose
/// leaves hold their class.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub(crate) struct Node {
    pub(crate) threshold: f64,
    pub(crate) feature: u32,
    pub(crate) children: u32,
}

/// The `children` value of the leaf `row` reaches from `root`: one row, branching at each
/// split.
#[inline]
pub(crate) fn branchy_leaf(nodes: &[Node], root: u32, row: &[f64]) -> usize {
    let mut node = nodes[root as usize];
    while node.feature != LEAF {
        // A branch, not arithmetic: the CPU speculates down the likely side instead of
        // waiting for the comparison. Unchecked indexing cuts instructions by a quarter
        // (cachegrind) but lets LLVM turn this into a conditional move, measured 50% slower
        // at batch 64 on the bundled forest; the bounds checks keep it a branch.
        node = if row[node.feature as usize] <= node.threshold {
            nodes[node.children as usize]
        } else {
            nodes[node.children as usize + 1]
        };
    }
    node.children as usize
}

/// What one source node becomes in the breadth-first layout of [`lay_out_tree`].
pub(crate) enum Laid {
    /// A leaf, as stored.
    Leaf(Node),
    /// A split `row[feature] <= threshold`, whose children are source nodes `yes` and `no`.
    Split {
        threshold: f64,
        feature: u32,
        yes: usize,
        no: usize,
    },
}

/// Appends a tree of `len` source nodes (its root is node 0) to `nodes` breadth first, so
/// that a split's two children sit side by side; `visit` says what each source node becomes.
/// Returns the root's index. Fails with the source node and what is wrong: a child that does
/// not exist, a cycle, or `visit`'s own refusal. Both the trained forest and the general
/// engine lay their trees out with it.
pub(crate) fn lay_out_tree(
    nodes: &mut Vec<Node>,
    len: usize,
    mut visit: impl FnMut(usize) -> std::result::Result<Laid, String>,
) -> std::result::Result<u32, (usize, String)> {
    const PLACEHOLDER: Node = Node {
        threshold: f64::NAN,
        feature: LEAF,
        children: 0,
    };
    let root = nodes.len();
    nodes.push(PLACEHOLDER);
    let mut queue = std::collections::VecDeque::from([(0usize, root)]);
    while let Some((source, slot)) = queue.pop_front() {
        if source >= len {
            return Err((source, "missing".into()));
        }
        // A tree of `len` nodes lays out `len` slots; more means a node was reached twice.
        if nodes.len() > root + 2 * len {
            return Err((source, "the tree has a cycle".into()));
        }
        nodes[slot] = match visit(source).map_err(|e| (source, e))? {
            Laid::Leaf(node) => node,
            Laid::Split {
                threshold,
                feature,
                yes,
                no,
            } => {
                let children = nodes.len();
                nodes.extend([PLACEHOLDER, PLACEHOLDER]);
                queue.push_back((yes, children));
                queue.push_back((no, children + 1));
                Node {
                    threshold,
                    feature,
                    children: children as u32,
                }
            }
        };
    }
    Ok(root as u32)
}

/// The precision the model's input tensor has, and so its comparisons and sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `tensor(float)`: features rounded to float32, scores summed in float32.
    F32,
    /// `tensor(double)`: features and comparisons in float64 (scores still summed in float32,
    /// as onnxruntime's `TreeEnsemble*` ops do for both).
    F64,
}

/// How tree outputs combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Added (boosted models; forests whose leaf values are already divided by the count).
    Sum,
    /// Added, then divided by the number of trees.
    Average,
}

/// How a split compares, as ONNX names its modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `x <= t` (`BRANCH_LEQ`).
    Leq,
    /// `x < t` (`BRANCH_LT`).
    Lt,
    /// `x >= t` (`BRANCH_GTE`).
    Gte,
    /// `x > t` (`BRANCH_GT`).
    Gt,
}

/// A tree as a builder sees it: nodes by index, the root first.
#[derive(Debug, Clone, PartialEq)]
pub enum TreeNode {
    /// A split: when `x[feature] <comparison> threshold` go to `true_child`, else
    /// `false_child`; a missing value (NaN) goes to the true child when `missing_true`.
    Split {
        /// The feature compared.
        feature: usize,
        /// The comparison.
        comparison: Comparison,
        /// The threshold, as the model stores it.
        threshold: f64,
        /// Index of the node taken when the comparison holds.
        true_child: usize,
        /// Index of the node taken otherwise.
        false_child: usize,
        /// Whether a NaN takes the true child.
        missing_true: bool,
    },
    /// A leaf: `(output column, value)` pairs added to the row's scores.
    Leaf(Vec<(usize, f32)>),
}

/// A compiled ensemble (see the module documentation).
#[derive(Debug, Clone)]
pub struct Ensemble {
    n_features: usize,
    precision: Precision,
    /// Whether prepared rows carry the negated features after the features.
    negated: bool,
    roots: Vec<u32>,
    nodes: Vec<Node>,
    /// Output columns the leaves write (classes or targets).
    n_outputs: usize,
    /// Leaf `l`'s values are `leaf_values[l * n_outputs..][..n_outputs]`.
    leaf_values: Vec<f32>,
    aggregate: Aggregate,
    head: Head,
    /// The compact lock-step layout, when the model fits it (see [`Ensemble::walk`]).
    lockstep: Option<lockstep::Lockstep>,
    /// The vote walks' layout, for a vote whose every leaf is one vote.
    votes: Option<Forest>,
    /// The walks it can take, fastest first (measured at load).
    walks: Vec<EnsembleWalk>,
    /// The fastest walk for a single row (measured at load).
    single: EnsembleWalk,
}

impl Ensemble {
    /// Compiles `trees`. Fails naming the tree and node when a tree is malformed (a child
    /// out of range, a cycle, a feature beyond `n_features`, a NaN threshold, an output
    /// column beyond the head's).
    pub fn new(
        n_features: usize,
        precision: Precision,
        trees: &[Vec<TreeNode>],
        aggregate: Aggregate,
        head: Head,
    ) -> Result<Self> {
        let n_outputs = head.n_outputs();
        let mut ensemble = Ensemble {
            n_features,
            precision,
            negated: false,
            roots: Vec::with_capacity(trees.len()),
            nodes: Vec::new(),
            n_outputs,
            leaf_values: Vec::new(),
            aggregate,
            head,
            lockstep: None,
            votes: None,
            walks: vec![EnsembleWalk::Branchy],
            single: EnsembleWalk::Branchy,
        };
        if trees.is_empty() {
            return Err(invalid("the ensemble has no trees".into()));
        }
        for (t, tree) in trees.iter().enumerate() {
            ensemble
                .lay_out(tree)
                .map_err(|(n, what)| invalid(format!("tree {t} node {n}: {what}")))?;
        }
        ensemble.lockstep = lockstep::Lockstep::build(&ensemble);
        ensemble.votes = ensemble.vote_layout();
        (ensemble.walks, ensemble.single) = ensemble.rank_walks();
        Ok(ensemble)
    }

    /// The walk batches take: the fastest of [`Ensemble::walks`].
    pub fn walk(&self) -> EnsembleWalk {
        self.walks[0]
    }

    /// The walk a single row takes: the fastest for one row at a time.
    pub fn single_walk(&self) -> EnsembleWalk {
        self.single
    }

    /// The walks this model can take, fastest first, as timed when it was loaded. The
    /// lock-step walk needs a float model of at most 1,022 prepared features and trees of at
    /// most 4 million nodes.
    pub fn walks(&self) -> &[EnsembleWalk] {
        &self.walks
    }

    /// Appends `tree` (see [`lay_out_tree`]), normalizing each split (see the module
    /// documentation).
    fn lay_out(&mut self, tree: &[TreeNode]) -> std::result::Result<(), (usize, String)> {
        // Taken out for the layout, so that visiting may add leaf values to `self`.
        let mut nodes = std::mem::take(&mut self.nodes);
        let laid = lay_out_tree(&mut nodes, tree.len(), |source| match &tree[source] {
            TreeNode::Leaf(values) => self.add_leaf(values).map(Laid::Leaf),
            TreeNode::Split {
                feature,
                comparison,
                threshold,
                true_child,
                false_child,
                missing_true,
            } => {
                if *feature >= self.n_features {
                    return Err(format!("split on feature {feature}, beyond the input"));
                }
                if threshold.is_nan() {
                    return Err("a NaN threshold".into());
                }
                let (offset, threshold, swap) =
                    self.normalize(*comparison, *threshold, *missing_true);
                let (yes, no) = if swap {
                    (*false_child, *true_child)
                } else {
                    (*true_child, *false_child)
                };
                self.negated |= offset > 0;
                Ok(Laid::Split {
                    threshold,
                    feature: (offset + feature) as u32,
                    yes,
                    no,
                })
            }
        });
        self.nodes = nodes;
        self.roots.push(laid?);
        Ok(())
    }

    /// The equivalent "`row[offset + feature] <= threshold`, NaN false" test, and whether
    /// the children swap. `offset` is 0 for the feature, `n_features` for its negation.
    fn normalize(
        &self,
        comparison: Comparison,
        threshold: f64,
        missing_true: bool,
    ) -> (usize, f64, bool) {
        let t = self.round(threshold);
        let below = |t: f64| match self.precision {
            Precision::F32 => f64::from((t as f32).next_down()),
            Precision::F64 => t.next_down(),
        };
        let neg = self.n_features;
        // Without missing values on the true side, NaN must fail the test; with them, the
        // children swap and the test becomes the complement, which NaN must fail too.
        match (comparison, missing_true) {
            (Comparison::Leq, false) => (0, t, false),
            (Comparison::Lt, false) => (0, below(t), false),
            (Comparison::Gte, false) => (neg, -t, false),
            (Comparison::Gt, false) => (neg, below(-t), false),
            // Complement of x <= t is x > t, i.e. -x < -t.
            (Comparison::Leq, true) => (neg, below(-t), true),
            // Complement of x < t is x >= t, i.e. -x <= -t.
            (Comparison::Lt, true) => (neg, -t, true),
            // Complement of x >= t is x < t.
            (Comparison::Gte, true) => (0, below(t), true),
            // Complement of x > t is x <= t.
            (Comparison::Gt, true) => (0, t, true),
        }
    }

    fn add_leaf(&mut self, values: &[(usize, f32)]) -> std::result::Result<Node, String> {
        let leaf = self.leaf_values.len() / self.n_outputs.max(1);
        self.leaf_values
            .extend(std::iter::repeat_n(0.0, self.n_outputs));
        for &(column, value) in values {
            if column >= self.n_outputs {
                return Err(format!(
                    "a leaf value for output {column}, beyond the model's {}",
                    self.n_outputs
                ));
            }
            // Several entries for one column add up, as onnxruntime adds them.
            self.leaf_values[leaf * self.n_outputs + column] += value;
        }
        Ok(Node {
            threshold: f64::NAN,
            feature: LEAF,
            children: leaf as u32,
        })
    }

    fn round(&self, x: f64) -> f64 {
        match self.precision {
            Precision::F32 => f64::from(x as f32),
            Precision::F64 => x,
        }
    }

    /// Number of features a row must have.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// What the scores mean: classes and their labels, or regression targets.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Values per row that [`Ensemble::predict`] writes: one probability (or score) per
    /// class, or one value per target.
    pub fn n_columns(&self) -> usize {
        self.head.n_outputs()
    }

    /// The vote walks' layout: for a vote head over float64 features compared as they are,
    /// whose every leaf casts one vote (value 1 in one column, 0 in the others).
    fn vote_layout(&self) -> Option<Forest> {
        if !matches!(self.head, Head::Vote { .. }) || self.precision != Precision::F64 {
            return None;
        }
        if self.negated || self.aggregate != Aggregate::Sum {
            return None;
        }
        let n = self.n_outputs;
        let leaf_class = |leaf: u32| {
            let values = &self.leaf_values[leaf as usize * n..][..n];
            let class = values.iter().position(|&v| v == 1.0)?;
            let others_zero = values
                .iter()
                .enumerate()
                .all(|(c, &v)| c == class || v == 0.0);
            others_zero.then_some(class as u32)
        };
        Forest::build(&self.nodes, &self.roots, leaf_class, self.n_features, n)
    }

    /// The trees as a builder gives them (`TreeNode`s, normalized: splits `x <= t` or, on a
    /// negated feature, `x >= -t`, NaN to the false side), for export.
    pub fn tree_nodes(&self) -> Vec<Vec<TreeNode>> {
        let ends = (self.roots[1..].iter().copied()).chain([self.nodes.len() as u32]);
        (self.roots.iter().zip(ends))
            .map(|(&root, end)| {
                (self.nodes[root as usize..end as usize].iter())
                    .map(|node| self.tree_node(node, root))
                    .collect()
            })
            .collect()
    }

    /// One laid-out node of the tree at `root` as a [`TreeNode`].
    fn tree_node(&self, node: &Node, root: u32) -> TreeNode {
        if node.feature == LEAF {
            let n_out = self.n_outputs;
            let values = &self.leaf_values[node.children as usize * n_out..][..n_out];
            let written = values.iter().enumerate().filter(|(_, v)| **v != 0.0);
            return TreeNode::Leaf(written.map(|(c, &v)| (c, v)).collect());
        }
        let f = node.feature as usize;
        let (feature, comparison, threshold) = match f.checked_sub(self.n_features) {
            Some(negated) => (negated, Comparison::Gte, -node.threshold),
            None => (f, Comparison::Leq, node.threshold),
        };
        let yes = (node.children - root) as usize;
        TreeNode::Split {
            feature,
            comparison,
            threshold,
            true_child: yes,
            false_child: yes + 1,
            missing_true: false,
        }
    }

    /// The vote walks' layout, when this ensemble has one (for tests and benchmarks).
    pub fn vote_forest(&self) -> Option<&Forest> {
        self.votes.as_ref()
    }
}

fn invalid(message: String) -> Error {
    Error::Model {
        path: "<tree ensemble>".into(),
        message,
    }
}

#[cfg(test)]
mod tests;

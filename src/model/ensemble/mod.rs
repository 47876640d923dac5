//! The general tree engine: an ensemble of decision trees whose leaves carry values (one per
//! class or per target), summed or averaged over trees, offset by base values and passed
//! through a post transform. This is what ONNX's `TreeEnsembleClassifier` and
//! `TreeEnsembleRegressor` describe, and so what scikit-learn's forests and gradient boosting,
//! XGBoost and LightGBM export to; smartcore's majority vote is the case of one-hot leaves.
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

mod finalize;
mod lockstep;
mod pick;

pub use finalize::{Head, Labels, PostTransform};

use crate::error::{Error, Result};

/// Marks a leaf in [`Node::feature`]; the leaf's index (for a forest driftwood trained,
/// its class) is kept in `children`.
pub(crate) const LEAF: u32 = u32::MAX;

/// One node in 16 bytes, so a visit touches one cache line. A split sends a (prepared) row
/// to `children` when `row[feature] <= threshold` (NaN never), else to `children + 1`:
/// siblings are stored side by side. The trained forest (`model::forest`) lays its trees
/// out the same way.
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
    /// The walks it can take, fastest first (measured at load).
    walks: Vec<EnsembleWalk>,
    /// The fastest walk for a single row (measured at load).
    single: EnsembleWalk,
}

/// How [`Ensemble::predict`] walks batches of more than one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnsembleWalk {
    /// Blocks of 16 rows in lock step over 8-byte nodes (float models).
    LockStep,
    /// One row and one tree at a time (double models, and single rows).
    Branchy,
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
        (ensemble.walks, ensemble.single) = ensemble.rank_walks();
        Ok(ensemble)
    }

    /// The walk batches take: the fastest of [`Ensemble::walks`].
    pub fn walk(&self) -> EnsembleWalk {
        self.walks[0]
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

    /// Scores `rows` (row-major, [`Ensemble::n_features`] values each): writes
    /// [`Ensemble::n_columns`] values per row to `scores` and, for a classifier, the index of
    /// each row's predicted class to `classes` (both cleared first). Batches take
    /// [`Ensemble::walk`], a single row the walk timed fastest for single rows.
    pub fn predict(&self, rows: &[f64], scores: &mut Vec<f32>, classes: &mut Vec<usize>) {
        let walk = match rows.len() > self.n_features {
            true => self.walk(),
            false => self.single,
        };
        self.predict_with(walk, rows, scores, classes);
    }

    /// [`Ensemble::predict`] with a chosen walk, for tests and benchmarks.
    ///
    /// # Panics
    /// If `walk` is not in [`Ensemble::walks`].
    pub fn predict_with(
        &self,
        walk: EnsembleWalk,
        rows: &[f64],
        scores: &mut Vec<f32>,
        classes: &mut Vec<usize>,
    ) {
        scores.clear();
        classes.clear();
        let n_out = self.n_outputs;
        let mut sums = vec![0f32; n_out * lockstep::ROWS];
        match walk {
            EnsembleWalk::LockStep => {
                let fast = self.lockstep.as_ref().expect("a lock-step layout");
                let mut block = Vec::with_capacity(fast.width() * lockstep::ROWS);
                for chunk in rows.chunks(self.n_features * lockstep::ROWS) {
                    let n = chunk.len() / self.n_features;
                    block.clear();
                    for row in chunk.chunks_exact(self.n_features) {
                        self.prepare_f32(row, &mut block);
                    }
                    sums[..n * n_out].fill(0.0);
                    fast.score_block(self, &block, &mut sums[..n * n_out]);
                    for row_sums in sums[..n * n_out].chunks_exact_mut(n_out) {
                        self.finish(row_sums, scores, classes);
                    }
                }
            }
            EnsembleWalk::Branchy => {
                let mut prepared = Vec::with_capacity(self.n_features * 2);
                let row_sums = &mut sums[..n_out];
                for row in rows.chunks_exact(self.n_features) {
                    self.prepare(row, &mut prepared);
                    row_sums.fill(0.0);
                    for &root in &self.roots {
                        let leaf = branchy_leaf(&self.nodes, root, &prepared);
                        let values = &self.leaf_values[leaf * n_out..][..n_out];
                        for (sum, &v) in row_sums.iter_mut().zip(values) {
                            *sum += v;
                        }
                    }
                    self.finish(row_sums, scores, classes);
                }
            }
        }
    }

    /// Averages one row's sums if the model averages, then finalizes them.
    fn finish(&self, sums: &mut [f32], scores: &mut Vec<f32>, classes: &mut Vec<usize>) {
        if self.aggregate == Aggregate::Average {
            let n = self.roots.len() as f32;
            sums.iter_mut().for_each(|s| *s /= n);
        }
        classes.extend(self.head.finalize(sums, scores));
    }

    /// The row as the lock-step walk reads it: float32 features, their negations if some
    /// split compares one, then −∞ (the slot leaves compare).
    fn prepare_f32(&self, row: &[f64], out: &mut Vec<f32>) {
        out.extend(row.iter().map(|&x| x as f32));
        if self.negated {
            out.extend(row.iter().map(|&x| -(x as f32)));
        }
        out.push(f32::NEG_INFINITY);
    }

    /// The row as the walks read it: rounded to the model's precision, then negated if some
    /// split compares a negation.
    fn prepare(&self, row: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.extend(row.iter().map(|&x| self.round(x)));
        if self.negated {
            out.extend(row.iter().map(|&x| -self.round(x)));
        }
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

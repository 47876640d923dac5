//! A random forest flattened for inference.
//!
//! smartcore stays the training library and the reference; at load time its trees are
//! copied into contiguous arrays (struct of arrays, trees back to back) so scoring walks
//! plain indices instead of nested structs. The voting rule is smartcore's: each tree casts
//! one vote, the class with most votes wins and ties go to the lowest class index.

use serde::Deserialize;
use smartcore::linalg::basic::matrix::DenseMatrix;

use crate::error::{Error, Result};

/// smartcore's forest with the types driftwood trains: `f64` features, `i32` labels.
pub type SmartcoreForest = smartcore::ensemble::random_forest_classifier::RandomForestClassifier<
    f64,
    i32,
    DenseMatrix<f64>,
    Vec<i32>,
>;

/// Marks a leaf in [`Forest::feature`]; the leaf's class index is kept in `true_child`.
const LEAF: u32 = u32::MAX;

/// The flattened forest. Node `i` of the whole forest tests
/// `row[feature[i]] <= threshold[i]` and continues at `true_child[i]` or `false_child[i]`.
#[derive(Debug, Clone)]
pub struct Forest {
    n_features: usize,
    classes: Vec<i32>,
    tree_roots: Vec<u32>,
    feature: Vec<u32>,
    threshold: Vec<f64>,
    true_child: Vec<u32>,
    false_child: Vec<u32>,
}

/// The parts of smartcore's serialized tree that inference needs; serde skips the rest.
#[derive(Deserialize)]
struct SerializedNode {
    output: usize,
    split_feature: usize,
    split_value: Option<f64>,
    true_child: Option<usize>,
    false_child: Option<usize>,
}

#[derive(Deserialize)]
struct SerializedTree {
    nodes: Vec<SerializedNode>,
}

#[derive(Deserialize)]
struct SerializedForest {
    trees: Option<Vec<SerializedTree>>,
    classes: Option<Vec<i32>>,
}

impl Forest {
    /// Flattens a trained smartcore forest. smartcore keeps its nodes private, so they are
    /// read through the forest's serde representation (once, at load time).
    pub fn compile(model: &SmartcoreForest, n_features: usize) -> Result<Self> {
        let invalid = |message: String| Error::Model {
            path: "<in memory>".into(),
            message,
        };
        let value = serde_json::to_value(model).map_err(|e| invalid(e.to_string()))?;
        let serialized: SerializedForest =
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        let (Some(trees), Some(classes)) = (serialized.trees, serialized.classes) else {
            return Err(invalid("the forest was never fitted".into()));
        };
        if trees.is_empty() || classes.is_empty() {
            return Err(invalid("the forest has no trees or no classes".into()));
        }
        let total: usize = trees.iter().map(|t| t.nodes.len()).sum();
        let mut forest = Forest {
            n_features,
            classes,
            tree_roots: Vec::with_capacity(trees.len()),
            feature: Vec::with_capacity(total),
            threshold: Vec::with_capacity(total),
            true_child: Vec::with_capacity(total),
            false_child: Vec::with_capacity(total),
        };
        for (t, tree) in trees.iter().enumerate() {
            let base = forest.feature.len();
            forest.tree_roots.push(base as u32);
            for (n, node) in tree.nodes.iter().enumerate() {
                let bad = |what: &str| invalid(format!("tree {t} node {n}: {what}"));
                match (node.true_child, node.false_child) {
                    (Some(yes), Some(no)) => {
                        if yes >= tree.nodes.len() || no >= tree.nodes.len() {
                            return Err(bad("child index out of range"));
                        }
                        if node.split_feature >= n_features {
                            return Err(bad("split on a feature the model does not have"));
                        }
                        forest.feature.push(node.split_feature as u32);
                        // smartcore compares against NaN when a split has no value: never true.
                        forest.threshold.push(node.split_value.unwrap_or(f64::NAN));
                        forest.true_child.push((base + yes) as u32);
                        forest.false_child.push((base + no) as u32);
                    }
                    _ => {
                        if node.output >= forest.classes.len() {
                            return Err(bad("leaf class out of range"));
                        }
                        forest.feature.push(LEAF);
                        forest.threshold.push(f64::NAN);
                        forest.true_child.push(node.output as u32);
                        forest.false_child.push(0);
                    }
                }
            }
        }
        Ok(forest)
    }

    /// Number of features a row must have.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Class labels, in the order of vote counts.
    pub fn classes(&self) -> &[i32] {
        &self.classes
    }

    /// Number of trees, the denominator of every vote share.
    pub fn n_trees(&self) -> usize {
        self.tree_roots.len()
    }

    /// The class index one tree votes for.
    fn tree_vote(&self, root: u32, row: &[f64]) -> usize {
        let mut node = root as usize;
        loop {
            let feature = self.feature[node];
            if feature == LEAF {
                return self.true_child[node] as usize;
            }
            node = if row[feature as usize] <= self.threshold[node] {
                self.true_child[node]
            } else {
                self.false_child[node]
            } as usize;
        }
    }

    /// Scores `rows` (row-major, `n_features` values each) and writes each row's vote counts,
    /// one per class, into `votes` (cleared first). Read them with [`Votes`].
    pub fn score_batch(&self, rows: &[f64], votes: &mut Vec<u32>) {
        let n_classes = self.classes.len();
        let n_rows = rows.len() / self.n_features;
        votes.clear();
        votes.resize(n_rows * n_classes, 0);
        for (row, row_votes) in rows
            .chunks_exact(self.n_features)
            .zip(votes.chunks_exact_mut(n_classes))
        {
            for &root in &self.tree_roots {
                row_votes[self.tree_vote(root, row)] += 1;
            }
        }
    }

    /// Reads one row's slice of the vote counts written by [`Forest::score_batch`].
    pub fn votes<'a>(&'a self, counts: &'a [u32]) -> Votes<'a> {
        // First maximum wins, as in smartcore's `which_max`.
        let mut winner = 0;
        for (i, &c) in counts.iter().enumerate().skip(1) {
            if c > counts[winner] {
                winner = i;
            }
        }
        Votes {
            counts,
            n_trees: self.n_trees() as u32,
            winner,
            label: self.classes[winner],
        }
    }
}

/// One row's votes, with the forest's interpretation of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Votes<'a> {
    counts: &'a [u32],
    n_trees: u32,
    winner: usize,
    label: i32,
}

impl Votes<'_> {
    /// The predicted class label.
    pub fn label(&self) -> i32 {
        self.label
    }

    /// Index of the predicted class in [`Forest::classes`].
    pub fn class_index(&self) -> usize {
        self.winner
    }

    /// Vote share of the predicted class.
    pub fn confidence(&self) -> f64 {
        f64::from(self.counts[self.winner]) / f64::from(self.n_trees)
    }

    /// Vote share of every class, in the forest's class order.
    pub fn probabilities(&self) -> impl Iterator<Item = f64> + '_ {
        let n = f64::from(self.n_trees);
        self.counts.iter().map(move |&c| f64::from(c) / n)
    }
}

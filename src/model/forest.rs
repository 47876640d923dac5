//! A random forest compiled for inference.
//!
//! smartcore stays the training library and the reference; at load time its trees are
//! copied into contiguous arrays (trees back to back) so scoring walks plain indices instead
//! of nested structs. Three walks share them: leaf masks over eight rows with AVX-512
//! (module `leaf_masks`, the fastest), a portable lock-step walk over eight rows, and a branchy
//! walk for single rows. The voting rule is smartcore's: each tree casts one vote, the class
//! with most votes wins and ties go to the lowest class index.

use serde::Deserialize;
use smartcore::linalg::basic::matrix::DenseMatrix;

use crate::error::{Error, Result};

mod leaf_masks;
pub use leaf_masks::Kernel;
use leaf_masks::LeafMasks;

/// smartcore's forest with the types driftwood trains: `f64` features, `i32` labels.
pub type SmartcoreForest = smartcore::ensemble::random_forest_classifier::RandomForestClassifier<
    f64,
    i32,
    DenseMatrix<f64>,
    Vec<i32>,
>;

pub(crate) use super::ensemble::{LEAF, Node};
use super::ensemble::{Laid, lay_out_tree};

/// The flattened forest: every tree's nodes, breadth first, trees back to back.
#[derive(Debug, Clone)]
pub struct Forest {
    n_features: usize,
    classes: Vec<i32>,
    tree_roots: Vec<u32>,
    nodes: Vec<Node>,
    lockstep: Lockstep,
    /// Present when every tree fits a mask word (the CPU decides whether it is used).
    leaf_masks: Option<LeafMasks>,
    /// The walk [`Forest::score_batch`] takes for two rows or more.
    best: Walk,
}

/// A way of scoring a batch. All give smartcore's votes exactly; they differ in speed and in
/// what they need (see [`Forest::walks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// Leaf masks over eight rows at once, with a vector kernel.
    LeafMasks(Kernel),
    /// Eight rows in lock step, branch free; the rest one at a time. Runs anywhere.
    LockStep,
    /// One row at a time, every tree in turn, branching at each split. Runs anywhere.
    Branchy,
}

/// Rows walked together, branch-free, by [`Forest::score_batch`].
const LOCKSTEP_ROWS: usize = 8;

/// The same trees for walking [`LOCKSTEP_ROWS`] rows in lock step without branches: every
/// row takes exactly `depth[tree]` steps, `next = children + !(x <= threshold)`. A leaf
/// points at its class's sink pair, whose two nodes point back at the pair, so a row that
/// reaches a leaf early stays on its class. The rows are independent, so the CPU overlaps
/// their loads instead of waiting on one chain or recovering from mispredicted branches.
#[derive(Debug, Clone, Default)]
struct Lockstep {
    nodes: Vec<Node>,
    /// Class index of every leaf and sink (unused for splits).
    class: Vec<u32>,
    /// Steps each tree needs: the depth of its deepest leaf.
    depth: Vec<u32>,
}

impl Lockstep {
    fn build(nodes: &[Node], roots: &[u32], n_classes: usize) -> Self {
        let sinks = nodes.len() as u32;
        let mut out = Lockstep {
            nodes: Vec::with_capacity(nodes.len() + 2 * n_classes),
            class: vec![0; nodes.len() + 2 * n_classes],
            depth: Vec::with_capacity(roots.len()),
        };
        for (i, node) in nodes.iter().enumerate() {
            out.nodes.push(if node.feature == LEAF {
                out.class[i] = node.children;
                Node {
                    threshold: 0.0,
                    feature: 0,
                    children: sinks + 2 * node.children,
                }
            } else {
                *node
            });
        }
        for c in 0..n_classes as u32 {
            for k in 0..2 {
                out.class[(sinks + 2 * c + k) as usize] = c;
                out.nodes.push(Node {
                    threshold: 0.0,
                    feature: 0,
                    children: sinks + 2 * c,
                });
            }
        }
        for &root in roots {
            let mut deepest = 0;
            let mut stack = vec![(root, 0u32)];
            while let Some((i, d)) = stack.pop() {
                let node = nodes[i as usize];
                if node.feature == LEAF {
                    deepest = deepest.max(d);
                } else {
                    stack.push((node.children, d + 1));
                    stack.push((node.children + 1, d + 1));
                }
            }
            out.depth.push(deepest);
        }
        out
    }
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
            nodes: Vec::with_capacity(total),
            lockstep: Lockstep::default(),
            leaf_masks: None,
            best: Walk::LockStep,
        };
        for (t, tree) in trees.iter().enumerate() {
            forest
                .lay_out(tree)
                .map_err(|(n, what)| invalid(format!("tree {t} node {n}: {what}")))?;
        }
        forest.lockstep = Lockstep::build(&forest.nodes, &forest.tree_roots, forest.classes.len());
        forest.leaf_masks = LeafMasks::build(
            &forest.nodes,
            &forest.tree_roots,
            n_features,
            forest.classes.len(),
        );
        forest.best = forest.walks()[0];
        Ok(forest)
    }

    /// Appends `tree` (see [`lay_out_tree`]). Fails with the source node and what is wrong
    /// with it.
    fn lay_out(&mut self, tree: &SerializedTree) -> std::result::Result<(), (usize, String)> {
        let (n_features, n_classes) = (self.n_features, self.classes.len());
        let root = lay_out_tree(&mut self.nodes, tree.nodes.len(), |source| {
            let node = &tree.nodes[source];
            match (node.true_child, node.false_child) {
                (Some(_), Some(_)) if node.split_feature >= n_features => {
                    Err("split on a feature the model does not have".into())
                }
                (Some(yes), Some(no)) => Ok(Laid::Split {
                    // smartcore compares against NaN when a split has no value: never true.
                    threshold: node.split_value.unwrap_or(f64::NAN),
                    feature: node.split_feature as u32,
                    yes,
                    no,
                }),
                _ if node.output >= n_classes => Err("leaf class out of range".into()),
                _ => Ok(Laid::Leaf(Node {
                    threshold: f64::NAN,
                    feature: LEAF,
                    children: node.output as u32,
                })),
            }
        })?;
        self.tree_roots.push(root);
        Ok(())
    }

    /// The trees in the general engine's terms, for export: splits `x <= t` with NaN to the
    /// false side, leaves that cast one vote (value 1) for their class.
    pub fn tree_nodes(&self) -> Vec<Vec<crate::model::ensemble::TreeNode>> {
        use crate::model::ensemble::{Comparison, TreeNode};
        let ends = self.tree_roots[1..]
            .iter()
            .copied()
            .chain([self.nodes.len() as u32]);
        self.tree_roots
            .iter()
            .zip(ends)
            .map(|(&root, end)| {
                self.nodes[root as usize..end as usize]
                    .iter()
                    .map(|n| match n.feature {
                        LEAF => TreeNode::Leaf(vec![(n.children as usize, 1.0)]),
                        feature => TreeNode::Split {
                            feature: feature as usize,
                            comparison: Comparison::Leq,
                            threshold: n.threshold,
                            true_child: (n.children - root) as usize,
                            false_child: (n.children - root) as usize + 1,
                            missing_true: false,
                        },
                    })
                    .collect()
            })
            .collect()
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
    #[inline]
    fn tree_vote(&self, root: u32, row: &[f64]) -> usize {
        super::ensemble::branchy_leaf(&self.nodes, root, row)
    }

    /// Scores `rows` (row-major, `n_features` values each) and writes each row's vote counts,
    /// one per class, into `votes` (cleared first). Read them with [`Forest::votes`].
    ///
    /// Takes the fastest of [`Forest::walks`], except that a single row takes the branchy
    /// walk: padded to a block of eight, leaf masks are slower (1.0 µs against 0.7).
    pub fn score_batch(&self, rows: &[f64], votes: &mut Vec<u32>) {
        let walk = if rows.len() > self.n_features {
            self.best
        } else {
            Walk::Branchy
        };
        self.score_batch_with(walk, rows, votes);
    }

    /// The walks this forest can take on this machine, fastest first. Leaf masks need a
    /// supported CPU ([`Kernel::supported`]), trees of at most 64 leaves (32 for
    /// [`Kernel::Avx512Narrow`]) and at most 8 classes.
    pub fn walks(&self) -> Vec<Walk> {
        let kernels = Kernel::ALL.into_iter().filter(|k| k.supported());
        self.leaf_masks
            .iter()
            .flat_map(|masks| {
                kernels
                    .clone()
                    .filter(|&k| masks.fits(k))
                    .map(Walk::LeafMasks)
            })
            .chain([Walk::LockStep, Walk::Branchy])
            .collect()
    }

    /// [`Forest::score_batch`] with a chosen walk, for tests and benchmarks.
    ///
    /// # Panics
    /// If `walk` is not in [`Forest::walks`].
    pub fn score_batch_with(&self, walk: Walk, rows: &[f64], votes: &mut Vec<u32>) {
        let n_classes = self.classes.len();
        let n_rows = rows.len() / self.n_features;
        votes.clear();
        votes.resize(n_rows * n_classes, 0);
        match walk {
            Walk::LeafMasks(kernel) => self
                .leaf_masks
                .as_ref()
                .expect("leaf masks need trees of at most 64 leaves and at most 8 classes")
                .score(kernel, rows, votes),
            Walk::LockStep => self.score_lockstep_batch(rows, votes),
            Walk::Branchy => {
                for (row, row_votes) in rows
                    .chunks_exact(self.n_features)
                    .zip(votes.chunks_exact_mut(n_classes))
                {
                    for &root in &self.tree_roots {
                        row_votes[self.tree_vote(root, row)] += 1;
                    }
                }
            }
        }
    }

    /// Blocks of eight rows in lock step, then the remainder one row at a time. Trees are the
    /// outer loop and rows the inner one, so one tree's nodes stay in cache while the batch
    /// walks it.
    fn score_lockstep_batch(&self, rows: &[f64], votes: &mut [u32]) {
        let n_classes = self.classes.len();
        let n_rows = rows.len() / self.n_features;
        let whole = n_rows / LOCKSTEP_ROWS * LOCKSTEP_ROWS;
        let (block_rows, rest_rows) = rows.split_at(whole * self.n_features);
        let (block_votes, rest_votes) = votes.split_at_mut(whole * n_classes);
        for (rows, votes) in block_rows
            .chunks_exact(LOCKSTEP_ROWS * self.n_features)
            .zip(block_votes.chunks_exact_mut(LOCKSTEP_ROWS * n_classes))
        {
            self.score_lockstep(rows, votes);
        }
        for &root in &self.tree_roots {
            for (row, row_votes) in rest_rows
                .chunks_exact(self.n_features)
                .zip(rest_votes.chunks_exact_mut(n_classes))
            {
                row_votes[self.tree_vote(root, row)] += 1;
            }
        }
    }

    /// Scores exactly [`LOCKSTEP_ROWS`] rows, adding to their vote counts.
    fn score_lockstep(&self, rows: &[f64], votes: &mut [u32]) {
        let (nf, nc) = (self.n_features, self.classes.len());
        let lock = &self.lockstep;
        for (&root, &depth) in self.tree_roots.iter().zip(&lock.depth) {
            let mut at = [root; LOCKSTEP_ROWS];
            for _ in 0..depth {
                for (k, i) in at.iter_mut().enumerate() {
                    let node = lock.nodes[*i as usize];
                    let x = rows[k * nf + node.feature as usize];
                    // Not `x > threshold`: a NaN must go to the false child, as in smartcore.
                    #[allow(clippy::neg_cmp_op_on_partial_ord)]
                    let right = !(x <= node.threshold);
                    *i = node.children + u32::from(right);
                }
            }
            for (k, &i) in at.iter().enumerate() {
                votes[k * nc + lock.class[i as usize] as usize] += 1;
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

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use smartcore::linalg::basic::matrix::DenseMatrix;

    use super::{Forest, Kernel, Walk};
    use crate::model::Model;
    use crate::model::artifact::load_reference;
    use crate::model::dataset::Dataset;

    /// Random rows around and beyond the data's range, exact split thresholds (where `<=`
    /// matters) and NaNs give the same label as smartcore, in every walk and batch size.
    #[test]
    fn randomized_rows_score_exactly_like_smartcore() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/breast-cancer/1");
        let model = Model::load(&dir).unwrap();
        let (_, reference) = load_reference(&dir).unwrap();
        let data = Dataset::breast_cancer();
        let n = data.feature_names.len();
        let (lo, hi): (Vec<f64>, Vec<f64>) = (0..n)
            .map(|f| {
                let col = data.rows.iter().map(|r| r[f]);
                (
                    col.clone().fold(f64::MAX, f64::min),
                    col.fold(f64::MIN, f64::max),
                )
            })
            .unzip();
        let thresholds: Vec<f64> = model
            .engine
            .forest()
            .expect("a trained forest")
            .nodes
            .iter()
            .map(|n| n.threshold)
            .filter(|t| t.is_finite())
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1234);
        let rows: Vec<Vec<f64>> = (0..3003)
            .map(|i| {
                (0..n)
                    .map(|f| match i % 4 {
                        0 => rng.random_range(lo[f]..=hi[f]),
                        1 => rng.random_range((lo[f] - (hi[f] - lo[f]))..=(hi[f] * 2.0)),
                        2 => thresholds[rng.random_range(0..thresholds.len())],
                        // A missing value in one feature out of five.
                        _ if rng.random_range(0..5) == 0 => f64::NAN,
                        _ => rng.random_range(lo[f]..=hi[f]),
                    })
                    .collect()
            })
            .collect();
        let expected = reference
            .predict(&DenseMatrix::from_2d_vec(&rows).unwrap())
            .unwrap();
        let flat = rows.concat();
        let forest = &model.engine.forest().expect("a trained forest");
        let n_classes = forest.classes().len();
        let kernels = Kernel::ALL.iter().filter(|k| k.supported()).count();
        assert_eq!(
            forest.walks().len(),
            kernels + 2,
            "the bundled trees are small enough for leaf masks wherever a kernel runs"
        );
        let mut votes = Vec::new();
        for walk in forest.walks() {
            // Every batch size up to two blocks, so padding and remainders are covered.
            for size in 1..=17 {
                for (chunk, want) in flat.chunks(size * n).zip(expected.chunks(size)) {
                    assert_eq!(
                        labels(forest, Some(walk), chunk, &mut votes),
                        want,
                        "{walk:?}, batch size {size}"
                    );
                }
            }
            assert_eq!(labels(forest, Some(walk), &flat, &mut votes), expected);
            for v in votes.chunks_exact(n_classes) {
                let v = forest.votes(v);
                let shares: Vec<f64> = v.probabilities().collect();
                assert_eq!(v.confidence(), shares[v.class_index()]);
                assert!(shares.iter().all(|&s| s <= v.confidence()));
            }
            // A trailing partial row is ignored, as by every walk.
            let partial = &flat[..11 * n + 3];
            assert_eq!(
                labels(forest, Some(walk), partial, &mut votes),
                expected[..11]
            );
        }
        for size in [1, 2, 64] {
            for (chunk, want) in flat.chunks(size * n).zip(expected.chunks(size)) {
                assert_eq!(labels(forest, None, chunk, &mut votes), want);
            }
        }
    }

    /// Labels of `rows` by `walk`, or by the forest's own choice with `None`.
    /// Rows at the thresholds of their own features, and a float64 step either side, or the
    /// threshold rounded to float32: values the 16-row kernel sees as ties in float32 and must
    /// settle in float64. Every walk gives smartcore's label.
    #[test]
    fn values_a_float32_step_from_a_threshold_score_exactly_like_smartcore() {
        let model = Model::open(None).unwrap();
        let (_, reference) = crate::model::artifact::bundled_reference().unwrap();
        let forest = model.engine.forest().expect("a trained forest");
        let n = forest.n_features();
        let mut at = vec![Vec::new(); n];
        for node in forest.nodes.iter().filter(|n| n.feature != super::LEAF) {
            at[node.feature as usize].push(node.threshold);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(77);
        let rows: Vec<Vec<f64>> = (0..2000)
            .map(|_| {
                at.iter()
                    .map(|ts| {
                        let t = ts[rng.random_range(0..ts.len())];
                        match rng.random_range(0..4) {
                            0 => t,
                            1 => t.next_up(),
                            2 => t.next_down(),
                            _ => f64::from(t as f32),
                        }
                    })
                    .collect()
            })
            .collect();
        let expected = reference
            .predict(&DenseMatrix::from_2d_vec(&rows).unwrap())
            .unwrap();
        let mut votes = Vec::new();
        for walk in forest.walks() {
            let got = labels(forest, Some(walk), &rows.concat(), &mut votes);
            assert_eq!(got, expected, "{walk:?}");
        }
    }

    fn labels(forest: &Forest, walk: Option<Walk>, rows: &[f64], votes: &mut Vec<u32>) -> Vec<i32> {
        match walk {
            Some(walk) => forest.score_batch_with(walk, rows, votes),
            None => forest.score_batch(rows, votes),
        }
        votes
            .chunks_exact(forest.classes().len())
            .map(|v| forest.votes(v).label())
            .collect()
    }

    /// Forests trained here: three classes (leaf masks, where the CPU allows) and five classes
    /// with deep trees of more than 64 leaves (the lock-step fallback) both match smartcore.
    #[test]
    fn other_class_counts_and_large_trees_score_exactly_like_smartcore() {
        use smartcore::ensemble::random_forest_classifier::RandomForestClassifierParameters;

        use super::SmartcoreForest;

        let mut rng = rand::rngs::StdRng::seed_from_u64(99);
        let n = 4;
        let rows: Vec<Vec<f64>> = (0..3000)
            .map(|_| (0..n).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        for (n_classes, max_depth, expect_masks) in [(3i32, 6u16, true), (5, 16, false)] {
            // Labels from the first two features plus noise, so deep trees keep splitting.
            let targets: Vec<i32> = rows
                .iter()
                .map(|r| {
                    let noise = rng.random_range(-0.3..0.3);
                    (((r[0] + r[1] + noise + 2.6) / 5.2 * f64::from(n_classes)) as i32)
                        .clamp(0, n_classes - 1)
                })
                .collect();
            let reference = SmartcoreForest::fit(
                &DenseMatrix::from_2d_vec(&rows[..2000].to_vec()).unwrap(),
                &targets[..2000].to_vec(),
                RandomForestClassifierParameters::default()
                    .with_n_trees(20)
                    .with_max_depth(max_depth)
                    .with_seed(7),
            )
            .unwrap();
            let forest = Forest::compile(&reference, n).unwrap();
            assert_eq!(forest.classes().len(), n_classes as usize);
            let kernels = Kernel::ALL.iter().filter(|k| k.supported()).count();
            assert_eq!(
                forest.walks().len(),
                2 + if expect_masks { kernels } else { 0 },
                "{n_classes} classes, depth {max_depth}"
            );
            let mut test_rows = rows[2000..].to_vec();
            for row in test_rows.iter_mut().step_by(7) {
                row[rng.random_range(0..n)] = f64::NAN;
            }
            let expected = reference
                .predict(&DenseMatrix::from_2d_vec(&test_rows).unwrap())
                .unwrap();
            let mut votes = Vec::new();
            for walk in forest.walks() {
                let got = labels(&forest, Some(walk), &test_rows.concat(), &mut votes);
                assert_eq!(
                    got, expected,
                    "{walk:?}, {n_classes} classes, depth {max_depth}"
                );
            }
        }
    }
}

//! A random forest driftwood trained with smartcore, and the kernels that score majority
//! votes.
//!
//! smartcore stays the training library and the reference. At load its trees become a
//! general [`Ensemble`] whose leaves each cast one vote (value 1) for their class, under the
//! vote head (`Head::Vote`): smartcore's majority vote is one case of the general engine,
//! and the engine's own walks score it. For ensembles whose every leaf is such a vote, the
//! engine also builds a [`Forest`]: the same trees with leaves holding class indices, which
//! two faster walks read: leaf masks over eight or sixteen rows with AVX-512 or AVX2 (module
//! `leaf_masks`), and a portable lock-step walk over eight rows. The engine times them with
//! its own walks at load and serves batches with the fastest.

use serde::Deserialize;
use smartcore::linalg::basic::matrix::DenseMatrix;

use crate::error::{Error, Result};

mod leaf_masks;
pub use leaf_masks::Kernel;
use leaf_masks::LeafMasks;

use super::ensemble::{Aggregate, Comparison, Ensemble, Head, Labels, Precision, TreeNode};

/// smartcore's forest with the types driftwood trains: `f64` features, `i32` labels.
pub type SmartcoreForest = smartcore::ensemble::random_forest_classifier::RandomForestClassifier<
    f64,
    i32,
    DenseMatrix<f64>,
    Vec<i32>,
>;

pub(crate) use super::ensemble::{LEAF, Node};

/// A majority vote's trees laid out for the vote walks: the general engine's nodes, with
/// every leaf's `children` holding the class it votes for.
#[derive(Debug, Clone)]
pub struct Forest {
    n_features: usize,
    n_classes: usize,
    tree_roots: Vec<u32>,
    nodes: Vec<Node>,
    lockstep: Lockstep,
    /// Present when every tree fits a mask word (the CPU decides whether it is used).
    leaf_masks: Option<LeafMasks>,
}

/// A vote walk. Both give smartcore's votes exactly; they differ in speed and in what they
/// need (see [`Forest::walks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// Leaf masks over eight (or sixteen) rows at once, with a vector kernel.
    LeafMasks(Kernel),
    /// Eight rows in lock step, branch free; the rest one at a time. Runs anywhere.
    LockStep,
    /// One row at a time, every tree in turn, branching at each split; counting votes
    /// rather than adding leaf values (the fastest for single rows). Runs anywhere.
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

/// The general engine's form of a trained smartcore forest: its trees with float64 splits
/// `x <= t` (NaN to the false side, as smartcore compares), leaves of one vote for their
/// class, and the vote head over its class labels. smartcore keeps its nodes private, so they
/// are read through the forest's serde representation (once, at load time).
pub fn ensemble(model: &SmartcoreForest, n_features: usize) -> Result<Ensemble> {
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
    let trees: Vec<Vec<TreeNode>> = trees
        .iter()
        .map(|tree| {
            tree.nodes
                .iter()
                .map(|node| match (node.true_child, node.false_child) {
                    (Some(yes), Some(no)) => TreeNode::Split {
                        feature: node.split_feature,
                        comparison: Comparison::Leq,
                        // smartcore compares against NaN when a split has no value (never
                        // true); the engine refuses NaN thresholds, so this fails loudly.
                        threshold: node.split_value.unwrap_or(f64::NAN),
                        true_child: yes,
                        false_child: no,
                        missing_true: false,
                    },
                    _ => TreeNode::Leaf(vec![(node.output, 1.0)]),
                })
                .collect()
        })
        .collect();
    let labels = Labels::Int(classes.iter().map(|&c| i64::from(c)).collect());
    Ensemble::new(
        n_features,
        Precision::F64,
        &trees,
        Aggregate::Sum,
        Head::Vote { labels },
    )
}

impl Forest {
    /// The vote layout of laid-out trees (`nodes`, trees starting at `roots`), with
    /// `leaf_class` naming the class each leaf (by its `children` value) votes for; `None` when
    /// some leaf is not one vote for one class.
    pub(crate) fn build(
        nodes: &[Node],
        roots: &[u32],
        leaf_class: impl Fn(u32) -> Option<u32>,
        n_features: usize,
        n_classes: usize,
    ) -> Option<Self> {
        let nodes = nodes
            .iter()
            .map(|&node| match node.feature {
                LEAF => leaf_class(node.children).map(|class| Node {
                    children: class,
                    ..node
                }),
                _ => Some(node),
            })
            .collect::<Option<Vec<Node>>>()?;
        Some(Forest {
            n_features,
            n_classes,
            lockstep: Lockstep::build(&nodes, roots, n_classes),
            leaf_masks: LeafMasks::build(&nodes, roots, n_features, n_classes),
            tree_roots: roots.to_vec(),
            nodes,
        })
    }

    /// The class index one tree votes for.
    #[inline]
    fn tree_vote(&self, root: u32, row: &[f64]) -> usize {
        super::ensemble::branchy_leaf(&self.nodes, root, row)
    }

    /// The vote walks this forest can take on this machine. Leaf masks need a supported CPU
    /// ([`Kernel::supported`]), trees of at most 64 leaves (32 for [`Kernel::Avx512Narrow`])
    /// and at most 8 classes.
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

    /// Scores `rows` (row-major, `n_features` values each) with `walk` and writes each row's
    /// vote counts, one per class, into `votes` (cleared first).
    ///
    /// # Panics
    /// If `walk` is not in [`Forest::walks`].
    pub fn score_batch_with(&self, walk: Walk, rows: &[f64], votes: &mut Vec<u32>) {
        let n_rows = rows.len() / self.n_features;
        votes.clear();
        votes.resize(n_rows * self.n_classes, 0);
        match walk {
            Walk::LeafMasks(kernel) => self
                .leaf_masks
                .as_ref()
                .expect("leaf masks need trees of at most 64 leaves and at most 8 classes")
                .score(kernel, rows, votes),
            Walk::LockStep => self.score_lockstep_batch(rows, votes),
            Walk::Branchy => {
                let rows = rows.chunks_exact(self.n_features);
                for (row, row_votes) in rows.zip(votes.chunks_exact_mut(self.n_classes)) {
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
        let n_classes = self.n_classes;
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
        let (nf, nc) = (self.n_features, self.n_classes);
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
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use smartcore::linalg::basic::matrix::DenseMatrix;

    use super::Kernel;
    use crate::model::Model;
    use crate::model::artifact::load_reference;
    use crate::model::dataset::Dataset;
    use crate::model::ensemble::{Ensemble, EnsembleWalk, Labels, Workspace};

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
        let forest = model.engine.ensemble();
        let thresholds: Vec<f64> = (forest.vote_forest().expect("a vote layout").nodes)
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
        let kernels = Kernel::ALL.iter().filter(|k| k.supported()).count();
        assert_eq!(
            forest.walks().len(),
            // The engine's branchy walk, and the vote walks: lock step, branchy, leaf masks.
            kernels + 3,
            "the bundled trees are small enough for leaf masks wherever a kernel runs"
        );
        let mut work = Workspace::default();
        let (mut shares, mut classes) = (Vec::new(), Vec::new());
        for &walk in forest.walks() {
            // Every batch size up to two blocks and around two pairs of blocks, so padding and
            // remainders are covered.
            for size in (1..=17).chain([31, 32, 33, 47]) {
                for (chunk, want) in flat.chunks(size * n).zip(expected.chunks(size)) {
                    assert_eq!(
                        labels(forest, Some(walk), chunk, &mut work),
                        want,
                        "{walk:?}, batch size {size}"
                    );
                }
            }
            forest.predict_with(&mut work, walk, &flat, &mut shares, &mut classes);
            for (row, &class) in shares.chunks_exact(2).zip(&classes) {
                // Shares of 100 votes, computed in float64 as count / 100.
                let whole = |s: f64| (s * 100.0).round() / 100.0 == s;
                assert!(row.iter().all(|&s| whole(s)), "{walk:?}: {row:?}");
                assert!(row.iter().all(|&s| s <= row[class]), "{walk:?}: {row:?}");
                assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{row:?}");
            }
            assert_eq!(labels(forest, Some(walk), &flat, &mut work), expected);
            // A trailing partial row is ignored, as by every walk.
            let partial = &flat[..11 * n + 3];
            assert_eq!(
                labels(forest, Some(walk), partial, &mut work),
                expected[..11]
            );
        }
        for size in [1, 2, 64] {
            for (chunk, want) in flat.chunks(size * n).zip(expected.chunks(size)) {
                assert_eq!(labels(forest, None, chunk, &mut work), want);
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
        let forest = model.engine.ensemble();
        let n = forest.n_features();
        let mut at = vec![Vec::new(); n];
        let nodes = &forest.vote_forest().expect("a vote layout").nodes;
        for node in nodes.iter().filter(|n| n.feature != super::LEAF) {
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
        let mut work = Workspace::default();
        for &walk in forest.walks() {
            let got = labels(forest, Some(walk), &rows.concat(), &mut work);
            assert_eq!(got, expected, "{walk:?}");
        }
    }

    /// Labels of `rows` by `walk`, or by the ensemble's own choice with `None`.
    fn labels(
        forest: &Ensemble,
        walk: Option<EnsembleWalk>,
        rows: &[f64],
        work: &mut Workspace,
    ) -> Vec<i32> {
        let (mut scores, mut classes) = (Vec::new(), Vec::new());
        match walk {
            Some(walk) => forest.predict_with(work, walk, rows, &mut scores, &mut classes),
            None => forest.predict_in(work, rows, &mut scores, &mut classes),
        }
        let Some(Labels::Int(labels)) = forest.head().labels() else {
            panic!("integer labels")
        };
        classes.iter().map(|&c| labels[c] as i32).collect()
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
            let forest = super::ensemble(&reference, n).unwrap();
            assert_eq!(forest.n_columns(), n_classes as usize);
            let kernels = Kernel::ALL.iter().filter(|k| k.supported()).count();
            assert_eq!(
                forest.walks().len(),
                3 + if expect_masks { kernels } else { 0 },
                "{n_classes} classes, depth {max_depth}"
            );
            let mut test_rows = rows[2000..].to_vec();
            for row in test_rows.iter_mut().step_by(7) {
                row[rng.random_range(0..n)] = f64::NAN;
            }
            let expected = reference
                .predict(&DenseMatrix::from_2d_vec(&test_rows).unwrap())
                .unwrap();
            let mut work = Workspace::default();
            for &walk in forest.walks() {
                let got = labels(&forest, Some(walk), &test_rows.concat(), &mut work);
                assert_eq!(
                    got, expected,
                    "{walk:?}, {n_classes} classes, depth {max_depth}"
                );
            }
        }
    }
}

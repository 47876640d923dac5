//! The fast walk for float32 models: blocks of [`ROWS`] rows walk one tree at a time, in lock
//! step and without branches, over 8-byte nodes.
//!
//! A branchy walk waits on each node's load and then on the comparison's branch, which big
//! trees mispredict half the time. Here the rows of a block are independent, so the CPU
//! overlaps their loads, and `next = child + !(x <= t)` never branches. Trees are the outer
//! loop, so one tree's nodes stay in cache while the block walks it; each row still adds its
//! trees' values in tree order, as onnxruntime does, so the sums are bit for bit the same.
//!
//! A node is a float32 threshold and a word packing the feature (10 bits) and the index of
//! its first child within its tree (22 bits). A leaf compares a slot of the prepared row that
//! holds −∞ and points to itself, so a row that reached it stays; its threshold slot holds
//! its value when the tree writes one output column, which spares a second load.

use super::{Ensemble, LEAF, Node};

/// Rows walked together.
pub(super) const ROWS: usize = 16;
const FEATURE_BITS: u32 = 10;
const CHILD_BITS: u32 = 32 - FEATURE_BITS;
const CHILD_MASK: u32 = (1 << CHILD_BITS) - 1;

#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Node32 {
    /// The threshold, or a leaf's value when its tree writes one column.
    threshold: f32,
    /// `feature << CHILD_BITS | first child` (the leaf's own index for a leaf).
    packed: u32,
}

/// How a tree's leaves add to the sums.
#[derive(Debug, Clone, Copy)]
enum Values {
    /// Every leaf writes column `column` (at most): its value is in its threshold slot.
    Inline { column: u32 },
    /// Leaves write several columns: the ensemble's node of the same index names the leaf's
    /// row in the value table (the layouts number nodes alike).
    Table,
}

#[derive(Debug, Clone)]
struct Tree {
    start: u32,
    /// Steps from the root to the deepest leaf.
    depth: u32,
    values: Values,
}

/// The ensemble's trees in the compact layout.
#[derive(Debug, Clone)]
pub(super) struct Lockstep {
    nodes: Vec<Node32>,
    trees: Vec<Tree>,
    /// Prepared row width: the row's features (and negations), then the −∞ slot.
    width: usize,
}

impl Lockstep {
    /// The compact layout of `ensemble`, or `None` when it does not fit: a double model,
    /// more than 1,022 prepared features, or a tree of more than 4 million nodes.
    pub(super) fn build(ensemble: &Ensemble) -> Option<Self> {
        if ensemble.precision != super::Precision::F32 {
            return None;
        }
        let features = ensemble.n_features * if ensemble.negated { 2 } else { 1 };
        let leaf_slot = features as u32;
        if leaf_slot >= (1 << FEATURE_BITS) {
            return None;
        }
        let mut out = Lockstep {
            nodes: Vec::with_capacity(ensemble.nodes.len()),
            trees: Vec::with_capacity(ensemble.roots.len()),
            width: features + 1,
        };
        let ends = ensemble.roots[1..]
            .iter()
            .copied()
            .chain([ensemble.nodes.len() as u32]);
        for (&root, end) in ensemble.roots.iter().zip(ends) {
            let tree = &ensemble.nodes[root as usize..end as usize];
            if tree.len() as u64 > u64::from(CHILD_MASK) {
                return None;
            }
            out.add_tree(ensemble, root, tree, leaf_slot);
        }
        // A leaf keeps its rows because −∞ <= its value, which a NaN value would break.
        let nan_leaf = out.nodes.iter().any(|n| n.threshold.is_nan());
        (!nan_leaf).then_some(out)
    }

    fn add_tree(&mut self, ensemble: &Ensemble, root: u32, tree: &[Node], leaf_slot: u32) {
        let n_out = ensemble.n_outputs;
        let columns = |leaf: usize| {
            let values = &ensemble.leaf_values[leaf * n_out..][..n_out];
            values
                .iter()
                .enumerate()
                .filter(|(_, v)| **v != 0.0)
                .map(|(c, _)| c as u32)
        };
        let mut written: Vec<u32> = tree
            .iter()
            .filter(|n| n.feature == LEAF)
            .flat_map(|n| columns(n.children as usize))
            .collect();
        written.sort_unstable();
        written.dedup();
        let values = match written.as_slice() {
            [] => Values::Inline { column: 0 },
            [c] => Values::Inline { column: *c },
            _ => Values::Table,
        };
        let start = self.nodes.len() as u32;
        // Node indices match the ensemble's, which `score_block` relies on for leaf rows.
        debug_assert_eq!(start, root);
        for (i, node) in tree.iter().enumerate() {
            self.nodes.push(if node.feature == LEAF {
                let leaf = node.children as usize;
                let value = match values {
                    Values::Inline { column } => {
                        ensemble.leaf_values[leaf * n_out + column as usize]
                    }
                    Values::Table => 0.0,
                };
                Node32 {
                    threshold: value,
                    packed: leaf_slot << CHILD_BITS | i as u32,
                }
            } else {
                Node32 {
                    // Exact: a float model's thresholds are float32 values.
                    threshold: node.threshold as f32,
                    packed: node.feature << CHILD_BITS | (node.children - root),
                }
            });
        }
        self.trees.push(Tree {
            start,
            depth: depth(tree, root),
            values,
        });
    }

    /// Adds every tree's values to `sums` (`n_out` per row) for `block`, prepared rows of
    /// [`Lockstep::width`] values each (at most [`ROWS`] of them).
    pub(super) fn score_block(&self, ensemble: &Ensemble, block: &[f32], sums: &mut [f32]) {
        let n = block.len() / self.width;
        let n_out = ensemble.n_outputs;
        assert!(n <= ROWS && block.len() == n * self.width);
        let mut at = [0u32; ROWS];
        for tree in &self.trees {
            let nodes = &self.nodes[tree.start as usize..];
            at.fill(0);
            if n == ROWS {
                // SAFETY: `block` holds ROWS rows (asserted above); see `walk`.
                unsafe { walk::<ROWS>(nodes, block, self.width, tree.depth, &mut at) };
            } else {
                for r in 0..n {
                    let row = &block[r * self.width..][..self.width];
                    // SAFETY: `row` is one row; see `walk`.
                    unsafe {
                        walk::<1>(
                            nodes,
                            row,
                            self.width,
                            tree.depth,
                            (&mut at[r..r + 1]).try_into().expect("one"),
                        )
                    };
                }
            }
            for (r, &i) in at[..n].iter().enumerate() {
                let row_sums = &mut sums[r * n_out..][..n_out];
                match tree.values {
                    Values::Inline { column } => {
                        row_sums[column as usize] += nodes[i as usize].threshold;
                    }
                    Values::Table => {
                        let node = ensemble.nodes[tree.start as usize + i as usize];
                        let leaf = node.children as usize;
                        let values = &ensemble.leaf_values[leaf * n_out..][..n_out];
                        for (s, &v) in row_sums.iter_mut().zip(values) {
                            *s += v;
                        }
                    }
                }
            }
        }
    }
}

/// Walks `R` rows of `block` (`width` values each) `depth` steps down the tree `nodes`
/// starts with, from the node indices in `at`.
///
/// # Safety
/// `block` must hold `R * width` values. The tree must come from [`Lockstep::build`], which
/// makes every child index point into the tree and every feature index (the leaf slot
/// included) less than `width`; so no index here can be out of bounds, and the checks are
/// left out of the innermost loop.
#[inline(always)]
unsafe fn walk<const R: usize>(
    nodes: &[Node32],
    block: &[f32],
    width: usize,
    depth: u32,
    at: &mut [u32; R],
) {
    debug_assert_eq!(block.len(), R * width);
    for _ in 0..depth {
        // A step that moves no row means every row sits on its leaf: deep, unbalanced trees
        // (scikit-learn's default) stop long before their deepest leaf.
        let mut moved = false;
        for (r, i) in at.iter_mut().enumerate() {
            // SAFETY: see the function's contract.
            let node = unsafe { *nodes.get_unchecked(*i as usize) };
            let feature = (node.packed >> CHILD_BITS) as usize;
            let x = unsafe { *block.get_unchecked(r * width + feature) };
            // Not `x > t`: NaN must take the false side.
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            let right = !(x <= node.threshold);
            let next = (node.packed & CHILD_MASK) + u32::from(right);
            moved |= next != *i;
            *i = next;
        }
        if !moved {
            break;
        }
    }
}

/// Steps from `root` to the deepest leaf of `tree` (nodes indexed from `root`).
fn depth(tree: &[Node], root: u32) -> u32 {
    let mut deepest = 0;
    let mut stack = vec![(0u32, 0u32)];
    while let Some((i, d)) = stack.pop() {
        let node = tree[i as usize];
        if node.feature == LEAF {
            deepest = deepest.max(d);
        } else {
            let child = node.children - root;
            stack.extend([(child, d + 1), (child + 1, d + 1)]);
        }
    }
    deepest
}

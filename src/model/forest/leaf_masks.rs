//! Eight rows scored at once with vector instructions (AVX-512 or AVX2), by leaf masks
//! (QuickScorer, Lucchese et al., SIGIR 2015), so no walk waits on a load.
//!
//! Number every tree's leaves left to right (the `<=` side first). A split whose test fails
//! rules out every leaf of its `<=` subtree; the leaf a row reaches is the leftmost one that
//! no failed split ruled out. So a tree is scored by AND-ing, for each of its splits that
//! fails, a mask that clears that subtree's leaves, then taking the lowest set bit. Splits are
//! independent of each other, and with the eight rows transposed into feature-major order each
//! split is one vector compare of a feature's eight values against a broadcast threshold and
//! one masked AND: no gathers, no branches, no chain of dependent loads.
//!
//! Trees of up to 64 leaves fit one mask word; trees of up to 32 also take the 16-row kernel
//! of module `narrow`. The bundled model's largest has 22; a forest
//! with a bigger tree, or more than [`MAX_CLASSES`] classes, uses the lock-step walk instead.
//!
//! Two kernels, picked at run time by [`Kernel::supported`]: AVX-512 intrinsics (a split is
//! one compare into a mask register and one masked AND), and plain Rust that LLVM vectorizes
//! when compiled for AVX2. Measured by `benches/model.rs` at batch 64: 124 and 168 ns/row,
//! against 453 for the lock-step walk and 1,635 for smartcore. The plain-Rust kernel compiled
//! for AVX-512 took 181 ns/row and for baseline x86-64 (SSE2) 526, slower than lock step, so
//! neither is offered. Each class's vote count stays in a register across trees; counting in
//! memory chained every tree to the previous tree's store and cost 35% more.

use super::{LEAF, Node};

mod narrow;

/// Rows per block: eight `f64` fill one 512-bit register.
pub(super) const LANES: usize = 8;

/// Most classes the kernels keep in registers (one per class).
const MAX_CLASSES: usize = 8;

/// One split: its test and the leaves it rules out. One array of these, rather than one per
/// field, leaves the kernels a single base pointer to keep in a register.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Split {
    threshold: f64,
    /// The leaves that survive when the test fails (`!(x <= threshold)`, NaN included).
    keep: u64,
    /// Offset of the split's feature in a transposed block: feature index times LANES.
    offset: u32,
}

/// The forest as independent splits, each carrying the mask of the leaves it rules out.
#[derive(Debug, Clone)]
pub(super) struct LeafMasks {
    n_features: usize,
    n_classes: usize,
    /// Every tree's splits, trees back to back.
    splits: Vec<Split>,
    /// Splits of tree `t` are `tree_starts[t]..tree_starts[t + 1]`.
    tree_starts: Vec<u32>,
    /// Leaves of tree `t` that vote for class `c`: `class_leaves[t * n_classes + c]`.
    class_leaves: Vec<u64>,
    /// The 32-bit form for [`Kernel::Avx512Narrow`], when every tree fits it.
    narrow: Option<narrow::NarrowMasks>,
}

impl LeafMasks {
    /// Builds the masks, or `None` when a tree has more than 64 leaves, there are more than
    /// [`MAX_CLASSES`] classes, or a split reads a feature beyond `n_features`.
    pub(super) fn build(
        nodes: &[Node],
        roots: &[u32],
        n_features: usize,
        n_classes: usize,
    ) -> Option<Self> {
        if n_classes > MAX_CLASSES {
            return None;
        }
        let mut masks = LeafMasks {
            n_features,
            n_classes,
            splits: Vec::new(),
            tree_starts: vec![0],
            class_leaves: Vec::with_capacity(roots.len() * n_classes),
            narrow: None,
        };
        for &root in roots {
            let mut classes = vec![0u64; n_classes];
            let mut next_leaf = 0u32;
            masks.add_subtree(nodes, root, &mut next_leaf, &mut classes)?;
            masks.class_leaves.extend(classes);
            masks.tree_starts.push(masks.splits.len() as u32);
        }
        masks.narrow = narrow::NarrowMasks::build(&masks);
        Some(masks)
    }

    /// Whether `kernel` can score this forest (the CPU aside).
    pub(super) fn fits(&self, kernel: Kernel) -> bool {
        kernel != Kernel::Avx512Narrow || self.narrow.is_some()
    }

    /// Adds the splits under `node` and numbers its leaves from `next_leaf`; returns the mask
    /// of those leaves.
    fn add_subtree(
        &mut self,
        nodes: &[Node],
        node: u32,
        next_leaf: &mut u32,
        classes: &mut [u64],
    ) -> Option<u64> {
        let n = nodes[node as usize];
        if n.feature == LEAF {
            if *next_leaf >= 64 {
                return None;
            }
            let bit = 1u64 << *next_leaf;
            *next_leaf += 1;
            classes[n.children as usize] |= bit;
            return Some(bit);
        }
        // The AVX-512 kernel loads at `offset` unchecked: enforce the bound here.
        if n.feature as usize >= self.n_features {
            return None;
        }
        let split = self.splits.len();
        self.splits.push(Split {
            threshold: n.threshold,
            keep: u64::MAX,
            offset: n.feature * LANES as u32,
        });
        let true_side = self.add_subtree(nodes, n.children, next_leaf, classes)?;
        let false_side = self.add_subtree(nodes, n.children + 1, next_leaf, classes)?;
        self.splits[split].keep = !true_side;
        Some(true_side | false_side)
    }

    /// Scores `rows` (row-major) with `kernel` and writes each row's vote counts into `votes`,
    /// which holds `n_classes` counts per row.
    ///
    /// # Panics
    /// If this CPU cannot run `kernel`.
    pub(super) fn score(&self, kernel: Kernel, rows: &[f64], votes: &mut [u32]) {
        assert!(
            kernel.supported(),
            "{kernel:?} needs CPU features this machine lacks"
        );
        if kernel == Kernel::Avx512Narrow {
            return self.score_narrow(rows, votes);
        }
        let (nf, nc) = (self.n_features, self.n_classes);
        // Whole rows only, as the other walks: a trailing partial row gets no votes.
        let rows = &rows[..rows.len() / nf * nf];
        let mut block = vec![0.0; nf * LANES];
        let mut counts = vec![0u64; nc * LANES];
        for (rows, votes) in rows.chunks(nf * LANES).zip(votes.chunks_mut(nc * LANES)) {
            let n = rows.len() / nf;
            // Feature-major, padding a short block with copies of its last row.
            for (f, lanes) in block.chunks_exact_mut(LANES).enumerate() {
                for (k, x) in lanes.iter_mut().enumerate() {
                    *x = rows[k.min(n - 1) * nf + f];
                }
            }
            // SAFETY: the CPU has the kernel's features (asserted above).
            unsafe { self.score_block(kernel, &block, &mut counts) };
            for (k, row_votes) in votes.chunks_exact_mut(nc).enumerate() {
                for (c, v) in row_votes.iter_mut().enumerate() {
                    *v = counts[c * LANES + k] as u32;
                }
            }
        }
    }

    /// Writes the votes of every tree for one transposed block to `counts` (class-major:
    /// `counts[c * LANES + k]` is row `k`'s votes for class `c`).
    ///
    /// # Safety
    /// The CPU must have `kernel`'s features.
    unsafe fn score_block(&self, kernel: Kernel, block: &[f64], counts: &mut [u64]) {
        assert_eq!(block.len(), self.n_features * LANES);
        assert_eq!(counts.len(), self.n_classes * LANES);
        // One kernel per class count keeps every count in a register.
        macro_rules! for_classes {
            ($($n:literal)*) => {
                match (kernel, self.n_classes) {
                    $(
                        #[cfg(target_arch = "x86_64")]
                        (Kernel::Avx512, $n) => unsafe { self.avx512::<$n>(block, counts) },
                        #[cfg(target_arch = "x86_64")]
                        (Kernel::Avx2, $n) => unsafe { self.avx2::<$n>(block, counts) },
                    )*
                    (kernel, n) => unreachable!("no 8-row {kernel:?} kernel for {n} classes"),
                }
            };
        }
        for_classes!(1 2 3 4 5 6 7 8)
    }

    /// Each tree's splits and its leaf masks per class (`CLASSES` is `n_classes`).
    fn trees<const CLASSES: usize>(&self) -> impl Iterator<Item = (&[Split], &[u64; CLASSES])> {
        self.tree_starts
            .windows(2)
            .zip(self.class_leaves.chunks_exact(CLASSES))
            .map(|(bounds, classes)| {
                (
                    &self.splits[bounds[0] as usize..bounds[1] as usize],
                    classes.try_into().expect("CLASSES leaf masks per tree"),
                )
            })
    }

    /// The plain-Rust kernel compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2<const CLASSES: usize>(&self, block: &[f64], counts: &mut [u64]) {
        self.portable::<CLASSES>(block, counts)
    }

    /// Eight lanes written out as arrays; fast only where LLVM can turn each lane loop into
    /// vector instructions (see the module's measurements).
    #[inline(always)]
    fn portable<const CLASSES: usize>(&self, block: &[f64], counts: &mut [u64]) {
        let mut accs = [[0u64; LANES]; CLASSES];
        for (splits, classes) in self.trees::<CLASSES>() {
            let mut alive = [u64::MAX; LANES];
            for split in splits {
                let at = split.offset as usize;
                let x: &[f64; LANES] = block[at..at + LANES].try_into().expect("LANES values");
                for (alive, &x) in alive.iter_mut().zip(x) {
                    // All ones where the test holds; it fails for NaN too, as in smartcore.
                    // Bit arithmetic rather than `if`: written as a choice, LLVM compiled it
                    // to a branch per lane (20 times slower on rows it cannot predict).
                    let holds = u64::from(x <= split.threshold).wrapping_neg();
                    *alive &= split.keep | holds;
                }
            }
            // The lowest surviving leaf is the one each row reaches. Lanes inner, so each
            // loop is one vector operation.
            let reached = alive.map(|a| a & a.wrapping_neg());
            for (acc, &leaves) in accs.iter_mut().zip(classes) {
                for (count, &reached) in acc.iter_mut().zip(&reached) {
                    *count += u64::from(reached & leaves != 0);
                }
            }
        }
        for (acc, lanes) in accs.iter().zip(counts.chunks_exact_mut(LANES)) {
            lanes.copy_from_slice(acc);
        }
    }

    /// The intrinsics kernel: one compare into a mask register and one masked AND per split.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512<const CLASSES: usize>(&self, block: &[f64], counts: &mut [u64]) {
        use std::arch::x86_64::*;
        let ones = _mm512_set1_epi64(-1);
        let mut accs = [_mm512_setzero_si512(); CLASSES];
        for (splits, classes) in self.trees::<CLASSES>() {
            let mut alive = ones;
            for split in splits {
                // SAFETY: `build` made every offset a feature below `n_features` times LANES,
                // and the block holds LANES values per feature (asserted by `score_block`).
                let x = unsafe { _mm512_loadu_pd(block.as_ptr().add(split.offset as usize)) };
                // NLE_UQ is `!(x <= threshold)`: true for NaN, as smartcore sends NaN to the
                // false side.
                let failed = _mm512_cmp_pd_mask::<_CMP_NLE_UQ>(x, _mm512_set1_pd(split.threshold));
                let keep = _mm512_set1_epi64(split.keep as i64);
                alive = _mm512_mask_and_epi64(alive, failed, alive, keep);
            }
            // The lowest surviving leaf is the one each row reaches.
            let reached = _mm512_and_si512(alive, _mm512_sub_epi64(_mm512_setzero_si512(), alive));
            for (acc, &leaves) in accs.iter_mut().zip(classes) {
                let votes_for = _mm512_test_epi64_mask(reached, _mm512_set1_epi64(leaves as i64));
                *acc = _mm512_mask_sub_epi64(*acc, votes_for, *acc, ones);
            }
        }
        for (acc, lanes) in accs.iter().zip(counts.chunks_exact_mut(LANES)) {
            // SAFETY: `lanes` is LANES u64s long (chunks_exact).
            unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), *acc) };
        }
    }
}

/// The vector instruction sets a leaf-mask kernel exists for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// AVX-512F intrinsics over sixteen rows: 32-bit leaf masks, features compared as
    /// float32 with ties settled in float64 (trees of at most 32 leaves; module `narrow`).
    Avx512Narrow,
    /// AVX-512F intrinsics.
    Avx512,
    /// Plain Rust compiled for AVX2.
    Avx2,
}

impl Kernel {
    /// Every kernel, fastest first.
    pub const ALL: [Kernel; 3] = [Kernel::Avx512Narrow, Kernel::Avx512, Kernel::Avx2];

    /// Whether this CPU can run the kernel (detected once, then cached by std).
    pub fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Kernel::Avx512 | Kernel::Avx512Narrow => std::is_x86_feature_detected!("avx512f"),
                Kernel::Avx2 => std::is_x86_feature_detected!("avx2"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

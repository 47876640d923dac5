//! Sixteen rows at once with AVX-512, for forests whose trees have at most 32 leaves (the
//! bundled model's largest has 22): leaf masks in 32-bit lanes, features compared as float32.
//!
//! A 512-bit register holds sixteen 32-bit masks, so one masked AND serves sixteen rows
//! where the 64-bit kernel serves eight. The comparison must still be smartcore's, in
//! float64, and it is: rounding to float32 keeps order, so `x32 < t32` implies `x <= t` and
//! `x32 > t32` implies `x > t`. Only `x32 == t32` leaves it open (the row's value is within a
//! float32 step of the threshold), and then the rows' own float64 values decide.

use super::{LeafMasks, Split};

/// Rows per block.
pub(super) const LANES: usize = 16;

/// One split for this kernel, in 12 bytes: the bundled forest's 2,100 splits fit the L1
/// cache (at 24 bytes, with the float64 threshold, they did not). Ties read the float64
/// threshold from the 64-bit kernel's split of the same index.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Narrow {
    /// The threshold rounded to float32.
    t32: f32,
    /// The leaves that survive when the test fails, in 32 bits.
    keep: u32,
    /// Offset of the split's feature in a transposed block: feature index times LANES.
    offset: u32,
}

/// The forest's splits in 32-bit form.
#[derive(Debug, Clone)]
pub(super) struct NarrowMasks {
    splits: Vec<Narrow>,
    /// Leaves of tree `t` that vote for class `c`, in 32 bits.
    class_leaves: Vec<u32>,
}

impl NarrowMasks {
    /// The 32-bit form of `masks`, or `None` when a tree has more than 32 leaves.
    pub(super) fn build(masks: &LeafMasks) -> Option<Self> {
        let fits = |m: u64| m >> 32 == 0 || m >> 32 == 0xFFFF_FFFF;
        // A tree with ≤ 32 leaves uses bits 0..32 only: its class masks have no high bits,
        // and its keep masks have all high bits set (they clear low bits only).
        if !masks.class_leaves.iter().all(|&m| m >> 32 == 0) {
            return None;
        }
        if !masks.splits.iter().all(|s| fits(s.keep)) {
            return None;
        }
        Some(NarrowMasks {
            splits: masks
                .splits
                .iter()
                .map(|s: &Split| Narrow {
                    t32: s.threshold as f32,
                    keep: s.keep as u32,
                    offset: s.offset / super::LANES as u32 * LANES as u32,
                })
                .collect(),
            class_leaves: masks.class_leaves.iter().map(|&m| m as u32).collect(),
        })
    }
}

impl NarrowMasks {
    /// The index of `split`, one of `self.splits`: found from its address only when needed,
    /// so the kernel's loop keeps no index.
    fn index_of(&self, split: &Narrow) -> usize {
        let offset = std::ptr::from_ref(split) as usize - self.splits.as_ptr() as usize;
        offset / std::mem::size_of::<Narrow>()
    }
}

impl LeafMasks {
    /// Scores `rows` with the 16-row kernel, writing vote counts into `votes`.
    ///
    /// # Panics
    /// If the CPU lacks AVX-512F or the forest has no 32-bit form.
    pub(super) fn score_narrow(&self, rows: &[f64], votes: &mut [u32]) {
        let narrow = self.narrow.as_ref().expect("trees of at most 32 leaves");
        assert!(super::Kernel::Avx512.supported(), "AVX-512F is needed");
        let (nf, nc) = (self.n_features, self.n_classes);
        let rows = &rows[..rows.len() / nf * nf];
        let mut b32 = vec![0.0f32; nf * LANES];
        let mut counts = vec![0u32; nc * LANES];
        for (block, votes) in rows.chunks(nf * LANES).zip(votes.chunks_mut(nc * LANES)) {
            let n = block.len() / nf;
            // Feature-major float32; a short block repeats its last row.
            for (f, lanes) in b32.chunks_exact_mut(LANES).enumerate() {
                for (k, x) in lanes.iter_mut().enumerate() {
                    *x = block[k.min(n - 1) * nf + f] as f32;
                }
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512F is present (asserted above); `b32` holds LANES values per
            // feature and every offset is a feature below `n_features` times LANES.
            unsafe {
                self.narrow_block(narrow, &b32, block, &mut counts)
            };
            for (k, row_votes) in votes.chunks_exact_mut(nc).enumerate() {
                for (c, v) in row_votes.iter_mut().enumerate() {
                    *v = counts[c * LANES + k];
                }
            }
        }
    }

    /// One class count per kernel keeps every count in a register.
    #[cfg(target_arch = "x86_64")]
    unsafe fn narrow_block(
        &self,
        narrow: &NarrowMasks,
        b32: &[f32],
        rows: &[f64],
        counts: &mut [u32],
    ) {
        macro_rules! for_classes {
            ($($n:literal)*) => {
                match self.n_classes {
                    // SAFETY: the caller's contract.
                    $($n => unsafe { self.narrow_kernel::<$n>(narrow, b32, rows, counts) },)*
                    n => unreachable!("no 16-row kernel for {n} classes"),
                }
            };
        }
        for_classes!(1 2 3 4 5 6 7 8)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn narrow_kernel<const CLASSES: usize>(
        &self,
        narrow: &NarrowMasks,
        b32: &[f32],
        rows: &[f64],
        counts: &mut [u32],
    ) {
        use std::arch::x86_64::*;
        let nf = self.n_features;
        let n = rows.len() / nf;
        assert_eq!(b32.len(), nf * LANES);
        assert_eq!(counts.len(), CLASSES * LANES);
        assert!(n >= 1 && rows.len() == n * nf);
        let ones = _mm512_set1_epi32(-1);
        let mut accs = [_mm512_setzero_si512(); CLASSES];
        let trees = self
            .tree_starts
            .windows(2)
            .zip(narrow.class_leaves.chunks_exact(CLASSES));
        for (bounds, classes) in trees {
            let mut alive = ones;
            let tree = &narrow.splits[bounds[0] as usize..bounds[1] as usize];
            // `!(x <= t)` for each row, NaN included (smartcore sends NaN to the false side),
            // and where the float32 values tie.
            let test = |s: &Narrow| {
                // SAFETY: `offset + LANES <= b32.len()` (see score_narrow).
                let x = unsafe { _mm512_loadu_ps(b32.as_ptr().add(s.offset as usize)) };
                let t = _mm512_set1_ps(s.t32);
                let failed = _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(x, t);
                (failed, _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, t))
            };
            // Ties settled on the rows' own float64 values, out of line so that the common
            // path keeps its values in registers. A tie flag kept over the whole tree and one
            // exact redo of it measured slower (84 against 79 ns/row).
            let settle = |s: &Narrow, failed: u16, tie: u16| {
                let threshold = self.splits[narrow.index_of(s)].threshold;
                let exact = exact_fails(rows, nf, s.offset as usize / LANES, threshold);
                (failed & !tie) | (exact & tie)
            };
            let cut = |alive, failed, s: &Narrow| {
                _mm512_mask_and_epi32(alive, failed, alive, _mm512_set1_epi32(s.keep as i32))
            };
            // Two splits a step, with one branch for both: fewer instructions per split.
            let mut pairs = tree.chunks_exact(2);
            for pair in &mut pairs {
                let ((mut fa, ta), (mut fb, tb)) = (test(&pair[0]), test(&pair[1]));
                if ta | tb != 0 {
                    fa = settle(&pair[0], fa, ta);
                    fb = settle(&pair[1], fb, tb);
                }
                alive = cut(cut(alive, fa, &pair[0]), fb, &pair[1]);
            }
            for s in pairs.remainder() {
                let (mut failed, tie) = test(s);
                if tie != 0 {
                    failed = settle(s, failed, tie);
                }
                alive = cut(alive, failed, s);
            }
            // The lowest surviving leaf is the one each row reaches.
            let reached = _mm512_and_si512(alive, _mm512_sub_epi32(_mm512_setzero_si512(), alive));
            for (acc, &leaves) in accs.iter_mut().zip(classes) {
                let votes_for = _mm512_test_epi32_mask(reached, _mm512_set1_epi32(leaves as i32));
                *acc = _mm512_mask_sub_epi32(*acc, votes_for, *acc, ones);
            }
        }
        for (acc, lanes) in accs.iter().zip(counts.chunks_exact_mut(LANES)) {
            // SAFETY: `lanes` is LANES u32s long.
            unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), *acc) };
        }
    }
}

/// Which of the block's rows (a short block repeating its last) fail `x <= threshold` on
/// feature `f` in float64, NaN included: a tie's settlement, one bit per row.
#[cold]
#[inline(never)]
fn exact_fails(rows: &[f64], nf: usize, f: usize, threshold: f64) -> u16 {
    let n = rows.len() / nf;
    let mut exact = 0u16;
    for k in 0..LANES {
        let x = rows[k.min(n - 1) * nf + f];
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        let fails = !(x <= threshold);
        exact |= u16::from(fails) << k;
    }
    exact
}

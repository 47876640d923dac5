//! Sixteen rows at once with AVX-512, for forests whose trees have at most 32 leaves (the
//! bundled model's largest has 22): leaf masks in 32-bit lanes, features compared as float32.
//!
//! A 512-bit register holds sixteen 32-bit masks, so one masked AND serves sixteen rows
//! where the 64-bit kernel serves eight. The comparison must still be smartcore's, in
//! float64, and it is: rounding to float32 keeps order, so `x32 < t32` implies `x <= t` and
//! `x32 > t32` implies `x > t`. Only `x32 == t32` leaves it open (the row's value is within a
//! float32 step of the threshold), and then the rows' own float64 values decide.
//!
//! Two blocks (32 rows) go through the trees together where a batch has them: each split's
//! threshold, mask and tie branch then serve both, which measured 70-73 ns/row at batch 64
//! against 90-96 for one block at a time (run alternately); four blocks measured 77-80.

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
    /// Scores `rows` with the 16-row kernel, writing vote counts into `votes`: two blocks
    /// (32 rows) at a time while there are that many, then one.
    ///
    /// # Panics
    /// If the CPU lacks AVX-512F or the forest has no 32-bit form.
    pub(super) fn score_narrow(&self, rows: &[f64], votes: &mut [u32]) {
        let narrow = self.narrow.as_ref().expect("trees of at most 32 leaves");
        assert!(super::Kernel::Avx512.supported(), "AVX-512F is needed");
        let (nf, nc) = (self.n_features, self.n_classes);
        let half = nf * LANES;
        let mut rows = &rows[..rows.len() / nf * nf];
        let mut votes = &mut votes[..rows.len() / nf * nc];
        let mut b32 = vec![0.0f32; 2 * half];
        let mut counts = vec![0u32; 2 * nc * LANES];
        while !rows.is_empty() {
            let blocks = if rows.len() >= 2 * half { 2 } else { 1 };
            let (chunk, rest) = rows.split_at((blocks * half).min(rows.len()));
            let (chunk_votes, rest_votes) =
                std::mem::take(&mut votes).split_at_mut(chunk.len() / nf * nc);
            for (block, b32) in chunk.chunks(half).zip(b32.chunks_exact_mut(half)) {
                transpose(block, nf, b32);
            }
            let counts = &mut counts[..blocks * nc * LANES];
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512F is present (asserted above); `b32` holds LANES values per
            // feature and block, and every offset is a feature below `n_features` times LANES.
            unsafe {
                self.narrow_block(narrow, blocks, &b32[..blocks * half], chunk, counts)
            };
            for (b, block_votes) in chunk_votes.chunks_mut(nc * LANES).enumerate() {
                for (k, row_votes) in block_votes.chunks_exact_mut(nc).enumerate() {
                    for (c, v) in row_votes.iter_mut().enumerate() {
                        *v = counts[(b * nc + c) * LANES + k];
                    }
                }
            }
            (rows, votes) = (rest, rest_votes);
        }
    }

    /// One class count per kernel keeps every count in a register.
    #[cfg(target_arch = "x86_64")]
    unsafe fn narrow_block(
        &self,
        narrow: &NarrowMasks,
        blocks: usize,
        b32: &[f32],
        rows: &[f64],
        counts: &mut [u32],
    ) {
        macro_rules! for_classes {
            ($($n:literal)*) => {
                match (self.n_classes, blocks) {
                    // SAFETY: the caller's contract.
                    $(
                        ($n, 1) => unsafe { self.narrow_kernel::<$n, 1>(narrow, b32, rows, counts) },
                        ($n, 2) => unsafe { self.narrow_kernel::<$n, 2>(narrow, b32, rows, counts) },
                    )*
                    (n, b) => unreachable!("no 16-row kernel for {n} classes and {b} blocks"),
                }
            };
        }
        for_classes!(1 2 3 4 5 6 7 8)
    }

    /// `BLOCKS` blocks of sixteen rows through every tree: a block of one to sixteen rows, or
    /// two whole blocks, which share each split's loads and branch.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn narrow_kernel<const CLASSES: usize, const BLOCKS: usize>(
        &self,
        narrow: &NarrowMasks,
        b32: &[f32],
        rows: &[f64],
        counts: &mut [u32],
    ) {
        use std::arch::x86_64::*;
        let nf = self.n_features;
        let half = nf * LANES;
        let n = rows.len() / nf;
        assert_eq!(b32.len(), BLOCKS * half);
        assert_eq!(counts.len(), BLOCKS * CLASSES * LANES);
        assert!(rows.len() == n * nf && (1..=LANES).contains(&(n - (BLOCKS - 1) * LANES)));
        assert!(BLOCKS == 1 || n == BLOCKS * LANES);
        let ones = _mm512_set1_epi32(-1);
        let mut accs = [[_mm512_setzero_si512(); CLASSES]; BLOCKS];
        let trees = self
            .tree_starts
            .windows(2)
            .zip(narrow.class_leaves.chunks_exact(CLASSES));
        for (bounds, classes) in trees {
            let mut alive = [ones; BLOCKS];
            for s in &narrow.splits[bounds[0] as usize..bounds[1] as usize] {
                let t = _mm512_set1_ps(s.t32);
                let (mut failed, mut tie, mut any) = ([0u16; BLOCKS], [0u16; BLOCKS], 0);
                for b in 0..BLOCKS {
                    // SAFETY: `b * half + offset + LANES <= b32.len()` (see score_narrow).
                    let x =
                        unsafe { _mm512_loadu_ps(b32.as_ptr().add(b * half + s.offset as usize)) };
                    // `!(x <= t)`, NaN included (smartcore sends NaN to the false side), and
                    // where the float32 values tie.
                    failed[b] = _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(x, t);
                    tie[b] = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, t);
                    any |= tie[b];
                }
                if any != 0 {
                    // Settled on the rows' own float64 values, out of line so that the common
                    // path keeps its values in registers.
                    let threshold = self.splits[narrow.index_of(s)].threshold;
                    for b in 0..BLOCKS {
                        let block = &rows[b * half..((b + 1) * half).min(rows.len())];
                        let exact = exact_fails(block, nf, s.offset as usize / LANES, threshold);
                        failed[b] = (failed[b] & !tie[b]) | (exact & tie[b]);
                    }
                }
                let keep = _mm512_set1_epi32(s.keep as i32);
                for b in 0..BLOCKS {
                    alive[b] = _mm512_mask_and_epi32(alive[b], failed[b], alive[b], keep);
                }
            }
            for b in 0..BLOCKS {
                // The lowest surviving leaf is the one each row reaches.
                let reached =
                    _mm512_and_si512(alive[b], _mm512_sub_epi32(_mm512_setzero_si512(), alive[b]));
                for (acc, &leaves) in accs[b].iter_mut().zip(classes) {
                    let votes_for =
                        _mm512_test_epi32_mask(reached, _mm512_set1_epi32(leaves as i32));
                    *acc = _mm512_mask_sub_epi32(*acc, votes_for, *acc, ones);
                }
            }
        }
        for (acc, lanes) in accs.iter().flatten().zip(counts.chunks_exact_mut(LANES)) {
            // SAFETY: `lanes` is LANES u32s long.
            unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), *acc) };
        }
    }
}

/// One block of up to [`LANES`] rows (row-major, `nf` values each) into `b32`, feature-major
/// float32; a short block repeats its last row.
fn transpose(block: &[f64], nf: usize, b32: &mut [f32]) {
    let n = block.len() / nf;
    for (f, lanes) in b32.chunks_exact_mut(LANES).enumerate() {
        for (k, x) in lanes.iter_mut().enumerate() {
            *x = block[k.min(n - 1) * nf + f] as f32;
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

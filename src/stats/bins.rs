//! A row's values tallied in their variables' bins all at once. The variables' bins are
//! numbered one after another (variable f's from `offsets()[f]`), so that one array holds
//! every variable's tallies and one every bin's value (a drift window's normal scores).
//!
//! Where the processor has AVX-512 with fast gathers (Intel's; AMD's Zen 4 bins faster one
//! value at a time, measured in `vectors_preferred`) and every variable has a table
//! ([`BinIndex`]), eight
//! variables are binned at once, without a branch: their table cells computed, their table
//! entries, the two edges after them and their bins' values gathered and compared as
//! vectors; the tallies are then incremented one by one, once the bins of up to four groups
//! of eight are found. A lane whose value lies beyond the two edges after its entry (rare: a
//! cell holds a few edges at most where values fall often) is finished one value at a time.
//! Elsewhere the values are binned one at a time, and a batch's rows a variable at a time
//! ([`Bins::tally_rows`]). Both give exactly what [`BinIndex::bin`] gives (tested below).

use super::search::{AHEAD, BinIndex, CELLS, EXACT, cell};

/// Variables binned together.
#[derive(Debug, Clone)]
pub struct Bins {
    index: Vec<BinIndex>,
    /// Where each variable's bins start.
    offsets: Vec<usize>,
    /// Bins of every variable together.
    bin_count: usize,
    /// Each variable's [`BinIndex::cells`], then zeros to a whole group of [`LANES`].
    lows: Vec<f64>,
    cells_per_unit: Vec<f64>,
    /// Every variable's table and edges in one array each, where the vectors bin them.
    packed: Option<Packed>,
}

/// The variables' tables and edges one after another, and where each variable's start, in
/// lanes of eight (the last group's unused lanes start at 0).
#[derive(Debug, Clone)]
struct Packed {
    /// The tables, then three bytes (a table entry is read as the low byte of 32 bits).
    tables: Vec<u8>,
    edges: Vec<f64>,
    table_at: Vec<i32>,
    edge_at: Vec<i32>,
    bin_at: Vec<i32>,
}

/// Lanes of a vector: variables binned at once.
const LANES: usize = 8;
/// Edges after a lane's entry the vectors compare.
const VECTOR_AHEAD: usize = 2;
// The edges a lane reads past its entry lie within the +∞ padding after a variable's edges.
const _: () = assert!(VECTOR_AHEAD <= AHEAD);
/// Groups of eight variables binned before they are tallied.
const CHUNK: usize = 4;

impl Bins {
    /// The bins of variables with these inner `edges` (each strictly increasing).
    pub fn new<'a>(edges: impl IntoIterator<Item = &'a [f64]>) -> Self {
        let index: Vec<BinIndex> = edges.into_iter().map(BinIndex::new).collect();
        let mut bin_count = 0;
        let offsets = (index.iter())
            .map(|i| {
                let offset = bin_count;
                bin_count += i.edges() + 1;
                offset
            })
            .collect();
        let groups = index.len().div_ceil(LANES) * LANES;
        let cells = |part: fn((f64, f64)) -> f64| {
            let mut all: Vec<f64> = index.iter().map(|i| part(i.cells())).collect();
            all.resize(groups, 0.0);
            all
        };
        let mut bins = Bins {
            lows: cells(|c| c.0),
            cells_per_unit: cells(|c| c.1),
            index,
            offsets,
            bin_count,
            packed: None,
        };
        if vectors_preferred() {
            bins.packed = bins.pack();
        }
        bins
    }

    /// The same bins, always binned one value at a time (to compare the two).
    pub fn one_at_a_time(mut self) -> Self {
        self.packed = None;
        self
    }

    /// The same bins, binned eight variables at a time wherever the processor can, even where
    /// one at a time is the faster (to compare the two, and to test the vectors there).
    pub fn eight_at_a_time(mut self) -> Self {
        if vectors_supported() {
            self.packed = self.pack();
        }
        self
    }

    /// Whether rows are binned eight variables at a time.
    #[cfg(test)]
    fn vectors(&self) -> bool {
        self.packed.is_some()
    }

    /// Where each variable's bins start.
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }

    /// Bins of every variable together.
    pub fn bin_count(&self) -> usize {
        self.bin_count
    }

    fn pack(&self) -> Option<Packed> {
        let groups = self.lows.len();
        let mut packed = Packed {
            tables: Vec::new(),
            edges: Vec::new(),
            table_at: vec![0; groups],
            edge_at: vec![0; groups],
            bin_at: vec![0; groups],
        };
        for (f, index) in self.index.iter().enumerate() {
            let (table, edges) = index.parts()?;
            packed.table_at[f] = i32::try_from(packed.tables.len()).ok()?;
            packed.edge_at[f] = i32::try_from(packed.edges.len()).ok()?;
            packed.bin_at[f] = i32::try_from(self.offsets[f]).ok()?;
            packed.tables.extend_from_slice(table);
            packed.edges.extend_from_slice(edges);
        }
        packed.tables.extend_from_slice(&[0; 3]);
        Some(packed)
    }

    /// Tallies the present values (NaN is missing) of each row of `rows` (row-major, a value
    /// for each variable): adds one to `tally` at each value's bin, and sets the value's
    /// place in `out` to `values` at its bin (left as it is where the value is missing).
    /// `tally` and `values` hold [`Bins::bin_count`] bins.
    ///
    /// One value at a time, a variable goes through every row before the next: the rows'
    /// values and their variable's table, edges, values and tallies stay in the first-level
    /// cache, where a row at a time reads and increments every variable's (100 KB for 30
    /// variables of 100 bins) from the second. Eight at a time, a row at a time.
    pub fn tally_rows(&self, rows: &[f64], tally: &mut [i64], values: &[f64], out: &mut [f64]) {
        let p = self.index.len();
        assert!(
            p > 0 && rows.len().is_multiple_of(p),
            "whole rows of {p} values"
        );
        let out = &mut out[..rows.len()];
        let (tally, values) = (&mut tally[..self.bin_count], &values[..self.bin_count]);
        #[cfg(target_arch = "x86_64")]
        if let Some(packed) = &self.packed {
            for (row, out) in rows.chunks_exact(p).zip(out.chunks_exact_mut(p)) {
                // SAFETY: `packed` exists only where the processor has AVX-512F and VL
                // (checked in `new`); the slices are as long as the variables and their
                // bins, as just sliced.
                unsafe { packed.tally(self, row, tally, values, out) };
            }
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor has AVX2, checked just above.
            return unsafe { self.tally_avx2(rows, tally, values, out) };
        }
        self.tally_portable(rows, tally, values, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn tally_avx2(&self, rows: &[f64], tally: &mut [i64], values: &[f64], out: &mut [f64]) {
        self.tally_portable(rows, tally, values, out);
    }

    /// [`Bins::tally_rows`] one value at a time, a variable through every row in turn.
    #[inline(always)]
    fn tally_portable(&self, rows: &[f64], tally: &mut [i64], values: &[f64], out: &mut [f64]) {
        let p = self.index.len();
        let cells = self.lows.iter().zip(&self.cells_per_unit);
        let each = (self.index.iter().zip(&self.offsets)).zip(cells);
        for (f, ((index, &offset), (&low, &per_unit))) in each.enumerate() {
            let bins = offset..offset + index.edges() + 1;
            let (tally, values) = (&mut tally[bins.clone()], &values[bins]);
            // A loop of its own rather than `step_by`, whose length is a division (a tenth
            // of the time of a row alone).
            let mut k = f;
            while k < rows.len() {
                let x = rows[k];
                if !x.is_nan() {
                    let b = index.bin_in(cell(x, low, per_unit), x);
                    tally[b] += 1;
                    out[k] = values[b];
                }
                k += p;
            }
        }
    }
}

/// Whether rows are binned eight variables at a time by default: where the processor can,
/// and its gathers are fast. AMD's are not: on a Zen 4 (EPYC, family 25), a window counted
/// batches of the bundled model's 30 features, in no learnable order, in 221 ns a record
/// one value at a time against 258 eight at a time (`cargo bench --bench drift --
/// observe_rows`), where an Intel Xeon read 250 to 270 eight at a time against 380 to 420
/// one at a time, a record alone (docs/drift.md).
fn vectors_preferred() -> bool {
    vectors_supported() && fast_gathers()
}

/// Whether the processor's gathers beat the same loads one at a time: Intel's.
fn fast_gathers() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // CPUID leaf 0 names the vendor in EBX, EDX, ECX.
        #[allow(unused_unsafe)]
        // SAFETY: CPUID leaf 0 exists on every x86-64 processor.
        let id = unsafe { std::arch::x86_64::__cpuid(0) };
        [id.ebx, id.edx, id.ecx].map(u32::to_le_bytes).concat() == b"GenuineIntel"
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether this processor has what the vectors need.
fn vectors_supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(target_arch = "x86_64")]
impl Packed {
    /// [`Bins::tally`], eight variables at a time: up to [`CHUNK`] groups' bins are found
    /// (gathers the processor overlaps), then tallied.
    ///
    /// # Safety
    /// The processor has AVX-512F and VL; `row` and `out` hold a value for each variable of
    /// `set` (whose packing this is), `tally` and `values` every bin.
    #[target_feature(enable = "avx512f,avx512vl")]
    unsafe fn tally(
        &self,
        set: &Bins,
        row: &[f64],
        tally: &mut [i64],
        values: &[f64],
        out: &mut [f64],
    ) {
        let p = row.len();
        for chunk in (0..p).step_by(CHUNK * LANES) {
            let mut bins = [0i32; CHUNK * LANES];
            let mut present = [0u8; CHUNK];
            let groups = (p - chunk).div_ceil(LANES).min(CHUNK);
            let each = (bins.chunks_exact_mut(LANES).zip(&mut present)).take(groups);
            for (g, (bins, present)) in each.enumerate() {
                // SAFETY: as this function's, and `bins` holds a group's eight lanes.
                unsafe { *present = self.group(set, chunk + g * LANES, (row, values), bins, out) };
            }
            for (bins, &present) in bins.chunks_exact(LANES).zip(&present) {
                let mut lanes = present;
                while lanes != 0 {
                    tally[bins[lanes.trailing_zeros() as usize] as usize] += 1;
                    lanes &= lanes - 1;
                }
            }
        }
    }

    /// The bins of the variables from `start` (eight, or the rest), into `bins`; sets their
    /// `values` in `out`. Which are present.
    ///
    /// # Safety
    /// As [`Packed::tally`]'s; `bins` holds eight lanes.
    #[target_feature(enable = "avx512f,avx512vl")]
    #[inline]
    unsafe fn group(
        &self,
        set: &Bins,
        start: usize,
        (row, values): (&[f64], &[f64]),
        bins: &mut [i32],
        out: &mut [f64],
    ) -> u8 {
        use std::arch::x86_64::*;
        let p = row.len();
        let lanes: __mmask8 = if p - start >= LANES {
            0xff
        } else {
            (1 << (p - start)) - 1
        };
        let one = _mm256_set1_epi32(1);
        // SAFETY (every load, gather and store): lanes past `p` are masked off; `lows`,
        // `cells_per_unit`, `table_at`, `edge_at` and `bin_at` hold whole groups of eight; a
        // lane's table entry is at most its table's start plus 1,023 (a cell), read as 32
        // bits within the three bytes of padding; its edges are read at most VECTOR_AHEAD − 1
        // past its bin, at most the edge count, within the AHEAD × +∞ after them; its bin is
        // at most its edge count, within its variable's bins.
        unsafe {
            let x = _mm512_maskz_loadu_pd(lanes, row.as_ptr().add(start));
            let here = _mm512_mask_cmp_pd_mask::<_CMP_ORD_Q>(lanes, x, x);
            let at = |a: &[i32]| _mm256_loadu_si256(a.as_ptr().add(start).cast());
            // As `search::cell`: MAX answers its second operand, 0, for NaN.
            let low = _mm512_loadu_pd(set.lows.as_ptr().add(start));
            let per_unit = _mm512_loadu_pd(set.cells_per_unit.as_ptr().add(start));
            let cell = _mm512_max_pd(
                _mm512_mul_pd(_mm512_sub_pd(x, low), per_unit),
                _mm512_setzero_pd(),
            );
            let cell = _mm512_cvttpd_epi32(_mm512_min_pd(cell, _mm512_set1_pd((CELLS - 1) as f64)));
            let entry = _mm256_mmask_i32gather_epi32::<1>(
                _mm256_setzero_si256(),
                here,
                _mm256_add_epi32(cell, at(&self.table_at)),
                self.tables.as_ptr().cast(),
            );
            let inexact =
                _mm256_mask_testn_epi32_mask(here, entry, _mm256_set1_epi32(EXACT.into()));
            let mut bin = _mm256_and_si256(entry, _mm256_set1_epi32(0x7f));
            // Of the VECTOR_AHEAD edges after the entry, those below the value, where the cell
            // is not inside one bin.
            let first = _mm256_add_epi32(bin, at(&self.edge_at));
            let mut below = _mm256_setzero_si256();
            for k in 0..VECTOR_AHEAD as i32 {
                let next = _mm256_add_epi32(first, _mm256_set1_epi32(k));
                let edge = _mm512_mask_i32gather_pd::<8>(x, inexact, next, self.edges.as_ptr());
                let lower = _mm512_mask_cmp_pd_mask::<_CMP_LT_OQ>(inexact, edge, x);
                below = _mm256_mask_add_epi32(below, lower, below, one);
            }
            bin = _mm256_add_epi32(bin, below);
            let further = _mm256_mask_cmpeq_epi32_mask(
                inexact,
                below,
                _mm256_set1_epi32(VECTOR_AHEAD as i32),
            );
            if further != 0 {
                bin = finish(&set.index, start, further, bin, row);
            }
            let bin = _mm256_add_epi32(bin, at(&self.bin_at));
            _mm256_storeu_si256(bins.as_mut_ptr().cast(), bin);
            let value = _mm512_mask_i32gather_pd::<8>(x, here, bin, values.as_ptr());
            _mm512_mask_storeu_pd(out.as_mut_ptr().add(start), here, value);
            here
        }
    }
}

/// The bins of the lanes `further` (of variables from `start`), one at a time: their values
/// lie beyond the edges the vectors compared.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
fn finish(
    index: &[BinIndex],
    start: usize,
    further: u8,
    bin: std::arch::x86_64::__m256i,
    row: &[f64],
) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    let mut bins = [0i32; LANES];
    // SAFETY: `bins` holds eight 32-bit lanes.
    unsafe { _mm256_storeu_si256(bins.as_mut_ptr().cast(), bin) };
    for (lane, b) in bins.iter_mut().enumerate() {
        if further & (1 << lane) != 0 {
            let f = start + lane;
            *b = index[f].bin(row[f]) as i32;
        }
    }
    // SAFETY: as above.
    unsafe { _mm256_loadu_si256(bins.as_ptr().cast()) }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_distr::{LogNormal, StandardNormal};

    use super::*;
    use crate::stats::profile::{FINE_BINS, bin, quantile_edges};

    /// Variables of several shapes and edge counts, some without a table.
    fn variables(rng: &mut impl Rng, p: usize) -> Vec<Vec<f64>> {
        let lognormal = LogNormal::new(0.0, 2.0).unwrap();
        (0..p)
            .map(|f| {
                let mut sample: Vec<f64> = (0..3000)
                    .map(|i| match f % 4 {
                        0 => rng.sample::<f64, _>(StandardNormal),
                        1 => rng.sample(lognormal),
                        2 => f64::from(i % 5),
                        _ => rng.random::<f64>() * 1e6,
                    })
                    .collect();
                sample.sort_by(f64::total_cmp);
                quantile_edges(&sample, if f == 5 { 3 } else { FINE_BINS })
            })
            .collect()
    }

    #[test]
    fn variables_without_a_table_are_binned_one_at_a_time() {
        let many: Vec<f64> = (0..200).map(f64::from).collect();
        let edges: [&[f64]; 3] = [&[0.0, 1.0], &many, &[5.0]];
        let bins = Bins::new(edges);
        assert!(
            !bins.vectors(),
            "a variable without a table keeps the vectors out"
        );
        let mut tally = vec![0; bins.bin_count()];
        let values: Vec<f64> = (0..bins.bin_count()).map(|b| b as f64).collect();
        let mut out = vec![0.0; 3];
        bins.tally_rows(&[0.5, 150.5, 7.0], &mut tally, &values, &mut out);
        let expected = [1.0, (3 + 151) as f64, (3 + 201 + 1) as f64];
        assert_eq!(out, expected);
        assert_eq!(tally.iter().sum::<i64>(), 3);
    }

    #[test]
    fn tallies_every_value_in_its_bin_eight_at_a_time_and_one_at_a_time() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for p in [1, 7, 8, 9, 17, 30] {
            let edges = variables(&mut rng, p);
            let vectors = Bins::new(edges.iter().map(Vec::as_slice)).eight_at_a_time();
            assert_eq!(vectors.vectors(), vectors_supported());
            let one = vectors.clone().one_at_a_time();
            let values: Vec<f64> = (0..vectors.bin_count()).map(|b| b as f64 * 0.5).collect();
            let rows: Vec<f64> = (0..5000)
                .flat_map(|r| (0..p).map(move |f| (r, f)))
                .map(|(r, f)| {
                    let e = &edges[f];
                    match (r + f) % 11 {
                        0 => f64::NAN,
                        1 => e[rng.random_range(0..e.len())],
                        2 => e[rng.random_range(0..e.len())].next_up(),
                        3 => [f64::INFINITY, f64::NEG_INFINITY, 1e300, -1e300][r % 4],
                        _ => e[0] + (e[e.len() - 1] - e[0]) * rng.random_range(-0.1..1.1),
                    }
                })
                .collect();
            let mut expected = vec![0i64; vectors.bin_count()];
            let mut want = vec![-1.0; rows.len()];
            for (k, &x) in rows.iter().enumerate() {
                if !x.is_nan() {
                    let b = vectors.offsets()[k % p] + bin(&edges[k % p], x);
                    expected[b] += 1;
                    want[k] = values[b];
                }
            }
            // In batches of 1, 7 and 64 rows (the last one shorter).
            for (bins, batch) in [(&vectors, 1), (&vectors, 7), (&one, 1), (&one, 64)] {
                let mut tally = vec![0; bins.bin_count()];
                let mut out = vec![-1.0; rows.len()];
                for (rows, out) in rows.chunks(batch * p).zip(out.chunks_mut(batch * p)) {
                    bins.tally_rows(rows, &mut tally, &values, out);
                }
                let how = format!(
                    "{p} variables, {batch} rows at once, vectors {}",
                    bins.vectors()
                );
                assert_eq!(tally, expected, "{how}");
                let wrong = (0..rows.len()).find(|&k| out[k].to_bits() != want[k].to_bits());
                assert_eq!(wrong, None, "{how}: value {:?}", wrong.map(|k| rows[k]));
            }
        }
    }
}

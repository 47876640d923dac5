//! Finding a value's bin without a binary search: a table over equal cells of the edges'
//! range gives the bin at each cell's start, and a short scan on finishes from there.
//! Percentile edges are dense where the data are, so a cell holds a few edges at most where
//! values fall most often; the result is exactly that of a binary search (each cell's entry
//! is taken a little before its start, beyond any rounding, so the scan only goes on), in a
//! table load and a compare or two instead of seven dependent loads. A cell that lies inside
//! one bin says so; one value at a time, its value is still compared with the edges after
//! it (none is below it), since a branch on the mark went the wrong way whenever a
//! variable's values fall in cells of both kinds, and that cost a window's update more
//! than the load. Module `bins` reads the same tables eight variables at a time, where the
//! mark spares the vectors their gathers of edges.

use super::profile::bin;

/// Cells of the table.
pub(super) const CELLS: usize = 1024;
/// Edges compared at once after the table's guess, without a branch.
pub(super) const AHEAD: usize = 4;
/// A table entry's mark: every value of the cell (with a margin of a millionth of a cell
/// either side, far beyond the rounding of the cell's computation) is in this bin. Entries
/// are a byte (a table of 1 KB, where a window's update reads one per feature and record):
/// variables of 127 edges or more are searched without a table.
pub(super) const EXACT: u8 = 0x80;

/// One variable's edges and their table.
#[derive(Debug, Clone)]
pub struct BinIndex {
    /// The edges, then [`AHEAD`] × +∞.
    edges: Vec<f64>,
    /// How many edges there are.
    n: usize,
    low: f64,
    cells_per_unit: f64,
    /// The bin (edges below) at each cell's start less the margin, marked [`EXACT`] if the
    /// whole cell is in it.
    table: Vec<u8>,
}

impl BinIndex {
    /// The index of inner `edges` (strictly increasing).
    pub fn new(edges: &[f64]) -> Self {
        let (low, high) = match (edges.first(), edges.last()) {
            (Some(&low), Some(&high)) if high > low && edges.len() < usize::from(EXACT) => {
                (low, high)
            }
            _ => {
                // Too few edges to index: every lookup is a (short) binary search.
                return BinIndex {
                    edges: edges.to_vec(),
                    n: edges.len(),
                    low: 0.0,
                    cells_per_unit: 0.0,
                    table: Vec::new(),
                };
            }
        };
        let cells_per_unit = CELLS as f64 / (high - low);
        let at = |cell: f64| bin(edges, low + cell / cells_per_unit) as u8;
        let table = (0..CELLS)
            .map(|c| {
                let (start, end) = (at(c as f64 - 1e-6), at(c as f64 + 1.0 + 1e-6));
                if start == end { start | EXACT } else { start }
            })
            .collect();
        let mut padded = edges.to_vec();
        padded.resize(edges.len() + AHEAD, f64::INFINITY);
        BinIndex {
            edges: padded,
            n: edges.len(),
            low,
            cells_per_unit,
            table,
        }
    }

    /// The bin of `value` (the number of edges below it; 0 for NaN, as [`bin`]'s).
    #[inline]
    pub fn bin(&self, value: f64) -> usize {
        let (low, cells_per_unit) = self.cells();
        self.bin_in(cell(value, low, cells_per_unit), value)
    }

    /// Where the cells start and how many there are per unit of the variable, for
    /// [`cell`] (none per unit when the edges have no table).
    pub fn cells(&self) -> (f64, f64) {
        (self.low, self.cells_per_unit)
    }

    /// How many edges there are.
    pub fn edges(&self) -> usize {
        self.n
    }

    /// The table and the edges (then [`AHEAD`] × +∞), where the edges have a table.
    pub(super) fn parts(&self) -> Option<(&[u8], &[f64])> {
        (!self.table.is_empty()).then_some((&self.table, &self.edges))
    }

    /// The bin of `value`, not NaN, in table cell `cell` (its [`cell`]).
    #[inline(always)]
    pub fn bin_in(&self, cell: usize, value: f64) -> usize {
        let e = &self.edges;
        if self.table.is_empty() {
            return bin(&e[..self.n], value);
        }
        // The entry counts the edges below the cell's start less the margin, so every edge
        // it counts is below the value: step on over edges below it, four at once (a
        // branch costs more than the compares when the count varies from record to record).
        // Where the whole cell is in one bin, the edge after the entry is beyond the cell
        // and none is below the value: no branch on the mark either.
        let mut b = usize::from(self.table[cell] & !EXACT);
        let ahead = &e[b..b + AHEAD];
        let below = ahead
            .iter()
            .map(|&edge| usize::from(edge < value))
            .sum::<usize>();
        b += below;
        if below == AHEAD {
            while b < self.n && e[b] < value {
                b += 1;
            }
        }
        b
    }
}

/// The table cell of `value` for an index whose [`BinIndex::cells`] are `low` and
/// `cells_per_unit` (cell 0 for NaN): written so that the cells of a whole row compile to
/// vector instructions.
#[inline(always)]
pub fn cell(value: f64, low: f64, cells_per_unit: f64) -> usize {
    // `max` answers 0 for NaN (a NaN value, or ±∞ without a table).
    let cell = ((value - low) * cells_per_unit)
        .max(0.0)
        .min((CELLS - 1) as f64);
    // SAFETY: `cell` is a number from 0 to CELLS − 1, which an i32 holds.
    let cell: i32 = unsafe { cell.to_int_unchecked() };
    cell as usize
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_distr::{LogNormal, StandardNormal};

    use super::*;
    use crate::stats::profile::{FINE_BINS, quantile_edges};

    #[test]
    fn agrees_with_a_binary_search_everywhere() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let lognormal = LogNormal::new(0.0, 1.5).unwrap();
        let samples: [Vec<f64>; 3] = [
            (0..5000).map(|_| rng.sample(StandardNormal)).collect(),
            (0..5000).map(|_| rng.sample(lognormal)).collect(),
            (0..5000).map(|i| f64::from(i % 7)).collect(),
        ];
        for mut sample in samples {
            sample.sort_by(f64::total_cmp);
            let edges = quantile_edges(&sample, FINE_BINS);
            let index = BinIndex::new(&edges);
            // Every edge, its neighbours, and values all over, through every cell of the
            // table (the marked cells answer without an edge).
            let (low, high) = (edges[0], edges[edges.len() - 1]);
            let grid = (0..=200_000).map(|i| low + (high - low) * (i as f64 / 200_000.0));
            let probes = (edges.iter())
                .flat_map(|&e| [e, e.next_down(), e.next_up()])
                .chain(sample.iter().copied())
                .chain(grid)
                .chain([
                    f64::MIN,
                    -1e300,
                    1e300,
                    f64::MAX,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                ]);
            for x in probes.chain([f64::NAN]) {
                assert_eq!(index.bin(x), bin(&edges, x), "{x}");
            }
        }
        assert_eq!(BinIndex::new(&[]).bin(3.0), 0);
        assert_eq!(BinIndex::new(&[1.0]).bin(3.0), 1);
    }
}

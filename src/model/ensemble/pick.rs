//! Choosing the walk at load: each walk the model can take scores the same 64 rows, drawn
//! between the model's own thresholds so that they take its real paths, and the fastest serves
//! batches. Which is faster depends on the trees (deep or shallow, one output or many) and
//! on the CPU, so it is measured rather than guessed; every walk gives the same scores
//! (`tests/parity.rs` checks it).

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use super::{Ensemble, EnsembleWalk, LEAF};

/// Rows each walk scores while being timed.
const ROWS: usize = 64;
/// Timed runs per walk; the fastest counts.
const RUNS: usize = 3;

impl Ensemble {
    /// The walks this model can take, fastest first for batches, and the fastest for a
    /// single row (timed one row at a time: a lone row has no neighbours to overlap with).
    pub(super) fn rank_walks(&self) -> (Vec<EnsembleWalk>, EnsembleWalk) {
        let mut walks = vec![EnsembleWalk::Branchy];
        if self.lockstep.is_some() {
            walks.push(EnsembleWalk::LockStep);
        }
        if let Some(forest) = &self.votes {
            walks.extend(forest.walks().into_iter().map(EnsembleWalk::Votes));
        }
        if walks.len() == 1 {
            return (walks, EnsembleWalk::Branchy);
        }
        let rows = self.sample_rows();
        let single = match self.votes {
            // Sampled rows split evenly at every node, which makes branching look worse than
            // it is on real rows for shallow trees: on the bundled forest's data, counting
            // votes branchily took 770 ns a row against 930 for leaf masks padded to eight
            // rows, which timing on sampled rows prefers (`driftwood bench-model`).
            Some(_) => EnsembleWalk::Votes(super::Walk::Branchy),
            None => *walks
                .iter()
                .min_by_key(|&&w| self.time(w, &rows, self.n_features))
                .expect("a walk"),
        };
        walks.sort_by_key(|&w| self.time(w, &rows, rows.len()));
        (walks, single)
    }

    /// The fastest of [`RUNS`] runs scoring `rows` in calls of `per_call` values.
    fn time(&self, walk: EnsembleWalk, rows: &[f64], per_call: usize) -> Duration {
        let (mut scores, mut classes) = (Vec::new(), Vec::new());
        let mut work = super::Workspace::default();
        (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                for call in rows.chunks(per_call) {
                    self.predict_with(&mut work, walk, call, &mut scores, &mut classes);
                }
                started.elapsed()
            })
            .min()
            .unwrap_or_default()
    }

    /// [`ROWS`] rows whose every feature lies between two thresholds the model splits that
    /// feature at (or beyond the outermost), so that rows go both ways at the splits they
    /// meet as real rows do. Not at the thresholds themselves: real values rarely fall on
    /// one, and walks that settle near-ties the slow way would look slower than they are.
    fn sample_rows(&self) -> Vec<f64> {
        let nf = self.n_features;
        let mut thresholds = vec![Vec::new(); nf];
        for node in self.nodes.iter().filter(|n| n.feature != LEAF) {
            let f = node.feature as usize;
            // Negated features compare negated thresholds.
            let (f, t) = if f >= nf {
                (f - nf, -node.threshold)
            } else {
                (f, node.threshold)
            };
            thresholds[f].push(t);
        }
        let between: Vec<Vec<f64>> = thresholds
            .iter_mut()
            .map(|ts| {
                ts.sort_by(f64::total_cmp);
                ts.dedup();
                let (Some(&first), Some(&last)) = (ts.first(), ts.last()) else {
                    return vec![0.0];
                };
                let mut values: Vec<f64> = ts.windows(2).map(|w| w[0] / 2.0 + w[1] / 2.0).collect();
                values.extend([first - 1.0 - first.abs(), last + 1.0 + last.abs()]);
                values
            })
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let mut rows = Vec::with_capacity(ROWS * nf);
        for _ in 0..ROWS {
            rows.extend(between.iter().map(|vs| vs[rng.random_range(0..vs.len())]));
        }
        rows
    }
}

//! Scoring rows: the walks an ensemble can take, and finishing each row's sums into scores
//! and a class.

use super::finalize::{self, Head};
use super::lockstep;
use super::{Aggregate, Ensemble, branchy_leaf};
use crate::model::forest::{Kernel, Walk};

/// How [`Ensemble::predict`] walks batches of more than one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnsembleWalk {
    /// Blocks of 16 rows in lock step over 8-byte nodes (float models).
    LockStep,
    /// A majority vote's walks (see [`crate::model::Forest::walks`]): leaf masks, 8 rows in
    /// lock step over float64 thresholds, or counting votes branchily.
    Votes(Walk),
    /// One row and one tree at a time (double models, and single rows).
    Branchy,
}

impl std::fmt::Display for EnsembleWalk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnsembleWalk::LockStep => write!(f, "lock step, 16 rows"),
            EnsembleWalk::Votes(Walk::LeafMasks(Kernel::Avx512Narrow)) => {
                write!(f, "leaf masks, AVX-512, 16 rows")
            }
            EnsembleWalk::Votes(Walk::LeafMasks(Kernel::Avx512)) => {
                write!(f, "leaf masks, AVX-512, 8 rows")
            }
            EnsembleWalk::Votes(Walk::LeafMasks(Kernel::Avx2)) => {
                write!(f, "leaf masks, AVX2, 8 rows")
            }
            EnsembleWalk::Votes(Walk::LockStep) => write!(f, "vote lock step, 8 rows"),
            EnsembleWalk::Votes(Walk::Branchy) => write!(f, "vote branchy"),
            EnsembleWalk::Branchy => write!(f, "branchy"),
        }
    }
}

/// Buffers [`Ensemble::predict_in`] reuses, so that scoring batch after batch allocates
/// nothing.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    sums: Vec<f32>,
    finals: Vec<f32>,
    block: Vec<f32>,
    prepared: Vec<f64>,
    votes: Vec<u32>,
}

impl Ensemble {
    /// Scores `rows` (row-major, [`Ensemble::n_features`] values each): writes
    /// [`Ensemble::n_columns`] values per row to `scores` and, for a classifier, the index of
    /// each row's predicted class to `classes` (both cleared first). Batches take
    /// [`Ensemble::walk`], a single row the walk timed fastest for single rows.
    pub fn predict(&self, rows: &[f64], scores: &mut Vec<f64>, classes: &mut Vec<usize>) {
        self.predict_in(&mut Workspace::default(), rows, scores, classes);
    }

    /// [`Ensemble::predict`] with buffers kept between calls.
    pub fn predict_in(
        &self,
        work: &mut Workspace,
        rows: &[f64],
        scores: &mut Vec<f64>,
        classes: &mut Vec<usize>,
    ) {
        let walk = match rows.len() > self.n_features {
            true => self.walk(),
            false => self.single,
        };
        self.predict_with(work, walk, rows, scores, classes);
    }

    /// [`Ensemble::predict_in`] with a chosen walk, for tests and benchmarks.
    ///
    /// # Panics
    /// If `walk` is not in [`Ensemble::walks`].
    pub fn predict_with(
        &self,
        work: &mut Workspace,
        walk: EnsembleWalk,
        rows: &[f64],
        scores: &mut Vec<f64>,
        classes: &mut Vec<usize>,
    ) {
        scores.clear();
        classes.clear();
        let n_out = self.n_outputs;
        work.sums.clear();
        work.sums.resize(n_out * lockstep::ROWS, 0.0);
        match walk {
            EnsembleWalk::LockStep => self.lockstep_walk(work, rows, scores, classes),
            EnsembleWalk::Votes(walk) => {
                let forest = self.votes.as_ref().expect("a vote layout");
                forest.score_batch_with(walk, rows, &mut work.votes);
                let n = self.roots.len() as f64;
                for counts in work.votes.chunks_exact(n_out) {
                    let counts = counts.iter().map(|&c| f64::from(c));
                    classes.push(finalize::vote(counts, n, scores));
                }
            }
            EnsembleWalk::Branchy => {
                for row in rows.chunks_exact(self.n_features) {
                    self.prepare(row, &mut work.prepared);
                    let row_sums = &mut work.sums[..n_out];
                    row_sums.fill(0.0);
                    for &root in &self.roots {
                        let leaf = branchy_leaf(&self.nodes, root, &work.prepared);
                        let values = &self.leaf_values[leaf * n_out..][..n_out];
                        for (sum, &v) in row_sums.iter_mut().zip(values) {
                            *sum += v;
                        }
                    }
                    self.finish(&mut work.sums[..n_out], &mut work.finals, scores, classes);
                }
            }
        }
    }

    /// Blocks of 16 rows through the lock-step layout.
    fn lockstep_walk(
        &self,
        work: &mut Workspace,
        rows: &[f64],
        scores: &mut Vec<f64>,
        classes: &mut Vec<usize>,
    ) {
        let n_out = self.n_outputs;
        let fast = self.lockstep.as_ref().expect("a lock-step layout");
        for chunk in rows.chunks(self.n_features * lockstep::ROWS) {
            let n = chunk.len() / self.n_features;
            work.block.clear();
            for row in chunk.chunks_exact(self.n_features) {
                self.prepare_f32(row, &mut work.block);
            }
            let sums = &mut work.sums[..n * n_out];
            sums.fill(0.0);
            fast.score_block(self, &work.block, sums);
            for row_sums in sums.chunks_exact_mut(n_out) {
                self.finish(row_sums, &mut work.finals, scores, classes);
            }
        }
    }

    /// Finalizes one row's sums: a vote's shares in float64; otherwise averaged if the model
    /// averages, then the head's float32 arithmetic (onnxruntime's), widened.
    fn finish(
        &self,
        sums: &mut [f32],
        finals: &mut Vec<f32>,
        scores: &mut Vec<f64>,
        classes: &mut Vec<usize>,
    ) {
        if let Head::Vote { .. } = self.head {
            let counts = sums.iter().map(|&s| f64::from(s));
            classes.push(finalize::vote(counts, self.roots.len() as f64, scores));
            return;
        }
        if self.aggregate == Aggregate::Average {
            let n = self.roots.len() as f32;
            sums.iter_mut().for_each(|s| *s /= n);
        }
        finals.clear();
        classes.extend(self.head.finalize(sums, finals));
        scores.extend(finals.iter().map(|&s| f64::from(s)));
    }

    /// The row as the lock-step walk reads it: float32 features, their negations if some
    /// split compares one, then −∞ (the slot leaves compare).
    fn prepare_f32(&self, row: &[f64], out: &mut Vec<f32>) {
        out.extend(row.iter().map(|&x| x as f32));
        if self.negated {
            out.extend(row.iter().map(|&x| -(x as f32)));
        }
        out.push(f32::NEG_INFINITY);
    }

    /// The row as the walks read it: rounded to the model's precision, then negated if some
    /// split compares a negation.
    pub(super) fn prepare(&self, row: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.extend(row.iter().map(|&x| self.round(x)));
        if self.negated {
            out.extend(row.iter().map(|&x| -self.round(x)));
        }
    }
}

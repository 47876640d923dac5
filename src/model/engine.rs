//! The model in service, whichever engine scores it: the compiled smartcore forest (majority
//! vote, with its leaf-mask kernels) or the general tree engine an ONNX import compiles to.
//! Both give, per row, a class, its confidence and a probability per class.

use super::ensemble::{Ensemble, EnsembleWalk, Head, Labels};
use super::forest::{Forest, Walk};

/// What scores a model's rows.
#[derive(Debug, Clone)]
pub enum Engine {
    /// A forest driftwood trained (smartcore's vote).
    Forest(Forest),
    /// A tree ensemble imported from ONNX (a classifier with integer labels).
    Trees(Ensemble),
}

/// One batch's results, row by row.
#[derive(Debug, Clone, Default)]
pub struct Scored {
    /// Index of each row's predicted class.
    pub classes: Vec<usize>,
    /// Each row's probability per class (vote shares for a forest), row-major.
    pub probabilities: Vec<f64>,
    votes: Vec<u32>,
    scores: Vec<f32>,
}

impl Scored {
    /// Row `row`'s probabilities, one per class.
    pub fn row(&self, row: usize, n_classes: usize) -> &[f64] {
        &self.probabilities[row * n_classes..][..n_classes]
    }
}

impl Engine {
    /// Scores `rows` (row-major, [`Engine::n_features`] values each) into `out`.
    pub fn score(&self, rows: &[f64], out: &mut Scored) {
        out.classes.clear();
        out.probabilities.clear();
        match self {
            Engine::Forest(forest) => {
                forest.score_batch(rows, &mut out.votes);
                let n = forest.n_trees() as f64;
                for counts in out.votes.chunks_exact(forest.classes().len()) {
                    out.classes.push(forest.votes(counts).class_index());
                    out.probabilities
                        .extend(counts.iter().map(|&c| f64::from(c) / n));
                }
            }
            Engine::Trees(ensemble) => {
                ensemble.predict(rows, &mut out.scores, &mut out.classes);
                out.probabilities
                    .extend(out.scores.iter().map(|&s| f64::from(s)));
            }
        }
    }

    /// `(label, confidence)` of each of `rows`, with `labels` the class labels in class order
    /// (the metadata's): what training and import measure baselines and accuracy on.
    pub fn label_confidence(&self, rows: &[f64], labels: &[i32]) -> Vec<(i32, f64)> {
        let mut scored = Scored::default();
        self.score(rows, &mut scored);
        scored
            .classes
            .iter()
            .enumerate()
            .map(|(i, &c)| (labels[c], scored.row(i, labels.len())[c]))
            .collect()
    }

    /// The forest, when a trained forest scores (for its own tests and benchmarks).
    pub fn forest(&self) -> Option<&Forest> {
        match self {
            Engine::Forest(f) => Some(f),
            Engine::Trees(_) => None,
        }
    }

    /// Number of features a row must have.
    pub fn n_features(&self) -> usize {
        match self {
            Engine::Forest(f) => f.n_features(),
            Engine::Trees(e) => e.n_features(),
        }
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        match self {
            Engine::Forest(f) => f.n_trees(),
            Engine::Trees(e) => e.n_trees(),
        }
    }

    /// The class labels, in class-index order.
    pub fn classes(&self) -> Vec<i64> {
        match self {
            Engine::Forest(f) => f.classes().iter().map(|&c| i64::from(c)).collect(),
            Engine::Trees(e) => match e.head() {
                Head::Classifier {
                    labels: Labels::Int(labels),
                    ..
                } => labels.clone(),
                _ => Vec::new(),
            },
        }
    }

    /// How batches are walked, for the start-up log.
    pub fn walk(&self) -> String {
        match self {
            Engine::Forest(f) => match f.walks()[0] {
                Walk::LeafMasks(kernel) => format!("leaf masks ({kernel:?})"),
                walk => format!("{walk:?}"),
            },
            Engine::Trees(e) => match e.walk() {
                EnsembleWalk::LockStep => "lock step, 16 rows (general tree engine)".into(),
                EnsembleWalk::Branchy => "branchy (general tree engine)".into(),
            },
        }
    }
}

//! The model in service, whichever engine scores it: the compiled smartcore forest (majority
//! vote, with its leaf-mask kernels) or the general tree engine an ONNX import compiles to.
//! A classifier gives, per row, a class, its confidence and a probability per class; a
//! regressor (imported only) gives a value.

use super::ensemble::{Ensemble, EnsembleWalk, Head, Labels};
use super::forest::{Forest, Walk};

/// What scores a model's rows.
#[derive(Debug, Clone)]
pub enum Engine {
    /// A forest driftwood trained (smartcore's vote).
    Forest(Forest),
    /// A tree ensemble imported from ONNX: a classifier, or a regressor of one target.
    Trees(Ensemble),
}

/// What a model said about one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Predicted {
    /// A classifier's class.
    Class {
        /// Its index in the model's class order.
        index: usize,
        /// Its probability (vote share for a trained forest).
        confidence: f64,
    },
    /// A regressor's value.
    Value(f64),
}

impl Predicted {
    /// The class index of a classifier's prediction.
    pub fn class(&self) -> Option<usize> {
        match *self {
            Predicted::Class { index, .. } => Some(index),
            Predicted::Value(_) => None,
        }
    }
}

/// One batch's results, row by row.
#[derive(Debug, Clone, Default)]
pub struct Scored {
    /// Index of each row's predicted class (a classifier's).
    pub classes: Vec<usize>,
    /// Each row's probability per class (vote shares for a forest), row-major; a regressor's
    /// value per row.
    pub probabilities: Vec<f64>,
    /// Classes per row; 0 for a regressor.
    n_classes: usize,
    votes: Vec<u32>,
    scores: Vec<f32>,
}

impl Scored {
    /// Rows scored.
    pub fn len(&self) -> usize {
        match self.n_classes {
            0 => self.probabilities.len(),
            _ => self.classes.len(),
        }
    }

    /// Whether no rows were scored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `row`'s probabilities, one per class (none for a regressor).
    pub fn row(&self, row: usize) -> &[f64] {
        &self.probabilities[row * self.n_classes..][..self.n_classes]
    }

    /// What the model said about row `row`.
    pub fn predicted(&self, row: usize) -> Predicted {
        match self.n_classes {
            0 => Predicted::Value(self.probabilities[row]),
            _ => {
                let index = self.classes[row];
                Predicted::Class {
                    index,
                    confidence: self.row(row)[index],
                }
            }
        }
    }
}

impl Engine {
    /// Scores `rows` (row-major, [`Engine::n_features`] values each) into `out`.
    pub fn score(&self, rows: &[f64], out: &mut Scored) {
        out.classes.clear();
        out.probabilities.clear();
        out.n_classes = self.n_classes();
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

    /// What the model says about each of `rows`: what training and import measure baselines
    /// and accuracy on.
    pub fn predict_all(&self, rows: &[f64]) -> Vec<Predicted> {
        let mut scored = Scored::default();
        self.score(rows, &mut scored);
        (0..scored.len()).map(|i| scored.predicted(i)).collect()
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

    /// Classes per row; 0 for a regressor.
    pub fn n_classes(&self) -> usize {
        match self {
            Engine::Forest(f) => f.classes().len(),
            Engine::Trees(e) => match e.head() {
                Head::Classifier { labels, .. } => labels.len(),
                Head::Regressor { .. } => 0,
            },
        }
    }

    /// The class labels, in class-index order (none for a regressor).
    pub fn labels(&self) -> Labels {
        match self {
            Engine::Forest(f) => Labels::Int(f.classes().iter().map(|&c| i64::from(c)).collect()),
            Engine::Trees(e) => match e.head() {
                Head::Classifier { labels, .. } => labels.clone(),
                Head::Regressor { .. } => Labels::Int(Vec::new()),
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

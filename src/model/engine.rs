//! The model in service, whatever trained it: a tree ensemble in the general engine (a
//! forest driftwood trained is the majority-vote case; an ONNX import is any other). A
//! classifier gives, per row, a class, its confidence and a probability per class; a
//! regressor (imported only) gives a value.

use super::artifact::ModelMetadata;
use super::ensemble::{Ensemble, EnsembleWalk, Labels, Workspace};

/// What scores a model's rows.
#[derive(Debug, Clone)]
pub struct Engine {
    ensemble: Ensemble,
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

/// A prediction in the terms a prediction record uses (topic or REST): a classifier's
/// label, class name and confidence, or a regressor's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Labelled<'m> {
    /// The class label (its index, for a model whose classes are names).
    pub label: Option<i32>,
    /// The class's name, for a model whose classes are names.
    pub class_name: Option<&'m str>,
    /// The class's probability.
    pub confidence: Option<f64>,
    /// A regressor's value.
    pub value: Option<f64>,
}

impl Predicted {
    /// This prediction in the terms of the model `metadata` describes.
    pub fn labelled(self, metadata: &ModelMetadata) -> Labelled<'_> {
        match self {
            Predicted::Class { index, confidence } => Labelled {
                label: Some(metadata.classes[index]),
                class_name: metadata.class_names.as_ref().map(|n| n[index].as_str()),
                confidence: Some(confidence),
                value: None,
            },
            Predicted::Value(value) => Labelled {
                label: None,
                class_name: None,
                confidence: None,
                value: Some(value),
            },
        }
    }

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
    work: Workspace,
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
    /// The engine serving `ensemble`.
    pub fn new(ensemble: Ensemble) -> Self {
        Engine { ensemble }
    }

    /// Scores `rows` (row-major, [`Engine::n_features`] values each) into `out`.
    pub fn score(&self, rows: &[f64], out: &mut Scored) {
        out.n_classes = self.n_classes();
        (self.ensemble).predict_in(
            &mut out.work,
            rows,
            &mut out.probabilities,
            &mut out.classes,
        );
    }

    /// What the model says about each of `rows`: what training and import measure baselines
    /// and accuracy on.
    pub fn predict_all(&self, rows: &[f64]) -> Vec<Predicted> {
        let mut scored = Scored::default();
        self.score(rows, &mut scored);
        (0..scored.len()).map(|i| scored.predicted(i)).collect()
    }

    /// The ensemble (for export, tests and benchmarks).
    pub fn ensemble(&self) -> &Ensemble {
        &self.ensemble
    }

    /// Number of features a row must have.
    pub fn n_features(&self) -> usize {
        self.ensemble.n_features()
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.ensemble.n_trees()
    }

    /// Classes per row; 0 for a regressor.
    pub fn n_classes(&self) -> usize {
        self.ensemble.head().labels().map_or(0, Labels::len)
    }

    /// The class labels, in class-index order (none for a regressor).
    pub fn labels(&self) -> Labels {
        (self.ensemble.head().labels())
            .cloned()
            .unwrap_or(Labels::Int(Vec::new()))
    }

    /// How batches are walked, for the start-up log.
    pub fn walk(&self) -> EnsembleWalk {
        self.ensemble.walk()
    }
}

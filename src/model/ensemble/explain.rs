//! Explanations (Saabas): what each feature added to one row's score along its path through
//! every tree. Each node is worth the mean output of the reference rows that reach it (the
//! rows a model was trained or imported with); a split on feature `f` adds the difference
//! between the child taken and the split to `f`'s contribution. Along a path these
//! differences add up to the leaf's output minus the root's, so over the ensemble
//! `bias + Σ contributions` is the row's score: for a forest driftwood trained, the vote
//! share; for an averaged forest, the probability; for a boosted model, the margin before
//! the post transform (base values are part of the bias).

use super::finalize::Head;
use super::{Aggregate, Ensemble, LEAF};
use crate::error::{Error, Result};

/// Node values measured on reference rows: what [`Ensemble::explain`] needs.
#[derive(Debug, Clone)]
pub struct Explainer {
    /// Node `n`'s mean outputs are `values[n * n_outputs..][..n_outputs]`.
    values: Vec<f64>,
    /// The score of a row that tells nothing: base values plus the roots' worth.
    bias: Vec<f64>,
    /// What tree outputs are multiplied by to make the score (1 / trees for an average).
    scale: f64,
}

/// One row's explanation of one output.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The output explained: the predicted class's index, or 0 for a regressor.
    pub output: usize,
    /// The score before any feature is known.
    pub bias: f64,
    /// Each feature's contribution, in the model's feature order.
    pub contributions: Vec<f64>,
}

impl Explanation {
    /// `bias + Σ contributions`: the score explained.
    pub fn score(&self) -> f64 {
        self.bias + self.contributions.iter().sum::<f64>()
    }
}

impl Ensemble {
    /// Measures every node on `reference` (row-major, [`Ensemble::n_features`] values per
    /// row). A node no reference row reaches is worth what its parent is, so it explains
    /// nothing; a leaf is always worth its own output, so contributions add up.
    pub fn explainer(&self, reference: &[f64]) -> Result<Explainer> {
        let (n, k) = (self.n_features, self.n_outputs);
        if reference.is_empty() || !reference.len().is_multiple_of(n) {
            return Err(Error::Model {
                path: "<tree ensemble>".into(),
                message: format!(
                    "explanations need reference rows of {n} features; got {} values",
                    reference.len()
                ),
            });
        }
        let mut sums = vec![0.0; self.nodes.len() * k];
        let mut counts = vec![0u32; self.nodes.len()];
        let (mut prepared, mut path) = (Vec::new(), Vec::new());
        for row in reference.chunks_exact(n) {
            self.prepare(row, &mut prepared);
            for &root in &self.roots {
                let leaf = self.path(root, &prepared, &mut path);
                let outputs = &self.leaf_values[leaf * k..][..k];
                for &node in &path {
                    counts[node] += 1;
                    let sum = &mut sums[node * k..][..k];
                    sum.iter_mut()
                        .zip(outputs)
                        .for_each(|(s, &v)| *s += f64::from(v));
                }
            }
        }
        let values = self.node_values(sums, &counts);
        let scale = match (&self.head, self.aggregate) {
            (Head::Vote { .. }, _) | (_, Aggregate::Average) => 1.0 / self.n_trees() as f64,
            _ => 1.0,
        };
        let base = match &self.head {
            Head::Classifier { base_values, .. } | Head::Regressor { base_values, .. } => {
                base_values.as_slice()
            }
            Head::Vote { .. } => &[],
        };
        let bias = (0..k)
            .map(|c| {
                let roots: f64 = self.roots.iter().map(|&r| values[r as usize * k + c]).sum();
                let base = if base.len() == k {
                    f64::from(base[c])
                } else {
                    0.0
                };
                roots * scale + base
            })
            .collect();
        Ok(Explainer {
            values,
            bias,
            scale,
        })
    }

    /// The nodes `row` (prepared) visits from `root`, into `path`; returns the leaf's index.
    fn path(&self, root: u32, row: &[f64], path: &mut Vec<usize>) -> usize {
        path.clear();
        let mut at = root as usize;
        loop {
            path.push(at);
            let node = self.nodes[at];
            if node.feature == LEAF {
                return node.children as usize;
            }
            let yes = row[node.feature as usize] <= node.threshold;
            at = node.children as usize + usize::from(!yes);
        }
    }

    /// Each node's mean output over the rows that reached it; a leaf's own output; an
    /// unreached split's parent's. Parents come before their children in the layout.
    fn node_values(&self, mut values: Vec<f64>, counts: &[u32]) -> Vec<f64> {
        let k = self.n_outputs;
        let mut parent = vec![usize::MAX; self.nodes.len()];
        for (at, node) in self.nodes.iter().enumerate() {
            let value = &mut values[at * k..][..k];
            if node.feature == LEAF {
                let outputs = &self.leaf_values[node.children as usize * k..][..k];
                value
                    .iter_mut()
                    .zip(outputs)
                    .for_each(|(v, &o)| *v = f64::from(o));
                continue;
            }
            let children = node.children as usize;
            parent[children] = at;
            parent[children + 1] = at;
            if counts[at] > 0 {
                value.iter_mut().for_each(|v| *v /= f64::from(counts[at]));
            } else {
                let from = parent[at];
                values.copy_within(from * k..from * k + k, at * k);
            }
        }
        values
    }

    /// The output a prediction of class `class` (none for a regressor) is explained by: the
    /// class's own score, or for two classes of which the trees score only one, that one.
    pub fn explained_output(&self, class: Option<usize>) -> usize {
        match (&self.head, class) {
            (Head::Classifier { scored, .. }, Some(c)) if !scored[c] => {
                scored.iter().position(|&s| s).unwrap_or(c)
            }
            (_, Some(c)) => c,
            (_, None) => 0,
        }
    }

    /// Explains `output` for `row` ([`Ensemble::n_features`] values) with `explainer`, which
    /// must have been measured on this ensemble.
    pub fn explain(&self, explainer: &Explainer, row: &[f64], output: usize) -> Explanation {
        let (n, k) = (self.n_features, self.n_outputs);
        let mut contributions = vec![0.0; n];
        let (mut prepared, mut path) = (Vec::new(), Vec::new());
        self.prepare(row, &mut prepared);
        let value = |node: usize| explainer.values[node * k + output];
        for &root in &self.roots {
            self.path(root, &prepared, &mut path);
            for step in path.windows(2) {
                // A negated feature's splits are the feature's own.
                let feature = self.nodes[step[0]].feature as usize % n;
                contributions[feature] += explainer.scale * (value(step[1]) - value(step[0]));
            }
        }
        Explanation {
            output,
            bias: explainer.bias[output],
            contributions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Comparison, Labels, TreeNode};
    use super::*;

    /// Two trees voting between classes 0 and 1: one splits on feature 0 at 0.5 (class 0
    /// below), one on feature 1 at 0.5 (class 1 below, the split written `x > 0.5`).
    fn votes() -> Ensemble {
        let split = |feature, comparison, yes, no| {
            vec![
                TreeNode::Split {
                    feature,
                    comparison,
                    threshold: 0.5,
                    true_child: 1,
                    false_child: 2,
                    missing_true: false,
                },
                TreeNode::Leaf(vec![(yes, 1.0)]),
                TreeNode::Leaf(vec![(no, 1.0)]),
            ]
        };
        let trees = [
            split(0, Comparison::Leq, 0, 1),
            split(1, Comparison::Gt, 0, 1),
        ];
        let head = Head::Vote {
            labels: Labels::Int(vec![0, 1]),
        };
        Ensemble::new(
            2,
            super::super::Precision::F64,
            &trees,
            Aggregate::Sum,
            head,
        )
        .unwrap()
    }

    #[test]
    fn contributions_are_the_node_value_differences_along_the_path() {
        let ensemble = votes();
        // Three rows below 0.5 on feature 0, one above; two of each on feature 1.
        let reference = [0.1, 0.9, 0.2, 0.9, 0.3, 0.1, 0.8, 0.1];
        let explainer = ensemble.explainer(&reference).unwrap();
        let explained = ensemble.explain(&explainer, &[0.9, 0.2], 1);
        // Tree 1: root worth 1/4 for class 1, the row goes to the class-1 leaf (worth 1).
        // Tree 2: root worth 2/4, the row goes to the `x <= 0.5` side, class 1 (worth 1).
        // Both are halved: each tree is half the vote.
        assert_eq!(explained.output, 1);
        assert_eq!(explained.bias, (0.25 + 0.5) / 2.0);
        assert_eq!(explained.contributions, vec![0.75 / 2.0, 0.5 / 2.0]);
        assert_eq!(explained.score(), 1.0, "both trees vote class 1");
    }

    #[test]
    fn a_node_no_reference_row_reaches_explains_nothing_and_the_sum_still_holds() {
        let ensemble = votes();
        // Every reference row goes left in the first tree.
        let reference = [0.1, 0.9, 0.2, 0.1];
        let explainer = ensemble.explainer(&reference).unwrap();
        let explained = ensemble.explain(&explainer, &[0.9, 0.9], 0);
        // Tree 1's root is worth 1 for class 0; its right leaf (never reached) votes 1.
        assert_eq!(explained.contributions[0], -1.0 / 2.0);
        assert_eq!(explained.score(), 0.5, "one of two trees votes class 0");
    }

    #[test]
    fn reference_rows_of_the_wrong_width_are_refused() {
        let error = votes().explainer(&[0.1, 0.2, 0.3]).unwrap_err();
        assert!(
            error.to_string().contains("reference rows of 2 features"),
            "{error}"
        );
        assert!(votes().explainer(&[]).is_err());
    }
}

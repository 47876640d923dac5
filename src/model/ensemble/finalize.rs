//! From summed tree outputs to what a model predicts: base values, the post transform, and
//! the predicted class, with onnxruntime's rules, including its special case for two
//! classes whose trees score only one of them (boosted models, and scikit-learn forests as
//! skl2onnx exports them); or, for a forest driftwood trained, smartcore's majority vote.

/// The function applied to the scores last, as ONNX names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostTransform {
    /// Scores as they are (`NONE`).
    None,
    /// `1 / (1 + e^-x)` of each score (`LOGISTIC`).
    Logistic,
    /// Softmax over the scores (`SOFTMAX`).
    Softmax,
}

/// Class labels, as the model names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Labels {
    /// `classlabels_int64s`.
    Int(Vec<i64>),
    /// `classlabels_strings`.
    Text(Vec<String>),
}

impl Labels {
    /// Number of classes.
    pub fn len(&self) -> usize {
        match self {
            Labels::Int(l) => l.len(),
            Labels::Text(l) => l.len(),
        }
    }

    /// Whether there are no classes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The label of class `index`, as text.
    pub fn name(&self, index: usize) -> String {
        match self {
            Labels::Int(l) => l[index].to_string(),
            Labels::Text(l) => l[index].clone(),
        }
    }
}

/// What an ensemble's summed outputs mean.
#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    /// Class scores; the prediction is a class.
    Classifier {
        /// The classes.
        labels: Labels,
        /// Added to the sums (none, one per class, or one for the two-class case).
        base_values: Vec<f32>,
        /// Applied last.
        post: PostTransform,
        /// Classes that some leaf writes to (onnxruntime's `has_score`).
        scored: Vec<bool>,
        /// Whether every leaf value is ≥ 0 (then a lone two-class score is a probability).
        all_positive: bool,
    },
    /// A majority vote (a forest driftwood trained with smartcore): each leaf casts one vote,
    /// value 1 for its class; the sums are vote counts. A class's probability is its vote
    /// share, computed in float64, and the class with most votes wins, ties going to the
    /// lowest class index (smartcore's `which_max`).
    Vote {
        /// The classes.
        labels: Labels,
    },
    /// Regression targets.
    Regressor {
        /// Number of targets.
        n_targets: usize,
        /// Added to the sums (none, or one per target).
        base_values: Vec<f32>,
        /// Applied last.
        post: PostTransform,
    },
}

impl Head {
    /// Output columns the leaves write.
    pub(super) fn n_outputs(&self) -> usize {
        match self {
            Head::Classifier { labels, .. } | Head::Vote { labels } => labels.len(),
            Head::Regressor { n_targets, .. } => *n_targets,
        }
    }

    /// The classes, for a classifier or a vote.
    pub fn labels(&self) -> Option<&Labels> {
        match self {
            Head::Classifier { labels, .. } | Head::Vote { labels } => Some(labels),
            Head::Regressor { .. } => None,
        }
    }

    /// Appends one row's final scores to `out`; returns its class for a classifier. (A vote
    /// is finalized by [`vote`], in float64.)
    pub(super) fn finalize(&self, sums: &[f32], out: &mut Vec<f32>) -> Option<usize> {
        match self {
            Head::Vote { .. } => unreachable!("votes are finalized by `vote`"),
            Head::Regressor {
                base_values, post, ..
            } => {
                let start = out.len();
                out.extend_from_slice(sums);
                if base_values.len() == sums.len() {
                    for (s, b) in out[start..].iter_mut().zip(base_values) {
                        *s += b;
                    }
                }
                transform(*post, &mut out[start..]);
                None
            }
            Head::Classifier { labels, .. } if labels.len() == 2 => {
                Some(self.two_classes(sums, out))
            }
            Head::Classifier { .. } => Some(self.many_classes(sums, out)),
        }
    }

    fn many_classes(&self, sums: &[f32], out: &mut Vec<f32>) -> usize {
        let Head::Classifier {
            base_values,
            post,
            scored,
            ..
        } = self
        else {
            unreachable!("a classifier")
        };
        let start = out.len();
        out.extend_from_slice(sums);
        let scores = &mut out[start..];
        for (s, b) in scores.iter_mut().zip(base_values) {
            *s += b;
        }
        // The first strict maximum among classes that have a score.
        let mut best: Option<usize> = None;
        for (c, &s) in scores.iter().enumerate() {
            let has = scored[c] || c < base_values.len();
            if has && best.is_none_or(|b| s > scores[b]) {
                best = Some(c);
            }
        }
        transform(*post, scores);
        best.unwrap_or(0)
    }

    /// onnxruntime's two-class rules. When the trees score one class only, the class is
    /// decided on that one score (> 0.5 when all leaf values are ≥ 0, a probability; > 0
    /// otherwise, a margin), and a lone score becomes a pair of columns.
    fn two_classes(&self, sums: &[f32], out: &mut Vec<f32>) -> usize {
        let Head::Classifier {
            base_values,
            post,
            scored,
            all_positive,
            ..
        } = self
        else {
            unreachable!("a classifier")
        };
        let (mut s0, mut s1) = (sums[0], sums[1]);
        let (has0, has1) = (scored[0], scored[1]);
        let mut pair = true;
        match base_values.as_slice() {
            // onnxruntime's own rule: base_values[0] is not used when class 1 has a score,
            // and class 0 gets the negated score of class 1.
            [_, b1] if has1 => {
                s1 = b1 + s0;
                s0 = -s1;
            }
            [b0, b1] => {
                s0 += b0;
                s1 += b1;
            }
            [b0] => {
                s0 += b0;
                pair = has1;
            }
            _ => pair = has1,
        }
        let positive = match (pair && has1, has0) {
            (true, _) => s1,
            (false, true) => s0,
            (false, false) => 0.0,
        };
        let one_class_scored = scored.iter().filter(|&&s| s).count() == 1;
        let (class, margin) = match (one_class_scored, all_positive) {
            (true, true) => (usize::from(positive > 0.5), false),
            _ => (usize::from(positive > 0.0), true),
        };
        if pair {
            out.extend([s0, s1]);
            let at = out.len() - 2;
            transform(*post, &mut out[at..]);
        } else {
            out.extend(match (margin, post, class) {
                (false, _, _) => [1.0 - s0, s0],
                (true, PostTransform::Logistic, _) => [logistic(-s0), logistic(s0)],
                (true, _, 1) => [-s0, s0],
                // onnxruntime writes the negative class's pair unswapped.
                (true, _, _) => [s0, -s0],
            });
        }
        class
    }
}

/// Appends one row's vote shares (`counts` over `n_trees`) to `out` and returns the class
/// with most votes, the first of equals.
pub(super) fn vote(counts: impl Iterator<Item = f64>, n_trees: f64, out: &mut Vec<f64>) -> usize {
    let (mut winner, mut most) = (0, f64::NEG_INFINITY);
    for (i, c) in counts.enumerate() {
        if c > most {
            (winner, most) = (i, c);
        }
        out.push(c / n_trees);
    }
    winner
}

/// onnxruntime's logistic: symmetric, so that large negative scores keep their precision.
fn logistic(x: f32) -> f32 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 { 1.0 - v } else { v }
}

fn transform(post: PostTransform, scores: &mut [f32]) {
    match post {
        PostTransform::None => {}
        PostTransform::Logistic => scores.iter_mut().for_each(|s| *s = logistic(*s)),
        PostTransform::Softmax => {
            let max = scores.iter().copied().fold(-f32::MAX, f32::max);
            let mut sum = 0.0f32;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            scores.iter_mut().for_each(|s| *s /= sum);
        }
    }
}

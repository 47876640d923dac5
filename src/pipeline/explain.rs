//! Which predictions carry an explanation (`--explain-header`, `--explain-share`), and the
//! explanation in the prediction's terms.

use rdkafka::message::{BorrowedMessage, Headers, Message};

use super::sample::chosen;
use crate::codec::encode::ExplanationFields;
use crate::model::ensemble::Explanation;
use crate::model::{Model, Predicted};

/// Which records are explained.
#[derive(Debug, Clone, Default)]
pub struct ExplainSettings {
    /// Records carrying a header of this name are explained.
    pub header: Option<String>,
    /// This share of the records (chosen by position) is explained, in [0, 1].
    pub share: f64,
}

impl ExplainSettings {
    /// Whether any record can be explained.
    pub fn enabled(&self) -> bool {
        self.header.is_some() || self.share > 0.0
    }

    /// Whether `message`'s prediction carries an explanation.
    pub fn wants(&self, message: &BorrowedMessage<'_>) -> bool {
        if self.share > 0.0 && chosen(message.partition(), message.offset(), self.share) {
            return true;
        }
        // The header name first: reading the headers is a call into librdkafka.
        let Some(name) = &self.header else {
            return false;
        };
        (message.headers()).is_some_and(|headers| headers.iter().any(|h| h.key == name))
    }
}

/// `explanation` as a prediction of `model` carries it: the explained class's label (none
/// for a regressor) and the model's feature names.
pub fn fields<'a>(model: &'a Model, explanation: &'a Explanation) -> ExplanationFields<'a> {
    let metadata = &model.metadata;
    let label = match model.engine.n_classes() {
        0 => None,
        _ => Some(metadata.classes[explanation.output]),
    };
    ExplanationFields {
        label,
        bias: explanation.bias,
        features: &metadata.features,
        contributions: &explanation.contributions,
    }
}

/// Explains `predicted` for `row`; an explainer that fails (checked before the version
/// served, so not expected) costs the explanation, never the prediction.
pub fn explain(model: &Model, row: &[f64], predicted: Predicted) -> Option<Explanation> {
    match model.explain(row, predicted) {
        Ok(explanation) => Some(explanation),
        Err(e) => {
            tracing::warn!(error = %e, "cannot explain a prediction; publishing it without");
            None
        }
    }
}

//! A rollout's agreement gate (`models canary --min-agreement`): a canary's two versions
//! score different records, so a share of the serving version's records, chosen by their
//! position, is scored by the candidate as well, and each pair counts as agreeing when both
//! predicted the same class (a classifier's gate; a regressor's records are not compared).

use rdkafka::message::{BorrowedMessage, Message};

use super::lane::Lane;
use super::sample::chosen_for;
use crate::model::{Model, Predicted, Scored};

/// The share of the serving version's records the candidate scores as well.
pub const SHARE: f64 = 0.1;
/// Its choice of records, independent of the other shares chosen by position.
const PURPOSE: u64 = 0x00a9_4ee0;

/// The batch's records noted for comparing, with buffers reused across batches.
#[derive(Default)]
pub struct Agreement {
    /// Batch index and the serving version's prediction of each record noted.
    noted: Vec<(usize, Predicted)>,
    rows: Vec<f64>,
    scored: Scored,
}

impl Agreement {
    /// Notes the serving version's prediction of the batch's record `index`, if the record
    /// is one of the share compared.
    pub fn note(&mut self, index: usize, message: &BorrowedMessage<'_>, served: Predicted) {
        if chosen_for(PURPOSE, message.partition(), message.offset(), SHARE) {
            self.noted.push((index, served));
        }
    }

    /// Scores the noted records of `batch` with the candidate's lane and compares each with
    /// what `serving` said: how many agreed, of how many compared.
    pub fn compare(
        &mut self,
        batch: &[BorrowedMessage<'_>],
        serving: &Model,
        candidate: &Lane,
    ) -> (u64, u64) {
        self.rows.clear();
        let mut served = Vec::with_capacity(self.noted.len());
        for &(index, said) in &self.noted {
            let decoded = candidate
                .decoder
                .decode(batch[index].payload(), &mut self.rows);
            if decoded.is_ok() {
                served.push(said);
            }
        }
        self.noted.clear();
        if served.is_empty() {
            return (0, 0);
        }
        candidate.model.engine.score(&self.rows, &mut self.scored);
        let (mut agreed, mut compared) = (0, 0);
        for (k, &said) in served.iter().enumerate() {
            let pair = (said, self.scored.predicted(k));
            let (Predicted::Class { index: ours, .. }, Predicted::Class { index: theirs, .. }) =
                pair
            else {
                continue;
            };
            let (ours, theirs) = (
                serving.metadata.classes[ours],
                candidate.model.metadata.classes[theirs],
            );
            agreed += u64::from(ours == theirs);
            compared += 1;
        }
        (agreed, compared)
    }
}

//! One model served, as the scorer holds it: the version serving, its decoder, its drift
//! window, and the rows of the batch routed to it, scored in one call.

use std::sync::Arc;

use prometheus::IntCounter;

use crate::codec::decode::FeatureDecoder;
use crate::drift::{DriftSettings, DriftWorker};
use crate::model::{Model, Scored};
use crate::obs::metrics::Metrics;

/// A model served, with the batch's rows routed to it.
pub struct Lane {
    /// The version serving.
    pub model: Arc<Model>,
    /// The input decoder for its features.
    pub decoder: FeatureDecoder,
    /// Its drift windows, against its baselines, counted on a thread of their own.
    pub drift: DriftWorker,
    /// The batch's decoded rows routed here, row-major.
    pub rows: Vec<f64>,
    /// What the model said about them.
    pub scored: Scored,
    /// The next row handed out while the batch's outputs are sent.
    next: usize,
    /// Records of the batch scored and dead-lettered, added to the counters at its end.
    batch_counts: [u64; 2],
    /// The batch's rows scored and the seconds the model took on them (for a rollout's
    /// latency gate).
    batch_scoring: (u64, f64),
    /// `driftwood_model_records_total` of this version: scored, dead-lettered.
    counted: [IntCounter; 2],
}

impl Lane {
    /// A lane serving `model`, read through `decoder`.
    pub fn new(
        model: Arc<Model>,
        decoder: FeatureDecoder,
        drift: &DriftSettings,
        metrics: &Metrics,
    ) -> Self {
        Lane {
            drift: DriftWorker::new(model.clone(), drift.clone(), metrics.clone()),
            counted: counters(&model, metrics),
            model,
            decoder,
            rows: Vec::new(),
            scored: Scored::default(),
            next: 0,
            batch_counts: [0; 2],
            batch_scoring: (0, 0.0),
        }
    }

    /// Empties the rows for a new batch.
    pub fn begin(&mut self) {
        self.rows.clear();
        self.next = 0;
    }

    /// Scores the batch's rows routed here in one call.
    pub fn score(&mut self) {
        if !self.rows.is_empty() {
            let started = std::time::Instant::now();
            self.model.engine.score(&self.rows, &mut self.scored);
            let rows = (self.rows.len() / self.model.engine.n_features().max(1)) as u64;
            self.batch_scoring = (rows, started.elapsed().as_secs_f64());
        } else {
            self.batch_scoring = (0, 0.0);
        }
    }

    /// The batch's rows scored and the seconds the model took on them.
    pub fn batch_scoring(&self) -> (u64, f64) {
        self.batch_scoring
    }

    /// The next scored row, in the order the records were decoded.
    pub fn next_row(&mut self) -> usize {
        self.next += 1;
        self.next - 1
    }

    /// Counts a record this version scored.
    pub fn count_scored(&mut self) {
        self.batch_counts[0] += 1;
    }

    /// Counts a record routed here that could not be decoded, in the metrics and the drift
    /// window.
    pub fn dead_lettered(&mut self, partition: i32) {
        self.batch_counts[1] += 1;
        self.drift.note_invalid(partition);
    }

    /// The batch's records scored and dead-lettered so far.
    pub fn batch_counts(&self) -> (u64, u64) {
        (self.batch_counts[0], self.batch_counts[1])
    }

    /// Adds the batch's counts to the metrics: once a batch, not once a record.
    pub fn end(&mut self) {
        for (counter, count) in self.counted.iter().zip(&mut self.batch_counts) {
            counter.inc_by(std::mem::take(count));
        }
    }
}

fn counters(model: &Model, metrics: &Metrics) -> [IntCounter; 2] {
    let (name, version) = (&model.metadata.name, &model.metadata.version);
    ["scored", "dead_lettered"].map(|outcome| {
        (metrics.outputs.model_records).with_label_values(&[
            name.as_str(),
            version.as_str(),
            outcome,
        ])
    })
}

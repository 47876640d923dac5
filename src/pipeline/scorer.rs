//! Turns a batch of input messages into outputs: decode every message, score the good ones
//! in one forest call, then send each prediction or dead letter in input order.

use std::time::Instant;

use rdkafka::message::{BorrowedMessage, Message};

use crate::codec::decode::{DecodeError, RecordMeta};
use crate::error::Result;
use crate::model::watch::Loaded;
use crate::obs::epoch_millis;

use super::canary::BatchFigures;
use super::explain::{self, ExplainSettings};
use super::labels::Labels;
use super::lane::Lane;
pub use super::outputs::OutputTopics;
use super::outputs::{self, Outputs, Scoring};
use super::review::Review;
use super::route::Router;
use super::sample;
use super::serving::{CanaryLane, ServingSet};
use crate::model::rollout;

use super::accounting::Sink;
use crate::codec::decode::FeatureDecoder;
use crate::drift::{DriftReport, DriftSettings};
use crate::obs::metrics::Metrics;

/// How a scorer works, besides the model and decoder it scores with.
#[derive(Debug, Clone)]
pub struct ScorerSettings {
    /// Where outputs go.
    pub topics: OutputTopics,
    /// Forward messages unchanged, without decoding or scoring (the benchmark's ceiling).
    pub pass_through: bool,
    /// Drift windows.
    pub drift: DriftSettings,
    /// Which predictions carry an explanation.
    pub explain: ExplainSettings,
}

/// The per-batch work of the consumer loop (decode, score, outputs), with buffers reused
/// across batches. Which model scores is the serving set's to say.
pub struct Scorer {
    serving: ServingSet,
    metrics: Metrics,
    settings: ScorerSettings,
    outputs: Outputs,
    /// With `--labels-topic`: predictions kept for their labels, and the labels joined.
    labels: Option<Labels>,
    /// With `--review-topic`: records chosen for labelling.
    review: Option<Review>,
}

/// Each message's lane (none when it names a model not served) and what decoding it said.
type Decoded<'a> = Vec<(Option<usize>, Result<RecordMeta<'a>, DecodeError>)>;

impl Scorer {
    /// A scorer for the models `serving` serves. It reads the assignment from the sink's
    /// partition progress (records of a partition revoked meanwhile are skipped).
    pub fn new(serving: ServingSet, metrics: Metrics, settings: ScorerSettings) -> Self {
        Scorer {
            serving,
            outputs: Outputs::new(settings.topics.clone(), metrics.clone()),
            metrics,
            settings,
            labels: None,
            review: None,
        }
    }

    /// This scorer, sending records chosen for labelling to `review`.
    pub fn with_review(mut self, review: Review) -> Self {
        self.review = Some(review);
        self
    }

    /// This scorer, keeping its predictions for `labels`.
    pub fn with_labels(mut self, labels: Labels) -> Self {
        self.outputs.partition_like_input();
        self.labels = Some(labels);
        self
    }

    /// Joins a batch of label records (after the batch of input read with them, so that a
    /// label read with its record finds its prediction).
    /// Fails when the labels' state could not be restored.
    pub fn handle_labels(&mut self, batch: &[BorrowedMessage<'_>], sink: &Sink) -> Result<()> {
        let Some(labels) = &mut self.labels else {
            return Ok(());
        };
        let now = epoch_millis();
        let handled = labels.handle(batch, &self.outputs, sink, now);
        let ticked = handled.and_then(|()| labels.tick((&self.outputs, sink), now));
        for window in labels.take_published() {
            self.serving.labelled(&window);
        }
        ticked
    }

    /// The serving set, between batches.
    pub fn serving(&mut self) -> &mut ServingSet {
        &mut self.serving
    }

    /// Sends one output per message of `batch`, in order. Messages of partitions revoked
    /// while the batch was being collected are skipped: their new owner reads them again.
    pub fn handle_batch(&mut self, batch: &[BorrowedMessage<'_>], sink: &Sink) {
        // Rebalances happen only inside the consumer's poll, never while a batch is handled,
        // so one look at the assignment serves the whole batch.
        let assigned: Vec<i32> = sink.progress().lock().assigned().collect();
        if self.settings.pass_through {
            return self.forward_batch(batch, &assigned, sink);
        }
        let started = Instant::now();
        // Owned for the loop, which needs `self` mutably; put back afterwards.
        let mut lanes = std::mem::take(&mut self.serving.lanes);
        let split = (self.serving.router.as_ref(), self.serving.canary);
        let decoded = decode(split, &mut lanes, batch);
        lanes.iter_mut().for_each(Lane::score);
        let per_record = started.elapsed().as_secs_f64() / batch.len().max(1) as f64;
        let now = epoch_millis();
        // The default model's records, which its rollback guard counts.
        let (mut scored_records, mut dead_letters) = (0u64, 0u64);
        // Counted here and added to the shared histogram once, at the end of the batch.
        let scoring_seconds = self.metrics.outputs.scoring_seconds.local();
        for (index, (message, (lane, result))) in batch.iter().zip(decoded).enumerate() {
            let scored_row = match (lane, &result) {
                (Some(l), Ok(_)) => Some(lanes[l].next_row()),
                _ => None,
            };
            let partition = message.partition();
            if !assigned.contains(&partition) {
                continue;
            }
            match (lane, result, scored_row) {
                (Some(l), Ok(meta), Some(i)) => {
                    scoring_seconds.observe(per_record);
                    scored_records += u64::from(l == 0);
                    let record = Scoring {
                        index,
                        meta,
                        row: i,
                        now,
                    };
                    self.send_scored((l, &mut lanes[l]), message, record, sink);
                }
                (lane, Err(error), _) => {
                    if let Some(l) = lane {
                        dead_letters += u64::from(l == 0);
                        lanes[l].dead_lettered(partition);
                    }
                    self.outputs.dead_letter(message, &error, sink);
                }
                (_, Ok(_), _) => unreachable!("one scored row per decoded record"),
            }
        }
        for (l, lane) in lanes.iter_mut().enumerate() {
            let publish = |report: DriftReport| self.publish(l, &report, sink);
            lane.drift.count_batch(&mut lane.rows, &assigned, publish);
        }
        if let Some(shadow) = &mut self.serving.shadow {
            shadow.compare(batch, &lanes[0].model, sink);
        }
        self.compare_with_candidate(batch, &lanes);
        let counts: Vec<(usize, BatchFigures)> = (lanes.iter().enumerate())
            .map(|(l, lane)| (l, (lane.batch_counts(), lane.batch_scoring())))
            .collect();
        lanes.iter_mut().for_each(Lane::end);
        self.serving.lanes = lanes;
        self.serving.judge_batch(&counts);
        if self.serving.lanes.len() > 1 {
            // A lane no record came to closes its window by age.
            self.tick(sink);
        }
        // Records of partitions revoked meanwhile were skipped, and count for nothing. A
        // rollback closes the windows; the default model's carries the notice.
        if self.serving.batch_done(scored_records, dead_letters) {
            self.flush_drift(sink);
        }
    }

    /// With a rollout's agreement gate: the serving version's noted records of `batch`
    /// scored by the candidate as well, and counted for the stage.
    fn compare_with_candidate(&mut self, batch: &[BorrowedMessage<'_>], lanes: &[Lane]) {
        let (Some(agreement), Some(canary)) = (&mut self.serving.agreement, self.serving.canary)
        else {
            return;
        };
        let counts = agreement.compare(batch, &lanes[0].model, &lanes[canary.lane]);
        self.serving.judge_agreement(counts);
    }

    /// One scored record's drift, shadow note, explanation and prediction.
    fn send_scored(
        &mut self,
        (l, lane): (usize, &mut Lane),
        message: &BorrowedMessage<'_>,
        record: Scoring<'_>,
        sink: &Sink,
    ) {
        lane.count_scored();
        let predicted = lane.scored.predicted(record.row);
        (lane.drift).note(
            message.partition(),
            record.row,
            predicted,
            record.meta.label,
        );
        if let Some(shadow) = &mut self.serving.shadow
            && l == 0
        {
            shadow.note(record.index, message, predicted);
        }
        if let Some(agreement) = &mut self.serving.agreement
            && l == 0
        {
            agreement.note(record.index, message, predicted);
        }
        let n = lane.model.engine.n_features();
        let row = &lane.rows[record.row * n..][..n];
        let explanation = (self.settings.explain.wants(message))
            .then(|| explain::explain(&lane.model, row, predicted))
            .flatten();
        let scores = (predicted, lane.scored.row(record.row));
        let model = &lane.model;
        if let Some(review) = &mut self.review {
            review.consider(model, message, (&record, row), predicted, sink);
        }
        if let Some(labels) = &mut self.labels {
            let id = outputs::record_id(message, &record.meta);
            let at = outputs::event_time(message, &record.meta, record.now);
            labels.awaits((message.partition(), &id), model, scores, (at, record.now));
        }
        (self.outputs).prediction(model, message, record, scores, explanation.as_ref(), sink);
    }

    /// `--pass-through`: forwards each message of an assigned partition unchanged.
    fn forward_batch(&mut self, batch: &[BorrowedMessage<'_>], assigned: &[i32], sink: &Sink) {
        for message in batch {
            if assigned.contains(&message.partition()) {
                self.outputs.forward(message, sink);
            }
        }
    }

    /// Serves the version `loaded` from the next batch on (see [`ServingSet::swap`]); the
    /// old version's drift window is published.
    pub fn swap(&mut self, loaded: Loaded<FeatureDecoder>, sink: &Sink) {
        let assigned: Vec<i32> = sink.progress().lock().assigned().collect();
        if let Some((l, reports)) = self.serving.swap(loaded, &assigned) {
            for report in reports {
                self.publish(l, &report, sink);
            }
        }
    }

    /// Serves the default model's rollout as it changed since (its candidate to its share
    /// of the keys, from the next batch on; a candidate that stops serving has its window
    /// published), and where this instance judges it, carries out and publishes the
    /// decision its stage's figures give.
    pub fn follow_rollout(&mut self, sink: &Sink) {
        if !self.serving.follows_rollouts() {
            return; // Not following the registry (no `--model-name`): nothing to look at.
        }
        let assigned: Vec<i32> = sink.progress().lock().assigned().collect();
        for (l, reports) in self.serving.follow_rollout(&assigned) {
            for report in reports {
                self.publish(l, &report, sink);
            }
        }
        // The holder of input partition 0 judges the rollout's stage.
        if let Some(decided) = self.serving.decide_rollout(assigned.contains(&0)) {
            let instance = &self.settings.drift.instance_id;
            (self.outputs).rollout_decision(&decided, instance, sink);
        }
    }

    /// Closes the drift windows that are old enough (called when no records arrive, and
    /// after each batch).
    pub fn tick(&mut self, sink: &Sink) {
        if !self.settings.pass_through {
            let assigned: Vec<i32> = sink.progress().lock().assigned().collect();
            for l in 0..self.serving.lanes.len() {
                for report in self.serving.lanes[l].drift.close_if_due(&assigned) {
                    self.publish(l, &report, sink);
                }
            }
        }
    }

    /// Closes and publishes every drift window (at shutdown, and after a rollback).
    pub fn flush_drift(&mut self, sink: &Sink) {
        if !self.settings.pass_through {
            let assigned: Vec<i32> = sink.progress().lock().assigned().collect();
            for l in 0..self.serving.lanes.len() {
                for report in self.serving.lanes[l].drift.close(&assigned) {
                    self.publish(l, &report, sink);
                }
            }
        }
    }

    /// Sends lane `l`'s drift report, keyed by this instance's id, with the notice the
    /// serving set has for it.
    fn publish(&mut self, l: usize, report: &DriftReport, sink: &Sink) {
        let noticed;
        let report = match self.serving.reported(l, report) {
            Some(notice) => {
                noticed = DriftReport {
                    notice: Some(notice),
                    ..report.clone()
                };
                &noticed
            }
            None => report,
        };
        let instance = &self.settings.drift.instance_id;
        self.outputs.drift_report(report, instance, sink);
    }
}

/// Routes each message of `batch` to a lane (all to the first without a router; the default
/// model's share of keys to a rollout's candidate) and decodes it there, appending its
/// features to the lane's rows.
fn decode<'a>(
    (router, canary): (Option<&Router>, Option<CanaryLane>),
    lanes: &mut [Lane],
    batch: &'a [BorrowedMessage<'_>],
) -> Decoded<'a> {
    lanes.iter_mut().for_each(Lane::begin);
    (batch.iter())
        .map(|message| {
            let lane = match router.map_or(Ok(0), |r| r.lane(message)) {
                Ok(0) => canary
                    .filter(|c| keyed(message, c.share))
                    .map_or(0, |c| c.lane),
                Ok(l) => l,
                Err(unroutable) => return (None, Err(unroutable)),
            };
            let lane_ = &mut lanes[lane];
            (
                Some(lane),
                lane_.decoder.decode(message.payload(), &mut lane_.rows),
            )
        })
        .collect()
}

/// Whether `message` is among `share` of the keys (by its key; a record without one by its
/// position).
fn keyed(message: &BorrowedMessage<'_>, share: f64) -> bool {
    match message.key() {
        Some(key) => rollout::candidate_takes(key, share),
        None => sample::chosen(message.partition(), message.offset(), share),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    use super::*;
    use crate::codec::decode::{BUNDLED_FEATURE_SCHEMA, InputFormat};
    use crate::kafka::testing::{cluster, eventually, produce_records, producer_config};
    use crate::model::Model;
    use crate::obs::health::Health;
    use crate::pipeline::accounting::Accounting;

    #[test]
    fn records_of_a_partition_revoked_meanwhile_are_not_sent() {
        let cluster = cluster(&["in", "out", "dlq", "drift"], 2);
        let bootstrap = cluster.bootstrap_servers();
        produce_records(&bootstrap, "in", &[0, 1, 0, 1]);
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "reader")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in [0, 1] {
            tpl.add_partition_offset("in", p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).unwrap();
        let mut batch = Vec::new();
        let collected = eventually(Duration::from_secs(30), || {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                batch.push(m);
            }
            batch.len() == 4
        });
        assert!(collected, "read {} of 4 records", batch.len());

        // Partition 1 was revoked while the batch was collected.

        let metrics = Metrics::new();
        let health = Arc::new(Health::default());
        let accounting = Arc::new(Accounting::new(&metrics, health));
        let sink = Sink::new(&producer_config(&bootstrap), accounting).unwrap();
        let progress = sink.progress();
        progress.lock().assign([0]);
        let model_dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/breast-cancer/1");
        let model = Arc::new(Model::load(&model_dir).unwrap());
        let schema = FeatureDecoder::parse_schema(BUNDLED_FEATURE_SCHEMA, "bundled").unwrap();
        let decoder =
            FeatureDecoder::new(schema, &model.metadata.features, InputFormat::Avro, 1 << 20)
                .unwrap();
        let settings = ScorerSettings {
            topics: OutputTopics {
                predictions: "out".into(),
                dead_letters: "dlq".into(),
                drift_reports: "drift".into(),
                rollouts: None,
                schema_ids: Default::default(),
            },
            pass_through: false,
            drift: DriftSettings::new("test".into()),
            explain: ExplainSettings::default(),
        };
        let serving = ServingSet::new((model, decoder), &settings.drift, &metrics);
        let mut scorer = Scorer::new(serving, metrics.clone(), settings);
        scorer.handle_batch(&batch, &sink);

        assert_eq!(
            progress.lock().in_flight_in(&[0]),
            2,
            "partition 0's records are sent"
        );
        assert_eq!(
            progress.lock().in_flight_in(&[1]),
            0,
            "partition 1's are left to their new owner"
        );
        assert!(sink.drain(&[0], Duration::from_secs(10)));
        assert_eq!(metrics.scored(), 2);
    }
}

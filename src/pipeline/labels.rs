//! The labels topic in the loop (`--labels-topic`): each scored record's prediction kept for
//! its label, each label record decoded and joined (`crate::labels`), each full window of
//! labels published to the performance topic, and the labels partitions' commits held at the
//! first record of their open window until it is.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::message::{BorrowedMessage, Message};

use super::accounting::{Outcome, Sink};
use super::outputs::Outputs;
use super::restore::{Restored, Restorer};
use crate::codec::decode::{
    DecodeError, DecodeErrorKind, FeatureDecoder, InputFormat, MissingFeatures,
};
use crate::codec::encode::{AvroCodec, GROUND_TRUTH_SCHEMA};
use crate::codec::registry;
use crate::error::Result;
use crate::kafka::events::Output;
use crate::kafka::offsets::Lease;
use crate::labels::realized::{Truth, VersionPerformance};
use crate::labels::{Join, JoinSettings, PerformanceWindow};
use crate::model::{Model, Predicted};
use crate::obs::metrics::LabelMetrics;

/// How often predictions older than twice the horizon are swept, and the gauges set.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Where labels come from and where their windows go.
#[derive(Debug, Clone)]
pub struct LabelSettings {
    /// The labels topic (`GroundTruth` records, plain Avro).
    pub topic: String,
    /// Where windows of realized performance go.
    pub performance_topic: String,
    /// A label later than this after its prediction's event is late.
    pub horizon: Duration,
    /// Label records per window and labels partition.
    pub window_records: usize,
}

/// A label record read while its partition was being restored.
struct Pending {
    offset: i64,
    lease: Lease,
    /// Its id, truth and event time; none when it was dead-lettered.
    read: Option<(String, Truth, i64)>,
}

/// The join and what it needs to read labels and publish windows.
pub struct Labels {
    join: Join<Lease>,
    restorer: Restorer,
    /// The assignment each labels partition's state was restored for, and is being.
    restored: HashMap<i32, Lease>,
    restoring: HashMap<i32, Lease>,
    /// Label records read before their partition's restore finished, in order.
    pending: HashMap<i32, Vec<Pending>>,
    decoder: FeatureDecoder,
    performance_topic: String,
    codec: AvroCodec,
    metrics: LabelMetrics,
    encoded: Vec<u8>,
    row: Vec<f64>,
    swept: Instant,
    /// Windows published since the last [`Labels::take_published`].
    published: Vec<PerformanceWindow>,
    /// With `--output-format confluent`: the schema id windows are framed with.
    schema_id: Option<u32>,
}

impl Labels {
    /// Labels per `settings`, windows named with `instance_id`; state is restored with
    /// `restorer`.
    pub fn new(
        settings: &LabelSettings,
        instance_id: &str,
        restorer: Restorer,
        metrics: LabelMetrics,
    ) -> Result<Self> {
        let schema = FeatureDecoder::parse_schema(GROUND_TRUTH_SCHEMA, "ground_truth.avsc")?;
        let decoder = FeatureDecoder::new(schema, &["value".into()], InputFormat::Avro, 1 << 20)?
            .with_missing(MissingFeatures::Score);
        let join = Join::new(JoinSettings {
            horizon_ms: settings.horizon.as_millis() as i64,
            window_records: settings.window_records,
            instance_id: instance_id.to_owned(),
            labels_topic: settings.topic.clone(),
        });
        Ok(Labels {
            join,
            restorer,
            restored: HashMap::new(),
            restoring: HashMap::new(),
            pending: HashMap::new(),
            decoder,
            performance_topic: settings.performance_topic.clone(),
            codec: AvroCodec::performance(),
            metrics,
            encoded: Vec::new(),
            row: Vec::new(),
            swept: Instant::now(),
            published: Vec::new(),
            schema_id: None,
        })
    }

    /// These labels, their windows framed with the registered schema `id` (if any).
    pub fn framed(mut self, id: Option<u32>) -> Self {
        self.schema_id = id;
        self
    }

    /// Keeps the prediction `model` made of record `id` (input `partition`, event at
    /// `event_time`, scored `now`) for its label.
    pub fn awaits(
        &mut self,
        record: (i32, &str),
        model: &Model,
        scores: (Predicted, &[f64]),
        times: (i64, i64),
    ) {
        self.join.scored(record, model, scores, times);
    }

    /// Joins each label record of `messages` (or keeps it until its partition is restored),
    /// dead-letters those that cannot be read, and publishes the windows they fill.
    pub fn handle(
        &mut self,
        messages: &[BorrowedMessage<'_>],
        outputs: &Outputs,
        sink: &Sink,
        now: i64,
    ) {
        let progress = sink.progress();
        for message in messages {
            let (partition, offset) = (message.partition(), message.offset());
            let tracker = progress.labels();
            let (Some(lease), Some(assignment)) =
                (tracker.lease(partition), tracker.assignment(partition))
            else {
                continue; // Revoked meanwhile: its next owner reads it again.
            };
            drop(tracker);
            let read = match self.read(message) {
                Ok((id, truth, at)) => Some((id.to_owned(), truth, at)),
                Err(error) => {
                    let output = Output::Label {
                        partition,
                        offset,
                        outcome: Outcome::LabelDeadLettered(error.kind),
                    };
                    outputs.dead_letter_as(message, &error, sink, output);
                    None
                }
            };
            let label = Pending {
                offset,
                lease,
                read,
            };
            if self.restored.get(&partition) == Some(&assignment) {
                self.apply(partition, label, sink, now);
                continue;
            }
            // Not restored yet: kept, in order, and nothing from here on is committed.
            let pending = self.pending.entry(partition).or_default();
            pending.retain(|p| p.lease == lease);
            if pending.is_empty() {
                progress.labels().hold(partition, Some(offset));
            }
            pending.push(label);
        }
    }

    /// Joins one label record (or counts it dead-lettered), holds commits at a window's
    /// first record while it is open, and publishes it when full.
    fn apply(&mut self, partition: i32, label: Pending, sink: &Sink, now: i64) {
        let progress = sink.progress();
        let truth = label
            .read
            .as_ref()
            .map(|(id, t, at)| (id.as_str(), *t, *at));
        let joined = self
            .join
            .label((partition, label.offset, label.lease), truth, now);
        if let Some(first) = joined.opened {
            progress.labels().hold(partition, Some(first));
        }
        if label.read.is_some() {
            progress.labels().processed(partition, label.offset);
        }
        self.metrics
            .labels
            .with_label_values(&[joined.outcome.as_str()])
            .inc();
        if let Some(window) = joined.closed {
            self.publish(&window, sink);
            progress.labels().hold(partition, None);
            self.published.push(window);
        }
    }

    /// The windows published since the last call.
    pub fn take_published(&mut self) -> Vec<PerformanceWindow> {
        std::mem::take(&mut self.published)
    }

    /// A label record's id, truth and event time (ms), or why it cannot be joined.
    fn read<'m>(
        &mut self,
        message: &'m BorrowedMessage<'_>,
    ) -> Result<(&'m str, Truth, i64), DecodeError> {
        self.row.clear();
        let meta = self.decoder.decode(message.payload(), &mut self.row)?;
        let missing =
            |what: &str| DecodeError::new(DecodeErrorKind::MissingFeature, what.to_owned());
        let id = meta
            .id
            .ok_or_else(|| missing("a label record needs an id"))?;
        let truth = match (meta.label, self.row[0]) {
            (Some(label), _) => Truth::Class(label),
            (None, value) if value.is_finite() => Truth::Value(value),
            _ => return Err(missing("a label record needs a label or a finite value")),
        };
        let at = meta
            .event_time_ms
            .or_else(|| message.timestamp().to_millis());
        Ok((id, truth, at.unwrap_or(0)))
    }

    /// Sends `window` to the performance topic, keyed by its labels partition; its first
    /// offset waits for the acknowledgement.
    fn publish(&mut self, window: &PerformanceWindow, sink: &Sink) {
        self.encoded.clear();
        if let Some(id) = self.schema_id {
            registry::frame(id, &mut self.encoded);
        }
        self.codec
            .encode(window, &mut self.encoded)
            .expect("a window matches its schema");
        let output = Output::Label {
            partition: window.partition,
            offset: window.first_offset,
            outcome: Outcome::Performance,
        };
        let key = window.partition.to_string();
        sink.send(
            &self.performance_topic,
            Some(key.as_bytes()),
            Some(&self.encoded),
            None,
            output,
        );
        for version in &window.versions {
            self.show(version);
        }
    }

    /// Sets the version's realized gauges.
    fn show(&self, v: &VersionPerformance) {
        let figures = [
            ("accuracy", v.accuracy),
            ("f1", v.f1),
            ("roc_auc", v.roc_auc),
            ("log_loss", v.log_loss),
            ("expected_accuracy", v.expected_accuracy),
            ("mae", v.mae),
            ("rmse", v.rmse),
            ("r2", v.r2),
        ];
        for (metric, figure) in figures {
            if let Some(figure) = figure {
                let labels = [v.model_name.as_str(), &v.model_version, metric];
                self.metrics.realized.with_label_values(&labels).set(figure);
            }
        }
    }

    /// Starts restoring newly assigned partitions, takes in finished restores (then joins
    /// the labels kept meanwhile), and every few seconds forgets what partitions no longer
    /// held had and predictions older than twice the horizon, and sets the gauges. Fails
    /// when a restore failed.
    pub fn tick(&mut self, sink: &Sink, now: i64) -> Result<()> {
        let progress = sink.progress();
        let assigned: Vec<(i32, Lease)> = {
            let labels = progress.labels();
            let partitions: Vec<i32> = labels.assigned().collect();
            (partitions.into_iter())
                .filter_map(|p| Some((p, labels.assignment(p)?)))
                .collect()
        };
        for &(p, lease) in &assigned {
            let started = [self.restored.get(&p), self.restoring.get(&p)];
            if !started.contains(&Some(&lease)) {
                self.restorer.start(p, lease, now)?;
                self.restoring.insert(p, lease);
            }
        }
        let finished: Vec<Restored> = self.restorer.finished().collect();
        for restored in finished {
            self.take_in(restored, sink, now)?;
        }
        if self.swept.elapsed() < SWEEP_EVERY {
            return Ok(());
        }
        self.swept = Instant::now();
        let held = |p: i32, lease: Lease| assigned.contains(&(p, lease));
        self.restored.retain(|&p, &mut l| held(p, l));
        self.restoring.retain(|&p, &mut l| held(p, l));
        self.pending
            .retain(|p, _| assigned.iter().any(|a| a.0 == *p));
        let input = progress.lock().assigned().collect::<Vec<_>>();
        let labels = progress.labels();
        self.join
            .retain(|p| input.contains(&p), |p, lease| labels.holds(p, lease));
        drop(labels);
        self.join.sweep(now);
        let (count, bytes) = self.join.awaiting();
        self.metrics.awaiting.set(count as i64);
        self.metrics.awaiting_bytes.set(bytes as i64);
        Ok(())
    }

    /// Adds a finished restore to the join, if the partition is still held under the
    /// assignment it was begun for, and joins the labels kept while it ran.
    fn take_in(&mut self, restored: Restored, sink: &Sink, now: i64) -> Result<()> {
        let Restored {
            partition,
            lease,
            state,
        } = restored;
        if self.restoring.get(&partition) == Some(&lease) {
            self.restoring.remove(&partition);
        }
        let current = sink.progress().labels().assignment(partition);
        if current != Some(lease) {
            return Ok(()); // Revoked since; a later assignment restores again.
        }
        let state = state?;
        for (id, p) in state.predictions {
            let model = (p.model.0.as_str(), p.model.1.as_str());
            let at = (p.event_time, p.scored_at);
            self.join
                .restored((partition, &id), (model, &p.classes), p.said, at);
        }
        for (id, offset) in state.joined {
            self.join.joined_before(partition, &id, offset);
        }
        self.restored.insert(partition, lease);
        let current = sink.progress().labels().lease(partition);
        for label in self.pending.remove(&partition).unwrap_or_default() {
            if Some(label.lease) == current {
                self.apply(partition, label, sink, now);
            }
        }
        Ok(())
    }
}

//! The labels topic in the loop (`--labels-topic`): each scored record's prediction kept for
//! its label, each label record decoded and joined (`crate::labels`), each full window of
//! labels published to the performance topic, and the labels partitions' commits held at the
//! first record of their open window until it is.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rdkafka::message::{BorrowedMessage, Message, OwnedMessage};

use super::accounting::{Outcome, Sink};
use super::label_reader::LabelReader;
use super::outputs::Outputs;
use super::restore::{Restored, Restorer};
use crate::codec::encode::AvroCodec;
use crate::codec::registry;
use crate::error::{Error, Result};
use crate::kafka::events::Output;
use crate::kafka::offsets::Lease;
use crate::labels::realized::{Truth, VersionPerformance};
use crate::labels::spill::SpillDir;
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
    /// Whether label records are Confluent-framed, read through the schema registry.
    pub framed: bool,
    /// Where awaiting predictions are kept on disk (`None`: in memory).
    pub awaiting_dir: Option<std::path::PathBuf>,
}

/// A label record kept until its partition is restored and its schema known.
struct Pending {
    lease: Lease,
    message: OwnedMessage,
}

/// The join and what it needs to read labels and publish windows.
pub struct Labels {
    join: Join<Lease>,
    restorer: Restorer,
    /// The assignment each labels partition's state was restored for, and is being.
    restored: HashMap<i32, Lease>,
    restoring: HashMap<i32, Lease>,
    /// Label records read before their partition was restored or their schema known, in
    /// order.
    pending: HashMap<i32, VecDeque<Pending>>,
    reader: LabelReader,
    performance_topic: String,
    codec: AvroCodec,
    metrics: LabelMetrics,
    encoded: Vec<u8>,
    swept: Instant,
    /// Windows published since the last [`Labels::take_published`].
    published: Vec<PerformanceWindow>,
    /// With `--output-format confluent`: the schema id windows are framed with.
    schema_id: Option<u32>,
    /// The store on disk failed while a prediction was kept (returned by `tick`).
    failed: Option<Error>,
}

impl Labels {
    /// Labels per `settings`, read by `reader`, windows named with `instance_id`; state is
    /// restored with `restorer`.
    pub fn new(
        settings: &LabelSettings,
        (instance_id, reader): (&str, LabelReader),
        restorer: Restorer,
        metrics: LabelMetrics,
    ) -> Result<Self> {
        let join = Join::new(JoinSettings {
            horizon_ms: settings.horizon.as_millis() as i64,
            window_records: settings.window_records,
            instance_id: instance_id.to_owned(),
            labels_topic: settings.topic.clone(),
            spill: (settings.awaiting_dir.as_deref())
                .map(SpillDir::open)
                .transpose()?,
        });
        Ok(Labels {
            join,
            restorer,
            restored: HashMap::new(),
            restoring: HashMap::new(),
            pending: HashMap::new(),
            reader,
            performance_topic: settings.performance_topic.clone(),
            codec: AvroCodec::performance(),
            metrics,
            encoded: Vec::new(),
            swept: Instant::now(),
            published: Vec::new(),
            schema_id: None,
            failed: None,
        })
    }

    /// These labels, their windows framed with the registered schema `id` (if any).
    pub fn framed(mut self, id: Option<u32>) -> Self {
        self.schema_id = id;
        self
    }

    /// Keeps the prediction `model` made of record `id` (input `partition`, event at
    /// `event_time`, scored `now`) for its label. A failure of the store on disk is kept
    /// for the next [`Labels::tick`] to return (the scoring path does not stop mid-batch).
    pub fn awaits(
        &mut self,
        record: (i32, &str),
        model: &Model,
        scores: (Predicted, &[f64]),
        times: (i64, i64),
    ) {
        if let Err(e) = self.join.scored(record, model, scores, times) {
            self.failed.get_or_insert(e);
        }
    }

    /// Joins each label record of `messages` (or keeps it until its partition is restored
    /// and its schema known), dead-letters those that cannot be read, and publishes the
    /// windows they fill. Fails when the schema registry refuses.
    pub fn handle(
        &mut self,
        messages: &[BorrowedMessage<'_>],
        outputs: &Outputs,
        sink: &Sink,
        now: i64,
    ) -> Result<()> {
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
            let pending = self.pending.entry(partition).or_default();
            pending.retain(|p| p.lease == lease);
            let restored = self.restored.get(&partition) == Some(&assignment);
            if restored && pending.is_empty() && self.reader.ready(message)? {
                self.process(message, lease, (outputs, sink), now)?;
                continue;
            }
            // Kept, in order, and nothing from here on is committed until it is joined.
            if pending.is_empty() {
                progress.labels().hold(partition, Some(offset));
            }
            let message = message.detach();
            pending.push_back(Pending { lease, message });
        }
        Ok(())
    }

    /// Joins the label records kept for `partition` whose schema is known now, in order.
    fn flush(
        &mut self,
        partition: i32,
        (outputs, sink): (&Outputs, &Sink),
        now: i64,
    ) -> Result<()> {
        let current = sink.progress().labels().lease(partition);
        while let Some(front) = self.pending.get_mut(&partition).and_then(|q| q.pop_front()) {
            if Some(front.lease) != current {
                continue; // Read again under the current lease.
            }
            if !self.reader.ready(&front.message)? {
                self.pending.entry(partition).or_default().push_front(front);
                break;
            }
            self.process(&front.message, front.lease, (outputs, sink), now)?;
        }
        Ok(())
    }

    /// Reads one label record and joins it, or dead-letters it with its reason. Fails when
    /// the store on disk does.
    fn process<M: Message>(
        &mut self,
        message: &M,
        lease: Lease,
        (outputs, sink): (&Outputs, &Sink),
        now: i64,
    ) -> Result<()> {
        let (partition, offset) = (message.partition(), message.offset());
        let read = self.reader.read(message);
        if let Err(error) = &read {
            let outcome = Outcome::LabelDeadLettered(error.kind);
            let output = Output::Label {
                partition,
                offset,
                outcome,
            };
            outputs.dead_letter_as(message, error, sink, output);
        }
        self.apply((partition, offset, lease), read.ok(), sink, now)
    }

    /// Joins one label record (or counts it dead-lettered), holds commits at a window's
    /// first record while it is open, and publishes it when full.
    fn apply(
        &mut self,
        (partition, offset, lease): (i32, i64, Lease),
        read: Option<(&str, Truth, i64)>,
        sink: &Sink,
        now: i64,
    ) -> Result<()> {
        let progress = sink.progress();
        let decoded = read.is_some();
        let joined = self.join.label((partition, offset, lease), read, now)?;
        if let Some(first) = joined.opened {
            progress.labels().hold(partition, Some(first));
        }
        if decoded {
            progress.labels().processed(partition, offset);
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
        Ok(())
    }

    /// The windows published since the last call.
    pub fn take_published(&mut self) -> Vec<PerformanceWindow> {
        std::mem::take(&mut self.published)
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
    /// the labels kept meanwhile), joins labels whose schema came since, and every few
    /// seconds forgets what partitions no longer held had and predictions older than twice
    /// the horizon, and sets the gauges. Fails when a restore failed, the registry refused or
    /// the store on disk failed.
    pub fn tick(&mut self, (outputs, sink): (&Outputs, &Sink), now: i64) -> Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let assigned: Vec<(i32, Lease)> = {
            let labels = sink.progress().labels();
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
            self.take_in(restored, (outputs, sink), now)?;
        }
        let waiting: Vec<i32> = (self.pending.iter())
            .filter(|(p, q)| {
                !q.is_empty()
                    && (self.restored.get(p)).is_some_and(|l| assigned.contains(&(**p, *l)))
            })
            .map(|(p, _)| *p)
            .collect();
        for partition in waiting {
            self.flush(partition, (outputs, sink), now)?;
        }
        if self.swept.elapsed() >= SWEEP_EVERY {
            self.sweep(sink, &assigned, now)?;
        }
        Ok(())
    }

    /// Forgets what partitions no longer held had, and predictions older than twice the
    /// horizon; sets the gauges.
    fn sweep(&mut self, sink: &Sink, assigned: &[(i32, Lease)], now: i64) -> Result<()> {
        self.swept = Instant::now();
        let held = |p: i32, lease: Lease| assigned.contains(&(p, lease));
        self.restored.retain(|&p, &mut l| held(p, l));
        self.restoring.retain(|&p, &mut l| held(p, l));
        self.pending
            .retain(|p, _| assigned.iter().any(|a| a.0 == *p));
        let progress = sink.progress();
        let input = progress.lock().assigned().collect::<Vec<_>>();
        let labels = progress.labels();
        self.join
            .retain(|p| input.contains(&p), |p, lease| labels.holds(p, lease))?;
        drop(labels);
        self.join.sweep(now)?;
        let (count, bytes) = self.join.awaiting();
        self.metrics.awaiting.set(count as i64);
        self.metrics.awaiting_bytes.set(bytes as i64);
        Ok(())
    }

    /// Adds a finished restore to the join, if the partition is still held under the
    /// assignment it was begun for, and joins the labels kept while it ran.
    fn take_in(
        &mut self,
        restored: Restored,
        (outputs, sink): (&Outputs, &Sink),
        now: i64,
    ) -> Result<()> {
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
                .restored((partition, &id), (model, &p.classes), p.said, at)?;
        }
        for (id, offset) in state.joined {
            self.join.joined_before(partition, &id, offset)?;
        }
        self.restored.insert(partition, lease);
        self.flush(partition, (outputs, sink), now)
    }
}

//! Delayed ground truth: each prediction waits for its label, which comes later on a topic of
//! its own (`--labels-topic`); a label is joined to its prediction by record id within the
//! horizon, and the realized performance of every model version is published per window of
//! labels (`schemas/performance.avsc`), beside the accuracy the calibration expected of the
//! same predictions.
//!
//! Hidden contracts (docs/labels.md):
//! - Labels are keyed like the input, so a label lands on the labels partition numbered as
//!   its prediction's input partition, and the group's assignor (range) gives both to one
//!   member. The predictions of input partition `p` are looked up by labels of partition `p`.
//! - A window is the next `window_records` records of one labels partition. None of its
//!   records is committed before it is published, so a window lost to a revoke, a crash or an
//!   aborted transaction is built again from the same records.
//! - A joined prediction stays, marked with the offset of the label that joined it: a label
//!   read again (at that offset or before it) joins again, a label after it for the same id
//!   is a duplicate.
//! - The join's owner passes a lease with each label (`L`, the transport's assignment of the
//!   partition); a window opened under another lease is dropped, as its records are read
//!   again.

pub mod awaiting;
pub mod realized;
pub mod spill;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::calibrate::Calibration;
use crate::model::{Model, ModelMetadata, Predicted};
use awaiting::{Awaited, Awaiting};
use realized::{Realized, Said, Truth, VersionPerformance};

/// What became of a label record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelOutcome {
    /// Joined to its prediction.
    Joined,
    /// No prediction with its id waits (never scored here, or swept).
    Unknown,
    /// Its prediction was joined by an earlier label.
    Duplicate,
    /// It came more than the horizon after its prediction's event.
    Late,
    /// Its truth does not fit the prediction (a value for a classifier, or a class for a
    /// regressor).
    Mismatched,
    /// It could not be decoded (sent to the dead-letter topic).
    DeadLettered,
}

impl LabelOutcome {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            LabelOutcome::Joined => "joined",
            LabelOutcome::Unknown => "unknown",
            LabelOutcome::Duplicate => "duplicate",
            LabelOutcome::Late => "late",
            LabelOutcome::Mismatched => "mismatched",
            LabelOutcome::DeadLettered => "dead_lettered",
        }
    }
}

/// Label records of a window by outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LabelCounts {
    /// Joined to their prediction.
    pub joined: i64,
    /// For ids no prediction waited under.
    pub unknown: i64,
    /// For predictions already joined.
    pub duplicate: i64,
    /// Past the horizon.
    pub late: i64,
    /// Truth of the wrong kind for the prediction.
    pub mismatched: i64,
    /// Undecodable, sent to the dead-letter topic.
    pub dead_lettered: i64,
}

impl LabelCounts {
    fn add(&mut self, outcome: LabelOutcome) {
        *match outcome {
            LabelOutcome::Joined => &mut self.joined,
            LabelOutcome::Unknown => &mut self.unknown,
            LabelOutcome::Duplicate => &mut self.duplicate,
            LabelOutcome::Late => &mut self.late,
            LabelOutcome::Mismatched => &mut self.mismatched,
            LabelOutcome::DeadLettered => &mut self.dead_lettered,
        } += 1;
    }

    /// All records counted.
    pub fn total(&self) -> i64 {
        self.joined
            + self.unknown
            + self.duplicate
            + self.late
            + self.mismatched
            + self.dead_lettered
    }
}

/// A window of one labels partition, as published (`schemas/performance.avsc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerformanceWindow {
    /// The instance that joined it.
    pub instance_id: String,
    /// The labels topic.
    pub labels_topic: String,
    /// The labels partition.
    pub partition: i32,
    /// The window's first labels offset.
    pub first_offset: i64,
    /// Its last.
    pub last_offset: i64,
    /// When it was published (ms).
    pub published_at: i64,
    /// Its label records by outcome.
    pub labels: LabelCounts,
    /// Each model version's realized performance over its joined labels.
    pub versions: Vec<VersionPerformance>,
}

/// How the join works.
#[derive(Debug, Clone)]
pub struct JoinSettings {
    /// A label more than this after its prediction's event time (ms) is late.
    pub horizon_ms: i64,
    /// Label records per window and labels partition.
    pub window_records: usize,
    /// Named in each window.
    pub instance_id: String,
    /// Named in each window.
    pub labels_topic: String,
    /// Keep awaiting predictions on disk here (`--awaiting-dir`), not in memory.
    pub spill: Option<spill::SpillDir>,
}

/// A model version predictions were made by.
#[derive(Debug)]
struct Version {
    name: String,
    version: String,
    classes: Vec<i32>,
    calibration: Option<Calibration>,
}

/// An open window of one labels partition.
#[derive(Debug)]
struct Window<L> {
    lease: L,
    first: i64,
    last: i64,
    counts: LabelCounts,
    by_version: BTreeMap<u16, Realized>,
}

/// What a label did to its window.
#[derive(Debug)]
pub struct Joined {
    /// What became of the label.
    pub outcome: LabelOutcome,
    /// A window opened at this offset (commits must stop there until it is published).
    pub opened: Option<i64>,
    /// The window this label closed, to publish.
    pub closed: Option<PerformanceWindow>,
}

/// The join's state: awaiting predictions by input partition, open windows by labels
/// partition, and the versions predictions were made by.
#[derive(Debug)]
pub struct Join<L> {
    settings: JoinSettings,
    awaiting: HashMap<i32, Awaiting>,
    windows: HashMap<i32, Window<L>>,
    versions: Vec<Version>,
}

impl<L: Copy + Eq> Join<L> {
    /// An empty join.
    pub fn new(settings: JoinSettings) -> Self {
        Join {
            settings,
            awaiting: HashMap::new(),
            windows: HashMap::new(),
            versions: Vec::new(),
        }
    }

    /// The index of the model version of `metadata` (its calibration from `calibration`).
    pub fn version(&mut self, metadata: &ModelMetadata, calibration: Option<&Calibration>) -> u16 {
        let model = (metadata.name.as_str(), metadata.version.as_str());
        self.intern(model, &metadata.classes, calibration)
    }

    /// The index of `model` (name, version) with `classes`; a calibration given later than
    /// the version was first seen (read back before it served here) is kept then.
    fn intern(
        &mut self,
        (name, version): (&str, &str),
        classes: &[i32],
        calibration: Option<&Calibration>,
    ) -> u16 {
        let calibration = calibration.filter(|c| c.fits(classes.len()));
        let found = (self.versions.iter()).position(|v| v.version == version && v.name == name);
        let index = match found {
            Some(i) => {
                let known = &mut self.versions[i].calibration;
                if known.is_none() {
                    *known = calibration.cloned();
                }
                i
            }
            None => {
                self.versions.push(Version {
                    name: name.to_owned(),
                    version: version.to_owned(),
                    classes: classes.to_vec(),
                    calibration: calibration.cloned(),
                });
                self.versions.len() - 1
            }
        };
        u16::try_from(index).expect("fewer than 65,536 model versions")
    }

    /// Keeps a prediction read back for input `partition` (from the predictions topic) unless
    /// one for `id` waits already (scored here since).
    pub fn restored(
        &mut self,
        (partition, id): (i32, &str),
        (model, classes): ((&str, &str), &[i32]),
        said: Said,
        (event_time, scored_at): (i64, i64),
    ) -> Result<()> {
        let version = self.intern(model, classes, None);
        if self.partition(partition)?.contains(id)? {
            return Ok(());
        }
        let calibration = self.versions[usize::from(version)].calibration.as_ref();
        let awaited = Awaited {
            version,
            chance_right: calibration.and_then(|c| chance_right(c, &said, classes)),
            said,
            event_time,
            scored_at,
            joined_at: None,
        };
        self.partition(partition)?.insert(id, awaited)
    }

    /// The awaiting predictions of input `partition`, made empty if none were kept.
    fn partition(&mut self, partition: i32) -> Result<&mut Awaiting> {
        Ok(match self.awaiting.entry(partition) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(Awaiting::new(self.settings.spill.as_ref())?),
        })
    }

    /// Marks the prediction for `id` of input `partition` joined by the label at `offset`
    /// (read back from the labels topic), unless an earlier label joined it.
    pub fn joined_before(&mut self, partition: i32, id: &str, offset: i64) -> Result<()> {
        if let Some(awaiting) = self.awaiting.get_mut(&partition) {
            awaiting.change(id, |a| {
                a.joined_at = Some(a.joined_at.map_or(offset, |j| j.min(offset)));
            })?;
        }
        Ok(())
    }

    /// The calibration of version `index`.
    fn calibration(&self, index: u16) -> Option<&Calibration> {
        self.versions[usize::from(index)].calibration.as_ref()
    }

    /// Keeps the prediction `model` made of record `id` of input `partition` (`predicted`,
    /// with every class's probability) until its label comes: its version, what it said, the
    /// calibrated chance that it is right, its event time and when it was scored (ms).
    pub fn scored(
        &mut self,
        (partition, id): (i32, &str),
        model: &Model,
        (predicted, probabilities): (Predicted, &[f64]),
        (event_time, scored_at): (i64, i64),
    ) -> Result<()> {
        let calibration = model.drift_reference().outputs.calibration.as_ref();
        let version = self.version(&model.metadata, calibration);
        let said = match predicted {
            Predicted::Class { index, .. } => Said::Class {
                label: model.metadata.classes[index],
                probabilities: probabilities.iter().map(|&p| p as f32).collect(),
            },
            Predicted::Value(v) => Said::Value(v),
        };
        let chance_right = (self.calibration(version))
            .and_then(|c| c.chance_right(predicted, None))
            .map(|c| c as f32);
        let awaited = Awaited {
            version,
            said,
            chance_right,
            event_time,
            scored_at,
            joined_at: None,
        };
        self.awaits(partition, id, awaited)
    }

    /// Keeps a prediction of input partition `partition` until its label comes.
    pub fn awaits(&mut self, partition: i32, id: &str, awaited: Awaited) -> Result<()> {
        self.partition(partition)?.insert(id, awaited)
    }

    /// Joins the label of record `id` (of labels `partition`, at `offset`, read under `lease`)
    /// with its truth and event time (ms), or counts a dead-lettered label record (`None`).
    pub fn label(
        &mut self,
        (partition, offset, lease): (i32, i64, L),
        label: Option<(&str, Truth, i64)>,
        now: i64,
    ) -> Result<Joined> {
        let opened = self.open(partition, offset, lease);
        let outcome = match label {
            None => LabelOutcome::DeadLettered,
            Some((id, truth, event_time)) => self.join(partition, offset, id, truth, event_time)?,
        };
        let window = self.windows.get_mut(&partition).expect("opened above");
        window.counts.add(outcome);
        window.last = offset;
        let full = window.counts.total() >= self.settings.window_records as i64;
        let closed = full.then(|| self.close(partition, now));
        Ok(Joined {
            outcome,
            opened,
            closed,
        })
    }

    /// Opens a window at `offset` unless one is open under `lease`.
    fn open(&mut self, partition: i32, offset: i64, lease: L) -> Option<i64> {
        if self
            .windows
            .get(&partition)
            .is_some_and(|w| w.lease == lease)
        {
            return None;
        }
        let window = Window {
            lease,
            first: offset,
            last: offset,
            counts: LabelCounts::default(),
            by_version: BTreeMap::new(),
        };
        self.windows.insert(partition, window);
        Some(offset)
    }

    fn join(
        &mut self,
        partition: i32,
        offset: i64,
        id: &str,
        truth: Truth,
        at: i64,
    ) -> Result<LabelOutcome> {
        let Some(awaiting) = self.awaiting.get_mut(&partition) else {
            return Ok(LabelOutcome::Unknown);
        };
        let (windows, versions) = (&mut self.windows, &self.versions);
        let horizon_ms = self.settings.horizon_ms;
        let outcome = awaiting.change(id, |awaited| {
            if at - awaited.event_time > horizon_ms {
                return LabelOutcome::Late;
            }
            if awaited.joined_at.is_some_and(|j| j < offset) {
                return LabelOutcome::Duplicate;
            }
            let window = windows.get_mut(&partition).expect("opened before the join");
            let realized = window.by_version.entry(awaited.version).or_default();
            let classes = &versions[usize::from(awaited.version)].classes;
            let before = realized.mismatched();
            realized.add(&awaited.said, awaited.chance_right, truth, classes);
            if realized.mismatched() > before {
                return LabelOutcome::Mismatched;
            }
            awaited.joined_at = Some(offset);
            LabelOutcome::Joined
        })?;
        Ok(outcome.unwrap_or(LabelOutcome::Unknown))
    }

    fn close(&mut self, partition: i32, now: i64) -> PerformanceWindow {
        let window = self.windows.remove(&partition).expect("open");
        let versions = (window.by_version.iter())
            .filter_map(|(&v, realized)| {
                let version = &self.versions[usize::from(v)];
                let figures = realized.figures((&version.name, &version.version), &version.classes);
                (figures.joined > 0).then_some(figures)
            })
            .collect();
        PerformanceWindow {
            instance_id: self.settings.instance_id.clone(),
            labels_topic: self.settings.labels_topic.clone(),
            partition,
            first_offset: window.first,
            last_offset: window.last,
            published_at: now,
            labels: window.counts,
            versions,
        }
    }

    /// Forgets the predictions of input partitions and the windows of labels partitions no
    /// longer held (by `input` and by `labels` with their lease).
    pub fn retain(
        &mut self,
        input: impl Fn(i32) -> bool,
        labels: impl Fn(i32, L) -> bool,
    ) -> Result<()> {
        self.windows.retain(|&p, w| labels(p, w.lease));
        let gone: Vec<i32> = (self.awaiting.keys())
            .filter(|&&p| !input(p))
            .copied()
            .collect();
        for p in gone {
            let awaiting = self.awaiting.remove(&p).expect("listed above");
            awaiting.drop_all()?;
        }
        Ok(())
    }

    /// Forgets the predictions scored more than twice the horizon before `now` (ms); says
    /// how many.
    pub fn sweep(&mut self, now: i64) -> Result<usize> {
        let before = now - 2 * self.settings.horizon_ms;
        let mut swept = 0;
        for awaiting in self.awaiting.values_mut() {
            swept += awaiting.sweep(before)?;
        }
        Ok(swept)
    }

    /// Predictions awaiting their label, and their bytes (in memory, estimated; on disk,
    /// the files' size).
    pub fn awaiting(&self) -> (usize, usize) {
        let count = self.awaiting.values().map(Awaiting::len).sum();
        let bytes = match &self.settings.spill {
            Some(dir) => usize::try_from(dir.disk_bytes()).unwrap_or(usize::MAX),
            None => self.awaiting.values().map(Awaiting::bytes).sum(),
        };
        (count, bytes)
    }
}

/// The calibrated chance that a classifier's `said` (with `classes`) is right.
fn chance_right(calibration: &Calibration, said: &Said, classes: &[i32]) -> Option<f32> {
    let Said::Class {
        label,
        probabilities,
    } = said
    else {
        return None;
    };
    let index = classes.iter().position(|c| c == label)?;
    let confidence = f64::from(*probabilities.get(index)?);
    let predicted = Predicted::Class { index, confidence };
    calibration.chance_right(predicted, None).map(|c| c as f32)
}

#[cfg(test)]
mod tests;

//! Input decoding: framing (plain Avro or the Confluent wire format), then the Avro record,
//! then the model's features picked out **by field name**, so producers may reorder fields or
//! add their own. A configured writer schema is matched against the model once, at start-up;
//! with a schema registry, each writer schema an id names is matched on first sight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use apache_avro::Schema;

use crate::codec::avro::{AvroError, Cursor, Plan, Scalar};
use crate::codec::registry::{self, WriterSchema, WriterSchemas};
use writer::{Slot, Step, WriterPlan};

mod writer;

use crate::error::{Error, Result};

/// The bundled writer schema for the breast-cancer features.
pub const BUNDLED_FEATURE_SCHEMA: &str = include_str!("../../../schemas/features.avsc");

/// Field that carries the record id.
pub const ID_FIELD: &str = "id";
/// Field that carries the event time (timestamp-millis).
pub const EVENT_TIME_FIELD: &str = "event_time";
/// Field that carries the optional ground-truth label.
pub const LABEL_FIELD: &str = "label";

/// How input messages are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// The Avro binary encoding of one record, nothing else.
    Avro,
    /// Magic byte 0, a 4-byte big-endian schema id, then the Avro binary encoding.
    Confluent,
}

/// What a null or NaN feature makes of its record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MissingFeatures {
    /// Dead-lettered (`missing_feature` for a null, `non_finite` for a NaN).
    #[default]
    DeadLetter,
    /// Scored with the feature missing (NaN): trees send it down their missing-value branch
    /// (ONNX's `missing_value_tracks_true`; the false side for a forest driftwood trained),
    /// and drift windows count it as missing.
    Score,
}

impl std::str::FromStr for MissingFeatures {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "dead-letter" => Ok(MissingFeatures::DeadLetter),
            "score" => Ok(MissingFeatures::Score),
            other => Err(format!("{other:?}: expected dead-letter or score")),
        }
    }
}

/// Why a message could not be scored. Its [`DecodeErrorKind::as_str`] goes into the
/// dead-letter header `driftwood.error.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeErrorKind {
    /// Larger than the configured limit.
    Oversized,
    /// No payload, or a Confluent frame that is too short or has the wrong magic byte.
    BadFraming,
    /// Not a valid Avro encoding of the writer schema (truncated, garbage, trailing bytes).
    Undecodable,
    /// A feature the model needs is null.
    MissingFeature,
    /// A feature is NaN or infinite.
    NonFinite,
    /// Routed (`--route-by`) to a model that is not served.
    Unroutable,
    /// Framed with a schema id the schema registry does not know, or whose schema is not
    /// Avro.
    UnknownSchema,
    /// Its writer schema (from the registry) lacks a model feature or gives one a type that
    /// is not a number.
    IncompatibleSchema,
}

impl DecodeErrorKind {
    /// Every kind, for pre-registering metric labels.
    pub const ALL: [DecodeErrorKind; 8] = [
        DecodeErrorKind::Oversized,
        DecodeErrorKind::BadFraming,
        DecodeErrorKind::Undecodable,
        DecodeErrorKind::MissingFeature,
        DecodeErrorKind::NonFinite,
        DecodeErrorKind::Unroutable,
        DecodeErrorKind::UnknownSchema,
        DecodeErrorKind::IncompatibleSchema,
    ];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeErrorKind::Oversized => "oversized",
            DecodeErrorKind::BadFraming => "bad_framing",
            DecodeErrorKind::Undecodable => "undecodable",
            DecodeErrorKind::MissingFeature => "missing_feature",
            DecodeErrorKind::NonFinite => "non_finite",
            DecodeErrorKind::Unroutable => "unroutable",
            DecodeErrorKind::UnknownSchema => "unknown_schema",
            DecodeErrorKind::IncompatibleSchema => "incompatible_schema",
        }
    }
}

/// A message that cannot be scored, with a readable reason.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    /// The category.
    pub kind: DecodeErrorKind,
    /// What exactly was wrong.
    pub message: String,
}

impl DecodeError {
    pub(crate) fn new(kind: DecodeErrorKind, message: impl Into<String>) -> Self {
        DecodeError {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

/// The non-feature parts of a decoded record (the id is borrowed from the payload).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RecordMeta<'a> {
    /// The record's `id`, when the schema has one.
    pub id: Option<&'a str>,
    /// The record's `event_time` in ms, when the schema has one.
    pub event_time_ms: Option<i64>,
    /// The ground-truth `label`, when present and not null.
    pub label: Option<i32>,
}

/// Each schema id's plan, or why its writer schema cannot supply the features.
type PlansById = HashMap<u32, std::result::Result<Arc<WriterPlan>, String>>;

/// With a schema registry: the writer schemas fetched by id, and this decoder's plan for
/// each (or why there is none), compiled on first sight.
#[derive(Debug, Clone)]
struct Registered {
    schemas: WriterSchemas,
    plans: Arc<Mutex<PlansById>>,
}

/// Decodes input messages into feature vectors in the model's feature order.
#[derive(Debug, Clone)]
pub struct FeatureDecoder {
    format: InputFormat,
    max_message_bytes: usize,
    plans: Plans,
    feature_names: Vec<String>,
    missing: MissingFeatures,
}

/// Which writer schema a message is read with.
#[derive(Debug, Clone)]
enum Plans {
    /// The configured one (`--input-schema` or the bundled one), for every message.
    Fixed(Arc<WriterPlan>),
    /// The one the Confluent frame's id names, from the registry.
    Registered(Registered),
}

impl FeatureDecoder {
    /// Matches `writer_schema` against the model's `features`. Fails when the schema is not a
    /// record, lacks a feature, or gives a feature a non-numeric type.
    pub fn new(
        writer_schema: Schema,
        features: &[String],
        format: InputFormat,
        max_message_bytes: usize,
    ) -> Result<Self> {
        let plan = WriterPlan::new(&writer_schema, features).map_err(|message| Error::Schema {
            what: "input".into(),
            message,
        })?;
        Ok(FeatureDecoder {
            format,
            max_message_bytes,
            plans: Plans::Fixed(Arc::new(plan)),
            feature_names: features.to_vec(),
            missing: MissingFeatures::default(),
        })
    }

    /// This decoder, with null and NaN features treated as `missing` says.
    pub fn with_missing(mut self, missing: MissingFeatures) -> Self {
        self.missing = missing;
        self
    }

    /// A decoder of Confluent-framed input that reads each message with the writer schema
    /// its id names, from `schemas` (which the consumer loop fills from the registry before
    /// decoding). Each writer schema is matched against `features` on first sight; one that
    /// does not supply them dead-letters its records.
    pub fn registered(
        features: &[String],
        max_message_bytes: usize,
        schemas: WriterSchemas,
    ) -> Self {
        FeatureDecoder {
            format: InputFormat::Confluent,
            max_message_bytes,
            plans: Plans::Registered(Registered {
                schemas,
                plans: Arc::default(),
            }),
            feature_names: features.to_vec(),
            missing: MissingFeatures::default(),
        }
    }

    /// Whether `schema`'s records supply every one of `features` (by name, as numbers): what
    /// a decoder for them needs, whatever the framing.
    pub fn check_features(schema: &Schema, features: &[String]) -> Result<()> {
        Self::new(schema.clone(), features, InputFormat::Avro, 1).map(|_| ())
    }

    /// The input's writer schema: the file at `path` (`--input-schema`), or the bundled
    /// `schemas/features.avsc`.
    pub fn read_schema(path: Option<&std::path::Path>) -> Result<Schema> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
                Self::parse_schema(&text, &path.display().to_string())
            }
            None => Self::parse_schema(BUNDLED_FEATURE_SCHEMA, "bundled features.avsc"),
        }
    }

    /// Parses a writer schema; `what` names it in errors.
    pub fn parse_schema(text: &str, what: &str) -> Result<Schema> {
        Schema::parse_str(text).map_err(|e| Error::Schema {
            what: what.into(),
            message: e.to_string(),
        })
    }

    /// Number of features each decoded row has.
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Decodes `payload` and appends its features to `row` (in model order).
    /// On error nothing is appended.
    pub fn decode<'a>(
        &self,
        payload: Option<&'a [u8]>,
        row: &mut Vec<f64>,
    ) -> Result<RecordMeta<'a>, DecodeError> {
        let Some(payload) = payload else {
            return Err(DecodeError::new(
                DecodeErrorKind::BadFraming,
                "message has no payload (tombstone)",
            ));
        };
        if payload.len() > self.max_message_bytes {
            return Err(DecodeError::new(
                DecodeErrorKind::Oversized,
                format!(
                    "message is {} bytes, over the {} byte limit",
                    payload.len(),
                    self.max_message_bytes
                ),
            ));
        }
        let body = self.unframe(payload)?;
        let fetched;
        let plan: &WriterPlan = match &self.plans {
            Plans::Fixed(plan) => plan,
            Plans::Registered(registered) => {
                fetched = self.registered_plan(registered, payload)?;
                &fetched
            }
        };
        let start = row.len();
        row.resize(start + self.feature_names.len(), 0.0);
        let result = self.read_record(plan, &mut Cursor::new(body), &mut row[start..]);
        if result.is_err() {
            row.truncate(start);
        }
        result
    }

    /// The plan for the schema id `payload` is framed with (its framing checked already).
    fn registered_plan(
        &self,
        registered: &Registered,
        payload: &[u8],
    ) -> Result<Arc<WriterPlan>, DecodeError> {
        let id = registry::framed_id(Some(payload)).expect("a checked Confluent frame");
        let mut plans = registered.plans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(plan) = plans.get(&id) {
            return plan
                .clone()
                .map_err(|m| DecodeError::new(DecodeErrorKind::IncompatibleSchema, m));
        }
        let plan = match registered.schemas.get(id) {
            Some(WriterSchema::Known(schema)) => WriterPlan::new(&schema, &self.feature_names)
                .map(Arc::new)
                .map_err(|m| format!("writer schema id {id}: {m}")),
            Some(WriterSchema::Unusable(reason)) => {
                return Err(DecodeError::new(DecodeErrorKind::UnknownSchema, reason));
            }
            None => {
                // The loop resolves every id before decoding; an id evicted since is
                // dead-lettered rather than decoded with a guess.
                return Err(DecodeError::new(
                    DecodeErrorKind::UnknownSchema,
                    format!("schema id {id} was not fetched from the registry"),
                ));
            }
        };
        if plans.len() >= registered.schemas.capacity() {
            plans.clear();
        }
        plans.insert(id, plan.clone());
        plan.map_err(|m| DecodeError::new(DecodeErrorKind::IncompatibleSchema, m))
    }

    fn read_record<'a>(
        &self,
        plan: &WriterPlan,
        c: &mut Cursor<'a>,
        features: &mut [f64],
    ) -> Result<RecordMeta<'a>, DecodeError> {
        let mut meta = RecordMeta::default();
        for step in &plan.steps {
            match step {
                Step::Doubles { first, count } => {
                    self.read_doubles(c, &mut features[*first..][..*count], *first)?
                }
                Step::Field(slot, field) => {
                    self.read_field(plan, (*slot, field), c, features, &mut meta)?
                }
            }
        }
        if c.remaining() > 0 {
            return Err(DecodeError::new(
                DecodeErrorKind::Undecodable,
                format!(
                    "{} bytes left over after the record: not written with this schema",
                    c.remaining()
                ),
            ));
        }
        Ok(meta)
    }

    /// Reads a run of `double` features (the model's from `first`) into `out`, each checked
    /// as one read alone would be. A run cut short by the end of the message is undecodable,
    /// whatever the values before the cut.
    fn read_doubles(
        &self,
        c: &mut Cursor<'_>,
        out: &mut [f64],
        first: usize,
    ) -> Result<(), DecodeError> {
        let bytes = c.take(8 * out.len()).map_err(undecodable)?;
        let mut finite = true;
        for (x, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
            *x = f64::from_le_bytes(b.try_into().expect("8 bytes"));
            finite &= x.is_finite();
        }
        if !finite {
            for (i, &x) in out.iter().enumerate() {
                self.feature_value(x, first + i)?;
            }
        }
        Ok(())
    }

    /// Reads one field into what it means: a feature, the id, the event time or the label;
    /// any other field is read past.
    fn read_field<'a>(
        &self,
        plan: &WriterPlan,
        (slot, field): (Slot, &Plan),
        c: &mut Cursor<'a>,
        features: &mut [f64],
        meta: &mut RecordMeta<'a>,
    ) -> Result<(), DecodeError> {
        match slot {
            Slot::Ignored => plan.schema.skip(field, c).map_err(undecodable)?,
            Slot::Feature(i) => {
                let v = match plan.schema.scalar(field, c).map_err(undecodable)? {
                    Scalar::Real(v) => v,
                    Scalar::Integer(v) => v as f64,
                    _ if self.missing == MissingFeatures::Score => f64::NAN,
                    _ => {
                        return Err(DecodeError::new(
                            DecodeErrorKind::MissingFeature,
                            format!("feature {:?} is null", self.feature_names[i]),
                        ));
                    }
                };
                features[i] = self.feature_value(v, i)?;
            }
            Slot::Id => {
                if let Scalar::Str(s) = plan.schema.scalar(field, c).map_err(undecodable)? {
                    meta.id = Some(s);
                }
            }
            Slot::EventTime => {
                if let Scalar::Integer(t) = plan.schema.scalar(field, c).map_err(undecodable)? {
                    meta.event_time_ms = Some(t / plan.event_time_divisor);
                }
            }
            Slot::Label => {
                if let Scalar::Integer(l) = plan.schema.scalar(field, c).map_err(undecodable)? {
                    meta.label = i32::try_from(l).ok();
                }
            }
        }
        Ok(())
    }

    /// Feature `i`'s value `v`, unless it is infinite, or NaN where missing values are not
    /// scored (a null read with `--missing-features score` is NaN).
    fn feature_value(&self, v: f64, i: usize) -> Result<f64, DecodeError> {
        if v.is_finite() || self.missing == MissingFeatures::Score && v.is_nan() {
            return Ok(v);
        }
        Err(DecodeError::new(
            DecodeErrorKind::NonFinite,
            format!("feature {:?} is {v}", self.feature_names[i]),
        ))
    }

    /// Strips the framing and returns the Avro body.
    fn unframe<'p>(&self, payload: &'p [u8]) -> Result<&'p [u8], DecodeError> {
        unframe(self.format, payload)
    }
}

/// Bytes that are not the writer schema's encoding.
fn undecodable(e: AvroError) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Undecodable, e.to_string())
}

/// Strips `format`'s framing from `payload` and returns the Avro body.
pub(crate) fn unframe(format: InputFormat, payload: &[u8]) -> Result<&[u8], DecodeError> {
    match format {
        InputFormat::Avro => Ok(payload),
        InputFormat::Confluent => match payload {
            [0, _, _, _, _, body @ ..] => Ok(body),
            [0, ..] => Err(DecodeError::new(
                DecodeErrorKind::BadFraming,
                format!(
                    "Confluent frame is {} bytes, shorter than its 5-byte header",
                    payload.len()
                ),
            )),
            [magic, ..] => Err(DecodeError::new(
                DecodeErrorKind::BadFraming,
                format!("Confluent magic byte is {magic}, expected 0"),
            )),
            [] => Err(DecodeError::new(
                DecodeErrorKind::BadFraming,
                "empty message",
            )),
        },
    }
}

#[cfg(test)]
mod tests;

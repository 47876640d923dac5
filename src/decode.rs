//! Input decoding: framing (plain Avro or the Confluent wire format), then the Avro record,
//! then the model's features picked out **by field name**, so producers may reorder fields or
//! add their own. The writer schema is matched against the model once, at start-up.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::RecordSchema;
use apache_avro::types::Value;

use crate::error::{Error, Result};

/// The bundled writer schema for the breast-cancer features.
pub const BUNDLED_FEATURE_SCHEMA: &str = include_str!("../schemas/features.avsc");

/// Field that carries the record id.
pub const ID_FIELD: &str = "id";
/// Field that carries the event time (timestamp-millis).
pub const EVENT_TIME_FIELD: &str = "event_time";
/// Field that carries the optional ground-truth label.
pub const LABEL_FIELD: &str = "label";

/// How input messages are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// The Avro binary encoding of one record, nothing else.
    Avro,
    /// Magic byte 0, a 4-byte big-endian schema id, then the Avro binary encoding.
    Confluent,
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
}

impl DecodeErrorKind {
    /// Every kind, for pre-registering metric labels.
    pub const ALL: [DecodeErrorKind; 5] = [
        DecodeErrorKind::Oversized,
        DecodeErrorKind::BadFraming,
        DecodeErrorKind::Undecodable,
        DecodeErrorKind::MissingFeature,
        DecodeErrorKind::NonFinite,
    ];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeErrorKind::Oversized => "oversized",
            DecodeErrorKind::BadFraming => "bad_framing",
            DecodeErrorKind::Undecodable => "undecodable",
            DecodeErrorKind::MissingFeature => "missing_feature",
            DecodeErrorKind::NonFinite => "non_finite",
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
    fn new(kind: DecodeErrorKind, message: impl Into<String>) -> Self {
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

/// The non-feature parts of a decoded record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordMeta {
    /// The record's `id`, when the schema has one.
    pub id: Option<String>,
    /// The record's `event_time` in ms, when the schema has one.
    pub event_time_ms: Option<i64>,
    /// The ground-truth `label`, when present and not null.
    pub label: Option<i32>,
}

/// What a writer field means to driftwood.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Feature(usize),
    Id,
    EventTime,
    Label,
    Ignored,
}

/// Decodes input messages into feature vectors in the model's feature order.
#[derive(Debug)]
pub struct FeatureDecoder {
    schema: Schema,
    format: InputFormat,
    max_message_bytes: usize,
    slots: Vec<Slot>,
    feature_names: Vec<String>,
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
        let schema_error = |message: String| Error::Schema {
            what: "input".into(),
            message,
        };
        let Schema::Record(RecordSchema { fields, .. }) = &writer_schema else {
            return Err(schema_error("the writer schema must be a record".into()));
        };
        let wanted: HashMap<&str, usize> = features
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut found = vec![false; features.len()];
        let mut slots = Vec::with_capacity(fields.len());
        for field in fields {
            let slot = if let Some(&i) = wanted.get(field.name.as_str()) {
                if !is_numeric(&field.schema) {
                    return Err(schema_error(format!(
                        "feature field {:?} must be double, float, int or long (optionally nullable), not {:?}",
                        field.name, field.schema
                    )));
                }
                found[i] = true;
                Slot::Feature(i)
            } else {
                match field.name.as_str() {
                    ID_FIELD => Slot::Id,
                    EVENT_TIME_FIELD => Slot::EventTime,
                    LABEL_FIELD => Slot::Label,
                    _ => Slot::Ignored,
                }
            };
            slots.push(slot);
        }
        let missing: Vec<&str> = features
            .iter()
            .zip(&found)
            .filter(|(_, f)| !**f)
            .map(|(n, _)| n.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(schema_error(format!(
                "the writer schema lacks model features: {}",
                missing.join(", ")
            )));
        }
        Ok(FeatureDecoder {
            schema: writer_schema,
            format,
            max_message_bytes,
            slots,
            feature_names: features.to_vec(),
        })
    }

    /// Parses a schema from JSON text; `what` names it in errors.
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
    pub fn decode(
        &self,
        payload: Option<&[u8]>,
        row: &mut Vec<f64>,
    ) -> Result<RecordMeta, DecodeError> {
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
        let mut body = self.unframe(payload)?;
        let reader = GenericDatumReader::builder(&self.schema)
            .build()
            .map_err(|e| DecodeError::new(DecodeErrorKind::Undecodable, e.to_string()))?;
        let value = reader
            .read_value(&mut body)
            .map_err(|e| DecodeError::new(DecodeErrorKind::Undecodable, e.to_string()))?;
        if !body.is_empty() {
            return Err(DecodeError::new(
                DecodeErrorKind::Undecodable,
                format!(
                    "{} bytes left over after the record: not written with this schema",
                    body.len()
                ),
            ));
        }
        let Value::Record(fields) = value else {
            return Err(DecodeError::new(
                DecodeErrorKind::Undecodable,
                "decoded value is not a record",
            ));
        };
        let start = row.len();
        row.resize(start + self.feature_names.len(), 0.0);
        let result = self.pick(fields, &mut row[start..]);
        if result.is_err() {
            row.truncate(start);
        }
        result
    }

    /// Strips the framing and returns the Avro body.
    fn unframe<'p>(&self, payload: &'p [u8]) -> Result<&'p [u8], DecodeError> {
        match self.format {
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

    fn pick(
        &self,
        fields: Vec<(String, Value)>,
        features: &mut [f64],
    ) -> Result<RecordMeta, DecodeError> {
        let mut meta = RecordMeta::default();
        for (slot, (name, value)) in self.slots.iter().zip(fields) {
            match slot {
                Slot::Feature(i) => {
                    let v = number(&value).ok_or_else(|| {
                        DecodeError::new(
                            DecodeErrorKind::MissingFeature,
                            format!("feature {name:?} is null"),
                        )
                    })?;
                    if !v.is_finite() {
                        return Err(DecodeError::new(
                            DecodeErrorKind::NonFinite,
                            format!("feature {name:?} is {v}"),
                        ));
                    }
                    features[*i] = v;
                }
                Slot::Id => {
                    if let Value::String(s) = unwrap_union(value) {
                        meta.id = Some(s);
                    }
                }
                Slot::EventTime => {
                    meta.event_time_ms = match unwrap_union(value) {
                        Value::TimestampMillis(t) | Value::Long(t) => Some(t),
                        Value::TimestampMicros(t) => Some(t / 1_000),
                        _ => None,
                    }
                }
                Slot::Label => {
                    meta.label = match unwrap_union(value) {
                        Value::Int(l) => Some(l),
                        Value::Long(l) => i32::try_from(l).ok(),
                        _ => None,
                    }
                }
                Slot::Ignored => {}
            }
        }
        Ok(meta)
    }
}

fn unwrap_union(value: Value) -> Value {
    match value {
        Value::Union(_, inner) => *inner,
        other => other,
    }
}

/// A numeric value as `f64`; `None` for null.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Double(v) => Some(*v),
        Value::Float(v) => Some(f64::from(*v)),
        Value::Int(v) => Some(f64::from(*v)),
        Value::Long(v) => Some(*v as f64),
        Value::Union(_, inner) => number(inner),
        _ => None,
    }
}

fn is_numeric(schema: &Schema) -> bool {
    match schema {
        Schema::Double | Schema::Float | Schema::Int | Schema::Long => true,
        Schema::Union(u) => {
            u.variants()
                .iter()
                .all(|v| matches!(v, Schema::Null) || is_numeric(v))
                && u.variants().iter().any(is_numeric)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Dataset;
    use crate::encode::{FeatureEncoder, FeatureRow};
    use apache_avro::writer::datum::GenericDatumWriter;

    fn bundled() -> Schema {
        FeatureDecoder::parse_schema(BUNDLED_FEATURE_SCHEMA, "bundled").unwrap()
    }

    fn encode(schema: &Schema, format: InputFormat, names: &[String], values: &[f64]) -> Vec<u8> {
        let encoder = FeatureEncoder::new(schema.clone(), format).unwrap();
        let mut out = Vec::new();
        let row = FeatureRow {
            id: "r-1",
            event_time_ms: 1_700_000_000_000,
            names,
            values,
            label: Some(1),
        };
        encoder.encode(row, &mut out).unwrap();
        out
    }

    fn decoder(schema: Schema, format: InputFormat) -> FeatureDecoder {
        let names = Dataset::breast_cancer().feature_names;
        FeatureDecoder::new(schema, &names, format, 1 << 20).unwrap()
    }

    #[test]
    fn valid_record_decodes_in_model_order() {
        let data = Dataset::breast_cancer();
        for format in [InputFormat::Avro, InputFormat::Confluent] {
            let bytes = encode(&bundled(), format, &data.feature_names, &data.rows[3]);
            let mut row = Vec::new();
            let meta = decoder(bundled(), format)
                .decode(Some(&bytes), &mut row)
                .unwrap();
            assert_eq!(row, data.rows[3]);
            assert_eq!(meta.id.as_deref(), Some("r-1"));
            assert_eq!(meta.event_time_ms, Some(1_700_000_000_000));
            assert_eq!(meta.label, Some(1));
        }
    }

    #[test]
    fn fields_are_matched_by_name_not_position() {
        // The producer's schema reverses the feature order and adds a field of its own.
        let data = Dataset::breast_cancer();
        let mut fields: Vec<String> = data
            .feature_names
            .iter()
            .rev()
            .map(|n| format!(r#"{{"name":"{n}","type":"double"}}"#))
            .collect();
        fields.insert(
            5,
            r#"{"name":"clinic","type":"string","default":"x"}"#.into(),
        );
        fields.push(r#"{"name":"id","type":"string"}"#.into());
        let schema = FeatureDecoder::parse_schema(
            &format!(
                r#"{{"type":"record","name":"R","fields":[{}]}}"#,
                fields.join(",")
            ),
            "test",
        )
        .unwrap();
        let Schema::Record(record) = &schema else {
            unreachable!()
        };
        let fields = record
            .fields
            .iter()
            .map(|f| {
                let v = match f.name.as_str() {
                    "clinic" => Value::String("north".into()),
                    "id" => Value::String("x".into()),
                    n => {
                        let i = data.feature_names.iter().position(|m| m == n).unwrap();
                        Value::Double(data.rows[10][i])
                    }
                };
                (f.name.clone(), v)
            })
            .collect();
        let mut bytes = Vec::new();
        GenericDatumWriter::builder(&schema)
            .build()
            .unwrap()
            .write_value(&mut bytes, Value::Record(fields))
            .unwrap();
        let mut row = Vec::new();
        let meta = decoder(schema, InputFormat::Avro)
            .decode(Some(&bytes), &mut row)
            .unwrap();
        assert_eq!(row, data.rows[10]);
        assert_eq!(meta.event_time_ms, None);
        assert_eq!(meta.label, None);
    }

    #[test]
    fn truncated_and_garbage_bytes_are_undecodable() {
        let data = Dataset::breast_cancer();
        let bytes = encode(
            &bundled(),
            InputFormat::Avro,
            &data.feature_names,
            &data.rows[0],
        );
        let d = decoder(bundled(), InputFormat::Avro);
        let mut row = Vec::new();
        for bad in [
            &bytes[..bytes.len() / 2],
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
            &[],
        ] {
            let err = d.decode(Some(bad), &mut row).unwrap_err();
            assert_eq!(err.kind, DecodeErrorKind::Undecodable, "{err}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        let err = d.decode(Some(&longer), &mut row).unwrap_err();
        assert!(err.message.contains("left over"), "{err}");
        assert!(row.is_empty(), "nothing appended on error");
    }

    #[test]
    fn confluent_framing_is_checked() {
        let d = decoder(bundled(), InputFormat::Confluent);
        let mut row = Vec::new();
        let err = d.decode(Some(b"\x01\0\0\0\x01abc"), &mut row).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::BadFraming);
        assert!(err.message.contains("magic byte is 1"), "{err}");
        let err = d.decode(Some(b"\0\0\0"), &mut row).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::BadFraming);
        let err = d.decode(None, &mut row).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::BadFraming);
    }

    #[test]
    fn missing_features_are_refused() {
        let names = Dataset::breast_cancer().feature_names;
        // A schema without a feature field fails at start-up, naming it.
        let text = BUNDLED_FEATURE_SCHEMA.replace("\"mean_area\"", "\"mean_area_renamed\"");
        let err = FeatureDecoder::new(
            FeatureDecoder::parse_schema(&text, "t").unwrap(),
            &names,
            InputFormat::Avro,
            1 << 20,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("lacks model features: mean_area"), "{err}");

        // A nullable feature that is null fails per record.
        let text = BUNDLED_FEATURE_SCHEMA.replacen(
            "\"name\": \"mean_area\",\n      \"type\": \"double\"",
            "\"name\": \"mean_area\",\n      \"type\": [\"null\", \"double\"]",
            1,
        );
        assert_ne!(text, BUNDLED_FEATURE_SCHEMA);
        let schema = FeatureDecoder::parse_schema(&text, "t").unwrap();
        let values = Dataset::breast_cancer().rows[0].clone();
        let without: Vec<String> = names
            .iter()
            .filter(|n| *n != "mean_area")
            .cloned()
            .collect();
        let without_values: Vec<f64> = names
            .iter()
            .zip(&values)
            .filter(|(n, _)| *n != "mean_area")
            .map(|(_, v)| *v)
            .collect();
        let bytes = encode(&schema, InputFormat::Avro, &without, &without_values);
        let mut row = Vec::new();
        let err = decoder(schema, InputFormat::Avro)
            .decode(Some(&bytes), &mut row)
            .unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::MissingFeature);
        assert!(err.message.contains("mean_area"), "{err}");
    }

    #[test]
    fn non_finite_and_oversized_are_refused() {
        let data = Dataset::breast_cancer();
        let mut values = data.rows[0].clone();
        values[7] = f64::NAN;
        let bytes = encode(&bundled(), InputFormat::Avro, &data.feature_names, &values);
        let mut row = Vec::new();
        let err = decoder(bundled(), InputFormat::Avro)
            .decode(Some(&bytes), &mut row)
            .unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::NonFinite);
        assert!(err.message.contains("mean_concave_points"), "{err}");

        let small =
            FeatureDecoder::new(bundled(), &data.feature_names, InputFormat::Avro, 16).unwrap();
        let err = small.decode(Some(&bytes), &mut row).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::Oversized);
    }
}

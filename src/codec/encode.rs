//! Avro encoding of what driftwood writes: prediction records (the sink) and feature records
//! (the `produce` generator and tests).

use apache_avro::Schema;
use apache_avro::schema::RecordSchema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use serde::Serialize;

mod rollout;
pub use rollout::{ROLLOUT_SCHEMA, RolloutDecisionKind, RolloutRecord};

use crate::codec::avro::Writer;
use crate::codec::decode::{EVENT_TIME_FIELD, ID_FIELD, InputFormat, LABEL_FIELD};
use crate::error::{Error, Result};

/// The bundled prediction schema.
pub const PREDICTION_SCHEMA: &str = include_str!("../../schemas/prediction.avsc");

/// The bundled drift report schema.
pub const DRIFT_REPORT_SCHEMA: &str = include_str!("../../schemas/drift_report.avsc");
/// The realized performance schema (`schemas/performance.avsc`).
pub const PERFORMANCE_SCHEMA: &str = include_str!("../../schemas/performance.avsc");
/// The schema of review requests (`schemas/review.avsc`).
pub const REVIEW_SCHEMA: &str = include_str!("../../schemas/review.avsc");
/// The schema of label records (`schemas/ground_truth.avsc`).
pub const GROUND_TRUTH_SCHEMA: &str = include_str!("../../schemas/ground_truth.avsc");
/// The shadow comparison schema (`schemas/comparison.avsc`).
pub const COMPARISON_SCHEMA: &str = include_str!("../../schemas/comparison.avsc");

/// What a model said about one record, as the prediction topic's records and the REST
/// twin's answers both carry it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Prediction {
    /// The model that scored it.
    pub model_name: String,
    /// Its version.
    pub model_version: String,
    /// Predicted class label (a class's index, for a model whose classes are names); null
    /// for a regressor.
    pub predicted_label: Option<i32>,
    /// The predicted class's name, for a model whose classes are names.
    pub predicted_class: Option<String>,
    /// Probability of the predicted class; null for a regressor.
    pub confidence: Option<f64>,
    /// A regressor's value; null for a classifier.
    pub value: Option<f64>,
    /// Probability of each class (empty for a regressor).
    pub probabilities: Vec<ClassProbability>,
}

/// One prediction, shaped like `schemas/prediction.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PredictionRecord {
    /// The input record's id.
    pub id: String,
    /// What the model said (the schema's fields from `model_name` to `probabilities`).
    #[serde(flatten)]
    pub prediction: Prediction,
    /// Ground truth from the input, if any.
    pub actual_label: Option<i32>,
    /// Input topic.
    pub source_topic: String,
    /// Input partition.
    pub source_partition: i32,
    /// Input offset.
    pub source_offset: i64,
    /// Event time of the input (ms since the epoch).
    pub event_time: i64,
    /// When driftwood scored it (ms since the epoch).
    pub scored_at: i64,
    /// Saabas contributions, when the record was chosen for one.
    #[serde(default)]
    pub explanation: Option<ExplanationRecord>,
}

/// A prediction's explanation, shaped like `schemas/prediction.avsc`'s `Explanation`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ExplanationRecord {
    /// The class whose score is explained; `None` for a regressor.
    pub label: Option<i32>,
    /// The score before any feature is known.
    pub bias: f64,
    /// One per model feature, in the model's order.
    pub contributions: Vec<FeatureContribution>,
}

/// What one feature added to the explained score.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FeatureContribution {
    /// The feature.
    pub feature: String,
    /// What it added.
    pub contribution: f64,
}

impl From<ExplanationFields<'_>> for ExplanationRecord {
    fn from(e: ExplanationFields<'_>) -> Self {
        let pairs = e.features.iter().zip(e.contributions);
        ExplanationRecord {
            label: e.label,
            bias: e.bias,
            contributions: pairs
                .map(|(feature, &contribution)| FeatureContribution {
                    feature: feature.clone(),
                    contribution,
                })
                .collect(),
        }
    }
}

/// An explanation to encode, borrowing everything.
#[derive(Debug, Clone, Copy)]
pub struct ExplanationFields<'a> {
    /// The class whose score is explained; `None` for a regressor.
    pub label: Option<i32>,
    /// The score before any feature is known.
    pub bias: f64,
    /// The model's features.
    pub features: &'a [String],
    /// Each feature's contribution, matching `features`.
    pub contributions: &'a [f64],
}

/// A prediction to encode, borrowing everything (the hot path's form of
/// [`PredictionRecord`]).
#[derive(Debug, Clone, Copy)]
pub struct PredictionFields<'a> {
    /// The input record's id.
    pub id: &'a str,
    /// Model name.
    pub model_name: &'a str,
    /// Model version.
    pub model_version: &'a str,
    /// Predicted class label (a class's index, for a model whose classes are names); `None`
    /// for a regressor.
    pub predicted_label: Option<i32>,
    /// The predicted class's name, for a model whose classes are names.
    pub predicted_class: Option<&'a str>,
    /// Probability of the predicted class; `None` for a regressor.
    pub confidence: Option<f64>,
    /// A regressor's value.
    pub value: Option<f64>,
    /// Class labels, in the model's order (none for a regressor).
    pub classes: &'a [i32],
    /// The classes' names, for a model whose classes are names.
    pub class_names: Option<&'a [String]>,
    /// Probability of each class, matching `classes`.
    pub probabilities: &'a [f64],
    /// Ground truth from the input, if any.
    pub actual_label: Option<i32>,
    /// Input topic.
    pub source_topic: &'a str,
    /// Input partition.
    pub source_partition: i32,
    /// Input offset.
    pub source_offset: i64,
    /// Event time of the input (ms since the epoch).
    pub event_time: i64,
    /// When driftwood scored it (ms since the epoch).
    pub scored_at: i64,
    /// Saabas contributions, when the record was chosen for one.
    pub explanation: Option<ExplanationFields<'a>>,
}

impl PredictionFields<'_> {
    /// Appends the Avro encoding (`schemas/prediction.avsc`, field by field) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.string(self.id);
        w.string(self.model_name);
        w.string(self.model_version);
        w.optional(self.predicted_label, |w, l| w.long(i64::from(l)));
        w.optional(self.predicted_class, Writer::string);
        w.optional(self.confidence, Writer::double);
        w.optional(self.value, Writer::double);
        // One block holding every class, then the end-of-array marker.
        if !self.classes.is_empty() {
            w.long(self.classes.len() as i64);
            for (i, (&label, &p)) in self.classes.iter().zip(self.probabilities).enumerate() {
                w.long(i64::from(label));
                w.optional(self.class_names.map(|n| n[i].as_str()), Writer::string);
                w.double(p);
            }
        }
        w.long(0);
        w.optional(self.actual_label, |w, l| w.long(i64::from(l)));
        w.string(self.source_topic);
        w.long(i64::from(self.source_partition));
        w.long(self.source_offset);
        w.long(self.event_time);
        w.long(self.scored_at);
        w.optional(self.explanation, |w, e| {
            w.optional(e.label, |w, l| w.long(i64::from(l)));
            w.double(e.bias);
            if !e.features.is_empty() {
                w.long(e.features.len() as i64);
                for (feature, &c) in e.features.iter().zip(e.contributions) {
                    w.string(feature);
                    w.double(c);
                }
            }
            w.long(0);
        });
    }
}

/// One class's vote share.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ClassProbability {
    /// Class label (its index, for a model whose classes are names).
    pub label: i32,
    /// The class's name, for a model whose classes are names.
    pub name: Option<String>,
    /// Probability (vote share, for a forest driftwood trained).
    pub probability: f64,
}

/// One label record, shaped like `schemas/ground_truth.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct GroundTruthRecord {
    /// The input record's id.
    pub id: String,
    /// A classifier's true label.
    pub label: Option<i32>,
    /// A regressor's true value.
    pub value: Option<f64>,
    /// When the truth became known (ms since the epoch).
    pub event_time: i64,
}

/// A record chosen for review, shaped like `schemas/review.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ReviewRequest {
    /// The input record's id.
    pub id: String,
    /// Why it was chosen: `sample` or `least_sure`.
    pub reason: String,
    /// The model.
    pub model_name: String,
    /// Its version.
    pub model_version: String,
    /// A classifier's predicted label.
    pub predicted_label: Option<i32>,
    /// Its confidence.
    pub confidence: Option<f64>,
    /// A regressor's value.
    pub value: Option<f64>,
    /// For `least_sure`: the confidence at or below which records are chosen.
    pub threshold: Option<f64>,
    /// The features in the model's order.
    pub features: Vec<FeatureValue>,
    /// Input topic.
    pub source_topic: String,
    /// Input partition.
    pub source_partition: i32,
    /// Input offset.
    pub source_offset: i64,
    /// The input's event time (ms).
    pub event_time: i64,
    /// When it was scored (ms).
    pub scored_at: i64,
}

/// A feature's name and value.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct FeatureValue {
    /// The feature.
    pub name: String,
    /// Its value.
    pub value: f64,
}

/// One comparison, shaped like `schemas/comparison.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Comparison {
    /// The input record's id.
    pub id: String,
    /// Input topic.
    pub source_topic: String,
    /// Input partition.
    pub source_partition: i32,
    /// Input offset.
    pub source_offset: i64,
    /// The serving model.
    pub model_name: String,
    /// Its version.
    pub serving_version: String,
    /// The candidate.
    pub candidate_name: String,
    /// Its version.
    pub candidate_version: String,
    /// The serving model's label.
    pub serving_label: i32,
    /// The candidate's label.
    pub candidate_label: i32,
    /// The serving model's confidence.
    pub serving_confidence: f64,
    /// The candidate's confidence.
    pub candidate_confidence: f64,
    /// Whether the labels are equal.
    pub agree: bool,
}

/// Encodes and decodes records of one schema.
#[derive(Debug)]
pub struct AvroCodec {
    schema: Schema,
}

impl AvroCodec {
    /// A codec for the bundled prediction schema.
    pub fn predictions() -> Self {
        AvroCodec {
            schema: Schema::parse_str(PREDICTION_SCHEMA).expect("bundled schema parses"),
        }
    }

    /// A codec for the bundled drift report schema.
    pub fn drift_reports() -> Self {
        AvroCodec {
            schema: Schema::parse_str(DRIFT_REPORT_SCHEMA).expect("bundled schema parses"),
        }
    }

    /// A codec for the bundled shadow comparison schema.
    pub fn comparisons() -> Self {
        AvroCodec {
            schema: Schema::parse_str(COMPARISON_SCHEMA).expect("bundled schema parses"),
        }
    }

    /// A codec for the bundled realized performance schema.
    pub fn performance() -> Self {
        AvroCodec {
            schema: Schema::parse_str(PERFORMANCE_SCHEMA).expect("bundled schema parses"),
        }
    }

    /// A codec for the bundled review request schema.
    pub fn reviews() -> Self {
        AvroCodec {
            schema: Schema::parse_str(REVIEW_SCHEMA).expect("bundled schema parses"),
        }
    }

    /// A codec for the bundled label record schema.
    pub fn ground_truth() -> Self {
        AvroCodec {
            schema: Schema::parse_str(GROUND_TRUTH_SCHEMA).expect("bundled schema parses"),
        }
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Appends the Avro encoding of `record` to `out`.
    pub fn encode<T: Serialize>(&self, record: &T, out: &mut Vec<u8>) -> Result<()> {
        let writer = GenericDatumWriter::builder(&self.schema)
            .build()
            .map_err(|e| avro_error(&self.schema, e))?;
        writer
            .write_ser(out, record)
            .map_err(|e| avro_error(&self.schema, e))?;
        Ok(())
    }

    /// Decodes one record (used by tests and downstream tooling).
    pub fn decode<T: serde::de::DeserializeOwned>(&self, mut bytes: &[u8]) -> Result<T> {
        let reader = apache_avro::reader::datum::GenericDatumReader::builder(&self.schema)
            .build()
            .map_err(|e| avro_error(&self.schema, e))?;
        let value = reader
            .read_value(&mut bytes)
            .map_err(|e| avro_error(&self.schema, e))?;
        apache_avro::from_value(&value).map_err(|e| avro_error(&self.schema, e))
    }
}

fn avro_error(schema: &Schema, e: apache_avro::Error) -> Error {
    Error::Schema {
        what: schema
            .name()
            .map(|n| n.fullname(None))
            .unwrap_or_else(|| "record".into()),
        message: e.to_string(),
    }
}

/// Encodes feature records for a writer schema whose fields are `id`, `event_time`,
/// `label` and numeric features (the bundled schema's shape, in any order).
#[derive(Debug)]
pub struct FeatureEncoder {
    schema: Schema,
    format: InputFormat,
    field_names: Vec<String>,
    /// The id Confluent framing names.
    schema_id: u32,
}

/// One feature record's content.
#[derive(Debug, Clone, Copy)]
pub struct FeatureRow<'a> {
    /// Record id.
    pub id: &'a str,
    /// Event time, ms since the epoch.
    pub event_time_ms: i64,
    /// Feature names and values, in any order.
    pub names: &'a [String],
    /// Values matching `names`.
    pub values: &'a [f64],
    /// Ground truth, if known.
    pub label: Option<i32>,
}

impl FeatureEncoder {
    /// An encoder for `schema` with the given framing.
    pub fn new(schema: Schema, format: InputFormat) -> Result<Self> {
        let Schema::Record(RecordSchema { fields, .. }) = &schema else {
            return Err(Error::Schema {
                what: "input".into(),
                message: "the writer schema must be a record".into(),
            });
        };
        let field_names = fields.iter().map(|f| f.name.clone()).collect();
        Ok(FeatureEncoder {
            schema,
            format,
            field_names,
            schema_id: 1,
        })
    }

    /// Frames Confluent records with `id` (the schema's id in a registry) instead of 1.
    pub fn with_schema_id(mut self, id: u32) -> Self {
        self.schema_id = id;
        self
    }

    /// Appends the framed encoding of `row` to `out`. Features missing from `row` are
    /// written as null (which the schema must allow).
    pub fn encode(&self, row: FeatureRow<'_>, out: &mut Vec<u8>) -> Result<()> {
        if self.format == InputFormat::Confluent {
            crate::codec::registry::frame(self.schema_id, out);
        }
        let fields = self
            .field_names
            .iter()
            .map(|name| {
                let value = match name.as_str() {
                    ID_FIELD => Value::String(row.id.to_string()),
                    EVENT_TIME_FIELD => Value::TimestampMillis(row.event_time_ms),
                    LABEL_FIELD => match row.label {
                        Some(l) => Value::Union(1, Box::new(Value::Int(l))),
                        None => Value::Union(0, Box::new(Value::Null)),
                    },
                    _ => match row.names.iter().position(|n| n == name) {
                        Some(i) => Value::Double(row.values[i]),
                        None => Value::Null,
                    },
                };
                (name.clone(), value)
            })
            .collect();
        let writer = GenericDatumWriter::builder(&self.schema)
            .build()
            .map_err(|e| avro_error(&self.schema, e))?;
        writer
            .write_value(out, Value::Record(fields))
            .map_err(|e| avro_error(&self.schema, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classifier's prediction with integer labels.
    fn classifier() -> PredictionFields<'static> {
        PredictionFields {
            id: "rec-7",
            model_name: "breast-cancer",
            model_version: "1",
            predicted_label: Some(1),
            predicted_class: None,
            confidence: Some(0.93),
            value: None,
            classes: &[0, 1],
            class_names: None,
            probabilities: &[0.07, 0.93],
            actual_label: Some(0),
            source_topic: "features",
            source_partition: 2,
            source_offset: 123_456_789_012,
            event_time: 1_700_000_000_123,
            scored_at: 1_700_000_000_456,
            explanation: None,
        }
    }

    /// `fields` encoded by hand, decoded with apache-avro, and that re-encoded by apache-avro.
    fn hand_and_reference(fields: &PredictionFields<'_>) -> (Vec<u8>, PredictionRecord, Vec<u8>) {
        let codec = AvroCodec::predictions();
        let mut hand = Vec::new();
        fields.encode(&mut hand);
        let decoded: PredictionRecord = codec.decode(&hand).unwrap();
        let mut reference = Vec::new();
        codec.encode(&decoded, &mut reference).unwrap();
        (hand, decoded, reference)
    }

    #[test]
    fn hand_encoded_prediction_matches_the_schema() {
        let (hand, decoded, reference) = hand_and_reference(&classifier());
        let prediction = Prediction {
            model_name: "breast-cancer".into(),
            model_version: "1".into(),
            predicted_label: Some(1),
            predicted_class: None,
            confidence: Some(0.93),
            value: None,
            probabilities: vec![
                ClassProbability {
                    label: 0,
                    name: None,
                    probability: 0.07,
                },
                ClassProbability {
                    label: 1,
                    name: None,
                    probability: 0.93,
                },
            ],
        };
        let expected = PredictionRecord {
            id: "rec-7".into(),
            prediction,
            actual_label: Some(0),
            source_topic: "features".into(),
            source_partition: 2,
            source_offset: 123_456_789_012,
            event_time: 1_700_000_000_123,
            scored_at: 1_700_000_000_456,
            explanation: None,
        };
        assert_eq!(decoded, expected);
        assert_eq!(hand, reference, "byte for byte what apache-avro writes");

        let (_, decoded, _) = hand_and_reference(&PredictionFields {
            actual_label: None,
            ..classifier()
        });
        assert_eq!(decoded.actual_label, None);
    }

    #[test]
    fn named_classes_and_regressor_values_encode_as_the_schema_says() {
        let names = ["benign".to_string(), "malignant".to_string()];
        let named = PredictionFields {
            predicted_class: Some("malignant"),
            class_names: Some(&names),
            ..classifier()
        };
        let (hand, decoded, reference) = hand_and_reference(&named);
        assert_eq!(hand, reference);
        assert_eq!(
            decoded.prediction.predicted_class.as_deref(),
            Some("malignant")
        );
        let decoded_names: Vec<_> = decoded
            .prediction
            .probabilities
            .iter()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(
            decoded_names,
            [Some(names[0].clone()), Some(names[1].clone())]
        );

        let regressor = PredictionFields {
            predicted_label: None,
            confidence: None,
            value: Some(151.25),
            classes: &[],
            probabilities: &[],
            actual_label: None,
            ..classifier()
        };
        let (hand, decoded, reference) = hand_and_reference(&regressor);
        assert_eq!(hand, reference);
        assert_eq!(
            (
                decoded.prediction.predicted_label,
                decoded.prediction.confidence,
                decoded.prediction.value
            ),
            (None, None, Some(151.25))
        );
        assert!(decoded.prediction.probabilities.is_empty());
    }

    #[test]
    fn explanations_encode_as_the_schema_says() {
        let features = ["mean_radius".to_string(), "mean_texture".to_string()];
        let explained = PredictionFields {
            explanation: Some(ExplanationFields {
                label: Some(1),
                bias: 0.375,
                features: &features,
                contributions: &[0.5, 0.055],
            }),
            ..classifier()
        };
        let (hand, decoded, reference) = hand_and_reference(&explained);
        assert_eq!(hand, reference, "byte for byte what apache-avro writes");
        let expected = ExplanationRecord {
            label: Some(1),
            bias: 0.375,
            contributions: vec![
                FeatureContribution {
                    feature: "mean_radius".into(),
                    contribution: 0.5,
                },
                FeatureContribution {
                    feature: "mean_texture".into(),
                    contribution: 0.055,
                },
            ],
        };
        assert_eq!(decoded.explanation, Some(expected));
    }

    #[test]
    fn the_schemas_read_what_their_first_versions_wrote_and_old_readers_read_classifications() {
        use apache_avro::schema_compatibility::SchemaCompatibility;
        let parse = |s: &str| Schema::parse_str(s).unwrap();
        for (first, now) in [
            (
                include_str!("../../schemas/history/prediction-1.avsc"),
                PREDICTION_SCHEMA,
            ),
            (
                include_str!("../../schemas/history/prediction-2.avsc"),
                PREDICTION_SCHEMA,
            ),
            (
                include_str!("../../schemas/history/drift_report-1.avsc"),
                DRIFT_REPORT_SCHEMA,
            ),
            (
                include_str!("../../schemas/history/drift_report-2.avsc"),
                DRIFT_REPORT_SCHEMA,
            ),
            (
                include_str!("../../schemas/history/drift_report-3.avsc"),
                DRIFT_REPORT_SCHEMA,
            ),
            (
                include_str!("../../schemas/history/drift_report-4.avsc"),
                DRIFT_REPORT_SCHEMA,
            ),
        ] {
            let (first, now) = (parse(first), parse(now));
            assert!(
                SchemaCompatibility::can_read(&first, &now).is_ok(),
                "{:?} cannot read its first version's records",
                now.name()
            );
        }
        // A consumer still on the first prediction schema reads a classifier's predictions.
        let first = parse(include_str!("../../schemas/history/prediction-1.avsc"));
        let mut bytes = Vec::new();
        classifier().encode(&mut bytes);
        let current = AvroCodec::predictions();
        let old = apache_avro::reader::datum::GenericDatumReader::builder(current.schema())
            .reader_schema(&first)
            .build()
            .unwrap()
            .read_value(&mut &bytes[..])
            .unwrap();
        let apache_avro::types::Value::Record(fields) = old else {
            panic!("{old:?}")
        };
        assert_eq!(
            fields[3],
            ("predicted_label".into(), apache_avro::types::Value::Int(1))
        );
        assert_eq!(
            fields[4],
            ("confidence".into(), apache_avro::types::Value::Double(0.93))
        );
    }
}

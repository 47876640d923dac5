//! One writer schema compiled against the model's features: what each writer field means to
//! driftwood, and how to read it.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::RecordSchema;

use super::{EVENT_TIME_FIELD, ID_FIELD, LABEL_FIELD};
use crate::codec::avro::{CompiledSchema, Plan};

/// What a writer field means to driftwood.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Slot {
    Feature(usize),
    Id,
    EventTime,
    Label,
    Ignored,
}

/// What each writer field means to driftwood, and the event time's divisor to milliseconds;
/// fails naming a feature that is missing or not numeric.
fn slots(
    fields: &[apache_avro::schema::RecordField],
    features: &[String],
) -> std::result::Result<(Vec<Slot>, i64), String> {
    let wanted: HashMap<&str, usize> = features
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut found = vec![false; features.len()];
    let mut event_time_divisor = 1;
    let mut slots = Vec::with_capacity(fields.len());
    for field in fields {
        let slot = match (wanted.get(field.name.as_str()), field.name.as_str()) {
            (Some(_), _) if !is_numeric(&field.schema) => {
                return Err(format!(
                    "feature field {:?} must be double, float, int or long (optionally nullable), not {:?}",
                    field.name, field.schema
                ));
            }
            (Some(&i), _) => {
                found[i] = true;
                Slot::Feature(i)
            }
            (None, ID_FIELD) => Slot::Id,
            (None, EVENT_TIME_FIELD) => {
                event_time_divisor = time_divisor(&field.schema);
                Slot::EventTime
            }
            (None, LABEL_FIELD) => Slot::Label,
            (None, _) => Slot::Ignored,
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
        return Err(format!(
            "the writer schema lacks model features: {}",
            missing.join(", ")
        ));
    }
    Ok((slots, event_time_divisor))
}

/// One writer schema compiled against the model's features.
#[derive(Debug)]
pub(super) struct WriterPlan {
    /// Per writer field, in order: what it means and how to read it.
    pub(super) fields: Vec<(Slot, Plan)>,
    /// Named types the field plans refer to.
    pub(super) schema: CompiledSchema,
    /// Divides `event_time` into milliseconds (1, 1000 for micros, 10^6 for nanos).
    pub(super) event_time_divisor: i64,
}

impl WriterPlan {
    /// Fails naming what keeps `writer_schema` from supplying `features`.
    pub(super) fn new(
        writer_schema: &Schema,
        features: &[String],
    ) -> std::result::Result<Self, String> {
        let Schema::Record(RecordSchema { fields, .. }) = writer_schema else {
            return Err("the writer schema must be a record".into());
        };
        let (slots, event_time_divisor) = slots(fields, features)?;
        let schema = CompiledSchema::compile(writer_schema)?;
        let Plan::Record(plans) = schema.resolve(&schema.root).clone() else {
            unreachable!("a record schema compiles to a record plan")
        };
        Ok(WriterPlan {
            fields: slots.into_iter().zip(plans).collect(),
            schema,
            event_time_divisor,
        })
    }
}

/// Milliseconds per unit of a timestamp schema (possibly inside a nullable union).
fn time_divisor(schema: &Schema) -> i64 {
    match schema {
        Schema::TimestampMicros | Schema::LocalTimestampMicros => 1_000,
        Schema::TimestampNanos | Schema::LocalTimestampNanos => 1_000_000,
        Schema::Union(u) => u.variants().iter().map(time_divisor).max().unwrap_or(1),
        _ => 1,
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

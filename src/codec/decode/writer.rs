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

/// How the next writer field, or run of fields, is read.
#[derive(Debug)]
pub(super) enum Step {
    /// One field: what it means to driftwood and how to read it.
    Field(Slot, Plan),
    /// `count` consecutive `double` fields that are the model's features `first..first +
    /// count`, in that order (as the bundled schema and producers generated from the model's
    /// feature list write them): read as one block of bytes, without a plan's dispatch per
    /// field (`cargo bench --bench decode`).
    Doubles { first: usize, count: usize },
}

/// One writer schema compiled against the model's features.
#[derive(Debug)]
pub(super) struct WriterPlan {
    /// The writer's fields in order, runs of in-order `double` features merged.
    pub(super) steps: Vec<Step>,
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
            steps: steps(slots.into_iter().zip(plans)),
            schema,
            event_time_divisor,
        })
    }
}

/// The fields as steps: each run of two or more `double` fields that are consecutive
/// features in the model's order becomes one [`Step::Doubles`].
fn steps(fields: impl IntoIterator<Item = (Slot, Plan)>) -> Vec<Step> {
    let mut steps = Vec::new();
    for (slot, plan) in fields {
        let double = match (slot, &plan) {
            (Slot::Feature(i), Plan::Double) => Some(i),
            _ => None,
        };
        match (steps.last_mut(), double) {
            (Some(Step::Doubles { first, count }), Some(i)) if i == *first + *count => *count += 1,
            (Some(last), Some(i)) if is_double_feature_before(last, i) => {
                *last = Step::Doubles {
                    first: i - 1,
                    count: 2,
                }
            }
            _ => steps.push(Step::Field(slot, plan)),
        }
    }
    steps
}

/// Whether `step` reads feature `i - 1` alone, a `double`.
fn is_double_feature_before(step: &Step, i: usize) -> bool {
    matches!(step, Step::Field(Slot::Feature(j), Plan::Double) if *j + 1 == i)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The steps' shapes: a run of `double` features in the model's order is one step.
    fn shapes(fields: Vec<(Slot, Plan)>) -> Vec<String> {
        (steps(fields).iter())
            .map(|s| match s {
                Step::Doubles { first, count } => format!("doubles {first}+{count}"),
                Step::Field(slot, plan) => format!("{slot:?} {plan:?}"),
            })
            .collect()
    }

    #[test]
    fn runs_of_in_order_double_features_are_read_as_one_step() {
        let double = |i| (Slot::Feature(i), Plan::Double);
        let in_order = vec![(Slot::Id, Plan::String), double(0), double(1), double(2)];
        assert_eq!(shapes(in_order), ["Id String", "doubles 0+3"]);
        // Out of the model's order, alone, broken by another field, or not a double: one
        // field at a time.
        let mixed = vec![
            double(3),
            double(2),
            double(4),
            (Slot::Ignored, Plan::Long),
            double(5),
            (Slot::Feature(6), Plan::Float),
            double(7),
            double(8),
        ];
        assert_eq!(
            shapes(mixed),
            [
                "Feature(3) Double",
                "Feature(2) Double",
                "Feature(4) Double",
                "Ignored Long",
                "Feature(5) Double",
                "Feature(6) Float",
                "doubles 7+2",
            ]
        );
    }
}

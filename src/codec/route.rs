//! The record field records are routed by (`--route-by field:NAME`): read without decoding
//! the features, stopping at the field, so that the record is then decoded once, by the
//! decoder of the model it goes to.

use apache_avro::Schema;
use apache_avro::schema::RecordSchema;

use crate::codec::avro::{CompiledSchema, Cursor, Plan, Scalar};
use crate::codec::decode::{InputFormat, unframe};
use crate::error::{Error, Result};

/// Reads one string field of the input records.
#[derive(Debug, Clone)]
pub struct RouteField {
    format: InputFormat,
    schema: CompiledSchema,
    /// The plans of the fields before the route field, then the route field's.
    plans: Vec<Plan>,
}

impl RouteField {
    /// Reads `name` of `writer_schema`'s records, framed as `format`. Fails when the schema
    /// has no such field or it is not a string (optionally nullable).
    pub fn new(writer_schema: &Schema, name: &str, format: InputFormat) -> Result<Self> {
        let refuse = |message: String| Error::Schema {
            what: "input".into(),
            message,
        };
        let Schema::Record(RecordSchema { fields, .. }) = writer_schema else {
            return Err(refuse("the writer schema must be a record".into()));
        };
        let Some(at) = fields.iter().position(|f| f.name == name) else {
            return Err(refuse(format!(
                "--route-by field:{name}: the writer schema has no field {name:?}"
            )));
        };
        let string = |s: &Schema| matches!(s, Schema::String);
        let nullable = |s: &Schema| matches!(s, Schema::Null);
        let is_string = match &fields[at].schema {
            Schema::String => true,
            Schema::Union(u) => {
                (u.variants().iter()).all(|v| string(v) || nullable(v))
                    && u.variants().iter().any(string)
            }
            _ => false,
        };
        if !is_string {
            return Err(refuse(format!(
                "--route-by field:{name}: the field must be a string (optionally nullable), not {:?}",
                fields[at].schema
            )));
        }
        let schema = CompiledSchema::compile(writer_schema).map_err(refuse)?;
        let Plan::Record(mut plans) = schema.resolve(&schema.root).clone() else {
            unreachable!("a record schema compiles to a record plan")
        };
        plans.truncate(at + 1);
        Ok(RouteField {
            format,
            schema,
            plans,
        })
    }

    /// The field's value in `payload`: `None` when it is null, or the payload cannot be read
    /// that far (decoding it will say why).
    pub fn read<'a>(&self, payload: Option<&'a [u8]>) -> Option<&'a str> {
        let body = unframe(self.format, payload?).ok()?;
        let mut cursor = Cursor::new(body);
        let (route, before) = self.plans.split_last()?;
        for plan in before {
            self.schema.skip(plan, &mut cursor).ok()?;
        }
        match self.schema.scalar(route, &mut cursor).ok()? {
            Scalar::Str(value) => Some(value),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use apache_avro::types::Value;
    use apache_avro::writer::datum::GenericDatumWriter;

    use super::*;

    const SCHEMA: &str = r#"{"type": "record", "name": "R", "fields": [
        {"name": "x", "type": "double"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "model", "type": ["null", "string"]},
        {"name": "y", "type": "double"}
    ]}"#;

    fn encoded(model: Option<&str>) -> Vec<u8> {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        let model = match model {
            Some(m) => Value::Union(1, Box::new(Value::String(m.into()))),
            None => Value::Union(0, Box::new(Value::Null)),
        };
        let record = Value::Record(vec![
            ("x".into(), Value::Double(1.5)),
            ("tags".into(), Value::Array(vec![Value::String("a".into())])),
            ("model".into(), model),
            ("y".into(), Value::Double(2.5)),
        ]);
        let mut bytes = Vec::new();
        GenericDatumWriter::builder(&schema)
            .build()
            .unwrap()
            .write_value(&mut bytes, record)
            .unwrap();
        bytes
    }

    #[test]
    fn the_field_is_read_past_the_fields_before_it_and_null_is_no_route() {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        let route = RouteField::new(&schema, "model", InputFormat::Avro).unwrap();
        assert_eq!(route.read(Some(&encoded(Some("small")))), Some("small"));
        assert_eq!(route.read(Some(&encoded(None))), None);
        assert_eq!(route.read(Some(&[0x02])), None, "truncated");
        assert_eq!(route.read(None), None, "a tombstone");
    }

    #[test]
    fn a_field_that_is_missing_or_not_a_string_is_refused() {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        let missing = RouteField::new(&schema, "tenant", InputFormat::Avro).unwrap_err();
        assert!(
            missing.to_string().contains("no field \"tenant\""),
            "{missing}"
        );
        let number = RouteField::new(&schema, "x", InputFormat::Avro).unwrap_err();
        assert!(number.to_string().contains("must be a string"), "{number}");
    }
}

//! The decoder's tests: fields by name, truncated and garbage bytes, framing, missing and
//! non-finite features, evolved writer schemas, and input read by its registered schema id.

use super::*;
use crate::codec::encode::{FeatureEncoder, FeatureRow};
use crate::model::dataset::Dataset;
use apache_avro::types::Value;
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

/// A record schema named `name` with the given JSON field definitions.
fn record_schema(name: &str, fields: &[String]) -> Schema {
    let text = format!(
        r#"{{"type":"record","name":"{name}","fields":[{}]}}"#,
        fields.join(",")
    );
    FeatureDecoder::parse_schema(&text, name).unwrap()
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
        assert_eq!(meta.id, Some("r-1"));
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
    let schema = record_schema("R", &fields);
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
    let refusal = |text: &str| {
        FeatureDecoder::new(
            FeatureDecoder::parse_schema(text, "t").unwrap(),
            &names,
            InputFormat::Avro,
            1 << 20,
        )
        .unwrap_err()
        .to_string()
    };
    // A schema without a feature field fails at start-up, naming it.
    let text = BUNDLED_FEATURE_SCHEMA.replace("\"mean_area\"", "\"mean_area_renamed\"");
    let err = refusal(&text);
    assert!(err.contains("lacks model features: mean_area"), "{err}");

    // A feature of the wrong type, or a union with a branch that is neither null nor a
    // number, is refused at start-up too, naming the field.
    for wrong in ["\"string\"", "[\"string\", \"double\"]"] {
        let text = BUNDLED_FEATURE_SCHEMA.replacen(
            "\"name\": \"mean_area\",\n      \"type\": \"double\"",
            &format!("\"name\": \"mean_area\",\n      \"type\": {wrong}"),
            1,
        );
        assert_ne!(text, BUNDLED_FEATURE_SCHEMA);
        let err = refusal(&text);
        assert!(
            err.contains("feature field \"mean_area\" must be double"),
            "{wrong}: {err}"
        );
    }

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
    let err = decoder(schema.clone(), InputFormat::Avro)
        .decode(Some(&bytes), &mut row)
        .unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::MissingFeature);
    assert!(err.message.contains("mean_area"), "{err}");

    // With --missing-features score, it is scored as missing (NaN) instead.
    let scoring = decoder(schema, InputFormat::Avro).with_missing(MissingFeatures::Score);
    scoring.decode(Some(&bytes), &mut row).unwrap();
    let area = names.iter().position(|n| n == "mean_area").unwrap();
    assert!(row[area].is_nan(), "{row:?}");
    assert_eq!(row.iter().filter(|v| v.is_nan()).count(), 1);
}

#[test]
fn scoring_missing_features_takes_nan_but_not_infinity() {
    let data = Dataset::breast_cancer();
    let scoring = decoder(bundled(), InputFormat::Avro).with_missing(MissingFeatures::Score);
    let mut values = data.rows[0].clone();
    values[7] = f64::NAN;
    let bytes = encode(&bundled(), InputFormat::Avro, &data.feature_names, &values);
    let mut row = Vec::new();
    scoring.decode(Some(&bytes), &mut row).unwrap();
    assert!(row[7].is_nan());
    values[7] = f64::INFINITY;
    let bytes = encode(&bundled(), InputFormat::Avro, &data.feature_names, &values);
    let err = scoring.decode(Some(&bytes), &mut Vec::new()).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::NonFinite);
    assert_eq!(
        "score".parse::<MissingFeatures>(),
        Ok(MissingFeatures::Score)
    );
    assert!(
        "skip"
            .parse::<MissingFeatures>()
            .unwrap_err()
            .contains("dead-letter or score")
    );
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

    let small = FeatureDecoder::new(bundled(), &data.feature_names, InputFormat::Avro, 16).unwrap();
    let err = small.decode(Some(&bytes), &mut row).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::Oversized);
}

/// A producer's evolved schema: promoted numeric types, nullable features, micros
/// timestamps, and extra fields of every Avro type in between, all of which are skipped.
#[test]
fn evolved_writer_schemas_decode_by_name() {
    let data = Dataset::breast_cancer();
    let numeric = [
        "\"float\"",
        "\"int\"",
        "\"long\"",
        "[\"null\",\"double\"]",
        "[\"double\",\"null\"]",
    ];
    let extras = [
        r#"{"name":"x_bool","type":"boolean"}"#,
        r#"{"name":"x_bytes","type":"bytes"}"#,
        r#"{"name":"x_fixed","type":{"type":"fixed","name":"F","size":3}}"#,
        r#"{"name":"x_enum","type":{"type":"enum","name":"E","symbols":["a","b"]}}"#,
        r#"{"name":"x_array","type":{"type":"array","items":"long"}}"#,
        r#"{"name":"x_map","type":{"type":"map","values":"string"}}"#,
        r#"{"name":"x_rec","type":{"type":"record","name":"Inner","fields":[{"name":"a","type":"double"},{"name":"b","type":["null","Inner"],"default":null}]}}"#,
        r#"{"name":"x_ref","type":"F"}"#,
    ];
    let mut fields = vec![
        r#"{"name":"event_time","type":{"type":"long","logicalType":"timestamp-micros"}}"#
            .to_string(),
    ];
    for (i, name) in data.feature_names.iter().enumerate() {
        fields.push(format!(
            r#"{{"name":"{name}","type":{}}}"#,
            numeric[i % numeric.len()]
        ));
        if i < extras.len() {
            fields.push(extras[i].to_string());
        }
    }
    fields.push(r#"{"name":"id","type":["null","string"]}"#.into());
    fields.push(r#"{"name":"label","type":"long"}"#.into());
    let schema = record_schema("Evolved", &fields);
    let Schema::Record(record) = &schema else {
        unreachable!()
    };
    let row = &data.rows[42];
    let value_for = |name: &str, schema: &Schema| -> Value {
        if let Some(i) = data.feature_names.iter().position(|n| n == name) {
            // Whole numbers so that int/long/float promotions are exact.
            let v = row[i].round();
            return match schema {
                Schema::Float => Value::Float(v as f32),
                Schema::Int => Value::Int(v as i32),
                Schema::Long => Value::Long(v as i64),
                Schema::Union(u) => {
                    let at = u
                        .variants()
                        .iter()
                        .position(|s| *s == Schema::Double)
                        .unwrap();
                    Value::Union(at as u32, Box::new(Value::Double(v)))
                }
                _ => Value::Double(v),
            };
        }
        match name {
            "event_time" => Value::TimestampMicros(1_700_000_000_123_456),
            "id" => Value::Union(1, Box::new(Value::String("evolved-1".into()))),
            "label" => Value::Long(1),
            "x_bool" => Value::Boolean(true),
            "x_bytes" => Value::Bytes(vec![1, 2, 3]),
            "x_fixed" | "x_ref" => Value::Fixed(3, vec![9, 9, 9]),
            "x_enum" => Value::Enum(1, "b".into()),
            "x_array" => Value::Array(vec![Value::Long(5), Value::Long(-7)]),
            "x_map" => Value::Map([("k".to_string(), Value::String("v".into()))].into()),
            "x_rec" => Value::Record(vec![
                ("a".into(), Value::Double(1.5)),
                (
                    "b".into(),
                    Value::Union(
                        1,
                        Box::new(Value::Record(vec![
                            ("a".into(), Value::Double(2.5)),
                            ("b".into(), Value::Union(0, Box::new(Value::Null))),
                        ])),
                    ),
                ),
            ]),
            other => panic!("no value for {other}"),
        }
    };
    let value = Value::Record(
        record
            .fields
            .iter()
            .map(|f| (f.name.clone(), value_for(&f.name, &f.schema)))
            .collect(),
    );
    let mut bytes = Vec::new();
    GenericDatumWriter::builder(&schema)
        .build()
        .unwrap()
        .write_value(&mut bytes, value)
        .unwrap();
    let mut decoded = Vec::new();
    let meta = decoder(schema, InputFormat::Avro)
        .decode(Some(&bytes), &mut decoded)
        .unwrap();
    let expected: Vec<f64> = row.iter().map(|v| v.round()).collect();
    assert_eq!(decoded, expected);
    assert_eq!(meta.id, Some("evolved-1"));
    assert_eq!(meta.event_time_ms, Some(1_700_000_000_123));
    assert_eq!(meta.label, Some(1));
}

#[test]
fn registered_input_is_read_with_the_schema_its_id_names() {
    let names = Dataset::breast_cancer().feature_names;
    let schemas = WriterSchemas::new(10);
    let decoder = FeatureDecoder::registered(&names, 1 << 20, schemas.clone());
    let values: Vec<f64> = (0..names.len()).map(|i| i as f64).collect();
    // The bundled schema under id 7; a schema without the first feature under id 8.
    schemas.insert(7, WriterSchema::Known(Arc::new(bundled())));
    let lacking = record_schema(
        "Lacking",
        &[format!(r#"{{"name":"{}","type":"double"}}"#, names[1])],
    );
    schemas.insert(8, WriterSchema::Known(Arc::new(lacking)));
    schemas.insert(
        9,
        WriterSchema::Unusable("the registry has no schema id 9".into()),
    );
    let framed = |id: u32| {
        let encoder = FeatureEncoder::new(bundled(), InputFormat::Confluent).unwrap();
        let encoder = encoder.with_schema_id(id);
        let mut out = Vec::new();
        let row = FeatureRow {
            id: "r",
            event_time_ms: 0,
            names: &names,
            values: &values,
            label: None,
        };
        encoder.encode(row, &mut out).unwrap();
        out
    };

    let mut row = Vec::new();
    decoder.decode(Some(&framed(7)), &mut row).unwrap();
    assert_eq!(row, values, "id 7 read with its schema");
    let err = decoder.decode(Some(&framed(8)), &mut row).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::IncompatibleSchema);
    assert!(err.message.contains(&names[0]), "{err}");
    let err = decoder.decode(Some(&framed(9)), &mut row).unwrap_err();
    assert_eq!(
        (err.kind, err.message.as_str()),
        (
            DecodeErrorKind::UnknownSchema,
            "the registry has no schema id 9"
        )
    );
    let err = decoder.decode(Some(&framed(10)), &mut row).unwrap_err();
    assert_eq!(
        err.kind,
        DecodeErrorKind::UnknownSchema,
        "an id never fetched: {err}"
    );
    assert_eq!(row.len(), names.len(), "failed records append nothing");
}

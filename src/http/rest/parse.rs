//! Reading a request body into rows in the model's feature order, with every problem
//! located by a JSON Pointer.

use serde_json::{Map, Value};

use super::FieldError;
use crate::model::Model;

/// One record to score.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// The caller's id, echoed back.
    pub id: Option<String>,
    /// The features in the model's order (a null is a missing value, NaN).
    pub row: Vec<f64>,
    /// Whether the caller asked for an explanation.
    pub explain: bool,
}

/// A body: one record, or a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A JSON object.
    One(Request),
    /// A JSON array of objects.
    Batch(Vec<Request>),
}

/// Reads `body` for `model`, or says everything wrong with it.
pub fn parse(body: &Value, model: &Model) -> Result<Parsed, Vec<FieldError>> {
    let mut errors = Vec::new();
    let parsed = match body {
        Value::Object(record) => Parsed::One(parse_record(record, "", model, &mut errors)),
        Value::Array(records) => Parsed::Batch(
            (records.iter().enumerate())
                .map(|(i, record)| match record {
                    Value::Object(record) => {
                        parse_record(record, &format!("/{i}"), model, &mut errors)
                    }
                    _ => {
                        errors.push(error(format!("/{i}"), "must be an object"));
                        Request::default()
                    }
                })
                .collect(),
        ),
        _ => {
            errors.push(error(
                String::new(),
                "must be an object or an array of objects",
            ));
            return Err(errors);
        }
    };
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

fn error(field: String, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// Escapes a key for a JSON Pointer (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn parse_record(
    record: &Map<String, Value>,
    at: &str,
    model: &Model,
    errors: &mut Vec<FieldError>,
) -> Request {
    let mut request = Request::default();
    for (key, value) in record {
        let field = format!("{at}/{}", escape(key));
        match (key.as_str(), value) {
            ("id", Value::String(id)) => request.id = Some(id.clone()),
            ("id", Value::Null) => {}
            ("id", _) => errors.push(error(field, "must be a string")),
            ("explain", Value::Bool(explain)) => request.explain = *explain,
            ("explain", Value::Null) => {}
            ("explain", _) => errors.push(error(field, "must be true or false")),
            ("features", Value::Object(features)) => {
                request.row = parse_features(features, &field, model, errors);
            }
            ("features", _) => errors.push(error(field, "must be an object of features")),
            _ => errors.push(error(
                field,
                "is not a field of a record (id, features, explain)",
            )),
        }
    }
    if !record.contains_key("features") {
        errors.push(error(format!("{at}/features"), "is required"));
    }
    if request.explain
        && let Err(why) = model.explainer()
    {
        errors.push(error(format!("{at}/explain"), why));
    }
    request
}

fn parse_features(
    features: &Map<String, Value>,
    at: &str,
    model: &Model,
    errors: &mut Vec<FieldError>,
) -> Vec<f64> {
    let names = &model.metadata.features;
    for key in features.keys() {
        if !names.contains(key) {
            let field = format!("{at}/{}", escape(key));
            errors.push(error(field, "is not a feature of the model"));
        }
    }
    (names.iter())
        .map(|name| {
            let field = format!("{at}/{}", escape(name));
            match features.get(name) {
                Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
                Some(Value::Null) => f64::NAN,
                Some(_) => {
                    errors.push(error(field, "must be a number or null"));
                    f64::NAN
                }
                None => {
                    errors.push(error(field, "is missing"));
                    f64::NAN
                }
            }
        })
        .collect()
}

//! The REST twin on the sidecar (`--rest`): `POST /v1/predict` scores one record or a batch,
//! JSON in and out, with the version the stream serves at that moment (the consumer loop
//! publishes each swap to [`Serving`]), for debugging and backfills. `/openapi.json`
//! describes it, with the serving model's features. Off unless enabled; bodies are limited
//! to `--rest-body-limit` bytes.

mod openapi;
mod parse;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Serialize;
use utoipa::ToSchema;

use crate::codec::encode::{ClassProbability, ExplanationRecord, Prediction};
use crate::model::{Model, Predicted, Scored, Serving};
use crate::obs::metrics::Metrics;
use crate::pipeline::explain;
use parse::{Parsed, Request};

/// What the REST twin serves with.
#[derive(Clone)]
pub struct Rest {
    /// The models the stream serves.
    pub serving: Serving,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Where requests are counted.
    pub metrics: Metrics,
}

/// The REST twin's routes, to merge into the sidecar's.
pub fn routes(rest: Rest) -> Router {
    let limit = rest.body_limit;
    Router::new()
        .route("/v1/predict", post(predict))
        .route("/openapi.json", get(openapi::document))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(rest)
}

/// One field's problem, located by a JSON Pointer into the request body.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON Pointer to the field (`/features/mean_radius`, `/3/id`); empty for the body.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Why a request was refused.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problems {
    /// Every problem found.
    pub errors: Vec<FieldError>,
}

/// One record's prediction, as the prediction topic carries it (without the Kafka source),
/// by the version the stream serves.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RestPrediction {
    /// The request's `id`, if it gave one.
    pub id: Option<String>,
    /// What the model said.
    #[serde(flatten)]
    pub prediction: Prediction,
    /// Saabas contributions, when the request asked for them.
    pub explanation: Option<ExplanationRecord>,
}

fn problems(status: StatusCode, field: &str, message: String) -> Response {
    let errors = vec![FieldError {
        field: field.into(),
        message,
    }];
    (status, Json(Problems { errors })).into_response()
}

/// Scores one record (a JSON object) or a batch (an array of them) with the default model.
#[utoipa::path(
    post,
    path = "/v1/predict",
    request_body(
        content = openapi::PredictBody,
        content_type = "application/json",
        description = "One record, or an array of records (a batch)."
    ),
    responses(
        (status = 200, description = "The prediction, or one per record in order.", body = openapi::PredictResponse),
        (status = 400, description = "The body is not JSON.", body = Problems),
        (status = 413, description = "The body is larger than --rest-body-limit.", body = Problems),
        (status = 415, description = "The body is not application/json.", body = Problems),
        (status = 422, description = "Fields are missing, unknown or of the wrong type.", body = Problems),
    )
)]
async fn predict(
    State(rest): State<Rest>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let response = respond(&rest, &headers, body);
    let status = response.status();
    (rest.metrics.serving.rest_requests)
        .with_label_values(&[status.as_str()])
        .inc();
    response
}

fn respond(rest: &Rest, headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        let message = "send the body as application/json".to_string();
        return problems(StatusCode::UNSUPPORTED_MEDIA_TYPE, "", message);
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let message = format!("{rejection} (the limit is {} bytes)", rest.body_limit);
            return problems(rejection.status(), "", message);
        }
    };
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => return problems(StatusCode::BAD_REQUEST, "", format!("not JSON: {e}")),
    };
    let model = rest.serving.default_model();
    match parse::parse(&value, &model) {
        Err(errors) => {
            (StatusCode::UNPROCESSABLE_ENTITY, Json(Problems { errors })).into_response()
        }
        Ok(Parsed::One(request)) => {
            let mut predictions = score(&model, std::slice::from_ref(&request));
            Json(predictions.remove(0)).into_response()
        }
        Ok(Parsed::Batch(requests)) => Json(score(&model, &requests)).into_response(),
    }
}

/// Scores `requests` in one call to the engine, as the stream scores a batch.
fn score(model: &Model, requests: &[Request]) -> Vec<RestPrediction> {
    let rows: Vec<f64> = requests
        .iter()
        .flat_map(|r| r.row.iter().copied())
        .collect();
    let mut scored = Scored::default();
    model.engine.score(&rows, &mut scored);
    let metadata = &model.metadata;
    (requests.iter().enumerate())
        .map(|(i, request)| {
            let predicted = scored.predicted(i);
            let said = predicted.labelled(metadata);
            let name = |index: usize| metadata.class_names.as_ref().map(|n| n[index].clone());
            let probabilities = (scored.row(i).iter().enumerate())
                .map(|(c, &probability)| ClassProbability {
                    label: metadata.classes[c],
                    name: name(c),
                    probability,
                })
                .collect();
            let prediction = Prediction {
                model_name: metadata.name.clone(),
                model_version: metadata.version.clone(),
                predicted_label: said.label,
                predicted_class: said.class_name.map(str::to_string),
                confidence: said.confidence,
                value: said.value,
                probabilities,
            };
            RestPrediction {
                id: request.id.clone(),
                prediction,
                explanation: request
                    .explain
                    .then(|| explain(model, &request.row, predicted)),
            }
        })
        .collect()
}

/// The explanation (checked possible when the request was parsed), as the stream's
/// predictions carry it.
fn explain(model: &Model, row: &[f64], predicted: Predicted) -> ExplanationRecord {
    let explanation = model.explain(row, predicted).expect("checked explainable");
    explain::fields(model, &explanation).into()
}

#[cfg(test)]
mod tests;

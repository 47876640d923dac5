//! The Confluent-compatible Schema Registry: writer schemas of Confluent-framed input fetched
//! by id (`client`), cached with a bound ([`WriterSchemas`]), and the output schemas
//! registered under `<topic>-value`.
//!
//! Decoding never calls the registry: the consumer loop resolves a batch's new ids first
//! (`pipeline::resolve`), so a registry that is down holds only the partitions whose records
//! carry an id not seen before, and records of known ids keep flowing.

pub(crate) mod client;
mod schemas;

pub use client::{RegistryClient, RegistryError, RegistrySettings};
pub use schemas::{WriterSchema, WriterSchemas};

/// The Confluent wire format's first byte.
pub const MAGIC: u8 = 0;

/// The schema id of a Confluent-framed payload: magic byte 0, then 4 bytes big-endian;
/// `None` when the payload is not framed so (the decoder says why, as a dead letter).
pub fn framed_id(payload: Option<&[u8]>) -> Option<u32> {
    match payload? {
        [MAGIC, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// Appends the Confluent framing of schema `id` to `out`, before the Avro body.
pub fn frame(id: u32, out: &mut Vec<u8>) {
    out.push(MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
}

/// The subject a topic's record values are registered under (Confluent's TopicNameStrategy).
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

/// The schema ids outputs are framed with (`--output-format confluent`); `None` leaves that
/// output plain Avro.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputSchemaIds {
    /// The prediction schema's id under `<predictions topic>-value`.
    pub predictions: Option<u32>,
    /// The drift report schema's id under `<drift topic>-value`.
    pub drift_reports: Option<u32>,
    /// The shadow comparison schema's id under `<comparison topic>-value`.
    pub comparisons: Option<u32>,
    /// The realized performance schema's id under `<performance topic>-value`.
    pub performance: Option<u32>,
    /// The review request schema's id under `<review topic>-value`.
    pub reviews: Option<u32>,
    /// The rollout decision schema's id under `<rollout topic>-value`.
    pub rollouts: Option<u32>,
}

/// The topics whose schemas `--output-format confluent` registers, besides the
/// predictions' and the drift reports'.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalOutputs<'a> {
    /// Shadow comparisons, when published.
    pub comparisons: Option<&'a str>,
    /// Windows of realized performance, with `--labels-topic`.
    pub performance: Option<&'a str>,
    /// Review requests, with `--review-topic`.
    pub reviews: Option<&'a str>,
    /// Rollout decisions, with `--rollout-topic`.
    pub rollouts: Option<&'a str>,
}

/// Registers the prediction and drift report schemas (and those of the optional outputs
/// published) under their topics' subjects, or finds them there, and returns their ids. A
/// registry that is unavailable is asked again for about a minute (backing off) unless
/// `stop` is set; one that refuses (an incompatible evolution) fails at once.
pub fn register_outputs(
    client: &RegistryClient,
    (predictions_topic, drift_topic): (&str, &str),
    optional: OptionalOutputs<'_>,
    stop: &std::sync::atomic::AtomicBool,
) -> crate::Result<OutputSchemaIds> {
    use crate::codec::encode::{
        COMPARISON_SCHEMA, DRIFT_REPORT_SCHEMA, PERFORMANCE_SCHEMA, PREDICTION_SCHEMA,
        REVIEW_SCHEMA, ROLLOUT_SCHEMA,
    };
    let register = |topic: &str, schema: &str| register_output(client, topic, schema, stop);
    let optional_id = |topic: Option<&str>, schema| topic.map(|t| register(t, schema)).transpose();
    Ok(OutputSchemaIds {
        predictions: Some(register(predictions_topic, PREDICTION_SCHEMA)?),
        drift_reports: Some(register(drift_topic, DRIFT_REPORT_SCHEMA)?),
        comparisons: optional_id(optional.comparisons, COMPARISON_SCHEMA)?,
        performance: optional_id(optional.performance, PERFORMANCE_SCHEMA)?,
        reviews: optional_id(optional.reviews, REVIEW_SCHEMA)?,
        rollouts: optional_id(optional.rollouts, ROLLOUT_SCHEMA)?,
    })
}

/// Registers `schema` under `topic`'s value subject (see [`register_outputs`]).
fn register_output(
    client: &RegistryClient,
    topic: &str,
    schema: &str,
    stop: &std::sync::atomic::AtomicBool,
) -> crate::Result<u32> {
    let subject = value_subject(topic);
    let attempt = || client.register(&subject, schema);
    let id = backon::BlockingRetryable::retry(
        attempt,
        backon::ExponentialBuilder::default()
            .with_min_delay(std::time::Duration::from_millis(500))
            .with_max_delay(std::time::Duration::from_secs(10))
            .with_max_times(8),
    )
    .when(|e| {
        matches!(e, RegistryError::Unavailable(_)) && !stop.load(std::sync::atomic::Ordering::Relaxed)
    })
    .notify(|e, delay| {
        tracing::warn!(%subject, error = %e, retry_in = ?delay, "registering an output schema failed; retrying")
    })
    .call()
    .map_err(|e| crate::Error::SchemaRegistry {
        context: format!("registering the schema of {topic} under {subject} at {}", client.url()),
        message: e.to_string(),
    })?;
    tracing::info!(%subject, id, "output schema registered");
    Ok(id)
}

//! How label records are read: plain Avro with the bundled `GroundTruth` schema, or
//! Confluent-framed (`--labels-format confluent`) with the writer schema their id names in
//! the schema registry, fetched on first sight. The loop and a restore read them alike.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::message::Message;
use tracing::{info, warn};

use crate::codec::decode::{
    DecodeError, DecodeErrorKind, FeatureDecoder, InputFormat, MissingFeatures,
};
use crate::codec::encode::GROUND_TRUTH_SCHEMA;
use crate::codec::registry::client::Lookup;
use crate::codec::registry::{
    self, RegistryClient, RegistryError, RegistrySettings, WriterSchema, WriterSchemas,
};
use crate::error::{Error, Result};
use crate::labels::realized::Truth;

/// How long a registry that could not be reached is left alone before it is asked again.
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(5);
/// Writer schemas kept.
const SCHEMAS_KEPT: usize = 1_000;

/// Reads label records.
pub struct LabelReader {
    decoder: FeatureDecoder,
    registry: Option<Registry>,
    row: Vec<f64>,
}

/// The registry a Confluent-framed labels topic is read through.
struct Registry {
    client: RegistryClient,
    schemas: WriterSchemas,
    /// Not asked again before this, after it could not be reached.
    quiet_until: Option<Instant>,
}

impl LabelReader {
    /// A reader of plain Avro labels, or, with `registry`, of Confluent-framed ones.
    pub fn new(registry: Option<&RegistrySettings>) -> Result<Self> {
        let value = ["value".to_string()];
        let (decoder, registry) = match registry {
            None => {
                let schema =
                    FeatureDecoder::parse_schema(GROUND_TRUTH_SCHEMA, "ground_truth.avsc")?;
                (
                    FeatureDecoder::new(schema, &value, InputFormat::Avro, 1 << 20)?,
                    None,
                )
            }
            Some(settings) => {
                let schemas = WriterSchemas::new(SCHEMAS_KEPT);
                let decoder = FeatureDecoder::registered(&value, 1 << 20, schemas.clone());
                let client = RegistryClient::new(settings)?;
                let quiet_until = None;
                (
                    decoder,
                    Some(Registry {
                        client,
                        schemas,
                        quiet_until,
                    }),
                )
            }
        };
        let decoder = decoder.with_missing(MissingFeatures::Score);
        Ok(LabelReader {
            decoder,
            registry,
            row: Vec::new(),
        })
    }

    /// Whether `message` can be read now: false while the registry cannot be reached for
    /// its schema id (asked again after a few seconds). Fails when the registry refuses.
    pub fn ready<M: Message>(&mut self, message: &M) -> Result<bool> {
        let Some(registry) = &mut self.registry else {
            return Ok(true);
        };
        // A record without a frame is dead-lettered by the decoder.
        let Some(id) = registry::framed_id(message.payload()) else {
            return Ok(true);
        };
        if registry.schemas.contains(id) {
            return Ok(true);
        }
        if registry.quiet_until.is_some_and(|t| Instant::now() < t) {
            return Ok(false);
        }
        let schema = match registry.client.schema_by_id(id) {
            Ok(Lookup::Found(text)) => {
                info!(id, "label writer schema fetched from the registry");
                match FeatureDecoder::parse_schema(&text, &format!("schema id {id}")) {
                    Ok(schema) => WriterSchema::Known(Arc::new(schema)),
                    Err(e) => WriterSchema::Unusable(e.to_string()),
                }
            }
            Ok(Lookup::Unknown(reason)) => WriterSchema::Unusable(reason),
            Err(RegistryError::Unavailable(error)) => {
                warn!(id, %error, "the schema registry cannot be reached; labels wait");
                registry.quiet_until = Some(Instant::now() + ASK_AGAIN_AFTER);
                return Ok(false);
            }
            Err(RegistryError::Refused(message)) => {
                return Err(Error::SchemaRegistry {
                    context: format!("fetching label schema id {id}"),
                    message,
                });
            }
        };
        registry.schemas.insert(id, schema);
        registry.quiet_until = None;
        Ok(true)
    }

    /// A label record's id, truth and event time (ms), or why it cannot be joined. Call
    /// [`LabelReader::ready`] first.
    pub fn read<'m, M: Message>(
        &mut self,
        message: &'m M,
    ) -> std::result::Result<(&'m str, Truth, i64), DecodeError> {
        self.row.clear();
        let meta = self.decoder.decode(message.payload(), &mut self.row)?;
        let missing =
            |what: &str| DecodeError::new(DecodeErrorKind::MissingFeature, what.to_owned());
        let id = meta
            .id
            .ok_or_else(|| missing("a label record needs an id"))?;
        let truth = match (meta.label, self.row[0]) {
            (Some(label), _) => Truth::Class(label),
            (None, value) if value.is_finite() => Truth::Value(value),
            _ => return Err(missing("a label record needs a label or a finite value")),
        };
        let at = meta
            .event_time_ms
            .or_else(|| message.timestamp().to_millis());
        Ok((id, truth, at.unwrap_or(0)))
    }
}

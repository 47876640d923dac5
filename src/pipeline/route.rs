//! Routing records among the models served (`--route-by`): by a Kafka header or a string
//! field of the record, whose value names the model. A record without it goes to the default
//! model; one naming a model not served is dead-lettered (`unroutable`), never scored by a
//! model it was not meant for.

use rdkafka::message::{BorrowedMessage, Headers, Message};

use crate::codec::decode::{DecodeError, DecodeErrorKind};
use crate::codec::route::RouteField;

/// What a record's model is read from.
#[derive(Debug, Clone)]
pub enum RouteSource {
    /// The value of the header of this name.
    Header(String),
    /// The value of a string field.
    Field(RouteField),
}

/// Chooses each record's lane: the index of its model among those served, the default
/// first.
#[derive(Debug, Clone)]
pub struct Router {
    source: RouteSource,
    names: Vec<String>,
}

impl Router {
    /// Routes by `source` among `names` (the default model's first).
    pub fn new(source: RouteSource, names: Vec<String>) -> Self {
        Router { source, names }
    }

    /// The lane of `message`'s model; an error for a model not served.
    pub fn lane(&self, message: &BorrowedMessage<'_>) -> Result<usize, DecodeError> {
        let value = match &self.source {
            RouteSource::Header(name) => message.headers().and_then(|headers| {
                let header = headers.iter().find(|h| h.key == name)?;
                std::str::from_utf8(header.value?).ok()
            }),
            RouteSource::Field(field) => field.read(message.payload()),
        };
        let Some(value) = value else {
            return Ok(0);
        };
        self.names.iter().position(|n| n == value).ok_or_else(|| {
            DecodeError::new(
                DecodeErrorKind::Unroutable,
                format!(
                    "routed to model {value:?}, which is not served here (serving {})",
                    self.names.join(", ")
                ),
            )
        })
    }
}

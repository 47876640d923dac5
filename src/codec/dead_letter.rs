//! What a dead letter says in its headers: why the record could not be scored, and where it
//! came from. The payload is the input's, unchanged; the input's own headers come first.

use crate::codec::decode::{DecodeError, DecodeErrorKind};

/// Header naming why a record was dead-lettered ([`DecodeErrorKind::as_str`]).
pub const HEADER_ERROR_KIND: &str = "driftwood.error.kind";
/// Header with a readable error message.
pub const HEADER_ERROR_MESSAGE: &str = "driftwood.error.message";
/// Header with the input topic.
pub const HEADER_SOURCE_TOPIC: &str = "driftwood.source.topic";
/// Header with the input partition (decimal).
pub const HEADER_SOURCE_PARTITION: &str = "driftwood.source.partition";
/// Header with the input offset (decimal).
pub const HEADER_SOURCE_OFFSET: &str = "driftwood.source.offset";

/// The headers a dead letter of the record at `topic`/`partition`/`offset` adds to the
/// input's own, in order.
pub fn headers(
    error: &DecodeError,
    topic: &str,
    partition: i32,
    offset: i64,
) -> [(&'static str, String); 5] {
    [
        (HEADER_ERROR_KIND, error.kind.as_str().to_string()),
        (HEADER_ERROR_MESSAGE, error.message.clone()),
        (HEADER_SOURCE_TOPIC, topic.to_string()),
        (HEADER_SOURCE_PARTITION, partition.to_string()),
        (HEADER_SOURCE_OFFSET, offset.to_string()),
    ]
}

/// Every kind a dead letter may name, as its header says it.
pub fn kinds() -> [&'static str; DecodeErrorKind::ALL.len()] {
    DecodeErrorKind::ALL.map(DecodeErrorKind::as_str)
}

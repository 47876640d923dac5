//! Headers carried from an input record to its prediction: all of them (trace context,
//! CloudEvents `ce_*`, the producer's own), with a W3C `traceparent` replaced by a child of
//! it, so that the prediction continues the producer's trace with driftwood's scoring as the
//! step in between.

use rdkafka::message::{BorrowedHeaders, Header, Headers, OwnedHeaders};

pub use crate::obs::trace::{TRACEPARENT, TraceParent};

/// The prediction's headers: the input's, with a valid `traceparent` replaced by `child`.
/// Returns `None` when the input had none.
pub fn forwarded(
    input: Option<&BorrowedHeaders>,
    child: Option<&TraceParent>,
) -> Option<OwnedHeaders> {
    let input = input?;
    let mut out = OwnedHeaders::new_with_capacity(input.count());
    let child_value = child.map(TraceParent::header_value);
    for header in input.iter() {
        let value = match (&child_value, header.key) {
            (Some(v), TRACEPARENT) => Some(v.as_bytes()),
            _ => header.value,
        };
        out = out.insert(Header {
            key: header.key,
            value,
        });
    }
    Some(out)
}

/// The input's `traceparent`, when it has a valid one.
pub fn trace_parent(input: Option<&BorrowedHeaders>) -> Option<TraceParent> {
    input?
        .iter()
        .find(|h| h.key == TRACEPARENT)
        .and_then(|h| TraceParent::parse(h.value?))
}

//! Headers carried from an input record to its prediction: all of them (trace context,
//! CloudEvents `ce_*`, the producer's own), with a W3C `traceparent` replaced by a child of
//! it, so that the prediction continues the producer's trace with driftwood's scoring as the
//! step in between.

use rdkafka::message::{BorrowedHeaders, Header, Headers, OwnedHeaders};

pub use crate::obs::trace::{TRACEPARENT, TraceParent};

/// The prediction's headers: the input's, with a valid `traceparent` replaced by `child`.
/// Returns `None` when the input had none (librdkafka answers an empty list for a record
/// without headers: copying it cost the loop an allocation a record).
pub fn forwarded(
    input: Option<&BorrowedHeaders>,
    child: Option<&TraceParent>,
) -> Option<OwnedHeaders> {
    let input = input.filter(|h| h.count() > 0)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_header_list_forwards_none_and_a_header_is_copied() {
        let empty = OwnedHeaders::new();
        assert!(forwarded(Some(empty.as_borrowed()), None).is_none());
        assert!(forwarded(None, None).is_none());
        let one = OwnedHeaders::new().insert(Header {
            key: "ce_type",
            value: Some("score"),
        });
        let out = forwarded(Some(one.as_borrowed()), None).expect("the input's header");
        assert_eq!(out.count(), 1);
        assert_eq!(out.get(0).key, "ce_type");
        assert_eq!(out.get(0).value, Some(&b"score"[..]));
    }
}

//! The property the `decode` fuzz target checks, shared with `tests/fuzz_corpus.rs`, which
//! replays the committed corpus on every test run.
//!
//! The first byte picks the framing (even: raw Avro, odd: Confluent); the rest is the message.
//! Whatever it holds, decoding either yields one feature row or refuses with a reason and
//! leaves the row untouched; it never panics.

use std::sync::OnceLock;

use driftwood::codec::decode::{BUNDLED_FEATURE_SCHEMA, FeatureDecoder, InputFormat};
use driftwood::model::dataset::Dataset;

fn decoders() -> &'static [FeatureDecoder; 2] {
    static DECODERS: OnceLock<[FeatureDecoder; 2]> = OnceLock::new();
    DECODERS.get_or_init(|| {
        let names = Dataset::breast_cancer().feature_names;
        [InputFormat::Avro, InputFormat::Confluent].map(|format| {
            let schema = FeatureDecoder::parse_schema(BUNDLED_FEATURE_SCHEMA, "bundled").unwrap();
            FeatureDecoder::new(schema, &names, format, 4096).unwrap()
        })
    })
}

/// Decodes `data` (framing byte, then the message) and checks the outcome.
pub fn check(data: &[u8]) {
    let Some((&framing, message)) = data.split_first() else {
        return;
    };
    let decoder = &decoders()[usize::from(framing & 1)];
    let mut row = vec![7.0];
    match decoder.decode(Some(message), &mut row) {
        Ok(_) => assert_eq!(row.len(), 1 + decoder.n_features()),
        Err(e) => {
            assert!(!e.message.is_empty(), "a refusal says why");
            assert_eq!(row, [7.0], "a refused record appends nothing");
        }
    }
}

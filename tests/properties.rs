//! Property tests of the decode path (framing, Avro, feature mapping) on arbitrary bytes:
//! every input either decodes or is refused with a kind and a reason, nothing panics,
//! oversized input is refused before it is read, and no count in the input can make the
//! decoder work longer than its bytes allow. (`fuzz/` runs the same path under libFuzzer.)

use driftwood::codec::decode::{
    BUNDLED_FEATURE_SCHEMA, DecodeErrorKind, FeatureDecoder, InputFormat,
};
use driftwood::codec::encode::{FeatureEncoder, FeatureRow};
use driftwood::model::dataset::Dataset;
use proptest::prelude::*;

fn decoder(schema: &str, format: InputFormat, features: &[String], max: usize) -> FeatureDecoder {
    let schema = FeatureDecoder::parse_schema(schema, "test").unwrap();
    FeatureDecoder::new(schema, features, format, max).unwrap()
}

fn bundled(format: InputFormat) -> FeatureDecoder {
    decoder(
        BUNDLED_FEATURE_SCHEMA,
        format,
        &Dataset::breast_cancer().feature_names,
        1 << 20,
    )
}

fn format() -> impl Strategy<Value = InputFormat> {
    prop_oneof![Just(InputFormat::Avro), Just(InputFormat::Confluent)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_bytes_decode_or_are_refused_with_a_reason(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        format in format(),
    ) {
        let decoder = bundled(format);
        let mut row = vec![1.5];
        match decoder.decode(Some(&bytes), &mut row) {
            Ok(_) => prop_assert_eq!(row.len(), 1 + decoder.n_features()),
            Err(e) => {
                prop_assert!(!e.message.is_empty());
                prop_assert_eq!(row, vec![1.5], "nothing appended on error");
            }
        }
    }

    #[test]
    fn valid_records_decode_to_their_values(
        values in proptest::collection::vec(-1e12f64..1e12, 30),
        format in format(),
    ) {
        let names = Dataset::breast_cancer().feature_names;
        let schema = FeatureDecoder::parse_schema(BUNDLED_FEATURE_SCHEMA, "t").unwrap();
        let mut bytes = Vec::new();
        let row = FeatureRow { id: "x", event_time_ms: 1, names: &names, values: &values, label: Some(1) };
        FeatureEncoder::new(schema, format).unwrap().encode(row, &mut bytes).unwrap();
        let decoder = bundled(format);
        let mut decoded = Vec::new();
        let meta = decoder.decode(Some(&bytes), &mut decoded).unwrap();
        prop_assert_eq!(decoded, values);
        prop_assert_eq!(meta.label, Some(1));
        // Every strict prefix is refused, never misread.
        for cut in 0..bytes.len() {
            prop_assert!(decoder.decode(Some(&bytes[..cut]), &mut Vec::new()).is_err());
        }
    }

    #[test]
    fn oversized_input_is_refused_whatever_it_holds(
        bytes in proptest::collection::vec(any::<u8>(), 101..400),
    ) {
        let names = Dataset::breast_cancer().feature_names;
        let small = decoder(BUNDLED_FEATURE_SCHEMA, InputFormat::Avro, &names, 100);
        let err = small.decode(Some(&bytes), &mut Vec::new()).unwrap_err();
        prop_assert_eq!(err.kind, DecodeErrorKind::Oversized);
    }

    /// Arrays of nulls and of longs in an ignored field, with block counts up to i64::MAX
    /// (tens of millions each, in many blocks): the decoder answers at once, as its work is
    /// bounded by the bytes (before, 50 blocks of 2^24 nulls meant 800 million steps).
    #[test]
    fn crafted_block_counts_cannot_spin_the_decoder(
        counts in proptest::collection::vec(prop_oneof![any::<i64>(), (1i64 << 20)..(1i64 << 26)], 1..50),
        nulls in any::<bool>(),
    ) {
        let items = if nulls { "null" } else { "long" };
        let schema = format!(
            r#"{{"type":"record","name":"R","fields":[
                {{"name":"junk","type":{{"type":"array","items":"{items}"}}}},
                {{"name":"x","type":"double"}}]}}"#
        );
        let d = decoder(&schema, InputFormat::Avro, &["x".to_string()], 1 << 20);
        let mut bytes = Vec::new();
        for count in counts {
            // Zig-zag varint, as Avro writes a long.
            let mut z = ((count << 1) ^ (count >> 63)) as u64;
            while z >= 0x80 {
                bytes.push((z as u8) | 0x80);
                z >>= 7;
            }
            bytes.push(z as u8);
        }
        bytes.push(0);
        bytes.extend_from_slice(&2.5f64.to_le_bytes());
        let _ = d.decode(Some(&bytes), &mut Vec::new());
    }
}

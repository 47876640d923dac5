//! Replays the `decode` fuzz target's corpus (`fuzz/corpus/decode`, grown by libFuzzer and
//! committed) through the same check, so every test run covers what fuzzing found.
//! `cargo test --test fuzz_corpus -- --ignored` writes the seed records the corpus grew from.

#[path = "../fuzz/check.rs"]
mod check;

use std::path::{Path, PathBuf};

use driftwood::codec::decode::{BUNDLED_FEATURE_SCHEMA, FeatureDecoder, InputFormat};
use driftwood::codec::encode::{FeatureEncoder, FeatureRow};
use driftwood::model::dataset::Dataset;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode")
}

#[test]
fn every_corpus_input_decodes_or_is_refused_with_a_reason() {
    let entries: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("fuzz/corpus/decode is committed")
        .map(|e| e.unwrap().path())
        .collect();
    assert!(entries.len() >= 100, "only {} corpus inputs", entries.len());
    for path in entries {
        check::check(&std::fs::read(&path).unwrap());
    }
}

/// Valid records of the bundled data set in both framings, the fuzzer's starting points.
#[test]
#[ignore = "writes fuzz/corpus/decode/seed-*; run by hand"]
fn write_seed_corpus() {
    let data = Dataset::breast_cancer();
    std::fs::create_dir_all(corpus()).unwrap();
    for (framing, format) in [(0u8, InputFormat::Avro), (1, InputFormat::Confluent)] {
        let schema = FeatureDecoder::parse_schema(BUNDLED_FEATURE_SCHEMA, "bundled").unwrap();
        let encoder = FeatureEncoder::new(schema, format).unwrap();
        for (i, values) in data.rows.iter().enumerate().take(8) {
            let mut bytes = vec![framing];
            let id = i.to_string();
            let row = FeatureRow {
                id: &id,
                event_time_ms: 1_700_000_000_000 + i as i64,
                names: &data.feature_names,
                values,
                label: (i % 2 == 0).then_some(data.labels[i]),
            };
            encoder.encode(row, &mut bytes).unwrap();
            std::fs::write(corpus().join(format!("seed-{framing}-{i}")), bytes).unwrap();
        }
    }
}

//! Avro decode ns/record: driftwood's plan decoder against apache-avro's generic reader (a
//! `Value` tree per record), on the bundled feature schema; and the same record framed for a
//! schema registry, read with the writer schema its id names (`decode/registered`): what the
//! per-record lookup of a plan by id costs.

use std::hint::black_box;

use apache_avro::reader::datum::GenericDatumReader;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use driftwood::codec::decode::{BUNDLED_FEATURE_SCHEMA, FeatureDecoder, InputFormat};
use driftwood::codec::encode::{FeatureEncoder, FeatureRow};
use driftwood::codec::registry::{WriterSchema, WriterSchemas};
use driftwood::model::dataset::Dataset;

fn decode(c: &mut Criterion) {
    let data = Dataset::breast_cancer();
    let schema = FeatureDecoder::parse_schema(BUNDLED_FEATURE_SCHEMA, "bundled").unwrap();
    let mut bytes = Vec::new();
    FeatureEncoder::new(schema.clone(), InputFormat::Avro)
        .unwrap()
        .encode(
            FeatureRow {
                id: "1234567",
                event_time_ms: 1_700_000_000_000,
                names: &data.feature_names,
                values: &data.rows[7],
                label: Some(1),
            },
            &mut bytes,
        )
        .unwrap();
    let decoder = FeatureDecoder::new(
        schema.clone(),
        &data.feature_names,
        InputFormat::Avro,
        1 << 20,
    )
    .unwrap();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    let mut row = Vec::with_capacity(32);
    group.bench_function("driftwood", |b| {
        b.iter(|| {
            row.clear();
            decoder.decode(Some(black_box(&bytes)), &mut row).unwrap();
        })
    });
    let schemas = WriterSchemas::new(1000);
    schemas.insert(7, WriterSchema::Known(std::sync::Arc::new(schema.clone())));
    let registered = FeatureDecoder::registered(&data.feature_names, 1 << 20, schemas);
    let mut framed = vec![0, 0, 0, 0, 7];
    framed.extend_from_slice(&bytes);
    group.bench_function("registered", |b| {
        b.iter(|| {
            row.clear();
            (registered.decode(Some(black_box(&framed)), &mut row)).unwrap();
        })
    });
    group.bench_function("apache_avro_value", |b| {
        b.iter(|| {
            let reader = GenericDatumReader::builder(&schema).build().unwrap();
            reader.read_value(&mut black_box(&bytes[..])).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);

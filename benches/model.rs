//! Model ns/row: the flattened forest (both loop orders) against smartcore's own predict, at
//! batch sizes 1, 64 and 1024, on the committed 100-tree model.

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use driftwood::dataset::Dataset;
use driftwood::model::Model;
use driftwood::model::artifact::load_reference;
use smartcore::linalg::basic::matrix::DenseMatrix;

fn model(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/breast-cancer/1");
    let model = Model::load(&dir).unwrap();
    let (_, reference) = load_reference(&dir).unwrap();
    let data = Dataset::breast_cancer();
    let mut group = c.benchmark_group("model");
    for batch in [1usize, 64, 1024] {
        let rows: Vec<Vec<f64>> = (0..batch)
            .map(|i| data.rows[i % data.len()].clone())
            .collect();
        let flat = rows.concat();
        let matrix = DenseMatrix::from_2d_vec(&rows).unwrap();
        let mut votes = Vec::new();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("compiled", batch), &flat, |b, flat| {
            b.iter(|| model.forest.score_batch(black_box(flat), &mut votes))
        });
        group.bench_with_input(
            BenchmarkId::new("compiled_row_major", batch),
            &flat,
            |b, flat| {
                b.iter(|| {
                    model
                        .forest
                        .score_batch_row_major(black_box(flat), &mut votes)
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("smartcore", batch),
            &matrix,
            |b, matrix| b.iter(|| reference.predict(black_box(matrix)).unwrap()),
        );
    }
    group.finish();
}

criterion_group!(benches, model);
criterion_main!(benches);

//! Model ns/row: the compiled forest (`compiled`: `Engine::score`, the walk picked at load;
//! then every walk this machine can take, `compiled_<walk>`) against
//! smartcore's own predict, at batch sizes 1, 64 and 1024, on the committed 100-tree model.
//!
//! Each iteration scores the next batch from a pool of 16,384 rows drawn at random from the
//! dataset: scoring the same few rows again and again lets the branch predictor learn them,
//! which flatters branchy code far beyond what a stream of new records sees.

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use driftwood::model::Model;
use driftwood::model::Scored;
use driftwood::model::artifact::load_reference;
use driftwood::model::dataset::Dataset;
use driftwood::model::ensemble::{EnsembleWalk, Workspace};
use driftwood::model::forest::{Kernel, Walk};
use rand::{Rng, SeedableRng};
use smartcore::linalg::basic::matrix::DenseMatrix;

const POOL: usize = 16_384;

fn model(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/breast-cancer/1");
    let model = Model::load(&dir).unwrap();
    let (_, reference) = load_reference(&dir).unwrap();
    let data = Dataset::breast_cancer();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let pool: Vec<Vec<f64>> = (0..POOL)
        .map(|_| data.rows[rng.random_range(0..data.len())].clone())
        .collect();
    let mut group = c.benchmark_group("model");
    for batch in [1usize, 64, 1024] {
        let batches: Vec<Vec<Vec<f64>>> = pool.chunks(batch).map(<[_]>::to_vec).collect();
        let flat: Vec<Vec<f64>> = batches.iter().map(|b| b.concat()).collect();
        let matrices: Vec<DenseMatrix<f64>> = batches
            .iter()
            .map(|b| DenseMatrix::from_2d_vec(b).unwrap())
            .collect();
        let mut scored = Scored::default();
        group.throughput(Throughput::Elements(batch as u64));
        let mut next = 0;
        group.bench_function(BenchmarkId::new("compiled", batch), |b| {
            b.iter(|| {
                next = (next + 1) % flat.len();
                model.engine.score(black_box(&flat[next]), &mut scored)
            })
        });
        let ensemble = model.engine.ensemble();
        let (mut work, mut scores, mut classes) = (Workspace::default(), Vec::new(), Vec::new());
        for &walk in ensemble.walks() {
            let name = match walk {
                EnsembleWalk::Votes(Walk::LeafMasks(Kernel::Avx512Narrow)) => {
                    "compiled_leaf_masks_avx512_16_rows"
                }
                EnsembleWalk::Votes(Walk::LeafMasks(Kernel::Avx512)) => {
                    "compiled_leaf_masks_avx512"
                }
                EnsembleWalk::Votes(Walk::LeafMasks(Kernel::Avx2)) => "compiled_leaf_masks_avx2",
                EnsembleWalk::Votes(Walk::LockStep) => "compiled_vote_lockstep",
                EnsembleWalk::Votes(Walk::Branchy) => "compiled_vote_branchy",
                EnsembleWalk::LockStep => "compiled_lockstep",
                EnsembleWalk::Branchy => "compiled_branchy",
            };
            group.bench_function(BenchmarkId::new(name, batch), |b| {
                b.iter(|| {
                    next = (next + 1) % flat.len();
                    let rows = black_box(&flat[next]);
                    ensemble.predict_with(&mut work, walk, rows, &mut scores, &mut classes)
                })
            });
        }
        group.bench_function(BenchmarkId::new("smartcore", batch), |b| {
            b.iter(|| {
                next = (next + 1) % matrices.len();
                reference.predict(black_box(&matrices[next])).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, model);
criterion_main!(benches);

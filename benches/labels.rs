//! The delayed-labels join's cost: keeping a scored record's prediction for its label
//! (`labels/awaits`: the version looked up, the probabilities copied, the calibrated chance
//! of being right, the insert into its partition's store, as the loop does per record), and
//! joining a label to it (`labels/label`: lookup, lateness and duplicate checks, the window's
//! sums, a window closed every 1,000 labels). Both on 100,000 records of the bundled model,
//! with the predictions in memory and on disk (`_disk`: `--awaiting-dir`, fjall).

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
};
use driftwood::labels::realized::Truth;
use driftwood::labels::spill::SpillDir;
use driftwood::labels::{Join, JoinSettings};
use driftwood::model::{Model, Predicted};

const RECORDS: usize = 100_000;

/// A join, keeping its predictions in a new directory under `disk` if given.
fn join(disk: Option<&Path>) -> Join<u32> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let spill = disk.map(|d| {
        let n = N.fetch_add(1, Ordering::Relaxed);
        SpillDir::open(&d.join(n.to_string())).unwrap()
    });
    Join::new(JoinSettings {
        horizon_ms: 3_600_000,
        window_records: 1_000,
        instance_id: "bench".into(),
        labels_topic: "labels".into(),
        spill,
    })
}

/// What the loop keeps per scored record (`Join::scored`, as `pipeline::labels` calls it).
fn awaits(join: &mut Join<u32>, model: &Model, id: &str, i: usize) {
    let confidence = 0.5 + (i % 50) as f64 / 100.0;
    let index = i % 2;
    let predicted = Predicted::Class { index, confidence };
    let probabilities = [1.0 - confidence, confidence];
    let times = (i as i64, i as i64);
    join.scored(
        ((i % 3) as i32, id),
        model,
        (predicted, &probabilities),
        times,
    )
    .unwrap();
}

fn bench(c: &mut Criterion) {
    let model = Model::load(std::path::Path::new("models/breast-cancer/1")).unwrap();
    let ids: Vec<String> = (0..RECORDS).map(|i| format!("rec-{i:010}")).collect();
    let mut group = c.benchmark_group("labels");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(10);
    let dir = tempfile::tempdir().unwrap();
    for (suffix, disk) in [("", None), ("_disk", Some(dir.path()))] {
        store(&mut group, (suffix, disk), &model, &ids);
    }
    group.finish();
}

fn store(
    group: &mut BenchmarkGroup<'_, WallTime>,
    (suffix, disk): (&str, Option<&Path>),
    model: &Model,
    ids: &[String],
) {
    group.bench_function(format!("awaits{suffix}"), |b| {
        b.iter_batched_ref(
            || join(disk),
            |j| {
                for (i, id) in ids.iter().enumerate() {
                    awaits(j, model, id, i);
                }
            },
            BatchSize::LargeInput,
        )
    });
    let filled = || {
        let mut j = join(disk);
        for (i, id) in ids.iter().enumerate() {
            awaits(&mut j, model, id, i);
        }
        j
    };
    group.bench_function(format!("label{suffix}"), |b| {
        b.iter_batched_ref(
            filled,
            |j| {
                for (i, id) in ids.iter().enumerate() {
                    let p = (i % 3) as i32;
                    let truth = Truth::Class(model.metadata.classes[i % 2]);
                    let label = Some((id.as_str(), truth, i as i64 + 60_000));
                    black_box(j.label((p, i as i64, 1), label, 0).unwrap());
                }
            },
            BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

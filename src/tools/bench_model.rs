//! `driftwood bench-model`: how fast a model scores, in ns per row at given batch sizes, on
//! one thread, with nothing else on the path (no Kafka, no decoding). `bench/compare_models.py`
//! runs it beside onnxruntime, tl2cgen and the libraries' own `predict` on the same rows.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::config::tools::BenchModelArgs;
use crate::error::{Error, Result};
use crate::model::{Engine, Model, Scored};

/// One batch size's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BatchResult {
    /// Rows per call.
    pub batch: usize,
    /// Nanoseconds per row, the median of the timed rounds.
    pub ns_per_row: f64,
    /// Rows scored while timing.
    pub rows: usize,
}

/// Loads the model and rows, and times `Engine::score` at each batch size.
pub fn run(args: &BenchModelArgs) -> Result<(String, Vec<BatchResult>)> {
    let engine = load(args)?;
    let rows = rows(args, engine.n_features())?;
    let description = format!(
        "{} trees, {} features, walk: {} (single rows: {})",
        engine.n_trees(),
        engine.n_features(),
        engine.walk(),
        engine.ensemble().single_walk()
    );
    let results = if args.smartcore {
        let forest = match &args.model {
            Some(dir) => crate::model::artifact::load_reference(dir)?.1,
            None => crate::model::artifact::bundled_reference()?.1,
        };
        args.batches
            .iter()
            .map(|&batch| {
                let matrices: Vec<_> = batches(&rows, engine.n_features(), batch.max(1))
                    .iter()
                    .map(|b| {
                        let rows: Vec<Vec<f64>> = b
                            .chunks_exact(engine.n_features())
                            .map(<[f64]>::to_vec)
                            .collect();
                        smartcore::linalg::basic::matrix::DenseMatrix::from_2d_vec(&rows)
                            .expect("rows of one width")
                    })
                    .collect();
                time_calls(matrices.len(), batch.max(1), args.duration, |i| {
                    black_box(
                        forest
                            .predict(black_box(&matrices[i]))
                            .expect("smartcore predicts"),
                    );
                })
            })
            .collect()
    } else {
        let mut scored = Scored::default();
        args.batches
            .iter()
            .map(|&batch| {
                let data = batches(&rows, engine.n_features(), batch.max(1));
                time_calls(data.len(), batch.max(1), args.duration, |i| {
                    engine.score(black_box(&data[i]), &mut scored);
                    black_box(&scored);
                })
            })
            .collect()
    };
    Ok((description, results))
}

fn load(args: &BenchModelArgs) -> Result<Engine> {
    match &args.model {
        Some(path) if path.extension().is_some_and(|e| e == "onnx") => {
            Ok(Engine::new(crate::model::onnx::load(path)?.ensemble))
        }
        Some(dir) => Ok(Model::load(dir)?.engine),
        None => Ok(Model::open(None)?.engine),
    }
}

fn rows(args: &BenchModelArgs, width: usize) -> Result<Vec<f64>> {
    let Some(path) = &args.rows else {
        return Ok(crate::model::dataset::Dataset::breast_cancer()
            .rows
            .concat());
    };
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.is_empty() || bytes.len() % (8 * width) != 0 {
        return Err(Error::tool(
            "bench-model",
            format!(
                "{}: {} bytes is not a whole number of {width}-feature float64 rows",
                path.display(),
                bytes.len()
            ),
        ));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect())
}

/// `rows` cut into whole batches of `batch` rows, cycling over the rows when a batch is larger
/// than the data.
fn batches(rows: &[f64], width: usize, batch: usize) -> Vec<Vec<f64>> {
    let n_rows = rows.len() / width;
    let data: Vec<f64> = (0..n_rows.max(batch))
        .flat_map(|r| rows[(r % n_rows) * width..][..width].iter().copied())
        .collect();
    data.chunks_exact(batch * width)
        .map(<[f64]>::to_vec)
        .collect()
}

/// Calls `call` on consecutive batch indices (wrapping at `n_batches`) in rounds of about
/// 10 ms for `duration`; the median round gives ns/row.
fn time_calls(
    n_batches: usize,
    batch: usize,
    duration: Duration,
    mut call: impl FnMut(usize),
) -> BatchResult {
    let mut next = 0;
    let mut round = |calls: usize| {
        let started = Instant::now();
        for _ in 0..calls {
            call(next % n_batches);
            next += 1;
        }
        started.elapsed()
    };
    // Calls per round so that a round takes about 10 ms.
    let probe = round(1).max(Duration::from_nanos(100));
    let calls = (Duration::from_millis(10).as_nanos() / probe.as_nanos()).max(1) as usize;
    let warm_until = Instant::now() + duration / 10;
    while Instant::now() < warm_until {
        round(calls);
    }
    let mut per_row = Vec::new();
    let until = Instant::now() + duration;
    while Instant::now() < until || per_row.len() < 5 {
        let elapsed = round(calls);
        per_row.push(elapsed.as_nanos() as f64 / (calls * batch) as f64);
    }
    per_row.sort_by(f64::total_cmp);
    BatchResult {
        batch,
        ns_per_row: per_row[per_row.len() / 2],
        rows: per_row.len() * calls * batch,
    }
}

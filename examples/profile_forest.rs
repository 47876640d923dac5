//! Scores the dataset in 64-row batches, for profiling under valgrind (instruction counts do
//! not depend on a noisy machine):
//!
//!     cargo build --release --example profile_forest
//!     valgrind --tool=cachegrind --branch-sim=yes target/release/examples/profile_forest compiled 20
//!     valgrind --tool=cachegrind --branch-sim=yes target/release/examples/profile_forest compiled 0
//!
//! (and the same with `smartcore`). Subtract the 0-round run (loading) and divide by the rows
//! scored, printed at the end. The walk used is printed too: valgrind does not emulate
//! AVX-512, so under it `compiled` is the lock-step walk, not leaf masks.

use std::hint::black_box;
use std::path::Path;

use driftwood::model::Model;
use driftwood::model::artifact::load_reference;
use driftwood::model::dataset::Dataset;
use smartcore::linalg::basic::matrix::DenseMatrix;

const BATCH: usize = 64;

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "compiled".into());
    // Run once with 0 rounds to measure loading alone, and subtract.
    let rounds: usize = std::env::args()
        .nth(2)
        .map_or(20, |r| r.parse().expect("rounds"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/breast-cancer/1");
    let data = Dataset::breast_cancer();
    let batches: Vec<Vec<Vec<f64>>> = data.rows.chunks(BATCH).map(<[_]>::to_vec).collect();
    let mut rows = 0;
    match which.as_str() {
        "compiled" => {
            let model = Model::load(&dir).unwrap();
            println!("walk: {}", model.engine.walk());
            let flat: Vec<Vec<f64>> = batches.iter().map(|b| b.concat()).collect();
            let mut scored = driftwood::model::Scored::default();
            for _ in 0..rounds {
                for (batch, rows_in) in flat.iter().zip(&batches) {
                    model.engine.score(black_box(batch), &mut scored);
                    rows += rows_in.len();
                }
            }
        }
        "smartcore" => {
            let (_, reference) = load_reference(&dir).unwrap();
            let matrices: Vec<DenseMatrix<f64>> = batches
                .iter()
                .map(|b| DenseMatrix::from_2d_vec(b).unwrap())
                .collect();
            for _ in 0..rounds {
                for (m, rows_in) in matrices.iter().zip(&batches) {
                    black_box(reference.predict(black_box(m)).unwrap());
                    rows += rows_in.len();
                }
            }
        }
        other => panic!("expected compiled or smartcore, got {other}"),
    }
    println!("{rows} rows scored");
}

//! A scikit-learn model imported from ONNX serves on Kafka: a default-depth random forest
//! (trees of hundreds of leaves, which driftwood's own trainer never makes) is exported by
//! skl2onnx, imported with `driftwood import`, and every prediction driftwood publishes
//! carries onnxruntime's probabilities for its row.

use std::path::{Path, PathBuf};
use std::time::Duration;

use driftwood::codec::encode::{AvroCodec, PredictionRecord};
use driftwood::model::dataset::Dataset;
use driftwood::tools::produce::{is_corrupt, row_of};
use rdkafka::Message;

use crate::common::parity::{export_models, read_le};
use crate::common::*;

const RECORDS: usize = 2_000;
const CORRUPT: usize = 20;

/// onnxruntime's probabilities for every row of the data set the load generator sends.
fn onnxruntime_probabilities(dir: &Path, model: &Path, data: &Dataset) -> Vec<f32> {
    let rows: Vec<u8> = data
        .rows
        .concat()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(dir.join("bundled.rows"), rows).unwrap();
    let features = data.feature_names.len().to_string();
    export_models(&[
        "--score".as_ref(),
        model.as_os_str(),
        dir.join("bundled.rows").as_os_str(),
        features.as_ref(),
        dir.join("bundled.ort").as_os_str(),
    ]);
    read_le(&dir.join("bundled.ort"), f32::from_le_bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_scikit_learn_forest_serves_onnxruntimes_probabilities() {
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("imported"));
    export_models(&[dir.as_os_str(), "--only".as_ref(), "random_forest".as_ref()]);
    let onnx = dir.join("random_forest.onnx");
    let import = std::process::Command::new(env!("CARGO_BIN_EXE_driftwood"))
        .arg("import")
        .arg(&onnx)
        .args(["--name", "sklearn-forest", "--version", "3"])
        .arg("--reference")
        .arg(dir.join("random_forest.reference.csv"))
        .arg("--output")
        .arg(dir.join("models"))
        .output()
        .unwrap();
    assert!(import.status.success(), "{import:?}");
    let data = Dataset::breast_cancer();
    let expected = onnxruntime_probabilities(&dir, &onnx, &data);

    let bootstrap = bootstrap();
    let mut config = prepared_topics(bootstrap, RECORDS, CORRUPT, |_| {}).await;
    config.model = Some(dir.join("models/sklearn-forest/3"));
    let mut child = driftwood_run(&config, free_port(), &[]).spawn().unwrap();
    let predictions = read_topic(
        bootstrap,
        &config.output_topic,
        RECORDS - CORRUPT,
        Duration::from_secs(120),
    );
    let dead = read_topic(
        bootstrap,
        &config.dlq_topic,
        CORRUPT,
        Duration::from_secs(30),
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());

    assert_eq!(dead.len(), CORRUPT);
    let codec = AvroCodec::predictions();
    let mut largest = 0f64;
    for message in &predictions {
        let p: PredictionRecord = codec.decode(message.payload().unwrap()).unwrap();
        let seq: usize = p.id.parse().unwrap();
        assert!(!is_corrupt(seq, RECORDS, CORRUPT));
        let row = row_of(seq, &data);
        assert_eq!(
            (p.model_name.as_str(), p.model_version.as_str()),
            ("sklearn-forest", "3")
        );
        let ours: Vec<f64> = p.probabilities.iter().map(|c| c.probability).collect();
        let theirs = &expected[row * 2..][..2];
        for (a, &b) in ours.iter().zip(theirs) {
            largest = largest.max((a - f64::from(b)).abs());
        }
        // onnxruntime's rule for these two-class forests: class 1 above one half.
        let label = i32::from(theirs[1] > 0.5);
        assert_eq!(p.predicted_label, Some(label), "record {seq} (row {row})");
        assert_eq!(p.confidence, Some(ours[label as usize]));
    }
    println!(
        "largest |driftwood - onnxruntime| over {} predictions: {largest:e}",
        predictions.len()
    );
    assert!(
        largest <= 1e-6,
        "a probability differs from onnxruntime's by {largest:e}"
    );
}

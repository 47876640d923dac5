//! Models imported from ONNX serve on Kafka, each exported from scikit-learn by skl2onnx
//! and imported with `driftwood import`: a default-depth random forest (trees of hundreds of
//! leaves, which driftwood's own trainer never makes), a forest whose classes are names, and
//! a boosted regressor. Every prediction driftwood publishes carries onnxruntime's
//! probabilities (or value) for its row.

use std::path::{Path, PathBuf};
use std::time::Duration;

use driftwood::codec::encode::{AvroCodec, PredictionRecord};
use driftwood::drift::DriftReport;
use driftwood::model::dataset::Dataset;
use driftwood::tools::produce::{is_corrupt, row_of};
use rdkafka::Message;

use crate::common::parity::{export_models, read_le};
use crate::common::*;

const RECORDS: usize = 2_000;
const CORRUPT: usize = 20;

/// onnxruntime's probabilities (or values) for every row of the data set the load generator
/// sends.
fn onnxruntime_scores(dir: &Path, model: &Path, data: &Dataset) -> Vec<f32> {
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

/// What serving an imported model produced.
struct Served {
    /// Each prediction with the data set row its record carried.
    predictions: Vec<(usize, PredictionRecord)>,
    /// Dead letters (the corrupt records).
    dead: usize,
    /// The drift reports.
    reports: Vec<DriftReport>,
    /// onnxruntime's scores for every row of the data set, row-major.
    expected: Vec<f32>,
}

/// Exports `name` of export_models.py, imports it as version 3, and runs `driftwood run` on
/// it over fresh topics holding `RECORDS` records, `CORRUPT` of them corrupt.
async fn serve(name: &str) -> Served {
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("imported"));
    export_models(&[dir.as_os_str(), "--only".as_ref(), name.as_ref()]);
    let onnx = dir.join(format!("{name}.onnx"));
    let import = std::process::Command::new(env!("CARGO_BIN_EXE_driftwood"))
        .arg("import")
        .arg(&onnx)
        .args(["--name", name, "--version", "3"])
        .arg("--reference")
        .arg(dir.join(format!("{name}.reference.csv")))
        .arg("--output")
        .arg(dir.join("models"))
        .output()
        .unwrap();
    assert!(import.status.success(), "{import:?}");
    let data = Dataset::breast_cancer();
    let expected = onnxruntime_scores(&dir, &onnx, &data);

    let bootstrap = bootstrap();
    let mut config = prepared_topics(bootstrap, RECORDS, CORRUPT, |_| {}).await;
    config.models.model = Some(dir.join("models").join(name).join("3"));
    let mut child = driftwood_run(&config, free_port(), &[]).spawn().unwrap();
    let timeout = Duration::from_secs(120);
    let predictions = read_topic(bootstrap, &config.output_topic, RECORDS - CORRUPT, timeout);
    let dead = read_topic(bootstrap, &config.dlq_topic, CORRUPT, timeout).len();
    sigterm(&child);
    assert!(child.wait().unwrap().success());
    // Every report is on the topic once the process has ended (the last window is
    // published at shutdown): read what is there.
    let reports = read_available(
        bootstrap,
        &config.drift_topic,
        1_000,
        Duration::from_secs(5),
    );
    assert!(!reports.is_empty(), "no drift report");

    let codec = AvroCodec::predictions();
    let predictions = predictions
        .iter()
        .map(|m| {
            let p: PredictionRecord = codec.decode(m.payload().unwrap()).unwrap();
            let seq: usize = p.id.parse().unwrap();
            assert!(!is_corrupt(seq, RECORDS, CORRUPT));
            assert_eq!(
                (
                    p.prediction.model_name.as_str(),
                    p.prediction.model_version.as_str()
                ),
                (name, "3")
            );
            (row_of(seq, &data), p)
        })
        .collect();
    let codec = AvroCodec::drift_reports();
    let reports = (reports.iter())
        .map(|m| codec.decode(m.payload().unwrap()).unwrap())
        .collect();
    Served {
        predictions,
        dead,
        reports,
        expected,
    }
}

/// onnxruntime's rule for two-class forests: class 1 when its probability is above one half.
fn two_class_label(probabilities: &[f32]) -> usize {
    usize::from(probabilities[1] > 0.5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_scikit_learn_forest_serves_onnxruntimes_probabilities() {
    let served = serve("random_forest").await;
    assert_eq!(served.dead, CORRUPT);
    let mut largest = 0f64;
    for (row, p) in &served.predictions {
        let ours: Vec<f64> = p
            .prediction
            .probabilities
            .iter()
            .map(|c| c.probability)
            .collect();
        let theirs = &served.expected[row * 2..][..2];
        for (a, &b) in ours.iter().zip(theirs) {
            largest = largest.max((a - f64::from(b)).abs());
        }
        let label = two_class_label(theirs);
        assert_eq!(
            p.prediction.predicted_label,
            Some(label as i32),
            "{} (row {row})",
            p.id
        );
        assert_eq!(p.prediction.confidence, Some(ours[label]));
        assert_eq!(
            (p.prediction.predicted_class.as_ref(), p.prediction.value),
            (None, None)
        );
    }
    println!(
        "largest |driftwood - onnxruntime| over {} predictions: {largest:e}",
        served.predictions.len()
    );
    assert!(
        largest <= 1e-6,
        "a probability differs from onnxruntime's by {largest:e}"
    );
    // A binary classifier imported with labelled reference rows is calibrated on them, and
    // its windows carry the accuracy expected without labels.
    for report in served.reports.iter().filter(|r| r.counts.records > 0) {
        let estimated = report.estimated.expect("an expected performance");
        let accuracy = estimated.accuracy.unwrap();
        assert!((0.0..=1.0).contains(&accuracy), "{estimated:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forest_whose_classes_are_names_publishes_the_names() {
    let served = serve("named_classes").await;
    assert_eq!(served.dead, CORRUPT);
    // scikit-learn orders its classes: benign, then malignant.
    let names = ["benign", "malignant"];
    for (row, p) in &served.predictions {
        let theirs = &served.expected[row * 2..][..2];
        let label = two_class_label(theirs);
        assert_eq!(
            p.prediction.predicted_class.as_deref(),
            Some(names[label]),
            "{}",
            p.id
        );
        assert_eq!(
            p.prediction.predicted_label,
            Some(label as i32),
            "the class's index"
        );
        let published: Vec<(Option<&str>, f64)> = (p.prediction.probabilities.iter())
            .map(|c| (c.name.as_deref(), c.probability))
            .collect();
        let expected: Vec<(Option<&str>, f64)> = (names.iter().zip(theirs))
            .map(|(n, &q)| (Some(*n), f64::from(q)))
            .collect();
        assert_eq!(published, expected, "{} (row {row})", p.id);
    }
    let recall_names: Vec<Option<&str>> = (served.reports[0].recall.iter())
        .map(|r| r.name.as_deref())
        .collect();
    assert_eq!(recall_names, [Some("benign"), Some("malignant")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_boosted_regressor_publishes_onnxruntimes_values_and_drift_of_them() {
    let served = serve("boosted_regressor").await;
    assert_eq!(served.dead, CORRUPT);
    let mut largest = 0f64;
    for (row, p) in &served.predictions {
        let value = p
            .prediction
            .value
            .unwrap_or_else(|| panic!("{} has no value: {p:?}", p.id));
        largest = largest.max((value - f64::from(served.expected[*row])).abs());
        assert_eq!(
            (p.prediction.predicted_label, p.prediction.confidence),
            (None, None),
            "{}",
            p.id
        );
        assert!(p.prediction.probabilities.is_empty());
    }
    println!(
        "largest |driftwood - onnxruntime| over {} values: {largest:e}",
        served.predictions.len()
    );
    assert!(
        largest <= 1e-6,
        "a value differs from onnxruntime's by {largest:e}"
    );
    let scored: i64 = served.reports.iter().map(|r| r.counts.records).sum();
    assert_eq!(scored, (RECORDS - CORRUPT) as i64);
    for report in &served.reports {
        let binned: i64 = report.counts.predictions.iter().sum();
        assert_eq!(binned, report.counts.records, "every value in a bin");
        assert!(
            report.mean_value.is_some() && report.confidence.is_none(),
            "{report:?}"
        );
        assert_eq!(report.mean_confidence, None);
    }
}

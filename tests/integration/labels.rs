//! Delayed labels on a real broker: labels written after their records were scored, out of
//! order, some duplicated, some missing, some late, some for ids never seen and one
//! undecodable, give per window of labels exactly the figures an offline computation over
//! the same joined pairs gives.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::common::framed::send;
use crate::common::*;
use driftwood::codec::encode::{AvroCodec, PredictionRecord};
use driftwood::labels::realized::roc_auc;
use driftwood::labels::{LabelCounts, PerformanceWindow};
use driftwood::service::Service;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rdkafka::Message;

const WINDOW: usize = 50;
const HOUR_MS: i64 = 3_600_000;

#[derive(serde::Serialize)]
struct GroundTruth {
    id: String,
    label: Option<i32>,
    value: Option<f64>,
    event_time: i64,
}

/// A label record as sent: its id and truth (none for the undecodable one), its event time.
#[derive(Clone)]
struct Sent {
    id: String,
    label: Option<i32>,
    event_time: i64,
}

/// The label records of one partition, in the order they are written: most predictions'
/// labels a minute after their event, shuffled; every tenth missing, every seventh sent
/// twice (the second with the other label), every 23rd two hours late, some for ids never
/// scored, and on partition 0 one undecodable record; padded with unknown ids to whole
/// windows.
fn labels_for(partition: i32, predictions: &[&PredictionRecord], rng: &mut StdRng) -> Vec<Sent> {
    let mut sent = Vec::new();
    for (i, p) in predictions.iter().enumerate() {
        let truth = p.actual_label.expect("the generator labels its records");
        let late = if i % 23 == 5 { 2 * HOUR_MS } else { 60_000 };
        if i % 10 != 3 {
            sent.push(Sent {
                id: p.id.clone(),
                label: Some(truth),
                event_time: p.event_time + late,
            });
        }
        if i % 7 == 2 {
            sent.push(Sent {
                id: p.id.clone(),
                label: Some(1 - truth),
                event_time: p.event_time + late,
            });
        }
    }
    for k in 0..5 {
        sent.push(Sent {
            id: format!("nobody-{partition}-{k}"),
            label: Some(1),
            event_time: 0,
        });
    }
    if partition == 0 {
        sent.push(Sent {
            id: String::new(),
            label: None,
            event_time: 0,
        });
    }
    sent.shuffle(rng);
    let mut k = 5;
    while sent.len() % WINDOW != 0 {
        sent.push(Sent {
            id: format!("nobody-{partition}-{k}"),
            label: Some(0),
            event_time: 0,
        });
        k += 1;
    }
    sent
}

fn payload(label: &Sent) -> Vec<u8> {
    if label.label.is_none() {
        return b"\x02not a ground truth".to_vec();
    }
    let record = GroundTruth {
        id: label.id.clone(),
        label: label.label,
        value: None,
        event_time: label.event_time,
    };
    let mut out = Vec::new();
    AvroCodec::ground_truth().encode(&record, &mut out).unwrap();
    out
}

/// What the window of `labels` should say, computed here from the predictions: outcome
/// counts, then accuracy, log loss and ROC AUC over the joined pairs (`joined` carries the
/// ids joined by earlier windows of the partition).
fn offline(
    labels: &[Sent],
    by_id: &HashMap<&str, &PredictionRecord>,
    joined: &mut HashSet<String>,
) -> (LabelCounts, Option<(f64, f64, Option<f64>)>) {
    let mut counts = LabelCounts::default();
    let (mut right, mut loss, mut scores) = (0usize, 0.0f64, Vec::new());
    for label in labels {
        let Some(truth) = label.label else {
            counts.dead_lettered += 1;
            continue;
        };
        let Some(p) = by_id.get(label.id.as_str()) else {
            counts.unknown += 1;
            continue;
        };
        if label.event_time - p.event_time > HOUR_MS {
            counts.late += 1;
        } else if !joined.insert(label.id.clone()) {
            counts.duplicate += 1;
        } else {
            counts.joined += 1;
            right += usize::from(p.prediction.predicted_label == Some(truth));
            let probability = |class: i32| {
                let found = p.prediction.probabilities.iter().find(|c| c.label == class);
                found.map_or(0.0, |c| c.probability as f32)
            };
            loss -= f64::from(probability(truth)).clamp(f64::EPSILON, 1.0).ln();
            scores.push((probability(1), truth == 1));
        }
    }
    let n = counts.joined as f64;
    let figures = (counts.joined > 0).then(|| (right as f64 / n, loss / n, roc_auc(&scores)));
    (counts, figures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_shuffled_duplicated_and_missing_labels_give_the_offline_figures_per_window() {
    let bootstrap = bootstrap();
    let mut config = prepared_topics(bootstrap, 900, 0, |_| {}).await;
    let (labels_topic, performance) = (unique("labels"), unique("performance"));
    create_topics(bootstrap, &[&labels_topic, &performance], 3).await;
    config.labels.labels_topic = Some(labels_topic.clone());
    config.labels.performance_topic = performance.clone();
    config.labels.performance_window = WINDOW;
    config.labels.label_horizon = Duration::from_secs(3600);
    let service = Service::start(config.clone()).await.unwrap();
    let metrics = service.metrics().clone();
    wait_until("900 records scored", Duration::from_secs(120), || {
        metrics.scored() >= 900
    })
    .await;

    // The labels come after the predictions, written by another producer.
    let codec = AvroCodec::predictions();
    let predictions: Vec<PredictionRecord> = read_topic(
        bootstrap,
        &config.output_topic,
        900,
        Duration::from_secs(30),
    )
    .iter()
    .map(|m| codec.decode(m.payload().unwrap()).unwrap())
    .collect();
    let by_id: HashMap<&str, &PredictionRecord> =
        predictions.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut rng = StdRng::seed_from_u64(24);
    let mut sent: HashMap<i32, Vec<Sent>> = HashMap::new();
    for partition in 0..3 {
        let mut of: Vec<&PredictionRecord> = predictions
            .iter()
            .filter(|p| p.source_partition == partition)
            .collect();
        of.sort_by_key(|p| p.source_offset);
        sent.insert(partition, labels_for(partition, &of, &mut rng));
    }
    let messages: Vec<(i32, Vec<u8>)> = (sent.iter())
        .flat_map(|(&p, labels)| labels.iter().map(move |l| (p, payload(l))))
        .collect();
    send(bootstrap, &labels_topic, &messages);
    let windows = messages.len() / WINDOW;
    assert!(windows >= 15, "{windows} windows");

    let published: Vec<PerformanceWindow> =
        read_topic(bootstrap, &performance, windows, Duration::from_secs(60))
            .iter()
            .map(|m| {
                AvroCodec::performance()
                    .decode(m.payload().unwrap())
                    .unwrap()
            })
            .collect();
    service.stop().await.unwrap();
    assert_eq!(published.len(), windows, "one record per window");

    let mut joined_ids: HashMap<i32, HashSet<String>> = HashMap::new();
    let mut total = LabelCounts::default();
    for window in &published {
        let labels = &sent[&window.partition];
        let (first, last) = (window.first_offset as usize, window.last_offset as usize);
        assert_eq!(last + 1 - first, WINDOW, "windows of {WINDOW} records");
        let joined = joined_ids.entry(window.partition).or_default();
        let (counts, figures) = offline(&labels[first..=last], &by_id, joined);
        assert_eq!(window.labels, counts, "window {}:{first}", window.partition);
        let version = window.versions.first();
        match (figures, version) {
            (None, None) => {}
            (Some((accuracy, log_loss, auc)), Some(v)) => {
                assert_eq!(v.joined, counts.joined);
                assert_eq!(
                    v.accuracy,
                    Some(accuracy),
                    "window {}:{first}",
                    window.partition
                );
                assert!(
                    (v.log_loss.unwrap() - log_loss).abs() < 1e-9,
                    "{v:?} {log_loss}"
                );
                assert_eq!(v.roc_auc, auc);
            }
            other => panic!("window {}:{first}: {other:?}", window.partition),
        }
        total.joined += counts.joined;
        total.duplicate += counts.duplicate;
        total.late += counts.late;
        total.dead_lettered += counts.dead_lettered;
    }
    assert!(
        total.joined > 600 && total.duplicate > 50 && total.late > 10,
        "{total:?}"
    );
    assert_eq!(total.dead_lettered, 1);
    let counted = |o: &str| metrics.labels.labels.with_label_values(&[o]).get() as i64;
    assert_eq!(counted("joined"), total.joined);
    assert_eq!(counted("duplicate"), total.duplicate);
    let dead = read_topic(bootstrap, &config.dlq_topic, 1, Duration::from_secs(30));
    assert_eq!(dead.len(), 1, "the undecodable label is dead-lettered");
}

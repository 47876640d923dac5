//! Delayed labels on a real broker: labels written after their records were scored, out of
//! order, some duplicated, some missing, some late, some for ids never seen and one
//! undecodable, give per window of labels exactly the figures an offline computation over
//! the same joined pairs gives.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use crate::common::conservation::Committed;
use crate::common::framed::send;
use crate::common::labels::{GroundTruth, encoded, labels_topics};
use crate::common::process::Member;
use crate::common::*;
use driftwood::codec::encode::{AvroCodec, PredictionRecord, ReviewRequest};
use driftwood::labels::realized::roc_auc;
use driftwood::labels::{LabelCounts, PerformanceWindow};
use driftwood::service::Service;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rdkafka::Message;

const WINDOW: usize = 50;

/// `(partition, payload)` messages to write.
type Messages = Vec<(i32, Vec<u8>)>;
const HOUR_MS: i64 = 3_600_000;

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
    encoded(&GroundTruth {
        id: label.id.clone(),
        label: label.label,
        value: None,
        event_time: label.event_time,
    })
}

/// What a window says, in terms both sides compute: its outcome counts, and over its
/// joined pairs the accuracy, the log loss (to 9 decimals: probabilities are kept as f32) and
/// the ROC AUC.
type Figures = (LabelCounts, Option<(f64, String, Option<f64>)>);

/// Each window of each partition's `sent` labels, by (partition, first offset), as computed
/// here from the predictions: outcome counts, then the figures over the joined pairs.
fn expected_windows(
    sent: &HashMap<i32, Vec<Sent>>,
    by_id: &HashMap<&str, &PredictionRecord>,
) -> BTreeMap<(i32, i64), Figures> {
    let mut out = BTreeMap::new();
    for (&partition, labels) in sent {
        let mut joined = HashSet::new();
        for (k, window) in labels.chunks(WINDOW).enumerate() {
            let first = (k * WINDOW) as i64;
            out.insert((partition, first), offline(window, by_id, &mut joined));
        }
    }
    out
}

/// The published windows in the same terms; a window published twice (at-least-once) must
/// say the same both times.
fn published_windows(windows: &[PerformanceWindow]) -> BTreeMap<(i32, i64), Figures> {
    let mut out = BTreeMap::new();
    for w in windows {
        assert_eq!(w.last_offset - w.first_offset + 1, WINDOW as i64, "{w:?}");
        let figures = w.versions.first().map(|v| {
            let log_loss = format!("{:.9}", v.log_loss.unwrap());
            (v.accuracy.unwrap(), log_loss, v.roc_auc)
        });
        let said = (w.labels.clone(), figures);
        if let Some(before) = out.insert((w.partition, w.first_offset), said.clone()) {
            assert_eq!(before, said, "a window published twice says the same");
        }
    }
    out
}

fn offline(
    labels: &[Sent],
    by_id: &HashMap<&str, &PredictionRecord>,
    joined: &mut HashSet<String>,
) -> Figures {
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
    let figures = (counts.joined > 0).then(|| {
        (
            right as f64 / n,
            format!("{:.9}", loss / n),
            roc_auc(&scores),
        )
    });
    (counts, figures)
}

/// The predictions of `config`'s output topic, read back (900 of them).
fn predictions(bootstrap: &str, topic: &str) -> Vec<PredictionRecord> {
    let codec = AvroCodec::predictions();
    read_topic(bootstrap, topic, 900, Duration::from_secs(60))
        .iter()
        .map(|m| codec.decode(m.payload().unwrap()).unwrap())
        .collect()
}

/// Each partition's label records for `predictions`, and the messages to write them.
fn labels(predictions: &[PredictionRecord]) -> (HashMap<i32, Vec<Sent>>, Messages) {
    let mut rng = StdRng::seed_from_u64(24);
    let mut sent: HashMap<i32, Vec<Sent>> = HashMap::new();
    for partition in 0..3 {
        let mut of: Vec<&PredictionRecord> = predictions
            .iter()
            .filter(|p| p.source_partition == partition)
            .collect();
        of.sort_by_key(|p| p.source_offset);
        of.dedup_by_key(|p| p.source_offset);
        sent.insert(partition, labels_for(partition, &of, &mut rng));
    }
    // Interleaved, so that any prefix has labels of every partition.
    let longest = sent.values().map(Vec::len).max().unwrap_or(0);
    let messages = (0..longest)
        .flat_map(|i| (0..3).map(move |p| (p, i)))
        .filter_map(|(p, i)| Some((p, payload(sent[&p].get(i)?))))
        .collect();
    (sent, messages)
}

/// `config` reading `labels` as its input (for [`Committed`], which reads the input's commits).
fn labels_of(config: &driftwood::config::RunConfig, labels: &str) -> driftwood::config::RunConfig {
    let mut config = config.clone();
    config.input_topic = labels.to_owned();
    config
}

/// A configuration on fresh topics with 900 records produced, whose labels come on a topic
/// of their own and are reported in windows of [`WINDOW`] (a horizon of an hour).
async fn with_labels(bootstrap: &str) -> driftwood::config::RunConfig {
    let mut config = prepared_topics(bootstrap, 900, 0, |_| {}).await;
    let (labels_topic, performance) = labels_topics(bootstrap).await;
    config.labels.labels_topic = Some(labels_topic);
    config.labels.performance_topic = performance;
    config.labels.performance_window = WINDOW;
    config.labels.label_horizon = Duration::from_secs(3600);
    config
}

/// Waits until the 900 records are scored, and reads their predictions back.
async fn scored(
    bootstrap: &str,
    config: &driftwood::config::RunConfig,
    service: &Service,
) -> Vec<PredictionRecord> {
    let metrics = service.metrics();
    wait_until("900 records scored", Duration::from_secs(120), || {
        metrics.scored() >= 900
    })
    .await;
    predictions(bootstrap, &config.output_topic)
}

/// Reads the performance topic until `windows` distinct windows are there (2 minutes at most).
async fn all_windows(bootstrap: &str, topic: &str, windows: usize) -> Vec<PerformanceWindow> {
    let mut published = Vec::new();
    let all = wait_until("every window published", Duration::from_secs(120), || {
        published = decoded(&read_available(
            bootstrap,
            topic,
            100_000,
            Duration::from_secs(2),
        ));
        published_windows(&published).len() >= windows
    });
    all.await;
    published
}

fn decoded(messages: &[rdkafka::message::OwnedMessage]) -> Vec<PerformanceWindow> {
    let codec = AvroCodec::performance();
    (messages.iter())
        .map(|m| codec.decode(m.payload().unwrap()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_shuffled_duplicated_and_missing_labels_give_the_offline_figures_per_window() {
    let bootstrap = bootstrap();
    let config = with_labels(bootstrap).await;
    let labels_topic = config.labels.labels_topic.clone().unwrap();
    let performance = config.labels.performance_topic.clone();
    let service = Service::start(config.clone()).await.unwrap();
    let metrics = service.metrics().clone();
    // The labels come after the predictions, written by another producer.
    let predictions = scored(bootstrap, &config, &service).await;
    let by_id: HashMap<&str, &PredictionRecord> =
        predictions.iter().map(|p| (p.id.as_str(), p)).collect();
    let (sent, messages) = labels(&predictions);
    send(bootstrap, &labels_topic, &messages);
    let windows = messages.len() / WINDOW;
    assert!(windows >= 15, "{windows} windows");
    let published = decoded(&read_topic(
        bootstrap,
        &performance,
        windows,
        Duration::from_secs(60),
    ));
    service.stop().await.unwrap();

    let expected = expected_windows(&sent, &by_id);
    assert_eq!(published.len(), windows, "one record per window");
    assert_eq!(published_windows(&published), expected);
    let total = |f: fn(&LabelCounts) -> i64| expected.values().map(|(c, _)| f(c)).sum::<i64>();
    let (joined, duplicate) = (total(|c| c.joined), total(|c| c.duplicate));
    assert!(joined > 600 && duplicate > 50 && total(|c| c.late) > 10);
    assert_eq!(total(|c| c.dead_lettered), 1);
    let counted = |o: &str| metrics.labels.labels.with_label_values(&[o]).get() as i64;
    assert_eq!(
        (counted("joined"), counted("duplicate")),
        (joined, duplicate)
    );
    let dead = read_topic(bootstrap, &config.dlq_topic, 1, Duration::from_secs(30));
    assert_eq!(dead.len(), 1, "the undecodable label is dead-lettered");
}

/// What a kill -9 run published, and what it should have.
struct Killed {
    published: Vec<PerformanceWindow>,
    expected: BTreeMap<(i32, i64), Figures>,
    windows: usize,
}

/// Scores 900 records, writes two fifths of their labels, SIGKILLs the process once a labels
/// commit was made (with windows open), starts a new one, writes the rest, and reads the
/// performance topic until every window is there; `flags` are added.
async fn kill_9_among_labels(flags: &[&str]) -> Killed {
    let bootstrap = bootstrap();
    let config = prepared_topics(bootstrap, 900, 0, |_| {}).await;
    let (labels_topic, performance) = labels_topics(bootstrap).await;
    let window = WINDOW.to_string();
    let mut extra = labels::join_flags(&labels_topic, &performance, &window).to_vec();
    extra.extend([
        "--label-horizon",
        "1h",
        "--static-membership",
        "--instance-id",
        "labels-member",
    ]);
    extra.extend(flags);
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("labels.log"));
    let mut first = Member::start(&config, &extra, &log);
    first.wait_scored(900.0, Duration::from_secs(120));
    let predictions = predictions(bootstrap, &config.output_topic);
    let by_id: HashMap<&str, &PredictionRecord> =
        predictions.iter().map(|p| (p.id.as_str(), p)).collect();
    let (sent, messages) = labels(&predictions);
    let windows = messages.len() / WINDOW;

    let (early, late) = messages.split_at(messages.len() * 2 / 5);
    send(bootstrap, &labels_topic, early);
    read_topic(bootstrap, &performance, 3, Duration::from_secs(60));
    let committed = Committed::reader(bootstrap, &labels_of(&config, &labels_topic), 0..3);
    let labels_committed = || {
        let read = committed.read().unwrap_or_default();
        read.iter()
            .any(|(_, o)| matches!(o, rdkafka::Offset::Offset(o) if *o > 0))
    };
    wait_until("a labels commit", Duration::from_secs(30), labels_committed).await;
    first.kill();

    // A new process knows nothing but what it reads back.
    let second = Member::start(&config, &extra, &log);
    send(bootstrap, &labels_topic, late);
    let published = all_windows(bootstrap, &performance, windows).await;
    let stopped = second.terminate(Duration::from_secs(30));
    assert!(stopped, "exit 0 on SIGTERM; logs in {}", log.display());
    Killed {
        published,
        expected: expected_windows(&sent, &by_id),
        windows,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_the_predictions_and_joins_are_read_back_and_nothing_counts_twice() {
    let run = kill_9_among_labels(&[]).await;
    // At least once: a window published before the kill but not committed is published
    // again, saying the same (checked as they are gathered).
    assert!(run.published.len() >= run.windows);
    assert_eq!(published_windows(&run.published), run.expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_exactly_once_each_window_is_published_once_across_kill_9() {
    // The predictions on disk (--awaiting-dir): the second process empties what the first
    // left there and reads back from the topics as in memory.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("awaiting"));
    let dir = dir.to_str().expect("a UTF-8 path");
    let flags = [
        "--processing-guarantee",
        "exactly-once",
        "--awaiting-dir",
        dir,
    ];
    let run = kill_9_among_labels(&flags).await;
    // A committed reader sees each window once: a window's record and its labels' offsets
    // commit in one transaction, and the killed process's open one is aborted.
    assert_eq!(run.published.len(), run.windows);
    assert_eq!(published_windows(&run.published), run.expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_chosen_for_review_carry_their_features_and_their_labels_come_back() {
    let bootstrap = bootstrap();
    let mut config = prepared_topics(bootstrap, 900, 0, |_| {}).await;
    let (labels_topic, review) = (unique("labels"), unique("review"));
    create_topics(bootstrap, &[&labels_topic, &review], 3).await;
    config.labels.labels_topic = Some(labels_topic.clone());
    config.labels.performance_topic = unique("performance");
    config.labels.review_topic = Some(review.clone());
    config.labels.review_share = 0.05;
    config.labels.review_least_sure = 0.05;
    let service = Service::start(config.clone()).await.unwrap();
    let metrics = service.metrics().clone();
    wait_until("900 records scored", Duration::from_secs(120), || {
        metrics.scored() >= 900
    })
    .await;
    let predictions = predictions(bootstrap, &config.output_topic);
    let chosen = |reason: &str| metrics.labels.reviews.with_label_values(&[reason]).get() as usize;
    let (sampled, least_sure) = (chosen("sample"), chosen("least_sure"));
    let codec = AvroCodec::reviews();
    let requests: Vec<ReviewRequest> = read_topic(
        bootstrap,
        &review,
        sampled + least_sure,
        Duration::from_secs(30),
    )
    .iter()
    .map(|m| codec.decode(m.payload().unwrap()).unwrap())
    .collect();

    // About 5% sampled (900 records: 20 to 75 is beyond a 1-in-10^6 binomial deviation).
    assert!((20..=75).contains(&sampled), "{sampled} sampled");
    assert!(
        least_sure > 0,
        "the forest is unsure of a few of these records"
    );
    assert_eq!(requests.len(), sampled + least_sure);
    let by_id: HashMap<&str, &PredictionRecord> =
        predictions.iter().map(|p| (p.id.as_str(), p)).collect();
    let threshold = requests.iter().find_map(|r| r.threshold);
    for r in &requests {
        let p = by_id[r.id.as_str()];
        assert_eq!(
            (r.source_partition, r.source_offset),
            (p.source_partition, p.source_offset)
        );
        assert_eq!(r.confidence, p.prediction.confidence);
        assert_eq!(r.features.len(), 30, "every feature, by name");
        if r.reason == "least_sure" {
            assert!(r.confidence.unwrap() <= r.threshold.unwrap(), "{r:?}");
        }
    }
    // Every record at or below the threshold was sent as least sure.
    let below = (predictions.iter())
        .filter(|p| threshold.is_some_and(|t| p.prediction.confidence.unwrap() <= t))
        .count();
    assert_eq!(least_sure, below, "threshold {threshold:?}");

    // The reviewers' labels come back on the labels topic and are joined.
    let truths: Vec<(i32, Vec<u8>)> = (requests.iter())
        .map(|r| {
            let truth = GroundTruth {
                id: r.id.clone(),
                label: by_id[r.id.as_str()].actual_label,
                value: None,
                event_time: r.scored_at,
            };
            (r.source_partition, encoded(&truth))
        })
        .collect();
    send(bootstrap, &labels_topic, &truths);
    let joined = || metrics.labels.labels.with_label_values(&["joined"]).get() as usize;
    wait_until(
        "the reviewed records' labels joined",
        Duration::from_secs(30),
        || joined() == requests.len(),
    )
    .await;
    service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_a_rebalance_the_new_owner_reads_back_and_every_window_says_the_same() {
    let bootstrap = bootstrap();
    let config = with_labels(bootstrap).await;
    let labels_topic = config.labels.labels_topic.clone().unwrap();
    let performance = config.labels.performance_topic.clone();
    let first = ready_member(&config).await;
    let predictions = scored(bootstrap, &config, &first).await;
    let by_id: HashMap<&str, &PredictionRecord> =
        predictions.iter().map(|p| (p.id.as_str(), p)).collect();
    let (sent, messages) = labels(&predictions);
    let windows = messages.len() / WINDOW;
    let (early, late) = messages.split_at(messages.len() / 2);
    send(bootstrap, &labels_topic, early);
    read_topic(bootstrap, &performance, 3, Duration::from_secs(60));

    // A second member joins: some partitions, their labels and their open windows move,
    // to a member keeping its predictions on disk.
    let mut on_disk = config.clone();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("awaiting"));
    on_disk.labels.awaiting_dir = Some(dir);
    let second = ready_member(&on_disk).await;
    let moved = second.metrics().clone();
    wait_until("partitions moved", Duration::from_secs(60), || {
        moved.transport.assigned_partitions.get() > 0
    })
    .await;
    send(bootstrap, &labels_topic, late);
    let published = all_windows(bootstrap, &performance, windows).await;
    second.stop().await.unwrap();
    first.stop().await.unwrap();

    let second_joined = moved.labels.labels.with_label_values(&["joined"]).get();
    assert!(
        second_joined > 0,
        "the second member joined labels of what it was given"
    );
    assert_eq!(
        published_windows(&published),
        expected_windows(&sent, &by_id)
    );
}

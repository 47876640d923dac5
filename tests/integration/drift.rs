//! Drift reports on a real broker: one per window, decodable with the published schema,
//! flagging a shifted batch.

use std::time::Duration;

use crate::common::*;
use driftwood::codec::encode::AvroCodec;
use driftwood::drift::{DriftReport, Flag};
use driftwood::service::Service;
use driftwood::tools::produce::{ProduceConfig, produce};
use rdkafka::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_are_published_and_a_shift_is_flagged() {
    let bootstrap = bootstrap();
    let mut config = prepared_topics(bootstrap, 2000, 0, |_| {}).await;
    config.drift.window_records = 500;
    // A batch with every feature 20% larger, after the unshifted records.
    let mut shifted = ProduceConfig::new(bootstrap, &config.input_topic, 1000);
    shifted.shift = 0.2;
    tokio::task::spawn_blocking(move || produce(&shifted))
        .await
        .unwrap()
        .unwrap();

    let service = Service::start(config.clone()).await.unwrap();
    let metrics = service.metrics().clone();
    wait_until("3,000 records", Duration::from_secs(120), || {
        metrics.processed() >= 3000
    })
    .await;
    service.stop().await.unwrap();

    let messages = read_topic(bootstrap, &config.drift_topic, 6, Duration::from_secs(30));
    assert_eq!(messages.len(), 6, "one report per 500-record window");
    let codec = AvroCodec::drift_reports();
    let reports: Vec<DriftReport> = messages
        .iter()
        .map(|m| codec.decode(m.payload().unwrap()).unwrap())
        .collect();
    let records: i64 = reports.iter().map(|r| r.counts.records).sum();
    assert_eq!(records, 3000);
    for r in &reports {
        assert_eq!(r.model_name, "breast-cancer");
        assert_eq!(r.features.len(), 30);
        assert!(r.origin.window_start <= r.origin.window_end);
        assert!(r.accuracy.is_some(), "the generator sends labels");
        assert_eq!(
            r.origin.partitions,
            vec![0, 1, 2],
            "one instance holds every partition"
        );
    }
    let alerts = reports.iter().filter(|r| r.flag == Flag::Alert).count();
    assert!(
        alerts >= 1,
        "the shifted batch raised no alert: {reports:#?}"
    );
    let text = metrics.render();
    assert!(
        text.contains("driftwood_feature_psi{feature=\"mean_radius\",model=\"breast-cancer\"}")
    );
    let alerts = "driftwood_drift_alerts_total{level=\"alert\",model=\"breast-cancer\"}";
    assert!(metric(&text, alerts).unwrap() >= 1.0);
    assert_eq!(metric(&text, "driftwood_drift_reports_total"), Some(6.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_closes_by_age_when_records_stop() {
    let bootstrap = bootstrap();
    let mut config = prepared_topics(bootstrap, 300, 3, |_| {}).await;
    config.drift.window_records = 1_000_000;
    config.drift.window_seconds = Duration::from_secs(1);
    let service = Service::start(config.clone()).await.unwrap();
    let metrics = service.metrics().clone();
    wait_until(
        "a report from the aged window",
        Duration::from_secs(60),
        || metrics.drift_reports.get() >= 1,
    )
    .await;
    service.stop().await.unwrap();
    let published = metrics.drift_reports.get() as usize;
    let messages = read_topic(
        bootstrap,
        &config.drift_topic,
        published,
        Duration::from_secs(30),
    );
    assert_eq!(messages.len(), published);
    let codec = AvroCodec::drift_reports();
    let reports: Vec<DriftReport> = messages
        .iter()
        .map(|m| codec.decode(m.payload().unwrap()).unwrap())
        .collect();
    let scored: i64 = reports.iter().map(|r| r.counts.records).sum();
    let invalid: i64 = reports.iter().map(|r| r.counts.invalid).sum();
    assert_eq!(
        (scored, invalid),
        (297, 3),
        "every record counted, invalid ones apart"
    );
    // How the records spread over aged windows depends on the broker's timing; each
    // report's share describes its own window.
    for r in &reports {
        let total = (r.counts.records + r.counts.invalid) as f64;
        assert_eq!(r.invalid_share, r.counts.invalid as f64 / total, "{r:?}");
    }
}

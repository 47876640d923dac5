//! Drift reports on a real broker: one per window, decodable with the published schema; a
//! shifted feature flagged and named, unshifted windows quiet.

use std::time::Duration;

use crate::common::*;
use driftwood::codec::encode::AvroCodec;
use driftwood::config::tools::ProduceConfig;
use driftwood::drift::{DriftReport, Flag};
use driftwood::service::Service;
use driftwood::tools::produce::produce;
use rdkafka::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shifted_feature_is_flagged_and_named_while_unshifted_windows_stay_quiet() {
    let bootstrap = bootstrap();
    let mut config = prepared_topics(bootstrap, 2000, 0, |_| {}).await;
    config.drift.window_records = 500;
    let service = Service::start(config.clone()).await.unwrap();
    let metrics = service.metrics().clone();
    wait_until("2,000 records", Duration::from_secs(120), || {
        metrics.processed() >= 2000
    })
    .await;
    // Then a batch with one feature 15% larger (0.7 of its standard deviation), after the
    // four unshifted windows closed: each window holds one kind of record.
    let mut shifted = ProduceConfig::new(bootstrap, &config.input_topic, 1000);
    shifted.shift = 0.15;
    shifted.shift_features = vec!["mean_texture".into()];
    tokio::task::spawn_blocking(move || produce(&shifted))
        .await
        .unwrap()
        .unwrap();
    wait_until("3,000 records", Duration::from_secs(120), || {
        metrics.processed() >= 3000
    })
    .await;
    service.stop().await.unwrap();

    let messages = read_topic(bootstrap, &config.drift_topic, 6, Duration::from_secs(30));
    assert_eq!(messages.len(), 6, "one report per 500-record window");
    let codec = AvroCodec::drift_reports();
    let mut reports: Vec<DriftReport> = messages
        .iter()
        .map(|m| codec.decode(m.payload().unwrap()).unwrap())
        .collect();
    reports.sort_by_key(|r| r.origin.window_start);
    let records: i64 = reports.iter().map(|r| r.counts.records).sum();
    assert_eq!(records, 3000);
    for r in &reports {
        assert_eq!(r.model_name, "breast-cancer");
        assert_eq!(r.features.len(), 30);
        assert!(r.accuracy.is_some(), "the generator sends labels");
        assert_eq!((r.alert_rate, r.warn_rate), (0.01, 0.05));
        assert!(
            r.untested.is_none() && r.tests > 100,
            "{:?} {}",
            r.untested,
            r.tests
        );
        assert_eq!(
            r.origin.partitions,
            vec![0, 1, 2],
            "one instance holds every partition"
        );
    }
    let flagged = |r: &DriftReport| -> Vec<String> {
        (r.features.iter())
            .filter(|f| f.flag != Flag::Ok)
            .map(|f| f.name.clone())
            .collect()
    };
    // A drift-free window warns 5% of the time at most (measured on this data set: none in
    // 300); these four come from the model's own data set.
    for r in &reports[..4] {
        assert_eq!(
            r.flag,
            Flag::Ok,
            "unshifted window flagged: {:?}",
            flagged(r)
        );
    }
    for r in &reports[4..] {
        assert_eq!(r.flag, Flag::Alert);
        assert_eq!(
            flagged(r),
            vec!["mean_texture".to_string()],
            "only the shifted feature is named"
        );
        let texture = &r.features[1];
        assert!(
            texture.tests.iter().any(|t| t.flag == Flag::Alert),
            "{:?}",
            texture.tests
        );
        let moved = texture.mean_shift.unwrap();
        assert!((0.5..0.9).contains(&moved), "mean_texture moved {moved} sd");
        assert!(texture.detectable_shift.unwrap() < 0.5);
    }
    let text = metrics.render();
    let flag = "driftwood_drift_feature_flag{feature=\"mean_texture\",model=\"breast-cancer\"}";
    assert_eq!(metric(&text, flag), Some(2.0), "{text}");
    let quiet = "driftwood_drift_feature_flag{feature=\"mean_radius\",model=\"breast-cancer\"}";
    assert_eq!(metric(&text, quiet), Some(0.0));
    assert!(
        text.contains("driftwood_feature_psi{feature=\"mean_radius\",model=\"breast-cancer\"}")
    );
    let alerts = "driftwood_drift_alerts_total{level=\"alert\",model=\"breast-cancer\"}";
    assert_eq!(metric(&text, alerts), Some(2.0));
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
        || metrics.outputs.drift_reports.get() >= 1,
    )
    .await;
    service.stop().await.unwrap();
    let published = metrics.outputs.drift_reports.get() as usize;
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

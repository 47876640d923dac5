//! Stopping mid-stream and starting again in the same group loses nothing.

use std::time::Duration;

use crate::common::*;
use driftwood::service::Service;

const RECORDS: usize = 20_000;
const CORRUPT: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_loses_no_record() {
    let bootstrap = bootstrap();
    // Ordinary batched input, as real producers send it: the restart resumes from committed
    // offsets that fall inside record batches.
    let config = prepared_topics(bootstrap, RECORDS, CORRUPT, |spec| {
        spec.kafka_options = vec![
            ("linger.ms".into(), "100".into()),
            ("batch.num.messages".into(), "10000".into()),
        ];
    })
    .await;

    // First instance: stop it part-way through.
    let first = Service::start(config.clone()).await.unwrap();
    let metrics = first.metrics().clone();
    wait_until(
        "the first instance to make progress",
        Duration::from_secs(120),
        || metrics.scored() >= 2_000,
    )
    .await;
    first.stop().await.unwrap();
    let done_first = metrics.scored() + metrics.dead_lettered();
    assert!(
        done_first < RECORDS as u64,
        "the first instance finished everything ({done_first}); the test needs a mid-stream stop"
    );

    // Second instance, same group: picks up where the first committed.
    let second = Service::start(config.clone()).await.unwrap();
    let metrics2 = second.metrics().clone();
    wait_until(
        "the second instance to catch up",
        Duration::from_secs(180),
        || {
            let text = metrics2.render();
            let lags: Vec<f64> = (0..3)
                .filter_map(|p| {
                    metric(
                        &text,
                        &format!(
                            "driftwood_consumer_lag{{partition=\"{p}\",topic=\"{}\"}}",
                            config.input_topic
                        ),
                    )
                })
                .collect();
            lags.len() == 3 && lags.iter().all(|l| *l == 0.0) && metrics2.in_flight.get() == 0
        },
    )
    .await;
    second.stop().await.unwrap();

    let outputs = done_first + metrics2.scored() + metrics2.dead_lettered();
    let seen = outputs_by_input(bootstrap, &config, RECORDS, Duration::from_secs(15));
    let missing: Vec<_> = input_positions(bootstrap, &config.input_topic, RECORDS)
        .into_iter()
        .filter(|k| !seen.contains_key(k))
        .collect();
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    assert!(
        missing.is_empty(),
        "{} input offsets have no output, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    // A graceful stop commits everything it acknowledged, so nothing is scored twice.
    assert_eq!(
        duplicates, 0,
        "{outputs} outputs acknowledged by the two instances"
    );
}

//! Stopping mid-stream and starting again loses nothing: driftwood itself (gracefully), or
//! the broker under it.

use std::time::Duration;

use crate::common::*;
use driftwood::service::Service;

/// Enough that the first instance is still reading when it is stopped: progress is checked
/// every 100 ms, and on a quiet machine 20,000 records were all scored within one check in
/// half the runs of this test alone.
const RECORDS: usize = 200_000;
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
            lags.len() == 3
                && lags.iter().all(|l| *l == 0.0)
                && metrics2.transport.in_flight.get() == 0
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

/// The broker (a single node of its own) stops mid-stream and starts again on its data:
/// driftwood turns unready while it is away and ready after, without being restarted, and
/// nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_needs_no_driftwood_restart() {
    init_logging();
    let mut kafka = Kafka::start(free_port());
    let bootstrap = kafka.bootstrap();
    let config = fresh_topics(&bootstrap, 3, 1).await;
    let input = stream(&bootstrap, &config, 60_000, 3_000.0);

    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("broker-restart.log"));
    let mut member = Member::start(&config, &["--stats-interval", "1s"], &log);
    member.wait_scored(3_000.0, Duration::from_secs(60));
    assert_eq!(member.ready_status(), Some(200));

    kafka.stop();
    wait_until("/ready to say 503", Duration::from_secs(30), || {
        member.ready_status() == Some(503)
    })
    .await;
    let scored_while_down = member.scored();
    // The outage itself: the broker stays down this long (part of the scenario, not a
    // wait before an assertion).
    tokio::time::sleep(Duration::from_secs(3)).await;
    kafka.resume();
    wait_until("/ready to say 200 again", Duration::from_secs(90), || {
        member.ready_status() == Some(200)
    })
    .await;
    member.wait_scored(scored_while_down + 1_000.0, Duration::from_secs(60));

    let (exited_zero, c) = settle(&bootstrap, &config, input, [member]).await;
    assert!(
        exited_zero,
        "the same process, never restarted, exits 0; logs in {}",
        log.display()
    );
    eprintln!("broker restart: {c:?}");
    assert_eq!(c.missing_count, 0, "inputs without output: {:?}", c.missing);
    assert_eq!(c.strays, 0);
}

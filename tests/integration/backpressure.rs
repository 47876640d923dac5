//! Back-pressure keeps the consumer in its group: when outputs cannot be written for longer
//! than `max.poll.interval.ms`, driftwood pauses its partitions and keeps polling instead of
//! going silent, memory stays bounded, and nothing is lost once the output recovers.

use std::time::Duration;

use crate::common::*;
use driftwood::config::tools::ProduceConfig;
use driftwood::service::Service;
use driftwood::tools::produce::produce;

const RECORDS: usize = 3_000;
const MAX_IN_FLIGHT: usize = 100;

/// [`RECORDS`] input records, and no output topic yet (nor auto-creation): every prediction
/// waits and fails as an unknown topic, while the input is read as usual.
async fn without_output_topic(bootstrap: &str) -> driftwood::config::RunConfig {
    let mut config = run_config(bootstrap);
    let others = [&config.input_topic, &config.dlq_topic, &config.drift_topic];
    create_topics(bootstrap, &others.map(String::as_str), 3).await;
    let spec = ProduceConfig::new(bootstrap, &config.input_topic, RECORDS);
    tokio::task::spawn_blocking(move || produce(&spec))
        .await
        .unwrap()
        .unwrap();
    config.max_in_flight = MAX_IN_FLIGHT;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_output_pauses_fetching_without_leaving_the_group() {
    let bootstrap = bootstrap();
    let mut config = without_output_topic(bootstrap).await;
    // Within the short session timeout below.
    config.revoke_drain = Duration::from_secs(5);
    config.kafka_options = vec![
        ("consumer.max.poll.interval.ms".into(), "10000".into()),
        ("consumer.session.timeout.ms".into(), "6000".into()),
        // Deliveries fail (and are sent again) within the stall.
        ("producer.message.timeout.ms".into(), "3000".into()),
    ];
    let service = Service::start(config.clone()).await.unwrap();
    let metrics = service.metrics().clone();
    wait_until(
        "in-flight outputs to reach the bound",
        Duration::from_secs(60),
        || metrics.transport.in_flight.get() >= MAX_IN_FLIGHT as i64,
    )
    .await;

    // Longer than max.poll.interval.ms: a consumer that stopped polling is evicted by now.
    let mut most_in_flight = 0;
    for _ in 0..150 {
        most_in_flight = most_in_flight.max(metrics.transport.in_flight.get());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        most_in_flight <= (MAX_IN_FLIGHT + 1024) as i64,
        "in flight {most_in_flight}: bounded by --max-in-flight plus one batch"
    );
    assert_eq!(
        metrics.scored(),
        0,
        "nothing acknowledged while the output is unwritable"
    );
    assert_eq!(
        metrics.transport.fetch_paused.get(),
        1,
        "fetching is paused"
    );
    let readiness = service.health().readiness();
    assert!(
        !readiness.ready
            && readiness
                .missing
                .iter()
                .any(|m| m.starts_with("outputs are failing")),
        "{readiness:?}"
    );
    let errors = metric(
        &metrics.render(),
        "driftwood_delivery_errors_total{error=\"MessageTimedOut\"}",
    );
    assert!(errors.is_some_and(|n| n >= 1.0), "{}", metrics.render());

    create_topics(bootstrap, &[&config.output_topic], 3).await;
    wait_until(
        "every record once the output recovers",
        Duration::from_secs(120),
        || metrics.scored() >= RECORDS as u64,
    )
    .await;
    let health = service.health().clone();
    wait_until("/ready again", Duration::from_secs(10), || {
        health.readiness().ready
    })
    .await;
    let text = metrics.render();
    service.stop().await.unwrap();
    assert_eq!(
        metric(&text, "driftwood_rebalances_total{kind=\"revoke\"}").unwrap_or(0.0),
        0.0,
        "the member was never evicted: {text}"
    );
    assert_eq!(
        metric(&text, "driftwood_rebalances_total{kind=\"assign\"}"),
        Some(1.0)
    );
    let seen = outputs_by_input(bootstrap, &config, RECORDS, Duration::from_secs(15));
    let missing = input_positions(bootstrap, &config.input_topic, RECORDS)
        .into_iter()
        .filter(|k| !seen.contains_key(k))
        .count();
    assert_eq!(missing, 0, "every input offset has an output");
}

/// librdkafka keeps a partition paused through a revoke and a new assignment: a member
/// paused for back-pressure when its group rebalances must still fetch afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_paused_before_a_rebalance_fetch_again_after_it() {
    let bootstrap = bootstrap();
    let mut config = without_output_topic(bootstrap).await;
    config.kafka_options = vec![("producer.message.timeout.ms".into(), "3000".into())];
    let first = Service::start(config.clone()).await.unwrap();
    let metrics = first.metrics().clone();
    wait_until("the first member to pause", Duration::from_secs(60), || {
        metrics.transport.fetch_paused.get() == 1
    })
    .await;

    // A second member joins and leaves: two rebalances while the first is paused.
    let second = ready_member(&config).await;
    second
        .stop()
        .await
        .unwrap_or_else(|e| eprintln!("second member: {e}"));
    wait_until(
        "the first member to hold every partition again",
        Duration::from_secs(60),
        || metrics.transport.assigned_partitions.get() == 3,
    )
    .await;

    create_topics(bootstrap, &[&config.output_topic], 3).await;
    wait_until(
        "every record once the output exists",
        Duration::from_secs(120),
        || metrics.scored() >= RECORDS as u64,
    )
    .await;
    first.stop().await.unwrap();
}

//! A stream to score while something fails: fresh topics, a producer feeding the input at a
//! steady rate in the background, and the end of a fault test, where the stream stops, the
//! group catches up, the processes stop and what came out is counted.

use std::time::Duration;

use driftwood::config::RunConfig;
use driftwood::config::tools::ProduceConfig;
use driftwood::tools::produce::produce;

use super::{
    Conservation, Member, conservation, create_replicated_topics, run_config, wait_caught_up,
};

/// Fresh input, output, dead-letter and drift topics (`partitions` each, of `replication`
/// replicas) and a run configuration on them.
pub async fn fresh_topics(bootstrap: &str, partitions: i32, replication: i32) -> RunConfig {
    let config = run_config(bootstrap);
    let topics = [
        &config.input_topic,
        &config.output_topic,
        &config.dlq_topic,
        &config.drift_topic,
    ];
    create_replicated_topics(
        bootstrap,
        &topics.map(String::as_str),
        partitions,
        replication,
    )
    .await;
    config
}

/// Records produced to an input topic in the background.
pub struct Stream {
    /// How many records it sends.
    pub records: usize,
    producer: tokio::task::JoinHandle<driftwood::Result<driftwood::tools::produce::Produced>>,
}

impl Stream {
    /// How many of its records can be scored (the rest are corrupt).
    pub fn scorable(&self) -> f64 {
        (self.records - self.records / 1000) as f64
    }
}

/// Starts producing `records` to `config`'s input at `rate` a second (one in a thousand
/// corrupt) with an idempotent producer, which rides out broker failures without
/// duplicating inputs.
pub fn stream(bootstrap: &str, config: &RunConfig, records: usize, rate: f64) -> Stream {
    let mut spec = ProduceConfig::new(bootstrap, &config.input_topic, records);
    spec.rate = rate;
    spec.corrupt = records / 1000;
    spec.kafka_options = vec![("enable.idempotence".into(), "true".into())];
    Stream {
        records,
        producer: tokio::task::spawn_blocking(move || produce(&spec)),
    }
}

/// Waits for `stream` to be acknowledged in full and `config`'s group to commit all of it,
/// stops `members` with SIGTERM, and reads what came out: whether every member exited 0,
/// and the outputs matched to the inputs.
pub async fn settle(
    bootstrap: &str,
    config: &RunConfig,
    stream: Stream,
    members: impl IntoIterator<Item = Member>,
) -> (bool, Conservation) {
    let produced = stream.producer.await.unwrap().expect("producing the input");
    assert_eq!(produced.records, stream.records, "the producer's own count");
    wait_caught_up(bootstrap, config, Duration::from_secs(120));
    // Every member is stopped, whatever the others answered.
    let exits: Vec<bool> = members
        .into_iter()
        .map(|m| m.terminate(Duration::from_secs(30)))
        .collect();
    (exits.iter().all(|ok| *ok), conservation(bootstrap, config))
}

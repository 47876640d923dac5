//! Topic creation for brokers that do not auto-create (`--create-topics`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backon::{BlockingRetryable, ExponentialBuilder};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use tracing::{info, warn};

use crate::config::RunConfig;
use crate::error::{Error, Result};

/// Creates the input, output, dead-letter and drift topics that do not exist yet, retrying with
/// backoff while the broker is unreachable. Gives up only when `stop` is set.
pub fn create_topics(
    config: &RunConfig,
    client: &ClientConfig,
    runtime: &tokio::runtime::Handle,
    stop: &AtomicBool,
) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = client
        .create()
        .map_err(|e| Error::kafka("creating the admin client", e))?;
    let topics = [
        &config.input_topic,
        &config.output_topic,
        &config.dlq_topic,
        &config.drift_topic,
    ];
    let attempt = || -> Result<()> {
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|t| {
                NewTopic::new(
                    t,
                    config.topic_partitions,
                    TopicReplication::Fixed(config.topic_replication),
                )
            })
            .collect();
        let options = AdminOptions::new()
            .operation_timeout(Some(Duration::from_secs(10)))
            .request_timeout(Some(Duration::from_secs(10)));
        let results = runtime
            .block_on(admin.create_topics(&new, &options))
            .map_err(|e| Error::kafka("creating topics", e))?;
        for result in results {
            match result {
                Ok(topic) => info!(%topic, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(Error::kafka(
                        format!("creating topic {topic}"),
                        rdkafka::error::KafkaError::AdminOp(code),
                    ));
                }
            }
        }
        Ok(())
    };
    attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(10))
                .without_max_times(),
        )
        .when(|_| !stop.load(Ordering::Relaxed))
        .notify(|e, delay| warn!(error = %e, retry_in = ?delay, "topic creation failed; retrying"))
        .call()
}

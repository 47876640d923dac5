//! Topic creation for brokers that do not auto-create (`--create-topics`), and removal of
//! the topics a tool wrote (the bench's).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backon::{BlockingRetryable, ExponentialBuilder};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use tracing::{info, warn};

use crate::error::{Error, Result};

/// Topics to create, each with the same partitions and replicas.
#[derive(Debug, Clone)]
pub struct NewTopics {
    /// Their names.
    pub names: Vec<String>,
    /// Partitions of each.
    pub partitions: i32,
    /// Replicas of each partition.
    pub replication: i32,
}

/// Creates those of `topics` that do not exist yet, retrying with backoff while the broker
/// is unreachable. Gives up when `stop` is set, or at once on an error no retry can cure (not
/// authorized, a replication factor or configuration the cluster refuses).
pub fn create_topics(
    topics: &NewTopics,
    client: &ClientConfig,
    runtime: &tokio::runtime::Handle,
    stop: &AtomicBool,
) -> Result<()> {
    let names: Vec<&str> = topics.names.iter().map(String::as_str).collect();
    let attempt = || {
        runtime.block_on(create_missing(
            client,
            &names,
            topics.partitions,
            topics.replication,
        ))
    };
    attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(10))
                .without_max_times(),
        )
        .when(|e| !stop.load(Ordering::Relaxed) && !is_permanent(e))
        .notify(|e, delay| warn!(error = %e, retry_in = ?delay, "topic creation failed; retrying"))
        .call()
}

/// Creates those of `topics` that do not exist yet, once, with `partitions` partitions of
/// `replication` replicas each.
pub async fn create_missing(
    client: &ClientConfig,
    topics: &[&str],
    partitions: i32,
    replication: i32,
) -> Result<()> {
    let admin = admin_client(client)?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(replication)))
        .collect();
    let options = waiting(Duration::from_secs(10));
    let results = admin
        .create_topics(&new, &options)
        .await
        .map_err(|e| Error::kafka("creating topics", e))?;
    for result in results {
        match result {
            Ok(topic) => info!(%topic, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(Error::kafka(
                    format!("creating topic {topic}"),
                    KafkaError::AdminOp(code),
                ));
            }
        }
    }
    Ok(())
}

/// An admin client of `client`'s settings.
fn admin_client(client: &ClientConfig) -> Result<AdminClient<DefaultClientContext>> {
    (client.create()).map_err(|e| Error::kafka("creating the admin client", e))
}

/// Options that wait up to `timeout` for the request and for the operation.
fn waiting(timeout: Duration) -> AdminOptions {
    AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout))
}

/// Deletes every topic whose name starts with `prefix`; how many were deleted. A topic that
/// is already gone counts as deleted.
pub async fn delete_with_prefix(client: &ClientConfig, prefix: &str) -> Result<usize> {
    let admin = admin_client(client)?;
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|e| Error::kafka("listing topics", e))?;
    let names: Vec<&str> = (metadata.topics().iter())
        .map(|t| t.name())
        .filter(|name| name.starts_with(prefix))
        .collect();
    if names.is_empty() {
        return Ok(0);
    }
    let options = waiting(Duration::from_secs(30));
    let results = admin
        .delete_topics(&names, &options)
        .await
        .map_err(|e| Error::kafka("deleting topics", e))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => {
                return Err(Error::kafka(
                    format!("deleting topic {topic}"),
                    KafkaError::AdminOp(code),
                ));
            }
        }
    }
    Ok(names.len())
}

/// Whether creating topics failed for a reason that retrying cannot change.
fn is_permanent(error: &Error) -> bool {
    use RDKafkaErrorCode as C;
    let Error::Kafka { source, .. } = error else {
        return true;
    };
    // An admin operation's code is not among rdkafka_error_code()'s.
    let code = match source {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    };
    matches!(
        code,
        Some(
            C::TopicAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::InvalidReplicationFactor
                | C::InvalidPartitions
                | C::InvalidReplicaAssignment
                | C::InvalidConfig
                | C::PolicyViolation
                | C::InvalidTopic
        )
    )
}

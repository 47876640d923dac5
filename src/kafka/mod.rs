//! Kafka in and out: the consumer's context, the producer that writes every output, which
//! input offsets are safe to commit, exactly-once transactions, and topic creation. What the
//! clients see goes up as typed events (`events.rs`): this layer knows nothing of metrics,
//! health or what an output holds. Internal to driftwood but for the header it puts on a
//! truncated dead letter, which is part of its output.

pub(crate) mod admin;
pub(crate) mod delivery;
pub(crate) mod events;
pub(crate) mod offsets;
pub(crate) mod retry;
pub(crate) mod sink;
pub(crate) mod source;
#[cfg(test)]
pub(crate) mod testing;
pub(crate) mod trace;
pub(crate) mod transaction;
pub(crate) mod wakeup;

/// The librdkafka configuration of each client, built once from the settings (secret files
/// and variables read once) and checked.
#[derive(Clone)]
pub struct KafkaClients {
    /// The input consumer.
    pub consumer: rdkafka::ClientConfig,
    /// The output producer.
    pub producer: rdkafka::ClientConfig,
    /// The admin client that creates topics.
    pub admin: rdkafka::ClientConfig,
}

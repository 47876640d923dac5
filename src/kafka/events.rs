//! What the transport tells the layer above it. `kafka/` knows nothing of metrics, health or
//! what an output holds: its contexts report what they see as [`Event`]s to an [`Observer`]
//! the layer above provides, and every output carries an outcome of the observer's own type,
//! handed back as it is when the broker acknowledges the output.
//!
//! Hidden contract: the observer's methods run inside librdkafka's callbacks, on the thread
//! that polls the client (the consumer loop's), so they must not block.

use std::fmt::Debug;

use rdkafka::error::KafkaError;

/// What an output stands for, as far as the transport is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Output<O> {
    /// The output of one input record, whose offset waits for its acknowledgement.
    Record {
        /// Input partition.
        partition: i32,
        /// Input offset.
        offset: i64,
        /// What the output is, for the observer.
        outcome: O,
    },
    /// The output of one record of the labels topic (its dead letter, or the performance
    /// window whose first record it is), whose offset waits for its acknowledgement.
    Label {
        /// Labels partition.
        partition: i32,
        /// Labels offset.
        offset: i64,
        /// What the output is, for the observer.
        outcome: O,
    },
    /// An output that belongs to no input offset (a drift report, a comparison): it holds
    /// back no commit.
    Detached(O),
}

impl<O> Output<O> {
    /// What the output is, for the observer.
    pub fn outcome(&self) -> &O {
        match self {
            Output::Record { outcome, .. }
            | Output::Label { outcome, .. }
            | Output::Detached(outcome) => outcome,
        }
    }
}

/// Something the Kafka clients saw.
#[derive(Debug)]
pub enum Event<'a> {
    /// Whether any broker is up (from statistics, errors, or a rebalance that needed one).
    BrokersUp(bool),
    /// The group assigned these input partitions.
    Assigned(&'a [i32]),
    /// The group took these input partitions away (their outputs drained and committed).
    Revoked {
        /// The input topic.
        topic: &'a str,
        /// The partitions.
        partitions: &'a [i32],
    },
    /// How many input partitions this member holds now.
    Holding(usize),
    /// An assigned partition's lag, from librdkafka's statistics.
    Lag {
        /// The input topic.
        topic: &'a str,
        /// The partition.
        partition: i32,
        /// Messages between the consumer position and the partition's end.
        lag: i64,
    },
    /// A delivery failed (it may be tried again).
    DeliveryFailed {
        /// The output topic.
        topic: &'a str,
        /// What librdkafka said.
        error: &'a KafkaError,
    },
    /// An output could not even be queued (exactly-once: its transaction must abort).
    NotQueued {
        /// The output topic.
        topic: &'a str,
        /// What librdkafka said.
        error: &'a KafkaError,
    },
    /// A failed output was queued to be sent again.
    Resent,
    /// Outputs sent and not yet acknowledged.
    InFlight(usize),
    /// An exactly-once transaction committed.
    Committed,
    /// An exactly-once transaction aborted (its records are read again).
    Aborted,
}

/// Who hears what the transport saw (the pipeline: it keeps the metrics and the health).
pub trait Observer: Send + Sync + 'static {
    /// What an output stands for, kept with it until the broker acknowledges it.
    type Outcome: Copy + Debug + Send + Sync + 'static;

    /// Whether an output of `outcome` too large for the broker may be cut to fit, rather
    /// than stop the outputs (a dead letter).
    fn truncatable(outcome: &Self::Outcome) -> bool;

    /// The broker acknowledged `output` (called once per output, on the hot path).
    fn acknowledged(&self, output: &Output<Self::Outcome>);

    /// Anything else the clients saw.
    fn on(&self, event: Event<'_>);
}

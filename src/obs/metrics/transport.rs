//! The Kafka side: the group, lag, deliveries, back-pressure, transactions, the schema registry.

use prometheus::{CounterVec, Histogram, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

use super::Registrar;

/// The Kafka side: the group, lag, deliveries, back-pressure, transactions, the schema registry.
#[derive(Clone)]
pub struct TransportMetrics {
    /// `driftwood_consumer_lag{topic,partition}`: messages behind the partition's end, from
    /// librdkafka statistics.
    pub consumer_lag: IntGaugeVec,
    /// `driftwood_rebalances_total{kind}`: partition assignments and revocations.
    pub rebalances: IntCounterVec,
    /// `driftwood_assigned_partitions`: input partitions this instance holds.
    pub assigned_partitions: IntGauge,
    /// `driftwood_transactions_total{outcome}`: exactly-once transactions `committed` or
    /// `aborted`.
    pub transactions: IntCounterVec,
    /// `driftwood_delivery_retries_total`: outputs re-sent after a failed delivery.
    pub delivery_retries: IntCounter,
    /// `driftwood_delivery_errors_total{error}`: failed deliveries by librdkafka error code.
    pub delivery_errors: IntCounterVec,
    /// `driftwood_in_flight_records`: records sent but not yet acknowledged.
    pub in_flight: IntGauge,
    /// `driftwood_fetch_paused`: 1 while fetching is paused for back-pressure.
    pub fetch_paused: IntGauge,
    /// `driftwood_fetch_pauses_total`: times fetching paused for back-pressure.
    pub fetch_pauses: IntCounter,
    /// `driftwood_schema_registry_requests_total{outcome}`: writer schemas asked for by id:
    /// `found`, `unknown`, `unavailable`, `refused`.
    pub registry_requests: IntCounterVec,
    /// `driftwood_schema_held_partitions`: partitions paused at a record whose writer schema
    /// the registry could not be asked for yet.
    pub held_partitions: IntGauge,
    /// `driftwood_loop_seconds_total{phase}`: the consumer loop's wall time by what it did:
    /// `input` (waiting in the consumer's poll for records), `acknowledgements` (waiting on
    /// the producer under back-pressure), `work` (decoding, scoring, sending, bookkeeping).
    /// A loop that keeps up spends most of its time on `input`; a busy one on `work`.
    pub loop_seconds: CounterVec,
    /// `driftwood_batch_records`: records per batch the loop handled.
    pub batch_records: Histogram,
}

impl TransportMetrics {
    /// Creates and registers them.
    pub(super) fn new(r: &Registrar<'_>) -> Self {
        TransportMetrics {
            consumer_lag: r.gauge_vec(
            "driftwood_consumer_lag",
            "Messages between the consumer position and the partition end.",
            &["topic", "partition"],
        ),
            rebalances: r.labelled_counters(
            "driftwood_rebalances_total",
            "Consumer group rebalances seen, by kind (assign, revoke).",
            "kind", &["assign", "revoke"]),
            assigned_partitions: r.gauge("driftwood_assigned_partitions", "Input partitions this instance holds."),
            transactions: r.labelled_counters(
            "driftwood_transactions_total",
            "Exactly-once transactions, by outcome (committed, aborted).",
            "outcome", &["committed", "aborted"]),
            delivery_retries: r.counter("driftwood_delivery_retries_total", "Outputs re-sent after the producer gave up on a delivery."),
            delivery_errors: r.counter_vec(
            "driftwood_delivery_errors_total",
            "Failed output deliveries, by librdkafka error code.",
            &["error"],
        ),
            in_flight: r.gauge("driftwood_in_flight_records", "Records sent to the broker and not yet acknowledged."),
            fetch_paused: r.gauge("driftwood_fetch_paused", "1 while fetching is paused because too many outputs wait for acknowledgement."),
            fetch_pauses: r.counter("driftwood_fetch_pauses_total", "Times fetching paused because too many outputs waited for acknowledgement."),
            registry_requests: r.counter_vec(
            "driftwood_schema_registry_requests_total",
            "Writer schemas asked of the schema registry by id, by outcome.",
            &["outcome"],
        ),
            held_partitions: r.gauge("driftwood_schema_held_partitions", "Partitions paused at a record whose writer schema the registry could not be asked for yet."),
            loop_seconds: {
                let opts = Opts::new(
                    "driftwood_loop_seconds_total",
                    "Wall time of the consumer loop by phase (input, acknowledgements, work).",
                );
                let phases = super::register(r.0, CounterVec::new(opts, &["phase"]));
                for phase in LoopPhase::ALL {
                    phases.with_label_values(&[phase.label()]);
                }
                phases
            },
            batch_records: r.histogram(
                "driftwood_batch_records",
                "Records per batch the consumer loop handled.",
                vec![1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0],
            ),
        }
    }
}

/// What the consumer loop spends its time on (`driftwood_loop_seconds_total{phase}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopPhase {
    /// Waiting in the consumer's poll for records.
    Input,
    /// Waiting on the producer's acknowledgements under back-pressure.
    Acknowledgements,
    /// Decoding, scoring, sending, bookkeeping.
    Work,
}

impl LoopPhase {
    /// Every phase.
    pub const ALL: [LoopPhase; 3] = [
        LoopPhase::Input,
        LoopPhase::Acknowledgements,
        LoopPhase::Work,
    ];

    /// Its label value.
    pub fn label(self) -> &'static str {
        match self {
            LoopPhase::Input => "input",
            LoopPhase::Acknowledgements => "acknowledgements",
            LoopPhase::Work => "work",
        }
    }
}

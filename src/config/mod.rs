//! Configuration of `driftwood run`: flags with `DRIFTWOOD_*` environment fallbacks,
//! validated up front, and the librdkafka settings derived from them.
//!
//! librdkafka properties pass through with `--kafka-option key=value`; a key prefixed with
//! `consumer.` or `producer.` applies to that client only. Secret values can come from files
//! (`--kafka-option-file key=path`) or from the environment (`--kafka-option-env key=VAR`);
//! no option value is ever logged.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::codec::decode::{InputFormat, MissingFeatures};
use crate::error::{Error, Result};
pub use models::{ModelArgs, RouteBy};
pub use registry::{OutputFormat, PASSWORD_ENV, RegistryArgs};

pub mod cli;
mod commands;
mod drift;
mod kafka;
mod labels;
mod models;
mod registry;
pub mod tools;
mod values;

pub use commands::{HyperparameterArgs, ImportArgs, TrainArgs, flag_value};
pub use drift::DriftArgs;
pub use labels::LabelArgs;

pub use kafka::{ClientRole, Profile, parse_key_value};

/// The bootstrap servers every command uses: the flag (or its `DRIFTWOOD_*` variable), else
/// `KAFKA_BOOTSTRAP_SERVERS`, else `localhost:9092`.
pub fn bootstrap_servers(flag: Option<&str>) -> String {
    flag.map(str::to_string)
        .or_else(|| std::env::var("KAFKA_BOOTSTRAP_SERVERS").ok())
        .unwrap_or_else(|| "localhost:9092".to_string())
}

/// What a crash may do to the outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProcessingGuarantee {
    /// Every input has an output; after a crash some may have two.
    AtLeastOnce,
    /// Every input has exactly one committed output (Kafka transactions).
    ExactlyOnce,
}

/// Settings for `driftwood run` (and the pipeline inside `demo`).
#[derive(Clone, Args)]
pub struct RunConfig {
    /// Kafka bootstrap servers, comma separated. Falls back to KAFKA_BOOTSTRAP_SERVERS, then
    /// localhost:9092.
    #[arg(long, env = "DRIFTWOOD_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: Option<String>,

    /// Consumer group id.
    #[arg(long, env = "DRIFTWOOD_GROUP_ID", default_value = "driftwood")]
    pub group_id: String,

    /// Topic of feature records to score.
    #[arg(long, env = "DRIFTWOOD_INPUT_TOPIC", default_value = "features")]
    pub input_topic: String,

    /// Topic predictions are written to, keyed like the input.
    #[arg(long, env = "DRIFTWOOD_OUTPUT_TOPIC", default_value = "predictions")]
    pub output_topic: String,

    /// Dead-letter topic for records that cannot be scored.
    #[arg(long, env = "DRIFTWOOD_DLQ_TOPIC", default_value = "features.dlq")]
    pub dlq_topic: String,

    /// Topic drift reports (Avro, `schemas/drift_report.avsc`) are written to.
    #[arg(long, env = "DRIFTWOOD_DRIFT_TOPIC", default_value = "drift")]
    pub drift_topic: String,

    /// Drift windows and their tests.
    #[command(flatten)]
    pub drift: DriftArgs,

    /// Labels arriving later, on a topic of their own.
    #[command(flatten)]
    pub labels: LabelArgs,

    /// This instance's id: in drift reports, in the exactly-once `transactional.id`, and with
    /// --static-membership as the consumer's `group.instance.id`. Two live instances must
    /// never share it. [default: the host name]
    #[arg(long, env = "DRIFTWOOD_INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// Static group membership: the instance id becomes `group.instance.id`, so a restarted
    /// instance (same id, e.g. a StatefulSet pod) takes its partitions back at once instead
    /// of after `session.timeout.ms`. A static member that goes away for good does not leave
    /// the group: its partitions wait `session.timeout.ms` before they move.
    #[arg(long, env = "DRIFTWOOD_STATIC_MEMBERSHIP")]
    pub static_membership: bool,

    /// Which models serve, and how their versions change.
    #[command(flatten)]
    pub models: ModelArgs,

    /// Serve the REST twin on the sidecar: `POST /v1/predict` (JSON, one record or a batch)
    /// with the model version the stream serves, and `/openapi.json`.
    #[arg(long, env = "DRIFTWOOD_REST")]
    pub rest: bool,

    /// Largest REST request body, in bytes; larger ones are refused with 413.
    #[arg(long, env = "DRIFTWOOD_REST_BODY_LIMIT", default_value_t = 1 << 20)]
    pub rest_body_limit: usize,

    /// Writer schema (.avsc) of the input records [default: the bundled feature schema].
    #[arg(long, env = "DRIFTWOOD_INPUT_SCHEMA")]
    pub input_schema: Option<PathBuf>,

    /// Input framing.
    #[arg(
        long,
        env = "DRIFTWOOD_INPUT_FORMAT",
        value_enum,
        default_value = "avro"
    )]
    pub input_format: InputFormat,

    /// The schema registry, and the output framing.
    #[command(flatten)]
    pub schema_registry: RegistryArgs,

    /// Messages larger than this many bytes are dead-lettered unscored.
    #[arg(long, env = "DRIFTWOOD_MAX_MESSAGE_BYTES", default_value_t = 1 << 20)]
    pub max_message_bytes: usize,

    /// What a null or NaN feature makes of its record: `dead-letter`, or `score` it with the
    /// feature missing (trees take their missing-value branch; drift windows count and test
    /// the share of missing values).
    #[arg(
        long,
        env = "DRIFTWOOD_MISSING_FEATURES",
        default_value = "dead-letter"
    )]
    pub missing_features: MissingFeatures,

    /// Check the settings, model, input schema and Kafka client properties, print what would
    /// run, and exit without connecting to Kafka.
    #[arg(long)]
    pub check_config: bool,

    /// Where the HTTP sidecar listens (/health, /ready, /metrics).
    #[arg(long, env = "DRIFTWOOD_HTTP_ADDR", default_value = "0.0.0.0:9090")]
    pub http_addr: SocketAddr,

    /// Create the input, output and dead-letter topics if they are missing.
    #[arg(long, env = "DRIFTWOOD_CREATE_TOPICS")]
    pub create_topics: bool,

    /// Partitions for topics created with --create-topics.
    #[arg(long, env = "DRIFTWOOD_TOPIC_PARTITIONS", default_value_t = 3)]
    pub topic_partitions: i32,

    /// Replication factor for topics created with --create-topics.
    #[arg(long, env = "DRIFTWOOD_TOPIC_REPLICATION", default_value_t = 1)]
    pub topic_replication: i32,

    /// Where a new consumer group starts reading: earliest or latest.
    #[arg(long, env = "DRIFTWOOD_AUTO_OFFSET_RESET", default_value = "earliest")]
    pub auto_offset_reset: String,

    /// Records sent but not yet acknowledged before fetching pauses.
    #[arg(long, env = "DRIFTWOOD_MAX_IN_FLIGHT", default_value_t = 10_000)]
    pub max_in_flight: usize,

    /// How long shutdown may take to finish in-flight records and commit (e.g. 20s).
    #[arg(long, env = "DRIFTWOOD_SHUTDOWN_GRACE", default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// How long a rebalance waits for a revoked partition's outputs before letting the
    /// partition go (the next owner reads what was not acknowledged again). Shorter than the
    /// consumer's session.timeout.ms and max.poll.interval.ms.
    #[arg(long, env = "DRIFTWOOD_REVOKE_DRAIN", default_value = "10s", value_parser = humantime::parse_duration)]
    pub revoke_drain: Duration,

    /// Tuning preset: `throughput` (large batches, linger, lz4) or `latency` (small batches,
    /// no linger). `--kafka-option` values override either.
    #[arg(
        long,
        env = "DRIFTWOOD_PROFILE",
        value_enum,
        default_value = "throughput"
    )]
    pub profile: Profile,

    /// Forward input messages unchanged to the output topic, without decoding or scoring.
    /// Measures the broker-bound ceiling (`driftwood bench`); not for production.
    #[arg(long, env = "DRIFTWOOD_PASS_THROUGH")]
    pub pass_through: bool,

    /// How often librdkafka reports statistics (consumer lag, broker state).
    #[arg(long, env = "DRIFTWOOD_STATS_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub stats_interval: Duration,

    /// at-least-once: an input offset is committed once its output is acknowledged (a crash
    /// may output a record twice). exactly-once: outputs and input offsets are committed
    /// together in Kafka transactions; `read_committed` readers see each output once.
    #[arg(
        long,
        env = "DRIFTWOOD_PROCESSING_GUARANTEE",
        value_enum,
        default_value = "at-least-once"
    )]
    pub processing_guarantee: ProcessingGuarantee,

    /// With exactly-once: how long a transaction collects outputs before it commits (0s:
    /// one transaction per batch). Longer means fewer commits and more latency.
    #[arg(long, env = "DRIFTWOOD_TRANSACTION_INTERVAL", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub transaction_interval: Duration,

    /// Let the producer run without idempotence when the cluster cannot grant idempotent
    /// writes: a retried output may then be duplicated or reordered.
    #[arg(long, env = "DRIFTWOOD_ALLOW_NON_IDEMPOTENT_PRODUCER")]
    pub allow_non_idempotent_producer: bool,

    /// librdkafka property KEY=VALUE for both clients (repeatable); prefix the key with
    /// `consumer.` or `producer.` for one client only. In the environment, separate entries
    /// with `;`.
    #[arg(long = "kafka-option", env = "DRIFTWOOD_KAFKA_OPTIONS", hide_env_values = true, value_delimiter = ';', value_parser = parse_key_value)]
    pub kafka_options: Vec<(String, String)>,

    /// librdkafka property KEY=PATH whose value is read from the file at PATH (secrets).
    #[arg(long = "kafka-option-file", env = "DRIFTWOOD_KAFKA_OPTION_FILES", hide_env_values = true, value_delimiter = ';', value_parser = parse_key_value)]
    pub kafka_option_files: Vec<(String, String)>,

    /// librdkafka property KEY=VAR whose value is read from environment variable VAR.
    #[arg(long = "kafka-option-env", env = "DRIFTWOOD_KAFKA_OPTION_ENVS", hide_env_values = true, value_delimiter = ';', value_parser = parse_key_value)]
    pub kafka_option_envs: Vec<(String, String)>,
}

impl RunConfig {
    /// A configuration with every default (after `DRIFTWOOD_*` environment values, as the
    /// command line reads them), pointed at `bootstrap_servers`. A malformed environment
    /// value is an error naming the flag, never an exit.
    pub fn defaults(bootstrap_servers: &str) -> Result<Self> {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            run: RunConfig,
        }
        let mut run = Wrapper::try_parse_from(["driftwood"])
            .map_err(|e| Error::Config(e.to_string().trim_end().to_string()))?
            .run;
        run.bootstrap_servers = Some(bootstrap_servers.to_string());
        Ok(run)
    }

    /// The bootstrap servers after fallbacks.
    pub fn brokers(&self) -> String {
        bootstrap_servers(self.bootstrap_servers.as_deref())
    }

    /// Checks everything that can be checked without a broker; the error names the setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.brokers().trim().is_empty() {
            return bad("--bootstrap-servers is empty".into());
        }
        for (flag, topic) in [
            ("--input-topic", &self.input_topic),
            ("--output-topic", &self.output_topic),
            ("--dlq-topic", &self.dlq_topic),
            ("--drift-topic", &self.drift_topic),
        ] {
            if topic.is_empty()
                || topic.len() > 249
                || !topic
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return bad(format!(
                    "{flag} {topic:?} is not a valid Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)"
                ));
            }
        }
        if [&self.output_topic, &self.dlq_topic, &self.drift_topic].contains(&&self.input_topic) {
            return bad(format!(
                "--input-topic {:?} must differ from --output-topic, --dlq-topic and --drift-topic, or driftwood would read its own output",
                self.input_topic
            ));
        }
        self.models.validate()?;
        let framed_in = self.input_format == InputFormat::Confluent
            || self.labels.labels_format == InputFormat::Confluent;
        self.schema_registry.validate(framed_in)?;
        if self.schema_registry.schema_registry_url.is_some()
            && self.input_format == InputFormat::Confluent
            && matches!(self.models.route_by, Some(RouteBy::Field(_)))
        {
            return bad("--route-by field: reads the configured writer schema; with --schema-registry-url, route by header".into());
        }
        self.drift.validate()?;
        let registry = self.schema_registry.schema_registry_url.is_some();
        self.labels.validate(&self.input_topic, registry)?;
        if self.group_id.is_empty() {
            return bad("--group-id is empty".into());
        }
        if self
            .instance_id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return bad("--instance-id is empty (leave it out for dynamic membership)".into());
        }
        if !matches!(self.auto_offset_reset.as_str(), "earliest" | "latest") {
            return bad(format!(
                "--auto-offset-reset must be earliest or latest, got {:?}",
                self.auto_offset_reset
            ));
        }
        if self.max_in_flight == 0 {
            return bad("--max-in-flight must be at least 1".into());
        }
        if self.topic_partitions < 1 || self.topic_replication < 1 {
            return bad("--topic-partitions and --topic-replication must be at least 1".into());
        }
        if self.shutdown_grace.is_zero() {
            return bad("--shutdown-grace must be more than 0s".into());
        }
        self.check_guarantee()?;
        self.check_option_keys()
    }

    /// Refuses flags that exactly-once cannot go with.
    fn check_guarantee(&self) -> Result<()> {
        if self.processing_guarantee != ProcessingGuarantee::ExactlyOnce {
            return Ok(());
        }
        if self.allow_non_idempotent_producer {
            return Err(Error::Config(
                "--allow-non-idempotent-producer cannot go with exactly-once: transactions need idempotence".into(),
            ));
        }
        if self.pass_through {
            return Err(Error::Config(
                "--pass-through is a benchmark of at-least-once delivery".into(),
            ));
        }
        Ok(())
    }

    /// The static group membership id, with `--static-membership`.
    pub fn static_member_id(&self) -> Option<String> {
        self.static_membership.then(|| self.instance())
    }

    /// The producer's `transactional.id` in exactly-once mode: stable across restarts of
    /// this instance, so that a restarted instance fences its previous life and aborts what
    /// it left open, and distinct between instances.
    pub fn transactional_id(&self) -> String {
        format!("driftwood-{}-{}", self.group_id, self.instance())
    }

    /// The loop's settings, in its own terms.
    pub(crate) fn loop_settings(&self) -> crate::pipeline::LoopSettings {
        use crate::pipeline::scorer::OutputTopics;
        crate::pipeline::LoopSettings {
            input_topic: self.input_topic.clone(),
            group_id: self.group_id.clone(),
            outputs: OutputTopics {
                predictions: self.output_topic.clone(),
                dead_letters: self.dlq_topic.clone(),
                drift_reports: self.drift_topic.clone(),
                rollouts: self.models.rollout_topic.clone(),
                schema_ids: Default::default(),
            },
            register_outputs: self.schema_registry.output_format == OutputFormat::Confluent,
            exactly_once: (self.processing_guarantee == ProcessingGuarantee::ExactlyOnce)
                .then_some(self.transaction_interval),
            revoke_drain: self.revoke_drain,
            pass_through: self.pass_through,
            drift: self.drift.settings(self.instance()),
            explain: self.models.explain(),
            max_batch: self.profile.max_batch(),
            max_in_flight: self.max_in_flight,
            labels: self.labels.settings(),
            review: self.labels.review(),
        }
    }

    /// This instance's id in drift reports.
    pub fn instance(&self) -> String {
        self.instance_id.clone().unwrap_or_else(hostname)
    }
}

/// Shows every setting but the values of librdkafka pass-through options, which may be
/// secrets.
impl std::fmt::Debug for RunConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunConfig")
            .field("bootstrap_servers", &self.brokers())
            .field("group_id", &self.group_id)
            .field("input_topic", &self.input_topic)
            .field("output_topic", &self.output_topic)
            .field("dlq_topic", &self.dlq_topic)
            .field("drift_topic", &self.drift_topic)
            .field("models", &self.models)
            .field("rest", &self.rest)
            .field("rest_body_limit", &self.rest_body_limit)
            .field("drift", &self.drift)
            .field("input_schema", &self.input_schema)
            .field("input_format", &self.input_format)
            .field("schema_registry", &self.schema_registry)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("missing_features", &self.missing_features)
            .field("http_addr", &self.http_addr)
            .field("create_topics", &self.create_topics)
            .field("auto_offset_reset", &self.auto_offset_reset)
            .field("max_in_flight", &self.max_in_flight)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("revoke_drain", &self.revoke_drain)
            .field("profile", &self.profile)
            .field("pass_through", &self.pass_through)
            .field("instance_id", &self.instance())
            .field("static_membership", &self.static_membership)
            .field("processing_guarantee", &self.processing_guarantee)
            .field("transaction_interval", &self.transaction_interval)
            .field("kafka_option_keys", &self.option_keys())
            .finish_non_exhaustive()
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = RunConfig::defaults("127.0.0.1:9092").unwrap();
        c.validate().unwrap();
        assert_eq!(c.input_topic, "features");
        assert_eq!(c.shutdown_grace, Duration::from_secs(20));
        let clients = c.kafka_clients().unwrap();
        assert_eq!(
            clients.consumer.get("enable.auto.offset.store"),
            Some("false")
        );
    }

    #[test]
    fn static_membership_makes_the_instance_id_the_group_instance_id() {
        let mut c = RunConfig::defaults("b:9092").unwrap();
        c.instance_id = None;
        c.static_membership = false;
        let dynamic = c.kafka_clients().unwrap();
        assert_eq!(dynamic.consumer.get("group.instance.id"), None);

        c.instance_id = Some("driftwood-0".into());
        let named = c.kafka_clients().unwrap();
        assert_eq!(
            named.consumer.get("group.instance.id"),
            None,
            "named, still dynamic"
        );

        c.static_membership = true;
        let clients = c.kafka_clients().unwrap();
        assert_eq!(
            clients.consumer.get("group.instance.id"),
            Some("driftwood-0")
        );
        assert_eq!(clients.producer.get("group.instance.id"), None);
        assert_eq!(c.instance(), "driftwood-0");

        c.kafka_options = vec![("group.instance.id".into(), "x".into())];
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("driftwood sets group.instance.id itself"),
            "{err}"
        );
    }

    #[test]
    fn invalid_settings_name_the_flag() {
        let mut c = RunConfig::defaults("b:9092").unwrap();
        c.output_topic = c.input_topic.clone();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("--input-topic")
        );

        let mut c = RunConfig::defaults("b:9092").unwrap();
        c.kafka_options = vec![("enable.auto.offset.store".into(), "true".into())];
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("sets enable.auto.offset.store itself")
        );

        let mut c = RunConfig::defaults("b:9092").unwrap();
        c.dlq_topic = "bad topic!".into();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("--dlq-topic")
        );

        assert!(
            parse_key_value("sasl.password")
                .unwrap_err()
                .contains("KEY=VALUE")
        );
    }
}

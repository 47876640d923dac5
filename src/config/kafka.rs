//! The librdkafka side of the configuration: tuning profiles, pass-through options routed to
//! one client or all, secrets read from files or the environment, and the checks that keep
//! at-least-once delivery intact whatever is passed through.

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;

use super::{ProcessingGuarantee, RunConfig};
use crate::error::{Error, Result};
use crate::kafka::KafkaClients;

/// The exactly-once producer's `connections.max.idle.ms` (see where it is set).
const EOS_IDLE_CLOSE_MS: &str = "20000";

/// Properties driftwood sets itself because at-least-once delivery depends on them.
const MANAGED_KEYS: &[&str] = &[
    "enable.auto.offset.store",
    "group.id",
    "bootstrap.servers",
    "enable.partition.eof",
    "group.instance.id",
    "transactional.id",
];

/// Consumer settings that KIP-848's protocol moves to the broker. librdkafka refuses them
/// only when the client is created (which connects), so they are checked here as well.
const BROKER_SIDE_WITH_CONSUMER_PROTOCOL: [(&str, &str); 4] = [
    (
        "session.timeout.ms",
        "the broker sets it (group.consumer.session.timeout.ms)",
    ),
    (
        "heartbeat.interval.ms",
        "the broker sets it (group.consumer.heartbeat.interval.ms)",
    ),
    (
        "partition.assignment.strategy",
        "use group.remote.assignor instead",
    ),
    ("group.protocol.type", "it belongs to the classic protocol"),
];

/// A tuning preset for librdkafka and the batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Fewer, larger requests: best records per second.
    Throughput,
    /// Send and fetch at once: lowest event-to-output latency.
    Latency,
}

impl Profile {
    /// Most messages scored together in one batch.
    pub fn max_batch(self) -> usize {
        match self {
            Profile::Throughput => 1024,
            Profile::Latency => 64,
        }
    }

    /// librdkafka settings of the preset for one client. Queues are bounded so memory is:
    /// at most 4 MiB (throughput) or 32 MiB (latency) of prefetched input and 64 MiB of
    /// unsent output.
    fn settings(self, role: ClientRole) -> &'static [(&'static str, &'static str)] {
        match (self, role) {
            (Profile::Throughput, ClientRole::Consumer) => &[
                ("fetch.wait.max.ms", "100"),
                // Once the prefetch queue is full, librdkafka waits this long before it
                // fetches again. Its default (1000 ms) is longer than the loop takes to empty
                // the queue, so the loop sat idle: 110k records/s on a stock client's input,
                // 365k with 20 ms. 0 makes the fetch thread spin (265k, 5 µs a record).
                // The queue must outlast the wait and a fetch: 4 MiB lasts 11 ms at 360 MB/s,
                // about 1.4 million records/s of the bundled model's, beyond one loop.
                ("fetch.queue.backoff.ms", "10"),
                // A full queue of small records holds several times its payload (each
                // message's fetch buffer and librdkafka's per-message state): 32 MiB took
                // an instance's peak memory from about 105 MB to 165 to 190, and under a
                // CPU limit (a pod's) the fetch thread then spent most of its time faulting
                // in fresh pages: two instances limited to 0.3 cores scored 91k to 102k
                // records/s together, against 112k to 178k with 4 MiB (docs/performance.md).
                ("queued.max.messages.kbytes", "4096"),
            ],
            (Profile::Throughput, ClientRole::Producer) => &[
                ("linger.ms", "5"),
                ("batch.num.messages", "10000"),
                ("batch.size", "1000000"),
                ("compression.type", "lz4"),
                ("queue.buffering.max.kbytes", "65536"),
            ],
            (Profile::Latency, ClientRole::Consumer) => &[
                // Apache Kafka answers a fetch as soon as a byte is there, so a long wait
                // costs no latency; a short one only multiplies empty fetches while idle
                // (5 ms: 45 ms of broker CPU a second per idle instance, 100 ms: 19).
                ("fetch.wait.max.ms", "100"),
                ("fetch.queue.backoff.ms", "0"),
                ("fetch.error.backoff.ms", "0"),
                ("queued.max.messages.kbytes", "32768"),
            ],
            (Profile::Latency, ClientRole::Producer) => &[
                // 1 ms batches a few records per request: at 10k records/s, linger 0 means
                // 10k requests/s, which costs the broker more than the millisecond saves.
                ("linger.ms", "1"),
                ("compression.type", "none"),
                ("queue.buffering.max.kbytes", "65536"),
            ],
            (_, ClientRole::Admin) => &[],
        }
    }
}

/// Parses `KEY=VALUE`.
pub fn parse_key_value(s: &str) -> std::result::Result<(String, String), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {:?}", redact_after_key(s)))?;
    let key = key.trim();
    if key.is_empty() {
        return Err("empty key in KEY=VALUE".into());
    }
    Ok((key.to_string(), value.to_string()))
}

/// Shows at most the start of a malformed option, so a secret pasted without `=` is not echoed.
fn redact_after_key(s: &str) -> String {
    let shown: String = s.chars().take(24).collect();
    if shown.len() < s.len() {
        format!("{shown}…")
    } else {
        shown
    }
}

/// Which client a librdkafka property is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRole {
    /// The input consumer.
    Consumer,
    /// The output producer.
    Producer,
    /// The admin client that creates topics.
    Admin,
}

impl RunConfig {
    /// Builds and checks every client's configuration without connecting: librdkafka
    /// rejects unknown names and malformed values, and settings that would break
    /// at-least-once delivery are refused with the reason.
    pub fn kafka_clients(&self) -> Result<KafkaClients> {
        let options = self.resolved_options()?;
        let clients = KafkaClients {
            consumer: self.client_config(ClientRole::Consumer, &options),
            producer: self.client_config(ClientRole::Producer, &options),
            admin: self.client_config(ClientRole::Admin, &options),
        };
        self.check_delivery_guarantees(&clients)?;
        check_group_protocol(&clients.consumer)?;
        self.labels.check_assignor(&clients.consumer)?;
        self.check_revoke_drain(&clients.consumer)?;
        for (role, config) in [
            (ClientRole::Consumer, &clients.consumer),
            (ClientRole::Producer, &clients.producer),
            (ClientRole::Admin, &clients.admin),
        ] {
            config.create_native_config().map_err(|e| match e {
                // librdkafka's message carries the value, which may be a secret: leave it out.
                KafkaError::ClientConfig(_, description, key, _) => {
                    Error::Config(format!("Kafka setting {key:?}: {description}"))
                }
                other => Error::Config(format!("Kafka {role:?} settings: {other}")),
            })?;
        }
        Ok(clients)
    }

    /// Refuses pass-through values that would let an input offset be committed before its
    /// output is safe.
    fn check_delivery_guarantees(&self, clients: &KafkaClients) -> Result<()> {
        let refuse = |key: &str, why: &str| {
            Err(Error::Config(format!(
                "Kafka setting {key:?} is refused: {why}"
            )))
        };
        if !matches!(clients.producer.get("acks"), Some("all" | "-1")) {
            return refuse(
                "acks",
                "it must be all (or -1): an input offset is committed once its output is \
                 acknowledged, and only acks=all keeps that output when a broker fails",
            );
        }
        if clients.producer.get("enable.idempotence") != Some("true")
            && !self.allow_non_idempotent_producer
        {
            return refuse(
                "enable.idempotence",
                "without it a retried output can be duplicated or reordered; pass \
                 --allow-non-idempotent-producer if the cluster cannot grant idempotent writes",
            );
        }
        if self.processing_guarantee == ProcessingGuarantee::ExactlyOnce {
            if clients.consumer.get("enable.auto.commit") != Some("false") {
                return refuse(
                    "enable.auto.commit",
                    "with exactly-once, input offsets are committed inside each transaction; \
                     an automatic commit would commit them outside it",
                );
            }
            if clients.consumer.get("isolation.level") != Some("read_committed") {
                return refuse(
                    "isolation.level",
                    "with exactly-once, inputs written in transactions must be read committed",
                );
            }
        } else if clients.consumer.get("enable.auto.commit") != Some("true") {
            return refuse(
                "enable.auto.commit",
                "driftwood commits through librdkafka's auto-commit of the offsets it stores \
                 once outputs are acknowledged; without it nothing is committed",
            );
        }
        Ok(())
    }

    /// Refuses a revoke drain that outlasts the consumer's timeouts: a member still draining
    /// when one runs out is evicted from its group mid-rebalance.
    fn check_revoke_drain(&self, consumer: &ClientConfig) -> Result<()> {
        let ms = |key: &str, default: u128| {
            consumer
                .get(key)
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let mut limits = vec![("max.poll.interval.ms", ms("max.poll.interval.ms", 300_000))];
        // With KIP-848's protocol the session timeout is the broker's to set.
        if consumer
            .get("group.protocol")
            .is_none_or(|p| p == "classic")
        {
            limits.push(("session.timeout.ms", ms("session.timeout.ms", 45_000)));
        }
        for (key, limit) in limits {
            if self.revoke_drain.as_millis() >= limit {
                return Err(Error::Config(format!(
                    "--revoke-drain ({}) must be shorter than the consumer's {key} ({limit} ms): \
                     a member still draining when it runs out is evicted from its group",
                    humantime::format_duration(self.revoke_drain)
                )));
            }
        }
        Ok(())
    }

    /// Refuses pass-through keys for properties driftwood sets itself.
    pub(super) fn check_option_keys(&self) -> Result<()> {
        for (key, _) in self.all_option_keys() {
            let bare = strip_role(key).1;
            if MANAGED_KEYS.contains(&bare) {
                return Err(Error::Config(format!(
                    "--kafka-option {key}: driftwood sets {bare} itself (use the dedicated flag)"
                )));
            }
        }
        Ok(())
    }

    fn all_option_keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.kafka_options
            .iter()
            .chain(&self.kafka_option_files)
            .chain(&self.kafka_option_envs)
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Pass-through options with file and environment references read.
    fn resolved_options(&self) -> Result<Vec<(String, String)>> {
        let mut out = self.kafka_options.clone();
        for (key, path) in &self.kafka_option_files {
            let value = std::fs::read_to_string(path).map_err(|e| {
                Error::Config(format!(
                    "--kafka-option-file {key}: cannot read {path}: {e}"
                ))
            })?;
            out.push((
                key.clone(),
                value.trim_end_matches(['\n', '\r']).to_string(),
            ));
        }
        for (key, var) in &self.kafka_option_envs {
            let value = std::env::var(var).map_err(|_| {
                Error::Config(format!(
                    "--kafka-option-env {key}: environment variable {var} is not set"
                ))
            })?;
            out.push((key.clone(), value));
        }
        Ok(out)
    }

    /// The librdkafka configuration of one client, from options already resolved.
    fn client_config(&self, role: ClientRole, options: &[(String, String)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.brokers())
            .set("client.id", format!("driftwood-{}", super::hostname()));
        match role {
            ClientRole::Consumer => {
                config
                    // Statistics feed the lag gauge and broker reachability.
                    .set(
                        "statistics.interval.ms",
                        self.stats_interval.as_millis().to_string(),
                    )
                    .set("group.id", &self.group_id)
                    // Offsets are stored by driftwood once the output is acknowledged,
                    // then committed by librdkafka in the background.
                    .set("enable.auto.offset.store", "false")
                    .set("enable.auto.commit", "true")
                    .set("auto.commit.interval.ms", "1000")
                    .set("auto.offset.reset", &self.auto_offset_reset)
                    .set("enable.partition.eof", "false");
                if let Some(id) = &self.static_member_id() {
                    config.set("group.instance.id", id);
                }
                if self.processing_guarantee == ProcessingGuarantee::ExactlyOnce {
                    config
                        .set("enable.auto.commit", "false")
                        .set("isolation.level", "read_committed");
                }
            }
            ClientRole::Producer => {
                config
                    // Idempotence keeps each output partition in order across retries.
                    .set("enable.idempotence", "true")
                    .set("acks", "all")
                    .set(
                        "message.max.bytes",
                        (self.max_message_bytes + 65_536).to_string(),
                    );
                if self.processing_guarantee == ProcessingGuarantee::ExactlyOnce {
                    config.set("transactional.id", self.transactional_id());
                    // A commit that lost its group coordinator in a broker restart can wait
                    // for a broker state change that never comes (confluentinc/librdkafka
                    // #5456, #5511): closing idle connections makes one, well inside the
                    // 60 s commit deadline. While records flow no connection is idle.
                    config.set("connections.max.idle.ms", EOS_IDLE_CLOSE_MS);
                }
            }
            ClientRole::Admin => {}
        }
        for (key, value) in self.profile.settings(role) {
            config.set(*key, *value);
        }
        for (key, value) in options {
            let (only, bare) = strip_role(key);
            if only.is_none_or(|r| r == role) {
                config.set(bare, value);
            }
        }
        config
    }

    /// Option keys (never values) for logging.
    pub fn option_keys(&self) -> Vec<String> {
        self.all_option_keys().map(|(k, _)| k.to_string()).collect()
    }
}

/// Refuses classic-protocol settings next to `group.protocol=consumer`.
fn check_group_protocol(consumer: &ClientConfig) -> Result<()> {
    if consumer.get("group.protocol") != Some("consumer") {
        return Ok(());
    }
    match BROKER_SIDE_WITH_CONSUMER_PROTOCOL
        .iter()
        .find(|(key, _)| consumer.get(key).is_some())
    {
        Some((key, why)) => Err(Error::Config(format!(
            "Kafka setting {key:?} is not supported with group.protocol=consumer: {why}"
        ))),
        None => Ok(()),
    }
}

fn strip_role(key: &str) -> (Option<ClientRole>, &str) {
    if let Some(rest) = key.strip_prefix("consumer.") {
        (Some(ClientRole::Consumer), rest)
    } else if let Some(rest) = key.strip_prefix("producer.") {
        (Some(ClientRole::Producer), rest)
    } else {
        (None, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_files_and_env_and_are_routed_by_role() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("pw");
        std::fs::write(&secret, "hunter2\n").unwrap();
        let mut c = RunConfig::defaults("b:9092").unwrap();
        c.kafka_option_files = vec![("sasl.password".into(), secret.display().to_string())];
        c.kafka_options = vec![("producer.linger.ms".into(), "0".into())];
        let KafkaClients {
            consumer, producer, ..
        } = c.kafka_clients().unwrap();
        assert_eq!(consumer.get("sasl.password"), Some("hunter2"));
        assert_eq!(consumer.get("linger.ms"), None);
        assert_eq!(
            producer.get("linger.ms"),
            Some("0"),
            "options override the profile"
        );
        assert_eq!(producer.get("compression.type"), Some("lz4"));
        let shown = format!("{c:?}");
        assert!(
            shown.contains("sasl.password") && !shown.contains("hunter2"),
            "{shown}"
        );

        c.kafka_option_envs = vec![("sasl.username".into(), "DRIFTWOOD_TEST_UNSET_VAR".into())];
        let err = c.kafka_clients().err().unwrap().to_string();
        assert!(err.contains("DRIFTWOOD_TEST_UNSET_VAR is not set"), "{err}");
    }

    #[test]
    fn an_exactly_once_producer_closes_idle_connections_unless_told_otherwise() {
        let mut c = RunConfig::defaults("b:9092").unwrap();
        let idle = |c: &RunConfig| {
            c.kafka_clients()
                .unwrap()
                .producer
                .get(IDLE)
                .map(String::from)
        };
        const IDLE: &str = "connections.max.idle.ms";
        assert_eq!(idle(&c), None, "at-least-once keeps librdkafka's default");
        c.processing_guarantee = ProcessingGuarantee::ExactlyOnce;
        assert_eq!(idle(&c).as_deref(), Some(EOS_IDLE_CLOSE_MS));
        c.kafka_options = vec![("producer.connections.max.idle.ms".into(), "0".into())];
        assert_eq!(idle(&c).as_deref(), Some("0"));
    }

    /// `--kafka-option` values that would break at-least-once delivery, bare or prefixed.
    #[test]
    fn settings_that_break_at_least_once_are_refused_with_the_reason() {
        let refused = |options: &[(&str, &str)], allow_non_idempotent: bool| {
            let mut c = RunConfig::defaults("b:9092").unwrap();
            c.kafka_options = options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            c.allow_non_idempotent_producer = allow_non_idempotent;
            c.validate()
                .and_then(|()| c.kafka_clients().map(|_| ()))
                .err()
                .map(|e| e.to_string())
        };
        for acks in [("acks", "0"), ("producer.acks", "1")] {
            let err = refused(&[acks], false).unwrap();
            assert!(
                err.contains("\"acks\" is refused") && err.contains("acks=all"),
                "{err}"
            );
        }
        assert_eq!(refused(&[("acks", "-1")], false), None);

        let err = refused(&[("producer.enable.idempotence", "false")], false).unwrap();
        assert!(
            err.contains("\"enable.idempotence\"")
                && err.contains("--allow-non-idempotent-producer"),
            "{err}"
        );
        assert_eq!(
            refused(&[("producer.enable.idempotence", "false")], true),
            None,
            "the explicit opt-out"
        );

        let err = refused(&[("consumer.enable.auto.commit", "false")], false).unwrap();
        assert!(err.contains("\"enable.auto.commit\""), "{err}");

        for key in [
            "enable.auto.offset.store",
            "consumer.enable.auto.offset.store",
        ] {
            let err = refused(&[(key, "true")], false).unwrap();
            assert!(
                err.contains("sets enable.auto.offset.store itself"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_revoke_drain_must_end_before_the_consumer_is_evicted() {
        let mut c = RunConfig::defaults("b:9092").unwrap();
        c.kafka_clients().unwrap();
        c.revoke_drain = std::time::Duration::from_secs(45);
        let err = c.kafka_clients().err().unwrap().to_string();
        assert!(
            err.contains("--revoke-drain (45s)") && err.contains("session.timeout.ms (45000 ms)"),
            "{err}"
        );
        c.revoke_drain = std::time::Duration::from_secs(10);
        c.kafka_options = vec![
            ("consumer.max.poll.interval.ms".into(), "8000".into()),
            ("consumer.session.timeout.ms".into(), "6000".into()),
        ];
        let err = c.kafka_clients().err().unwrap().to_string();
        assert!(err.contains("max.poll.interval.ms (8000 ms)"), "{err}");
    }
}

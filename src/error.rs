//! The library's error type. `main` wraps it in `anyhow` for reporting.

use std::path::PathBuf;

/// Everything that can go wrong inside driftwood, by cause.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is invalid; the message names the flag or setting.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The store of predictions awaiting their labels on disk (`--awaiting-dir`) failed: the
    /// disk is full or broken. Not retried: the join's state would be incomplete.
    #[error("awaiting-predictions store in {path}: {message}")]
    Store {
        /// Its directory.
        path: PathBuf,
        /// fjall's error.
        message: String,
    },

    /// An Avro schema could not be parsed or does not fit the model.
    #[error("schema {what}: {message}")]
    Schema {
        /// Which schema (file name or role).
        what: String,
        /// What is wrong with it.
        message: String,
    },

    /// The schema registry refused a request for good (credentials, an incompatible schema),
    /// or stayed unreachable where driftwood cannot go on without it (registering the output
    /// schemas at start-up).
    #[error("schema registry: {context}: {message}")]
    SchemaRegistry {
        /// What driftwood asked for.
        context: String,
        /// What the registry (or the connection) said.
        message: String,
    },

    /// A model artifact is missing, corrupt or inconsistent.
    #[error("model artifact {path}: {message}")]
    Model {
        /// The artifact directory or file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// The model registry cannot do what was asked.
    #[error("model registry: {0}")]
    ModelRegistry(#[from] RegistryError),

    /// The cluster cannot run transactions (`--processing-guarantee exactly-once`).
    #[error(
        "--processing-guarantee exactly-once needs Kafka transactions, and the cluster did not grant them: {source} (brokers 0.11+ with the transaction state log writable: transaction.state.log.replication.factor and min.isr must fit the cluster)"
    )]
    NoTransactions {
        /// What librdkafka said.
        #[source]
        source: rdkafka::error::KafkaError,
    },

    /// Training failed (bad data, smartcore error).
    #[error("training failed: {0}")]
    Training(String),

    /// A Kafka client operation failed.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What driftwood was doing.
        context: String,
        /// The librdkafka error.
        #[source]
        source: rdkafka::error::KafkaError,
    },

    /// The HTTP sidecar could not start.
    #[error("http sidecar on {addr}: {source}")]
    Http {
        /// The address it tried to bind.
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Outputs cannot be written: the broker refuses them for good (authorization, a record
    /// it will never take, a fatal producer error).
    #[error("cannot write to {topic}: {cause}")]
    Output {
        /// The topic written to.
        topic: String,
        /// Why, as the broker or librdkafka said it.
        cause: String,
    },

    /// Shutdown ran out of its grace period with outputs unacknowledged: their input records
    /// were not committed and will be read again.
    #[error(
        "stopped with {unacknowledged} outputs unacknowledged after the {grace:?} grace period; their records were not committed and will be read again"
    )]
    Unfinished {
        /// Outputs the broker had not acknowledged.
        unacknowledged: usize,
        /// The grace period that ran out.
        grace: std::time::Duration,
    },

    /// A Kafka client failed for good (a fatal librdkafka error); it can do nothing more.
    #[error("the Kafka {client} failed for good: {reason}")]
    Fatal {
        /// `consumer` or `producer`.
        client: &'static str,
        /// librdkafka's reason.
        reason: String,
    },

    /// The consumer loop did not stop within the grace period (plus a margin to leave the
    /// group).
    #[error(
        "the consumer did not stop within the {0:?} grace period; uncommitted records will be read again"
    )]
    StopTimedOut(std::time::Duration),

    /// The consumer loop ended without being asked to.
    #[error("the consumer loop {0}")]
    LoopEnded(&'static str),

    /// `driftwood healthcheck`: the sidecar did not answer 200.
    #[error("{0}")]
    Unhealthy(String),

    /// A thread, runtime or child process driftwood needs could not be started.
    #[error("cannot start {what}: {source}")]
    Start {
        /// What it tried to start.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A tool beside the data path (produce, demo, bench) could not finish its job.
    #[error("{tool}: {message}")]
    Tool {
        /// `produce`, `demo` or `bench`.
        tool: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// Why the model registry refused a request, for a caller to match on.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The model has no such version.
    #[error("{name} has no version {version:?} in {root} (versions: {versions})")]
    NoSuchVersion {
        /// The model.
        name: String,
        /// The version asked for.
        version: String,
        /// The registry's root.
        root: PathBuf,
        /// The versions it has, comma-separated.
        versions: String,
    },
    /// A version, once written, is never overwritten.
    #[error("{0} exists: a version is never overwritten; write another version")]
    VersionExists(PathBuf),
    /// A pointer file could not be parsed.
    #[error("{path}: not a model pointer: {message}")]
    BadPointer {
        /// The pointer file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A rollback was asked of a model no version of which serves.
    #[error("{0} has no serving version to roll back from")]
    NotServing(String),
    /// A rollback from a version that no longer serves.
    #[error("{name} no longer serves version {from} (it serves {serving})")]
    NoLongerServes {
        /// The model.
        name: String,
        /// The version the rollback was to leave.
        from: String,
        /// The version serving.
        serving: String,
    },
    /// `--require-evaluation`: the version has no passed evaluation against the version
    /// serving now (`driftwood models evaluate`).
    #[error("{name} version {version} may not serve without an evaluation: {why}")]
    NotEvaluated {
        /// The model.
        name: String,
        /// The version refused.
        version: String,
        /// Why its evaluation does not count.
        why: Unevaluated,
    },
    /// A rollout was asked of a model whose rollout is running.
    #[error(
        "{name} is rolling out version {candidate} already (driftwood models abort {name} stops it)"
    )]
    RolloutRunning {
        /// The model.
        name: String,
        /// The version being rolled out.
        candidate: String,
    },
    /// A rollout of the version that serves already.
    #[error("{name} serves version {version} already")]
    AlreadyServing {
        /// The model.
        name: String,
        /// The version.
        version: String,
    },
    /// A rollout decision on a rollout that moved since it was read (or ended).
    #[error("{name}'s rollout moved on from revision {revision}; the decision was not carried out")]
    RolloutMoved {
        /// The model.
        name: String,
        /// The revision the decision was made on.
        revision: u64,
    },
    /// An abort of a model with no running rollout.
    #[error("{0} has no running rollout")]
    NoRollout(String),
    /// A rollback of a model that has served one version only.
    #[error("{name} has served only version {version}: nothing to roll back to")]
    NothingToRollBackTo {
        /// The model.
        name: String,
        /// Its one version.
        version: String,
    },
}

/// Why a version's evaluation does not let it serve.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unevaluated {
    /// It was never evaluated.
    #[error(
        "it was never evaluated (driftwood models evaluate NAME --candidate VERSION --data FILE)"
    )]
    Never,
    /// Its evaluation failed the gate.
    #[error("its evaluation failed: {0}")]
    Failed(String),
    /// It was evaluated against another version than the one serving now.
    #[error("it was evaluated against version {evaluated_against}, but {serving} serves now")]
    AgainstAnother {
        /// The version it was compared with.
        evaluated_against: String,
        /// The version serving now (`none` when none does).
        serving: String,
    },
    /// Its artifact, or the serving one's, is not the one evaluated.
    #[error("the artifact of version {0} changed since the evaluation")]
    ArtifactChanged(String),
}

impl Error {
    /// Shorthand for an [`Error::Io`] with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for an [`Error::Tool`].
    pub fn tool(tool: &'static str, message: impl Into<String>) -> Self {
        Error::Tool {
            tool,
            message: message.into(),
        }
    }

    /// Shorthand for an [`Error::Start`].
    pub fn start(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Error::Start { what, source }
    }

    /// Shorthand for an [`Error::Kafka`] with context.
    pub fn kafka(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        Error::Kafka {
            context: context.into(),
            source,
        }
    }
}

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

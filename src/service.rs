//! `driftwood run` as a library call: load the model, serve the sidecar, run the consumer loop
//! on its own thread, and stop within the grace period when `shutdown` resolves.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{error, info};

mod models;

use crate::codec::decode::{FeatureDecoder, InputFormat};
use crate::codec::registry::{RegistryClient, RegistrySettings, WriterSchemas};
use crate::config::{RunConfig, flag_value};
use crate::error::{Error, Result};
use crate::http::rest::Rest;
use crate::http::sidecar;
use crate::kafka::KafkaClients;
use crate::kafka::admin;
use crate::model::{Model, Serving};
use crate::obs::health::Health;
use crate::obs::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::pipeline::serving::ServingSet;
use models::{Decoders, Start, open_model, routes, serving_set, shadow_candidate};

/// A running driftwood instance.
pub struct Service {
    http_addr: SocketAddr,
    metrics: Metrics,
    health: Arc<Health>,
    stop: Arc<AtomicBool>,
    grace: Duration,
    pipeline_done: oneshot::Receiver<Result<()>>,
    http_stop: oneshot::Sender<()>,
    http_task: JoinHandle<std::io::Result<()>>,
}

/// Binds the sidecar (and the REST twin, when enabled) and serves it on a task of its own
/// until the sender it hands back is used or dropped.
async fn serve_http(
    config: &RunConfig,
    health: &Arc<Health>,
    metrics: &Metrics,
    serving: &Serving,
) -> Result<(
    SocketAddr,
    oneshot::Sender<()>,
    JoinHandle<std::io::Result<()>>,
)> {
    let rest = config.rest.then(|| Rest {
        serving: serving.clone(),
        body_limit: config.rest_body_limit,
        metrics: metrics.clone(),
    });
    let (http_stop, http_stopped) = oneshot::channel::<()>();
    let (http_addr, server) = sidecar::bind(
        config.http_addr,
        health.clone(),
        metrics.clone(),
        rest,
        async {
            let _ = http_stopped.await;
        },
    )
    .await?;
    Ok((http_addr, http_stop, tokio::spawn(server)))
}

impl Service {
    /// Validates the configuration, loads the model and schema (failing fast on any problem),
    /// binds the sidecar, then starts the consumer loop. A broker that cannot be reached does
    /// not fail this: the loop keeps trying and `/ready` says 503 meanwhile.
    pub async fn start(config: RunConfig) -> Result<Self> {
        let Prepared {
            models,
            clients,
            schema_registry,
        } = prepare(&config)?;

        let metrics = Metrics::new();
        let health = Arc::new(Health::default());
        health.set_model_loaded(true);
        let settings = config.loop_settings();
        let default = &models.default.0.metadata;
        let (name, version) = (default.name.clone(), default.version.clone());
        let serving = serving_set(&config, models, &settings.drift, &metrics)?;
        let published = serving.published();
        let (http_addr, http_stop, http_task) =
            serve_http(&config, &health, &metrics, &published).await?;
        info!(%http_addr, model = %name, %version, config = ?config, "driftwood started");

        let stop = Arc::new(AtomicBool::new(false));
        let grace = config.shutdown_grace;
        let start = LoopStart {
            create_topics: config.create_topics.then(|| new_topics(&config)),
            grace,
        };
        let pipeline = Pipeline {
            settings,
            clients,
            metrics: metrics.clone(),
            health: health.clone(),
            schema_registry,
        };
        let pipeline_done = spawn_consumer(pipeline, serving, start, stop.clone())?;
        Ok(Service {
            http_addr,
            metrics,
            health,
            stop,
            grace,
            pipeline_done,
            http_stop,
            http_task,
        })
    }

    /// Where the sidecar listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The instance's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The instance's health flags.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// Runs until `shutdown` resolves (then stops gracefully) or the consumer loop fails.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::select! {
            () = shutdown => self.stop().await,
            result = &mut self.pipeline_done => {
                let error = match result {
                    Ok(Ok(())) => Error::LoopEnded("ended unexpectedly"),
                    Ok(Err(e)) => e,
                    Err(_) => Error::LoopEnded("panicked"),
                };
                error!(%error, "consumer loop failed");
                self.stop_http().await;
                Err(error)
            }
        }
    }

    /// Stops fetching, finishes in-flight records, commits and leaves the group, waiting at
    /// most the grace period; then stops the sidecar. Fails when the grace ran out before
    /// every output was acknowledged (their records will be read again).
    pub async fn stop(self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        // The loop bounds its own draining by the grace period; the margin covers leaving the
        // group.
        let outcome =
            tokio::time::timeout(self.grace + Duration::from_secs(2), self.pipeline_done).await;
        let result = match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::LoopEnded("panicked")),
            Err(_) => Err(Error::StopTimedOut(self.grace)),
        };
        let _ = self.http_stop.send(());
        let _ = self.http_task.await;
        result
    }

    async fn stop_http(self) {
        let _ = self.http_stop.send(());
        let _ = self.http_task.await;
    }
}

/// Runs the consumer loop on a thread of its own (it blocks in librdkafka's polls); the
/// receiver gets its result.
fn spawn_consumer(
    pipeline: Pipeline,
    serving: ServingSet,
    start: LoopStart,
    stop: Arc<AtomicBool>,
) -> Result<oneshot::Receiver<Result<()>>> {
    let (done_tx, done) = oneshot::channel();
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("driftwood-pipeline".into())
        .spawn(move || {
            let _ = done_tx.send(consumer_thread(pipeline, serving, start, &stop, &runtime));
        })
        .map_err(Error::start("the consumer thread"))?;
    Ok(done)
}

/// What the consumer thread does before and after the loop.
struct LoopStart {
    /// The topics to create first (`--create-topics`).
    create_topics: Option<admin::NewTopics>,
    /// How long the outputs in flight may take at shutdown.
    grace: std::time::Duration,
}

/// Creates the topics if asked to, then runs the loop until `stop` is set.
fn consumer_thread(
    pipeline: Pipeline,
    serving: ServingSet,
    start: LoopStart,
    stop: &AtomicBool,
    runtime: &tokio::runtime::Handle,
) -> Result<()> {
    if let Some(topics) = &start.create_topics
        && let Err(e) = admin::create_topics(topics, &pipeline.clients.admin, runtime, stop)
    {
        // Shutting down while the broker was still unreachable is not a failure.
        return if stop.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(e)
        };
    }
    if stop.load(Ordering::Relaxed) {
        return Ok(());
    }
    pipeline.run(serving, stop, start.grace)
}

/// What an instance scores with, loaded and checked before anything connects.
struct Prepared {
    /// The models that serve at start, with their decoders.
    models: Start,
    /// Every Kafka client's configuration, checked.
    clients: KafkaClients,
    /// The schema registry's settings, and the writer schemas fetched from it.
    schema_registry: Option<(RegistrySettings, Option<WriterSchemas>)>,
}

/// Checks everything `driftwood run` can check without a broker: the settings, the model
/// artifact (checksum included), the input schema against the model's features, and every
/// Kafka client's properties (librdkafka rejects unknown names and malformed values here).
/// [`Service::start`] begins with it; `driftwood run --check-config` stops after it.
fn prepare(config: &RunConfig) -> Result<Prepared> {
    config.validate()?;
    let clients = config.kafka_clients()?;
    let schema = FeatureDecoder::read_schema(config.input_schema.as_deref())?;
    let registry = config.schema_registry.settings()?;
    if let Some(settings) = &registry {
        RegistryClient::check(settings)?;
    }
    let registered = (registry.is_some() && config.input_format == InputFormat::Confluent)
        .then(|| WriterSchemas::new(config.schema_registry.schema_registry_cache));
    let decoders = Decoders {
        schema,
        format: config.input_format,
        max_message_bytes: config.max_message_bytes,
        missing: config.missing_features,
        explaining: config.models.explain().enabled(),
        registered: registered.clone(),
    };
    let model = Arc::new(open_model(config, &decoders)?);
    let models = Start {
        default: (model.clone(), decoders.for_model(&model)?),
        shadow: shadow_candidate(config, &decoders)?,
        routes: routes(config, &model, &decoders)?,
        decoders,
    };
    let schema_registry = registry.map(|settings| (settings, registered));
    Ok(Prepared {
        models,
        clients,
        schema_registry,
    })
}

/// What the schema registry is used for, if one is named (its URL without credentials).
fn registry_summary(config: &RunConfig) -> String {
    let registry = &config.schema_registry;
    let Some(url) = &registry.schema_registry_url else {
        return "none".into();
    };
    let mut uses = Vec::new();
    if config.input_format == InputFormat::Confluent {
        uses.push(format!(
            "input writer schemas by id (cache of {})",
            registry.schema_registry_cache
        ));
    }
    if registry.output_format == crate::config::OutputFormat::Confluent {
        uses.push("output schemas registered under <topic>-value".into());
    }
    format!(
        "{} for {}",
        crate::codec::registry::client::redacted(url),
        uses.join(" and ")
    )
}

/// `driftwood run --check-config`: every check `driftwood run` makes before it connects,
/// then a summary of what would run.
pub fn check(config: &RunConfig) -> Result<String> {
    let Start {
        default: (model, _),
        shadow,
        routes,
        ..
    } = prepare(config)?.models;
    let m = &model.metadata;
    let routes = routes.map_or("none (every record to the default model)".into(), |r| {
        let models = (r.models.iter())
            .map(|(m, _)| format!("{} version {}", m.metadata.name, m.metadata.version));
        let by = config.models.route_by.as_ref().map(|by| match by {
            crate::config::RouteBy::Header(name) => format!("header {name}"),
            crate::config::RouteBy::Field(name) => format!("field {name}"),
        });
        format!(
            "by {} to {}, else the default",
            by.unwrap_or_default(),
            models.collect::<Vec<_>>().join(", ")
        )
    });
    let shadow = shadow.map_or("none".into(), |(c, _)| {
        let share = config.models.shadow_share;
        format!(
            "{} version {} on {share} of records",
            c.metadata.name, c.metadata.version
        )
    });
    let explain = config.models.explain();
    let header = (explain.header).map(|h| format!("records with header {h}"));
    let share = (explain.share > 0.0).then(|| format!("{} of records", explain.share));
    let explain = match [header, share].into_iter().flatten().collect::<Vec<_>>() {
        chosen if chosen.is_empty() => "none".to_string(),
        chosen => chosen.join(", and "),
    };
    Ok(format!(
        "configuration ok\n\
         model     {} version {} ({} trees, {} features, scored by {})\n\
         input     {} ({}) from {}, group {}\n\
         outputs   {} (predictions), {} (dead letters), {} (drift reports)\n\
         drift     {}\n\
         registry  {}\n\
         routes    {}\n\
         shadow    {}\n\
         explain   {}\n\
         sidecar   {} (/health, /ready, /metrics{})\n\
         profile   {}, shutdown grace {}",
        m.name,
        m.version,
        model.engine.n_trees(),
        model.engine.n_features(),
        model.engine.walk(),
        config.input_topic,
        flag_value(config.input_format),
        config.brokers(),
        config.group_id,
        config.output_topic,
        config.dlq_topic,
        config.drift_topic,
        drift_summary(config, &model),
        registry_summary(config),
        routes,
        shadow,
        explain,
        config.http_addr,
        if config.rest {
            ", and the REST twin: /v1/predict, /openapi.json"
        } else {
            ""
        },
        flag_value(config.profile),
        humantime::format_duration(config.shutdown_grace),
    ))
}

/// The drift windows and what they promise, or that they are off.
fn drift_summary(config: &RunConfig, model: &Model) -> String {
    let settings = config.drift.settings(config.instance());
    if !settings.enabled {
        return "off (--no-drift)".into();
    }
    let plan = crate::drift::Plan::new(&model.metadata, model.drift_reference(), &settings);
    let records = settings.window_records;
    let min = settings.window_min_age;
    let size = if min.is_zero() {
        format!("{records} records")
    } else {
        format!(
            "at least {records} records and {}",
            humantime::format_duration(min)
        )
    };
    let sample = (settings.sample_target(model.drift_reference().rows))
        .map(|target| format!(" (features of about {target} a window: a random sample past that)"));
    format!(
        "windows of {size}, or {}{}; a drift-free window alerts {}% of the time, warns {}%; {}",
        humantime::format_duration(settings.window_age),
        sample.unwrap_or_default(),
        settings.rates.alert * 100.0,
        settings.rates.warn * 100.0,
        plan.summary(model.drift_reference(), settings.window_records),
    )
}

/// Runs driftwood until `shutdown` resolves.
pub async fn run(config: RunConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    Service::start(config).await?.run_until(shutdown).await
}

/// The input, output, dead-letter and drift topics (and the shadow comparisons' topic) of
/// `config`, for `--create-topics`.
fn new_topics(config: &RunConfig) -> admin::NewTopics {
    let mut names = vec![
        config.input_topic.clone(),
        config.output_topic.clone(),
        config.dlq_topic.clone(),
        config.drift_topic.clone(),
    ];
    names.extend(config.models.comparison_topic.clone());
    names.extend(config.models.rollout_topic.clone());
    names.extend(config.labels.review_topic.clone());
    if let Some(labels) = &config.labels.labels_topic {
        names.extend([labels.clone(), config.labels.performance_topic.clone()]);
    }
    admin::NewTopics {
        names,
        partitions: config.topic_partitions,
        replication: config.topic_replication,
    }
}

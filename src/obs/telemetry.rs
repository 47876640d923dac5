//! OpenTelemetry span export over OTLP/HTTP, off unless an endpoint is given
//! (`--otlp-endpoint` or `OTEL_EXPORTER_OTLP_ENDPOINT`).
//!
//! What is exported: the `score` span of every record that arrived with a W3C `traceparent`,
//! as a child of the producer's span, so that a trace shows producer → driftwood → whoever
//! reads the prediction. Records without trace context make no spans: at 100,000 records a
//! second a span each would cost more than scoring them. The span's id is the one the
//! prediction's `traceparent` carries, so a consumer of predictions continues the same trace.
//!
//! Spans leave in batches from the SDK's own thread; a collector that is down loses spans
//! (the SDK drops them after its queue fills) and never slows scoring.

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use super::trace::TraceParent;
use crate::error::{Error, Result};

/// The export pipeline; dropping it flushes the spans still queued (up to 5 s).
pub struct OtlpExport {
    provider: SdkTracerProvider,
    endpoint: String,
}

impl OtlpExport {
    /// Sets up export to a collector's OTLP/HTTP endpoint (e.g. `http://collector:4318`;
    /// `/v1/traces` is appended unless the path names it already). `instance` becomes the
    /// resource's `service.instance.id`; `service.name` is `driftwood` unless
    /// `OTEL_SERVICE_NAME` says otherwise.
    pub fn new(endpoint: &str, instance: Option<&str>) -> Result<Self> {
        let endpoint = traces_url(endpoint)?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint.clone())
            .build()
            .map_err(|e| Error::Config(format!("--otlp-endpoint {endpoint}: {e}")))?;
        let mut resource = Resource::builder()
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_service_name(
                std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "driftwood".into()),
            );
        if let Some(instance) = instance {
            resource = resource.with_attribute(opentelemetry::KeyValue::new(
                "service.instance.id",
                instance.to_owned(),
            ));
        }
        let provider = SdkTracerProvider::builder()
            .with_resource(resource.build())
            .with_batch_exporter(exporter)
            .build();
        Ok(OtlpExport { provider, endpoint })
    }

    /// The layer that turns driftwood's spans into OpenTelemetry spans. Only driftwood's own
    /// spans (and the events inside them) are exported, whatever the log filter says.
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        let tracer = self.provider.tracer("driftwood");
        let only_ours = tracing_subscriber::filter::Targets::new()
            .with_target("driftwood", tracing::Level::DEBUG);
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(only_ours)
    }

    /// The URL spans are sent to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for OtlpExport {
    fn drop(&mut self) {
        if let Err(e) = self
            .provider
            .shutdown_with_timeout(std::time::Duration::from_secs(5))
        {
            // The subscriber may be gone by now; stderr is what is left.
            eprintln!("OTLP export to {}: {e}", self.endpoint);
        }
    }
}

fn traces_url(endpoint: &str) -> Result<String> {
    let trimmed = endpoint.trim_end_matches('/');
    if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
        return Err(Error::Config(format!(
            "--otlp-endpoint {endpoint:?}: expected an http:// URL of a collector's OTLP/HTTP \
             receiver, e.g. http://localhost:4318"
        )));
    }
    if trimmed.starts_with("https://") {
        return Err(Error::Config(format!(
            "--otlp-endpoint {endpoint:?}: this build exports over plain HTTP only; send to a \
             collector on the same host or pod (the usual agent pattern) and let it forward \
             over TLS"
        )));
    }
    Ok(if trimmed.ends_with("/v1/traces") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v1/traces")
    })
}

/// Makes `span` a child of the producer's span and returns the prediction's `traceparent`:
/// the OpenTelemetry span's own id when export is on, so the exported span and the header
/// agree; a fresh random id otherwise.
pub fn child_of(span: &Span, parent: &TraceParent) -> TraceParent {
    let remote = SpanContext::new(
        TraceId::from_bytes(parent.trace_id),
        SpanId::from_bytes(parent.span_id),
        TraceFlags::new(parent.flags),
        true,
        TraceState::default(),
    );
    let parent_cx = opentelemetry::Context::new().with_remote_span_context(remote.clone());
    // Fails only when the span is not recorded by an OpenTelemetry layer (export off, or the
    // span filtered out): then there is no span id to share.
    if span.set_parent(parent_cx).is_err() {
        return parent.child();
    }
    let cx = span.context();
    let own = cx.span().span_context().clone();
    if own.is_valid() && own.trace_id() == remote.trace_id() && own.span_id() != remote.span_id() {
        TraceParent {
            span_id: own.span_id().to_bytes(),
            ..*parent
        }
    } else {
        parent.child()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_gets_the_traces_path_once() {
        assert_eq!(
            traces_url("http://localhost:4318").unwrap(),
            "http://localhost:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://c:4318/v1/traces/").unwrap(),
            "http://c:4318/v1/traces"
        );
        let https = traces_url("https://c:4318").unwrap_err().to_string();
        assert!(https.contains("plain HTTP only"), "{https}");
        let bare = traces_url("localhost:4318").unwrap_err().to_string();
        assert!(bare.contains("expected an http:// URL"), "{bare}");
    }

    #[test]
    fn without_export_the_child_has_a_fresh_span_id_in_the_same_trace() {
        let parent =
            TraceParent::parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let child = child_of(&tracing::debug_span!("score"), &parent);
        assert_eq!(child.trace_id, parent.trace_id);
        assert_eq!(child.flags, parent.flags);
        assert_ne!(child.span_id, parent.span_id);
    }
}

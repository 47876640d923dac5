//! Input headers reach the prediction: trace context, CloudEvents attributes and anything
//! else. A W3C `traceparent` is continued: the prediction carries a child of the producer's
//! span, and the log shows the scoring span with its trace and parent.

use std::time::Duration;

use crate::common::*;
use driftwood::config::RunConfig;
use driftwood::obs::trace::{TRACEPARENT, TraceParent};
use rdkafka::message::{Header, Message, OwnedHeaders};

use crate::common::dressed::dressed_input;

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A run configuration whose input holds `traceparents.len()` feature records, each sent as
/// an instrumented producer sends them: with its `traceparent`, CloudEvents attributes and a
/// binary header of the producer's own.
async fn traced_input(bootstrap: &str, traceparents: &[String]) -> RunConfig {
    dressed_input(bootstrap, traceparents.len(), |i, payload| {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: TRACEPARENT,
                value: Some(&traceparents[i]),
            })
            .insert(Header {
                key: "ce_id",
                value: Some("event-1"),
            })
            .insert(Header {
                key: "ce_source",
                value: Some("/sensors"),
            })
            .insert(Header {
                key: "tenant",
                value: Some(&b"\x00\xffbinary"[..]),
            });
        (payload.to_vec(), Some(headers))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_headers_and_trace_context_reach_the_prediction() {
    let bootstrap = bootstrap();
    let config = traced_input(bootstrap, &vec![PARENT.to_owned(); 3]).await;

    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("headers.log"));
    let port = free_port();
    let mut child = driftwood_run(&config, port, &[])
        .env("DRIFTWOOD_LOG", "info,driftwood::pipeline=debug")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let predictions = read_topic(bootstrap, &config.output_topic, 3, Duration::from_secs(60));
    sigterm(&child);
    child.wait().unwrap();

    let parent = TraceParent::parse(PARENT.as_bytes()).unwrap();
    let logged = std::fs::read_to_string(&log).unwrap();
    for p in &predictions {
        assert_eq!(header(p, "ce_id").as_deref(), Some("event-1"));
        assert_eq!(header(p, "ce_source").as_deref(), Some("/sensors"));
        assert_eq!(
            p.headers().map(|h| {
                use rdkafka::message::Headers;
                h.iter()
                    .find(|h| h.key == "tenant")
                    .and_then(|h| h.value.map(<[u8]>::to_vec))
            }),
            Some(Some(b"\x00\xffbinary".to_vec())),
            "binary header values pass unchanged"
        );
        let child = TraceParent::parse(header(p, TRACEPARENT).unwrap().as_bytes()).unwrap();
        assert_eq!(child.trace_id, parent.trace_id, "the same trace");
        assert_ne!(child.span_id, parent.span_id, "a span of its own");
        let span = format!(
            "trace_id={} parent_span_id={} span_id={}}}",
            parent.trace_id_hex(),
            parent.span_id_hex(),
            child.span_id_hex()
        );
        assert!(logged.contains(&span), "{span} not in the log:\n{logged}");
    }
}

/// With `--otlp-endpoint`, each scoring span reaches a real OpenTelemetry collector (Jaeger 2,
/// started by scripts/test.sh) as the child of the producer's span, and the id it has there
/// is the span id the prediction's `traceparent` carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoring_spans_reach_an_opentelemetry_collector_with_the_predictions_span_ids() {
    let collector = otlp_collector();
    let bootstrap = bootstrap();
    let parents: Vec<TraceParent> = (0..5)
        .map(|_| TraceParent {
            trace_id: rand::random(),
            span_id: rand::random(),
            flags: 1,
        })
        .collect();
    let headers: Vec<String> = parents.iter().map(TraceParent::header_value).collect();
    let config = traced_input(bootstrap, &headers).await;
    let instance = unique("traced");
    let mut child = driftwood_run(
        &config,
        free_port(),
        &[
            "--otlp-endpoint",
            &collector.otlp,
            "--instance-id",
            &instance,
        ],
    )
    .spawn()
    .unwrap();
    let predictions = read_topic(bootstrap, &config.output_topic, 5, Duration::from_secs(60));
    // Spans leave in batches; SIGTERM makes driftwood flush what is queued before it exits.
    sigterm(&child);
    assert!(child.wait().unwrap().success());

    let children: Vec<TraceParent> = predictions
        .iter()
        .map(|p| TraceParent::parse(header(p, TRACEPARENT).unwrap().as_bytes()).unwrap())
        .collect();
    // The query client is a blocking one: it may not run on the runtime's threads.
    let traces = tokio::task::spawn_blocking(move || {
        let ids = children.iter().map(|c| c.trace_id_hex());
        ids.map(|id| collector.trace(&id)).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (p, trace) in predictions.iter().zip(&traces) {
        let child = TraceParent::parse(header(p, TRACEPARENT).unwrap().as_bytes()).unwrap();
        let parent = parents
            .iter()
            .find(|t| t.trace_id == child.trace_id)
            .expect("the prediction continues one of the input traces");
        let spans = trace["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 1, "one scoring span per record: {trace}");
        let span = &spans[0];
        assert_eq!(span["operationName"], "score");
        assert_eq!(span["spanID"], child.span_id_hex(), "the header's span id");
        assert_eq!(span["references"][0]["refType"], "CHILD_OF");
        assert_eq!(span["references"][0]["spanID"], parent.span_id_hex());
        let process = &trace["processes"][span["processID"].as_str().unwrap()];
        assert_eq!(process["serviceName"], "driftwood");
        let tags = process["tags"].as_array().unwrap();
        assert!(
            tags.iter()
                .any(|t| t["key"] == "service.instance.id" && t["value"] == instance.as_str()),
            "the instance id is a resource attribute: {process}"
        );
    }
}

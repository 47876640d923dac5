//! Input headers reach the prediction: trace context, CloudEvents attributes and anything
//! else. A W3C `traceparent` is continued: the prediction carries a child of the producer's
//! span, and the log shows the scoring span with its trace and parent.

use std::time::Duration;

use crate::common::*;
use driftwood::kafka::{TRACEPARENT, TraceParent};
use driftwood::tools::produce::{ProduceConfig, produce};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_headers_and_trace_context_reach_the_prediction() {
    let bootstrap = bootstrap();
    let config = run_config(bootstrap);
    let staging = unique("staging");
    let topics = [
        &config.input_topic,
        &config.output_topic,
        &config.dlq_topic,
        &config.drift_topic,
        &staging,
    ];
    create_topics(bootstrap, &topics.map(String::as_str), 1).await;
    let spec = ProduceConfig::new(bootstrap, &staging, 3);
    tokio::task::spawn_blocking(move || produce(&spec))
        .await
        .unwrap()
        .unwrap();
    // The same records again, now with headers, as an instrumented producer sends them.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for m in read_topic(bootstrap, &staging, 3, Duration::from_secs(30)) {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: TRACEPARENT,
                value: Some(PARENT),
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
        let record = BaseRecord::<[u8], [u8]>::to(&config.input_topic)
            .payload(m.payload().unwrap())
            .headers(headers);
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("headers.log"));
    let port = free_port();
    let mut child = driftwood_run(&config, port, &[])
        .env("DRIFTWOOD_LOG", "info,driftwood::pipeline=debug")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let predictions = read_topic(bootstrap, &config.output_topic, 3, Duration::from_secs(60));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
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
            "score{{trace_id={} parent_span_id={} span_id={}}}",
            parent.trace_id_hex(),
            parent.span_id_hex(),
            child.span_id_hex()
        );
        assert!(logged.contains(&span), "{span} not in the log:\n{logged}");
    }
}

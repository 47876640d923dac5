//! The OpenTelemetry collector the tracing test exports to: Jaeger 2, started by
//! `scripts/test.sh` (`scripts/jaeger.sh start`), which sets `DRIFTWOOD_OTLP_ENDPOINT` and
//! `DRIFTWOOD_TRACE_QUERY_URL`.

use std::time::{Duration, Instant};

/// A running collector: where spans go, and where stored traces are read back.
pub struct Collector {
    /// The OTLP/HTTP receiver, for `--otlp-endpoint`.
    pub otlp: String,
    /// Jaeger's query API.
    pub query: String,
}

/// The collector from the environment; panics saying how to start one when it is not set.
pub fn otlp_collector() -> Collector {
    let var = |name| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: this test needs an OpenTelemetry collector with Jaeger's \
                 query API. scripts/test.sh starts one; by hand: \
                 `export JAEGER_STATE_DIR=/tmp/jaeger DRIFTWOOD_OTLP_ENDPOINT=$(scripts/jaeger.sh \
                 start 4318) DRIFTWOOD_TRACE_QUERY_URL=$(scripts/jaeger.sh query-url)`"
            )
        })
    };
    Collector {
        otlp: var("DRIFTWOOD_OTLP_ENDPOINT"),
        query: var("DRIFTWOOD_TRACE_QUERY_URL"),
    }
}

impl Collector {
    /// The stored trace `trace_id` (Jaeger's JSON: `spans`, `processes`), waiting up to 30 s
    /// for it to arrive.
    pub fn trace(&self, trace_id: &str) -> serde_json::Value {
        let url = format!("{}/api/traces/{trace_id}", self.query);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let response = reqwest::blocking::get(&url).expect("the query API answers");
            if response.status().is_success() {
                let body: serde_json::Value =
                    serde_json::from_slice(&response.bytes().unwrap()).unwrap();
                return body["data"][0].clone();
            }
            assert!(
                Instant::now() < deadline,
                "trace {trace_id} not in the collector after 30 s ({})",
                response.status()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

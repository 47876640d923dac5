//! The HTTP sidecar: `/health` (liveness), `/ready` (readiness), `/metrics` (Prometheus), and
//! the status page (`/`, with `/status.json`), all read-only.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::http::rest::Rest;
use crate::obs::health::Health;
use crate::obs::metrics::Metrics;

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    metrics: Metrics,
}

/// The router, separate from serving so it can be embedded; with the REST twin's routes
/// when it is enabled.
fn router(health: Arc<Health>, metrics: Metrics, rest: Option<Rest>) -> Router {
    let probes = Router::new()
        .route("/health", get(health_handler))
        .route("/ready", get(ready_handler))
        .route("/metrics", get(metrics_handler))
        .route("/", get(page_handler))
        .route("/status.json", get(status_handler))
        .with_state(AppState { health, metrics });
    match rest {
        Some(rest) => probes.merge(super::rest::routes(rest)),
        None => probes,
    }
}

async fn page_handler() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        super::status::PAGE,
    )
        .into_response()
}

async fn status_handler(State(state): State<AppState>) -> Response {
    Json(super::status::status(&state.metrics, &state.health)).into_response()
}

async fn health_handler(State(state): State<AppState>) -> Response {
    if state.health.is_alive() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "consumer loop is not running\n",
        )
            .into_response()
    }
}

async fn ready_handler(State(state): State<AppState>) -> Response {
    let readiness = state.health.readiness();
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    let ready = state.health.readiness().ready;
    state.metrics.ready.set(i64::from(ready));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// Binds `addr` (fails fast when taken) and returns the bound address and the server future,
/// which ends after `shutdown` resolves. `rest` adds the REST twin.
pub async fn bind(
    addr: SocketAddr,
    health: Arc<Health>,
    metrics: Metrics,
    rest: Option<Rest>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = std::io::Result<()>>)> {
    let http_error = |source| Error::Http {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(http_error)?;
    let local = listener.local_addr().map_err(http_error)?;
    let server =
        axum::serve(listener, router(health, metrics, rest)).with_graceful_shutdown(shutdown);
    Ok((local, server.into_future()))
}

/// `driftwood healthcheck`: asks the sidecar at `addr` (an unspecified IP such as 0.0.0.0
/// meaning this host) for `path`; `(path, status)` if it answered 200, else an error saying
/// what it answered or that nothing did.
pub fn healthcheck(mut addr: SocketAddr, path: &str) -> Result<(String, u16)> {
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let (status, body) = probe(addr, path)
        .map_err(|e| Error::Unhealthy(format!("no sidecar answers at {addr}: {e}")))?;
    if status != 200 {
        return Err(Error::Unhealthy(format!(
            "{path} answered {status}: {}",
            body.trim()
        )));
    }
    Ok((path.to_string(), status))
}

/// A minimal HTTP/1.1 GET for probing a sidecar (the benchmark and tests use it):
/// `(status, body)`. axum answers these small responses with a Content-Length body.
pub fn probe(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_secs(5);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let (_, body) = response.split_once("\r\n\r\n").ok_or_else(bad)?;
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// Sends `request` raw and returns the status line.
    fn status_line(addr: SocketAddr, request: &str) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response);
        text.lines().next().unwrap_or_default().to_string()
    }

    #[tokio::test]
    async fn only_reads_are_served_and_no_body_is_read() {
        let health = Arc::new(Health::default());
        let (addr, server) = bind(
            "127.0.0.1:0".parse().unwrap(),
            health,
            Metrics::new(),
            None,
            std::future::pending(),
        )
        .await
        .unwrap();
        assert!(addr.ip().is_loopback(), "bound where told: {addr}");
        tokio::spawn(server);
        let answers = tokio::task::spawn_blocking(move || {
            let mut answers = Vec::new();
            for method in ["POST", "PUT", "DELETE", "PATCH"] {
                for path in ["/health", "/ready", "/metrics"] {
                    // A body announced as a gigabyte and never sent: refused without waiting.
                    let request = format!(
                        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\nConnection: close\r\n\r\n"
                    );
                    answers.push((method, path, status_line(addr, &request)));
                }
            }
            answers.push(("GET", "/admin", status_line(addr, "GET /admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")));
            // The REST twin is off unless enabled.
            answers.push(("POST", "/v1/predict", status_line(addr, "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")));
            answers
        })
        .await
        .unwrap();
        for (method, path, status) in answers {
            let expected = if ["/admin", "/v1/predict"].contains(&path) {
                "404"
            } else {
                "405"
            };
            assert!(status.contains(expected), "{method} {path}: {status:?}");
        }
    }
}

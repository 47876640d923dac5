//! SASL/SCRAM-SHA-512 over TLS end to end, against a broker whose client listener takes
//! nothing else (`scripts/kafka.sh secure-start`, certificates made with openssl), and the
//! password never shown: not in logs at `trace` level, not in `/metrics`, not by
//! `--check-config`.

use std::process::Stdio;
use std::time::Duration;

use crate::common::*;

const SECRET_VAR: &str = "DRIFTWOOD_TEST_SCRAM_PASSWORD";

/// The client flags for the secure listener; the password comes from `SECRET_VAR`.
fn sasl_ssl_flags(kafka: &SecureKafka) -> Vec<String> {
    let ca = kafka.ca().display().to_string();
    [
        "security.protocol=SASL_SSL",
        "sasl.mechanisms=SCRAM-SHA-512",
        "sasl.username=driftwood",
        &format!("ssl.ca.location={ca}"),
    ]
    .iter()
    .flat_map(|o| ["--kafka-option".to_string(), o.to_string()])
    .chain([
        "--kafka-option-env".into(),
        format!("sasl.password={SECRET_VAR}"),
    ])
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_scram_over_tls_scores_and_never_shows_the_password() {
    init_logging();
    let kafka = SecureKafka::start(free_port());
    let secret = std::fs::read_to_string(kafka.password_file()).unwrap();
    // Set-up and checks through the plaintext listener; driftwood gets the secure one only.
    let mut config = prepared_topics(&kafka.plaintext, 300, 3, |_| {}).await;
    config.bootstrap_servers = Some(kafka.sasl_ssl.clone());
    let flags = sasl_ssl_flags(&kafka);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();

    let check = driftwood_run(&config, free_port(), &flags)
        .arg("--check-config")
        .env(SECRET_VAR, &secret)
        .output()
        .unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(check.status.success(), "{shown}");
    assert!(
        !shown.contains(&secret),
        "--check-config shows the password: {shown}"
    );

    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("secure.log"));
    let port = free_port();
    let mut child = driftwood_run(&config, port, &flags)
        .env(SECRET_VAR, &secret)
        .env("DRIFTWOOD_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    wait_until(
        "every record scored over SASL_SSL",
        Duration::from_secs(90),
        || {
            driftwood::http::sidecar::probe(addr, "/metrics").is_ok_and(|(_, body)| {
                metric(&body, "driftwood_records_total{outcome=\"scored\"}") == Some(297.0)
            })
        },
    )
    .await;
    for path in ["/metrics", "/ready", "/health"] {
        let (_, body) = http_get(addr, path);
        assert!(!body.contains(&secret), "{path} shows the password");
    }
    sigterm(&child);
    assert!(child.wait().unwrap().success());

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.lines().count() > 50 && logged.contains("TRACE"),
        "trace logging was on"
    );
    let leaks: Vec<&str> = logged.lines().filter(|l| l.contains(&secret)).collect();
    assert!(
        leaks.is_empty(),
        "{} log lines show the password, e.g. {:?}",
        leaks.len(),
        leaks.first()
    );
    let c = conservation(&kafka.plaintext, &config);
    assert_eq!(c.missing_count, 0, "inputs without output: {:?}", c.missing);
}

/// A wrong password keeps driftwood unready, saying why, and never shows it either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_and_reported() {
    init_logging();
    let kafka = SecureKafka::start(free_port());
    let mut config = prepared_topics(&kafka.plaintext, 10, 0, |_| {}).await;
    config.bootstrap_servers = Some(kafka.sasl_ssl.clone());
    let flags = sasl_ssl_flags(&kafka);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let wrong = "not-the-password-3141592653";
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("wrong.log"));
    let port = free_port();
    let mut child = driftwood_run(&config, port, &flags)
        .env(SECRET_VAR, wrong)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    wait_for_port(port, Duration::from_secs(30));
    let refused =
        || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Authentication failed"));
    wait_until(
        "the broker to refuse the password",
        Duration::from_secs(60),
        refused,
    )
    .await;
    let (status, body) = http_get(addr, "/ready");
    sigterm(&child);
    let _ = child.wait();
    assert_eq!(status, 503, "{body}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("Authentication failed"), "{logged}");
    assert!(!logged.contains(wrong) && !body.contains(wrong));
}

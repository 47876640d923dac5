//! The status page (`/`) in a real browser: Chromium driven by Playwright
//! (`tests/browser/status_page.py`), against an instance scoring a live stream, with drift
//! windows closed and labels joined. The screenshot lands in the test's target directory.

use std::time::Duration;

use crate::common::process::Member;
use crate::common::*;

/// The Python with Playwright (`tests/browser/requirements.txt`): `DRIFTWOOD_BROWSER_PYTHON`,
/// which `scripts/test.sh` sets.
fn browser_python() -> String {
    std::env::var("DRIFTWOOD_BROWSER_PYTHON").unwrap_or_else(|_| {
        panic!(
            "DRIFTWOOD_BROWSER_PYTHON is not set: this test opens the status page in Chromium \
             with Playwright. scripts/test.sh sets it up; by hand: `export \
             DRIFTWOOD_BROWSER_PYTHON=$(scripts/py-env.sh tests/browser/requirements.txt) \
             CHROMIUM=$(scripts/chromium.sh)`"
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_the_model_its_rate_its_drift_and_its_realized_accuracy() {
    let bootstrap = bootstrap();
    let config = prepared_topics(bootstrap, 600, 0, |_| {}).await;
    let (labels, performance) = labels::labels_topics(bootstrap).await;
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("status-page.log"));
    let flags = labels::small_window_flags(&labels, &performance);
    let mut member = Member::start(&config, &flags, &log);
    member.wait_scored(600.0, Duration::from_secs(60));
    let predictions = read_topic(
        bootstrap,
        &config.output_topic,
        600,
        Duration::from_secs(30),
    );
    framed::send(
        bootstrap,
        &labels,
        &crate::common::labels::ground_truths(&predictions),
    );
    wait_until("a window of labels", Duration::from_secs(30), || {
        member.metric("driftwood_performance_windows_total") > Some(0.0)
    })
    .await;

    // Records keep coming while the page takes its two readings.
    let _stream = stream(bootstrap, &config, 20_000, 1_000.0);
    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/status_page.py");
    let url = format!("http://{}/", member.addr);
    let output = std::process::Command::new(browser_python())
        .arg(script)
        .args([&url, screenshot.to_str().unwrap()])
        .output()
        .expect("running tests/browser/status_page.py");
    assert!(
        output.status.success(),
        "the browser: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        member.terminate(Duration::from_secs(30)),
        "logs in {}",
        log.display()
    );

    assert_eq!(shown["title"], "driftwood");
    assert_eq!(shown["ready"], "ready");
    assert_eq!(
        shown["model"], "breast-cancer 1",
        "the serving model and version"
    );
    let rate: f64 = shown["rate"]
        .as_str()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    assert!(rate > 0.0, "records per second from two readings: {shown}");
    let drift = shown["drift"].as_array().unwrap();
    assert_eq!(
        drift[0][0], "breast-cancer",
        "the model's last drift window: {shown}"
    );
    assert!(
        drift[0][2].as_str().unwrap().ends_with(" sd"),
        "what it could detect: {shown}"
    );
    assert!(
        drift[0][3].as_str().unwrap().ends_with('%'),
        "the expected accuracy: {shown}"
    );
    let realized = shown["realized"].as_array().unwrap();
    assert_eq!(
        (&realized[0][0], &realized[0][1]),
        (&"breast-cancer".into(), &"1".into())
    );
    assert!(
        realized[0][2].as_str().unwrap().ends_with('%'),
        "realized: {shown}"
    );
    assert!(
        realized[0][3].as_str().unwrap().ends_with('%'),
        "expected beside it: {shown}"
    );
    assert!(
        shown["labels"].as_str().unwrap().contains("joined"),
        "{shown}"
    );
    assert_eq!(
        shown["errors"],
        serde_json::json!([]),
        "no script or request failed"
    );
    assert_eq!(
        shown["requests"],
        serde_json::json!([shown["origin"]]),
        "nothing loaded from elsewhere"
    );
    assert!(screenshot.exists());
}

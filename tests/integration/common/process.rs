//! `driftwood run` as a separate process, the way it runs in production: killed with
//! SIGKILL as a crash would, or stopped with SIGTERM, and watched through its sidecar.

use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use driftwood::config::RunConfig;

use super::{driftwood_run, free_port, metric};

/// A running `driftwood run` process and its sidecar address.
pub struct Member {
    child: Child,
    /// Its sidecar.
    pub addr: SocketAddr,
}

impl Member {
    /// Starts `driftwood run` on `config`'s broker, topics and group with `extra` flags; its
    /// logs go to `log` (appended) so that a failing test can show them.
    pub fn start(config: &RunConfig, extra: &[&str], log: &std::path::Path) -> Self {
        let port = free_port();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = driftwood_run(config, port, extra)
            .env("DRIFTWOOD_LOG", "info")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("spawning driftwood run");
        Member {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// A sample of its `/metrics`, or `None` while its sidecar does not answer.
    pub fn metric(&self, sample: &str) -> Option<f64> {
        let (status, body) = driftwood::http::sidecar::probe(self.addr, "/metrics").ok()?;
        (status == 200).then(|| metric(&body, sample)).flatten()
    }

    /// Records it has scored (0 until its sidecar answers).
    pub fn scored(&self) -> f64 {
        self.metric("driftwood_records_total{outcome=\"scored\"}")
            .unwrap_or(0.0)
    }

    /// `/ready`'s status code, or `None` while nothing answers.
    pub fn ready_status(&self) -> Option<u16> {
        driftwood::http::sidecar::probe(self.addr, "/ready")
            .ok()
            .map(|(status, _)| status)
    }

    /// Waits until it has scored at least `records`; how long that took.
    pub fn wait_scored(&mut self, records: f64, timeout: Duration) -> Duration {
        let start = Instant::now();
        while self.scored() < records {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("driftwood exited ({status}) before scoring {records} records");
            }
            assert!(
                start.elapsed() < timeout,
                "driftwood scored {} of {records} records in {timeout:?}",
                self.scored()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        start.elapsed()
    }

    /// Waits for it to exit by itself; whether it exited with status 0.
    pub fn wait_exit(mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "driftwood still runs after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no drain, no commit, no leaving the group.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for the exit; whether it exited with status 0.
    pub fn terminate(self, timeout: Duration) -> bool {
        sigterm(&self.child);
        self.wait_exit(timeout)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGTERM to `child` (a process the test started): what Kubernetes sends to stop a
/// pod, which driftwood answers by draining, committing and leaving its group.
pub fn sigterm(child: &Child) {
    let pid = i32::try_from(child.id()).expect("a pid fits an i32");
    // SAFETY: kill(2) with a pid this test owns and a valid signal number.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(
        sent,
        0,
        "SIGTERM to {pid}: {}",
        std::io::Error::last_os_error()
    );
}

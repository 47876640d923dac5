//! One measured `driftwood run` child process: started on its own sidecar port, asked for its
//! progress through `/metrics`, and read from `/proc` for memory and CPU time.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Where one measured instance reads and writes.
#[derive(Clone)]
pub(super) struct RunTopics {
    pub input: String,
    pub output: String,
    pub dlq: String,
    /// Drift reports: a topic that exists, as an exactly-once transaction cannot commit
    /// while an output waits for a missing one.
    pub drift: String,
    pub group: String,
}

/// A `driftwood run` child process, stopped with SIGTERM when dropped.
pub(super) struct Instance {
    child: Child,
    http: SocketAddr,
}

impl Instance {
    /// Starts `driftwood run` (`executable`, or else this one) on `topics` with `extra` flags
    /// and waits until its `/ready` says 200. `model` is `None` for the bundled one.
    pub fn start(
        brokers: &str,
        (model, executable): (Option<&Path>, Option<&Path>),
        topics: &RunTopics,
        extra: &[&str],
    ) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(Error::start("a sidecar port for driftwood run"))?
            .port();
        let http: SocketAddr = ([127, 0, 0, 1], port).into();
        let exe = match executable {
            Some(path) => path.to_path_buf(),
            None => std::env::current_exe().map_err(Error::start("driftwood run"))?,
        };
        let mut command = Command::new(exe);
        if let Some(model) = model {
            command.arg("--model").arg(model);
        }
        let child = command
            .args(["run", "--bootstrap-servers", brokers])
            .args([
                "--input-topic",
                &topics.input,
                "--output-topic",
                &topics.output,
            ])
            .args(["--dlq-topic", &topics.dlq, "--group-id", &topics.group])
            .args(["--drift-topic", &topics.drift])
            .args(["--http-addr", &http.to_string(), "--stats-interval", "1s"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(Error::start("driftwood run"))?;
        let instance = Instance { child, http };
        instance.wait_ready(Duration::from_secs(60))?;
        Ok(instance)
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        crate::http::sidecar::probe(self.http, path).ok()
    }

    /// Sum of `driftwood_records_total` over outcomes.
    pub fn processed(&self) -> Option<u64> {
        self.metric_sum("driftwood_records_total").map(|n| n as u64)
    }

    /// CPU time the instance's scoring thread spent on drift windows, over its models.
    pub fn drift_cpu(&self) -> Option<Duration> {
        self.metric_sum("driftwood_drift_cpu_seconds_total")
            .map(Duration::from_secs_f64)
    }

    /// The sum of a metric's series (0 when it has none yet).
    fn metric_sum(&self, name: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics")?;
        Some(
            text.lines()
                .filter(|l| {
                    l.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with('{'))
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>(),
        )
    }

    /// Fails, with its exit status, if the process has ended.
    pub fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(Error::tool(
                "bench",
                format!(
                    "driftwood run exited ({status}); run it by hand with the same flags to see why"
                ),
            )),
            _ => Ok(()),
        }
    }

    fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.get("/ready").map(|(s, _)| s) != Some(200) {
            if Instant::now() > deadline {
                return Err(Error::tool(
                    "bench",
                    format!("driftwood run did not become ready within {timeout:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// VmHWM: the process's peak resident memory, bytes.
    pub fn peak_rss(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))?
                    .split_whitespace()
                    .nth(1)?
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kb| kb * 1024)
    }

    /// User plus system CPU time the process has used so far (`/proc/<pid>/stat`).
    pub fn cpu_time(&self) -> Duration {
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .ok()
            .and_then(|s| cpu_ticks(&s))
            .map_or(Duration::ZERO, |ticks| {
                // SAFETY: sysconf has no preconditions.
                let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
                Duration::from_secs_f64(ticks as f64 / per_second)
            })
    }
}

/// utime + stime, in clock ticks, from the text of `/proc/<pid>/stat`. The command name (field
/// 2) may hold spaces and parentheses, so fields are counted from its closing parenthesis:
/// state is field 3, utime 14 and stime 15.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: kill with a pid we own; a process that already exited is harmless.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_count_fields_after_the_command_name() {
        let stat = "4242 (drift wood) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 3";
        assert_eq!(cpu_ticks(stat), Some(281));
        assert_eq!(cpu_ticks("garbage"), None);
        // This very process, read for real.
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(cpu_ticks(&own).is_some(), "{own}");
    }
}

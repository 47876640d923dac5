//! One measured `driftwood run` child process: started on its own sidecar port, asked for its
//! progress through `/metrics`, and read from `/proc` for memory and CPU time.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cgroup::{CpuLimit, Throttling};
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
    /// The CPU limit it runs under, if any; dropped (its cgroup removed) after the process
    /// has ended, as fields drop after `Drop::drop`.
    limit: Option<CpuLimit>,
}

impl Instance {
    /// Starts `driftwood run` (`executable`, or else this one) on `topics` with `extra` flags
    /// and waits until its `/ready` says 200. `model` is `None` for the bundled one.
    pub fn start(
        brokers: &str,
        binary: (Option<&Path>, Option<&Path>),
        topics: &RunTopics,
        extra: &[&str],
    ) -> Result<Self> {
        let instance = Instance::spawn(brokers, binary, topics, extra)?;
        instance.wait_ready(Duration::from_secs(60))?;
        Ok(instance)
    }

    /// Starts `driftwood run` as [`Instance::start`] does, without waiting for it.
    pub fn spawn(
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
        Ok(Instance {
            child,
            http,
            limit: None,
        })
    }

    /// Limits the process to `cores` cores' time, in a cgroup of its own.
    pub fn limit_cpu(&mut self, cores: f64) -> Result<()> {
        let pid = self.child.id();
        let limit = CpuLimit::new(&format!("driftwood-bench-{pid}"), cores)?;
        limit.add(pid)?;
        self.limit = Some(limit);
        Ok(())
    }

    /// How often its CPU limit held it back so far; none without a limit.
    pub fn throttling(&self) -> Option<Throttling> {
        self.limit.as_ref().map(CpuLimit::throttling)
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        crate::http::sidecar::probe(self.http, path).ok()
    }

    /// Sum of `driftwood_records_total` over outcomes.
    pub fn processed(&self) -> Option<u64> {
        self.counters().map(|c| c.processed)
    }

    /// The counters a throughput sample reads, from one scrape of `/metrics`.
    pub fn counters(&self) -> Option<Counters> {
        let (_, text) = self.get("/metrics")?;
        let phase = |p: &str| {
            let series = format!("driftwood_loop_seconds_total{{phase=\"{p}\"}} ");
            (text.lines())
                .find_map(|l| l.strip_prefix(&series)?.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let waiting = phase("input") + phase("acknowledgements");
        Some(Counters {
            processed: metric_sum(&text, "driftwood_records_total") as u64,
            drift_cpu: Duration::from_secs_f64(metric_sum(
                &text,
                "driftwood_drift_cpu_seconds_total",
            )),
            loop_waiting: waiting,
            loop_total: waiting + phase("work"),
        })
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

    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
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
        super::proc::peak_rss(self.child.id())
    }

    /// User plus system CPU time the process has used so far.
    pub fn cpu_time(&self) -> Duration {
        super::proc::cpu_time(self.child.id()).unwrap_or_default()
    }

    /// CPU time of the process's threads so far, by role.
    pub fn thread_cpu(&self) -> super::proc::ThreadCpu {
        super::proc::thread_cpu(self.child.id())
    }

    /// Input partitions the instance holds (`driftwood_assigned_partitions`).
    pub fn assigned(&self) -> Option<u64> {
        let (_, text) = self.get("/metrics")?;
        Some(metric_sum(&text, "driftwood_assigned_partitions") as u64)
    }
}

/// Waits until `instances` hold `partitions` input partitions between them, each at least
/// one: the group has formed, so the offered load and the measurement can start.
pub(super) fn wait_assigned(instances: &mut [Instance], partitions: i32) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held: Vec<u64> = instances
            .iter()
            .map(|i| i.assigned().unwrap_or(0))
            .collect();
        if held.iter().sum::<u64>() == partitions as u64 && held.iter().all(|&h| h > 0) {
            return Ok(());
        }
        for instance in instances.iter_mut() {
            instance.check_running()?;
        }
        if Instant::now() > deadline {
            return Err(Error::tool(
                "bench",
                format!("the group did not settle within 60 s: partitions held {held:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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

/// What an instance has counted so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    /// Records handled (`driftwood_records_total`, every outcome).
    pub processed: u64,
    /// CPU time its scoring thread spent on drift windows, over its models.
    pub drift_cpu: Duration,
    /// Seconds its loop waited on input or on acknowledgements
    /// (`driftwood_loop_seconds_total`; 0 from a build without it).
    pub loop_waiting: f64,
    /// Seconds its loop ran, waiting or working.
    pub loop_total: f64,
}

/// The sum of a metric's series, labelled or not (0 when it has none yet).
fn metric_sum(text: &str, name: &str) -> f64 {
    (text.lines())
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

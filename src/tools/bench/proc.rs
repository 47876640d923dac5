//! What `/proc` says about a process on this machine: CPU time, peak memory, and which
//! process listens on a TCP port (to find a local broker and measure its CPU beside ours);
//! and about the machine: its cores and processor.

use std::time::Duration;

/// User plus system CPU time process `pid` has used so far (`/proc/<pid>/stat`).
pub(super) fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(ticks_to_time(cpu_ticks(&stat)?))
}

fn ticks_to_time(ticks: u64) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64(ticks as f64 / per_second)
}

/// CPU time of a `driftwood run` process's threads so far, by what they do (their names).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct ThreadCpu {
    /// The consumer loop (`driftwood-pipeline`): poll, decode, score, encode, send.
    pub loop_thread: Duration,
    /// The drift windows' threads (`driftwood-drift`), one a model.
    pub drift: Duration,
    /// librdkafka's own threads (`rdk:…`): fetching, parsing, compressing, sending.
    pub librdkafka: Duration,
    /// Everything else (the HTTP sidecar's runtime, start-up).
    pub other: Duration,
    /// Not CPU time: how long the consumer loop was ready to run but waited for a core
    /// (`run_delay` in `/proc/<pid>/task/<tid>/schedstat`); none where the kernel does not
    /// say.
    pub loop_queued: Option<Duration>,
}

impl ThreadCpu {
    /// `self` plus `other`, role by role.
    pub fn add(self, other: ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            loop_thread: self.loop_thread + other.loop_thread,
            drift: self.drift + other.drift,
            librdkafka: self.librdkafka + other.librdkafka,
            other: self.other + other.other,
            loop_queued: match (self.loop_queued, other.loop_queued) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            },
        }
    }

    /// What was used after `earlier`, role by role (a thread that ended meanwhile takes its
    /// time with it, so a role never goes below zero).
    pub fn since(self, earlier: ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            loop_thread: self.loop_thread.saturating_sub(earlier.loop_thread),
            drift: self.drift.saturating_sub(earlier.drift),
            librdkafka: self.librdkafka.saturating_sub(earlier.librdkafka),
            other: self.other.saturating_sub(earlier.other),
            loop_queued: (self.loop_queued.zip(earlier.loop_queued))
                .map(|(now, then)| now.saturating_sub(then)),
        }
    }

    /// Counts a thread's CPU `time` to its role; `queued` reads its wait for a core, for the
    /// loop alone (the bench samples every 20 ms, on the cores it measures).
    fn count(&mut self, name: &str, time: Duration, queued: impl FnOnce() -> Option<Duration>) {
        // Linux keeps 15 bytes of a thread's name: `driftwood-pipel`, `driftwood-drift`.
        let role = if name.starts_with("driftwood-pipel") {
            if let Some(queued) = queued() {
                self.loop_queued = Some(self.loop_queued.unwrap_or_default() + queued);
            }
            &mut self.loop_thread
        } else if name.starts_with("driftwood-drift") {
            &mut self.drift
        } else if name.starts_with("rdk:") {
            &mut self.librdkafka
        } else {
            &mut self.other
        };
        *role += time;
    }
}

/// CPU time of process `pid`'s threads by role (`/proc/<pid>/task/*/{comm,stat,schedstat}`);
/// zero when the process is gone.
pub(super) fn thread_cpu(pid: u32) -> ThreadCpu {
    let mut by_role = ThreadCpu::default();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_role;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        let queued = || run_delay(&std::fs::read_to_string(path.join("schedstat")).ok()?);
        if let Some(ticks) = cpu_ticks(&stat) {
            by_role.count(name.trim_end(), ticks_to_time(ticks), queued);
        }
    }
    by_role
}

/// VmHWM: the process's peak resident memory, bytes.
pub(super) fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
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

/// The time a thread waited on a run queue, from the text of its `schedstat`: nanoseconds
/// on a core, waiting for one, and time slices.
fn run_delay(schedstat: &str) -> Option<Duration> {
    let waited = schedstat.split_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(waited))
}

/// The process listening on the first of `brokers` when it is on this machine (loopback or
/// `localhost`), found through the socket's inode; `None` for a remote broker or when the
/// process is not ours to look at.
pub(super) fn local_broker(brokers: &str) -> Option<u32> {
    let first = brokers.split(',').next()?.trim();
    let (host, port) = first.rsplit_once(':')?;
    let host = host.trim_matches(['[', ']']);
    if !matches!(host, "localhost" | "127.0.0.1" | "::1" | "0.0.0.0") {
        return None;
    }
    let port: u16 = port.parse().ok()?;
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return None;
    }
    let sockets: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let fds = std::fs::read_dir(entry.path().join("fd")).ok()?;
            fds.flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .any(|target| sockets.iter().any(|s| target.as_os_str() == s.as_str()))
                .then_some(pid)
        })
}

/// Inodes of the TCP sockets listening on `port` (`/proc/net/tcp` and `tcp6`).
fn listening_inodes(port: u16) -> Vec<u64> {
    let local = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| {
            let rows: Vec<u64> = (table.lines().skip(1))
                .filter_map(|line| {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    // local_address, state 0A (LISTEN), inode.
                    let listening = f.get(1)?.ends_with(&local) && *f.get(3)? == "0A";
                    listening.then(|| f.get(9)?.parse().ok()).flatten()
                })
                .collect();
            rows
        })
        .collect()
}

/// The machine's CPU time so far, all cores together, in clock ticks (`/proc/stat`): in all,
/// and what the hypervisor gave other guests while this one had work (steal).
#[derive(Debug, Clone, Copy)]
pub(super) struct MachineTicks {
    total: u64,
    steal: u64,
}

impl MachineTicks {
    /// Now; `None` where `/proc/stat` cannot be read.
    pub fn now() -> Option<MachineTicks> {
        machine_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// The share of the machine's time since `earlier` that was stolen, from 0 to 1 (`None`
    /// when no tick has passed). On a shared host it is time the processes measured did not
    /// run although they could: a run with much of it measures the host, not what ran.
    pub fn steal_since(self, earlier: MachineTicks) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total).filter(|&t| t > 0)?;
        Some(self.steal.saturating_sub(earlier.steal) as f64 / total as f64)
    }
}

/// The first line of `/proc/stat`: `cpu  user nice system idle iowait irq softirq steal …`
/// (guest time is counted in user time already, so the first eight fields are the total).
fn machine_ticks(stat: &str) -> Option<MachineTicks> {
    let fields: Vec<u64> = (stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace())
    .take(8)
    .map(|f| f.parse().ok())
    .collect::<Option<_>>()?;
    (fields.len() == 8).then(|| MachineTicks {
        total: fields.iter().sum(),
        steal: fields[7],
    })
}

/// This machine's cores and processor, as the report names it.
pub(super) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stolen_share_is_steal_over_all_of_the_machine_s_ticks() {
        let at = |stat: &str| machine_ticks(stat).expect("a cpu line");
        let before = at("cpu  100 0 50 800 0 0 0 50 0 0\ncpu0 50 0 25 400 0 0 0 25 0 0\n");
        let after = at("cpu  160 0 70 900 0 0 0 70 30 0\ncpu0 80 0 35 450 0 0 0 35 15 0\n");
        // 200 ticks passed (guest time, 30, is inside user time), 20 of them stolen.
        assert_eq!(after.steal_since(before), Some(0.1));
        assert_eq!(before.steal_since(before), None, "no time passed");
        assert!(
            machine_ticks("cpu0 1 2 3 4 5 6 7 8\n").is_none(),
            "not the total line"
        );
        assert!(machine_ticks("cpu  1 2 3\n").is_none(), "too few fields");
    }

    #[test]
    fn cpu_ticks_count_fields_after_the_command_name() {
        let stat = "4242 (drift wood) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 3";
        assert_eq!(cpu_ticks(stat), Some(281));
        assert_eq!(cpu_ticks("garbage"), None);
        // This very process, read for real.
        assert!(cpu_time(std::process::id()).is_some());
    }

    #[test]
    fn threads_are_counted_by_their_names() {
        let mut cpu = ThreadCpu::default();
        let ms = Duration::from_millis;
        for (name, t) in [
            ("driftwood-pipel", 5),
            ("driftwood-drift", 3),
            ("driftwood-drift", 1),
            ("rdk:broker1", 2),
            ("rdk:main", 1),
            ("tokio-rt-worker", 7),
        ] {
            // Every thread waited 10 ms for a core; the loop's wait alone is kept.
            cpu.count(name, ms(t), || Some(ms(10)));
        }
        let expected = ThreadCpu {
            loop_thread: ms(5),
            drift: ms(4),
            librdkafka: ms(3),
            other: ms(7),
            loop_queued: Some(ms(10)),
        };
        assert_eq!(cpu, expected);
        assert_eq!(cpu.add(cpu).since(cpu), cpu);
        // This very process, read for real: busy until a clock tick is counted.
        let total = |t: ThreadCpu| t.loop_thread + t.drift + t.librdkafka + t.other;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while total(thread_cpu(std::process::id())) == Duration::ZERO {
            assert!(std::time::Instant::now() < deadline, "no CPU time read");
        }
        assert_eq!(
            thread_cpu(u32::MAX),
            ThreadCpu::default(),
            "no such process"
        );
    }

    #[test]
    fn a_threads_wait_for_a_core_is_the_second_schedstat_field() {
        assert_eq!(
            run_delay("8120000000 2500000 1200\n"),
            Some(Duration::from_micros(2500))
        );
        assert_eq!(
            run_delay(""),
            None,
            "no schedstat: a kernel without schedstats"
        );
    }

    #[test]
    fn the_listener_of_a_local_port_is_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let brokers = format!("127.0.0.1:{port},10.0.0.1:9092");
        assert_eq!(local_broker(&brokers), Some(std::process::id()));
        assert_eq!(local_broker(&format!("10.0.0.1:{port}")), None);
        drop(listener);
        assert_eq!(local_broker(&format!("localhost:{port}")), None);
    }
}

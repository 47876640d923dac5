//! A CPU limit for one measured instance, as a Kubernetes pod's `resources.limits.cpu` sets
//! one: a cgroup of its own whose CFS quota is that many cores' time in each 100 ms period.
//! On a machine smaller than the group being measured, the scaling runs give each instance
//! such a limit, so that the instances are what runs out, not the machine.
//!
//! Hidden contracts:
//! - The cgroup is removed when the limit is dropped, which must come after its process has
//!   ended (a cgroup with a live process cannot be removed; it is then left behind, named
//!   after the process, and a warning says so).
//! - cgroup v1 (`/sys/fs/cgroup/cpu`) and v2 (`/sys/fs/cgroup`, whose `cgroup.controllers`
//!   lists `cpu`) are both written; creating a cgroup needs root or a delegated subtree.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The CFS period, µs: the kernel's default, and Kubernetes'.
const PERIOD_US: u64 = 100_000;

/// A cgroup limiting its processes to a number of cores.
#[derive(Debug)]
pub(super) struct CpuLimit {
    dir: PathBuf,
}

/// How often the processes of a limit were held back, as the kernel counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Throttling {
    /// CFS periods in which the processes ran.
    pub periods: u64,
    /// Of those, periods whose quota ran out before the period did.
    pub throttled: u64,
}

impl Throttling {
    /// `self` plus `other` (two limits' counts together).
    pub fn add(self, other: Throttling) -> Throttling {
        Throttling {
            periods: self.periods + other.periods,
            throttled: self.throttled + other.throttled,
        }
    }

    /// The share of periods throttled; none before any period.
    pub fn share(self) -> Option<f64> {
        (self.periods > 0).then(|| self.throttled as f64 / self.periods as f64)
    }

    /// What was counted after `earlier`.
    pub fn since(self, earlier: Throttling) -> Throttling {
        Throttling {
            periods: self.periods.saturating_sub(earlier.periods),
            throttled: self.throttled.saturating_sub(earlier.throttled),
        }
    }
}

impl CpuLimit {
    /// A new cgroup `name` whose processes may use `cores` cores' time together.
    pub fn new(name: &str, cores: f64) -> Result<Self> {
        if !(cores.is_finite() && cores > 0.0) {
            return Err(refused(format!("{cores} cores is not a limit")));
        }
        let quota = ((cores * PERIOD_US as f64).round() as u64).max(1_000);
        let (root, v2) = hierarchy()?;
        if v2 {
            // Lets the root's children have the controller (refused, harmlessly, where it is
            // on already or the root has processes of its own).
            let _ = std::fs::write(root.join("cgroup.subtree_control"), "+cpu");
        }
        let dir = root.join(name);
        std::fs::create_dir(&dir).map_err(|e| refused(format!("{}: {e}", dir.display())))?;
        let limit = CpuLimit { dir };
        if v2 {
            limit.write("cpu.max", &format!("{quota} {PERIOD_US}"))?;
        } else {
            limit.write("cpu.cfs_period_us", &PERIOD_US.to_string())?;
            limit.write("cpu.cfs_quota_us", &quota.to_string())?;
        }
        Ok(limit)
    }

    /// Moves process `pid`, every thread of it, into the cgroup; the threads it starts later
    /// are born there.
    pub fn add(&self, pid: u32) -> Result<()> {
        self.write("cgroup.procs", &pid.to_string())
    }

    /// The kernel's counts of periods and throttled periods so far (`cpu.stat`).
    pub fn throttling(&self) -> Throttling {
        let stat = std::fs::read_to_string(self.dir.join("cpu.stat")).unwrap_or_default();
        let field = |name: &str| {
            (stat.lines())
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or(0)
        };
        Throttling {
            periods: field("nr_periods"),
            throttled: field("nr_throttled"),
        }
    }

    fn write(&self, file: &str, value: &str) -> Result<()> {
        let path = self.dir.join(file);
        std::fs::write(&path, value).map_err(|e| refused(format!("{}: {e}", path.display())))
    }
}

impl Drop for CpuLimit {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir(&self.dir) {
            tracing::warn!(%error, cgroup = %self.dir.display(), "could not remove a bench's cgroup");
        }
    }
}

/// Where cgroups with a CPU controller are made, and whether it is cgroup v2.
fn hierarchy() -> Result<(PathBuf, bool)> {
    let unified = Path::new("/sys/fs/cgroup");
    let controllers = std::fs::read_to_string(unified.join("cgroup.controllers"));
    if controllers.is_ok_and(|c| c.split_whitespace().any(|c| c == "cpu")) {
        return Ok((unified.to_path_buf(), true));
    }
    let v1 = ["cpu", "cpu,cpuacct"].map(|d| unified.join(d));
    match v1.into_iter().find(|d| d.join("cpu.cfs_quota_us").exists()) {
        Some(dir) => Ok((dir, false)),
        None => Err(refused(
            "no CPU controller under /sys/fs/cgroup (cgroup v2's cgroup.controllers lists no \
             `cpu`, and there is no v1 cpu hierarchy)"
                .into(),
        )),
    }
}

fn refused(why: String) -> Error {
    Error::tool(
        "bench",
        format!(
            "--scaling-cpu-limit needs a cgroup CPU controller this process may write \
             (root, or a delegated cgroup): {why}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::{Duration, Instant};

    use super::*;

    /// Needs root (or a delegated cgroup): run as `scripts/test.sh` runs it here.
    #[test]
    fn a_busy_process_under_a_tenth_of_a_core_is_throttled_and_its_cgroup_goes_with_it() {
        let name = format!("driftwood-test-{}", std::process::id());
        let limit = CpuLimit::new(&name, 0.1).expect(
            "a cgroup CPU controller this test may write: run it as root, or in a delegated cgroup",
        );
        let dir = limit.dir.clone();
        let mut busy = Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        limit.add(busy.id()).unwrap();
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert_eq!(procs.trim(), busy.id().to_string());
        let deadline = Instant::now() + Duration::from_secs(10);
        while limit.throttling().throttled == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let throttling = limit.throttling();
        busy.kill().unwrap();
        busy.wait().unwrap();
        assert!(throttling.throttled > 0, "{throttling:?}");
        assert!(throttling.periods >= throttling.throttled, "{throttling:?}");
        drop(limit);
        assert!(!dir.exists(), "{} was left behind", dir.display());
    }

    #[test]
    fn a_limit_of_no_cores_is_refused_before_any_cgroup_is_made() {
        for cores in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let error = CpuLimit::new("driftwood-test-none", cores).unwrap_err();
            assert!(error.to_string().contains("is not a limit"), "{error}");
        }
    }
}

//! `containr stats`: resource usage of running containers, read from their
//! cgroups. Samples and the usage between two of them; the command line
//! prints them.

use std::time::Instant;

use super::Error;
use super::state::{DataRoot, Error as StateError, State};
use crate::cgroup::{Cgroup, Stats};

/// One sample of one container.
pub struct Sample {
    pub state: State,
    pub stats: Stats,
    pub at: Instant,
}

/// What one container used between two samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// Percent of one CPU.
    pub cpu_percent: f64,
    pub memory: u64,
    /// Its memory limit, or the host's memory when unlimited.
    pub memory_limit: u64,
    pub memory_percent: f64,
    pub pids: u64,
}

/// The running containers `names` (by name or id prefix of at least 4), or
/// all running ones if none are named.
pub fn pick(data: &DataRoot, names: &[String]) -> Result<Vec<State>, Error> {
    let all = data.list();
    if names.is_empty() {
        return Ok(all);
    }
    names
        .iter()
        .map(|n| {
            all.iter()
                .find(|s| s.name == *n || (n.len() >= 4 && s.id.starts_with(n.as_str())))
                .cloned()
                .ok_or_else(|| StateError::NoSuchContainer(n.clone()).into())
        })
        .collect()
}

/// The containers of `before` that are still running.
pub fn still_running(before: &[Sample], data: &DataRoot) -> Vec<State> {
    let alive = data.list();
    before
        .iter()
        .filter_map(|b| alive.iter().find(|s| s.id == b.state.id).cloned())
        .collect()
}

/// Read each container's cgroup now.
pub fn sample(states: Vec<State>) -> Vec<Sample> {
    states
        .into_iter()
        .map(|state| {
            let stats = state
                .cgroup
                .clone()
                .map(|l| Cgroup::open(l).stats())
                .unwrap_or_default();
            Sample {
                state,
                stats,
                at: Instant::now(),
            }
        })
        .collect()
}

/// The usage from `before` to `after` (of the same container); memory
/// percentages of `host_memory` when it has no limit.
pub fn usage(before: &Sample, after: &Sample, host_memory: u64) -> Usage {
    let wall = after.at.duration_since(before.at).as_nanos().max(1) as f64;
    let cpu = after
        .stats
        .cpu_usage_ns
        .saturating_sub(before.stats.cpu_usage_ns) as f64
        / wall
        * 100.0;
    let limit = after.stats.memory_limit.unwrap_or(host_memory);
    Usage {
        cpu_percent: cpu,
        memory: after.stats.memory_usage,
        memory_limit: limit,
        memory_percent: after.stats.memory_usage as f64 / limit.max(1) as f64 * 100.0,
        pids: after.stats.pids,
    }
}

/// The host's memory, bytes (`MemTotal`).
pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

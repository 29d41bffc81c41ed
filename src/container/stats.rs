//! `containr stats`: live resource usage of running containers, read from
//! their cgroups.

use std::io::Write;
use std::time::{Duration, Instant};

use super::Error as ContainerError;
use super::state::{DataRoot, State};
use crate::cgroup::{Cgroup, Stats};
use crate::error::Error;
use crate::util::human_bytes;

/// Errors of `stats`.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("no such container: {0}")]
    NoSuchContainer(String),
}

/// One sample of one container.
struct Sample {
    state: State,
    stats: Stats,
    at: Instant,
}

/// Print usage of the named containers (all running ones if none named):
/// once with `no_stream`, else every second until they have all ended.
pub fn stats(data: &DataRoot, names: &[String], no_stream: bool) -> Result<(), Error> {
    let pick = |all: Vec<State>| -> Result<Vec<State>, Error> {
        if names.is_empty() {
            return Ok(all);
        }
        names
            .iter()
            .map(|n| {
                all.iter()
                    .find(|s| s.name == *n || (n.len() >= 4 && s.id.starts_with(n.as_str())))
                    .map(clone_state)
                    .ok_or_else(|| StatsError::NoSuchContainer(n.clone()))
            })
            .collect::<Result<_, _>>()
            .map_err(|e| ContainerError::from(e).into())
    };
    let mut before = sample(pick(data.list())?);
    let interval = if no_stream {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(1)
    };
    let host_memory = host_memory();
    loop {
        std::thread::sleep(interval);
        let after = sample(pick_alive(&before, data));
        let mut out = std::io::stdout().lock();
        if !no_stream {
            // Clear the screen and home the cursor, as docker does.
            let _ = out.write_all(b"\x1b[2J\x1b[H");
        }
        let _ = writeln!(
            out,
            "{:<14} {:<20} {:>8}   {:<22} {:>7}   {:>5}",
            "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"
        );
        for a in &after {
            let Some(b) = before.iter().find(|b| b.state.id == a.state.id) else {
                continue;
            };
            let wall = a.at.duration_since(b.at).as_nanos().max(1) as f64;
            let cpu =
                a.stats.cpu_usage_ns.saturating_sub(b.stats.cpu_usage_ns) as f64 / wall * 100.0;
            let limit = a.stats.memory_limit.unwrap_or(host_memory);
            let mem_pct = a.stats.memory_usage as f64 / limit.max(1) as f64 * 100.0;
            let _ = writeln!(
                out,
                "{:<14} {:<20} {:>7.2}%   {:<22} {:>6.2}%   {:>5}",
                &a.state.id[..12],
                a.state.name,
                cpu,
                format!(
                    "{} / {}",
                    human_bytes(a.stats.memory_usage),
                    human_bytes(limit)
                ),
                mem_pct,
                a.stats.pids
            );
        }
        let _ = out.flush();
        if no_stream || after.is_empty() {
            return Ok(());
        }
        before = after;
    }
}

fn clone_state(s: &State) -> State {
    serde_json::from_value(serde_json::to_value(s).expect("plain data")).expect("round trip")
}

/// The containers of `before` that are still running.
fn pick_alive(before: &[Sample], data: &DataRoot) -> Vec<State> {
    let alive = data.list();
    before
        .iter()
        .filter_map(|b| alive.iter().find(|s| s.id == b.state.id).map(clone_state))
        .collect()
}

fn sample(states: Vec<State>) -> Vec<Sample> {
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

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

//! The commands on a running container's cgroup, as runc has them: `ps`,
//! `pause`/`resume`, `update` and `events`. Each reopens the cgroup the
//! container's state records ([`crate::cgroup::oci::OciCgroup`]).

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxBlockIoBuilder, LinuxPidsBuilder, LinuxResources};
use serde_json::{Value, json};

use super::Error;
use super::state::{Record, Root, Status};
use crate::cgroup::oci::OciCgroup;

/// A `--resources` document larger than this is refused (it is a few
/// hundred bytes in practice).
const MAX_RESOURCES: u64 = 1 << 20;

/// The cgroup container `id` recorded; `NotRunning` if it has none.
fn cgroup(record: &Record) -> Result<OciCgroup, Error> {
    record
        .cgroup
        .clone()
        .ok_or_else(|| Error::NotRunning(record.id.clone()))
}

/// The host pids of every process in container `id`'s cgroup, sorted.
pub fn pids(root: &Root, id: &str) -> Result<Vec<i32>, Error> {
    let record = root.load(id)?;
    Ok(cgroup(&record)?.pids())
}

/// `pause`: freeze every process of a created or running container.
pub fn pause(root: &Root, id: &str) -> Result<(), Error> {
    let record = root.load(id)?;
    match root.status(&record) {
        Status::Running | Status::Created => Ok(cgroup(&record)?.freeze()?),
        status => Err(Error::NotInState {
            id: id.to_string(),
            status,
            wanted: "running",
        }),
    }
}

/// `resume`: thaw a paused container.
pub fn resume(root: &Root, id: &str) -> Result<(), Error> {
    let record = root.load(id)?;
    match root.status(&record) {
        Status::Paused => Ok(cgroup(&record)?.thaw()?),
        status => Err(Error::NotInState {
            id: id.to_string(),
            status,
            wanted: "paused",
        }),
    }
}

/// `update`: apply `resources` to a container that has not stopped.
pub fn update(root: &Root, id: &str, resources: &LinuxResources) -> Result<(), Error> {
    let mut record = root.load(id)?;
    if root.status(&record) == Status::Stopped {
        return Err(Error::NotRunning(id.to_string()));
    }
    cgroup(&record)?.update(resources)?;
    // Recorded too, so the container's config says what its cgroup has.
    if let Some(spec) = record.spec.as_mut() {
        let mut linux = spec.linux().clone().unwrap_or_default();
        linux.set_resources(Some(merge_resources(linux.resources().as_ref(), resources)));
        spec.set_linux(Some(linux));
        root.save(&record)?;
    }
    Ok(())
}

/// `new`'s values over `old`'s, field by field (an update of the memory
/// limit keeps the recorded reservation).
fn merge_resources(old: Option<&LinuxResources>, new: &LinuxResources) -> LinuxResources {
    fn merge(into: &mut Value, from: Value) {
        match (into, from) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b.into_iter().filter(|(_, v)| !v.is_null()) {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (slot, v) => *slot = v,
        }
    }
    let as_json = |r: &LinuxResources| serde_json::to_value(r).expect("resources serialise");
    let mut merged = old.map(as_json).unwrap_or_else(|| json!({}));
    merge(&mut merged, as_json(new));
    serde_json::from_value(merged).unwrap_or_else(|_| new.clone())
}

/// `events --stats`' line: `{"type":"stats","id":..,"data":..}`.
pub fn stats(root: &Root, id: &str) -> Result<Value, Error> {
    let record = root.load(id)?;
    if root.status(&record) == Status::Stopped {
        return Err(Error::NotRunning(id.to_string()));
    }
    Ok(event("stats", id, cgroup(&record)?.stats()))
}

fn event(kind: &str, id: &str, data: Value) -> Value {
    json!({"type": kind, "id": id, "data": data})
}

/// `events`: a stats line every `interval`, and an `oom` line when the
/// kernel's OOM killer has acted since the last one, until the container
/// stops. `emit` writes a line; an error from it (a closed pipe) ends the
/// stream.
pub fn events(
    root: &Root,
    id: &str,
    interval: Duration,
    mut emit: impl FnMut(&Value) -> std::io::Result<()>,
) -> Result<(), Error> {
    let record = root.load(id)?;
    if root.status(&record) == Status::Stopped {
        return Err(Error::NotRunning(id.to_string()));
    }
    let cgroup = cgroup(&record)?;
    let oom = crate::cgroup::Cgroup::open(cgroup.location().clone());
    let mut ooms = oom.oom_kills();
    // Checked this often for the container's end and for OOM kills, so
    // neither waits a whole interval.
    let tick = interval.min(Duration::from_millis(100));
    let mut next = Instant::now();
    while root.status(&record) != Status::Stopped {
        let stats = cgroup.stats();
        let now = oom.oom_kills();
        if now > ooms {
            ooms = now;
            if emit(&event("oom", id, Value::Null)).is_err() {
                return Ok(());
            }
        }
        if Instant::now() >= next {
            if emit(&event("stats", id, stats)).is_err() {
                return Ok(());
            }
            next = Instant::now() + interval;
        }
        std::thread::sleep(tick);
    }
    // The OOM kill that ended the container comes last.
    if oom.oom_kills() > ooms {
        let _ = emit(&event("oom", id, Value::Null));
    }
    Ok(())
}

/// runc's `update` flags; each given one replaces that value.
#[derive(Debug, Default, Clone)]
pub struct UpdateFlags {
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub memory_reservation: Option<String>,
    pub kernel_memory: Option<String>,
    pub cpu_shares: Option<u64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
}

/// The resources `update` applies: the `--resources` document (a file,
/// or `-` for stdin) if any, with the flags on top.
pub fn resources(file: Option<&Path>, flags: &UpdateFlags) -> Result<LinuxResources, Error> {
    let mut r: LinuxResources = match file {
        None => LinuxResources::default(),
        Some(path) => {
            let mut text = Vec::new();
            let read = if path == Path::new("-") {
                std::io::stdin()
                    .lock()
                    .take(MAX_RESOURCES + 1)
                    .read_to_end(&mut text)
            } else {
                std::fs::File::open(path)
                    .and_then(|f| f.take(MAX_RESOURCES + 1).read_to_end(&mut text))
            };
            let bad = |why: String| Error::Bundle {
                path: path.to_path_buf(),
                why,
            };
            read.map_err(|e| bad(e.to_string()))?;
            if text.len() as u64 > MAX_RESOURCES {
                return Err(bad("larger than 1 MiB".into()));
            }
            serde_json::from_slice(&text).map_err(|e| bad(format!("not linux.resources: {e}")))?
        }
    };
    let size = |flag: &str, v: &Option<String>| -> Result<Option<i64>, Error> {
        v.as_deref().map(|s| parse_bytes(flag, s)).transpose()
    };
    if flags.kernel_memory.is_some() {
        return Err(Error::unsupported(
            "--kernel-memory",
            "kernel memory limits are deprecated by the kernel",
        ));
    }
    let limit = size("--memory", &flags.memory)?;
    let swap = size("--memory-swap", &flags.memory_swap)?;
    let reservation = size("--memory-reservation", &flags.memory_reservation)?;
    if limit.is_some() || swap.is_some() || reservation.is_some() {
        let mut m = r.memory().unwrap_or_default();
        if let Some(v) = limit {
            m.set_limit(Some(v));
        }
        if let Some(v) = swap {
            m.set_swap(Some(v));
        }
        if let Some(v) = reservation {
            m.set_reservation(Some(v));
        }
        r.set_memory(Some(m));
    }
    let f = flags;
    if f.cpu_shares.is_some()
        || f.cpu_period.is_some()
        || f.cpu_quota.is_some()
        || f.cpu_rt_period.is_some()
        || f.cpu_rt_runtime.is_some()
        || f.cpuset_cpus.is_some()
        || f.cpuset_mems.is_some()
    {
        let mut c = r.cpu().clone().unwrap_or_default();
        if f.cpu_shares.is_some() {
            c.set_shares(f.cpu_shares);
        }
        if f.cpu_period.is_some() {
            c.set_period(f.cpu_period);
        }
        if f.cpu_quota.is_some() {
            c.set_quota(f.cpu_quota);
        }
        if f.cpu_rt_period.is_some() {
            c.set_realtime_period(f.cpu_rt_period);
        }
        if f.cpu_rt_runtime.is_some() {
            c.set_realtime_runtime(f.cpu_rt_runtime);
        }
        if f.cpuset_cpus.is_some() {
            c.set_cpus(f.cpuset_cpus.clone());
        }
        if f.cpuset_mems.is_some() {
            c.set_mems(f.cpuset_mems.clone());
        }
        r.set_cpu(Some(c));
    }
    if let Some(limit) = f.pids_limit {
        let pids = LinuxPidsBuilder::default()
            .limit(limit)
            .build()
            .expect("limit is set");
        r.set_pids(Some(pids));
    }
    if let Some(weight) = f.blkio_weight {
        let mut b = r
            .block_io()
            .clone()
            .unwrap_or_else(|| LinuxBlockIoBuilder::default().build().expect("empty"));
        b.set_weight(Some(weight));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

/// A memory flag's value: docker's sizes (`512m`, `1g`, bytes) or `-1`
/// for no limit, as runc reads them.
fn parse_bytes(flag: &str, s: &str) -> Result<i64, Error> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    let bytes = crate::cgroup::parse_size(s)
        .map_err(|e| Error::unsupported(flag, format!("{s:?}: {e}")))?;
    i64::try_from(bytes).map_err(|_| Error::unsupported(flag, format!("{s:?} is too large")))
}

/// A Go duration as runc's `--interval` takes it (`5s`, `500ms`, `1m30s`).
pub fn parse_interval(s: &str) -> Result<Duration, Error> {
    let bad = || {
        Error::unsupported(
            "--interval",
            format!("{s:?} is not a duration like 5s or 500ms"),
        )
    };
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(digits);
        let num: f64 = num.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let secs = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::try_from_secs_f64(num * secs).map_err(|_| bad())?;
        rest = tail;
    }
    if total.is_zero() {
        return Err(bad());
    }
    Ok(total)
}

/// Host `ps` run with `options` (`-ef` if none), cut down to `pids`.
pub fn ps_table(pids: &[i32], options: &[String]) -> Result<String, Error> {
    let default = ["-ef".to_string()];
    let options = if options.is_empty() {
        &default[..]
    } else {
        options
    };
    let out = std::process::Command::new("ps")
        .args(options)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(Error::sys("running ps"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::unsupported("ps options", err.trim().to_string()));
    }
    filter_ps_table(&String::from_utf8_lossy(&out.stdout), pids)
        .map_err(|why| Error::unsupported("ps options", why))
}

/// runc's `ps` table: the lines of host `ps` output (`table`) whose PID
/// column is one of `pids`, under its header.
pub fn filter_ps_table(table: &str, pids: &[i32]) -> Result<String, &'static str> {
    let mut lines = table.lines();
    let header = lines.next().ok_or("ps printed nothing")?;
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or("ps printed no PID column: give it options that show one")?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_as_go_durations() {
        assert_eq!(parse_interval("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_interval("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_interval("1.5s").unwrap(), Duration::from_millis(1500));
        for bad in ["", "5", "s", "0s", "5x", "-1s"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ps_table_keeps_the_header_and_the_containers_pids() {
        let table = "UID  PID  PPID  C STIME TTY TIME CMD\n\
                     root 1    0     0 10:00 ?   0:01 /sbin/init\n\
                     root 42   1     0 10:00 ?   0:00 sleep 100\n\
                     root 420  1     0 10:00 ?   0:00 42\n";
        let out = filter_ps_table(table, &[42]).unwrap();
        assert_eq!(
            out,
            "UID  PID  PPID  C STIME TTY TIME CMD\nroot 42   1     0 10:00 ?   0:00 sleep 100\n"
        );
        assert!(filter_ps_table("USER COMMAND\nroot x\n", &[1]).is_err());
    }

    #[test]
    fn update_flags_land_on_the_resources() {
        let flags = UpdateFlags {
            memory: Some("64m".into()),
            memory_swap: Some("-1".into()),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some(20),
            blkio_weight: Some(300),
            ..Default::default()
        };
        let r = resources(None, &flags).unwrap();
        let m = r.memory().unwrap();
        assert_eq!(m.limit(), Some(64 << 20));
        assert_eq!(m.swap(), Some(-1));
        assert_eq!(m.reservation(), None);
        let c = r.cpu().clone().unwrap();
        assert_eq!((c.quota(), c.period()), (Some(50_000), Some(100_000)));
        assert_eq!(c.cpus().as_deref(), Some("0"));
        assert_eq!(c.shares(), None);
        assert_eq!(r.pids().as_ref().map(|p| p.limit()), Some(20));
        assert_eq!(r.block_io().as_ref().and_then(|b| b.weight()), Some(300));
        assert!(
            resources(None, &UpdateFlags::default())
                .unwrap()
                .memory()
                .is_none()
        );
        let bad = UpdateFlags {
            memory: Some("lots".into()),
            ..Default::default()
        };
        assert!(resources(None, &bad).is_err());
    }

    #[test]
    fn an_update_is_recorded_over_the_resources_it_does_not_name() {
        let old: LinuxResources = serde_json::from_value(json!({
            "memory": {"limit": 1000000, "reservation": 4096},
            "cpu": {"shares": 512}
        }))
        .unwrap();
        let new: LinuxResources =
            serde_json::from_value(json!({"memory": {"limit": 2000000}, "pids": {"limit": 9}}))
                .unwrap();
        let r = merge_resources(Some(&old), &new);
        let m = r.memory().unwrap();
        assert_eq!((m.limit(), m.reservation()), (Some(2000000), Some(4096)));
        assert_eq!(r.cpu().as_ref().and_then(|c| c.shares()), Some(512));
        assert_eq!(r.pids().as_ref().map(|p| p.limit()), Some(9));
        assert_eq!(merge_resources(None, &new), new);
    }

    #[test]
    fn flags_override_the_resources_file() {
        let dir = std::env::temp_dir().join(format!("containr-ops-{}", std::process::id()));
        std::fs::write(
            &dir,
            r#"{"memory":{"limit":1048576,"reservation":4096},"pids":{"limit":5}}"#,
        )
        .unwrap();
        let flags = UpdateFlags {
            memory: Some("2m".into()),
            ..Default::default()
        };
        let r = resources(Some(&dir), &flags);
        std::fs::remove_file(&dir).unwrap();
        let r = r.unwrap();
        let m = r.memory().unwrap();
        assert_eq!((m.limit(), m.reservation()), (Some(2 << 20), Some(4096)));
        assert_eq!(r.pids().as_ref().map(|p| p.limit()), Some(5));
    }
}

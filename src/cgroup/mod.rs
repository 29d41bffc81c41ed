//! Resource limits: one cgroup per container, on cgroup v2 or, on v1 and
//! hybrid hosts, on the v1 controllers.
//!
//! The two hierarchies differ in file names, units and layout, so each is a
//! backend behind [`Hierarchy`]; everything above it ([`Limits`], [`Cgroup`],
//! [`Stats`]) is the same for both. Files are written directly: the whole
//! interface is a handful of `write(2)`s to cgroupfs, which reads more
//! clearly than a wrapper crate and keeps it off the start-up path.
//!
//! Where the container's cgroup goes:
//! - v2: `/sys/fs/cgroup/containr/<id>`; the controllers it needs are
//!   enabled in `cgroup.subtree_control` of the root and of `containr/`.
//! - v1: `containr/<id>` under containr's own cgroup in each controller's
//!   hierarchy, so a containr run from inside a limited cgroup (a CI job, a
//!   systemd unit) keeps its containers inside that limit.
//!
//! The limits are written in one place for both front ends: `containr
//! run`'s [`Limits`] become the spec's `linux.resources`
//! ([`oci::resources_of`]), which `oci`'s mapping writes, as it writes an
//! OCI container's ([`oci::OciCgroup`], for `containr-oci`, placed where
//! its `cgroupsPath` says). The backends here only place `run`'s cgroup.

pub mod devices;
pub mod oci;
mod v1;
mod v2;

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::step;

pub use v1::V1;
pub use v2::V2;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid size {0:?}: {1}")]
    Size(String, &'static str),
    #[error("invalid {flag} {value:?}: {why}")]
    Value {
        flag: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("cpuset {cpus:?} is not available: this host has CPUs {available}")]
    Cpuset { cpus: String, available: String },
    #[error("{flag} needs the {controller} cgroup controller, which this host does not offer")]
    NoController {
        flag: &'static str,
        controller: &'static str,
    },
    #[error("no cgroup hierarchy found under /sys/fs/cgroup")]
    NoHierarchy,
    #[error("CONTAINR_CGROUP_V2={0}: not a cgroup2 mount")]
    NotV2(PathBuf),
    #[error("{field}: {why}")]
    Resource { field: String, why: String },
    /// A `linux.resources` field whose controller the cgroup lacks.
    #[error("{field}: needs the {controller} cgroup controller, which this host does not offer")]
    Missing {
        field: String,
        controller: &'static str,
    },
    #[error("cgroupsPath {path:?}: {why}")]
    Path { path: String, why: &'static str },
    #[error("cgroup {0}: {1}")]
    Timeout(PathBuf, &'static str),
    #[error("cgroup {0}")]
    Io(#[from] crate::util::PathIo),
}

pub(crate) use crate::util::io_err;

/// The resource-limit flags, as given (`--memory 32m`, `--cpus 0.5`, ...).
#[derive(Debug, Clone, Default)]
pub struct LimitFlags {
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub cpus: Option<String>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub device_read_bps: Vec<String>,
    pub device_write_bps: Vec<String>,
}

impl LimitFlags {
    /// Check and convert every flag; nothing is created before this passes.
    pub fn parse(&self) -> Result<Limits, Error> {
        let memory_swap = match self.memory_swap.as_deref() {
            None => None,
            Some("-1") => Some(-1),
            Some(s) => Some(parse_size(s)? as i64),
        };
        let limits = Limits {
            memory: match self.memory.as_deref() {
                Some(s) => parse_memory(s)?,
                None => None,
            },
            memory_swap,
            cpus: self.cpus.as_deref().map(parse_cpus).transpose()?,
            cpu_shares: self.cpu_shares,
            cpuset_cpus: self.cpuset_cpus.clone(),
            pids_limit: self.pids_limit,
            device_read_bps: self
                .device_read_bps
                .iter()
                .map(|d| parse_device_rate("--device-read-bps", d))
                .collect::<Result<_, _>>()?,
            device_write_bps: self
                .device_write_bps
                .iter()
                .map(|d| parse_device_rate("--device-write-bps", d))
                .collect::<Result<_, _>>()?,
            all_devices: false,
            devices: Vec::new(),
        };
        if let (Some(m), Some(total)) = (limits.memory, limits.memory_swap)
            && total != -1
            && (total as u64) < m
        {
            return Err(Error::Value {
                flag: "--memory-swap",
                value: self.memory_swap.clone().unwrap_or_default(),
                why: "must be at least --memory (it counts memory plus swap), or -1",
            });
        }
        // As docker: a memory-plus-swap total means nothing without the
        // memory part (v2 could not tell the swap from it).
        if limits.memory.is_none() && limits.memory_swap.is_some_and(|s| s != -1) {
            return Err(Error::Value {
                flag: "--memory-swap",
                value: self.memory_swap.clone().unwrap_or_default(),
                why: "needs --memory too (it counts memory plus swap), or -1",
            });
        }
        if let Some(s) = limits.cpu_shares
            && !(2..=262_144).contains(&s)
        {
            return Err(Error::Value {
                flag: "--cpu-shares",
                value: s.to_string(),
                why: "must be between 2 and 262144",
            });
        }
        Ok(limits)
    }
}

/// The limits a container may be given, in the units docker's flags use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// `--memory`, bytes.
    pub memory: Option<u64>,
    /// `--memory-swap`: memory plus swap, bytes; `-1` for unlimited swap.
    pub memory_swap: Option<i64>,
    /// `--cpus`, in CPUs (0.5 = half of one).
    pub cpus: Option<f64>,
    /// `--cpu-shares`, docker's relative weight (default 1024).
    pub cpu_shares: Option<u64>,
    /// `--cpuset-cpus`, e.g. `0-1,3`.
    pub cpuset_cpus: Option<String>,
    /// `--pids-limit`; `-1` or `0` for unlimited, as docker.
    pub pids_limit: Option<i64>,
    /// `--device-read-bps` / `--device-write-bps`: (major, minor, bytes/s).
    pub device_read_bps: Vec<(u64, u64, u64)>,
    pub device_write_bps: Vec<(u64, u64, u64)>,
    /// `--privileged`: every device allowed, not just docker's default set.
    pub all_devices: bool,
    /// `--device`, `--device-cgroup-rule`: rules after docker's default set.
    #[serde(skip)]
    pub devices: Vec<devices::Rule>,
}

/// The period `--cpus` quotas are expressed in, as docker: 100 ms.
pub const CPU_PERIOD_US: u64 = 100_000;

impl Limits {
    /// `--cpus` as a CFS quota per [`CPU_PERIOD_US`].
    pub fn cpu_quota_us(&self) -> Option<u64> {
        self.cpus.map(|c| (c * CPU_PERIOD_US as f64).round() as u64)
    }

    /// Memory plus swap the container gets, bytes (`-1`: unlimited swap),
    /// by docker's rule: `--memory-swap` as given; without it, on a host
    /// that accounts swap (`swap_accounted`), as much swap again as
    /// `--memory` (twice the memory in all); otherwise no swap limit.
    pub fn memory_swap_total(&self, swap_accounted: bool) -> Option<i64> {
        match (self.memory, self.memory_swap) {
            (_, Some(total)) => Some(total),
            (Some(m), None) if swap_accounted => Some((m as i64).saturating_mul(2)),
            _ => None,
        }
    }
}

/// Docker's size syntax (`RAMInBytes`): a number, an optional unit among
/// b, k, m, g, t, p (powers of 1024, any case), an optional `b`/`ib` after it.
pub fn parse_size(s: &str) -> Result<u64, Error> {
    let err = || {
        Error::Size(
            s.to_string(),
            "expected a number with an optional unit b, k, m, g, t or p (e.g. 32m)",
        )
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().map_err(|_| err())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let mult: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        "p" | "pb" | "pib" => 1 << 50,
        _ => return Err(err()),
    };
    let bytes = num * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 {
        return Err(err());
    }
    if bytes > u64::MAX as f64 {
        return Err(Error::Size(s.to_string(), "larger than 16 EiB"));
    }
    Ok(bytes as u64)
}

/// The smallest `--memory` docker accepts; a smaller limit only gets the
/// container OOM-killed as it starts.
pub const MIN_MEMORY: u64 = 6 << 20;

/// `--memory`: a size of at least [`MIN_MEMORY`]; 0 is no limit, as in
/// docker.
pub fn parse_memory(s: &str) -> Result<Option<u64>, Error> {
    let bytes = parse_size(s)?;
    if bytes == 0 {
        return Ok(None);
    }
    if bytes < MIN_MEMORY {
        return Err(Error::Value {
            flag: "--memory",
            value: s.to_string(),
            why: "Minimum memory limit allowed is 6MB",
        });
    }
    Ok(Some(bytes))
}

/// `--cpus`: a positive decimal no larger than the host's CPU count.
pub fn parse_cpus(s: &str) -> Result<f64, Error> {
    let v: f64 = s.parse().map_err(|_| Error::Value {
        flag: "--cpus",
        value: s.to_string(),
        why: "expected a decimal number of CPUs, e.g. 0.5",
    })?;
    let host = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if !(v > 0.0 && v <= host) {
        return Err(Error::Value {
            flag: "--cpus",
            value: s.to_string(),
            why: "must be more than 0 and at most the number of CPUs",
        });
    }
    Ok(v)
}

/// A cpuset list (`0-2,4`) as the set of CPUs it names.
pub fn parse_cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in s.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// `--device-read-bps /dev/sda:1mb`: the device's numbers and the rate.
pub fn parse_device_rate(flag: &'static str, s: &str) -> Result<(u64, u64, u64), Error> {
    let bad = |why| Error::Value {
        flag,
        value: s.to_string(),
        why,
    };
    let (dev, rate) = s
        .rsplit_once(':')
        .ok_or_else(|| bad("expected DEVICE:RATE, e.g. /dev/sda:1mb"))?;
    let rate = parse_size(rate)?;
    let meta = fs::metadata(dev).map_err(|_| bad("no such device"))?;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if !meta.file_type().is_block_device() {
        return Err(bad("not a block device"));
    }
    let rdev = meta.rdev();
    Ok((libc::major(rdev) as u64, libc::minor(rdev) as u64, rate))
}

/// `--cgroup-parent`: the cgroup a container's own is made in, instead of
/// `containr/`, as docker's cgroupfs driver places it: an absolute path
/// from each hierarchy's root, a relative one from containr's own cgroup
/// (v1) or its parent (v2), as runc resolves a relative `cgroupsPath`.
/// `..` is refused, so it never leads out of the hierarchy; the levels
/// missing are made (and left, as docker leaves them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    place: oci::Place,
    raw: String,
}

impl Parent {
    /// Check `raw`; `None` for an empty one (the default place).
    pub fn parse(raw: &str) -> Result<Option<Parent>, Error> {
        if raw.is_empty() {
            return Ok(None);
        }
        let bad = |why| Error::Value {
            flag: "--cgroup-parent",
            value: raw.to_string(),
            why,
        };
        if raw.contains('\0') || raw.contains('\n') {
            return Err(bad("must not contain NUL or newline"));
        }
        let place = oci::clean_place(raw).map_err(bad)?;
        Ok(Some(Parent {
            place,
            raw: raw.to_string(),
        }))
    }
}

/// What `containr stats` shows, read from the cgroup.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub memory_usage: u64,
    /// `None` when unlimited.
    pub memory_limit: Option<u64>,
    /// CPU time used, nanoseconds.
    pub cpu_usage_ns: u64,
    pub pids: u64,
}

/// A cgroup hierarchy: the v1 controllers or the v2 unified tree.
pub trait Hierarchy {
    /// `v1` or `v2`, for messages.
    fn name(&self) -> &'static str;
    /// Make the container's cgroup, in `parent` or containr's own
    /// `containr/`, and write its limits: `limits` in the spec's form
    /// ([`oci::resources_of`], returned for the container's spec), written
    /// by the OCI containers' own mapping (`oci::write_limits`).
    fn create(
        &self,
        id: &str,
        limits: &Limits,
        parent: Option<&Parent>,
    ) -> Result<(Cgroup, oci_spec::runtime::LinuxResources), Error>;
    /// Container cgroups with no process in them, with their age: what a
    /// killed `containr run` leaves behind (a live container's cgroup is
    /// empty only in its first milliseconds). One directory listing and one
    /// read per container, so a run can afford to look every time.
    fn empty(&self) -> Vec<(Location, std::time::Duration)>;
}

/// Whether cgroup `dir` holds no process, and since when it exists.
fn empty_since(dir: &Path) -> Option<std::time::Duration> {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).ok()?;
    if !procs.trim().is_empty() {
        return None;
    }
    let made = std::fs::metadata(dir).and_then(|m| m.modified()).ok()?;
    Some(made.elapsed().unwrap_or_default())
}

/// The container directories (named by 64-hex ids) in `parent`.
fn container_dirs(parent: &Path) -> Vec<(String, PathBuf)> {
    std::fs::read_dir(parent)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| (name, e.path()))
        })
        .collect()
}

/// The host's hierarchy: v2 when `/sys/fs/cgroup` is cgroup2, else the v1
/// controllers (on a hybrid host the v2 mount has no controllers to use).
///
/// `CONTAINR_CGROUP_V2` names another cgroup2 mount to use instead: on a
/// hybrid host, the controller-less `/sys/fs/cgroup/unified`, where the v2
/// code paths (placement, device filter, removal) can be tested for real.
pub fn detect() -> Result<Box<dyn Hierarchy>, Error> {
    Ok(match host(false)? {
        Host::V1(v1) => Box::new(v1),
        Host::V2(v2) => Box::new(v2),
    })
}

/// The hierarchy [`detect`] chooses, as itself.
pub(crate) enum Host {
    V1(V1),
    V2(V2),
}

/// The host's hierarchy, as [`detect`] says; `all_v1` finds every v1
/// controller the OCI resources use, not just those containr's own limits
/// need.
pub(crate) fn host(all_v1: bool) -> Result<Host, Error> {
    if let Some(root) = std::env::var_os("CONTAINR_CGROUP_V2") {
        let root = PathBuf::from(root);
        if !V2::is_v2(&root) {
            return Err(Error::NotV2(root));
        }
        return Ok(Host::V2(V2::new(root)));
    }
    let root = Path::new("/sys/fs/cgroup");
    if V2::is_v2(root) {
        return Ok(Host::V2(V2::new(root.to_path_buf())));
    }
    Ok(Host::V1(V1::from_proc(all_v1)?))
}

/// Where a container's cgroup is, in a form that can be saved in its state
/// and opened again by `containr stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Location {
    V2(PathBuf),
    /// (controller, directory) for each controller used.
    V1(Vec<(String, PathBuf)>),
}

/// How a child `namespace::clone_and_exec` makes gets into a cgroup by
/// itself, so that no other process has to move it: a move by another
/// process takes the kernel's global threadgroup lock and waits for an RCU
/// grace period (5-12 ms on a v1 host).
#[derive(Debug, Default)]
pub struct Entry {
    /// v2: the directory, for `clone3(CLONE_INTO_CGROUP)` (none where it
    /// cannot be opened: the caller then moves the child, [`Cgroup::add`]).
    pub target: Option<fs::File>,
    /// v1: each hierarchy's `tasks` file, open for writing, for the child
    /// to write `0` to before its exec (a thread moving itself skips that
    /// lock). Opened here, with the caller's credentials, which is what
    /// cgroup v1 checks.
    pub tasks: Vec<fs::File>,
}

impl Location {
    /// How a cloned child enters this cgroup: see [`Entry`].
    pub fn entry(&self) -> Result<Entry, Error> {
        Ok(match self {
            Location::V2(dir) => Entry {
                target: fs::File::open(dir).ok(),
                tasks: Vec::new(),
            },
            Location::V1(dirs) => Entry {
                target: None,
                tasks: (dirs.iter().map(|(_, d)| d.as_path()))
                    .filter(|d| d.is_dir())
                    .map(|d| {
                        let path = d.join("tasks");
                        fs::OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .map_err(|e| io_err(&path)(e).into())
                    })
                    .collect::<Result<_, Error>>()?,
            },
        })
    }

    /// Whether the host accounts swap for this cgroup (v2
    /// `memory.swap.max`, v1 `memory.memsw.limit_in_bytes`): where it does
    /// not, `--memory` alone leaves swap unlimited.
    pub fn accounts_swap(&self) -> bool {
        match self {
            Location::V2(dir) => dir.join("memory.swap.max").exists(),
            Location::V1(dirs) => v1_dir(dirs, "memory")
                .is_some_and(|d| d.join("memory.memsw.limit_in_bytes").exists()),
        }
    }
}

/// One container's cgroup; removed when dropped.
#[derive(Debug)]
pub struct Cgroup {
    location: Location,
    memory_limit: Option<u64>,
    /// False for a cgroup opened by `stats`: it belongs to its container.
    owned: bool,
}

impl Cgroup {
    pub(crate) fn new(location: Location, memory_limit: Option<u64>) -> Cgroup {
        Cgroup {
            location,
            memory_limit,
            owned: true,
        }
    }

    /// Remove the cgroup of a container whose `containr run` was killed
    /// before it could (its processes died with that run's init).
    pub fn remove_stale(location: Location) {
        drop(Cgroup::new(location, None));
    }

    /// A running container's cgroup, for reading only.
    pub fn open(location: Location) -> Cgroup {
        Cgroup {
            location,
            memory_limit: None,
            owned: false,
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Move process `pid` (and so everything it will fork) into the cgroup.
    pub fn add(&self, pid: i32) -> Result<(), Error> {
        step!("echo {pid} > cgroup.procs: the init and all it forks are inside the limits");
        match &self.location {
            Location::V2(dir) => write(&dir.join("cgroup.procs"), &pid.to_string()),
            Location::V1(dirs) => dirs
                .iter()
                .try_for_each(|(_, d)| write(&d.join("cgroup.procs"), &pid.to_string())),
        }
    }

    /// Whether the kernel's OOM killer ended a process in this cgroup.
    pub fn oom_killed(&self) -> bool {
        self.oom_kills() > 0
    }

    /// How many processes of this cgroup the kernel's OOM killer ended.
    pub fn oom_kills(&self) -> u64 {
        match &self.location {
            Location::V2(dir) => v2::oom_kills(dir),
            Location::V1(dirs) => dirs
                .iter()
                .find(|(c, _)| c == "memory")
                .map_or(0, |(_, d)| v1::oom_kills(d)),
        }
    }

    /// The memory limit it was created with.
    pub fn memory_limit(&self) -> Option<u64> {
        self.memory_limit
    }

    pub fn stats(&self) -> Stats {
        match &self.location {
            Location::V2(dir) => v2::stats(dir),
            Location::V1(dirs) => v1::stats(dirs),
        }
    }

    fn dirs(&self) -> Vec<&Path> {
        match &self.location {
            Location::V2(dir) => vec![dir.as_path()],
            Location::V1(dirs) => dirs.iter().map(|(_, d)| d.as_path()).collect(),
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        for dir in self.dirs() {
            let _ = remove_dir(dir);
        }
    }
}

/// rmdir a cgroup. The last processes of a container may still be on their
/// way out (rmdir says EBUSY until they are): retry, but boundedly (200 ms).
pub(crate) fn remove_dir(dir: &Path) -> std::io::Result<()> {
    let mut attempt = 0;
    loop {
        match fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 99 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            r => return r,
        }
    }
}

/// The directory of the v1 hierarchy holding `controller`, among a
/// container's (controllers, directory) pairs.
pub(crate) fn v1_dir(dirs: &[(String, PathBuf)], controller: &str) -> Option<PathBuf> {
    dirs.iter()
        .find(|(c, _)| c.split(',').any(|n| n == controller))
        .map(|(_, d)| d.clone())
}

/// Write a cgroup control file.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), Error> {
    Ok(fs::write(path, value).map_err(io_err(path))?)
}

/// Read a control file holding one number (`max` reads as `None`).
pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`memory.events`, `cpu.stat`).
pub(crate) fn keyed(path: &Path, key: &str) -> Option<u64> {
    fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Check `--cpuset-cpus` against the CPUs the parent cgroup may use.
pub(crate) fn check_cpuset(cpus: &str, available: &str) -> Result<(), Error> {
    let err = || Error::Cpuset {
        cpus: cpus.to_string(),
        available: available.trim().to_string(),
    };
    let wanted = parse_cpu_list(cpus).ok_or_else(|| Error::Value {
        flag: "--cpuset-cpus",
        value: cpus.to_string(),
        why: "expected a list such as 0-2,4",
    })?;
    let have = parse_cpu_list(available).ok_or_else(err)?;
    if wanted.iter().all(|c| have.contains(c)) {
        Ok(())
    } else {
        Err(err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_parents_are_cleaned_and_never_climb() {
        assert_eq!(Parent::parse("").unwrap(), None);
        let p = Parent::parse("/a//b/./c").unwrap().unwrap();
        assert_eq!(p.place.below_v1_root(Path::new("own")), Path::new("a/b/c"));
        let p = Parent::parse("a/b").unwrap().unwrap();
        assert_eq!(
            p.place.below_v1_root(Path::new("own")),
            Path::new("own/a/b")
        );
        for bad in ["..", "/a/../..", "a/..", "a\nb"] {
            assert!(Parent::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_follow_docker() {
        assert_eq!(parse_size("32m").unwrap(), 32 << 20);
        assert_eq!(parse_size("32MB").unwrap(), 32 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("2t").unwrap(), 2 << 40);
        for bad in ["12qb", "", "m", "-1m", "1..2m", "abc", "1 2m"] {
            let e = parse_size(bad).unwrap_err().to_string();
            assert!(e.contains("b, k, m, g, t or p"), "{bad:?}: {e}");
        }
        let e = parse_size("99999999t").unwrap_err().to_string();
        assert!(e.contains("larger than 16 EiB"), "{e}");
        assert_eq!(parse_memory("6m").unwrap(), Some(6 << 20));
        assert_eq!(parse_memory("0").unwrap(), None);
        for small in ["1", "6291455", "5.9m"] {
            let e = parse_memory(small).unwrap_err().to_string();
            assert!(
                e.contains("Minimum memory limit allowed is 6MB"),
                "{small}: {e}"
            );
        }
    }

    /// docker refuses a --memory-swap total without --memory; before, v1
    /// took it as memory plus swap and v2 as swap alone.
    #[test]
    fn memory_swap_needs_memory() {
        let flags = |memory: Option<&str>, swap: &str| LimitFlags {
            memory: memory.map(str::to_string),
            memory_swap: Some(swap.to_string()),
            ..LimitFlags::default()
        };
        let e = flags(None, "100m").parse().unwrap_err().to_string();
        assert!(
            e.contains("--memory-swap") && e.contains("needs --memory"),
            "{e}"
        );
        assert!(flags(Some("0"), "100m").parse().is_err());
        assert_eq!(flags(None, "-1").parse().unwrap().memory_swap, Some(-1));
        let l = flags(Some("64m"), "100m").parse().unwrap();
        assert_eq!((l.memory, l.memory_swap), (Some(64 << 20), Some(100 << 20)));
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,4"), Some(vec![0, 1, 2, 4]));
        assert_eq!(parse_cpu_list("1"), Some(vec![1]));
        assert_eq!(parse_cpu_list("2-1"), None);
        assert_eq!(parse_cpu_list("a"), None);
        assert!(check_cpuset("0", "0-1\n").is_ok());
        assert!(matches!(
            check_cpuset("0-3", "0-1\n"),
            Err(Error::Cpuset { .. })
        ));
        assert!(matches!(
            check_cpuset("x", "0-1\n"),
            Err(Error::Value { .. })
        ));
    }

    #[test]
    fn cpus_become_a_quota() {
        let l = Limits {
            cpus: Some(0.5),
            ..Limits::default()
        };
        assert_eq!(l.cpu_quota_us(), Some(50_000));
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("lots").is_err());
        assert!(parse_cpus("0.5").is_ok());
    }

    #[test]
    fn keyed_files() {
        let dir = tempfile_dir();
        let f = dir.join("memory.events");
        fs::write(&f, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").unwrap();
        assert_eq!(keyed(&f, "oom_kill"), Some(1));
        assert_eq!(keyed(&f, "oom"), Some(1));
        assert_eq!(keyed(&f, "nope"), None);
        fs::remove_dir_all(dir).unwrap();
    }

    pub(crate) fn tempfile_dir() -> PathBuf {
        let name = crate::util::random_hex(8);
        let dir = std::env::temp_dir().join(format!("containr-cgroup-test-{name}"));
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}

//! The cgroup of an OCI container: placed where `linux.cgroupsPath` says,
//! configured from `linux.resources`, frozen, signalled, read and removed
//! for `containr-oci`'s commands.
//!
//! The resources become a list of file writes (`Write`), made by a pure
//! function per hierarchy (`v1_writes`, `v2_writes`) from the spec and
//! the current values, so the mapping (units, conversions, order) is
//! tested without a kernel; applying them is a loop. It is the only
//! writer of limits: `containr run`'s cgroup gets its spec's resources
//! through it too (`write_limits`, errors named by `run`'s flags).
//!
//! Where the cgroup goes (as runc):
//! - absolute `cgroupsPath`: below each hierarchy's root;
//! - relative: on v1 below the runtime's own cgroup in each hierarchy, on v2
//!   below the parent of its own (its own has processes in it, so no
//!   controller could be enabled below it);
//! - with `--systemd-cgroup`, `slice:prefix:name` means the scope systemd
//!   would make, `/<expanded slice>/<prefix>-<name>.scope`, made directly in
//!   cgroupfs (no systemd is asked);
//! - none: `/containr-oci/<id>`.

use std::fs;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::devices::{self, Rule};
use super::{Error, Host, Location, io_err, keyed, read_u64, write};
use crate::step;

/// An OCI container's cgroup, saved in the runtime's state and reopened by
/// each command.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct OciCgroup {
    /// Its path below the hierarchy root (v2) or each v1 root, as
    /// `/proc/PID/cgroup` shows it.
    path: String,
    location: Location,
}

/// How long `freeze` waits for every task to stop, and `remove` for the
/// last ones to leave.
const SETTLE: Duration = Duration::from_secs(5);

/// Sub-cgroups deeper than this are not walked (for `pids`, `remove`).
const MAX_DEPTH: usize = 32;

impl OciCgroup {
    /// Make the cgroup and apply `resources`; on error nothing this call
    /// made is left.
    pub fn create(
        cgroups_path: Option<&str>,
        systemd: bool,
        id: &str,
        resources: Option<&LinuxResources>,
    ) -> Result<Self, Error> {
        let place = place(cgroups_path, systemd, id)?;
        let raw = cgroups_path.unwrap_or_default();
        let mut made = Vec::new();
        let made_cgroup = match super::host(true)? {
            Host::V2(v2) => make_v2(v2.root(), &place, raw, &mut made),
            Host::V1(v1) => make_v1(&v1, &place, raw, &mut made),
        };
        let applied = made_cgroup.and_then(|cg| {
            step!("cgroup {}: linux.resources", cg.path);
            cg.apply(resources, true, &mut made)?;
            Ok(cg)
        });
        if applied.is_err() {
            for dir in made.iter().rev() {
                let _ = super::remove_dir(dir);
            }
        }
        applied
    }

    /// The cgroup at `location` (of a containr container: its freezer, for
    /// `pause`), for [`OciCgroup::freeze`], [`OciCgroup::thaw`] and
    /// [`OciCgroup::pids`]; its [`OciCgroup::path`] is unknown (empty).
    pub fn at(location: Location) -> Self {
        OciCgroup {
            path: String::new(),
            location,
        }
    }

    /// Its path below the hierarchy root(s).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Move process `pid` into the cgroup (into each v1 hierarchy made).
    pub fn add(&self, pid: i32) -> Result<(), Error> {
        self.dirs()
            .iter()
            .filter(|d| d.is_dir())
            .try_for_each(|d| write(&d.join("cgroup.procs"), &pid.to_string()))
    }

    /// Apply `resources` to the existing cgroup (`containr-oci update`).
    pub fn update(&self, resources: &LinuxResources) -> Result<(), Error> {
        self.apply(Some(resources), false, &mut Vec::new())
    }

    /// Write `resources`; a v1 hierarchy not joined yet is made (recorded
    /// in `made`) and joined by the container's processes when one of them
    /// needs it.
    fn apply(
        &self,
        resources: Option<&LinuxResources>,
        new: bool,
        made: &mut Vec<PathBuf>,
    ) -> Result<(), Error> {
        let empty = LinuxResources::default();
        let devices = if new { Devices::New } else { Devices::Update };
        write_resources(
            &self.location,
            resources.unwrap_or(&empty),
            devices,
            &mut |controllers, dir| self.join_v1(controllers, dir, made),
        )
    }

    /// Make the v1 cgroup `dir` (of the hierarchy of `controllers`) if it
    /// is not yet, and move the container's processes into it.
    fn join_v1(&self, controllers: &str, dir: &Path, made: &mut Vec<PathBuf>) -> Result<(), Error> {
        if dir.is_dir() {
            return Ok(());
        }
        let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
        step!("mkdir -p {} (first needed now)", dir.display());
        for d in missing.iter().rev() {
            super::v1::make_dir(controllers, d)?;
            made.push(d.to_path_buf());
        }
        for pid in self.pids() {
            // It may have exited since it was listed.
            let _ = write(&dir.join("cgroup.procs"), &pid.to_string());
        }
        Ok(())
    }

    /// Stop every task (v1 `freezer.state`, v2 `cgroup.freeze`) and wait
    /// until the kernel says they all are; if they are not within
    /// `SETTLE` (5 s), thaw again and say so.
    pub fn freeze(&self) -> Result<(), Error> {
        let (file, on, _) = self.freezer()?;
        step!("echo {on} > {}", file.display());
        let deadline = Instant::now() + SETTLE;
        let mut writes = 0;
        loop {
            // v1 may stop at FREEZING when a task is busy in the kernel:
            // writing again retries it, as runc does.
            if writes % 50 == 0 {
                write(&file, on)?;
            }
            writes += 1;
            if self.is_frozen() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.thaw();
                return Err(Error::Timeout(
                    file,
                    "its tasks did not all stop within 5 s; thawed again",
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn thaw(&self) -> Result<(), Error> {
        let (file, _, off) = self.freezer()?;
        step!("echo {off} > {}", file.display());
        write(&file, off)
    }

    /// Whether every task is frozen (v1 `FROZEN`, v2 `frozen 1` in
    /// `cgroup.events`).
    pub fn is_frozen(&self) -> bool {
        match &self.location {
            Location::V2(dir) => keyed(&dir.join("cgroup.events"), "frozen") == Some(1),
            Location::V1(_) => self.freezer().is_ok_and(|(file, _, _)| {
                fs::read_to_string(file).is_ok_and(|s| s.trim() == "FROZEN")
            }),
        }
    }

    /// The freezer's control file with its (freeze, thaw) values.
    fn freezer(&self) -> Result<(PathBuf, &'static str, &'static str), Error> {
        match &self.location {
            Location::V2(dir) => Ok((dir.join("cgroup.freeze"), "1", "0")),
            Location::V1(dirs) => super::v1_dir(dirs, "freezer")
                .map(|d| (d.join("freezer.state"), "FROZEN", "THAWED"))
                .ok_or_else(|| Error::Resource {
                    field: "pause".into(),
                    why: "needs the freezer cgroup controller, which this host does not offer"
                        .into(),
                }),
        }
    }

    /// Every process in the cgroup and the cgroups below it.
    pub fn pids(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        if let Some(dir) = self.dirs().iter().find(|d| d.is_dir()) {
            walk(dir, 0, &mut |d| {
                let procs = fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            });
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Send `sig` to every process (`kill --all`). SIGKILL on v2 is one
    /// write to `cgroup.kill` where the kernel has it; otherwise the cgroup
    /// is frozen first so no process can fork past the signal, then thawed
    /// so the signal is delivered.
    pub fn signal_all(&self, sig: i32) -> Result<(), Error> {
        if let Location::V2(dir) = &self.location {
            let kill = dir.join("cgroup.kill");
            if sig == libc::SIGKILL && kill.exists() {
                step!("echo 1 > {}", kill.display());
                return write(&kill, "1");
            }
        }
        let frozen = self.freeze().is_ok();
        let signal = nix::sys::signal::Signal::try_from(sig).map_err(|_| Error::Resource {
            field: "signal".into(),
            why: format!("{sig} is not a signal"),
        });
        let sent = signal.map(|signal| {
            for pid in self.pids() {
                // A process may have exited since it was listed.
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
            }
        });
        if frozen {
            self.thaw()?;
        }
        sent
    }

    /// Usage as runc's `events --stats` reports it in `data`.
    pub fn stats(&self) -> Value {
        match &self.location {
            Location::V2(dir) => v2_stats(dir),
            Location::V1(dirs) => v1_stats(dirs),
        }
    }

    /// Wait (up to `SETTLE`, 5 s) for the last processes to leave, then remove
    /// the cgroup and any made below it.
    pub fn remove(&self) -> Result<(), Error> {
        let deadline = Instant::now() + SETTLE;
        while !self.pids().is_empty() {
            if Instant::now() > deadline {
                let dir = self.dirs().first().cloned().unwrap_or_default();
                return Err(Error::Timeout(dir, "still has processes after 5 s"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        for dir in self.dirs() {
            let mut all = Vec::new();
            walk(&dir, 0, &mut |d| all.push(d.to_path_buf()));
            // Deepest first: a cgroup with children cannot be removed.
            for d in all.iter().rev() {
                super::remove_dir(d).map_err(io_err(d))?;
            }
        }
        Ok(())
    }

    fn dirs(&self) -> Vec<PathBuf> {
        match &self.location {
            Location::V2(dir) => vec![dir.clone()],
            Location::V1(dirs) => dirs.iter().map(|(_, d)| d.clone()).collect(),
        }
    }
}

/// `dir` and the cgroups below it, parents before children.
fn walk(dir: &Path, depth: usize, f: &mut dyn FnMut(&Path)) {
    if depth > MAX_DEPTH || !dir.is_dir() {
        return;
    }
    f(dir);
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&entry.path(), depth + 1, f);
        }
    }
}

/// The runtime-spec features document's `linux.cgroup`.
pub fn features() -> Value {
    json!({
        "v1": true,
        "v2": true,
        // systemd paths are mapped onto cgroupfs; systemd is never asked.
        "systemd": false,
        "systemdUser": false,
        "rdma": true,
    })
}

/// Where a container's cgroup goes, below the roots of the hierarchies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place {
    /// Below each hierarchy's root.
    Absolute(PathBuf),
    /// Below the runtime's own cgroup (v1) or its parent (v2).
    Relative(PathBuf),
}

/// Resolve `cgroupsPath` (see the module's documentation).
pub(crate) fn place(cgroups_path: Option<&str>, systemd: bool, id: &str) -> Result<Place, Error> {
    let raw = cgroups_path.unwrap_or_default();
    let bad = |why| Error::Path {
        path: raw.to_string(),
        why,
    };
    if raw.is_empty() {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(bad(
                "no path given, and the container id cannot name a cgroup",
            ));
        }
        return Ok(Place::Absolute(Path::new("containr-oci").join(id)));
    }
    if systemd {
        let mut parts = raw.split(':');
        let (Some(slice), Some(prefix), Some(name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(
                "with --systemd-cgroup it must be slice:prefix:name, e.g. machine.slice:libpod:ID",
            ));
        };
        if name.is_empty() || [prefix, name].iter().any(|p| p.contains('/')) {
            return Err(bad(
                "the prefix and name must be non-empty names without '/'",
            ));
        }
        let slice = expand_slice(if slice.is_empty() {
            "system.slice"
        } else {
            slice
        })
        .ok_or_else(|| bad("the slice must be a systemd slice name like a-b.slice"))?;
        let unit = if name.ends_with(".slice") || name.ends_with(".scope") {
            name.to_string()
        } else if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        return Ok(Place::Absolute(slice.join(unit)));
    }
    let place = clean_place(raw).map_err(bad)?;
    if place.path().as_os_str().is_empty() {
        return Err(bad("names the root cgroup, which a container cannot have"));
    }
    Ok(place)
}

/// A cgroup path as given (`/a/b` from the hierarchies' roots, `a/b` from
/// the runtime's own cgroup), cleaned: `.` and repeated `/` dropped, `..`
/// refused, so it can never lead out of the hierarchy.
pub(crate) fn clean_place(raw: &str) -> Result<Place, &'static str> {
    let mut clean = PathBuf::new();
    for c in Path::new(raw).components() {
        match c {
            Component::Normal(n) => clean.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err("must not contain '..'");
            }
        }
    }
    Ok(if raw.starts_with('/') {
        Place::Absolute(clean)
    } else {
        Place::Relative(clean)
    })
}

impl Place {
    fn path(&self) -> &Path {
        match self {
            Place::Absolute(p) | Place::Relative(p) => p,
        }
    }

    /// Its directory below the v2 root. A relative one is below the parent
    /// of the runtime's own cgroup, as runc's: the runtime's own holds
    /// processes, so it could not delegate controllers.
    pub(crate) fn below_v2_root(&self) -> PathBuf {
        match self {
            Place::Absolute(p) => p.clone(),
            Place::Relative(p) => own_v2().parent().unwrap_or(Path::new("")).join(p),
        }
    }

    /// Its directory below a v1 mountpoint, where the runtime's own cgroup
    /// is `own`.
    pub(crate) fn below_v1_root(&self, own: &Path) -> PathBuf {
        match self {
            Place::Absolute(p) => p.clone(),
            Place::Relative(p) => own.join(p),
        }
    }
}

/// A slice's path as systemd lays it out: `a-b.slice` is
/// `a.slice/a-b.slice`; `-.slice` is the root.
pub(crate) fn expand_slice(slice: &str) -> Option<PathBuf> {
    let name = slice.strip_suffix(".slice")?;
    if name == "-" {
        return Some(PathBuf::new());
    }
    if name.is_empty()
        || name.contains('/')
        || name.starts_with('-')
        || name.ends_with('-')
        || name.contains("--")
    {
        return None;
    }
    let mut path = PathBuf::new();
    for (i, _) in name.match_indices('-') {
        path.push(format!("{}.slice", &name[..i]));
    }
    path.push(slice);
    Some(path)
}

/// The runtime's own cgroup in a `/proc/self/cgroup` line's hierarchy.
fn own_v2() -> PathBuf {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let path = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/");
    PathBuf::from(path.trim_start_matches('/'))
}

/// mkdir `dir` and the levels above it that are missing, below `root`,
/// recording each one made; the leaf must be new.
pub(crate) fn make_levels(
    root: &Path,
    dir: &Path,
    raw: &str,
    made: &mut Vec<PathBuf>,
    mkdir: &dyn Fn(&Path) -> Result<(), Error>,
) -> Result<(), Error> {
    if dir.exists() {
        return Err(Error::Path {
            path: raw.to_string(),
            why: "a cgroup of that name exists already",
        });
    }
    let rel = dir.strip_prefix(root).expect("below the root");
    let mut d = root.to_path_buf();
    for c in rel.components() {
        d.push(c);
        if !d.exists() {
            mkdir(&d)?;
            made.push(d.clone());
        }
    }
    Ok(())
}

/// The v2 controllers a container may use, enabled for each level below
/// the root where the parent offers them.
const V2_CONTROLLERS: [&str; 8] = [
    "cpuset", "cpu", "io", "memory", "pids", "hugetlb", "rdma", "misc",
];

fn make_v2(
    root: &Path,
    place: &Place,
    raw: &str,
    made: &mut Vec<PathBuf>,
) -> Result<OciCgroup, Error> {
    let rel = place.below_v2_root();
    let dir = root.join(&rel);
    step!("mkdir -p {} (cgroup v2)", dir.display());
    make_v2_levels(root, &dir, raw, made)?;
    Ok(OciCgroup {
        path: format!("/{}", rel.display()),
        location: Location::V2(dir),
    })
}

/// mkdir -p `dir` below the v2 `root`, recording each level made; the leaf
/// must be new. Each level down to it delegates the controllers its parent
/// offers. Best effort (a level holding processes cannot delegate): a
/// resource whose controller is missing says so when it is written.
pub(crate) fn make_v2_levels(
    root: &Path,
    dir: &Path,
    raw: &str,
    made: &mut Vec<PathBuf>,
) -> Result<(), Error> {
    let enable = |level: &Path| {
        let offered = fs::read_to_string(level.join("cgroup.controllers")).unwrap_or_default();
        let enable: Vec<String> = offered
            .split_whitespace()
            .filter(|c| V2_CONTROLLERS.contains(c))
            .map(|c| format!("+{c}"))
            .collect();
        if !enable.is_empty() {
            let _ = write(&level.join("cgroup.subtree_control"), &enable.join(" "));
        }
    };
    let mut existing: Vec<&Path> = dir.ancestors().skip(1).filter(|d| d.is_dir()).collect();
    existing.retain(|d| d.starts_with(root));
    existing.iter().rev().for_each(|d| enable(d));
    make_levels(root, dir, raw, made, &|d: &Path| {
        fs::create_dir(d).map_err(io_err(d))?;
        if d != dir {
            enable(d);
        }
        Ok(())
    })
}

/// The v1 hierarchies a container joins only for a resource that needs
/// them.
const LAZY_V1: [&str; 6] = ["cpuset", "blkio", "hugetlb", "net_cls", "net_prio", "rdma"];

fn make_v1(
    v1: &super::V1,
    place: &Place,
    raw: &str,
    made: &mut Vec<PathBuf>,
) -> Result<OciCgroup, Error> {
    let mut dirs = Vec::new();
    let mut shown = String::new();
    for (controllers, mountpoint, own) in v1.hierarchies() {
        let rel = place.below_v1_root(own);
        let dir = mountpoint.join(&rel);
        // Joining a v1 hierarchy costs an RCU grace period: those only
        // some resources use are made when one does (see `join_v1`).
        if !controllers.split(',').all(|c| LAZY_V1.contains(&c)) {
            make_levels(mountpoint, &dir, raw, made, &|d: &Path| {
                super::v1::make_dir(controllers, d)
            })?;
        }
        if shown.is_empty() || controllers.contains("memory") {
            shown = format!("/{}", rel.display());
        }
        dirs.push((controllers.to_string(), dir));
    }
    step!(
        "mkdir -p {shown} in each v1 hierarchy ({})",
        dirs.iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(OciCgroup {
        path: shown,
        location: Location::V1(dirs),
    })
}

/// One control file write a resource asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    /// The controller whose cgroup holds the file; "" for v2's core files.
    pub controller: &'static str,
    pub file: String,
    pub value: String,
    /// The config.json field it comes from, for errors.
    pub field: String,
    /// (file, value) to write instead where `file` does not exist (bfq's
    /// weight files versus the older ones).
    pub fallback: Option<(String, String)>,
}

fn w(controller: &'static str, file: &str, value: impl ToString, field: &str) -> Write {
    Write {
        controller,
        file: file.to_string(),
        value: value.to_string(),
        field: format!("linux.resources.{field}"),
        fallback: None,
    }
}

fn refuse(field: &str, why: &str) -> Error {
    Error::Resource {
        field: format!("linux.resources.{field}"),
        why: why.to_string(),
    }
}

/// What becomes of the device rules of `linux.resources.devices`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Devices {
    /// A new cgroup: its program attached (v2), its rules written (v1).
    New,
    /// An existing one: its program replaced (v2), its rules written
    /// again, starting by denying all (v1).
    Update,
    /// A new cgroup whose parent holds exactly these rules (`run`'s
    /// restricted v1 parent, see `v1.rs`): it inherits them, they are
    /// neither read nor written.
    Inherited,
}

/// Write `r` into the cgroup at `location`: the one mapping from
/// `linux.resources` to cgroup files, for `containr-oci`'s containers and
/// `containr run`'s alike. `join` is called with a v1 hierarchy's
/// controllers and the cgroup's directory in it before a file there is
/// written (an OCI container joins some hierarchies only when needed).
/// Every write's controller is found before the first write, so a missing
/// one changes nothing.
pub(crate) fn write_resources(
    location: &Location,
    r: &LinuxResources,
    devices: Devices,
    join: &mut dyn FnMut(&str, &Path) -> Result<(), Error>,
) -> Result<(), Error> {
    let rules = match devices {
        Devices::Inherited => Vec::new(),
        _ => device_rules(r.devices().as_deref().unwrap_or_default())?,
    };
    // Nothing but allow rules on top of "allow all" is no filter at all.
    let filtered = rules.iter().any(|r| !r.allow);
    match location {
        Location::V2(dir) => {
            let current = |file: &str| fs::read_to_string(dir.join(file)).ok();
            let writes = v2_writes(r, &current)?;
            let enabled = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            let enabled: Vec<&str> = enabled.split_whitespace().collect();
            apply(&writes, false, |controller| {
                Ok((controller.is_empty() || enabled.contains(&controller))
                    .then(|| dir.to_path_buf()))
            })?;
            if filtered {
                let (rules, default_allow) = program_rules(&rules);
                if devices == Devices::Update {
                    devices::replace(dir, rules, default_allow)?
                } else {
                    devices::attach(dir, rules, default_allow)?
                }
            }
        }
        Location::V1(dirs) => {
            let dir_of = |controller: &str| super::v1_dir(dirs, controller);
            let current = |file: &str| {
                let controller = file.split('.').next().unwrap_or_default();
                fs::read_to_string(dir_of(controller)?.join(file)).ok()
            };
            let writes = v1_writes(r, &current)?;
            let devices_dir = match filtered {
                false => None,
                true => Some(dir_of("devices").ok_or_else(|| Error::Missing {
                    field: "linux.resources.devices".into(),
                    controller: "devices",
                })?),
            };
            if devices_dir.is_some()
                && devices == Devices::Update
                && rules.first() != Some(&DENY_ALL)
            {
                return Err(Error::Resource {
                    field: "linux.resources.devices".into(),
                    why: "an update must start by denying all (\"allow\": false, \
                          \"access\": \"rwm\"), so no device is open in between"
                        .into(),
                });
            }
            apply(&writes, true, |controller| {
                let Some((controllers, dir)) = dirs
                    .iter()
                    .find(|(c, _)| c.split(',').any(|n| n == controller))
                else {
                    return Ok(None);
                };
                join(controllers, dir)?;
                Ok(Some(dir.clone()))
            })?;
            if let Some(dir) = devices_dir {
                step!("devices cgroup: {} rules, in order", rules.len());
                for (i, rule) in rules.iter().enumerate() {
                    let (file, line) = rule.v1_write();
                    write(&dir.join(file), &line).map_err(|e| Error::Resource {
                        field: format!("linux.resources.devices[{i}]"),
                        why: e.to_string(),
                    })?;
                }
            }
        }
    }
    Ok(())
}

/// Make `writes`, in order, in the directory `dir_of` gives for each
/// controller (`None`: the host does not offer it). Every directory is
/// found first: a missing controller is reported before anything is
/// written. On v1 (`per_controller`) the narration names the controller's
/// hierarchy, as lab 3 shows it.
fn apply(
    writes: &[Write],
    per_controller: bool,
    mut dir_of: impl FnMut(&str) -> Result<Option<PathBuf>, Error>,
) -> Result<(), Error> {
    let mut dirs = Vec::with_capacity(writes.len());
    for wr in writes {
        dirs.push(dir_of(wr.controller)?.ok_or_else(|| Error::Missing {
            field: wr.field.clone(),
            controller: wr.controller,
        })?);
    }
    for (wr, dir) in writes.iter().zip(dirs) {
        let (mut file, mut value) = (wr.file.as_str(), wr.value.as_str());
        if let Some((alt, alt_value)) = &wr.fallback
            && !dir.join(file).exists()
        {
            (file, value) = (alt, alt_value);
        }
        if per_controller {
            step!("echo {value} > {}/{file}", wr.controller);
        } else {
            step!("echo {value} > {file}");
        }
        fs::write(dir.join(file), value).map_err(|e| Error::Resource {
            field: wr.field.clone(),
            why: format!("writing {value:?} to {file}: {e}"),
        })?;
    }
    Ok(())
}

/// `{"allow": false, "access": "rwm"}`: deny every device.
const DENY_ALL: Rule = Rule {
    allow: false,
    kind: None,
    major: None,
    minor: None,
    access: "rwm",
};

/// The OCI device rules as [`Rule`]s, followed (as runc does) by the
/// default set, which every container may use.
fn device_rules(list: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, Error> {
    let mut rules = Vec::with_capacity(list.len() + devices::DEFAULT.len());
    for (i, d) in list.iter().enumerate() {
        // Made only for an error: this runs on every start.
        let field = || format!("devices[{i}]");
        let kind = match d.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some('b'),
            LinuxDeviceType::C => Some('c'),
            other => {
                return Err(refuse(
                    &format!("{}.type", field()),
                    &format!(
                        "{:?} is not a type the devices controller knows (a, b, c)",
                        other.as_str()
                    ),
                ));
            }
        };
        let number = |n: Option<i64>, what: &str| match n {
            None | Some(-1) => Ok(None),
            Some(n) if (0..=u32::MAX as i64).contains(&n) => Ok(Some(n as u32)),
            Some(n) => Err(refuse(
                &format!("{}.{what}", field()),
                &format!("{n} is not a device number"),
            )),
        };
        let access = devices::access(d.access().as_deref().unwrap_or("rwm"))
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                refuse(
                    &format!("{}.access", field()),
                    "must be letters among r, w, m",
                )
            })?;
        rules.push(Rule {
            allow: d.allow(),
            kind,
            major: number(d.major(), "major")?,
            minor: number(d.minor(), "minor")?,
            access,
        });
    }
    // A default rule the list allows already, with no deny after it, would
    // change nothing (run's own lists hold them all).
    for default in devices::DEFAULT {
        let allowed = rules
            .iter()
            .rposition(|r| *r == default)
            .is_some_and(|i| rules[i..].iter().all(|r| r.allow));
        if !allowed {
            rules.push(default);
        }
    }
    Ok(rules)
}

/// The rules a device program checks and its verdict where none
/// matches: a list that starts by denying all is the rest on a "deny"
/// default, the same verdicts one check shorter (the program `run` always
/// attached).
fn program_rules(rules: &[Rule]) -> (&[Rule], bool) {
    match rules.split_first() {
        Some((first, rest)) if *first == DENY_ALL => (rest, false),
        _ => (rules, true),
    }
}

/// Which of memory.swap's meanings: OCI's `swap` is memory plus swap (v1's
/// memsw); v2 limits swap alone. As runc converts it.
pub(crate) fn swap_v2(swap: i64, memory: i64) -> Result<Option<String>, &'static str> {
    if memory == -1 && swap == 0 {
        return Ok(Some("max".into()));
    }
    match swap {
        0 => Ok(None),
        -1 => Ok(Some("max".into())),
        // Unlimited memory: the total is all swap.
        _ if memory == -1 => Ok(Some(swap.to_string())),
        _ if memory <= 0 => Err("a swap limit needs a memory limit"),
        _ if swap < memory => Err("must be at least memory.limit (it counts memory plus swap)"),
        _ => Ok(Some((swap - memory).to_string())),
    }
}

/// blkio's weight (10..1000) on io.weight's scale (1..10000), as runc.
pub(crate) fn blkio_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (weight.clamp(10, 1000) as u64 - 10) * 9999 / 990
}

/// A hugepage size as the hugetlb files name it: `2MB`, `1GB`, `64KB`.
fn page_size(size: &str, field: &str) -> Result<String, Error> {
    let (num, unit) = size.split_at(size.find(|c: char| !c.is_ascii_digit()).unwrap_or(0));
    if num.is_empty() || !["KB", "MB", "GB"].contains(&unit) {
        return Err(refuse(field, "pageSize must be like 2MB or 1GB"));
    }
    Ok(size.to_string())
}

/// A name written into a control file line: one word.
fn word(s: &str, field: &str) -> Result<(), Error> {
    if s.is_empty() || s.contains(char::is_whitespace) {
        return Err(refuse(field, "must be one word"));
    }
    Ok(())
}

/// Current value of a control file, by file name.
type Current<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The v1 writes for `r`. `current` reads a file's present value (to order
/// memory and swap so each write passes the kernel's checks).
pub(crate) fn v1_writes(r: &LinuxResources, current: Current) -> Result<Vec<Write>, Error> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        if m.kernel().is_some() || m.kernel_tcp().is_some() {
            return Err(refuse(
                "memory.kernel",
                "kernel memory limits are deprecated by the kernel and not supported",
            ));
        }
        let limit = m.limit().filter(|l| *l != 0);
        let mut swap = m.swap().filter(|s| *s != 0);
        if limit == Some(-1) && swap.is_none() {
            swap = Some(-1);
        }
        let memsw_exists = current("memory.memsw.limit_in_bytes").is_some();
        if swap.is_some() && !memsw_exists && swap != Some(-1) {
            return Err(refuse(
                "memory.swap",
                "needs swap accounting (memory.memsw.*), which this kernel does not have",
            ));
        }
        let limit_w = limit.map(|l| w("memory", "memory.limit_in_bytes", l, "memory.limit"));
        let swap_w = swap
            .filter(|_| memsw_exists)
            .map(|s| w("memory", "memory.memsw.limit_in_bytes", s, "memory.swap"));
        // memsw must stay >= the limit after every write: raise it first
        // when the new one is above the present limit.
        let cur_limit: i64 = current("memory.limit_in_bytes")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(i64::MAX);
        let swap_first = swap.is_some_and(|s| s == -1 || s > cur_limit);
        if swap_first {
            out.extend(swap_w.clone());
            out.extend(limit_w);
        } else {
            out.extend(limit_w);
            out.extend(swap_w);
        }
        if let Some(res) = m.reservation() {
            out.push(w(
                "memory",
                "memory.soft_limit_in_bytes",
                res,
                "memory.reservation",
            ));
        }
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(refuse("memory.swappiness", "must be 0 to 100"));
            }
            out.push(w("memory", "memory.swappiness", s, "memory.swappiness"));
        }
        if m.disable_oom_killer() == Some(true) {
            out.push(w(
                "memory",
                "memory.oom_control",
                1,
                "memory.disableOOMKiller",
            ));
        }
        if let Some(h) = m.use_hierarchy() {
            out.push(w(
                "memory",
                "memory.use_hierarchy",
                h as u8,
                "memory.useHierarchy",
            ));
        }
        check_before_update(m, current, "memory.usage_in_bytes")?;
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            out.push(w("cpu", "cpu.shares", s, "cpu.shares"));
        }
        if let Some(p) = c.period().filter(|p| *p != 0) {
            out.push(w("cpu", "cpu.cfs_period_us", p, "cpu.period"));
        }
        if let Some(q) = c.quota().filter(|q| *q != 0) {
            out.push(w("cpu", "cpu.cfs_quota_us", q, "cpu.quota"));
        }
        if let Some(b) = c.burst() {
            out.push(w("cpu", "cpu.cfs_burst_us", b, "cpu.burst"));
        }
        if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
            out.push(w("cpu", "cpu.rt_period_us", p, "cpu.realtimePeriod"));
        }
        if let Some(rt) = c.realtime_runtime().filter(|r| *r != 0) {
            out.push(w("cpu", "cpu.rt_runtime_us", rt, "cpu.realtimeRuntime"));
        }
        if let Some(i) = c.idle() {
            out.push(w("cpu", "cpu.idle", i, "cpu.idle"));
        }
        cpuset(c, &mut out)?;
    }
    pids(r, &mut out);
    if let Some(b) = r.block_io() {
        if let Some(wt) = b.weight() {
            let mut wr = w("blkio", "blkio.weight", wt, "blockIO.weight");
            wr.fallback = Some(("blkio.bfq.weight".into(), wt.to_string()));
            out.push(wr);
        }
        if let Some(wt) = b.leaf_weight() {
            out.push(w("blkio", "blkio.leaf_weight", wt, "blockIO.leafWeight"));
        }
        for d in b.weight_device().as_deref().unwrap_or_default() {
            let dev = format!("{}:{}", d.major(), d.minor());
            if let Some(wt) = d.weight() {
                let mut wr = w(
                    "blkio",
                    "blkio.weight_device",
                    format!("{dev} {wt}"),
                    "blockIO.weightDevice",
                );
                wr.fallback = Some(("blkio.bfq.weight_device".into(), format!("{dev} {wt}")));
                out.push(wr);
            }
            if let Some(wt) = d.leaf_weight() {
                out.push(w(
                    "blkio",
                    "blkio.leaf_weight_device",
                    format!("{dev} {wt}"),
                    "blockIO.weightDevice",
                ));
            }
        }
        for (list, file, field) in [
            (
                b.throttle_read_bps_device(),
                "read_bps_device",
                "throttleReadBpsDevice",
            ),
            (
                b.throttle_write_bps_device(),
                "write_bps_device",
                "throttleWriteBpsDevice",
            ),
            (
                b.throttle_read_iops_device(),
                "read_iops_device",
                "throttleReadIOPSDevice",
            ),
            (
                b.throttle_write_iops_device(),
                "write_iops_device",
                "throttleWriteIOPSDevice",
            ),
        ] {
            for d in list.as_deref().unwrap_or_default() {
                out.push(w(
                    "blkio",
                    &format!("blkio.throttle.{file}"),
                    format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                    &format!("blockIO.{field}"),
                ));
            }
        }
    }
    for h in r.hugepage_limits().as_deref().unwrap_or_default() {
        let size = page_size(h.page_size(), "hugepageLimits")?;
        out.push(w(
            "hugetlb",
            &format!("hugetlb.{size}.limit_in_bytes"),
            h.limit(),
            "hugepageLimits",
        ));
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            out.push(w("net_cls", "net_cls.classid", id, "network.classID"));
        }
        for p in n.priorities().as_deref().unwrap_or_default() {
            word(p.name(), "network.priorities")?;
            out.push(w(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
                "network.priorities",
            ));
        }
    }
    rdma(r, &mut out)?;
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(refuse(
            "unified",
            "holds cgroup v2 files, and this host's containers are on cgroup v1",
        ));
    }
    Ok(out)
}

/// The v2 writes for `r`; `current` as for [`v1_writes`].
pub(crate) fn v2_writes(r: &LinuxResources, current: Current) -> Result<Vec<Write>, Error> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        if m.kernel().is_some() || m.kernel_tcp().is_some() {
            return Err(refuse(
                "memory.kernel",
                "kernel memory limits do not exist on cgroup v2",
            ));
        }
        if m.swappiness().is_some() {
            return Err(refuse(
                "memory.swappiness",
                "cgroup v2 has no per-cgroup swappiness",
            ));
        }
        if m.disable_oom_killer() == Some(true) {
            return Err(refuse(
                "memory.disableOOMKiller",
                "cgroup v2 cannot disable the OOM killer",
            ));
        }
        if m.use_hierarchy() == Some(false) {
            return Err(refuse(
                "memory.useHierarchy",
                "cgroup v2 is always hierarchical",
            ));
        }
        let limit = m.limit().unwrap_or(0);
        match limit {
            0 => {}
            -1 => out.push(w("memory", "memory.max", "max", "memory.limit")),
            l => out.push(w("memory", "memory.max", l, "memory.limit")),
        }
        match swap_v2(m.swap().unwrap_or(0), limit) {
            Ok(Some(v)) if current("memory.swap.max").is_some() => {
                out.push(w("memory", "memory.swap.max", v, "memory.swap"))
            }
            // No swap accounting: only "unlimited" can be honoured.
            Ok(Some(v)) if v != "max" => {
                return Err(refuse(
                    "memory.swap",
                    "needs swap accounting (memory.swap.max), which this kernel does not have",
                ));
            }
            Ok(_) => {}
            Err(why) => return Err(refuse("memory.swap", why)),
        }
        if let Some(res) = m.reservation().filter(|r| *r != 0) {
            let v = if res == -1 {
                "max".to_string()
            } else {
                res.to_string()
            };
            out.push(w("memory", "memory.low", v, "memory.reservation"));
        }
        check_before_update(m, current, "memory.current")?;
    }
    if let Some(c) = r.cpu() {
        if c.realtime_period().is_some_and(|p| p != 0)
            || c.realtime_runtime().is_some_and(|r| r != 0)
        {
            return Err(refuse(
                "cpu.realtimeRuntime",
                "cgroup v2 has no realtime CPU limits",
            ));
        }
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            out.push(w(
                "cpu",
                "cpu.weight",
                super::v2::shares_to_weight(s),
                "cpu.shares",
            ));
        }
        let quota = c.quota().filter(|q| *q != 0);
        let period = c.period().filter(|p| *p != 0);
        // cpu.max takes "QUOTA [PERIOD]"; a lone period keeps the quota.
        let q = |q: i64| {
            if q < 0 {
                "max".to_string()
            } else {
                q.to_string()
            }
        };
        let value = match (quota, period) {
            (Some(qt), Some(p)) => Some(format!("{} {p}", q(qt))),
            (Some(qt), None) => Some(q(qt)),
            (None, Some(p)) => {
                let kept = current("cpu.max")
                    .and_then(|v| v.split_whitespace().next().map(str::to_string))
                    .unwrap_or_else(|| "max".into());
                Some(format!("{kept} {p}"))
            }
            (None, None) => None,
        };
        if let Some(v) = value {
            out.push(w("cpu", "cpu.max", v, "cpu.quota"));
        }
        if let Some(b) = c.burst() {
            out.push(w("cpu", "cpu.max.burst", b, "cpu.burst"));
        }
        if let Some(i) = c.idle() {
            out.push(w("cpu", "cpu.idle", i, "cpu.idle"));
        }
        cpuset(c, &mut out)?;
    }
    pids(r, &mut out);
    if let Some(b) = r.block_io() {
        if b.leaf_weight().is_some() {
            return Err(refuse(
                "blockIO.leafWeight",
                "cgroup v2 has no leaf weights",
            ));
        }
        if let Some(wt) = b.weight().filter(|w| *w != 0) {
            let mut wr = w("io", "io.bfq.weight", wt, "blockIO.weight");
            wr.fallback = Some(("io.weight".into(), blkio_to_io_weight(wt).to_string()));
            out.push(wr);
        }
        for d in b.weight_device().as_deref().unwrap_or_default() {
            let dev = format!("{}:{}", d.major(), d.minor());
            if d.leaf_weight().is_some() {
                return Err(refuse(
                    "blockIO.weightDevice",
                    "cgroup v2 has no leaf weights",
                ));
            }
            if let Some(wt) = d.weight() {
                let mut wr = w(
                    "io",
                    "io.bfq.weight",
                    format!("{dev} {wt}"),
                    "blockIO.weightDevice",
                );
                wr.fallback = Some((
                    "io.weight".into(),
                    format!("{dev} {}", blkio_to_io_weight(wt)),
                ));
                out.push(wr);
            }
        }
        for (list, key, field) in [
            (
                b.throttle_read_bps_device(),
                "rbps",
                "throttleReadBpsDevice",
            ),
            (
                b.throttle_write_bps_device(),
                "wbps",
                "throttleWriteBpsDevice",
            ),
            (
                b.throttle_read_iops_device(),
                "riops",
                "throttleReadIOPSDevice",
            ),
            (
                b.throttle_write_iops_device(),
                "wiops",
                "throttleWriteIOPSDevice",
            ),
        ] {
            for d in list.as_deref().unwrap_or_default() {
                let rate = if d.rate() == 0 {
                    "max".to_string()
                } else {
                    d.rate().to_string()
                };
                out.push(w(
                    "io",
                    "io.max",
                    format!("{}:{} {key}={rate}", d.major(), d.minor()),
                    &format!("blockIO.{field}"),
                ));
            }
        }
    }
    for h in r.hugepage_limits().as_deref().unwrap_or_default() {
        let size = page_size(h.page_size(), "hugepageLimits")?;
        out.push(w(
            "hugetlb",
            &format!("hugetlb.{size}.max"),
            h.limit(),
            "hugepageLimits",
        ));
    }
    if r.network()
        .as_ref()
        .is_some_and(|n| n.class_id().is_some() || n.priorities().is_some())
    {
        return Err(refuse(
            "network",
            "net_cls and net_prio exist only on cgroup v1",
        ));
    }
    rdma(r, &mut out)?;
    let mut unified: Vec<_> = r.unified().iter().flatten().collect();
    unified.sort();
    for (key, value) in unified {
        let valid = key.split_once('.').is_some_and(|(c, rest)| {
            !c.is_empty()
                && !rest.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
        });
        if !valid {
            return Err(refuse(
                &format!("unified.{key}"),
                "is not a cgroup v2 file name",
            ));
        }
        let controller = match key.split('.').next().unwrap_or_default() {
            "cgroup" => "",
            c => V2_CONTROLLERS
                .iter()
                .find(|k| **k == c)
                .copied()
                .ok_or_else(|| {
                    refuse(&format!("unified.{key}"), "names no cgroup v2 controller")
                })?,
        };
        out.push(w(controller, key, value, &format!("unified.{key}")));
    }
    Ok(out)
}

/// `checkBeforeUpdate`: refuse a memory limit below what is in use now.
fn check_before_update(
    m: &oci_spec::runtime::LinuxMemory,
    current: Current,
    usage_file: &str,
) -> Result<(), Error> {
    if m.check_before_update() != Some(true) {
        return Ok(());
    }
    let usage: Option<i64> = current(usage_file).and_then(|u| u.trim().parse().ok());
    if let (Some(limit), Some(usage)) = (m.limit().filter(|l| *l > 0), usage)
        && usage > limit
    {
        return Err(refuse(
            "memory.limit",
            &format!("{limit} is below the {usage} bytes in use (checkBeforeUpdate)"),
        ));
    }
    Ok(())
}

fn cpuset(c: &oci_spec::runtime::LinuxCpu, out: &mut Vec<Write>) -> Result<(), Error> {
    for (value, file, field) in [
        (c.cpus(), "cpuset.cpus", "cpu.cpus"),
        (c.mems(), "cpuset.mems", "cpu.mems"),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            if super::parse_cpu_list(v).is_none() {
                return Err(refuse(field, "expected a list such as 0-2,4"));
            }
            out.push(w("cpuset", file, v, field));
        }
    }
    Ok(())
}

fn pids(r: &LinuxResources, out: &mut Vec<Write>) {
    if let Some(p) = r.pids() {
        let limit = p.limit();
        let v = if limit > 0 {
            limit.to_string()
        } else {
            "max".into()
        };
        out.push(w("pids", "pids.max", v, "pids.limit"));
    }
}

fn rdma(r: &LinuxResources, out: &mut Vec<Write>) -> Result<(), Error> {
    let mut devices: Vec<_> = r.rdma().iter().flatten().collect();
    devices.sort_by_key(|(name, _)| name.as_str());
    for (name, limit) in devices {
        let field = format!("rdma.{name}");
        word(name, &field)?;
        let mut line = name.clone();
        if let Some(h) = limit.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = limit.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        if line != *name {
            out.push(w("rdma", "rdma.max", line, &field));
        }
    }
    Ok(())
}

/// runc's `MemoryEntry`.
fn memory_entry(
    limit: Option<u64>,
    usage: Option<u64>,
    max: Option<u64>,
    failcnt: Option<u64>,
) -> Value {
    json!({
        "limit": limit.unwrap_or(0),
        "usage": usage.unwrap_or(0),
        "max": max.unwrap_or(0),
        "failcnt": failcnt.unwrap_or(0),
    })
}

/// A flat-keyed file (`memory.stat`, `cpu.stat`) as a map.
fn flat(path: &Path) -> serde_json::Map<String, Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), Value::from(v.trim().parse::<u64>().ok()?)))
        })
        .collect()
}

fn v1_stats(dirs: &[(String, PathBuf)]) -> Value {
    let dir = |controller: &str| super::v1_dir(dirs, controller).unwrap_or_default();
    let mem = dir("memory");
    let n = |d: &Path, f: &str| read_u64(&d.join(f));
    let cpuacct = dir("cpuacct");
    let percpu: Vec<u64> = fs::read_to_string(cpuacct.join("cpuacct.usage_percpu"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // cpuacct.stat is in USER_HZ ticks; runc reports nanoseconds.
    let ticks = |key| keyed(&cpuacct.join("cpuacct.stat"), key).unwrap_or(0) * 10_000_000;
    let cpu = dir("cpu");
    let raw = flat(&mem.join("memory.stat"));
    json!({
        "cpu": {
            "usage": {
                "total": n(&cpuacct, "cpuacct.usage").unwrap_or(0),
                "percpu": percpu,
                "kernel": ticks("system"),
                "user": ticks("user"),
            },
            "throttling": {
                "periods": keyed(&cpu.join("cpu.stat"), "nr_periods").unwrap_or(0),
                "throttledPeriods": keyed(&cpu.join("cpu.stat"), "nr_throttled").unwrap_or(0),
                "throttledTime": keyed(&cpu.join("cpu.stat"), "throttled_time").unwrap_or(0),
            },
        },
        "memory": {
            "cache": raw.get("cache").cloned().unwrap_or(Value::from(0)),
            "usage": memory_entry(
                n(&mem, "memory.limit_in_bytes"),
                n(&mem, "memory.usage_in_bytes"),
                n(&mem, "memory.max_usage_in_bytes"),
                n(&mem, "memory.failcnt"),
            ),
            "swap": memory_entry(
                n(&mem, "memory.memsw.limit_in_bytes"),
                n(&mem, "memory.memsw.usage_in_bytes"),
                n(&mem, "memory.memsw.max_usage_in_bytes"),
                n(&mem, "memory.memsw.failcnt"),
            ),
            "raw": raw,
        },
        "pids": {
            "current": n(&dir("pids"), "pids.current").unwrap_or(0),
            "limit": n(&dir("pids"), "pids.max").unwrap_or(0),
        },
    })
}

fn v2_stats(dir: &Path) -> Value {
    let n = |f: &str| read_u64(&dir.join(f));
    let cpu = flat(&dir.join("cpu.stat"));
    let us = |k: &str| cpu.get(k).and_then(Value::as_u64).unwrap_or(0);
    let raw = flat(&dir.join("memory.stat"));
    let events = |k| keyed(&dir.join("memory.events"), k);
    json!({
        "cpu": {
            "usage": {
                "total": us("usage_usec") * 1000,
                "kernel": us("system_usec") * 1000,
                "user": us("user_usec") * 1000,
            },
            "throttling": {
                "periods": us("nr_periods"),
                "throttledPeriods": us("nr_throttled"),
                "throttledTime": us("throttled_usec") * 1000,
            },
        },
        "memory": {
            "cache": raw.get("file").cloned().unwrap_or(Value::from(0)),
            "usage": memory_entry(n("memory.max"), n("memory.current"), n("memory.peak"), events("max")),
            "swap": memory_entry(n("memory.swap.max"), n("memory.swap.current"), n("memory.swap.peak"), events("swap_max")),
            "raw": raw,
        },
        "pids": {
            "current": n("pids.current").unwrap_or(0),
            "limit": n("pids.max").unwrap_or(0),
        },
    })
}

/// containr's limits (`run`'s flags) in OCI's `linux.resources` form, as
/// `apply` reads it: the same files get the same values. Devices: deny
/// all, then docker's default set and the `--device` rules (or allow all
/// with `--privileged`). Swap as docker gives it
/// ([`Limits::memory_swap_total`](super::Limits::memory_swap_total)):
/// `--memory` alone gets as much swap again where the host accounts swap
/// (`swap_accounted`, [`Location::accounts_swap`]).
pub fn resources_of(limits: &super::Limits, swap_accounted: bool) -> LinuxResources {
    let mut r = json!({});
    let swap = limits.memory_swap_total(swap_accounted);
    if limits.memory.is_some() || swap.is_some() {
        r["memory"] = json!({});
        if let Some(m) = limits.memory {
            r["memory"]["limit"] = m.into();
        }
        if let Some(s) = swap {
            r["memory"]["swap"] = s.into();
        }
    }
    let mut cpu = json!({});
    if let Some(q) = limits.cpu_quota_us() {
        cpu["quota"] = q.into();
        cpu["period"] = super::CPU_PERIOD_US.into();
    }
    if let Some(s) = limits.cpu_shares {
        cpu["shares"] = s.into();
    }
    if let Some(c) = &limits.cpuset_cpus {
        cpu["cpus"] = c.clone().into();
    }
    if cpu != json!({}) {
        r["cpu"] = cpu;
    }
    if let Some(p) = limits.pids_limit {
        r["pids"] = json!({"limit": if p > 0 { p } else { -1 }});
    }
    let throttle = |list: &[(u64, u64, u64)]| -> Value {
        (list.iter())
            .map(|(major, minor, rate)| json!({"major": major, "minor": minor, "rate": rate}))
            .collect()
    };
    if !limits.device_read_bps.is_empty() || !limits.device_write_bps.is_empty() {
        r["blockIO"] = json!({
            "throttleReadBpsDevice": throttle(&limits.device_read_bps),
            "throttleWriteBpsDevice": throttle(&limits.device_write_bps),
        });
    }
    let rule = |d: &Rule| {
        let mut v = json!({"allow": d.allow, "type": d.kind.unwrap_or('a').to_string(), "access": d.access});
        if let Some(m) = d.major {
            v["major"] = m.into();
        }
        if let Some(m) = d.minor {
            v["minor"] = m.into();
        }
        v
    };
    r["devices"] = if limits.all_devices {
        json!([{"allow": true, "access": "rwm"}])
    } else {
        let mut list = vec![json!({"allow": false, "access": "rwm"})];
        list.extend(devices::DEFAULT.iter().chain(&limits.devices).map(rule));
        Value::Array(list)
    };
    serde_json::from_value(r).expect("the fields of LinuxResources")
}

/// `containr run`'s new cgroup at `location` given the spec's resources
/// `r` (from [`resources_of`]), through the same writes as an OCI
/// container's; its device rules `inherited` from a parent that holds them
/// (v1). Errors name `run`'s flag rather than the spec's field.
pub(crate) fn write_limits(
    location: &Location,
    r: &LinuxResources,
    inherited: bool,
) -> Result<(), Error> {
    let devices = if inherited {
        Devices::Inherited
    } else {
        Devices::New
    };
    // Its hierarchies were all made with it.
    write_resources(location, r, devices, &mut |_, _| Ok(())).map_err(|e| match e {
        Error::Missing { field, controller } => match flag_of(&field) {
            Some(flag) => Error::NoController { flag, controller },
            None => Error::Missing { field, controller },
        },
        Error::Resource { field, why } => Error::Resource {
            field: flag_of(&field).map_or(field, str::to_string),
            why,
        },
        e => e,
    })
}

/// The `run` flag a `linux.resources` field of [`resources_of`] comes
/// from.
fn flag_of(field: &str) -> Option<&'static str> {
    let field = field.strip_prefix("linux.resources.")?;
    Some(match field {
        "memory.limit" => "--memory",
        "memory.swap" => "--memory-swap",
        "cpu.quota" | "cpu.period" => "--cpus",
        "cpu.shares" => "--cpu-shares",
        "cpu.cpus" => "--cpuset-cpus",
        "pids.limit" => "--pids-limit",
        "blockIO.throttleReadBpsDevice" => "--device-read-bps",
        "blockIO.throttleWriteBpsDevice" => "--device-write-bps",
        _ => return None,
    })
}

/// The `linux.cgroupsPath` of a cgroup containr made, at `location`: its
/// path below the hierarchy's root (`/containr/<id>` by default), as
/// `/proc/PID/cgroup` shows it; none where the hierarchy is not mounted in
/// the usual place (`/sys/fs/cgroup`, `/sys/fs/cgroup/unified` on a hybrid host).
pub fn cgroups_path(location: &Location) -> Option<String> {
    let below = |dir: &Path, mount: &Path| {
        let rel = dir.strip_prefix(mount).ok()?;
        Some(format!("/{}", rel.display()))
    };
    let base = Path::new("/sys/fs/cgroup");
    match location {
        Location::V2(dir) => below(dir, &base.join("unified")).or_else(|| below(dir, base)),
        Location::V1(dirs) => dirs
            .iter()
            .find_map(|(controllers, dir)| below(dir, &base.join(controllers))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(j: Value) -> LinuxResources {
        serde_json::from_value(j).unwrap()
    }

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn paths_follow_runc() {
        let abs = |p: &str| Ok(Place::Absolute(PathBuf::from(p)));
        assert_eq!(place(None, false, "c1"), abs("containr-oci/c1"));
        assert_eq!(place(Some("/a/b/"), false, "c1"), abs("a/b"));
        assert_eq!(
            place(Some("x/./y"), false, "c1"),
            Ok(Place::Relative("x/y".into()))
        );
        assert!(place(Some("/a/../../etc"), false, "c1").is_err());
        assert!(place(Some("/"), false, "c1").is_err());
        assert!(place(None, false, "../x").is_err());
        assert_eq!(
            place(Some("machine.slice:libpod:abc"), true, "c1"),
            abs("machine.slice/libpod-abc.scope")
        );
        assert_eq!(
            place(Some("a-b-c.slice:crio:x"), true, "c1"),
            abs("a.slice/a-b.slice/a-b-c.slice/crio-x.scope")
        );
        assert_eq!(
            place(Some(":runc:x"), true, "c1"),
            abs("system.slice/runc-x.scope")
        );
        assert_eq!(place(Some("-.slice::x"), true, "c1"), abs("x.scope"));
        for bad in [
            "a:b",
            "a:b:c:d",
            "a-.slice:p:n",
            "a--b.slice:p:n",
            "nota:p:n",
            "s.slice:p:",
        ] {
            assert!(place(Some(bad), true, "c1").is_err(), "{bad}");
        }
    }

    impl PartialEq for Error {
        fn eq(&self, other: &Self) -> bool {
            self.to_string() == other.to_string()
        }
    }

    #[test]
    fn slices_expand_as_systemd() {
        assert_eq!(expand_slice("a-b.slice"), Some("a.slice/a-b.slice".into()));
        assert_eq!(expand_slice("machine.slice"), Some("machine.slice".into()));
        assert_eq!(expand_slice("-.slice"), Some(PathBuf::new()));
        assert_eq!(expand_slice("a/b.slice"), None);
        assert_eq!(expand_slice("a.scope"), None);
    }

    #[test]
    fn conversions_match_runc() {
        assert_eq!(swap_v2(0, 100), Ok(None));
        assert_eq!(swap_v2(-1, 100), Ok(Some("max".into())));
        assert_eq!(swap_v2(300, 100), Ok(Some("200".into())));
        assert_eq!(swap_v2(0, -1), Ok(Some("max".into())));
        assert!(swap_v2(50, 100).is_err());
        // As runc: with memory unlimited, the total is the swap.
        assert_eq!(swap_v2(300, -1), Ok(Some("300".into())));
        assert!(swap_v2(50, 0).is_err());
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10000);
    }

    fn files(writes: &[Write]) -> Vec<(String, String)> {
        writes
            .iter()
            .map(|w| (w.file.clone(), w.value.clone()))
            .collect()
    }

    fn pair(f: &str, v: &str) -> (String, String) {
        (f.to_string(), v.to_string())
    }

    #[test]
    fn v2_files_from_oci_fields() {
        let r = resources(json!({
            "memory": {"limit": 104857600, "swap": 209715200, "reservation": 52428800},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0", "idle": 0},
            "pids": {"limit": 32},
            "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
            "unified": {"memory.high": "90000000"}
        }));
        let swap = |f: &str| (f == "memory.swap.max").then(|| "max\n".to_string());
        let writes = v2_writes(&r, &swap).unwrap();
        assert_eq!(
            files(&writes),
            vec![
                pair("memory.max", "104857600"),
                pair("memory.swap.max", "104857600"),
                pair("memory.low", "52428800"),
                pair("cpu.weight", "100"),
                pair("cpu.max", "50000 100000"),
                pair("cpu.idle", "0"),
                pair("cpuset.cpus", "0"),
                pair("pids.max", "32"),
                pair("io.bfq.weight", "500"),
                pair("io.max", "8:0 rbps=1048576"),
                pair("hugetlb.2MB.max", "0"),
                pair("memory.high", "90000000"),
            ]
        );
        assert_eq!(writes[8].fallback, Some(pair("io.weight", "4950")));
        assert_eq!(writes[0].field, "linux.resources.memory.limit");
        // A lone period keeps the quota in force.
        let r = resources(json!({"cpu": {"period": 20000}}));
        let cur = |f: &str| (f == "cpu.max").then(|| "30000 100000\n".to_string());
        assert_eq!(
            files(&v2_writes(&r, &cur).unwrap()),
            vec![pair("cpu.max", "30000 20000")]
        );
        // Unlimited.
        let r =
            resources(json!({"memory": {"limit": -1}, "cpu": {"quota": -1}, "pids": {"limit": 0}}));
        assert_eq!(
            files(&v2_writes(&r, &none).unwrap()),
            vec![
                pair("memory.max", "max"),
                pair("cpu.max", "max"),
                pair("pids.max", "max")
            ]
        );
    }

    #[test]
    fn v2_refuses_what_it_cannot_do() {
        for (j, field) in [
            (json!({"memory": {"swappiness": 10}}), "memory.swappiness"),
            (json!({"memory": {"kernel": 10}}), "memory.kernel"),
            (json!({"memory": {"limit": 100, "swap": 50}}), "memory.swap"),
            (
                json!({"memory": {"limit": 100, "swap": 500}}),
                "memory.swap",
            ),
            (
                json!({"cpu": {"realtimeRuntime": 10}}),
                "cpu.realtimeRuntime",
            ),
            (json!({"network": {"classID": 1}}), "network"),
            (json!({"blockIO": {"leafWeight": 10}}), "blockIO.leafWeight"),
            (json!({"unified": {"../x": "1"}}), "unified.../x"),
            (json!({"unified": {"foo.bar": "1"}}), "unified.foo.bar"),
            (
                json!({"hugepageLimits": [{"pageSize": "2XB", "limit": 1}]}),
                "hugepageLimits",
            ),
        ] {
            let e = v2_writes(&resources(j.clone()), &none)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("linux.resources.{field}:")),
                "{j}: {e}"
            );
        }
    }

    #[test]
    fn v1_files_from_oci_fields() {
        let r = resources(json!({
            "memory": {"limit": 104857600, "swap": 209715200, "swappiness": 0, "disableOOMKiller": true},
            "cpu": {"shares": 512, "quota": 20000, "period": 50000, "mems": "0"},
            "blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}]},
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3}}
        }));
        // Limits unlimited now: memory first, then memory+swap.
        let cur = |f: &str| match f {
            "memory.memsw.limit_in_bytes" | "memory.limit_in_bytes" => {
                Some("9223372036854771712\n".to_string())
            }
            _ => None,
        };
        let writes = v1_writes(&r, &cur).unwrap();
        assert_eq!(
            files(&writes),
            vec![
                pair("memory.limit_in_bytes", "104857600"),
                pair("memory.memsw.limit_in_bytes", "209715200"),
                pair("memory.swappiness", "0"),
                pair("memory.oom_control", "1"),
                pair("cpu.shares", "512"),
                pair("cpu.cfs_period_us", "50000"),
                pair("cpu.cfs_quota_us", "20000"),
                pair("cpuset.mems", "0"),
                pair("blkio.weight", "300"),
                pair("blkio.weight_device", "8:0 200"),
                pair("net_cls.classid", "1048577"),
                pair("net_prio.ifpriomap", "eth0 5"),
                pair("rdma.max", "mlx5_1 hca_handle=3"),
            ]
        );
        // Raising both above the present limit: memory+swap first.
        let small = |f: &str| f.starts_with("memory.").then(|| "1000\n".to_string());
        let r = resources(json!({"memory": {"limit": 4000, "swap": 8000}}));
        assert_eq!(
            files(&v1_writes(&r, &small).unwrap()),
            vec![
                pair("memory.memsw.limit_in_bytes", "8000"),
                pair("memory.limit_in_bytes", "4000")
            ]
        );
        let e = v1_writes(&resources(json!({"unified": {"memory.high": "1"}})), &none).unwrap_err();
        assert!(e.to_string().starts_with("linux.resources.unified:"), "{e}");
        let e = v1_writes(
            &resources(json!({"memory": {"limit": 10, "swap": 20}})),
            &none,
        )
        .unwrap_err();
        assert!(e.to_string().contains("swap accounting"), "{e}");
    }

    #[test]
    fn limits_in_oci_form_write_the_same_files() {
        let limits = super::super::Limits {
            memory: Some(64 << 20),
            cpus: Some(0.5),
            cpu_shares: Some(512),
            pids_limit: Some(20),
            device_read_bps: vec![(8, 0, 1024)],
            ..Default::default()
        };
        let r = resources_of(&limits, false);
        let writes = |r: &LinuxResources| -> Vec<(String, String)> {
            v2_writes(r, &none)
                .unwrap()
                .iter()
                .map(|w| (w.file.to_string(), w.value.clone()))
                .collect()
        };
        let got = writes(&r);
        for want in [
            ("memory.max", "67108864"),
            ("cpu.max", "50000 100000"),
            ("cpu.weight", "59"),
            ("pids.max", "20"),
            ("io.max", "8:0 rbps=1024"),
        ] {
            assert!(
                got.iter().any(|(f, v)| f == want.0 && v == want.1),
                "{want:?} in {got:?}"
            );
        }
        // Deny all, then docker's defaults: the rules the cgroup code makes.
        let rules = device_rules(r.devices().as_deref().unwrap()).unwrap();
        assert_eq!(rules[0], DENY_ALL);
        assert_eq!(&rules[1..=devices::DEFAULT.len()], &devices::DEFAULT[..]);
        let unlimited = resources_of(
            &super::super::Limits {
                pids_limit: Some(0),
                all_devices: true,
                ..Default::default()
            },
            false,
        );
        assert!(writes(&unlimited).contains(&("pids.max".into(), "max".into())));
        let all = device_rules(unlimited.devices().as_deref().unwrap()).unwrap();
        assert!(all[0].allow && all[0].kind.is_none(), "{all:?}");
    }

    /// docker's swap rule, as the spec says it and as v2 applies it.
    #[test]
    fn swap_in_oci_form_follows_docker() {
        let mb = 1 << 20;
        let spec_swap = |memory: Option<u64>, memory_swap: Option<i64>, accounted: bool| {
            let limits = super::super::Limits {
                memory,
                memory_swap,
                ..Default::default()
            };
            let r = resources_of(&limits, accounted);
            let memory = r.memory().as_ref();
            let swap = memory.and_then(|m| m.swap());
            // A host with swap accounting.
            let accounting = |f: &str| (f == "memory.swap.max").then(|| "max\n".to_string());
            let file = v2_writes(&r, &accounting)
                .unwrap()
                .iter()
                .find(|w| w.file == "memory.swap.max")
                .map(|w| w.value.clone());
            (swap, file)
        };
        // --memory alone: as much swap again, where swap is accounted.
        assert_eq!(
            spec_swap(Some(64 * mb), None, true),
            (Some(128 * mb as i64), Some((64 * mb).to_string()))
        );
        assert_eq!(spec_swap(Some(64 * mb), None, false), (None, None));
        // -1: unlimited; equal: no swap; more: the difference.
        assert_eq!(
            spec_swap(Some(64 * mb), Some(-1), true),
            (Some(-1), Some("max".into()))
        );
        assert_eq!(
            spec_swap(Some(64 * mb), Some(64 * mb as i64), true),
            (Some(64 * mb as i64), Some("0".into()))
        );
        assert_eq!(
            spec_swap(Some(64 * mb), Some(100 * mb as i64), true),
            (Some(100 * mb as i64), Some((36 * mb).to_string()))
        );
        assert_eq!(spec_swap(None, None, true), (None, None));
    }

    #[test]
    fn cgroups_path_is_below_the_hierarchy_root() {
        let v2 = Location::V2("/sys/fs/cgroup/containr/abc".into());
        assert_eq!(cgroups_path(&v2).as_deref(), Some("/containr/abc"));
        let hybrid = Location::V2("/sys/fs/cgroup/unified/containr/abc".into());
        assert_eq!(cgroups_path(&hybrid).as_deref(), Some("/containr/abc"));
        let v1 = Location::V1(vec![(
            "memory".into(),
            "/sys/fs/cgroup/memory/user.slice/containr/abc".into(),
        )]);
        assert_eq!(
            cgroups_path(&v1).as_deref(),
            Some("/user.slice/containr/abc")
        );
        assert_eq!(cgroups_path(&Location::V2("/elsewhere/x".into())), None);
    }

    #[test]
    fn device_rules_keep_order_and_end_with_the_defaults() {
        let list: Vec<LinuxDeviceCgroup> = serde_json::from_value(json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"},
            {"allow": true, "type": "b", "major": 8, "access": "r"}
        ]))
        .unwrap();
        let rules = device_rules(&list).unwrap();
        assert_eq!(rules[0], DENY_ALL);
        assert_eq!(
            rules[1].v1_write(),
            ("devices.allow", "c 10:229 rw".to_string())
        );
        assert_eq!(rules[2].v1(), "b 8:* r");
        assert_eq!(rules.len(), 3 + devices::DEFAULT.len());
        let bad: Vec<LinuxDeviceCgroup> =
            serde_json::from_value(json!([{"allow": true, "type": "p"}])).unwrap();
        let e = device_rules(&bad).unwrap_err().to_string();
        assert!(e.starts_with("linux.resources.devices[0].type:"), "{e}");
        let bad: Vec<LinuxDeviceCgroup> =
            serde_json::from_value(json!([{"allow": true, "access": "rx"}])).unwrap();
        assert!(device_rules(&bad).is_err());
    }

    /// The v2 writes land in the files they name: applied to a directory
    /// standing in for the cgroup.
    #[test]
    fn v2_writes_apply_to_a_directory() {
        let dir = super::super::tests::tempfile_dir();
        fs::write(dir.join("io.weight"), "").unwrap();
        let r = resources(
            json!({"memory": {"limit": 1048576}, "pids": {"limit": 7}, "blockIO": {"weight": 1000}}),
        );
        let writes = v2_writes(&r, &none).unwrap();
        apply(&writes, false, |_| Ok(Some(dir.clone()))).unwrap();
        let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("memory.max"), "1048576");
        assert_eq!(read("pids.max"), "7");
        // No io.bfq.weight here: the converted io.weight instead.
        assert_eq!(read("io.weight"), "10000");
        assert!(!dir.join("io.bfq.weight").exists());
        let e = apply(&writes, false, |c| Ok((c != "pids").then(|| dir.clone()))).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.resources.pids.limit: needs the pids"),
            "{e}"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    /// run's limits as the spec says them, written by the one mapping:
    /// where run's own writers differed, the OCI mapping (runc's) is kept.
    fn run_writes(limits: &super::super::Limits, v2: bool) -> Vec<(String, String)> {
        let r = resources_of(limits, false);
        let writes = if v2 {
            v2_writes(&r, &none)
        } else {
            v1_writes(&r, &none)
        };
        files(&writes.unwrap())
    }

    /// `--memory-swap -1` where swap is not accounted: unlimited swap is
    /// what the host gives anyway, so nothing is written (docker warns and
    /// goes on); run's v1 writer refused it, its v2 writer failed writing a
    /// file that is not there.
    #[test]
    fn unlimited_swap_without_accounting_writes_nothing() {
        let limits = super::super::Limits {
            memory: Some(64 << 20),
            memory_swap: Some(-1),
            ..Default::default()
        };
        for v2 in [false, true] {
            assert_eq!(
                run_writes(&limits, v2),
                vec![if v2 {
                    pair("memory.max", "67108864")
                } else {
                    pair("memory.limit_in_bytes", "67108864")
                }]
            );
        }
    }

    /// A device rate of 0 is no limit: v1's "MAJ:MIN 0" removes the rule;
    /// on v2 it is "max" (runc's `ThrottleDevice`), where run wrote
    /// `rbps=0`.
    #[test]
    fn a_zero_rate_is_no_limit() {
        let limits = super::super::Limits {
            device_read_bps: vec![(8, 0, 0)],
            device_write_bps: vec![(8, 0, 1024)],
            ..Default::default()
        };
        assert_eq!(
            run_writes(&limits, true),
            vec![
                pair("io.max", "8:0 rbps=max"),
                pair("io.max", "8:0 wbps=1024")
            ]
        );
        assert_eq!(
            run_writes(&limits, false),
            vec![
                pair("blkio.throttle.read_bps_device", "8:0 0"),
                pair("blkio.throttle.write_bps_device", "8:0 1024")
            ]
        );
    }

    /// run's device list (deny all, docker's defaults, `--device` rules)
    /// is not followed by the defaults again: 13 v1 writes and the program
    /// run attached (the defaults and the extras, "deny" otherwise), not
    /// 25 writes and a program twice as long.
    #[test]
    fn runs_device_rules_are_not_repeated() {
        let extra = Rule {
            allow: true,
            kind: Some('c'),
            major: Some(10),
            minor: Some(229),
            access: "rwm",
        };
        let limits = super::super::Limits {
            devices: vec![extra],
            ..Default::default()
        };
        let r = resources_of(&limits, false);
        let rules = device_rules(r.devices().as_deref().unwrap()).unwrap();
        let mut want = vec![DENY_ALL];
        want.extend(devices::DEFAULT);
        want.push(extra);
        assert_eq!(rules, want);
        let (checked, default_allow) = program_rules(&rules);
        assert_eq!((checked, default_allow), (&want[1..], false));
        // A deny after a default rule: the default is allowed again last.
        let deny = Rule {
            allow: false,
            ..devices::DEFAULT[2]
        };
        let list: Vec<LinuxDeviceCgroup> = serde_json::from_value(json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
        ]))
        .unwrap();
        let rules = device_rules(&list).unwrap();
        assert_eq!(rules[2], deny);
        assert_eq!(&rules[3..], &devices::DEFAULT[..]);
        // --privileged: allow all, no filter at all.
        let all = resources_of(
            &super::super::Limits {
                all_devices: true,
                ..Default::default()
            },
            false,
        );
        let rules = device_rules(all.devices().as_deref().unwrap()).unwrap();
        assert!(rules.iter().all(|r| r.allow), "{rules:?}");
        assert_eq!(program_rules(&rules), (&rules[..], true));
    }

    /// A controller the cgroup lacks is named by run's flag, and found
    /// before anything is written; so is a swap limit the host cannot
    /// account.
    #[test]
    fn runs_errors_name_its_flags() {
        let dir = super::super::tests::tempfile_dir();
        let limits = super::super::Limits {
            memory: Some(64 << 20),
            pids_limit: Some(5),
            all_devices: true,
            ..Default::default()
        };
        // A v2 cgroup with no controller enabled.
        let v2 = Location::V2(dir.clone());
        let e = write_limits(&v2, &resources_of(&limits, false), false).unwrap_err();
        assert!(
            matches!(
                e,
                Error::NoController {
                    flag: "--memory",
                    controller: "memory"
                }
            ),
            "{e}"
        );
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "written: {dir:?}");
        // v1: a memory hierarchy without swap accounting, no pids one.
        let v1 = Location::V1(vec![("memory".into(), dir.clone())]);
        let swap = super::super::Limits {
            memory_swap: Some(128 << 20),
            ..limits.clone()
        };
        let e = write_limits(&v1, &resources_of(&swap, false), true).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--memory-swap: needs swap accounting"),
            "{e}"
        );
        let e = write_limits(&v1, &resources_of(&limits, false), true).unwrap_err();
        assert!(
            matches!(
                e,
                Error::NoController {
                    flag: "--pids-limit",
                    controller: "pids"
                }
            ),
            "{e}"
        );
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "written: {dir:?}");
        // Without a devices hierarchy the default rules cannot be had:
        // refused (run's writer went on with every device open).
        let confined = super::super::Limits::default();
        let e = write_limits(&v1, &resources_of(&confined, false), false).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.resources.devices: needs the devices cgroup controller"),
            "{e}"
        );
        // Inherited from a parent that holds them: nothing to write.
        write_limits(&v1, &resources_of(&confined, false), true).unwrap();
        fs::remove_dir_all(dir).unwrap();
    }
}

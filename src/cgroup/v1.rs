//! The cgroup v1 backend: one directory per controller hierarchy.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{Cgroup, Error, Hierarchy, Limits, Location, Stats, io_err, keyed, read_u64, write};
use crate::step;

/// The v1 controllers a container is placed in.
const CONTROLLERS: [&str; 7] = [
    "memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices",
];

/// The v1 controllers an OCI container is placed in: those above, and
/// those only the OCI resources or lifecycle use.
const OCI_CONTROLLERS: [&str; 12] = [
    "memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices", "freezer", "hugetlb",
    "net_cls", "net_prio", "rdma",
];

/// A v1 memory limit at or above this is the kernel's "unlimited".
const UNLIMITED: u64 = 1 << 62;

/// One mounted v1 hierarchy.
#[derive(Debug, Clone)]
struct Mount {
    /// Its controllers as mounted together, e.g. `cpu,cpuacct`.
    controllers: String,
    mountpoint: PathBuf,
    /// containr's own cgroup in it, relative to the mountpoint.
    own: PathBuf,
}

impl Mount {
    fn has(&self, controller: &str) -> bool {
        self.controllers.split(',').any(|c| c == controller)
    }
}

/// The host's v1 hierarchies.
pub struct V1 {
    mounts: Vec<Mount>,
}

impl V1 {
    /// Find the v1 hierarchies (from mountinfo) and containr's own cgroup in
    /// each (from /proc/self/cgroup): those of containr's own limits, or
    /// with `oci`, of every controller an OCI container uses.
    pub fn from_proc(oci: bool) -> Result<V1, Error> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let wanted: &[&str] = if oci { &OCI_CONTROLLERS } else { &CONTROLLERS };
        let mounts = parse(&mountinfo, &own, wanted);
        if mounts.is_empty() {
            return Err(Error::NoHierarchy);
        }
        Ok(V1 { mounts })
    }

    /// Each hierarchy as (its controllers, e.g. `cpu,cpuacct`, its
    /// mountpoint, containr's own cgroup in it relative to the mountpoint).
    pub(crate) fn hierarchies(&self) -> impl Iterator<Item = (&str, &Path, &Path)> {
        self.mounts.iter().map(|m| {
            (
                m.controllers.as_str(),
                m.mountpoint.as_path(),
                m.own.as_path(),
            )
        })
    }
}

/// The v1 hierarchies among `mountinfo`'s mounts, with containr's cgroup in
/// each from `own` (the contents of /proc/self/cgroup). Pure, for tests.
fn parse(mountinfo: &str, own: &str, wanted: &[&str]) -> Vec<Mount> {
    let mut mounts: Vec<Mount> = Vec::new();
    for line in mountinfo.lines() {
        // Fields after " - " are: fstype, source, super options.
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split(' ');
        if r.next() != Some("cgroup") {
            continue;
        }
        let opts = r.nth(1).unwrap_or("");
        let controllers: Vec<&str> = opts.split(',').filter(|o| wanted.contains(o)).collect();
        let Some(mountpoint) = left.split(' ').nth(4) else {
            continue;
        };
        if controllers.is_empty() || mounts.iter().any(|m| m.has(controllers[0])) {
            continue;
        }
        let controllers = controllers.join(",");
        // /proc/self/cgroup: "4:memory:/path" or "1:cpu,cpuacct:/path".
        let own_path = own
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, ':');
                f.next();
                f.next().zip(f.next())
            })
            .find(|(names, _)| {
                names
                    .split(',')
                    .any(|n| controllers.split(',').any(|c| c == n))
            })
            .map_or("/", |(_, path)| path);
        mounts.push(Mount {
            controllers,
            mountpoint: PathBuf::from(mountpoint),
            own: PathBuf::from(own_path.trim_start_matches('/')),
        });
    }
    mounts
}

impl Hierarchy for V1 {
    fn name(&self) -> &'static str {
        "v1"
    }

    fn empty(&self) -> Vec<(Location, std::time::Duration)> {
        // Every container joins the hierarchies other than cpuset and blkio
        // (joined only for their limits); devices nests it under
        // `restricted/` or not: any other one tells which are empty.
        let Some(probe) = self
            .mounts
            .iter()
            .find(|m| !m.has("cpuset") && !m.has("blkio") && !m.has("devices"))
        else {
            return Vec::new();
        };
        let base = |m: &Mount| m.mountpoint.join(&m.own).join("containr");
        super::container_dirs(&base(probe))
            .into_iter()
            .filter_map(|(id, dir)| {
                let age = super::empty_since(&dir)?;
                let dirs = self
                    .mounts
                    .iter()
                    .flat_map(|m| {
                        [base(m).join(&id), base(m).join("restricted").join(&id)]
                            .into_iter()
                            .filter(|d| d.is_dir())
                            .map(|d| (m.controllers.clone(), d))
                    })
                    .collect();
                Some((Location::V1(dirs), age))
            })
            .collect()
    }

    fn create(
        &self,
        id: &str,
        limits: &Limits,
        parent: Option<&super::Parent>,
    ) -> Result<(Cgroup, LinuxResources), Error> {
        let mut dirs = Vec::new();
        let mut made = Vec::new();
        // Joining a v1 hierarchy costs an RCU grace period per hierarchy
        // (cgroup_threadgroup_rwsem), the slowest part of start-up: cpuset
        // and blkio are joined only when a limit needs them.
        let wanted = |m: &&Mount| {
            (!m.has("cpuset") || limits.cpuset_cpus.is_some())
                && (!m.has("blkio")
                    || !limits.device_read_bps.is_empty()
                    || !limits.device_write_bps.is_empty())
        };
        // The device rules are inherited from a parent that already has
        // them, instead of 13 writes per container, where that parent can be
        // made (and checked) once.
        let mut rules_inherited = false;
        for m in self.mounts.iter().filter(wanted) {
            if let Some(p) = parent {
                // --cgroup-parent: <parent>/<id>, the missing levels made.
                let dir = m.mountpoint.join(p.place.below_v1_root(&m.own)).join(id);
                let mkdir = |d: &Path| make_dir(&m.controllers, d);
                let levels =
                    super::oci::make_levels(&m.mountpoint, &dir, &p.raw, &mut Vec::new(), &mkdir);
                if let Err(e) = levels {
                    drop(Cgroup::new(Location::V1(made), None));
                    return Err(e);
                }
                made.push((m.controllers.clone(), dir.clone()));
                dirs.push((m.controllers.clone(), dir));
                continue;
            }
            let base = m.mountpoint.join(&m.own).join("containr");
            // Extra rules need a parent that allows them: the base.
            let restricted = if m.has("devices") && !limits.all_devices && limits.devices.is_empty()
            {
                restricted_parent(&base).ok()
            } else {
                None
            };
            rules_inherited |= restricted.is_some();
            let parent = restricted.unwrap_or(base);
            let dir = parent.join(id);
            if let Err(e) = make_dirs(m, &parent, &dir) {
                // Undo what this call already made before reporting.
                drop(Cgroup::new(Location::V1(made), None));
                return Err(e);
            }
            made.push((m.controllers.clone(), dir.clone()));
            dirs.push((m.controllers.clone(), dir));
        }
        step!(
            "mkdir {}{} in each v1 hierarchy ({})",
            parent.map_or("containr/".to_string(), |p| format!("-p {}/", p.raw)),
            &id[..id.len().min(12)],
            dirs.iter()
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let cpuset = super::v1_dir(&dirs, "cpuset");
        // From here on, dropping the Cgroup removes what was made.
        let cgroup = Cgroup::new(Location::V1(dirs), limits.memory);
        if let (Some(cpus), Some(dir)) = (&limits.cpuset_cpus, cpuset) {
            let available =
                fs::read_to_string(dir.with_file_name("cpuset.cpus")).unwrap_or_default();
            super::check_cpuset(cpus, &available)?;
        }
        let resources = super::oci::resources_of(limits, cgroup.location().accounts_swap());
        super::oci::write_limits(cgroup.location(), &resources, rules_inherited)?;
        Ok((cgroup, resources))
    }
}

/// `containr/restricted` in the devices hierarchy: a cgroup holding docker's
/// default device rules, which every container cgroup made under it
/// inherits. It is configured under a temporary name and renamed into
/// place, so no container can ever be made under it before its rules are
/// set; and its rules are checked each time before it is used.
fn restricted_parent(base: &Path) -> Result<PathBuf, Error> {
    let parent = base.join("restricted");
    if has_default_rules(&parent) {
        return Ok(parent);
    }
    match fs::create_dir(base) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(io_err(base)(e).into());
        }
        _ => {}
    }
    let tmp = base.join(format!(".restricted-{}", std::process::id()));
    let _ = fs::remove_dir(&tmp);
    fs::create_dir(&tmp).map_err(io_err(&tmp))?;
    step!(
        "devices cgroup {}: deny all, allow docker's default set (once, inherited)",
        parent.display()
    );
    let configured = write(&tmp.join("devices.deny"), "a").and_then(|()| {
        super::devices::DEFAULT
            .iter()
            .try_for_each(|rule| write(&tmp.join("devices.allow"), &rule.v1()))
    });
    // Another containr may have won the race: its parent is as good.
    if configured.is_err() || fs::rename(&tmp, &parent).is_err() {
        let _ = fs::remove_dir(&tmp);
    }
    configured?;
    if has_default_rules(&parent) {
        Ok(parent)
    } else {
        Err(io_err(&parent)(std::io::Error::other("unexpected device rules")).into())
    }
}

/// Whether `dir`'s devices.list is exactly docker's default set (read on
/// every start: compared rule by rule, nothing formatted).
fn has_default_rules(dir: &Path) -> bool {
    let Ok(list) = fs::read_to_string(dir.join("devices.list")) else {
        return false;
    };
    let mut listed = 0;
    for line in list.lines().filter(|l| !l.trim().is_empty()) {
        // The kernel lists each rule once; the defaults are distinct.
        match super::devices::Rule::from_v1_list(line) {
            Some(rule) if super::devices::DEFAULT.contains(&rule) => listed += 1,
            _ => return false,
        }
    }
    listed == super::devices::DEFAULT.len()
}

/// mkdir the containr parent (if missing) and the container's directory.
fn make_dirs(m: &Mount, parent: &Path, dir: &Path) -> Result<(), Error> {
    for d in [parent, dir] {
        match make_dir(&m.controllers, d) {
            Err(Error::Io(e))
                if e.source.kind() == std::io::ErrorKind::AlreadyExists && d == parent => {}
            r => r?,
        }
    }
    Ok(())
}

/// mkdir one cgroup in the hierarchy of `controllers`. A new v1 cpuset
/// starts with no CPUs and no memory nodes, and no task can join it until
/// it has some: they are copied down from the level above.
pub(crate) fn make_dir(controllers: &str, d: &Path) -> Result<(), Error> {
    fs::create_dir(d).map_err(io_err(d))?;
    if controllers.split(',').any(|c| c == "cpuset") {
        let above = d.parent().expect("below the mountpoint");
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let copied = fs::read_to_string(above.join(file))
                .map_err(|e| io_err(above)(e).into())
                .and_then(|value| write(&d.join(file), value.trim()));
            if let Err(e) = copied {
                let _ = fs::remove_dir(d);
                return Err(e);
            }
        }
    }
    Ok(())
}

pub(super) fn oom_kills(dir: &Path) -> u64 {
    keyed(&dir.join("memory.oom_control"), "oom_kill").unwrap_or(0)
}

pub(super) fn stats(dirs: &[(String, PathBuf)]) -> Stats {
    let dir = |controller: &str| super::v1_dir(dirs, controller);
    let read = |controller: &str, file: &str| dir(controller).and_then(|d| read_u64(&d.join(file)));
    Stats {
        memory_usage: read("memory", "memory.usage_in_bytes").unwrap_or(0),
        memory_limit: read("memory", "memory.limit_in_bytes").filter(|l| *l < UNLIMITED),
        cpu_usage_ns: read("cpuacct", "cpuacct.usage").unwrap_or(0),
        pids: read("pids", "pids.current").unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
29 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755
30 29 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw
33 29 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu,cpuacct
34 29 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,memory
35 29 0:32 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,pids
36 29 0:33 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,freezer
";
    const OWN: &str = "4:memory:/ci/job1\n3:pids:/\n1:cpu,cpuacct:/\n0::/\n";

    #[test]
    fn finds_hierarchies_and_own_cgroups() {
        let m = parse(MOUNTINFO, OWN, &CONTROLLERS);
        let names: Vec<&str> = m.iter().map(|m| m.controllers.as_str()).collect();
        // freezer is not one containr uses; cgroup2 and tmpfs are not v1.
        assert_eq!(names, vec!["cpu,cpuacct", "memory", "pids"]);
        assert_eq!(m[1].own, PathBuf::from("ci/job1"));
        assert_eq!(m[0].own, PathBuf::from(""));
        assert!(m[0].has("cpuacct"));
    }
}

//! Where the OCI runtime calls the pieces other modules provide: the
//! confinement of the process (`security`), the mounts (`rootfs`) and the
//! cgroup (`cgroup`). Each has one call site here, so moving onto a fuller
//! implementation is one edit; until then, what a piece cannot apply yet is
//! refused by [`check_applied`], naming the field.

use oci_spec::runtime::{Process, Spec};
use serde_json::Value;

use super::Error;
use crate::cgroup::{self, Cgroup, Limits, Location};
use crate::security::Confinement;

/// The mounts containr's own root filesystem set-up makes, by destination
/// and type: a spec asking for exactly these (runc's default) is applied.
const BUILT_IN_MOUNTS: [(&str, &str); 7] = [
    ("/proc", "proc"),
    ("/dev", "tmpfs"),
    ("/dev/pts", "devpts"),
    ("/dev/shm", "tmpfs"),
    ("/dev/mqueue", "mqueue"),
    ("/sys", "sysfs"),
    ("/sys/fs/cgroup", "cgroup"),
];

/// Refuse, naming it, any field the pieces in use do not apply yet.
pub fn check_applied(spec: &Spec) -> Result<(), Error> {
    let not_yet = |field: &str| Err(Error::unsupported(field, "not applied yet by containr-oci"));
    let process = spec.process().as_ref().expect("checked before");
    if process.rlimits().as_ref().is_some_and(|r| !r.is_empty()) {
        return not_yet("process.rlimits");
    }
    if process.oom_score_adj().is_some() {
        return not_yet("process.oomScoreAdj");
    }
    if process.io_priority().is_some() {
        return not_yet("process.ioPriority");
    }
    if process.scheduler().is_some() {
        return not_yet("process.scheduler");
    }
    confinement(process)?;
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination().to_string_lossy();
        let typ = m.typ().as_deref().unwrap_or("bind");
        if !BUILT_IN_MOUNTS.contains(&(dest.as_ref(), typ)) {
            return Err(Error::unsupported(
                &format!("mounts ({dest}, type {typ})"),
                "not applied yet by containr-oci",
            ));
        }
    }
    let linux = spec.linux().as_ref().expect("checked before");
    if linux.seccomp().is_some() {
        return not_yet("linux.seccomp");
    }
    if linux.personality().is_some() {
        return not_yet("linux.personality");
    }
    if linux.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return not_yet("linux.devices");
    }
    if linux.sysctl().as_ref().is_some_and(|s| !s.is_empty()) {
        return not_yet("linux.sysctl");
    }
    if linux
        .rootfs_propagation()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        return not_yet("linux.rootfsPropagation");
    }
    if linux.cgroups_path().is_some() {
        return not_yet("linux.cgroupsPath");
    }
    limits(spec)?;
    Ok(())
}

/// The confinement the process gets: the capability sets (bounding,
/// effective and permitted the same, inheritable and ambient empty) and
/// no_new_privs.
pub fn confinement(process: &Process) -> Result<Confinement, Error> {
    // Absent, the process gets no capability (oci-spec's Default would
    // give a set).
    let caps = process.capabilities().clone().unwrap_or_else(|| {
        let mut none = oci_spec::runtime::LinuxCapabilities::default();
        none.set_bounding(None);
        none.set_effective(None);
        none.set_permitted(None);
        none.set_inheritable(None);
        none.set_ambient(None);
        none
    });
    let names = |set: &Option<oci_spec::runtime::Capabilities>| -> Result<Vec<u8>, Error> {
        let mut v = Vec::new();
        for c in set.iter().flatten() {
            let name = serde_json::to_value(c)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            v.push(crate::security::caps::parse(&name)?.index());
        }
        v.sort_unstable();
        v.dedup();
        Ok(v)
    };
    let bounding = names(caps.bounding())?;
    if names(caps.effective())? != bounding || names(caps.permitted())? != bounding {
        return Err(Error::unsupported(
            "process.capabilities",
            "effective and permitted sets other than the bounding set are not applied yet",
        ));
    }
    if !names(caps.inheritable())?.is_empty() || !names(caps.ambient())?.is_empty() {
        return Err(Error::unsupported(
            "process.capabilities",
            "inheritable and ambient capabilities are not applied yet",
        ));
    }
    Ok(Confinement {
        caps: bounding,
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        seccomp: None,
        privileged: false,
    })
}

/// `linux.resources` as the limits containr's cgroup code applies.
fn limits(spec: &Spec) -> Result<Limits, Error> {
    let resources = spec.linux().as_ref().and_then(|l| l.resources().clone());
    let Some(resources) = resources else {
        return Ok(Limits::default());
    };
    let v = serde_json::to_value(&resources).expect("resources serialise");
    const APPLIED: [&str; 9] = [
        "devices",
        "memory.limit",
        "memory.swap",
        "cpu.shares",
        "cpu.quota",
        "cpu.period",
        "cpu.cpus",
        "pids.limit",
        "",
    ];
    if let Value::Object(groups) = &v {
        for (group, inner) in groups {
            let fields: Vec<String> = match inner {
                Value::Object(o) => o
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, _)| format!("{group}.{k}"))
                    .collect(),
                Value::Null => vec![],
                Value::Array(a) if a.is_empty() => vec![],
                _ => vec![group.clone()],
            };
            for f in fields {
                if !APPLIED.contains(&f.as_str()) {
                    return Err(Error::unsupported(
                        &format!("linux.resources.{f}"),
                        "not applied yet by containr-oci",
                    ));
                }
            }
        }
    }
    let memory = resources.memory().as_ref();
    let cpu = resources.cpu().as_ref();
    let cpus = cpu.and_then(|c| match (c.quota(), c.period()) {
        (Some(q), Some(p)) if q > 0 && p > 0 => Some(q as f64 / p as f64),
        (Some(q), None) if q > 0 => Some(q as f64 / cgroup::CPU_PERIOD_US as f64),
        _ => None,
    });
    Ok(Limits {
        memory: memory
            .and_then(|m| m.limit())
            .filter(|l| *l > 0)
            .map(|l| l as u64),
        memory_swap: memory.and_then(|m| m.swap()),
        cpus,
        cpu_shares: cpu.and_then(|c| c.shares()),
        cpuset_cpus: cpu.and_then(|c| c.cpus().clone()),
        pids_limit: resources.pids().as_ref().map(|p| p.limit()),
        ..Limits::default()
    })
}

/// Make the container's cgroup with the spec's limits.
pub fn create_cgroup(id: &str, spec: &Spec) -> Result<Cgroup, Error> {
    let limits = limits(spec)?;
    Ok(cgroup::detect()?.create(id, &limits)?)
}

/// Remove a container's cgroup, by the location its record keeps.
pub fn remove_cgroup(location: Location) {
    Cgroup::remove_stale(location);
}

/// The processes in a container's cgroup.
pub fn cgroup_pids(location: &Location) -> Vec<i32> {
    let dirs: Vec<&std::path::Path> = match location {
        Location::V2(d) => vec![d],
        Location::V1(dirs) => dirs.iter().map(|(_, d)| d.as_path()).collect(),
    };
    let mut pids: Vec<i32> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

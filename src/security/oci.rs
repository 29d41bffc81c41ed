//! The confinement of an OCI `config.json`'s process: capabilities in all
//! five sets, rlimits, `oomScoreAdj`, `ioPriority`, `scheduler`,
//! `linux.personality`, `noNewPrivileges`, `apparmorProfile` /
//! `selinuxLabel`, and `linux.seccomp`.
//!
//! [`ProcessConfinement::from_spec`] checks and resolves everything on the
//! runtime's side, before any container exists: a bad field is one error
//! naming it. The container's process then only makes system calls:
//! [`ProcessConfinement::apply_early`] while it is still root with every
//! capability, [`ProcessConfinement::apply_late`] right before `execve`.
//! The capability, `no_new_privs` and seccomp primitives are the ones the
//! docker-like front end's [`Confinement`](super::Confinement) uses.

use std::collections::BTreeSet;
use std::path::Path;

use oci_spec::runtime::{
    IOPriorityClass, LinuxCapabilities, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, LinuxSeccomp, LinuxSeccompAction,
    LinuxSeccompFilterFlag, PosixRlimitType, Process,
};

use serde::{Deserialize, Serialize};

use super::{Error, caps, seccomp};
use crate::step;

/// `SECCOMP_FILTER_FLAG_*` (linux/seccomp.h).
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 1 << 1;
const FLAG_SPEC_ALLOW: u32 = 1 << 2;
const FLAG_NEW_LISTENER: u32 = 1 << 3;
const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// The filter flags by their OCI names, with the bits the kernel is
/// probed with. WAIT_KILLABLE_RECV only means something with a listener
/// (the kernel refuses it without NEW_LISTENER), so it is probed with one.
const FILTER_FLAGS: [(LinuxSeccompFilterFlag, &str, u32); 4] = [
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
        "SECCOMP_FILTER_FLAG_TSYNC",
        FLAG_TSYNC,
    ),
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        "SECCOMP_FILTER_FLAG_LOG",
        FLAG_LOG,
    ),
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        FLAG_SPEC_ALLOW,
    ),
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV,
    ),
];

/// The seccomp actions this runtime can compile (not SCMP_ACT_NOTIFY).
const ACTIONS: [&str; 8] = [
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_LOG",
    "SCMP_ACT_ALLOW",
];

const OPERATORS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// The architectures the BPF generator knows (see `seccomp::audit_arch`).
const ARCHES: [&str; 9] = [
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390X",
];

/// The five capability sets, as capability numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct CapSets {
    bounding: Vec<u8>,
    effective: Vec<u8>,
    permitted: Vec<u8>,
    inheritable: Vec<u8>,
    ambient: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Rlimit {
    name: PosixRlimitType,
    resource: libc::__rlimit_resource_t,
    soft: u64,
    hard: u64,
}

/// `struct sched_attr` (linux/sched/types.h), SCHED_ATTR_SIZE_VER1.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Seccomp {
    /// A compiled BPF program (`struct sock_filter` array).
    bpf: Vec<u8>,
    /// `SECCOMP_FILTER_FLAG_*` bits to load it with.
    flags: u32,
    flag_names: Vec<String>,
}

/// An OCI process's confinement, checked and resolved: applying it is
/// only system calls. Serializable, to travel to the container's init.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessConfinement {
    caps: CapSets,
    rlimits: Vec<Rlimit>,
    no_new_privs: bool,
    oom_score_adj: Option<i32>,
    /// `(class, priority)` and the value for `ioprio_set`.
    io_priority: Option<(IOPriorityClass, i64, libc::c_int)>,
    scheduler: Option<(LinuxSchedulerPolicy, SchedAttr)>,
    personality: Option<LinuxPersonalityDomain>,
    apparmor_profile: Option<String>,
    selinux_label: Option<String>,
    seccomp: Option<Seccomp>,
}

fn spec_err(field: impl Into<String>, why: impl Into<String>) -> Error {
    Error::Spec {
        field: field.into(),
        why: why.into(),
    }
}

fn apply_err(field: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::ApplySpec {
        field: field.into(),
        source,
    }
}

/// The OCI spelling of an enum value of the spec (its serde name).
fn oci_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// One capability set: names resolved, and those this kernel does not have
/// skipped with a warning, as runc does (a spec written for a newer kernel
/// still runs).
fn cap_set(
    field: &str,
    set: Option<&oci_spec::runtime::Capabilities>,
    supported: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut out = BTreeSet::new();
    for cap in set.into_iter().flatten() {
        let name = oci_name(cap);
        let n = caps::parse(&name)
            .map_err(|_| spec_err(field, format!("unknown capability {name:?}")))?
            .index();
        if supported.contains(&n) {
            out.insert(n);
        } else {
            tracing::warn!("{field}: {name} is not known to this kernel; ignored");
        }
    }
    Ok(out.into_iter().collect())
}

fn resolve_caps(c: Option<&LinuxCapabilities>) -> Result<CapSets, Error> {
    // No `capabilities` at all: every set empty, the safe reading.
    let Some(c) = c else {
        return Ok(CapSets::default());
    };
    let f = "process.capabilities";
    let have = caps::runtime_supported();
    let set = |name: &str, set: &Option<oci_spec::runtime::Capabilities>| {
        cap_set(&format!("{f}.{name}"), set.as_ref(), &have)
    };
    let sets = CapSets {
        bounding: set("bounding", c.bounding())?,
        effective: set("effective", c.effective())?,
        permitted: set("permitted", c.permitted())?,
        inheritable: set("inheritable", c.inheritable())?,
        ambient: set("ambient", c.ambient())?,
    };
    // What capset(2) would refuse, said here with the field's name.
    if let Some(&n) = sets.effective.iter().find(|n| !sets.permitted.contains(n)) {
        return Err(spec_err(
            format!("{f}.effective"),
            format!("{} is not in the permitted set", caps::names(&[n])[0]),
        ));
    }
    if let Some(&n) = sets.inheritable.iter().find(|n| !sets.bounding.contains(n)) {
        return Err(spec_err(
            format!("{f}.inheritable"),
            format!("{} is not in the bounding set", caps::names(&[n])[0]),
        ));
    }
    // The kernel raises an ambient capability only if it is permitted and
    // inheritable; runc warns and goes on, so does this.
    let (ambient, dropped): (Vec<u8>, Vec<u8>) = sets
        .ambient
        .iter()
        .partition(|n| sets.permitted.contains(n) && sets.inheritable.contains(n));
    if !dropped.is_empty() {
        tracing::warn!(
            "{f}.ambient: {} not both permitted and inheritable; ignored",
            caps::names(&dropped).join(", ")
        );
    }
    Ok(CapSets { ambient, ..sets })
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType as R;
    match t {
        R::RlimitCpu => libc::RLIMIT_CPU,
        R::RlimitFsize => libc::RLIMIT_FSIZE,
        R::RlimitData => libc::RLIMIT_DATA,
        R::RlimitStack => libc::RLIMIT_STACK,
        R::RlimitCore => libc::RLIMIT_CORE,
        R::RlimitRss => libc::RLIMIT_RSS,
        R::RlimitNproc => libc::RLIMIT_NPROC,
        R::RlimitNofile => libc::RLIMIT_NOFILE,
        R::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        R::RlimitAs => libc::RLIMIT_AS,
        R::RlimitLocks => libc::RLIMIT_LOCKS,
        R::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        R::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        R::RlimitNice => libc::RLIMIT_NICE,
        R::RlimitRtprio => libc::RLIMIT_RTPRIO,
        R::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

fn resolve_rlimits(p: &Process) -> Result<Vec<Rlimit>, Error> {
    resolve_rlimit_list(p.rlimits().as_deref().unwrap_or(&[]))
}

fn apply_rlimits(rlimits: &[Rlimit]) -> Result<(), Error> {
    for r in rlimits {
        let lim = libc::rlimit {
            rlim_cur: r.soft,
            rlim_max: r.hard,
        };
        // SAFETY: setrlimit reads one rlimit structure that outlives the call.
        if unsafe { libc::setrlimit(r.resource, &lim) } != 0 {
            return Err(apply_err(format!("process.rlimits {}", oci_name(&r.name)))(
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

fn resolve_rlimit_list(rlimits: &[oci_spec::runtime::PosixRlimit]) -> Result<Vec<Rlimit>, Error> {
    let mut out: Vec<Rlimit> = Vec::new();
    for (i, r) in rlimits.iter().enumerate() {
        let field = format!("process.rlimits[{i}]");
        let name = r.typ();
        if out.iter().any(|o| o.name == name) {
            return Err(spec_err(
                field,
                format!("{} is given twice", oci_name(&name)),
            ));
        }
        if r.soft() > r.hard() {
            return Err(spec_err(
                field,
                format!(
                    "{} soft limit {} is above its hard limit {}",
                    oci_name(&name),
                    r.soft(),
                    r.hard()
                ),
            ));
        }
        out.push(Rlimit {
            name,
            resource: rlimit_resource(name),
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    Ok(out)
}

fn resolve_scheduler(p: &Process) -> Result<Option<(LinuxSchedulerPolicy, SchedAttr)>, Error> {
    use LinuxSchedulerPolicy as P;
    let Some(s) = p.scheduler() else {
        return Ok(None);
    };
    let f = "process.scheduler";
    let policy = *s.policy();
    let number = match policy {
        P::SchedOther => libc::SCHED_OTHER,
        P::SchedFifo => libc::SCHED_FIFO,
        P::SchedRr => libc::SCHED_RR,
        P::SchedBatch => libc::SCHED_BATCH,
        P::SchedIdle => libc::SCHED_IDLE,
        P::SchedDeadline => 6, // SCHED_DEADLINE
        // Specified by the OCI spec, never merged into Linux.
        P::SchedIso => {
            return Err(spec_err(
                format!("{f}.policy"),
                "SCHED_ISO is not a Linux scheduling policy",
            ));
        }
    } as u32;
    let nice = s.nice().unwrap_or(0);
    let priority = s.priority().unwrap_or(0);
    // runc's checks (libcontainer/configs/validate), then the kernel's.
    if matches!(policy, P::SchedOther | P::SchedBatch) && !(-20..=19).contains(&nice) {
        return Err(spec_err(
            format!("{f}.nice"),
            format!("{nice} is outside -20..19"),
        ));
    }
    match policy {
        P::SchedFifo | P::SchedRr if !(1..=99).contains(&priority) => {
            return Err(spec_err(
                format!("{f}.priority"),
                format!("{priority} is outside 1..99 for {}", oci_name(&policy)),
            ));
        }
        P::SchedFifo | P::SchedRr => {}
        _ if priority != 0 => {
            return Err(spec_err(
                format!("{f}.priority"),
                "only SCHED_FIFO and SCHED_RR take a priority",
            ));
        }
        _ => {}
    }
    let (runtime, deadline, period) = (
        s.runtime().unwrap_or(0),
        s.deadline().unwrap_or(0),
        s.period().unwrap_or(0),
    );
    if policy != P::SchedDeadline && (runtime != 0 || deadline != 0 || period != 0) {
        return Err(spec_err(
            f,
            "runtime, deadline and period are for SCHED_DEADLINE only",
        ));
    }
    let mut flags = 0u64;
    for flag in s.flags().iter().flatten() {
        flags |= match flag {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    Ok(Some((
        policy,
        SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy: number,
            flags,
            nice,
            priority: priority as u32,
            runtime,
            deadline,
            period,
            util_min: 0,
            util_max: 0,
        },
    )))
}

fn resolve_io_priority(p: &Process) -> Result<Option<(IOPriorityClass, i64, libc::c_int)>, Error> {
    let Some(io) = p.io_priority() else {
        return Ok(None);
    };
    let priority = io.priority();
    if !(0..=7).contains(&priority) {
        return Err(spec_err(
            "process.ioPriority.priority",
            format!("{priority} is outside 0..7"),
        ));
    }
    // IOPRIO_PRIO_VALUE(class, data) (linux/ioprio.h).
    let class = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    Ok(Some((
        io.class(),
        priority,
        class << 13 | priority as libc::c_int,
    )))
}

/// Whether AppArmor confines processes on this host (runc's test).
fn apparmor_enabled() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|b| b.first() == Some(&b'Y'))
}

/// Whether SELinux is on: its filesystem is mounted where libselinux looks.
fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// A label for an LSM, or an error if the host has none such.
fn lsm_label(
    field: &str,
    value: Option<&String>,
    lsm: &str,
    enabled: fn() -> bool,
) -> Result<Option<String>, Error> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(_) if !enabled() => Err(spec_err(
            field,
            format!("{lsm} is not enabled on this host"),
        )),
        Some(v) if v.contains(['\n', '\0']) => {
            Err(spec_err(field, format!("{v:?} is not a {lsm} label")))
        }
        Some(v) => Ok(Some(v.clone())),
    }
}

/// Whether the kernel knows the filter flag bits `flags`: with a null
/// program it fails EINVAL for unknown flags, and EFAULT (reading the
/// program) for known ones, before installing anything.
fn filter_flags_supported(flags: u32) -> bool {
    // SAFETY: a null program: the kernel fails before using it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

fn resolve_seccomp(s: &LinuxSeccomp) -> Result<Seccomp, Error> {
    let f = "linux.seccomp";
    let notify = s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls()
            .iter()
            .flatten()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify);
    if notify || s.listener_path().is_some() {
        return Err(spec_err(
            f,
            "SCMP_ACT_NOTIFY and listenerPath (a seccomp agent) are not supported",
        ));
    }
    // The action's data is 16 bits; an errno above MAX_ERRNO is clamped.
    let errno_ok = |e: Option<u32>| e.is_none_or(|e| e <= 4095);
    if !errno_ok(s.default_errno_ret()) {
        return Err(spec_err(
            format!("{f}.defaultErrnoRet"),
            "must be at most 4095",
        ));
    }
    for (i, r) in s.syscalls().iter().flatten().enumerate() {
        if !errno_ok(r.errno_ret()) {
            return Err(spec_err(
                format!("{f}.syscalls[{i}].errnoRet"),
                "must be at most 4095",
            ));
        }
    }
    let mut flags = 0;
    let mut flag_names = Vec::new();
    for flag in s.flags().iter().flatten() {
        let &(_, name, bits) = FILTER_FLAGS
            .iter()
            .find(|(f, _, _)| f == flag)
            .ok_or_else(|| spec_err(format!("{f}.flags"), format!("unknown flag {flag:?}")))?;
        if !filter_flags_supported(bits) {
            return Err(spec_err(
                format!("{f}.flags"),
                format!("{name} is not supported by this kernel"),
            ));
        }
        flag_names.push(name.to_string());
        // WAIT_KILLABLE_RECV is about a listener, which is refused above;
        // the kernel refuses it alone, so it is not passed (libseccomp
        // does the same without a listener).
        flags |= bits & !(FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV);
    }
    let bpf = seccomp::compile_oci(s).map_err(|why| spec_err(f, why))?;
    Ok(Seccomp {
        bpf,
        flags,
        flag_names,
    })
}

impl ProcessConfinement {
    /// Check and resolve `process`'s confinement and `linux.seccomp`.
    pub fn from_spec(process: &Process, seccomp: Option<&LinuxSeccomp>) -> Result<Self, Error> {
        let oom_score_adj = process.oom_score_adj();
        if let Some(adj) = oom_score_adj
            && !(-1000..=1000).contains(&adj)
        {
            return Err(spec_err(
                "process.oomScoreAdj",
                format!("{adj} is outside -1000..1000"),
            ));
        }
        Ok(ProcessConfinement {
            caps: resolve_caps(process.capabilities().as_ref())?,
            rlimits: resolve_rlimits(process)?,
            no_new_privs: process.no_new_privileges().unwrap_or(false),
            oom_score_adj,
            io_priority: resolve_io_priority(process)?,
            scheduler: resolve_scheduler(process)?,
            personality: None,
            apparmor_profile: lsm_label(
                "process.apparmorProfile",
                process.apparmor_profile().as_ref(),
                "apparmor",
                apparmor_enabled,
            )?,
            selinux_label: lsm_label(
                "process.selinuxLabel",
                process.selinux_label().as_ref(),
                "selinux",
                selinux_enabled,
            )?,
            seccomp: seccomp.map(resolve_seccomp).transpose()?,
        })
    }

    /// Add `linux.personality` (it is not the process's field in the
    /// spec, but it is applied with the rest).
    pub fn with_personality(mut self, p: Option<&LinuxPersonality>) -> Result<Self, Error> {
        if let Some(p) = p {
            if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
                return Err(spec_err(
                    "linux.personality.flags",
                    "no personality flags are supported",
                ));
            }
            self.personality = Some(p.domain());
        }
        Ok(self)
    }

    /// The seccomp program compiled already (`containr run`'s profile,
    /// from its cache) in place of `linux.seccomp`'s; none: unconfined.
    pub fn with_program(mut self, bpf: Option<Vec<u8>>) -> Self {
        self.seccomp = bpf.map(|bpf| Seccomp {
            bpf,
            flags: 0,
            flag_names: Vec::new(),
        });
        self
    }

    /// Describe, for the walkthrough, what applying will do.
    pub fn explain(&self) {
        let c = &self.caps;
        let list = |v: &[u8]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                caps::names(v).join(",")
            }
        };
        step!(
            "capabilities: bounding {} of {}, permitted {}, effective {}, inheritable {}, ambient {}",
            c.bounding.len(),
            caps::runtime_supported().len(),
            c.permitted.len(),
            c.effective.len(),
            list(&c.inheritable),
            list(&c.ambient)
        );
        for r in &self.rlimits {
            step!(
                "setrlimit({}, soft {}, hard {})",
                oci_name(&r.name),
                r.soft,
                r.hard
            );
        }
        if let Some(adj) = self.oom_score_adj {
            step!("echo {adj} > /proc/self/oom_score_adj");
        }
        if let Some((class, prio, _)) = &self.io_priority {
            step!("ioprio_set({}, {prio})", oci_name(class));
        }
        if let Some((policy, a)) = &self.scheduler {
            step!(
                "sched_setattr({}, nice {}, priority {})",
                oci_name(policy),
                a.nice,
                a.priority
            );
        }
        if let Some(d) = self.personality {
            step!("personality({})", oci_name(&d));
        }
        if let Some(p) = &self.apparmor_profile {
            step!("apparmor: exec the command under profile {p:?}");
        }
        if let Some(l) = &self.selinux_label {
            step!("selinux: exec the command as {l:?}");
        }
        super::explain_filter(
            self.no_new_privs,
            self.seccomp.as_ref().map(|s| {
                format!(
                    "seccomp(SECCOMP_SET_MODE_FILTER{}): {} BPF instructions from linux.seccomp",
                    s.flag_names
                        .iter()
                        .map(|n| format!(", {n}"))
                        .collect::<String>(),
                    s.bpf.len() / 8
                )
            }),
        );
    }

    /// Still root with every capability, before the user switch: limits,
    /// OOM score, I/O and CPU scheduling, personality, the LSM labels the
    /// exec takes, the bounding set, and keeping the permitted set across
    /// `setuid` (and seccomp here if no_new_privs is off). Writes
    /// `/proc/self/oom_score_adj`, so needs a /proc if oomScoreAdj is set.
    pub fn apply_early(&self) -> Result<(), Error> {
        apply_rlimits(&self.rlimits)?;
        if let Some(adj) = self.oom_score_adj {
            std::fs::write("/proc/self/oom_score_adj", adj.to_string())
                .map_err(apply_err("process.oomScoreAdj"))?;
        }
        if let Some((_, _, value)) = self.io_priority {
            // IOPRIO_WHO_PROCESS = 1, who 0: this process.
            // SAFETY: integer arguments only.
            if unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, value) } != 0 {
                return Err(apply_err("process.ioPriority")(
                    std::io::Error::last_os_error(),
                ));
            }
        }
        if let Some((_, attr)) = &self.scheduler {
            // SAFETY: attr is a sched_attr whose size field is its own
            // size, alive for the call; the kernel only reads it.
            if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *const SchedAttr, 0) }
                != 0
            {
                return Err(apply_err("process.scheduler")(
                    std::io::Error::last_os_error(),
                ));
            }
        }
        if let Some(domain) = self.personality {
            // PER_LINUX and PER_LINUX32 (linux/personality.h).
            let persona: libc::c_ulong = match domain {
                LinuxPersonalityDomain::PerLinux => 0,
                LinuxPersonalityDomain::PerLinux32 => 0x0008,
            };
            // SAFETY: an integer argument only.
            if unsafe { libc::personality(persona) } == -1 {
                return Err(apply_err("linux.personality")(
                    std::io::Error::last_os_error(),
                ));
            }
        }
        // Labels for the next exec, set while still root, as runc does.
        if let Some(p) = &self.apparmor_profile {
            set_exec_attr("apparmor/exec", "exec", &format!("exec {p}"))
                .map_err(apply_err("process.apparmorProfile"))?;
        }
        if let Some(l) = &self.selinux_label {
            set_exec_attr("exec", "exec", l).map_err(apply_err("process.selinuxLabel"))?;
        }
        super::enter_early(&self.caps.bounding, self.no_new_privs, self.filter())
    }

    /// After the user switch, immediately before `execve`: the capability
    /// sets, `no_new_privs`, and seccomp last.
    pub fn apply_late(&self) -> Result<(), Error> {
        let c = &self.caps;
        let sets = caps::Sets {
            effective: &c.effective,
            permitted: &c.permitted,
            inheritable: &c.inheritable,
            ambient: &c.ambient,
        };
        super::enter_late(&sets, self.no_new_privs, self.filter())
    }

    fn filter(&self) -> Option<(&[u8], u32)> {
        self.seccomp.as_ref().map(|s| (s.bpf.as_slice(), s.flags))
    }
}

/// Write an LSM's exec attribute of this thread: `/proc/thread-self/attr/`
/// `new` where the kernel has per-LSM files, else the shared `old`.
fn set_exec_attr(new: &str, old: &str, value: &str) -> std::io::Result<()> {
    let path = Path::new("/proc/thread-self/attr").join(new);
    let path = if path.exists() {
        path
    } else {
        Path::new("/proc/thread-self/attr").join(old)
    };
    std::fs::write(path, value)
}

/// The parts of the runtime-spec features document (features.md) this
/// module knows, as `{"linux": {"capabilities", "seccomp", "apparmor",
/// "selinux"}}`, for the runtime to merge into its own.
pub fn features() -> serde_json::Value {
    // SAFETY: prctl with integer arguments only; EINVAL without seccomp.
    let seccomp_on = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } >= 0;
    let supported: Vec<&str> = FILTER_FLAGS
        .iter()
        .filter(|(_, _, bits)| filter_flags_supported(*bits))
        .map(|(_, name, _)| *name)
        .collect();
    serde_json::json!({
        "linux": {
            "capabilities": caps::names(&caps::runtime_supported()),
            "seccomp": {
                "enabled": seccomp_on,
                "actions": ACTIONS,
                "operators": OPERATORS,
                "archs": ARCHES,
                "knownFlags": FILTER_FLAGS.iter().map(|(_, n, _)| *n).collect::<Vec<_>>(),
                "supportedFlags": supported,
            },
            "apparmor": { "enabled": apparmor_enabled() },
            "selinux": { "enabled": selinux_enabled() },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process from some of its fields; user (root), cwd and args filled in.
    fn process(json: &str) -> Process {
        let mut v: serde_json::Value = serde_json::from_str(&format!("{{{json}}}")).unwrap();
        let o = v.as_object_mut().unwrap();
        o.entry("user")
            .or_insert(serde_json::json!({"uid": 0, "gid": 0}));
        o.entry("cwd").or_insert("/".into());
        o.entry("args").or_insert(serde_json::json!(["true"]));
        serde_json::from_value(v).unwrap()
    }

    fn confine(json: &str) -> Result<ProcessConfinement, Error> {
        ProcessConfinement::from_spec(&process(json), None)
    }

    fn error(json: &str) -> String {
        confine(json).unwrap_err().to_string()
    }

    fn seccomp(json: &str) -> Result<ProcessConfinement, String> {
        let s: LinuxSeccomp = serde_json::from_str(json).map_err(|e| e.to_string())?;
        ProcessConfinement::from_spec(&process(""), Some(&s)).map_err(|e| e.to_string())
    }

    fn n(name: &str) -> u8 {
        caps::parse(name).unwrap().index()
    }

    #[test]
    fn capability_sets_are_resolved_each() {
        let c = confine(
            r#""capabilities":{"bounding":["CAP_CHOWN","CAP_KILL","CAP_NET_BIND_SERVICE"],
                "permitted":["CAP_CHOWN","CAP_NET_BIND_SERVICE"],"effective":["CAP_CHOWN"],
                "inheritable":["CAP_NET_BIND_SERVICE"],
                "ambient":["CAP_NET_BIND_SERVICE","CAP_CHOWN"]}"#,
        )
        .unwrap();
        let mut bounding = vec![n("CHOWN"), n("KILL"), n("NET_BIND_SERVICE")];
        bounding.sort();
        assert_eq!(c.caps.bounding, bounding);
        assert_eq!(c.caps.effective, vec![n("CHOWN")]);
        assert_eq!(c.caps.inheritable, vec![n("NET_BIND_SERVICE")]);
        // CHOWN is not inheritable: the kernel would not take it as ambient.
        assert_eq!(c.caps.ambient, vec![n("NET_BIND_SERVICE")]);
        // No capabilities at all: every set empty.
        assert_eq!(confine("").unwrap().caps, CapSets::default());
        // It travels to the container's init intact.
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            serde_json::from_str::<ProcessConfinement>(&json).unwrap(),
            c
        );
    }

    #[test]
    fn impossible_capability_sets_are_refused_naming_the_set() {
        assert_eq!(
            error(r#""capabilities":{"permitted":["CAP_KILL"],"effective":["CAP_CHOWN"]}"#),
            "config.json process.capabilities.effective: CAP_CHOWN is not in the permitted set"
        );
        assert_eq!(
            error(r#""capabilities":{"bounding":[],"inheritable":["CAP_KILL"]}"#),
            "config.json process.capabilities.inheritable: CAP_KILL is not in the bounding set"
        );
        // An unknown name does not get past the spec's own parsing.
        let bad = r#"{"user":{"uid":0,"gid":0},"cwd":"/","capabilities":{"bounding":["CAP_FLY"]}}"#;
        let e = serde_json::from_str::<Process>(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("CAP_FLY"), "{e}");
    }

    #[test]
    fn rlimits_are_checked() {
        let c = confine(r#""rlimits":[{"type":"RLIMIT_NOFILE","soft":100,"hard":200}]"#).unwrap();
        assert_eq!(c.rlimits.len(), 1);
        assert_eq!(c.rlimits[0].resource, libc::RLIMIT_NOFILE);
        assert_eq!(
            error(
                r#""rlimits":[{"type":"RLIMIT_CORE","soft":0,"hard":0},{"type":"RLIMIT_NOFILE","soft":300,"hard":200}]"#
            ),
            "config.json process.rlimits[1]: RLIMIT_NOFILE soft limit 300 is above its hard limit 200"
        );
        assert_eq!(
            error(
                r#""rlimits":[{"type":"RLIMIT_AS","soft":1,"hard":2},{"type":"RLIMIT_AS","soft":1,"hard":2}]"#
            ),
            "config.json process.rlimits[1]: RLIMIT_AS is given twice"
        );
        let bad = r#"{"user":{"uid":0,"gid":0},"cwd":"/","rlimits":[{"type":"RLIMIT_FLY","soft":1,"hard":1}]}"#;
        let e = serde_json::from_str::<Process>(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("RLIMIT_FLY"), "{e}");
    }

    #[test]
    fn scalar_fields_are_range_checked() {
        assert_eq!(
            error(r#""oomScoreAdj":1001"#),
            "config.json process.oomScoreAdj: 1001 is outside -1000..1000"
        );
        assert_eq!(
            error(r#""ioPriority":{"class":"IOPRIO_CLASS_BE","priority":8}"#),
            "config.json process.ioPriority.priority: 8 is outside 0..7"
        );
        let c = confine(r#""ioPriority":{"class":"IOPRIO_CLASS_IDLE","priority":3}"#).unwrap();
        assert_eq!(c.io_priority.unwrap().2, 3 << 13 | 3);
        assert_eq!(
            error(r#""scheduler":{"policy":"SCHED_OTHER","nice":20}"#),
            "config.json process.scheduler.nice: 20 is outside -20..19"
        );
        assert_eq!(
            error(r#""scheduler":{"policy":"SCHED_FIFO","priority":0}"#),
            "config.json process.scheduler.priority: 0 is outside 1..99 for SCHED_FIFO"
        );
        assert_eq!(
            error(r#""scheduler":{"policy":"SCHED_BATCH","priority":3}"#),
            "config.json process.scheduler.priority: only SCHED_FIFO and SCHED_RR take a priority"
        );
        assert_eq!(
            error(r#""scheduler":{"policy":"SCHED_RR","priority":3,"runtime":5}"#),
            "config.json process.scheduler: runtime, deadline and period are for SCHED_DEADLINE only"
        );
        assert_eq!(
            error(r#""scheduler":{"policy":"SCHED_ISO"}"#),
            "config.json process.scheduler.policy: SCHED_ISO is not a Linux scheduling policy"
        );
        let c = confine(
            r#""scheduler":{"policy":"SCHED_RR","priority":3,"flags":["SCHED_RESET_ON_FORK"]}"#,
        )
        .unwrap();
        let (_, a) = c.scheduler.unwrap();
        assert_eq!((a.policy, a.priority, a.flags, a.size), (2, 3, 1, 56));
    }

    #[test]
    fn lsm_labels_need_the_lsm() {
        if !apparmor_enabled() {
            assert_eq!(
                error(r#""apparmorProfile":"docker-default""#),
                "config.json process.apparmorProfile: apparmor is not enabled on this host"
            );
        }
        if !selinux_enabled() {
            assert_eq!(
                error(r#""selinuxLabel":"system_u:system_r:container_t:s0""#),
                "config.json process.selinuxLabel: selinux is not enabled on this host"
            );
        }
        // Empty is unset, as runc reads it.
        assert!(confine(r#""apparmorProfile":"","selinuxLabel":"""#).is_ok());
    }

    #[test]
    fn personality_flags_are_refused() {
        let p: LinuxPersonality = serde_json::from_str(r#"{"domain":"LINUX32"}"#).unwrap();
        let c = confine("").unwrap().with_personality(Some(&p)).unwrap();
        assert_eq!(c.personality, Some(LinuxPersonalityDomain::PerLinux32));
        let p: LinuxPersonality =
            serde_json::from_str(r#"{"domain":"LINUX","flags":["ADDR_NO_RANDOMIZE"]}"#).unwrap();
        let e = confine("").unwrap().with_personality(Some(&p)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config.json linux.personality.flags: no personality flags are supported"
        );
    }

    #[test]
    fn seccomp_is_checked() {
        let ok = seccomp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
                "syscalls":[{"names":["mkdir","no_such_call_here"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
        )
        .unwrap();
        let json = serde_json::to_string(&ok).unwrap();
        assert_eq!(
            serde_json::from_str::<ProcessConfinement>(&json).unwrap(),
            ok
        );
        // The unknown name is skipped (runc's behaviour), the rest compiled.
        assert!(ok.seccomp.unwrap().bpf.len() > 8);
        let e = seccomp(r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/run/agent.sock"}"#)
            .unwrap_err();
        assert_eq!(
            e,
            "config.json linux.seccomp: SCMP_ACT_NOTIFY and listenerPath (a seccomp agent) are not supported"
        );
        let e = seccomp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("not supported"), "{e}");
        let e =
            seccomp(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":5000}"#).unwrap_err();
        assert_eq!(
            e,
            "config.json linux.seccomp.defaultErrnoRet: must be at most 4095"
        );
        let e = seccomp(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_MIPS"]}"#)
            .unwrap_err();
        assert_eq!(
            e,
            "config.json linux.seccomp: architecture Mips is not supported"
        );
        let e = seccomp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "config.json linux.seccomp: argument index 6 out of range 0-5"
        );
        // Unknown actions, operators, arches and flags stop at the spec's parsing.
        for bad in [
            r#"{"defaultAction":"SCMP_ACT_FLY"}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_FLY"]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_FLY"]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_FLY"}]}]}"#,
        ] {
            let e = seccomp(bad).unwrap_err();
            assert!(e.contains("FLY"), "{e}");
        }
        let s = seccomp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}"#,
        )
        .unwrap()
        .seccomp
        .unwrap();
        assert_eq!(s.flags, FLAG_LOG | FLAG_SPEC_ALLOW);
    }

    #[test]
    fn features_document() {
        let f = features();
        let l = &f["linux"];
        let caps = l["capabilities"].as_array().unwrap();
        assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"), "{caps:?}");
        assert_eq!(l["seccomp"]["enabled"], true);
        let supported = l["seccomp"]["supportedFlags"].as_array().unwrap();
        // Kernel 4.14 has LOG, 4.17 SPEC_ALLOW.
        assert!(supported.iter().any(|f| f == "SECCOMP_FILTER_FLAG_LOG"));
        assert!(
            supported
                .iter()
                .any(|f| f == "SECCOMP_FILTER_FLAG_SPEC_ALLOW")
        );
        assert_eq!(l["seccomp"]["knownFlags"].as_array().unwrap().len(), 4);
        assert!(
            !l["seccomp"]["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "SCMP_ACT_NOTIFY")
        );
        assert_eq!(l["apparmor"]["enabled"], apparmor_enabled());
        assert_eq!(l["selinux"]["enabled"], selinux_enabled());
    }

    /// Fork; in the child apply `process`'s confinement as a runtime's
    /// init would (early, user switch to `process.user`, late), run
    /// `probe` and print what it returns, then exec `cat` of the new
    /// process's status, limits and OOM score. Returns the exit status and
    /// all the output. Bounded: the child is killed after 10 s.
    fn run_confined(
        process_json: &str,
        seccomp_json: Option<&str>,
        personality: Option<&str>,
        probe: fn() -> String,
    ) -> (i32, String) {
        use std::io::Read;
        use std::os::fd::FromRawFd;
        let p = process(process_json);
        let s: Option<LinuxSeccomp> = seccomp_json.map(|j| serde_json::from_str(j).unwrap());
        let pers: Option<LinuxPersonality> = personality.map(|j| serde_json::from_str(j).unwrap());
        let c = ProcessConfinement::from_spec(&p, s.as_ref())
            .and_then(|c| c.with_personality(pers.as_ref()))
            .unwrap();
        let (uid, gid) = (p.user().uid(), p.user().gid());
        let cat = c"/bin/cat";
        let argv = [
            cat.as_ptr(),
            c"/proc/self/status".as_ptr(),
            c"/proc/self/limits".as_ptr(),
            c"/proc/self/oom_score_adj".as_ptr(),
            std::ptr::null(),
        ];
        let envp = [std::ptr::null::<libc::c_char>()];
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the two-element array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: the child only runs the confinement, the probe and
        // execve, then _exits; glibc keeps malloc usable after fork.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let out = std::panic::catch_unwind(|| -> Result<String, Error> {
                c.apply_early()?;
                // SAFETY: integer arguments; the user switch a runtime makes.
                unsafe {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(apply_err("user")(std::io::Error::last_os_error()));
                    }
                }
                c.apply_late()?;
                Ok(probe())
            });
            let (text, ok) = match out {
                Ok(Ok(t)) => (t, true),
                Ok(Err(e)) => (format!("error: {e}\n"), false),
                Err(_) => ("error: panic\n".to_string(), false),
            };
            // SAFETY: raw writes, dup2 and execve of prepared pointers
            // (all alive here); _exit without running the parent's atexit.
            unsafe {
                libc::write(fds[1], text.as_ptr().cast(), text.len());
                if ok {
                    libc::dup2(fds[1], 1);
                    libc::execve(cat.as_ptr(), argv.as_ptr(), envp.as_ptr());
                }
                libc::_exit(if ok { 127 } else { 1 });
            }
        }
        // SAFETY: the write end is ours to close; the read end becomes a File.
        let mut read = unsafe {
            libc::close(fds[1]);
            std::fs::File::from_raw_fd(fds[0])
        };
        let mut status = 0;
        let mut waited = 0;
        // SAFETY: waitpid on our own child, status is a valid int.
        while unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == 0 {
            waited += 1;
            if waited > 1000 {
                // SAFETY: our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                panic!("confined child hung");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut text = String::new();
        read.read_to_string(&mut text).unwrap();
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        };
        (code, text)
    }

    /// The values of every `key:value` line of `text`, trimmed.
    fn field<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
        text.lines()
            .filter_map(|l| l.strip_prefix(key))
            .filter_map(|l| l.strip_prefix(':'))
            .map(str::trim)
            .collect()
    }

    fn mask_of(names: &[&str]) -> String {
        format!("{:016x}", names.iter().fold(0u64, |m, c| m | 1 << n(c)))
    }

    fn mkdir_path() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("containr-confine-mkdir-{}", std::process::id()))
    }

    /// What the filter and the scheduling calls did, seen from inside,
    /// plus the capability sets before the exec.
    fn probe() -> String {
        let errno = |rc: libc::c_long| {
            if rc == -1 {
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
            } else {
                0
            }
        };
        let dir =
            std::ffi::CString::new(mkdir_path().into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: plain syscalls with integer or C-string arguments.
        let (mkdir, pgid0, pgid1, umask_ok, umask_bad, ioprio, policy, nice, persona) = unsafe {
            (
                errno(libc::syscall(libc::SYS_mkdir, dir.as_ptr(), 0o700)),
                errno(libc::syscall(libc::SYS_getpgid, 0)),
                errno(libc::syscall(libc::SYS_getpgid, 1)),
                errno(libc::syscall(libc::SYS_umask, 0o022)),
                errno(libc::syscall(libc::SYS_umask, 0o777)),
                libc::syscall(libc::SYS_ioprio_get, 1, 0),
                libc::sched_getscheduler(0),
                libc::getpriority(libc::PRIO_PROCESS, 0),
                libc::personality(0xffff_ffff),
            )
        };
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let mut out = format!(
            "mkdir={mkdir}\npgid0={pgid0}\npgid1={pgid1}\numask022={umask_ok}\numask777={umask_bad}\n\
             ioprio={ioprio}\npolicy={policy}\nnice={nice}\npersonality={persona}\n"
        );
        for l in status.lines().filter(|l| l.starts_with("Cap")) {
            out.push_str(&format!("pre{l}\n"));
        }
        out
    }

    fn probe_nothing() -> String {
        String::new()
    }

    const FILTER: &str = r#"{"defaultAction":"SCMP_ACT_ALLOW",
        "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
        "flags":["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls":[
          {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"},
          {"names":["getpgid"],"action":"SCMP_ACT_ERRNO","errnoRet":13,
           "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
          {"names":["umask"],"action":"SCMP_ACT_ERRNO","errnoRet":7,
           "args":[{"index":0,"value":448,"valueTwo":448,"op":"SCMP_CMP_MASKED_EQ"}]}
        ]}"#;

    #[test]
    fn applied_to_an_unprivileged_user_and_seen_after_exec() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let (code, out) = run_confined(
            r#""user":{"uid":65534,"gid":65534},
               "capabilities":{"bounding":["CAP_CHOWN","CAP_KILL","CAP_NET_BIND_SERVICE"],
                 "permitted":["CAP_CHOWN","CAP_KILL","CAP_NET_BIND_SERVICE"],
                 "effective":["CAP_CHOWN","CAP_KILL"],
                 "inheritable":["CAP_NET_BIND_SERVICE"],"ambient":["CAP_NET_BIND_SERVICE"]},
               "rlimits":[{"type":"RLIMIT_NOFILE","soft":100,"hard":200},
                          {"type":"RLIMIT_MSGQUEUE","soft":1000,"hard":2000}],
               "noNewPrivileges":true,"oomScoreAdj":500,
               "ioPriority":{"class":"IOPRIO_CLASS_BE","priority":6},
               "scheduler":{"policy":"SCHED_BATCH","nice":5}"#,
            Some(FILTER),
            Some(r#"{"domain":"LINUX32"}"#),
            probe,
        );
        let _ = std::fs::remove_dir(mkdir_path());
        assert_eq!(code, 0, "{out}");
        let kv = |k: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("no {k} in {out}"))
                .to_string()
        };
        // The filter: a plain rule, EPERM by default; argument conditions
        // decide (EQ, and MASKED_EQ with value the mask, valueTwo the datum).
        assert_eq!(kv("mkdir"), libc::EPERM.to_string());
        assert_eq!(kv("pgid0"), "0");
        assert_eq!(kv("pgid1"), libc::EACCES.to_string());
        assert_eq!(kv("umask022"), "0");
        assert_eq!(kv("umask777"), libc::E2BIG.to_string());
        assert!(!mkdir_path().exists());
        assert_eq!(kv("ioprio"), (2 << 13 | 6).to_string());
        assert_eq!(kv("policy"), libc::SCHED_BATCH.to_string());
        assert_eq!(kv("nice"), "5");
        assert_eq!(kv("personality"), "8");
        // Before the exec: the sets exactly as configured.
        let bnd = mask_of(&["CHOWN", "KILL", "NET_BIND_SERVICE"]);
        let nbs = mask_of(&["NET_BIND_SERVICE"]);
        assert_eq!(field(&out, "preCapEff"), [mask_of(&["CHOWN", "KILL"])]);
        assert_eq!(field(&out, "preCapPrm"), [bnd.as_str()]);
        assert_eq!(field(&out, "preCapInh"), [nbs.as_str()]);
        assert_eq!(field(&out, "preCapAmb"), [nbs.as_str()]);
        assert_eq!(field(&out, "preCapBnd"), [bnd.as_str()]);
        // After it (a non-root exec of a plain binary): what the ambient
        // set carries over, within the bounding set.
        assert_eq!(field(&out, "CapEff"), [nbs.as_str()]);
        assert_eq!(field(&out, "CapPrm"), [nbs.as_str()]);
        assert_eq!(field(&out, "CapInh"), [nbs.as_str()]);
        assert_eq!(field(&out, "CapAmb"), [nbs.as_str()]);
        assert_eq!(field(&out, "CapBnd"), [bnd.as_str()]);
        assert_eq!(field(&out, "NoNewPrivs"), ["1"]);
        assert_eq!(field(&out, "Seccomp"), ["2"]);
        assert_eq!(field(&out, "Seccomp_filters"), ["1"]);
        assert_eq!(field(&out, "Uid"), ["65534\t65534\t65534\t65534"]);
        let limit = |name: &str| {
            out.lines()
                .find(|l| l.starts_with(name))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        };
        assert_eq!(
            limit("Max open files").unwrap(),
            "Max open files 100 200 files"
        );
        assert_eq!(
            limit("Max msgqueue size").unwrap(),
            "Max msgqueue size 1000 2000 bytes"
        );
        assert_eq!(out.lines().last(), Some("500"));
    }

    #[test]
    fn without_no_new_privs_the_filter_goes_in_as_root() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let sets = r#"["CAP_CHOWN","CAP_SETUID","CAP_SETGID"]"#;
        let (code, out) = run_confined(
            &format!(
                r#""capabilities":{{"bounding":{sets},"permitted":{sets},"effective":{sets},
                   "inheritable":[],"ambient":[]}},"noNewPrivileges":false"#
            ),
            Some(FILTER),
            None,
            probe_nothing,
        );
        assert_eq!(code, 0, "{out}");
        let set = mask_of(&["CHOWN", "SETUID", "SETGID"]);
        assert_eq!(field(&out, "CapBnd"), [set.as_str()]);
        // Root's exec: permitted and effective are the bounding set.
        assert_eq!(field(&out, "CapEff"), [set.as_str()]);
        assert_eq!(field(&out, "CapAmb"), ["0000000000000000"]);
        assert_eq!(field(&out, "NoNewPrivs"), ["0"]);
        assert_eq!(field(&out, "Seccomp"), ["2"]);
    }

    #[test]
    fn a_limit_the_kernel_refuses_is_an_error_naming_it() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        // Above fs.nr_open: setrlimit refuses it even for root.
        let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let (code, out) = run_confined(
            &format!(
                r#""rlimits":[{{"type":"RLIMIT_NOFILE","soft":1,"hard":{}}}]"#,
                nr_open + 1
            ),
            None,
            None,
            probe_nothing,
        );
        assert_eq!(code, 1, "{out}");
        assert_eq!(
            out,
            "error: applying config.json process.rlimits RLIMIT_NOFILE: Operation not permitted (os error 1)\n"
        );
    }

    #[test]
    fn explain_names_what_will_be_applied() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let s: LinuxSeccomp = serde_json::from_str(FILTER).unwrap();
        let c = ProcessConfinement::from_spec(
            &process(
                r#""capabilities":{"bounding":["CAP_KILL"],"permitted":["CAP_KILL"],
                   "inheritable":["CAP_KILL"],"ambient":["CAP_KILL"]},
                   "rlimits":[{"type":"RLIMIT_NOFILE","soft":10,"hard":20}],
                   "noNewPrivileges":true,"oomScoreAdj":-5"#,
            ),
            Some(&s),
        )
        .unwrap();
        tracing::subscriber::with_default(subscriber, || c.explain());
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        for want in [
            "capabilities: bounding 1 of ",
            "inheritable CAP_KILL, ambient CAP_KILL",
            "setrlimit(RLIMIT_NOFILE, soft 10, hard 20)",
            "echo -5 > /proc/self/oom_score_adj",
            "PR_SET_NO_NEW_PRIVS",
            "seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_LOG): ",
        ] {
            assert!(text.contains(want), "{want:?} not in {text}");
        }
    }
}

//! Where the OCI runtime calls the pieces other modules provide: the
//! confinement of the process (`security::oci`), the root filesystem
//! (`rootfs::oci`) and the cgroup (`cgroup::oci`). Each is reached from
//! here only, so what the runtime asks of it reads in one place.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{Process, Spec};

use super::Error;

/// The confinement of a process, resolved by the runtime and applied by
/// the process itself: `apply_early` before the user switch, `apply_late`
/// right before `execve`.
pub type Confinement = crate::security::oci::ProcessConfinement;

/// A container's cgroup, saved in its state and reopened by each command.
pub type ContainerCgroup = crate::cgroup::oci::OciCgroup;

/// Check, before anything is made, what only the pieces can judge: the
/// process's confinement (capabilities, rlimits, seccomp, personality,
/// scheduling, LSM labels).
pub fn check_applied(spec: &Spec) -> Result<(), Error> {
    let process = spec.process().as_ref().expect("checked before");
    confinement(spec, process).map(drop)
}

/// The confinement of `process` in the container `spec` describes (its
/// seccomp filter and personality are the container's).
pub fn confinement(spec: &Spec, process: &Process) -> Result<Confinement, Error> {
    let linux = spec.linux().as_ref();
    let seccomp = linux.and_then(|l| l.seccomp().as_ref());
    let personality = linux.and_then(|l| l.personality().as_ref());
    Ok(Confinement::from_spec(process, seccomp)?.with_personality(personality)?)
}

/// Make the container's cgroup (`linux.cgroupsPath`, with `systemd` a
/// `slice:prefix:name` one) and apply `linux.resources`.
pub fn create_cgroup(id: &str, spec: &Spec, systemd: bool) -> Result<ContainerCgroup, Error> {
    let linux = spec.linux().as_ref();
    let path = linux.and_then(|l| l.cgroups_path().as_ref());
    let path = path.map(|p| p.to_string_lossy().into_owned());
    let resources = linux.and_then(|l| l.resources().as_ref());
    Ok(ContainerCgroup::create(
        path.as_deref(),
        systemd,
        id,
        resources,
    )?)
}

/// The namespaces `spec` asks to be made new (those it gives by path are
/// joined by the init, `init::join_namespaces`), as clone flags: any front
/// end's init is cloned with them. Not the cgroup namespace: it would root
/// at the cgroup its creator is in, and at clone time the init may not be
/// in the container's yet; the init unshares it once placed
/// (`namespace::enter_cgroup_namespace`).
pub fn clone_flags(spec: &Spec) -> nix::sched::CloneFlags {
    use nix::sched::CloneFlags;
    use oci_spec::runtime::LinuxNamespaceType as T;
    let mut flags = CloneFlags::empty();
    for t in [T::Mount, T::Uts, T::Ipc, T::Pid, T::Network, T::User] {
        if new_namespace(spec, t) {
            flags |= CloneFlags::from_bits_truncate(t as i32);
        }
    }
    flags
}

/// Whether `spec` asks for a new namespace of `typ` (not one by path).
pub fn new_namespace(spec: &Spec, typ: oci_spec::runtime::LinuxNamespaceType) -> bool {
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    namespaces.is_some_and(|n| n.iter().any(|n| n.typ() == typ && n.path().is_none()))
}

/// The root filesystem's part of the spec, as `rootfs::oci` builds it.
pub struct RootfsSpec {
    mounts: Vec<oci_spec::runtime::Mount>,
    devices: Vec<oci_spec::runtime::LinuxDevice>,
    masked: Vec<String>,
    readonly_paths: Vec<String>,
    propagation: Option<String>,
    sysctl: HashMap<String, String>,
    readonly: bool,
}

impl RootfsSpec {
    pub fn of(spec: &Spec) -> RootfsSpec {
        let linux = spec.linux().clone().unwrap_or_default();
        RootfsSpec {
            mounts: spec.mounts().clone().unwrap_or_default(),
            devices: linux.devices().clone().unwrap_or_default(),
            masked: linux.masked_paths().clone().unwrap_or_default(),
            readonly_paths: linux.readonly_paths().clone().unwrap_or_default(),
            propagation: linux.rootfs_propagation().clone(),
            sysctl: linux.sysctl().clone().unwrap_or_default(),
            readonly: spec
                .root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
        }
    }

    /// The plan for the root filesystem at `rootfs`.
    pub fn plan<'a>(
        &'a self,
        rootfs: &'a Path,
        no_pivot: bool,
        in_userns: bool,
    ) -> crate::rootfs::oci::Plan<'a> {
        crate::rootfs::oci::Plan {
            rootfs,
            readonly: self.readonly,
            mounts: &self.mounts,
            devices: &self.devices,
            masked_paths: &self.masked,
            readonly_paths: &self.readonly_paths,
            rootfs_propagation: self.propagation.as_deref(),
            sysctl: &self.sysctl,
            no_pivot,
            in_userns,
            // The terminal is opened after the pivot, on the container's
            // own devpts, and bound at /dev/console then.
            console: None,
        }
    }
}

//! The documents the runtime writes without a container: a default
//! `config.json` (`spec`) and the runtime's features (`features`).

use oci_spec::runtime::Spec;
use serde_json::{Value, json};

/// runc's default `config.json`: `sh` on a terminal, in every namespace
/// but the user's (with `rootless`, the user's too, mapping the caller's
/// ids to root).
pub fn default_spec(rootless: bool) -> Spec {
    let mut spec = if rootless {
        Spec::rootless(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    } else {
        Spec::default()
    };
    spec.set_version(super::SPEC_VERSION.to_string());
    spec.set_hostname(Some("containr".to_string()));
    if let Some(process) = spec.process_mut() {
        process.set_terminal(Some(true));
        // runc's: no inheritable or ambient capabilities.
        if let Some(mut caps) = process.capabilities().clone() {
            caps.set_inheritable(None);
            caps.set_ambient(None);
            process.set_capabilities(Some(caps));
        }
    }
    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(true));
    }
    spec
}

/// The runtime-spec features document: what this runtime applies, from
/// the pieces that apply it (confinement, cgroup).
pub fn features() -> Value {
    let mut linux = json!({
        "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
        "intelRdt": {"enabled": false},
        "mountExtensions": {"idmap": {"enabled": true}}
    });
    if let (Value::Object(l), Value::Object(confine)) = (
        &mut linux,
        crate::security::oci::features()["linux"].clone(),
    ) {
        l.extend(confine);
        l.insert("cgroup".into(), crate::cgroup::oci::features());
    }
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": super::SPEC_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS,
        "linux": linux,
        "annotations": {
            "org.opencontainers.runtime-spec.features.containr.version": env!("CARGO_PKG_VERSION")
        }
    })
}

/// The mount options `rootfs::oci` knows: flags and attributes, their
/// recursive (`r`) forms, propagation, bind and idmap.
const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnosuid",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "unbindable",
];

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
        // runc's default has RLIMIT_NOFILE 1024; containr-oci refuses
        // rlimits until it applies them, so its default has none yet.
        process.set_rlimits(None);
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

/// The runtime-spec features document: what this runtime applies.
pub fn features() -> Value {
    let caps = crate::security::caps::names(&crate::security::caps::all());
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": super::SPEC_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {"enabled": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "org.opencontainers.runtime-spec.features.containr.version": env!("CARGO_PKG_VERSION")
        }
    })
}

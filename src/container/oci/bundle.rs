//! Reading a bundle: its `config.json`, checked whole before anything is
//! made. A field containr-oci does not know, or knows but does not apply,
//! is an error naming it: a container never runs with part of its
//! configuration silently dropped.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde_json::Value;

use super::Error;

/// A `config.json` (or `exec --process` file) larger than this is refused
/// as it is read: it comes from outside and is held in memory whole.
pub(super) const MAX_CONFIG: u64 = 16 << 20;

/// A bundle, loaded and checked.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    pub spec: Spec,
    /// Absolute, canonical path of the root filesystem.
    pub rootfs: PathBuf,
}

/// Load and check the bundle in `dir`.
pub fn load(dir: &Path) -> Result<Bundle, Error> {
    let dir = std::fs::canonicalize(dir).map_err(|e| Error::Bundle {
        path: dir.to_path_buf(),
        why: e.to_string(),
    })?;
    let path = dir.join("config.json");
    let bad = |why: String| Error::Bundle {
        path: path.clone(),
        why,
    };
    let bytes = crate::util::read_bounded(&path, MAX_CONFIG).map_err(|e| bad(e.to_string()))?;
    let spec = parse(&bytes).map_err(|e| match e {
        Error::Bundle { why, .. } => bad(why),
        e => e,
    })?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::unsupported("root", "a root filesystem is required"))?;
    let rootfs = dir.join(root.path());
    let rootfs = std::fs::canonicalize(&rootfs).map_err(|e| Error::Bundle {
        path: rootfs.clone(),
        why: format!("root.path: {e}"),
    })?;
    if !rootfs.is_dir() {
        return Err(Error::Bundle {
            path: rootfs,
            why: "root.path: not a directory".into(),
        });
    }
    Ok(Bundle { dir, spec, rootfs })
}

/// Parse `config.json`: a `Spec`, with no field it does not know, of a
/// version containr-oci reads, asking only for what containr-oci does.
pub fn parse(bytes: &[u8]) -> Result<Spec, Error> {
    let bad = |e: serde_json::Error| Error::Bundle {
        path: "config.json".into(),
        why: e.to_string(),
    };
    let raw: Value = serde_json::from_slice(bytes).map_err(bad)?;
    let spec: Spec = serde_json::from_value(raw.clone()).map_err(bad)?;
    let kept = serde_json::to_value(&spec).map_err(bad)?;
    if let Some(field) = unknown_field(&raw, &kept, "") {
        return Err(Error::UnknownField(field));
    }
    check_version(spec.version())?;
    check_supported(&spec, &raw)?;
    Ok(spec)
}

/// The first key of `raw` (as a dotted path) that `kept`, the spec as
/// oci-spec re-serialises it, lost: a field the spec does not define. A
/// lost key with an empty value (`null`, `[]`, `{}`, `""`) is no loss.
fn unknown_field(raw: &Value, kept: &Value, at: &str) -> Option<String> {
    match (raw, kept) {
        (Value::Object(r), Value::Object(k)) => {
            // Maps whose keys are data, not field names.
            if ["annotations", "linux.sysctl", "linux.resources.unified"].contains(&at)
                || at.ends_with(".env")
            {
                return None;
            }
            for (key, value) in r {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                match k.get(key) {
                    Some(kv) => {
                        if let Some(f) = unknown_field(value, kv, &path) {
                            return Some(f);
                        }
                    }
                    None if is_empty(value) => {}
                    None => return Some(path),
                }
            }
            None
        }
        (Value::Array(r), Value::Array(k)) if r.len() == k.len() => r
            .iter()
            .zip(k)
            .enumerate()
            .find_map(|(i, (rv, kv))| unknown_field(rv, kv, &format!("{at}[{i}]"))),
        _ => None,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// 1.0.0 up to 1.2.x (pre-releases such as `1.0.2-dev` included).
fn check_version(v: &str) -> Result<(), Error> {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<Option<u32>> = core.split('.').map(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        [Some(1), Some(0..=2), Some(_)] => Ok(()),
        _ => Err(Error::Version(v.to_string())),
    }
}

/// Refuse what containr-oci does not do on Linux at all, and (until the
/// pieces that apply them are in) what it does not apply yet.
fn check_supported(spec: &Spec, raw: &Value) -> Result<(), Error> {
    for other in ["solaris", "windows", "vm", "zos"] {
        if raw.get(other).is_some_and(|v| !is_empty(v)) {
            return Err(Error::unsupported(
                other,
                "containr-oci runs Linux containers",
            ));
        }
    }
    let Some(linux) = spec.linux() else {
        return Err(Error::unsupported("linux", "the linux section is required"));
    };
    if linux.intel_rdt().is_some() {
        return Err(Error::unsupported(
            "linux.intelRdt",
            "Intel RDT (resctrl) is not implemented",
        ));
    }
    if linux.memory_policy().is_some() {
        return Err(Error::unsupported(
            "linux.memoryPolicy",
            "set_mempolicy is not implemented",
        ));
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(Error::unsupported(
            "linux.netDevices",
            "moving host interfaces is not implemented",
        ));
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(Error::unsupported(
            "linux.timeOffsets",
            "time namespaces are not implemented",
        ));
    }
    if linux.mount_label().as_ref().is_some_and(|l| !l.is_empty()) {
        return Err(Error::unsupported(
            "linux.mountLabel",
            "containr-oci has no SELinux support",
        ));
    }
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    if !namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Mount)
    {
        return Err(Error::unsupported(
            "linux.namespaces",
            "a mount namespace is required (containr-oci mounts the container's root in it)",
        ));
    }
    for ns in namespaces {
        if ns.typ() == LinuxNamespaceType::Time {
            return Err(Error::unsupported(
                "linux.namespaces",
                "time namespaces are not implemented",
            ));
        }
        if ns.path().is_some() && ns.typ() == LinuxNamespaceType::Pid {
            return Err(Error::unsupported(
                "linux.namespaces",
                "joining a PID namespace by path is not implemented",
            ));
        }
    }
    let Some(process) = spec.process() else {
        return Err(Error::unsupported(
            "process",
            "a process is required (create runs it)",
        ));
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::unsupported("process.args", "must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::unsupported(
            "process.cwd",
            "must be an absolute path",
        ));
    }
    if process.command_line().is_some() {
        return Err(Error::unsupported(
            "process.commandLine",
            "it is for Windows",
        ));
    }
    if process.exec_cpu_affinity().is_some() {
        return Err(Error::unsupported(
            "process.execCPUAffinity",
            "not implemented",
        ));
    }
    super::parts::check_applied(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]},
            "annotations": {"any.key": "x"}
        })
    }

    #[test]
    fn a_minimal_config_parses() {
        let bytes = serde_json::to_vec(&minimal()).unwrap();
        parse(&bytes).unwrap();
    }

    #[test]
    fn unknown_fields_are_named() {
        let mut v = minimal();
        v["process"]["colour"] = "blue".into();
        let e = parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "config.json: unknown field process.colour");
        let mut v = minimal();
        v["linux"]["namespaces"][1]["flavour"] = "x".into();
        let e = parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config.json: unknown field linux.namespaces[1].flavour"
        );
        // Empty is harmless.
        let mut v = minimal();
        v["nothing"] = Value::Null;
        parse(&serde_json::to_vec(&v).unwrap()).unwrap();
    }

    #[test]
    fn versions() {
        for good in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.1"] {
            check_version(good).unwrap();
        }
        for bad in ["0.9.0", "1.3.0", "2.0.0", "", "1.0"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unsupported_fields_are_named() {
        let mut v = minimal();
        v["linux"]["intelRdt"] = serde_json::json!({"closID": "x"});
        let e = parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(e.to_string().contains("linux.intelRdt"), "{e}");
        let mut v = minimal();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
        let e = parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(e.to_string().contains("mount namespace"), "{e}");
    }
}

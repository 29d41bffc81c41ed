//! `containr run`'s per-container resources that are not cgroup limits:
//! `--ulimit`, `--sysctl`, `--shm-size`, `--oom-score-adj`, `--label`,
//! turned into the runtime spec's values (`PosixRlimit`, the sysctl map,
//! `oomScoreAdj`) that the init applies with the OCI runtime's functions.

use std::collections::{BTreeMap, HashMap};

use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceType, PosixRlimit, PosixRlimitBuilder,
    PosixRlimitType,
};

use crate::cgroup::devices::Rule;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--ulimit {spec:?}: {what}")]
    Ulimit { spec: String, what: String },
    #[error("--sysctl {spec:?}: {what}")]
    Sysctl { spec: String, what: String },
    #[error("--shm-size {0:?}: expected a size greater than 0 (e.g. 64m)")]
    ShmSize(String),
    #[error("--oom-score-adj {0}: must be between -1000 and 1000")]
    OomScoreAdj(i32),
    #[error("--device {spec:?}: {what}")]
    Device { spec: String, what: String },
    #[error("--device-cgroup-rule {spec:?}: {what}")]
    DeviceRule { spec: String, what: String },
    #[error("--label-file {path}: {source}")]
    LabelFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// docker's `--ulimit` names and the spec's types.
const ULIMITS: [(&str, PosixRlimitType); 16] = [
    ("as", PosixRlimitType::RlimitAs),
    ("core", PosixRlimitType::RlimitCore),
    ("cpu", PosixRlimitType::RlimitCpu),
    ("data", PosixRlimitType::RlimitData),
    ("fsize", PosixRlimitType::RlimitFsize),
    ("locks", PosixRlimitType::RlimitLocks),
    ("memlock", PosixRlimitType::RlimitMemlock),
    ("msgqueue", PosixRlimitType::RlimitMsgqueue),
    ("nice", PosixRlimitType::RlimitNice),
    ("nofile", PosixRlimitType::RlimitNofile),
    ("nproc", PosixRlimitType::RlimitNproc),
    ("rss", PosixRlimitType::RlimitRss),
    ("rtprio", PosixRlimitType::RlimitRtprio),
    ("rttime", PosixRlimitType::RlimitRttime),
    ("sigpending", PosixRlimitType::RlimitSigpending),
    ("stack", PosixRlimitType::RlimitStack),
];

/// `--ulimit NAME=SOFT[:HARD]` (-1: unlimited). `nr_open` is the kernel's
/// ceiling for `nofile` (`/proc/sys/fs/nr_open`): above it, setrlimit
/// would fail inside the container; refused here with the number.
pub fn parse_ulimit(spec: &str, nr_open: Option<u64>) -> Result<PosixRlimit, Error> {
    let bad = |what: String| Error::Ulimit {
        spec: spec.to_string(),
        what,
    };
    let (name, values) = spec
        .split_once('=')
        .ok_or_else(|| bad("expected NAME=SOFT[:HARD]".into()))?;
    let typ = ULIMITS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = ULIMITS.iter().map(|(n, _)| *n).collect();
            bad(format!(
                "unknown limit {name:?}: one of {}",
                names.join(", ")
            ))
        })?;
    let number = |v: &str| -> Result<u64, Error> {
        if v == "-1" || v == "unlimited" {
            return Ok(libc::RLIM_INFINITY);
        }
        v.parse::<u64>()
            .map_err(|_| bad(format!("{v:?} is not a number (or -1)")))
    };
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (number(s)?, number(h)?),
        None => (number(values)?, number(values)?),
    };
    if soft > hard {
        return Err(bad(format!(
            "the soft limit {soft} is above the hard limit {hard}"
        )));
    }
    if let (PosixRlimitType::RlimitNofile, Some(max)) = (typ, nr_open)
        && hard > max
    {
        return Err(bad(format!(
            "the hard limit {hard} is above the kernel's maximum for nofile (fs.nr_open = {max})"
        )));
    }
    PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()
        .map_err(|e| bad(e.to_string()))
}

/// Access strings as the device rules keep them (`&'static`), in rwm order.
fn access(spec: &str) -> Option<&'static str> {
    const ALL: [&str; 7] = ["r", "w", "m", "rw", "rm", "wm", "rwm"];
    if spec.is_empty() || !spec.chars().all(|c| "rwm".contains(c)) {
        return None;
    }
    let canon: String = "rwm".chars().filter(|c| spec.contains(*c)).collect();
    ALL.into_iter().find(|a| *a == canon)
}

/// `--device HOST[:CTR[:PERMS]]`: the node to make in the container (the
/// host's type, numbers and mode) and the rule that lets it be opened.
pub fn parse_device(spec: &str) -> Result<(LinuxDevice, Rule), Error> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let bad = |what: String| Error::Device {
        spec: spec.to_string(),
        what,
    };
    let mut parts = spec.splitn(3, ':');
    let host = parts.next().unwrap_or_default();
    let (ctr, perms) = match (parts.next(), parts.next()) {
        (None, _) => (host, "rwm"),
        // HOST:PERMS, as docker reads a second part that is no path.
        (Some(p), None) if !p.starts_with('/') => (host, p),
        (Some(c), p) => (c, p.unwrap_or("rwm")),
    };
    if !host.starts_with('/') || !ctr.starts_with('/') {
        return Err(bad("the paths must be absolute".into()));
    }
    let perms =
        access(perms).ok_or_else(|| bad(format!("{perms:?}: permissions are r, w and m")))?;
    let meta = std::fs::metadata(host).map_err(|e| bad(e.to_string()))?;
    let (typ, kind) = if meta.file_type().is_char_device() {
        (LinuxDeviceType::C, 'c')
    } else if meta.file_type().is_block_device() {
        (LinuxDeviceType::B, 'b')
    } else {
        return Err(bad(format!("{host} is not a device node")));
    };
    let rdev = meta.rdev();
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    let device = LinuxDeviceBuilder::default()
        .path(ctr)
        .typ(typ)
        .major(major as i64)
        .minor(minor as i64)
        .file_mode(meta.mode() & 0o7777)
        .uid(0u32)
        .gid(0u32)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let rule = Rule {
        allow: true,
        kind: Some(kind),
        major: Some(major),
        minor: Some(minor),
        access: perms,
    };
    Ok((device, rule))
}

/// `--device-cgroup-rule 'TYPE MAJOR:MINOR PERMS'` (`c 42:* rmw`, `a`).
pub fn parse_device_rule(spec: &str) -> Result<Rule, Error> {
    let bad = |what: &str| Error::DeviceRule {
        spec: spec.to_string(),
        what: what.to_string(),
    };
    let words: Vec<&str> = spec.split_whitespace().collect();
    let (kind, numbers, perms) = match words.as_slice() {
        [k, n, p] => (*k, *n, *p),
        _ => return Err(bad("expected 'TYPE MAJOR:MINOR PERMS', e.g. 'c 42:* rmw'")),
    };
    let kind = match kind {
        "c" => Some('c'),
        "b" => Some('b'),
        "a" => None,
        _ => return Err(bad("the type is c, b or a")),
    };
    let number = |n: &str| -> Result<Option<u32>, Error> {
        if n == "*" {
            return Ok(None);
        }
        n.parse()
            .map(Some)
            .map_err(|_| bad("MAJOR and MINOR are numbers or *"))
    };
    let (major, minor) = numbers
        .split_once(':')
        .ok_or_else(|| bad("expected MAJOR:MINOR"))?;
    Ok(Rule {
        allow: true,
        kind,
        major: number(major)?,
        minor: number(minor)?,
        access: access(perms).ok_or_else(|| bad("permissions are r, w and m"))?,
    })
}

/// The kernel's ceiling for `nofile`.
pub fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `--sysctl KEY=VALUE`s: docker's namespaced ones only (`kernel.msg*`,
/// `kernel.sem`, `kernel.shm*`, `fs.mqueue.*` of the container's IPC
/// namespace; `net.*` of its network namespace, so not with `--network
/// host`).
pub fn parse_sysctls(
    specs: &[String],
    host_network: bool,
) -> Result<HashMap<String, String>, Error> {
    let mut out = HashMap::new();
    for spec in specs {
        let bad = |what: &str| Error::Sysctl {
            spec: spec.clone(),
            what: what.to_string(),
        };
        let (key, value) = spec
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUE"))?;
        match crate::rootfs::oci::sysctl_namespace(key) {
            Some("ipc") => {}
            Some("net") if host_network => {
                return Err(bad(
                    "not allowed with --network host: it would change the host's",
                ));
            }
            Some("net") => {}
            _ => {
                return Err(bad(
                    "not allowed: not namespaced (only kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.* and net.*)",
                ));
            }
        }
        out.insert(key.to_string(), value.to_string());
    }
    Ok(out)
}

/// `--shm-size`, bytes.
pub fn parse_shm_size(spec: &str) -> Result<u64, Error> {
    crate::cgroup::parse_size(spec)
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| Error::ShmSize(spec.to_string()))
}

pub fn check_oom_score_adj(adj: i32) -> Result<i32, Error> {
    if (-1000..=1000).contains(&adj) {
        Ok(adj)
    } else {
        Err(Error::OomScoreAdj(adj))
    }
}

/// `--label-file`s (one KEY[=VALUE] a line; `#` comments), then
/// `--label`s, which win.
pub fn labels(
    labels: &[String],
    files: &[std::path::PathBuf],
) -> Result<BTreeMap<String, String>, Error> {
    let mut all: Vec<String> = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path).map_err(|source| Error::LabelFile {
            path: path.clone(),
            source,
        })?;
        all.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    all.extend(labels.iter().cloned());
    Ok(super::volume::parse_labels(&all))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits() {
        let r = parse_ulimit("nofile=1024:2048", Some(1 << 20)).unwrap();
        assert_eq!(
            (r.typ(), r.soft(), r.hard()),
            (PosixRlimitType::RlimitNofile, 1024, 2048)
        );
        let r = parse_ulimit("core=-1", None).unwrap();
        assert_eq!(r.soft(), libc::RLIM_INFINITY);
        assert!(parse_ulimit("nofile=10:5", None).is_err());
        assert!(parse_ulimit("files=10", None).is_err());
        assert!(parse_ulimit("nofile", None).is_err());
        let e = parse_ulimit("nofile=2000000", Some(1 << 20)).unwrap_err();
        assert!(e.to_string().contains("fs.nr_open = 1048576"), "{e}");
    }

    #[test]
    fn sysctls_are_namespaced_only() {
        let ok = parse_sysctls(
            &["net.ipv4.ip_forward=1".into(), "kernel.shmmax=1000".into()],
            false,
        )
        .unwrap();
        assert_eq!(ok["kernel.shmmax"], "1000");
        assert!(parse_sysctls(&["kernel.panic=1".into()], false).is_err());
        assert!(parse_sysctls(&["kernel.hostname=x".into()], false).is_err());
        assert!(parse_sysctls(&["net.ipv4.ip_forward=1".into()], true).is_err());
        assert!(parse_sysctls(&["net.ipv4.ip_forward".into()], false).is_err());
    }

    #[test]
    fn devices_and_rules() {
        let (d, r) = parse_device("/dev/null:/dev/mynull:r").unwrap();
        assert_eq!(d.path(), std::path::Path::new("/dev/mynull"));
        assert_eq!((d.major(), d.minor()), (1, 3));
        assert_eq!(
            (r.kind, r.major, r.minor, r.access),
            (Some('c'), Some(1), Some(3), "r")
        );
        let (d, r) = parse_device("/dev/zero").unwrap();
        assert_eq!(d.path(), std::path::Path::new("/dev/zero"));
        assert_eq!(r.access, "rwm");
        assert_eq!(parse_device("/dev/zero:mw").unwrap().1.access, "wm");
        assert!(parse_device("/etc/passwd").is_err());
        assert!(parse_device("/dev/null:/x:q").is_err());
        let r = parse_device_rule("c 42:* mrw").unwrap();
        assert_eq!(
            (r.kind, r.major, r.minor, r.access),
            (Some('c'), Some(42), None, "rwm")
        );
        assert!(parse_device_rule("x 1:1 r").is_err());
        assert!(parse_device_rule("c 1 r").is_err());
    }

    #[test]
    fn oom_score_adj_range() {
        assert!(check_oom_score_adj(-1000).is_ok());
        assert!(check_oom_score_adj(1001).is_err());
    }
}

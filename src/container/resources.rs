//! `containr run`'s per-container resources that are not cgroup limits:
//! `--ulimit`, `--sysctl`, `--shm-size`, `--oom-score-adj`, `--label`,
//! turned into the runtime spec's values (`PosixRlimit`, the sysctl map,
//! `oomScoreAdj`) that the init applies with the OCI runtime's functions.

use std::collections::{BTreeMap, HashMap};

use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};

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
    fn oom_score_adj_range() {
        assert!(check_oom_score_adj(-1000).is_ok());
        assert!(check_oom_score_adj(1001).is_err());
    }
}

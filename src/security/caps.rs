//! Capabilities: docker's default set of 14, `--cap-add`, `--cap-drop`.

use std::collections::BTreeSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};

use super::Error;

/// Docker's default capabilities.
pub const DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// A capability by docker's spellings: `net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN`.
pub fn parse(name: &str) -> Result<Capability, Error> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    Capability::from_str(&full).map_err(|_| Error::UnknownCapability(name.to_string()))
}

/// Every capability containr itself holds (permitted), as numbers: what
/// `ALL` and `--privileged` can give. A kernel may know capabilities that
/// containr was started without; asking for those would fail.
pub fn all() -> Vec<u8> {
    let held = caps::read(None, CapSet::Permitted).unwrap_or_default();
    let mut v: Vec<u8> = caps::runtime::thread_all_supported()
        .iter()
        .filter(|c| held.contains(c))
        .map(Capability::index)
        .collect();
    v.sort_unstable();
    v
}

/// The default set with `add` and `drop` applied, docker's way: `ALL` in
/// `drop` empties the set first, `ALL` in `add` fills it, and a drop wins
/// over an add of the same capability.
pub fn resolve(add: &[String], drop: &[String]) -> Result<Vec<u8>, Error> {
    let is_all = |s: &String| s.eq_ignore_ascii_case("ALL");
    let mut set: BTreeSet<u8> = if drop.iter().any(is_all) {
        BTreeSet::new()
    } else {
        DEFAULT
            .iter()
            .map(|n| parse(n).map(|c| c.index()))
            .collect::<Result<_, _>>()?
    };
    if add.iter().any(is_all) {
        set.extend(all());
    }
    for name in add.iter().filter(|s| !is_all(s)) {
        set.insert(parse(name)?.index());
    }
    for name in drop.iter().filter(|s| !is_all(s)) {
        set.remove(&parse(name)?.index());
    }
    // Only what this kernel has: a newer name on an older kernel is moot.
    let supported = all();
    Ok(set.into_iter().filter(|c| supported.contains(c)).collect())
}

fn to_set(caps: &[u8]) -> CapsHashSet {
    caps::all()
        .into_iter()
        .filter(|c| caps.contains(&c.index()))
        .collect()
}

fn apply_err(what: &'static str) -> impl FnOnce(caps::errors::CapsError) -> Error {
    move |e| Error::Apply {
        what,
        source: std::io::Error::other(e.to_string()),
    }
}

/// Remove from the bounding set everything not in `keep`: no process of
/// the container can ever gain those again, even through a setuid binary.
pub fn drop_bounding(keep: &[u8]) -> Result<(), Error> {
    for cap in caps::runtime::thread_all_supported() {
        if !keep.contains(&cap.index()) {
            caps::drop(None, CapSet::Bounding, cap).map_err(apply_err("the bounding set"))?;
        }
    }
    Ok(())
}

/// `PR_SET_KEEPCAPS`: keep the permitted set across the user switch.
pub fn keep_across_setuid(on: bool) -> Result<(), Error> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(Error::Apply {
            what: "PR_SET_KEEPCAPS",
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Effective and permitted sets to `caps`; inheritable and ambient empty
/// (docker has left inheritable empty since CVE-2022-24769). Effective is
/// narrowed first: the kernel refuses a permitted set smaller than it.
pub fn set_process(caps: &[u8]) -> Result<(), Error> {
    let set = to_set(caps);
    caps::clear(None, CapSet::Ambient).map_err(apply_err("the ambient set"))?;
    caps::clear(None, CapSet::Inheritable).map_err(apply_err("the inheritable set"))?;
    caps::set(None, CapSet::Effective, &set).map_err(apply_err("the effective set"))?;
    caps::set(None, CapSet::Permitted, &set).map_err(apply_err("the permitted set"))?;
    Ok(())
}

/// The names of `caps`, for messages.
pub fn names(caps: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = to_set(caps).iter().map(|c| c.to_string()).collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(add: &[&str], drop: &[&str]) -> Vec<String> {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        names(&resolve(&s(add), &s(drop)).unwrap())
    }

    #[test]
    fn default_is_dockers_fourteen() {
        let d = named(&[], &[]);
        assert_eq!(d.len(), 14);
        assert!(d.contains(&"CAP_NET_RAW".to_string()));
        assert!(!d.contains(&"CAP_SYS_ADMIN".to_string()));
    }

    #[test]
    fn add_and_drop_any_spelling() {
        let d = named(&["sys_time", "CAP_NET_ADMIN"], &["net_raw", "KILL"]);
        assert!(d.contains(&"CAP_SYS_TIME".to_string()));
        assert!(d.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!d.contains(&"CAP_NET_RAW".to_string()));
        assert_eq!(d.len(), 14);
        assert_eq!(named(&["chown"], &["ALL"]), vec!["CAP_CHOWN"]);
        assert_eq!(named(&["ALL"], &[]).len(), all().len());
        // A drop wins over an add of the same one.
        assert!(!named(&["NET_ADMIN"], &["NET_ADMIN"]).contains(&"CAP_NET_ADMIN".to_string()));
    }

    #[test]
    fn unknown_names_are_errors() {
        let err = resolve(&["CAP_FLY".into()], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown capability \"CAP_FLY\" (e.g. NET_ADMIN, CAP_SYS_TIME, ALL)"
        );
    }
}

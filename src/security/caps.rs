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
    let held: Vec<u8> = caps::read(None, CapSet::Permitted)
        .unwrap_or_default()
        .iter()
        .map(Capability::index)
        .collect();
    let mut v = runtime_supported();
    v.retain(|c| held.contains(c));
    v
}

/// Every capability the running kernel has, as sorted numbers.
pub fn runtime_supported() -> Vec<u8> {
    let mut v: Vec<u8> = caps::runtime::thread_all_supported()
        .iter()
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

fn mask(caps: &[u8]) -> u64 {
    caps.iter().filter(|&&c| c < 64).fold(0, |m, &c| m | 1 << c)
}

/// A process's capability sets other than the bounding set, as numbers.
pub struct Sets<'a> {
    pub effective: &'a [u8],
    pub permitted: &'a [u8],
    pub inheritable: &'a [u8],
    pub ambient: &'a [u8],
}

/// The effective, permitted and inheritable sets in one `capset(2)` (so
/// no order between them can be refused half-way: the kernel checks the
/// new effective against the new permitted), then the ambient set, which
/// the kernel only takes for capabilities both permitted and inheritable.
pub fn set_sets(sets: &Sets) -> Result<(), Error> {
    caps::clear(None, CapSet::Ambient).map_err(apply_err("the ambient set"))?;
    // _LINUX_CAPABILITY_VERSION_3: 64 bits as two 32-bit words.
    let mut header = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    let (e, p, i) = (
        mask(sets.effective),
        mask(sets.permitted),
        mask(sets.inheritable),
    );
    let data = [
        CapData {
            effective: e as u32,
            permitted: p as u32,
            inheritable: i as u32,
        },
        CapData {
            effective: (e >> 32) as u32,
            permitted: (p >> 32) as u32,
            inheritable: (i >> 32) as u32,
        },
    ];
    // SAFETY: header and data are the kernel's v3 layout (one header, two
    // data words), alive for the call; the kernel only reads them.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } != 0 {
        return Err(Error::Apply {
            what: "the effective, permitted and inheritable sets",
            source: std::io::Error::last_os_error(),
        });
    }
    for cap in to_set(sets.ambient) {
        caps::raise(None, CapSet::Ambient, cap).map_err(apply_err("the ambient set"))?;
    }
    Ok(())
}

/// `struct __user_cap_header_struct` (linux/capability.h).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct` (linux/capability.h).
#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
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

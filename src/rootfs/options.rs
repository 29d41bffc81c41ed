//! The `options` of an OCI mount (config.md's "mounts"), split into what
//! each step of making the mount needs: `mount(2)` flags, `mount_setattr`
//! attributes for a bind mount and for the tree below it, propagation,
//! idmapping, and the filesystem's own data options. Pure: no syscalls.

use nix::mount::MsFlags;

use super::mountapi::{
    Attr, MOUNT_ATTR_ATIME_MASK, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME,
    MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, MOUNT_ATTR_RELATIME,
    MOUNT_ATTR_STRICTATIME,
};

/// One mount's options, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `bind` or `rbind` (or the mount's type is `bind`).
    pub bind: bool,
    /// `rbind`: the mounts below the source come too.
    pub recursive: bool,
    /// `mount(2)` flags for a new filesystem (`ro`, `nosuid`, …).
    pub flags: MsFlags,
    /// The same as `mount_setattr` attributes, for a bind mount's top.
    pub attr: Attr,
    /// `rro`, `rnosuid`, …: attributes for the whole tree (AT_RECURSIVE).
    pub recursive_attr: Attr,
    /// `shared`, `rslave`, …, in order: (MS_* type, recursive).
    pub propagation: Vec<(MsFlags, bool)>,
    /// `idmap` (false) or `ridmap` (true).
    pub idmap: Option<bool>,
    /// Anything else, for the filesystem (`size=64k`, `mode=755`, …).
    pub data: Vec<String>,
}

/// How an option changes the mount flags and attributes.
enum Effect {
    /// Sets these `mount(2)` flags and this attribute.
    Set(MsFlags, u64),
    /// Clears these flags and this attribute.
    Clear(MsFlags, u64),
    /// An atime mode (`MOUNT_ATTR_*ATIME`), with its `mount(2)` flag.
    Atime(MsFlags, u64),
    /// A `mount(2)` flag mount_setattr has no attribute for.
    FlagOnly(MsFlags, bool),
}

fn effect(name: &str) -> Option<Effect> {
    use Effect::*;
    Some(match name {
        "defaults" => FlagOnly(MsFlags::empty(), true),
        "ro" => Set(MsFlags::MS_RDONLY, MOUNT_ATTR_RDONLY as u64),
        "rw" => Clear(MsFlags::MS_RDONLY, MOUNT_ATTR_RDONLY as u64),
        "nosuid" => Set(MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID as u64),
        "suid" => Clear(MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID as u64),
        "nodev" => Set(MsFlags::MS_NODEV, MOUNT_ATTR_NODEV as u64),
        "dev" => Clear(MsFlags::MS_NODEV, MOUNT_ATTR_NODEV as u64),
        "noexec" => Set(MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC as u64),
        "exec" => Clear(MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC as u64),
        "nodiratime" => Set(MsFlags::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
        "diratime" => Clear(MsFlags::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
        "noatime" => Atime(MsFlags::MS_NOATIME, MOUNT_ATTR_NOATIME),
        "strictatime" | "norelatime" => Atime(MsFlags::MS_STRICTATIME, MOUNT_ATTR_STRICTATIME),
        "relatime" | "atime" | "nostrictatime" => Atime(MsFlags::MS_RELATIME, MOUNT_ATTR_RELATIME),
        "sync" => FlagOnly(MsFlags::MS_SYNCHRONOUS, true),
        "async" => FlagOnly(MsFlags::MS_SYNCHRONOUS, false),
        "dirsync" => FlagOnly(MsFlags::MS_DIRSYNC, true),
        "mand" => FlagOnly(MsFlags::MS_MANDLOCK, true),
        "nomand" => FlagOnly(MsFlags::MS_MANDLOCK, false),
        "lazytime" => FlagOnly(MsFlags::MS_LAZYTIME, true),
        "nolazytime" => FlagOnly(MsFlags::MS_LAZYTIME, false),
        "iversion" => FlagOnly(MsFlags::MS_I_VERSION, true),
        "noiversion" => FlagOnly(MsFlags::MS_I_VERSION, false),
        "silent" => FlagOnly(MsFlags::MS_SILENT, true),
        "loud" => FlagOnly(MsFlags::MS_SILENT, false),
        _ => return None,
    })
}

fn propagation(name: &str) -> Option<(MsFlags, bool)> {
    let (base, recursive) = match name.strip_prefix('r') {
        Some(b @ ("shared" | "slave" | "private" | "unbindable")) => (b, true),
        _ => (name, false),
    };
    let flag = match base {
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "private" => MsFlags::MS_PRIVATE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some((flag, recursive))
}

/// A propagation mode as `mount(2)` takes it (`rslave` is
/// `MS_SLAVE|MS_REC`), for `rootfsPropagation`.
pub fn propagation_flags(name: &str) -> Option<MsFlags> {
    propagation(name).map(|(f, rec)| if rec { f | MsFlags::MS_REC } else { f })
}

fn apply(attr: &mut Attr, e: &Effect) {
    match *e {
        Effect::Set(_, a) => {
            attr.set |= a;
            attr.clear &= !a;
        }
        Effect::Clear(_, a) => {
            attr.clear |= a;
            attr.set &= !a;
        }
        Effect::Atime(_, a) => {
            attr.clear |= MOUNT_ATTR_ATIME_MASK;
            attr.set = (attr.set & !MOUNT_ATTR_ATIME_MASK) | a;
        }
        Effect::FlagOnly(..) => {}
    }
}

impl Options {
    /// Parse `options` of a mount of type `fstype`. The error is the
    /// option refused: an unknown one on a bind mount (which has no
    /// filesystem to pass it to), or a recursive attribute mount_setattr
    /// cannot express.
    pub fn parse(fstype: Option<&str>, options: &[String]) -> Result<Options, String> {
        let mut o = Options {
            bind: fstype == Some("bind") || fstype == Some("rbind"),
            recursive: fstype == Some("rbind"),
            flags: MsFlags::empty(),
            attr: Attr::default(),
            recursive_attr: Attr::default(),
            propagation: Vec::new(),
            idmap: None,
            data: Vec::new(),
        };
        for opt in options {
            let opt = opt.as_str();
            match opt {
                "bind" => o.bind = true,
                "rbind" => {
                    o.bind = true;
                    o.recursive = true;
                }
                "idmap" => o.idmap = Some(false),
                "ridmap" => o.idmap = Some(true),
                _ => {
                    if let Some(p) = propagation(opt) {
                        o.propagation.push(p);
                    } else if let Some(e) = effect(opt) {
                        match e {
                            Effect::Set(f, _) | Effect::Atime(f, _) | Effect::FlagOnly(f, true) => {
                                if let Effect::Atime(..) = e {
                                    o.flags &= !(MsFlags::MS_NOATIME
                                        | MsFlags::MS_STRICTATIME
                                        | MsFlags::MS_RELATIME);
                                }
                                o.flags |= f
                            }
                            Effect::Clear(f, _) | Effect::FlagOnly(f, false) => o.flags &= !f,
                        }
                        apply(&mut o.attr, &e);
                    } else if let Some(r) = opt.strip_prefix('r')
                        && let Some(e @ (Effect::Set(..) | Effect::Clear(..) | Effect::Atime(..))) =
                            effect(r)
                    {
                        apply(&mut o.recursive_attr, &e);
                    } else {
                        o.data.push(opt.to_string());
                    }
                }
            }
        }
        if o.bind
            && let Some(bad) = o.data.first()
        {
            return Err(bad.clone());
        }
        if o.idmap.is_some() && !o.bind {
            return Err(if o.idmap == Some(true) {
                "ridmap"
            } else {
                "idmap"
            }
            .to_string());
        }
        Ok(o)
    }

    /// The data string for `mount(2)`: the filesystem's own options.
    pub fn data(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str, opts: &[&str]) -> Result<Options, String> {
        let v: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        Options::parse(Some(t), &v)
    }

    #[test]
    fn bind_flags_become_attributes() {
        let o = parse(
            "none",
            &["rbind", "ro", "nosuid", "nodev", "noexec", "rslave"],
        )
        .unwrap();
        assert!(o.bind && o.recursive);
        assert_eq!(
            o.attr.set,
            (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC) as u64
        );
        assert_eq!(o.propagation, vec![(MsFlags::MS_SLAVE, true)]);
        assert!(o.data.is_empty());
    }

    #[test]
    fn later_options_win() {
        let o = parse("bind", &["ro", "rw", "noatime", "strictatime"]).unwrap();
        assert_eq!(o.attr.set, MOUNT_ATTR_STRICTATIME);
        assert_eq!(
            o.attr.clear,
            MOUNT_ATTR_RDONLY as u64 | MOUNT_ATTR_ATIME_MASK
        );
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.flags.contains(MsFlags::MS_STRICTATIME));
        assert!(!o.flags.contains(MsFlags::MS_NOATIME));
    }

    #[test]
    fn recursive_attributes() {
        let o = parse("bind", &["rro", "rnosuid", "rnoatime"]).unwrap();
        assert_eq!(
            o.recursive_attr.set,
            MOUNT_ATTR_RDONLY as u64 | MOUNT_ATTR_NOSUID as u64 | MOUNT_ATTR_NOATIME
        );
        assert_eq!(o.attr, Attr::default());
    }

    #[test]
    fn filesystem_options_are_data() {
        let o = parse(
            "tmpfs",
            &["nosuid", "size=65536k", "mode=755", "strictatime"],
        )
        .unwrap();
        assert!(!o.bind);
        assert_eq!(o.data().as_deref(), Some("size=65536k,mode=755"));
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
    }

    #[test]
    fn unknown_bind_option_is_named() {
        assert_eq!(parse("bind", &["ro", "bogus"]).unwrap_err(), "bogus");
        assert_eq!(parse("none", &["rbind", "size=1k"]).unwrap_err(), "size=1k");
    }

    #[test]
    fn idmap_needs_a_bind() {
        assert_eq!(parse("tmpfs", &["idmap"]).unwrap_err(), "idmap");
        assert_eq!(parse("bind", &["ridmap"]).unwrap().idmap, Some(true));
    }

    #[test]
    fn propagation_names() {
        assert_eq!(
            propagation_flags("rshared"),
            Some(MsFlags::MS_SHARED | MsFlags::MS_REC)
        );
        assert_eq!(propagation_flags("private"), Some(MsFlags::MS_PRIVATE));
        assert_eq!(propagation_flags("rbogus"), None);
        assert_eq!(propagation_flags("bogus"), None);
    }
}

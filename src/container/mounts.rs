//! `containr run`'s storage options (`-v`, `--mount`, `--tmpfs`,
//! `--volumes-from`) turned into the runtime spec's `mounts`: OCI `Mount`
//! entries the init places with `rootfs::oci::mount_into`, the same code
//! that places a bundle's, so both front ends share one mount
//! implementation (and its resolution of every destination inside the
//! root).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, MountBuilder};
use serde::{Deserialize, Serialize};

use super::state::DataRoot;
use super::volume::{self, Store, TmpfsLock};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid volume specification {spec:?}: {what}")]
    BadVolume { spec: String, what: String },
    #[error("invalid argument {spec:?} for \"--mount\" flag: {what}")]
    BadMount { spec: String, what: String },
    #[error("invalid mount config for type \"bind\": bind source path does not exist: {0}")]
    NoBindSource(PathBuf),
    #[error("bind source {path}: {source}")]
    BindSource {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--tmpfs {spec:?}: {what}")]
    BadTmpfs { spec: String, what: String },
    #[error("--volumes-from {0:?}: no such container")]
    NoSuchContainer(String),
    #[error("duplicate mount point: {0}")]
    Duplicate(String),
    #[error(transparent)]
    Volume(#[from] volume::Error),
    #[error("oci spec: {0}")]
    Spec(String),
}

/// One mount as `inspect` shows it (docker's `Mounts` entries), and as the
/// container's record keeps it: `volume rm` refuses a volume a record
/// names, `rm -v` removes the anonymous ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub source: String,
    pub destination: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    #[serde(default)]
    pub propagation: String,
    /// An anonymous volume (`-v /path`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anonymous: bool,
}

/// What the user asked for, parsed, nothing made yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
        propagation: Option<String>,
        /// `-v` makes a missing source directory; `--mount` refuses it.
        create: bool,
    },
    /// A named volume, or an anonymous one (`name` none).
    Volume {
        name: Option<String>,
        target: String,
        readonly: bool,
        nocopy: bool,
    },
    Tmpfs {
        target: String,
        options: Vec<String>,
    },
}

impl Request {
    fn target(&self) -> &str {
        match self {
            Request::Bind { target, .. }
            | Request::Volume { target, .. }
            | Request::Tmpfs { target, .. } => target,
        }
    }
}

const PROPAGATIONS: [&str; 6] = [
    "shared", "slave", "private", "rshared", "rslave", "rprivate",
];

/// docker's default tmpfs options.
const TMPFS_DEFAULTS: [&str; 3] = ["nosuid", "nodev", "noexec"];

fn check_target(target: &str) -> Result<String, String> {
    if !target.starts_with('/') {
        return Err(format!(
            "{target:?}: the mount point must be an absolute path"
        ));
    }
    if target == "/" {
        return Err("the mount point cannot be /".into());
    }
    Ok(target.to_string())
}

/// `-v HOST:CTR[:opts]`, `-v NAME:CTR[:opts]` or `-v CTR`.
pub fn parse_volume(spec: &str) -> Result<Request, Error> {
    let bad = |what: String| Error::BadVolume {
        spec: spec.to_string(),
        what,
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, opts) = match parts.as_slice() {
        [t] => (None, *t, ""),
        [s, t] => (Some(*s), *t, ""),
        [s, t, o] => (Some(*s), *t, *o),
        _ => return Err(bad("expected [SOURCE:]TARGET[:OPTIONS]".into())),
    };
    let target = check_target(target).map_err(bad)?;
    let (mut readonly, mut propagation, mut nocopy) = (false, None, false);
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => readonly = true,
            "rw" => readonly = false,
            "nocopy" => nocopy = true,
            // SELinux relabelling: nothing to do without SELinux.
            "z" | "Z" => {}
            p if PROPAGATIONS.contains(&p) => propagation = Some(p.to_string()),
            other => return Err(bad(format!("unknown option {other:?}"))),
        }
    }
    Ok(match source {
        Some(s) if s.starts_with('/') => {
            if nocopy {
                return Err(bad("nocopy applies to volumes, not bind mounts".into()));
            }
            Request::Bind {
                source: PathBuf::from(s),
                target,
                readonly,
                propagation,
                create: true,
            }
        }
        Some(name) => {
            volume::validate_name(name).map_err(|e| bad(e.to_string()))?;
            if propagation.is_some() {
                return Err(bad("propagation applies to bind mounts only".into()));
            }
            Request::Volume {
                name: Some(name.to_string()),
                target,
                readonly,
                nocopy,
            }
        }
        None => Request::Volume {
            name: None,
            target,
            readonly,
            nocopy,
        },
    })
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…,readonly,…`.
pub fn parse_mount(spec: &str) -> Result<Request, Error> {
    let bad = |what: String| Error::BadMount {
        spec: spec.to_string(),
        what,
    };
    let (mut kind, mut source, mut target) = ("volume".to_string(), None, None);
    let (mut readonly, mut propagation, mut nocopy) = (false, None, false);
    let (mut size, mut mode) = (None, None);
    for field in spec.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        let flag = |v: Option<&str>| match v {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(v) => Err(bad(format!("{key}={v}: expected true or false"))),
        };
        let need = |v: Option<&str>| {
            v.map(String::from)
                .ok_or_else(|| bad(format!("{key} needs a value")))
        };
        match key {
            "type" => kind = need(value)?,
            "source" | "src" => source = Some(need(value)?),
            "target" | "destination" | "dst" => target = Some(need(value)?),
            "readonly" | "ro" => readonly = flag(value)?,
            "bind-propagation" => {
                let p = need(value)?;
                if !PROPAGATIONS.contains(&p.as_str()) {
                    return Err(bad(format!(
                        "bind-propagation {p:?}: not one of {PROPAGATIONS:?}"
                    )));
                }
                propagation = Some(p);
            }
            "volume-nocopy" => nocopy = flag(value)?,
            "tmpfs-size" => {
                let v = need(value)?;
                let bytes = crate::cgroup::parse_size(&v).map_err(|e| bad(e.to_string()))?;
                size = Some(bytes);
            }
            "tmpfs-mode" => {
                let v = need(value)?;
                let m = u32::from_str_radix(&v, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| bad(format!("tmpfs-mode {v:?}: expected an octal mode")))?;
                mode = Some(m);
            }
            other => return Err(bad(format!("unexpected key {other:?}"))),
        }
    }
    let target =
        check_target(&target.ok_or_else(|| bad("target is required".into()))?).map_err(bad)?;
    let only = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(bad(format!("{what} does not apply to type={kind}")))
        }
    };
    only(propagation.is_none() || kind == "bind", "bind-propagation")?;
    only(!nocopy || kind == "volume", "volume-nocopy")?;
    only(
        (size.is_none() && mode.is_none()) || kind == "tmpfs",
        "tmpfs-size/tmpfs-mode",
    )?;
    match kind.as_str() {
        "bind" => {
            let source = source.ok_or_else(|| bad("source is required for a bind mount".into()))?;
            if !source.starts_with('/') {
                return Err(bad(format!("source {source:?}: must be an absolute path")));
            }
            Ok(Request::Bind {
                source: PathBuf::from(source),
                target,
                readonly,
                propagation,
                create: false,
            })
        }
        "volume" => {
            if let Some(n) = &source {
                volume::validate_name(n).map_err(|e| bad(e.to_string()))?;
            }
            Ok(Request::Volume {
                name: source,
                target,
                readonly,
                nocopy,
            })
        }
        "tmpfs" => {
            if source.is_some() {
                return Err(bad("a tmpfs has no source".into()));
            }
            let mut options: Vec<String> = TMPFS_DEFAULTS.iter().map(|s| s.to_string()).collect();
            if readonly {
                options.push("ro".into());
            }
            options.extend(size.map(|s| format!("size={s}")));
            options.extend(mode.map(|m| format!("mode={m:o}")));
            Ok(Request::Tmpfs { target, options })
        }
        other => Err(bad(format!(
            "type {other:?}: expected bind, volume or tmpfs"
        ))),
    }
}

/// `--tmpfs PATH[:OPTIONS]` (mount(8)'s tmpfs options, comma-separated).
pub fn parse_tmpfs(spec: &str) -> Result<Request, Error> {
    let (target, opts) = spec.split_once(':').unwrap_or((spec, ""));
    let target = check_target(target).map_err(|what| Error::BadTmpfs {
        spec: spec.to_string(),
        what,
    })?;
    let mut options: Vec<String> = TMPFS_DEFAULTS.iter().map(|s| s.to_string()).collect();
    options.extend(opts.split(',').filter(|o| !o.is_empty()).map(String::from));
    Ok(Request::Tmpfs { target, options })
}

/// The mounts of a container, resolved: what the init places, what the
/// record keeps, and which new volumes get the image's content first.
#[derive(Debug, Default)]
pub struct Resolved {
    pub mounts: Vec<Mount>,
    pub points: Vec<MountPoint>,
    /// (volume directory, destination): copy the image's content at the
    /// destination into the new, empty volume (docker's copy-up).
    pub copy_up: Vec<(PathBuf, PathBuf)>,
    /// Anonymous volumes made for this container, removed if it fails to
    /// start.
    made: Vec<String>,
    /// With a tmpfs volume: the lock that keeps its mount from being taken
    /// as unused until the container is recorded as its user (dropped
    /// then), and the volumes whose tmpfs this run mounted.
    tmpfs: Option<(TmpfsLock, Vec<String>)>,
}

impl Resolved {
    /// Undo what [`resolve`] made (the anonymous volumes) after a failure.
    pub fn discard(self, root: &Path) {
        // The store is opened (which makes its directory) only when there
        // is something of it to undo.
        if let Some((lock, mounted)) = &self.tmpfs
            && let Ok(store) = Store::open(root)
        {
            for name in mounted {
                let _ = store.unmount_tmpfs(lock, name);
            }
        }
        if self.made.is_empty() {
            return;
        }
        if let Ok(store) = Store::open(root) {
            for name in &self.made {
                let _ = std::fs::remove_dir_all(store.data_dir(name).parent().unwrap_or(root));
            }
        }
    }
}

/// Turn the requests (and `--volumes-from`) into OCI mounts: named volumes
/// made on first use, anonymous ones made, `-v` bind sources made when
/// missing. Later requests for the same destination are refused, as docker.
pub fn resolve(
    root: &Path,
    requests: &[Request],
    volumes_from: &[String],
) -> Result<Resolved, Error> {
    let mut out = Resolved::default();
    let result = resolve_into(root, requests, volumes_from, &mut out);
    match result {
        Ok(()) => Ok(out),
        Err(e) => {
            out.discard(root);
            Err(e)
        }
    }
}

fn resolve_into(
    root: &Path,
    requests: &[Request],
    volumes_from: &[String],
    out: &mut Resolved,
) -> Result<(), Error> {
    let mut seen: Vec<&str> = Vec::new();
    for r in requests {
        let t = r.target().trim_end_matches('/');
        if seen.contains(&t) {
            return Err(Error::Duplicate(r.target().to_string()));
        }
        seen.push(t);
    }
    let needs_store =
        volumes_from.is_empty() && !requests.iter().any(|r| matches!(r, Request::Volume { .. }));
    let store = if needs_store {
        None
    } else {
        Some(Store::open(root)?)
    };
    for r in requests {
        match r {
            Request::Bind {
                source,
                target,
                readonly,
                propagation,
                create,
            } => {
                bind_source(source, *create)?;
                let prop = propagation.clone().unwrap_or_else(|| "rprivate".into());
                out.mounts
                    .push(bind(source, target, *readonly, Some(&prop))?);
                out.points.push(MountPoint {
                    kind: "bind".into(),
                    name: None,
                    source: source.display().to_string(),
                    destination: target.clone(),
                    rw: !readonly,
                    propagation: prop,
                    anonymous: false,
                });
            }
            Request::Volume {
                name,
                target,
                readonly,
                nocopy,
            } => {
                let store = store.as_ref().expect("opened for volumes");
                let (vol, new) = match name {
                    Some(n) => store.get_or_create(n)?,
                    None => {
                        let v = store.create_anonymous()?;
                        out.made.push(v.name.clone());
                        (v, true)
                    }
                };
                let dir = store.data_dir(&vol.name);
                match vol.tmpfs_options() {
                    Some(o) => {
                        // Shared: mounted at _data unless live containers
                        // have it there already, bound like a directory.
                        share_tmpfs(root, store, &vol, &o, out)?;
                        out.mounts.push(bind(&dir, target, *readonly, None)?);
                    }
                    None => {
                        if new && !nocopy {
                            out.copy_up.push((dir.clone(), PathBuf::from(target)));
                        }
                        out.mounts.push(bind(&dir, target, *readonly, None)?);
                    }
                }
                out.points.push(MountPoint {
                    kind: "volume".into(),
                    name: Some(vol.name.clone()),
                    source: dir.display().to_string(),
                    destination: target.clone(),
                    rw: !readonly,
                    propagation: String::new(),
                    anonymous: vol.anonymous,
                });
            }
            Request::Tmpfs { target, options } => {
                out.mounts.push(tmpfs(target, options.clone())?);
                out.points.push(MountPoint {
                    kind: "tmpfs".into(),
                    name: None,
                    source: String::new(),
                    destination: target.clone(),
                    rw: !options.iter().any(|o| o == "ro"),
                    propagation: String::new(),
                    anonymous: false,
                });
            }
        }
    }
    if !volumes_from.is_empty() {
        let data = DataRoot::open(root).map_err(|e| Error::Spec(e.to_string()))?;
        for spec in volumes_from {
            let (name, mode) = spec.split_once(':').unwrap_or((spec, ""));
            let force_ro = match mode {
                "" | "rw" => false,
                "ro" => true,
                m => {
                    return Err(Error::BadVolume {
                        spec: spec.clone(),
                        what: format!("unknown mode {m:?}: expected ro or rw"),
                    });
                }
            };
            let state = data
                .lookup(name)
                .map_err(|_| Error::NoSuchContainer(name.to_string()))?;
            for p in state.mounts.iter().filter(|p| p.kind != "tmpfs") {
                if seen.contains(&p.destination.trim_end_matches('/')) {
                    continue; // the container's own mount wins, as docker
                }
                let readonly = force_ro || !p.rw;
                // A tmpfs volume the other container no longer holds is
                // mounted again, as for -v.
                if let (Some(name), "volume") = (p.name.as_deref(), p.kind.as_str()) {
                    let store = Store::open(root)?;
                    if let Ok(vol) = store.get(name)
                        && let Some(o) = vol.tmpfs_options()
                    {
                        share_tmpfs(root, &store, &vol, &o, out)?;
                    }
                }
                let prop = (!p.propagation.is_empty()).then_some(p.propagation.as_str());
                out.mounts
                    .push(bind(Path::new(&p.source), &p.destination, readonly, prop)?);
                out.points.push(MountPoint {
                    rw: !readonly,
                    // Shared, not owned: `rm -v` of this container keeps it.
                    anonymous: false,
                    ..p.clone()
                });
            }
        }
    }
    Ok(())
}

/// Tmpfs volume `vol` mounted at its `_data` (see [`volume`]), the lock
/// taken and kept in `out` until the container is recorded as its user.
fn share_tmpfs(
    root: &Path,
    store: &Store,
    vol: &volume::Volume,
    options: &[String],
    out: &mut Resolved,
) -> Result<(), Error> {
    if out.tmpfs.is_none() {
        out.tmpfs = Some((store.lock_tmpfs()?, Vec::new()));
    }
    let (lock, mounted) = out.tmpfs.as_mut().expect("just set");
    let data = DataRoot::open(root).map_err(|e| Error::Spec(e.to_string()))?;
    if store.mount_tmpfs(lock, &data, vol, options)? {
        mounted.push(vol.name.clone());
    }
    Ok(())
}

/// A bind source: there, or with `-v` made (a directory, as docker).
fn bind_source(source: &Path, create: bool) -> Result<(), Error> {
    match std::fs::symlink_metadata(source) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            std::fs::create_dir_all(source).map_err(|source_err| Error::BindSource {
                path: source.to_path_buf(),
                source: source_err,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::NoBindSource(source.to_path_buf()))
        }
        Err(e) => Err(Error::BindSource {
            path: source.to_path_buf(),
            source: e,
        }),
    }
}

fn bind(source: &Path, target: &str, readonly: bool, prop: Option<&str>) -> Result<Mount, Error> {
    let mut options = vec!["rbind".to_string()];
    if readonly {
        // Recursive: a mount under the source is read-only too.
        options.push("rro".into());
    }
    options.extend(prop.map(String::from));
    MountBuilder::default()
        .typ("bind")
        .source(source)
        .destination(target)
        .options(options)
        .build()
        .map_err(|e| Error::Spec(e.to_string()))
}

fn tmpfs(target: &str, options: Vec<String>) -> Result<Mount, Error> {
    MountBuilder::default()
        .typ("tmpfs")
        .source("tmpfs")
        .destination(target)
        .options(options)
        .build()
        .map_err(|e| Error::Spec(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dash_v_forms() {
        assert_eq!(
            parse_volume("/srv/web:/usr/share/html:ro,rshared").unwrap(),
            Request::Bind {
                source: "/srv/web".into(),
                target: "/usr/share/html".into(),
                readonly: true,
                propagation: Some("rshared".into()),
                create: true,
            }
        );
        assert_eq!(
            parse_volume("pgdata:/var/lib/pg").unwrap(),
            Request::Volume {
                name: Some("pgdata".into()),
                target: "/var/lib/pg".into(),
                readonly: false,
                nocopy: false,
            }
        );
        assert!(matches!(
            parse_volume("/data").unwrap(),
            Request::Volume { name: None, .. }
        ));
        for bad in [
            "./x:/y",
            "/a:b",
            "/a:/b:rx",
            "x:/",
            "a:b:c:d",
            "v:/x:shared",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dash_dash_mount_forms() {
        assert_eq!(
            parse_mount("type=bind,src=/srv,dst=/web,readonly,bind-propagation=rslave").unwrap(),
            Request::Bind {
                source: "/srv".into(),
                target: "/web".into(),
                readonly: true,
                propagation: Some("rslave".into()),
                create: false,
            }
        );
        assert_eq!(
            parse_mount("type=tmpfs,target=/run,tmpfs-size=64k,tmpfs-mode=1770").unwrap(),
            Request::Tmpfs {
                target: "/run".into(),
                options: vec![
                    "nosuid".into(),
                    "nodev".into(),
                    "noexec".into(),
                    "size=65536".into(),
                    "mode=1770".into()
                ],
            }
        );
        assert!(matches!(
            parse_mount("source=cache,target=/c,volume-nocopy").unwrap(),
            Request::Volume { nocopy: true, .. }
        ));
        for bad in [
            "type=bind,target=/x",
            "type=bind,src=rel,target=/x",
            "type=tmpfs,src=a,target=/x",
            "type=volume,target=/x,tmpfs-size=1m",
            "type=nfs,target=/x",
            "target=/x,color=red",
            "type=tmpfs,target=/x,tmpfs-mode=999",
            "type=bind,src=/a",
        ] {
            assert!(parse_mount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpfs_options_follow_docker_defaults() {
        assert_eq!(
            parse_tmpfs("/run:size=1m,exec").unwrap(),
            Request::Tmpfs {
                target: "/run".into(),
                options: vec![
                    "nosuid".into(),
                    "nodev".into(),
                    "noexec".into(),
                    "size=1m".into(),
                    "exec".into()
                ],
            }
        );
        assert!(parse_tmpfs("run").is_err());
    }

    #[test]
    fn duplicates_are_refused() {
        let r = [parse_tmpfs("/x").unwrap(), parse_tmpfs("/x/").unwrap()];
        assert!(matches!(
            resolve(Path::new("/nonexistent"), &r, &[]),
            Err(Error::Duplicate(_))
        ));
        // Refused before anything is made: not even the data root's
        // volumes directory (a test of `limits` needs /nonexistent absent).
        assert!(!Path::new("/nonexistent").exists());
    }
}

//! Named volumes: directories under the data root that outlive the
//! containers using them, as docker's `local` driver keeps them:
//!
//! ```text
//! volumes/<name>/_data          what the container sees
//! volumes/<name>/volume.json    its name, labels, options, creation time
//! ```
//!
//! `mkdir` of `volumes/<name>` is the claim on the name: two commands
//! creating the same volume at once both get it, made once.
//!
//! A tmpfs volume (`--opt type=tmpfs`) is, as with docker's `local`
//! driver, a tmpfs mounted at its `_data` when the first container using it
//! starts, shared by all that use it at the same time, and unmounted when
//! the last one exits. Its users are the live records that list it (running,
//! their `containr run` alive), read under `volumes/.tmpfs.lock`: no counter
//! to get wrong, and a killed run stops counting at once, so the next
//! command that looks reclaims a mount nobody uses.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::mounts::MountPoint;
use super::state::{DataRoot, State};
use crate::util::{io_err, now};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("volume store {0}")]
    Io(#[from] crate::util::PathIo),
    #[error(
        "invalid volume name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed (a host path must be absolute)"
    )]
    BadName(String),
    #[error("volume {0}: already exists")]
    Exists(String),
    #[error("No such volume: {0}")]
    NoSuchVolume(String),
    #[error("remove {name}: volume is in use - [{containers}]")]
    InUse { name: String, containers: String },
    #[error("volume --opt {0:?}: expected type=, device= or o=")]
    BadOpt(String),
    #[error("volume --opt type={0:?}: only tmpfs (or none, a directory) is supported")]
    BadType(String),
    #[error("--filter {0:?}: expected name=, label=KEY[=VALUE] or dangling=true|false")]
    BadFilter(String),
    #[error("volume {name}: {source}")]
    Mount {
        name: String,
        source: crate::rootfs::Error,
    },
}

/// `volumes/.tmpfs.lock`, held while tmpfs volumes are mounted, unmounted,
/// or a container that uses one is recorded.
#[derive(Debug)]
pub struct TmpfsLock(#[allow(dead_code)] nix::fcntl::Flock<fs::File>);

/// What `volume.json` holds (and `volume inspect` shows, with the paths).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    /// RFC 3339, as docker shows it.
    pub created_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `--opt`: `type`, `device`, `o`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Made for `-v /path` with no name: removed with its container by
    /// `rm -v` and `--rm`.
    #[serde(default)]
    pub anonymous: bool,
}

impl Volume {
    /// A tmpfs volume (`--opt type=tmpfs`): its mount options (`o=`).
    pub fn tmpfs_options(&self) -> Option<Vec<String>> {
        (self.options.get("type").map(String::as_str) == Some("tmpfs")).then(|| {
            self.options
                .get("o")
                .map(|o| o.split(',').filter(|s| !s.is_empty()).map(String::from))
                .into_iter()
                .flatten()
                .collect()
        })
    }
}

/// The volumes under a data root.
pub struct Store {
    dir: PathBuf,
}

/// Docker's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<(), Error> {
    let b = name.as_bytes();
    let ok = b.len() >= 2
        && b.len() <= 255
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadName(name.to_string()))
    }
}

/// `--opt KEY=VALUE`s, checked.
pub fn parse_opts(opts: &[String]) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for o in opts {
        match o.split_once('=') {
            Some((k @ ("type" | "device" | "o"), v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => return Err(Error::BadOpt(o.clone())),
        }
    }
    match out.get("type").map(String::as_str) {
        None | Some("tmpfs") | Some("none") => Ok(out),
        Some(t) => Err(Error::BadType(t.to_string())),
    }
}

/// `--label KEY[=VALUE]`s.
pub fn parse_labels(labels: &[String]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect()
}

impl Store {
    pub fn open(root: &Path) -> Result<Store, Error> {
        let dir = root.join("volumes");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(Store { dir })
    }

    /// Where the volume's content is.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// Take the tmpfs volumes' lock (see the module's documentation).
    pub fn lock_tmpfs(&self) -> Result<TmpfsLock, Error> {
        Ok(TmpfsLock(crate::util::lock_file(
            &self.dir.join(".tmpfs.lock"),
            nix::fcntl::FlockArg::LockExclusive,
        )?))
    }

    /// Whether something is mounted at the volume's `_data`.
    fn mounted(&self, name: &str) -> bool {
        use std::os::unix::fs::MetadataExt;
        let data = self.data_dir(name);
        match (fs::metadata(&data), data.parent().map(fs::metadata)) {
            (Ok(d), Some(Ok(p))) => d.dev() != p.dev(),
            _ => false,
        }
    }

    /// The tmpfs of volume `v` mounted at its `_data`, the lock held: kept
    /// if live containers share it already, else (re)made, so a mount that
    /// killed runs left behind is replaced by a fresh one. True when this
    /// call mounted it.
    pub fn mount_tmpfs(
        &self,
        _lock: &TmpfsLock,
        data: &DataRoot,
        v: &Volume,
        options: &[String],
    ) -> Result<bool, Error> {
        if self.mounted(&v.name) {
            if !live_users(data, &v.name).is_empty() {
                return Ok(false);
            }
            self.unmount(&v.name)?;
        }
        let dir = self.data_dir(&v.name);
        crate::rootfs::mount_tmpfs_at(&dir, options).map_err(|source| Error::Mount {
            name: v.name.clone(),
            source,
        })?;
        Ok(true)
    }

    /// Unmount volume `name`'s tmpfs (the lock held).
    pub fn unmount_tmpfs(&self, _lock: &TmpfsLock, name: &str) -> Result<(), Error> {
        self.unmount(name)
    }

    fn unmount(&self, name: &str) -> Result<(), Error> {
        // Every layer: a killed run's, then ours, could both be there.
        while self.mounted(name) {
            crate::rootfs::unmount(&self.data_dir(name)).map_err(|source| Error::Mount {
                name: name.to_string(),
                source,
            })?;
        }
        Ok(())
    }

    /// Unmount the tmpfs of every volume among `names` (or all, with
    /// `None`) that no live container uses.
    pub fn release_tmpfs(&self, data: &DataRoot, names: Option<&[&str]>) -> Result<(), Error> {
        let mounted: Vec<String> = match names {
            Some(n) => n.iter().map(|s| s.to_string()).collect(),
            None => fs::read_dir(&self.dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
        };
        let mounted: Vec<String> = mounted.into_iter().filter(|n| self.mounted(n)).collect();
        if mounted.is_empty() {
            return Ok(());
        }
        let lock = self.lock_tmpfs()?;
        for name in mounted {
            if live_users(data, &name).is_empty() {
                self.unmount_tmpfs(&lock, &name)?;
            }
        }
        Ok(())
    }

    fn meta_path(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("volume.json")
    }

    /// Make a volume; `Exists` if it is there already.
    pub fn create(&self, mut v: Volume) -> Result<Volume, Error> {
        validate_name(&v.name)?;
        let top = self.dir.join(&v.name);
        match fs::create_dir(&top) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(v.name));
            }
            Err(e) => return Err(io_err(&top)(e).into()),
        }
        let made = (|| {
            let data = self.data_dir(&v.name);
            fs::create_dir(&data).map_err(io_err(&data))?;
            v.created_at = crate::util::rfc3339(now());
            let meta = self.meta_path(&v.name);
            let bytes = serde_json::to_vec_pretty(&v).expect("plain data");
            crate::util::replace_file(&meta, &bytes, 0o644).map_err(io_err(&meta))?;
            Ok(v)
        })();
        if made.is_err() {
            let _ = fs::remove_dir_all(&top);
        }
        made
    }

    /// The volume `name`, made now if missing (`-v NAME:/path`); true when
    /// it was made by this call.
    pub fn get_or_create(&self, name: &str) -> Result<(Volume, bool), Error> {
        match self.create(Volume {
            name: name.to_string(),
            ..Volume::default()
        }) {
            Ok(v) => Ok((v, true)),
            Err(Error::Exists(_)) => self.get(name).map(|v| (v, false)),
            Err(e) => Err(e),
        }
    }

    /// A new anonymous volume (a random 64-hex name).
    pub fn create_anonymous(&self) -> Result<Volume, Error> {
        self.create(Volume {
            name: crate::util::random_hex(32),
            anonymous: true,
            ..Volume::default()
        })
    }

    pub fn get(&self, name: &str) -> Result<Volume, Error> {
        validate_name(name).map_err(|_| Error::NoSuchVolume(name.to_string()))?;
        let meta = self.meta_path(name);
        let bytes = match fs::read(&meta) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoSuchVolume(name.to_string()));
            }
            Err(e) => return Err(io_err(&meta)(e).into()),
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            io_err(&meta)(std::io::Error::new(std::io::ErrorKind::InvalidData, e)).into()
        })
    }

    /// Every volume, by name.
    pub fn list(&self) -> Vec<Volume> {
        let mut out: Vec<Volume> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| self.get(&e.file_name().to_string_lossy()).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The containers (running or exited) whose mounts use `name`.
    pub fn users(data: &DataRoot, name: &str) -> Vec<String> {
        users_among(&data.all(), name)
    }

    /// Remove `name`: refused while a container uses it, unless `force`
    /// (docker's `-f` removes only what no container uses too; here it
    /// also skips a missing volume).
    pub fn remove(&self, data: &DataRoot, name: &str, force: bool) -> Result<(), Error> {
        let exists = self.get(name);
        if let Err(Error::NoSuchVolume(_)) = exists
            && force
        {
            return Ok(());
        }
        exists?;
        self.release_tmpfs(data, Some(&[name]))?;
        let users = Self::users(data, name);
        if !users.is_empty() {
            return Err(Error::InUse {
                name: name.to_string(),
                containers: users.join(", "),
            });
        }
        let top = self.dir.join(name);
        fs::remove_dir_all(&top).map_err(io_err(&top))?;
        Ok(())
    }

    /// Remove every volume no container uses: docker's `prune` removes the
    /// anonymous ones only unless `all`. The names removed.
    pub fn prune(&self, data: &DataRoot, all: bool) -> Vec<String> {
        let _ = self.release_tmpfs(data, None);
        let states = data.all();
        self.list()
            .into_iter()
            .filter(|v| (all || v.anonymous) && users_among(&states, &v.name).is_empty())
            .filter(|v| fs::remove_dir_all(self.dir.join(&v.name)).is_ok())
            .map(|v| v.name)
            .collect()
    }
}

/// The anonymous volumes among `mounts` (a removed container's), removed
/// unless another container uses them.
pub fn remove_anonymous(data: &DataRoot, mounts: &[MountPoint]) -> Result<(), Error> {
    let anonymous: Vec<&str> = mounts
        .iter()
        .filter(|m| m.anonymous)
        .filter_map(|m| m.name.as_deref())
        .collect();
    if anonymous.is_empty() {
        return Ok(());
    }
    let store = Store::open(data.path())?;
    for name in anonymous {
        store.remove(data, name, true)?;
    }
    Ok(())
}

/// The live containers (running, their `containr run` alive) using `name`.
fn live_users(data: &DataRoot, name: &str) -> Vec<String> {
    let live: Vec<State> = data.all().into_iter().filter(State::is_running).collect();
    users_among(&live, name)
}

fn users_among(states: &[State], name: &str) -> Vec<String> {
    states
        .iter()
        .filter(|s| s.mounts.iter().any(|m| m.name.as_deref() == Some(name)))
        .map(|s| s.name.clone())
        .collect()
}

/// `volume ls --filter`: `name=SUBSTRING`, `label=KEY[=VALUE]`,
/// `dangling=true|false`.
pub fn matches(v: &Volume, filter: &str, data_states: &[State]) -> Result<bool, Error> {
    let bad = || Error::BadFilter(filter.to_string());
    let (key, value) = filter.split_once('=').ok_or_else(bad)?;
    Ok(match key {
        "name" => v.name.contains(value),
        "label" => match value.split_once('=') {
            Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
            None => v.labels.contains_key(value),
        },
        "dangling" => {
            let dangling = users_among(data_states, &v.name).is_empty();
            match value {
                "true" | "1" => dangling,
                "false" | "0" => !dangling,
                _ => return Err(bad()),
            }
        }
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker_rules() {
        for good in ["data", "db-1", "x.y_z", "A9"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a", "-x", "./x", "a/b", "..", "a b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn opts_are_checked() {
        let o = parse_opts(&["type=tmpfs".into(), "o=size=1m,mode=700".into()]).unwrap();
        let v = Volume {
            options: o,
            ..Volume::default()
        };
        assert_eq!(
            v.tmpfs_options(),
            Some(vec!["size=1m".to_string(), "mode=700".to_string()])
        );
        assert!(parse_opts(&["type=nfs".into()]).is_err());
        assert!(parse_opts(&["color=red".into()]).is_err());
    }

    #[test]
    fn create_get_remove() {
        let dir = std::env::temp_dir().join(format!("containr-vol-{}", std::process::id()));
        let store = Store::open(&dir).unwrap();
        let data = DataRoot::open(&dir).unwrap();
        let (v, made) = store.get_or_create("web-data").unwrap();
        assert!(made && store.data_dir("web-data").is_dir());
        assert!(!store.get_or_create("web-data").unwrap().1);
        assert_eq!(store.get("web-data").unwrap(), v);
        assert!(matches!(
            store.create(v.clone()),
            Err(Error::Exists(n)) if n == "web-data"
        ));
        store.remove(&data, "web-data", false).unwrap();
        assert!(matches!(store.get("web-data"), Err(Error::NoSuchVolume(_))));
        store.remove(&data, "web-data", true).unwrap();
        let _ = fs::remove_dir_all(&dir);
    }
}

//! containr's state on the host, under its data root
//! (`/var/lib/containr` by default):
//!
//! ```text
//! containers/<id>/state.json      who owns the container, what it runs
//! containers/<id>/{hostname,hosts,resolv.conf}   bind-mounted into it
//! names/<name> -> ../containers/<id>   one symlink per name: creating a
//!                                      symlink is atomic, so two runs can
//!                                      never both get the same name
//! ```
//!
//! A container's directory belongs to the `containr run` process that made
//! it, and is removed when that process is done with it ([`ContainerDir`]'s
//! `Drop`). If that process was killed outright, its directory is left
//! behind; every later run reclaims such leftovers (the owner is identified
//! by pid *and* start time, so a recycled pid does not fool it).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("data root {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, up to 128 characters"
    )]
    BadName(String),
    #[error("the container name {name:?} is already in use by container {id}")]
    NameInUse { name: String, id: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What `state.json` records.
#[derive(Debug, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub name: String,
    /// The `containr run` process supervising the container.
    pub owner_pid: u32,
    /// Its start time (clock ticks after boot), so a reused pid is not
    /// mistaken for it.
    pub owner_start: u64,
    pub rootfs: PathBuf,
    pub command: Vec<String>,
}

/// containr's data root.
pub struct DataRoot {
    path: PathBuf,
}

impl DataRoot {
    /// Open (creating as needed) the data root at `path`.
    pub fn open(path: &Path) -> Result<DataRoot, Error> {
        for sub in ["containers", "names"] {
            let dir = path.join(sub);
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        Ok(DataRoot {
            path: path.to_path_buf(),
        })
    }

    fn containers(&self) -> PathBuf {
        self.path.join("containers")
    }

    fn names(&self) -> PathBuf {
        self.path.join("names")
    }

    /// Remove what killed `containr run` processes left behind.
    pub fn reclaim_stale(&self) {
        let Ok(entries) = fs::read_dir(self.containers()) else {
            return;
        };
        for entry in entries.flatten() {
            let dir = entry.path();
            let state: Option<State> = fs::read(dir.join("state.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            match state {
                Some(s) if process_start_time(s.owner_pid) == Some(s.owner_start) => {}
                Some(s) => {
                    remove_name_if_points_to(&self.names().join(&s.name), &s.id);
                    let _ = fs::remove_dir_all(&dir);
                }
                // A directory without a readable state may be one being made
                // right now by another run; only reclaim it once it is old.
                None => {
                    let old = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age.as_secs() > 60);
                    if old {
                        let _ = fs::remove_dir_all(&dir);
                    }
                }
            }
        }
    }

    /// Make the directory of a new container, and claim its name.
    pub fn create(
        &self,
        name: Option<&str>,
        rootfs: &Path,
        command: &[String],
    ) -> Result<ContainerDir, Error> {
        if let Some(n) = name {
            validate_name(n)?;
        }
        let id = random_id();
        let name = name.map_or_else(|| id[..12].to_string(), str::to_string);
        let path = self.containers().join(&id);
        fs::create_dir(&path).map_err(io_err(&path))?;
        let dir = ContainerDir {
            id: id.clone(),
            name: name.clone(),
            path,
            name_link: None,
        };
        let state = State {
            id: id.clone(),
            name: name.clone(),
            owner_pid: std::process::id(),
            owner_start: process_start_time(std::process::id()).unwrap_or(0),
            rootfs: rootfs.to_path_buf(),
            command: command.to_vec(),
        };
        dir.write_file(
            "state.json",
            &serde_json::to_vec_pretty(&state).expect("plain data"),
        )?;
        self.claim_name(dir, &name)
    }

    fn claim_name(&self, mut dir: ContainerDir, name: &str) -> Result<ContainerDir, Error> {
        let link = self.names().join(name);
        let target = Path::new("../containers").join(&dir.id);
        match std::os::unix::fs::symlink(&target, &link) {
            Ok(()) => {
                dir.name_link = Some(link);
                Ok(dir)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = fs::read_link(&link)
                    .ok()
                    .and_then(|t| t.file_name().map(|f| f.to_string_lossy().into_owned()))
                    .unwrap_or_default();
                Err(Error::NameInUse {
                    name: name.to_string(),
                    id: holder,
                })
            }
            Err(e) => Err(io_err(&link)(e)),
        }
    }
}

/// A container's directory under the data root; removed (with its name)
/// when dropped.
pub struct ContainerDir {
    pub id: String,
    pub name: String,
    pub path: PathBuf,
    name_link: Option<PathBuf>,
}

impl ContainerDir {
    /// Write `contents` to `file` in this directory (temp + rename, so a
    /// reader never sees half of it); returns the file's path. Not fsync'd:
    /// the directory lives no longer than the container, which a host crash
    /// ends anyway, and four fsyncs would triple the start-up time.
    pub fn write_file(&self, file: &str, contents: &[u8]) -> Result<PathBuf, Error> {
        let path = self.path.join(file);
        let tmp = self.path.join(format!(".{file}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(contents)?;
            fs::rename(&tmp, &path)
        };
        write().map_err(io_err(&path))?;
        Ok(path)
    }
}

impl Drop for ContainerDir {
    fn drop(&mut self) {
        if let Some(link) = &self.name_link {
            remove_name_if_points_to(link, &self.id);
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn remove_name_if_points_to(link: &Path, id: &str) {
    let points = fs::read_link(link)
        .ok()
        .is_some_and(|t| t.file_name().is_some_and(|f| f == id));
    if points {
        let _ = fs::remove_file(link);
    }
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<(), Error> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadName(name.to_string()))
    }
}

/// 256 random bits in hex, like docker's container ids.
fn random_id() -> String {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: the pointer and length describe the unfilled tail of bytes.
        let n = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if n > 0 {
            filled += n as usize;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Field 22 of `/proc/PID/stat`: when the process started.
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields
    // after it are counted from its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker_rules() {
        for good in ["web", "a", "db-1", "x.y_z", "A9"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", ".x", "a/b", "a b", "é", &"x".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_64_hex_and_distinct() {
        let (a, b) = (random_id(), random_id());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn own_start_time_is_readable() {
        assert!(process_start_time(std::process::id()).is_some());
    }

    #[test]
    fn directory_and_name_are_claimed_once_and_released() {
        let tmp = std::env::temp_dir().join(format!("containr-state-test-{}", random_id()));
        let root = DataRoot::open(&tmp).unwrap();
        let a = root.create(Some("web"), Path::new("/r"), &[]).unwrap();
        let err = root
            .create(Some("web"), Path::new("/r"), &[])
            .err()
            .unwrap();
        assert!(matches!(err, Error::NameInUse { ref id, .. } if *id == a.id));
        let path = a.path.clone();
        drop(a);
        assert!(!path.exists());
        let b = root.create(Some("web"), Path::new("/r"), &[]).unwrap();
        drop(b);
        assert_eq!(fs::read_dir(tmp.join("names")).unwrap().count(), 0);
        fs::remove_dir_all(&tmp).unwrap();
    }
}

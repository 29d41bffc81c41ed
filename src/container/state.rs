//! containr's state on the host, under its data root
//! (`/var/lib/containr` by default):
//!
//! ```text
//! containers/<name>.json    one file per container: who owns it, what it runs
//! ```
//!
//! The file is created with `O_CREAT|O_EXCL`, which is both the state and
//! the claim on the name: two runs can never both get the same name. One
//! inode per container is deliberate: creating files is the slowest thing
//! `run` does on some disks (1.8 ms each on the project's VMs), so the
//! `/etc` files a container sees live in memory instead (see `rootfs`).
//!
//! A container's file belongs to the `containr run` process that made it,
//! and is removed when that process is done with it ([`ContainerRecord`]'s
//! `Drop`). If that process was killed outright, its file is left behind;
//! later runs reclaim such leftovers (the owner is identified by pid *and*
//! start time, so a recycled pid does not fool it).

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
    /// Where its cgroup is, for `containr stats`.
    pub cgroup: Option<crate::cgroup::Location>,
}

/// containr's data root.
pub struct DataRoot {
    path: PathBuf,
}

impl DataRoot {
    /// Open (creating as needed) the data root at `path`.
    pub fn open(path: &Path) -> Result<DataRoot, Error> {
        let dir = path.join("containers");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(DataRoot {
            path: path.to_path_buf(),
        })
    }

    fn containers(&self) -> PathBuf {
        self.path.join("containers")
    }

    /// Remove what killed `containr run` processes left behind.
    pub fn reclaim_stale(&self) {
        let Ok(entries) = fs::read_dir(self.containers()) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                reclaim_if_stale(&path);
            }
        }
    }

    /// The record of the running container `name`, if there is one.
    pub fn find(&self, name: &str) -> Option<State> {
        validate_name(name).ok()?;
        let s = read_state(&self.containers().join(format!("{name}.json")))?;
        (process_start_time(s.owner_pid) == Some(s.owner_start)).then_some(s)
    }

    /// Claim `name` (default: the short id) for container `id` and record it.
    pub fn create(
        &self,
        id: &str,
        name: Option<&str>,
        rootfs: &Path,
        command: &[String],
        cgroup: Option<crate::cgroup::Location>,
    ) -> Result<ContainerRecord, Error> {
        if let Some(n) = name {
            validate_name(n)?;
        }
        let id = id.to_string();
        let name = name.map_or_else(|| id[..12].to_string(), str::to_string);
        let path = self.containers().join(format!("{name}.json"));
        let state = State {
            id: id.clone(),
            name: name.clone(),
            owner_pid: std::process::id(),
            owner_start: process_start_time(std::process::id()).unwrap_or(0),
            rootfs: rootfs.to_path_buf(),
            command: command.to_vec(),
            cgroup,
        };
        let mut file = match create_new(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && reclaim_if_stale(&path) => {
                create_new(&path)
            }
            other => other,
        }
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::NameInUse {
                name: name.clone(),
                id: read_state(&path).map(|s| s.id).unwrap_or_default(),
            },
            _ => io_err(&path)(e),
        })?;
        let record = ContainerRecord { id, name, path };
        file.write_all(&serde_json::to_vec_pretty(&state).expect("plain data"))
            .map_err(io_err(&record.path))?;
        Ok(record)
    }
}

impl DataRoot {
    /// The records of the containers running now, by name.
    pub fn list(&self) -> Vec<State> {
        let mut states: Vec<State> = fs::read_dir(self.containers())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| read_state(&e.path()))
            .filter(|s| process_start_time(s.owner_pid) == Some(s.owner_start))
            .collect();
        states.sort_by(|a, b| a.name.cmp(&b.name));
        states
    }
}

fn create_new(path: &Path) -> std::io::Result<fs::File> {
    fs::File::options().write(true).create_new(true).open(path)
}

fn read_state(path: &Path) -> Option<State> {
    fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// Remove the record at `path` if its owner is gone; true if removed.
fn reclaim_if_stale(path: &Path) -> bool {
    let state = read_state(path);
    let stale = match &state {
        Some(s) => process_start_time(s.owner_pid) != Some(s.owner_start),
        // Unreadable: being written right now by its owner, unless old.
        None => fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 60),
    };
    if !stale || fs::remove_file(path).is_err() {
        return false;
    }
    // Only the run that removed the record removes its cgroup.
    if let Some(location) = state.and_then(|s| s.cgroup) {
        crate::cgroup::Cgroup::remove_stale(location);
    }
    true
}

/// A container's record under the data root; removed when dropped.
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub path: PathBuf,
}

impl Drop for ContainerRecord {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
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
pub fn random_id() -> String {
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
pub fn process_start_time(pid: u32) -> Option<u64> {
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
    fn names_are_claimed_once_released_and_reclaimed() {
        let tmp = std::env::temp_dir().join(format!("containr-state-test-{}", random_id()));
        let root = DataRoot::open(&tmp).unwrap();
        let a = root
            .create(&random_id(), Some("web"), Path::new("/r"), &[], None)
            .unwrap();
        let err = root
            .create(&random_id(), Some("web"), Path::new("/r"), &[], None)
            .err()
            .unwrap();
        assert!(matches!(err, Error::NameInUse { ref id, .. } if *id == a.id));
        let path = a.path.clone();
        drop(a);
        assert!(!path.exists());
        // A record whose owner is dead (pid 0 never is a process) is
        // reclaimed by the next claim on its name.
        let b = root
            .create(&random_id(), Some("web"), Path::new("/r"), &[], None)
            .unwrap();
        let mut state = read_state(&b.path).unwrap();
        state.owner_pid = 0;
        fs::write(&b.path, serde_json::to_vec(&state).unwrap()).unwrap();
        std::mem::forget(b);
        let c = root
            .create(&random_id(), Some("web"), Path::new("/r"), &[], None)
            .unwrap();
        drop(c);
        assert_eq!(fs::read_dir(tmp.join("containers")).unwrap().count(), 0);
        fs::remove_dir_all(&tmp).unwrap();
    }
}

//! The state root (`--root`, `/run/containr-oci` by default): one directory
//! per container, named by its id, holding `state.json` (what `create`
//! recorded) and, until `start`, `exec.fifo`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;
use crate::util::{io_err, process_alive, process_is_zombie};

const STATE: &str = "state.json";
pub const FIFO: &str = "exec.fifo";

/// The status of a container, as the runtime spec (and runc's `paused`)
/// names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What `create` records about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// The container's process on the host (its init, then its user
    /// process: the same process).
    pub pid: u32,
    /// Its start time: with the pid, it names the process for good.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, UTC.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: Option<super::parts::ContainerCgroup>,
    /// The spec's hooks: `poststart` runs at start, `poststop` at delete,
    /// when the bundle may be gone.
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The container's config, for `exec`'s defaults and namespaces.
    #[serde(default)]
    pub spec: Option<oci_spec::runtime::Spec>,
}

/// The state root.
#[derive(Debug, Clone)]
pub struct Root {
    pub dir: PathBuf,
}

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root { dir: dir.into() }
    }

    /// The directory of container `id` (checked to be a plain name first).
    pub fn container_dir(&self, id: &str) -> Result<PathBuf, Error> {
        validate_id(id)?;
        Ok(self.dir.join(id))
    }

    /// Claim `id`: make its directory (the state root too, 0700, if need
    /// be). Fails if a container of that id exists.
    pub fn claim(&self, id: &str) -> Result<PathBuf, Error> {
        let dir = self.container_dir(id)?;
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io_err(&self.dir))?;
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::Exists(id.to_string()))
            }
            Err(e) => Err(io_err(&dir)(e).into()),
        }
    }

    /// The record of container `id`; `NotExist` if there is none.
    pub fn load(&self, id: &str) -> Result<Record, Error> {
        let dir = self.container_dir(id)?;
        let path = dir.join(STATE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Bundle {
                path,
                why: format!("corrupt state: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NotExist(id.to_string()))
            }
            Err(e) => Err(io_err(&path)(e).into()),
        }
    }

    /// Write the record, whole or not at all.
    pub fn save(&self, record: &Record) -> Result<(), Error> {
        let path = self.container_dir(&record.id)?.join(STATE);
        let bytes = serde_json::to_vec(record).expect("a record serialises");
        // Atomic, not durable, as runc's state.json: the state lives in
        // /run and its container does not outlive a reboot.
        crate::util::replace_file_volatile(&path, &bytes, 0o600).map_err(io_err(&path))?;
        Ok(())
    }

    /// The ids of every container, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join(STATE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        ids
    }

    /// The status of a recorded container.
    pub fn status(&self, record: &Record) -> Status {
        let pid = record.pid;
        if !process_alive(pid, record.start_time) || process_is_zombie(pid) {
            return Status::Stopped;
        }
        if self.dir.join(&record.id).join(FIFO).exists() {
            return Status::Created;
        }
        if record.cgroup.as_ref().is_some_and(|c| c.is_frozen()) {
            return Status::Paused;
        }
        Status::Running
    }

    /// Remove the directory of container `id`.
    pub fn remove(&self, id: &str) -> Result<(), Error> {
        let dir = self.container_dir(id)?;
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&dir)(e).into()),
            _ => Ok(()),
        }
    }
}

/// The state document of the runtime spec (runc's, with its extra
/// `rootfs`, `created` and `owner`).
pub fn document(record: &Record, status: Status) -> serde_json::Value {
    let pid = if status == Status::Stopped {
        0
    } else {
        record.pid
    };
    serde_json::json!({
        "ociVersion": super::SPEC_VERSION,
        "id": record.id,
        "pid": pid,
        "status": status,
        "bundle": record.bundle,
        "rootfs": record.rootfs,
        "created": record.created,
        "owner": record.owner,
        "annotations": record.annotations,
    })
}

/// runc's rule for ids: letters, digits, `_+-.`, not `.` or `..`; at most
/// 1024 bytes (they name a directory).
pub fn validate_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::BadId(id.to_string()))
    }
}

/// Where the container's fifo is.
pub fn fifo_path(dir: &Path) -> PathBuf {
    dir.join(FIFO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_names() {
        for good in ["a", "abc-1.2_x+y", "0123456789abcdef"] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }
}

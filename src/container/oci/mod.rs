//! containr as an OCI runtime: runc's lifecycle over a bundle
//! (`config.json` and a root filesystem), as podman, containerd and
//! Kubernetes drive it.
//!
//! Unlike `containr run`, no containr process stays with the container:
//!
//! 1. `create` ([`lifecycle::create`]) checks the bundle, records the
//!    container under the state root, and clones its init into the spec's
//!    namespaces and cgroup; the init ([`init`]) builds the container's
//!    world and then *blocks* opening the container's `exec.fifo` for
//!    writing. `create` returns; the init, reparented to the caller (conmon,
//!    containerd's shim), is the container's only process.
//! 2. `start` opens the fifo for reading: the init's open returns, it writes
//!    one byte and execs the user's process, which is therefore PID 1 of the
//!    container, with nothing of containr left in it.
//! 3. `state` derives the status from what is there: the process (pid and
//!    start time, so a reused pid is not mistaken for it), the fifo (present
//!    until `start`).
//! 4. `delete` removes the cgroup and the state, after `poststop` hooks.

pub mod bundle;
pub mod exec;
pub mod hooks;
pub mod init;
pub mod lifecycle;
pub mod ops;
pub(crate) mod parts;
pub mod spec;
pub mod state;

use std::path::PathBuf;

pub use lifecycle::{CreateOptions, create, delete, kill, run, start};
pub use state::{Root, Status};

/// The versions of the runtime spec whose `config.json` containr-oci reads.
pub const SPEC_VERSION: &str = "1.2.0";

/// Errors of the OCI runtime, worded as runc words them where runc has the
/// same error (podman and containerd match some of these texts).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container \"{0}\" does not exist")]
    NotExist(String),
    #[error("container with id \"{0}\" already exists")]
    Exists(String),
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.'")]
    BadId(String),
    #[error("{}: {why}", path.display())]
    Bundle { path: PathBuf, why: String },
    #[error("config.json: unknown field {0}")]
    UnknownField(String),
    #[error("config.json: ociVersion {0:?} is not supported (1.0.0 to 1.2.x)")]
    Version(String),
    #[error("config.json: {field} is not supported: {why}")]
    Unsupported { field: String, why: String },
    #[error("cannot start a container that has stopped")]
    StartStopped,
    #[error("cannot start an already {0} container")]
    StartRunning(Status),
    #[error("cannot exec in a {1} container \"{0}\"")]
    ExecIn(String, Status),
    #[error("container \"{id}\" is {status}, not {wanted}")]
    NotInState {
        id: String,
        status: Status,
        wanted: &'static str,
    },
    #[error("container \"{0}\" is not running")]
    NotRunning(String),
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped { id: String, status: Status },
    #[error("unknown signal {0:?}")]
    Signal(String),
    #[error("{kind} hook {path}: {why}")]
    Hook {
        kind: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("--console-socket {}: {source}", path.display())]
    ConsoleSocket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("process.terminal is true: {0}")]
    Terminal(&'static str),
    #[error("{0} exists: remove it first")]
    SpecExists(PathBuf),
    #[error("the container's init exited during create ({0})")]
    InitDied(i32),
    #[error("the container's process exited before start")]
    ExitedBeforeStart,
    /// What the runtime shares with `containr run`: the primitives'
    /// errors, the process's (`exec`), the init's report, I/O; worded as
    /// there.
    #[error(transparent)]
    Runtime(#[from] super::Error),
}

/// The primitives' errors (and the others `Runtime` wraps) convert with `?`
/// as they do into `container::Error`.
macro_rules! via_runtime {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::Runtime(e.into())
            }
        }
    )*};
}
via_runtime!(
    crate::namespace::Error,
    crate::cgroup::Error,
    crate::rootfs::Error,
    crate::security::Error,
    super::exec::Error,
    crate::util::PathIo
);

impl Error {
    /// The status a failed process start ends with: 126/127 when the
    /// program cannot run, 1 otherwise (runc's status for its own errors).
    pub fn status(&self) -> i32 {
        match self {
            Error::Runtime(super::Error::Exec(e)) => e.exit_code(),
            Error::Runtime(super::Error::InContainer { code, .. }) => *code,
            _ => 1,
        }
    }

    /// The init's report of why the container's process did not start.
    pub(crate) fn in_container(code: i32, message: String) -> Error {
        Error::Runtime(super::Error::InContainer { code, message })
    }

    pub(crate) fn sys(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Runtime(super::Error::sys(what)(source))
    }

    pub(crate) fn sys_nix(what: &'static str) -> impl FnOnce(nix::Error) -> Error {
        move |e| Error::Runtime(super::Error::sys_nix(what)(e))
    }

    pub(crate) fn unsupported(field: &str, why: impl Into<String>) -> Error {
        Error::Unsupported {
            field: field.to_string(),
            why: why.into(),
        }
    }
}

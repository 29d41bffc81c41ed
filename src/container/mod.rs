//! One container's lifecycle.
//!
//! Three processes take part:
//!
//! 1. the **parent**, `containr run` on the host ([`run`](mod@run)): checks the
//!    request, writes the container's state, clones the init into new
//!    namespaces, then supervises: forwards signals, relays the terminal,
//!    collects the exit status and cleans up;
//! 2. the **init**, a sealed in-memory copy of containr re-exec'd as PID 1
//!    of the new PID namespace ([`init`]): builds the container's world
//!    from its OCI runtime spec, as `containr-oci`'s init does (hostname,
//!    loopback, mounts, pivot_root), adds the terminal, then execs the
//!    command in its place (the command is PID 1, as with docker); with
//!    `--init` it forks the command instead and stays as PID 1 to reap
//!    orphans and pass signals on;
//! 3. the **command** itself, which switches user and directory and execs.
//!
//! They talk over [`channel`]: the parent sends the container's spec and
//! what the spec cannot say ([`init::RunInit`], made from the [`Config`]),
//! the init answers with the terminal, "started" or the reason it failed.
//!
//! With `run -d`, the parent is the container's [`monitor`]: a process of
//! its own, forked by the command line, which outlives it, logs the
//! container ([`logs`]), serves [`attach`] and applies the restart policy.

pub mod attach;
pub mod channel;
pub mod commit;
pub mod copy;
pub mod diff;
pub mod enter;
pub mod env;
pub mod exec;
pub mod export;
pub mod health;
pub mod init;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod mounts;
pub mod names;
pub mod oci;
pub mod pause;
pub mod resources;
pub mod run;
pub mod selfexe;
pub mod spec;
pub mod state;
pub mod stats;
pub mod top;
pub mod tty;
pub mod user;
pub mod volume;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use run::{
    Created, Exit, OomKilled, Prepared, RunOptions, Started, create, delete, prepare, run, start,
    wait,
};

/// Errors of the container lifecycle: its own, and those of the modules it
/// drives, wrapped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("rootfs {0}: no such directory")]
    RootfsMissing(PathBuf),
    #[error("rootfs {0}: not a directory")]
    RootfsNotDir(PathBuf),
    #[error("rootfs {path}: {source}")]
    RootfsAccess {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("containr run needs an IMAGE or --rootfs DIR")]
    NoImage,
    #[error("no command given: containr run --rootfs DIR COMMAND [ARG...]")]
    NoCommand,
    #[error("the working directory {0:?} is invalid: it needs to be an absolute path")]
    RelativeWorkdir(String),
    #[error("the input device is not a TTY: drop -t, or run from a terminal")]
    NotATty,
    #[error("--env-file {path}: {source}")]
    EnvFileRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Env(#[from] env::Error),
    #[error(transparent)]
    Mounts(#[from] mounts::Error),
    #[error(transparent)]
    Volume(#[from] volume::Error),
    #[error(transparent)]
    Resources(#[from] resources::Error),
    #[error(transparent)]
    Logs(#[from] logs::Error),
    #[error(transparent)]
    Attach(#[from] attach::Error),
    #[error("invalid restart policy {0:?}: expected no, always, unless-stopped or on-failure[:N]")]
    BadRestart(String),
    #[error("conflicting options: cannot specify both --restart and --rm")]
    RestartAndRm,
    #[error("invalid signal: {0}")]
    BadSignal(String),
    /// docker's words and status (1) for `exec`, `pause`, `unpause`,
    /// `kill`.
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {0} did not stop in time")]
    StopTimedOut(String),
    #[error("container {0} is paused, unpause the container before exec")]
    Paused(String),
    #[error("container {0} is already paused")]
    AlreadyPaused(String),
    #[error("container {0} is not paused")]
    NotPaused(String),
    #[error("{0}")]
    Top(String),
    #[error("{0}")]
    BadHealth(String),
    #[error("Container ID file found, make sure the other container isn't running or delete {0}")]
    CidFileExists(PathBuf),
    #[error("--filter {0:?}: expected label=KEY[=VALUE], name=NAME or status=running|exited")]
    BadFilter(String),
    #[error("--cidfile {path}: {source}")]
    CidFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    User(#[from] user::Error),
    #[error(transparent)]
    State(#[from] state::Error),
    #[error(transparent)]
    Exec(#[from] exec::Error),
    #[error(transparent)]
    Copy(#[from] copy::Error),
    #[error("container {0} has no writable layer: it runs on a --rootfs directory, not an image")]
    NoWritableLayer(String),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::Error),
    #[error(transparent)]
    Namespace(#[from] crate::namespace::Error),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::Error),
    #[error(transparent)]
    Security(#[from] crate::security::Error),
    #[error(transparent)]
    Network(#[from] crate::network::Error),
    #[error(transparent)]
    Image(#[from] crate::image::Error),
    #[error(transparent)]
    Registry(#[from] crate::registry::Error),
    /// Reported by the container's init, already worded on that side of
    /// the control channel.
    #[error("{message}")]
    InContainer { code: i32, message: String },
    #[error(transparent)]
    Io(#[from] crate::util::PathIo),
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        source: std::io::Error,
    },
}

impl From<crate::cas::Error> for Error {
    fn from(e: crate::cas::Error) -> Error {
        Error::Image(e.into())
    }
}

impl Error {
    /// The status of a container this error stopped, docker's: 126/127
    /// when its command cannot run, 125 when the runtime failed. The init
    /// reports it across the control channel; `containr` exits with it.
    pub fn status(&self) -> i32 {
        match self {
            Error::Exec(e) => e.exit_code(),
            Error::InContainer { code, .. } => *code,
            Error::NotRunning(_)
            | Error::Paused(_)
            | Error::AlreadyPaused(_)
            | Error::NotPaused(_)
            | Error::Top(_) => 1,
            _ => 125,
        }
    }

    /// Wrap a system error with what containr was doing.
    pub fn sys(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Sys { what, source }
    }

    pub fn sys_nix(what: &'static str) -> impl FnOnce(nix::Error) -> Error {
        move |e| Error::Sys {
            what,
            source: e.into(),
        }
    }
}

/// A container as the parent checked and resolved it, kept in its record:
/// its spec ([`spec::build`]) is made from it on each start, and `exec`
/// makes its processes from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub id: String,
    pub hostname: String,
    /// Absolute, canonical path of the root filesystem on the host.
    pub rootfs: PathBuf,
    /// An image's overlay, to mount on `rootfs` first.
    pub overlay: Option<crate::rootfs::overlay::Overlay>,
    pub args: Vec<String>,
    /// `KEY=VALUE`, final but for `HOME`, which depends on the user.
    pub env: Vec<String>,
    pub workdir: String,
    pub user: Option<user::UserSpec>,
    pub tty: bool,
    pub interactive: bool,
    pub readonly: bool,
    pub network: crate::network::Mode,
    /// With `--network bridge`: what the init configures on `eth0`.
    pub interface: Option<crate::network::Interface>,
    /// With `--network container:NAME`: the host pid whose netns to join.
    pub join_netns: Option<u32>,
    /// Files containr provides: (path inside the container, contents).
    pub etc_files: Vec<(String, String)>,
    /// `-v`, `--mount`, `--tmpfs`, `--volumes-from`: the spec's mounts.
    #[serde(default)]
    pub mounts: Vec<oci_spec::runtime::Mount>,
    /// (new volume's directory, destination): the image's content copied
    /// into the volume first.
    #[serde(default)]
    pub copy_up: Vec<(PathBuf, PathBuf)>,
    /// `--ulimit`: set on the command before it execs.
    #[serde(default)]
    pub rlimits: Vec<oci_spec::runtime::PosixRlimit>,
    /// `--sysctl`: namespaced ones, checked.
    #[serde(default)]
    pub sysctl: std::collections::HashMap<String, String>,
    /// `--shm-size`, bytes.
    #[serde(default)]
    pub shm_size: Option<u64>,
    /// `--oom-score-adj`.
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// `--device`: nodes made in the container's /dev.
    #[serde(default)]
    pub devices: Vec<oci_spec::runtime::LinuxDevice>,
    /// `--init`: the init stays as PID 1 and forks the command; without
    /// it, the init execs the command, which is then PID 1.
    #[serde(default)]
    pub init: bool,
    /// The container's cgroup, as it sees it at `/sys/fs/cgroup`.
    pub cgroupfs: crate::rootfs::CgroupFs,
    pub confinement: crate::security::Confinement,
    /// `--userns-remap`: the host ids container ids map to.
    pub userns: Option<crate::namespace::userns::IdMap>,
    pub reporting: crate::explain::Reporting,
    /// The walkthrough step the init numbers from.
    pub next_step: u64,
}

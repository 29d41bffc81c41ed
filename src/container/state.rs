//! containr's state on the host, under its data root
//! (`/var/lib/containr` by default):
//!
//! ```text
//! containers/<name>.json    one file per container: who owns it, what it runs, how it ended
//! containers/<id>/          its OCI bundle's config.json and the /etc files it binds
//!                           (see `spec`); a detached container's log, attach socket
//!                           and stop (or shutdown) mark; a --rm one's waiters.lock
//!                           and exit-status (while `wait` is registered on it)
//! containers.lock           flock'ed by whoever changes a record it does not own
//! ```
//!
//! The file is created with `O_CREAT|O_EXCL` (mode 0600: it holds the
//! container's environment), which is both the state and
//! the claim on the name: two containers can never both get the same name,
//! and the name stays taken until the container is removed. Creating files
//! is the slowest thing `run` does on some disks (1.8 ms each on the
//! project's VMs, synced): the record is one inode, and the container's
//! bundle (`containers/<id>/`: its spec and the `/etc` files the spec binds,
//! see `spec`) is written once and never synced (it is made from the
//! record); the `/etc` files `containr run`'s init binds live in memory
//! (see `rootfs`).
//!
//! The record also keeps the container's resolved [`Config`](super::Config)
//! (command, env, user, workdir, confinement with the compiled seccomp
//! program, rlimits, mounts...), for `exec` into it and a later `start`
//! of a kept one: read it with [`DataRoot::config`]. It cannot be known when
//! the name is claimed (the network plan needs the name), so
//! [`ContainerRecord::set_config`] rewrites the record in place once it is
//! resolved, before the container starts: no second file (each costs up to
//! 1.8 ms), one `pwrite`. A reader that catches that write half done sees
//! invalid JSON, which every reader already takes for "being written".
//!
//! A running container's record belongs to the `containr run` process that
//! made it (with `run -d`, its monitor; see `monitor`). When the container exits, that process marks the record
//! "exited" with the status ([`ContainerRecord::finish`]), or removes it
//! (`--rm`, or a run that failed: [`ContainerRecord`]'s `Drop`). If that
//! process was killed outright, the record still says "running": later
//! commands see it is stale (the owner is identified by pid *and* start
//! time, so a recycled pid does not fool them), remove its cgroup and mark
//! it exited, or remove it if it was `--rm`.

use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("data root {0}")]
    Io(#[from] crate::util::PathIo),
    #[error(
        "invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, up to 128 characters"
    )]
    BadName(String),
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse { name: String, id: String },
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("container id prefix {0:?} is ambiguous: give more of it, or the name")]
    Ambiguous(String),
    #[error(
        "cannot remove container \"/{0}\": container is running: stop the container before removing or force remove (-f)"
    )]
    Running(String),
    #[error(
        "container {0}: no configuration recorded (made by an older containr, or still being created)"
    )]
    NoConfig(String),
    #[error("container {0} is already running")]
    AlreadyStarted(String),
    #[error("Renaming a container with the same name as its current name")]
    SameName,
    #[error("container {name}: {what}: {source}")]
    Kill {
        name: String,
        what: &'static str,
        source: std::io::Error,
    },
}

use crate::util::{io_err, now, parent_of, process_alive, process_start_time};

/// The exit status recorded for a container whose `containr run` was
/// killed before it could record one: its init died of `PR_SET_PDEATHSIG`'s
/// SIGKILL, so 128 + 9.
pub const KILLED_RUN_STATUS: i32 = 137;

/// Where a container is in its life (docker's names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made by `containr create`, its init waiting for `start`.
    Created,
    #[default]
    Running,
    /// Its monitor waits out the restart policy's back-off.
    Restarting,
    Exited,
}

/// `--restart`: what the monitor does when the container exits (docker's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    /// Restart after a non-zero exit, at most `max` times (0: no limit).
    OnFailure {
        max: u32,
    },
    Always,
    UnlessStopped,
}

/// What the detached lifecycle adds to a record: how the container is
/// stopped, restarted and logged, and when it last started. All default
/// for records written before it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Life {
    #[serde(default)]
    pub restart: RestartPolicy,
    #[serde(default)]
    pub restart_count: u32,
    /// `--log-driver` (`json-file` or `none`); none for an attached run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_driver: Option<String>,
    /// `--stop-signal`, or the image's `StopSignal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `--stop-timeout`, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u32>,
    /// When its command last started, in nanoseconds since the epoch.
    #[serde(default)]
    pub started_ns: Option<i64>,
    /// When it last exited, in nanoseconds since the epoch.
    #[serde(default)]
    pub finished_ns: Option<i64>,
    /// Why it could not start (`inspect`'s `State.Error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The kernel's OOM killer ended it.
    #[serde(default)]
    pub oom_killed: bool,
    /// `--log-opt`, as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_opts: Vec<String>,
    /// Its cgroup limits and network flags, to make it again (`start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<crate::cgroup::Limits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::network::Options>,
    /// Its health check, and the last results (`inspect`'s `State.Health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<super::health::HealthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::health::Health>,
    /// `--cgroup-parent`, as given (checked): a container made again is
    /// placed under it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
}

/// What a container's record holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// The image it runs, as named on the command line (none with `--rootfs`).
    #[serde(default)]
    pub image: Option<String>,
    /// That image's id (`sha256:` and its config's digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// `--rm`: removed, not kept, when it exits.
    #[serde(default)]
    pub auto_remove: bool,
    /// Seconds since the epoch.
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub status: Status,
    /// Once exited: its status (the command's, or 128+N).
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Once exited: when, in seconds since the epoch.
    #[serde(default)]
    pub finished: Option<i64>,
    /// `--userns-remap`: container ids are host ids from `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns: Option<crate::namespace::userns::IdMap>,
    /// Its volumes, binds and tmpfs mounts (`inspect`'s `Mounts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<super::mounts::MountPoint>,
    /// `--label`, `--label-file`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Restart policy, logs, stop signal, start and end times.
    #[serde(default)]
    pub life: Life,
    /// The directory the record was read from (`containers/`).
    #[serde(skip)]
    record_dir: PathBuf,
    /// `-p`: its published ports (`containr port`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<crate::network::ports::PortSpec>,
    /// What its init was sent: set once resolved ([`ContainerRecord::set_config`]).
    /// Last, so the rewrite that adds it leaves the bytes before it as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Box<super::Config>>,
}

impl State {
    /// Whether the `containr run` that owns the record is still alive.
    fn owner_alive(&self) -> bool {
        process_alive(self.owner_pid, self.owner_start)
    }

    pub fn is_running(&self) -> bool {
        self.status == Status::Running && self.owner_alive()
    }

    /// Its owner is alive: running, restarting, or created and waiting.
    pub fn is_live(&self) -> bool {
        self.status != Status::Exited && self.owner_alive()
    }

    /// Running (or about to) per the record, but its owner is gone. (A
    /// created container waits for `start` with no owner.)
    fn is_stale(&self) -> bool {
        matches!(self.status, Status::Running | Status::Restarting) && !self.owner_alive()
    }

    /// Host pid of a running container's init: the only child of its
    /// `containr run`.
    pub fn init_pid(&self) -> Option<u32> {
        if !self.is_running() {
            return None;
        }
        let owner = self.owner_pid;
        fs::read_to_string(format!("/proc/{owner}/task/{owner}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Send `sig` to a running container's init (which passes it on to
    /// the command; SIGKILL ends it all); the init's pidfd, to wait on, or
    /// none if the container is not running.
    pub fn signal_init(&self, sig: i32) -> Result<Option<OwnedFd>, Error> {
        let err = |what| {
            let name = self.name.clone();
            move |source| Error::Kill { name, what, source }
        };
        let Some(pid) = self.init_pid() else {
            return Ok(None);
        };
        // Checked *after* the pidfd is opened, so the pidfd is known to be
        // the right process even if the pid was reused.
        let init = pidfd_open(pid).map_err(err("pidfd_open"))?;
        if parent_of(pid) != Some(self.owner_pid) {
            return Ok(None);
        }
        // SAFETY: a pidfd we own and a valid signal; no siginfo.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                init.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(err("sending a signal")(e));
            }
        }
        Ok(Some(init))
    }

    /// SIGKILL a running container (its init, and so all of it), and wait
    /// for its `containr run` to finish cleaning up after it.
    pub fn kill_and_wait(&self) -> Result<(), Error> {
        let err = |what| {
            let name = self.name.clone();
            move |source| Error::Kill { name, what, source }
        };
        // Opened before the owner is checked, so it is the right process.
        let owner = pidfd_open(self.owner_pid).map_err(err("pidfd_open"))?;
        if !self.owner_alive() {
            return Ok(());
        }
        // No restart after this (the monitor looks before restarting).
        mark_stopped(&self.dir());
        if self.signal_init(libc::SIGKILL)?.is_some() {
            // A paused container acts on it once thawed (docker's order).
            super::pause::thaw(self);
        }
        // A pidfd polls readable when its process has exited.
        match wait_pidfd(&owner, 10_000) {
            Ok(true) => Ok(()),
            Ok(false) => Err(err("waiting for its containr run to exit")(
                std::io::ErrorKind::TimedOut.into(),
            )),
            Err(e) => Err(err("waiting for its containr run to exit")(e)),
        }
    }

    /// Its directory (logs, markers): `containers/<id>/`, beside the record.
    pub fn dir(&self) -> PathBuf {
        self.record_dir.join(&self.id)
    }
}

/// Whether the process of `pidfd` exited within `ms` milliseconds.
pub fn wait_pidfd(pidfd: &OwnedFd, ms: u32) -> std::io::Result<bool> {
    let mut fds = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(pidfd),
        nix::poll::PollFlags::POLLIN,
    )];
    let timeout = nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX);
    loop {
        match nix::poll::poll(&mut fds, timeout) {
            Ok(n) => return Ok(n > 0),
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The name of the file that says the container was stopped by the user:
/// its restart policy must not bring it back (docker's "stop is
/// remembered").
const STOPPED_MARK: &str = "stopped";

/// Remember that the container of `dir` was stopped on purpose; only
/// containers with a directory (detached ones) have a policy to heed it.
pub fn mark_stopped(dir: &Path) {
    if dir.is_dir() {
        let _ = fs::write(dir.join(STOPPED_MARK), b"");
    }
}

/// The name of the file that says the host's shutdown stopped the
/// container (`containr boot --shutdown`): no restart now, but the next
/// boot brings it back as its policy says, `unless-stopped` included.
const SHUTDOWN_MARK: &str = "shutdown";

/// Remember that the host's shutdown stopped the container of `dir`.
pub fn mark_shut_down(dir: &Path) {
    if dir.is_dir() {
        let _ = fs::write(dir.join(SHUTDOWN_MARK), b"");
    }
}

/// Whether the container of `dir` was stopped on purpose, by the user or
/// the host's shutdown: its monitor must not restart it.
pub fn was_stopped(dir: &Path) -> bool {
    dir.join(STOPPED_MARK).exists() || dir.join(SHUTDOWN_MARK).exists()
}

/// Whether the user stopped the container of `dir` (`containr stop`):
/// a boot does not bring an `unless-stopped` one back.
pub fn stopped_by_user(dir: &Path) -> bool {
    dir.join(STOPPED_MARK).exists()
}

/// Forget a stop (the container is started again).
pub fn clear_stopped(dir: &Path) {
    let _ = fs::remove_file(dir.join(STOPPED_MARK));
    let _ = fs::remove_file(dir.join(SHUTDOWN_MARK));
}

/// A `--rm` container's record goes with it, and its exit status with the
/// record: `wait` registers as a waiter first (a shared `flock` on this
/// file in its directory), and the owner, before it removes the record,
/// leaves the status in [`EXIT_STATUS`] and takes the lock exclusively,
/// which it gets once every waiter has read the status and let go.
const WAITERS: &str = "waiters.lock";
const EXIT_STATUS: &str = "exit-status";

/// How long an owner waits for the waiters of a `--rm` container to read
/// its status (they poll for it every 20 ms).
const WAITERS_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The owner's side: leave `status` in `dir` for the waiters registered
/// there and wait (bounded) until they have it. Without a directory (an
/// attached `run --rm` nobody waits on) this is one failed `open`.
fn hand_status_to_waiters(dir: &Path, status: i32) {
    // The status first: a waiter registered after we look for the lock
    // file finds it.
    if fs::write(dir.join(EXIT_STATUS), status.to_string()).is_err() {
        return;
    }
    let Ok(mut lock) = fs::File::open(dir.join(WAITERS)) else {
        return;
    };
    let deadline = std::time::Instant::now() + WAITERS_GRACE;
    loop {
        match nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(_) => return,
            Err((f, nix::errno::Errno::EAGAIN)) if std::time::Instant::now() < deadline => {
                lock = f;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(_) => return,
        }
    }
}

/// `wait` on a live `--rm` container: registered with its owner, which
/// leaves the exit status for it before removing the record.
pub struct Waiter {
    dir: PathBuf,
    records: PathBuf,
    id: String,
    _lock: nix::fcntl::Flock<fs::File>,
}

impl Waiter {
    /// Register on the container `s` (making its directory if an attached
    /// run has none); none if it is already gone.
    pub fn register(s: &State) -> Option<Waiter> {
        let dir = s.dir();
        let _ = fs::create_dir(&dir);
        let lock =
            crate::util::lock_file(&dir.join(WAITERS), nix::fcntl::FlockArg::LockShared).ok()?;
        Some(Waiter {
            dir,
            records: s.record_dir.clone(),
            id: s.id.clone(),
            _lock: lock,
        })
    }

    /// The status its owner left, once it has.
    pub fn status(&self) -> Option<i32> {
        fs::read_to_string(self.dir.join(EXIT_STATUS))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        // Registered as (or after) the owner removed the container: what
        // we made is ours to remove.
        let gone = !(fs::read_dir(&self.records).into_iter().flatten().flatten())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .any(|e| read_state(&e.path()).is_some_and(|s| s.id == self.id));
        if gone {
            remove_dir(&self.dir);
        }
    }
}

pub(crate) fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the fd was just returned by the kernel and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// What `containr run` records about a new container.
pub struct NewContainer<'a> {
    pub id: &'a str,
    /// Default: the short id.
    pub name: Option<&'a str>,
    pub rootfs: &'a Path,
    pub command: &'a [String],
    pub cgroup: Option<crate::cgroup::Location>,
    pub image: Option<&'a str>,
    pub image_id: Option<String>,
    pub auto_remove: bool,
    pub userns: Option<crate::namespace::userns::IdMap>,
    pub mounts: Vec<super::mounts::MountPoint>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub life: Life,
    pub ports: Vec<crate::network::ports::PortSpec>,
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

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn containers(&self) -> PathBuf {
        self.path.join("containers")
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.containers().join(format!("{name}.json"))
    }

    /// Held while changing a record its owner is not there to change:
    /// reclaiming a stale one, removing one.
    fn lock(&self) -> Result<nix::fcntl::Flock<fs::File>, Error> {
        Ok(crate::util::lock_file(
            &self.path.join("containers.lock"),
            nix::fcntl::FlockArg::LockExclusive,
        )?)
    }

    /// Settle what killed `containr run` processes left behind.
    pub fn reclaim_stale(&self) {
        for path in self.record_paths() {
            self.reclaim_if_stale(&path);
        }
    }

    /// The ids of `run --rm` containers whose `containr run` was killed:
    /// what they left (a writable layer) is for the next command to
    /// reclaim. Read only: nothing is settled here.
    pub fn killed_auto_remove_ids(&self) -> Vec<String> {
        self.record_paths()
            .iter()
            .filter_map(|p| read_state(p))
            .filter(|s| s.auto_remove && s.is_stale())
            .map(|s| s.id)
            .collect()
    }

    /// The ids of every record, as they are (nothing settled).
    pub fn record_ids(&self) -> Vec<String> {
        self.record_paths()
            .iter()
            .filter_map(|p| read_state(p))
            .map(|s| s.id)
            .collect()
    }

    /// The ids of the containers running now, as their records are
    /// (nothing settled: a record whose owner is gone is not running).
    pub fn running_ids(&self) -> Vec<String> {
        self.record_paths()
            .iter()
            .filter_map(|p| read_state(p))
            .filter(State::is_running)
            .map(|s| s.id)
            .collect()
    }

    fn record_paths(&self) -> Vec<PathBuf> {
        fs::read_dir(self.containers())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect()
    }

    /// Claim the container's name and record it.
    pub fn create(&self, new: NewContainer<'_>) -> Result<ContainerRecord, Error> {
        if let Some(n) = new.name {
            validate_name(n)?;
        }
        let id = new.id.to_string();
        // A name given is claimed or refused; without one, docker-like
        // names are tried, then the short id.
        let candidates: Vec<String> = match new.name {
            Some(n) => vec![n.to_string()],
            None => super::names::candidates(&id)
                .chain(std::iter::once(id[..12].to_string()))
                .collect(),
        };
        let mut taken = None;
        let mut claimed = None;
        for name in candidates {
            let path = self.record_path(&name);
            let made = match create_new(&path) {
                Err(e)
                    if e.kind() == std::io::ErrorKind::AlreadyExists
                        && self.reclaim_if_stale(&path) =>
                {
                    create_new(&path)
                }
                other => other,
            };
            match made {
                Ok(file) => {
                    claimed = Some((name, path, file));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let id = read_state(&path).map(|s| s.id).unwrap_or_default();
                    taken = Some(Error::NameInUse { name, id });
                }
                Err(e) => return Err(io_err(&path)(e).into()),
            }
        }
        let Some((name, path, mut file)) = claimed else {
            return Err(taken.expect("one name was tried"));
        };
        let state = State {
            id: id.clone(),
            name: name.clone(),
            owner_pid: std::process::id(),
            owner_start: process_start_time(std::process::id()).unwrap_or(0),
            rootfs: new.rootfs.to_path_buf(),
            command: new.command.to_vec(),
            cgroup: new.cgroup,
            image: new.image.map(str::to_string),
            image_id: new.image_id,
            auto_remove: new.auto_remove,
            created: now(),
            status: Status::Running,
            exit_code: None,
            finished: None,
            userns: new.userns,
            mounts: new.mounts,
            labels: new.labels,
            life: new.life,
            record_dir: self.containers(),
            ports: new.ports,
            config: None,
        };
        let mut record = ContainerRecord {
            id,
            name,
            path,
            state,
            file: None,
        };
        file.write_all(&serde_json::to_vec_pretty(&record.state).expect("plain data"))
            .map_err(io_err(&record.path))?;
        record.file = Some(file);
        Ok(record)
    }

    /// The records of the containers running now, by name.
    pub fn list(&self) -> Vec<State> {
        let mut states: Vec<State> = self.all().into_iter().filter(State::is_running).collect();
        states.sort_by(|a, b| a.name.cmp(&b.name));
        states
    }

    /// Every container's record, stale ones settled first; newest first,
    /// as `docker ps` lists them.
    pub fn all(&self) -> Vec<State> {
        self.reclaim_stale();
        let mut states: Vec<State> = self
            .record_paths()
            .iter()
            .filter_map(|p| read_state(p))
            .collect();
        states.sort_by(|a, b| b.created.cmp(&a.created).then(a.name.cmp(&b.name)));
        states
    }

    /// The container called `name`, or whose id is or starts with `name`.
    pub fn lookup(&self, name: &str) -> Result<State, Error> {
        if validate_name(name).is_ok()
            && let Some(s) = read_state(&self.record_path(name))
        {
            self.reclaim_if_stale(&self.record_path(name));
            return Ok(read_state(&self.record_path(name)).unwrap_or(s));
        }
        let all = self.all();
        if let Some(s) = all.iter().find(|s| s.id == name) {
            return Ok(s.clone());
        }
        let mut matches = all.into_iter().filter(|s| s.id.starts_with(name));
        match (matches.next(), matches.next()) {
            (Some(s), None) if !name.is_empty() => Ok(s),
            (Some(_), Some(_)) => Err(Error::Ambiguous(name.to_string())),
            _ => Err(Error::NoSuchContainer(name.to_string())),
        }
    }

    /// The container `name` (or id) and the configuration its init was sent.
    pub fn config(&self, name: &str) -> Result<(State, super::Config), Error> {
        let mut state = self.lookup(name)?;
        match state.config.take() {
            Some(config) => Ok((state, *config)),
            None => Err(Error::NoConfig(state.name)),
        }
    }

    /// Take over the record of the stopped (or created) container `name`
    /// to start it again: this process becomes its owner.
    pub fn adopt(&self, name: &str) -> Result<ContainerRecord, Error> {
        let found = self.lookup(name)?;
        let _lock = self.lock()?;
        let path = self.record_path(&found.name);
        let mut state = read_state(&path)
            .filter(|s| s.id == found.id)
            .ok_or_else(|| Error::NoSuchContainer(name.to_string()))?;
        if state.is_live() {
            return Err(Error::AlreadyStarted(state.name));
        }
        state.owner_pid = std::process::id();
        state.owner_start = process_start_time(state.owner_pid).unwrap_or(0);
        state.status = Status::Running;
        state.life.error = None;
        write_atomic(&path, &state)?;
        Ok(ContainerRecord {
            id: state.id.clone(),
            name: state.name.clone(),
            path,
            state,
            file: None,
        })
    }

    /// The running container `name` (or id), if there is one.
    pub fn find(&self, name: &str) -> Option<State> {
        self.lookup(name).ok().filter(State::is_running)
    }

    /// Remove the record of the stopped container `state`; its cgroup too
    /// if its `containr run` was killed before it could.
    pub fn remove(&self, state: &State) -> Result<(), Error> {
        let _lock = self.lock()?;
        let path = self.record_path(&state.name);
        let current = read_state(&path)
            .filter(|s| s.id == state.id)
            .ok_or_else(|| Error::NoSuchContainer(state.name.clone()))?;
        if current.is_live() {
            return Err(Error::Running(state.name.clone()));
        }
        fs::remove_file(&path).map_err(io_err(&path))?;
        remove_dir(&current.dir());
        if current.is_stale()
            && let Some(location) = current.cgroup
        {
            super::pause::remove_freezer(&current.id, &location);
            crate::cgroup::Cgroup::remove_stale(location);
        }
        Ok(())
    }

    /// `containr rename OLD NEW`. The new record is written whole beside
    /// the old, then moved to its name with `RENAME_NOREPLACE`, which is
    /// the claim on the new name (as `O_EXCL` is for `create`): a taken
    /// name is refused, whoever took it. The old name is released last.
    /// A running container is not disturbed: its owner finds its record
    /// by id when it finishes ([`ContainerRecord::finish`]).
    pub fn rename(&self, old: &str, new: &str) -> Result<(), Error> {
        validate_name(new)?;
        let state = self.lookup(old)?;
        if state.name == new {
            return Err(Error::SameName);
        }
        let _lock = self.lock()?;
        let old_path = self.record_path(&state.name);
        let mut current = read_state(&old_path)
            .filter(|s| s.id == state.id)
            .ok_or_else(|| Error::NoSuchContainer(old.to_string()))?;
        current.name = new.to_string();
        let new_path = self.record_path(new);
        let tmp = self
            .containers()
            .join(format!(".tmp-{}", crate::util::random_name()));
        let bytes = serde_json::to_vec_pretty(&current).expect("plain data");
        crate::util::replace_file(&tmp, &bytes, 0o644).map_err(io_err(&tmp))?;
        match nix::fcntl::renameat2(
            None,
            &tmp,
            None,
            &new_path,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => {}
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                if e == nix::errno::Errno::EEXIST {
                    let id = read_state(&new_path).map(|s| s.id).unwrap_or_default();
                    return Err(Error::NameInUse {
                        name: new.to_string(),
                        id,
                    });
                }
                return Err(io_err(&new_path)(e.into()).into());
            }
        }
        fs::remove_file(&old_path).map_err(io_err(&old_path))?;
        Ok(())
    }

    /// Settle the record at `path` if its owner is gone without saying how
    /// the container ended; true if the record is gone (its name free).
    fn reclaim_if_stale(&self, path: &Path) -> bool {
        match read_state(path) {
            Some(s) if s.is_stale() => {}
            Some(_) => return false,
            // Unreadable: being written right now by its owner, unless old.
            None => {
                let old = fs::metadata(path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() > 60);
                return old && fs::remove_file(path).is_ok();
            }
        }
        let Ok(_lock) = self.lock() else {
            return false;
        };
        // Read again under the lock: another command may have settled or
        // removed it meanwhile.
        let Some(mut state) = read_state(path).filter(State::is_stale) else {
            return !path.exists();
        };
        if let Some(location) = state.cgroup.clone() {
            super::pause::remove_freezer(&state.id, &location);
            crate::cgroup::Cgroup::remove_stale(location);
        }
        if state.auto_remove {
            // Its writable layer too, which the killed run could not remove.
            let _ = crate::image::layers::remove(&self.path, &state.id);
            remove_dir(&state.dir());
            return fs::remove_file(path).is_ok();
        }
        state.status = Status::Exited;
        state.exit_code = Some(KILLED_RUN_STATUS);
        state.finished = Some(now());
        state.life.finished_ns = Some(now_ns());
        state.life.error = Some("its monitor (or containr run) was killed".into());
        let _ = write_atomic(path, &state);
        false
    }
}

/// Remove a container's directory, if it has one.
fn remove_dir(dir: &Path) {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => {}
    }
}

/// Nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn create_new(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::File::options()
        .write(true)
        .create_new(true)
        .mode(RECORD_MODE)
        .open(path)
}

/// Records hold the container's environment (secrets, often): root's only.
const RECORD_MODE: u32 = 0o600;

fn read_state(path: &Path) -> Option<State> {
    let mut state: State = fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())?;
    state.record_dir = path.parent()?.to_path_buf();
    Some(state)
}

/// Replace the record at `path` whole and durably: readers, and a host
/// after a crash, see the old one or the new (a kept container must not
/// lose its record while its writable layer, flushed at exit, stays).
fn write_atomic(path: &Path, state: &State) -> Result<(), Error> {
    let bytes = serde_json::to_vec_pretty(state).expect("plain data");
    Ok(crate::util::replace_file(path, &bytes, RECORD_MODE).map_err(io_err(path))?)
}

/// A running container's record under the data root: removed when
/// dropped, unless [`ContainerRecord::finish`] keeps it.
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub path: PathBuf,
    state: State,
    /// The record's file, as created, for [`ContainerRecord::set_config`].
    file: Option<fs::File>,
}

impl ContainerRecord {
    /// The mounts recorded for it.
    pub fn mounts(&self) -> &[super::mounts::MountPoint] {
        &self.state.mounts
    }

    /// The kernel's OOM killer ended it (written with the exit status).
    pub fn note_oom_killed(&mut self) {
        self.state.life.oom_killed = true;
    }

    /// What the record says now.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Change the record (its owner's right) and write it.
    pub fn update(&mut self, change: impl FnOnce(&mut State)) -> Result<(), Error> {
        // Renamed meanwhile (`containr rename`): found by id, its new name
        // kept, as `finish` does.
        let _lock = self.lock();
        let path = self.current_path().unwrap_or_else(|| self.path.clone());
        if let Some(current) = read_state(&path).filter(|s| s.id == self.id) {
            self.state.name = current.name;
        }
        change(&mut self.state);
        // Replaced, not rewritten: the file as created is no longer it.
        self.file = None;
        write_atomic(&path, &self.state)?;
        self.path = path;
        Ok(())
    }

    /// Its directory (logs, markers), created on first use.
    pub fn dir(&self) -> Result<PathBuf, Error> {
        let dir = self.state.dir();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(dir)
    }

    /// Record the container's resolved configuration: the record is
    /// rewritten in place (see the module's documentation).
    pub fn set_config(&mut self, config: &super::Config) -> Result<(), Error> {
        use std::os::unix::fs::FileExt;
        self.state.config = Some(Box::new(config.clone()));
        let bytes = serde_json::to_vec_pretty(&self.state).expect("plain data");
        let file = match &self.file {
            Some(f) => f,
            None => &fs::File::options()
                .write(true)
                .open(&self.path)
                .map_err(io_err(&self.path))?,
        };
        file.write_all_at(&bytes, 0).map_err(io_err(&self.path))?;
        // Longer than the record without it, always: nothing to truncate.
        debug_assert!(file.metadata().is_ok_and(|m| m.len() == bytes.len() as u64));
        Ok(())
    }

    /// The container was made but is not to run yet (`containr create`):
    /// kept, marked created, with no owner until `start` adopts it.
    pub fn park(mut self) -> Result<(), Error> {
        self.update(|s| s.status = Status::Created)?;
        self.path = PathBuf::new();
        Ok(())
    }

    /// The container exited with `status`: unless it is `--rm`, keep the
    /// record, marked exited. Dropped otherwise (removed).
    pub fn finish(mut self, status: i32) -> Result<(), Error> {
        if self.state.auto_remove {
            hand_status_to_waiters(&self.state.dir(), status);
            return Ok(());
        }
        // Renamed meanwhile (`containr rename`): the record is found by id,
        // and keeps its new name.
        let _lock = self.lock();
        let path = self.current_path().unwrap_or_else(|| self.path.clone());
        if let Some(current) = read_state(&path).filter(|s| s.id == self.id) {
            self.state.name = current.name;
        }
        self.state.status = Status::Exited;
        self.state.exit_code = Some(status);
        self.state.finished = Some(now());
        self.state.life.finished_ns = Some(now_ns());
        write_atomic(&path, &self.state)?;
        // Kept: nothing left for Drop to remove.
        self.path = PathBuf::new();
        Ok(())
    }
}

impl ContainerRecord {
    /// Where the record is now: under its name, or another one if it was
    /// renamed; `None` if it is gone.
    fn current_path(&self) -> Option<PathBuf> {
        if read_state(&self.path).is_some_and(|s| s.id == self.id) {
            return Some(self.path.clone());
        }
        let dir = self.path.parent()?;
        fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .find(|p| read_state(p).is_some_and(|s| s.id == self.id))
    }

    /// The data root's lock, as [`DataRoot::lock`] takes it.
    fn lock(&self) -> Option<nix::fcntl::Flock<fs::File>> {
        let root = self.path.parent()?.parent()?;
        DataRoot {
            path: root.to_path_buf(),
        }
        .lock()
        .ok()
    }
}

impl Drop for ContainerRecord {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _lock = self.lock();
            if let Some(path) = self.current_path() {
                let _ = fs::remove_file(path);
            }
            // Its bundle (config.json), and a detached one's logs.
            remove_dir(&self.state.dir());
        }
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

    fn new(name: &str, auto_remove: bool) -> NewContainer<'static> {
        NewContainer {
            id: Box::leak(crate::util::random_hex(32).into_boxed_str()),
            name: Some(Box::leak(name.to_string().into_boxed_str())),
            rootfs: Path::new("/r"),
            command: &[],
            cgroup: None,
            image: None,
            image_id: None,
            auto_remove,
            userns: None,
            mounts: Vec::new(),
            labels: Default::default(),
            life: Default::default(),
            ports: Vec::new(),
        }
    }

    #[test]
    fn names_stay_claimed_until_the_container_is_removed() {
        let tmp = std::env::temp_dir().join(format!(
            "containr-state-test-{}",
            crate::util::random_hex(32)
        ));
        let root = DataRoot::open(&tmp).unwrap();
        let a = root.create(new("web", false)).unwrap();
        let err = root.create(new("web", false)).err().unwrap();
        assert!(matches!(err, Error::NameInUse { ref id, .. } if *id == a.id));
        let id = a.id.clone();
        // No configuration until the run records one.
        assert!(matches!(root.config("web"), Err(Error::NoConfig(ref n)) if n == "web"));
        // Exited, it is kept, and still has the name.
        a.finish(3).unwrap();
        let s = root.lookup("web").unwrap();
        assert_eq!((s.status, s.exit_code), (Status::Exited, Some(3)));
        assert!(!s.is_running());
        assert_eq!(root.lookup(&id[..6]).unwrap().name, "web");
        assert!(matches!(
            root.create(new("web", false)),
            Err(Error::NameInUse { .. })
        ));
        root.remove(&s).unwrap();
        assert!(matches!(root.lookup("web"), Err(Error::NoSuchContainer(_))));
        // --rm: gone when it exits.
        let b = root.create(new("web", true)).unwrap();
        let path = b.path.clone();
        b.finish(0).unwrap();
        assert!(!path.exists());
        fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn an_rm_container_s_status_waits_for_its_waiters() {
        let tmp = std::env::temp_dir().join(format!(
            "containr-state-test-{}",
            crate::util::random_hex(32)
        ));
        let root = DataRoot::open(&tmp).unwrap();
        let record = root.create(new("brief", true)).unwrap();
        let waiter = Waiter::register(&root.lookup("brief").unwrap()).unwrap();
        assert_eq!(waiter.status(), None);
        // Its owner finishes it: the record stays until the waiter had
        // the status and let go.
        let owner = std::thread::spawn(move || record.finish(7).unwrap());
        let t0 = std::time::Instant::now();
        while waiter.status().is_none() {
            assert!(t0.elapsed() < WAITERS_GRACE, "no status left");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(waiter.status(), Some(7));
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(root.lookup("brief").is_ok(), "removed before we had it");
        drop(waiter);
        owner.join().unwrap();
        assert!(matches!(
            root.lookup("brief"),
            Err(Error::NoSuchContainer(_))
        ));
        assert_eq!(fs::read_dir(root.containers()).unwrap().count(), 0);
        fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn records_of_killed_runs_are_settled() {
        let tmp = std::env::temp_dir().join(format!(
            "containr-state-test-{}",
            crate::util::random_hex(32)
        ));
        let root = DataRoot::open(&tmp).unwrap();
        // Records whose owner is dead (pid 0 never is a process): kept as
        // exited, or removed if --rm.
        for (name, rm) in [("kept", false), ("gone", true)] {
            let r = root.create(new(name, rm)).unwrap();
            let mut state = read_state(&r.path).unwrap();
            state.owner_pid = 0;
            fs::write(&r.path, serde_json::to_vec(&state).unwrap()).unwrap();
            std::mem::forget(r);
        }
        let all = root.all();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].name, "kept");
        assert_eq!(all[0].status, Status::Exited);
        assert_eq!(all[0].exit_code, Some(KILLED_RUN_STATUS));
        assert!(root.list().is_empty());
        // The --rm one's name is free again.
        drop(root.create(new("gone", false)).unwrap());
        root.remove(&all[0]).unwrap();
        assert_eq!(root.record_paths().len(), 0);
        fs::remove_dir_all(&tmp).unwrap();
    }
}

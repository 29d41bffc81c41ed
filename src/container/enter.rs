//! `containr exec`: one more process in a running container, in all its
//! namespaces and its cgroup, confined as the container's command is (its
//! capabilities, seccomp program, no_new_privs, rlimits), with its
//! environment, user and working directory unless told otherwise, all from
//! the configuration its record keeps ([`DataRoot::config`]).
//!
//! A process joins a PID namespace only through its children, so it takes
//! two, as with `containr-oci exec`: `exec` clones a helper from a sealed
//! copy of containr (it will be in the container's namespaces, where
//! `/proc/PID/exe` must not lead to the host's binary: CVE-2019-5736) into
//! the container's cgroup; the helper joins the container's namespaces
//! (`join_and_fork`: `setns` on a pidfd of the container's init, all at
//! once) and forks the process as `exec`'s own child (`CLONE_PARENT`). The
//! process resolves its user and program in the container, and execs with
//! nothing but stdio open (CVE-2024-21626: joining the mount namespace put
//! its root and working directory in the container's root first).

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::channel::{Channel, Message};
use super::state::{DataRoot, State};
use super::{Config, Error, env, init, run, selfexe, tty};
use crate::explain::{self, Reporting};
use crate::namespace::{self, ChildExec};

/// `exec`'s options, as docker's.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub args: Vec<String>,
    /// `-d`: return once the process runs.
    pub detach: bool,
    pub interactive: bool,
    pub tty: bool,
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    /// `-u USER[:GROUP]`: else the container's.
    pub user: Option<String>,
    /// `-w DIR`: else the container's.
    pub workdir: Option<String>,
    /// Every capability, no seccomp filter.
    pub privileged: bool,
}

/// What `exec` sends the helper it clones.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecConfig {
    /// The container's init, whose namespaces to join, and its start time.
    pub pid: u32,
    pub start_time: u64,
    /// `CLONE_NEW*` of the namespaces to join.
    pub namespaces: i32,
    /// The process: the container's configuration with `exec`'s changes.
    pub process: Config,
    pub detach: bool,
}

/// Why `join_and_fork` failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the container's process exited")]
    Gone,
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        source: std::io::Error,
    },
}

/// Run a process in the running container `name`: with `detach`, return
/// once it runs (0), else relay its terminal and signals and return its
/// status.
pub fn exec(
    root: &Path,
    name: &str,
    opts: &ExecOptions,
    reporting: &Reporting,
) -> Result<i32, Error> {
    let (state, config) = DataRoot::open(root)?.config(name)?;
    let (pid, start_time) = running_init(&state)?;
    if super::pause::is_paused(&state) {
        return Err(Error::Paused(state.id));
    }
    let stdin = std::io::stdin();
    if opts.tty && opts.interactive && !tty::is_terminal(stdin.as_fd()) {
        return Err(Error::NotATty);
    }
    let process = process(config, opts, reporting)?;
    let namespaces = namespaces_of(pid).bits();

    let signals = match opts.detach {
        true => None,
        false => Some(run::supervision_signals()?),
    };
    let exe = selfexe::sealed_copy().map_err(Error::sys("copying containr for exec"))?;
    let (ours, theirs) = Channel::pair().map_err(Error::sys("socketpair"))?;
    let cgroup = state.cgroup.clone().map(crate::cgroup::Cgroup::open);
    let entry = match &cgroup {
        Some(c) => c.location().entry()?,
        None => Default::default(),
    };
    let argv = vec![
        c"containr".to_owned(),
        c"exec-init".to_owned(),
        std::ffi::CString::new(theirs.as_fd().as_raw_fd().to_string()).expect("digits"),
    ];
    let (helper, placed) = namespace::clone_and_exec(
        namespace::Namespaces {
            flags: CloneFlags::empty(),
        },
        &ChildExec {
            exe: namespace::Exe::Sealed(exe.as_fd()),
            keep_fd: theirs.as_fd(),
            preserve_fds: 0,
            argv,
            cgroup: entry.target.as_ref().map(|f| f.as_fd()),
            join: &entry.tasks,
            userns_ready: None,
        },
    )?;
    drop(theirs);
    drop(exe);
    let reap = |e: Error| {
        let _ = nix::sys::signal::kill(helper, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(helper, None);
        e
    };
    if let Some(c) = &cgroup
        && !placed
    {
        c.add(helper.as_raw()).map_err(|e| reap(e.into()))?;
    }
    // A container paused once has a v1 freezer cgroup of its own: the
    // process goes there too, or the next pause would miss it.
    super::pause::join_freezer(&state, helper.as_raw()).map_err(&reap)?;
    let raw_mode = match opts.tty && opts.interactive && !opts.detach {
        true => Some(
            tty::RawMode::enable(stdin.as_fd())
                .map_err(Error::sys_nix("setting the terminal to raw mode"))?,
        ),
        false => None,
    };
    let mut process = process;
    // The helper's walkthrough steps go on from ours.
    process.next_step = explain::next_step();
    let config = ExecConfig {
        pid,
        start_time,
        namespaces,
        process,
        detach: opts.detach,
    };
    ours.send(&Message::Exec(Box::new(config)))
        .map_err(|e| reap(Error::sys("sending exec its process")(e)))?;
    let mut process = None;
    let mut master = None;
    let failure = loop {
        match ours.recv() {
            Ok(Some((Message::ExecPid(p), _))) => process = Some(Pid::from_raw(p as i32)),
            Ok(Some((Message::Pty, fd))) => {
                if let Some(fd) = &fd
                    && let Some(ws) = run::host_window_size()
                {
                    tty::set_window_size(fd.as_fd(), &ws);
                }
                master = fd;
            }
            Ok(Some((Message::Steps { next_step }, _))) => explain::continue_from(next_step),
            Ok(Some((Message::Failed { code, message }, _))) => {
                break Some(Error::InContainer { code, message });
            }
            // End of file: the process exec'd (or died).
            Ok(None) => break None,
            _ => {
                break Some(Error::InContainer {
                    code: 125,
                    message: "exec's helper sent nonsense".into(),
                });
            }
        }
    };
    // The helper exits once it forked the process.
    let _ = waitpid(helper, None);
    let Some(process) = process else {
        drop(raw_mode);
        return Err(failure.unwrap_or(Error::InContainer {
            code: 125,
            message: "exec's helper died before it started the process".into(),
        }));
    };
    if let Some(e) = failure {
        // The process said why it cannot exec and exits with that status.
        let _ = waitpid(process, None);
        drop(raw_mode);
        return Err(e);
    }
    let Some(signals) = signals else {
        return Ok(0);
    };
    let status = run::supervise(process, &signals, master, opts.interactive);
    drop(raw_mode);
    status
}

/// The pid of the container's init and its start time, if it runs.
fn running_init(state: &State) -> Result<(u32, u64), Error> {
    let not_running = || Error::NotRunning(state.id.clone());
    let pid = state.init_pid().ok_or_else(not_running)?;
    let start = crate::util::process_start_time(pid).ok_or_else(not_running)?;
    Ok((pid, start))
}

/// The process `exec` runs: the container's configuration with `opts`'s
/// command, environment (the container's, then `--env-file`, then `-e`),
/// user, working directory, terminal and privileges.
fn process(mut config: Config, opts: &ExecOptions, reporting: &Reporting) -> Result<Config, Error> {
    if opts.args.is_empty() {
        return Err(Error::NoCommand);
    }
    let mut extra = run::env_flags(&opts.env, &opts.env_files)?;
    if opts.tty && env::get(&config.env, "TERM").is_none() {
        extra.insert(0, "TERM=xterm".into());
    }
    config.env = env::merge(config.env, extra);
    if let Some(user) = &opts.user {
        config.user = Some(super::user::UserSpec::parse(user)?);
    }
    if let Some(dir) = &opts.workdir {
        if !dir.starts_with('/') {
            return Err(Error::RelativeWorkdir(dir.clone()));
        }
        config.workdir = dir.clone();
    }
    if opts.privileged {
        config.confinement = crate::security::Confinement {
            caps: crate::security::caps::all(),
            seccomp: None,
            privileged: true,
            ..config.confinement
        };
    }
    config.args = opts.args.clone();
    config.tty = opts.tty;
    config.interactive = opts.interactive && !opts.detach;
    config.reporting = reporting.clone();
    Ok(config)
}

/// The namespaces of process `pid` that are not ours: those to join (a
/// container on the host's network shares its network namespace, and a
/// user namespace cannot be joined if it is already ours).
fn namespaces_of(pid: u32) -> CloneFlags {
    const ALL: [(&str, CloneFlags); 7] = [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("mnt", CloneFlags::CLONE_NEWNS),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("net", CloneFlags::CLONE_NEWNET),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ];
    let link = |p: String| std::fs::read_link(p).ok();
    ALL.iter()
        .filter(|(name, _)| {
            let theirs = link(format!("/proc/{pid}/ns/{name}"));
            theirs.is_some() && theirs != link(format!("/proc/self/ns/{name}"))
        })
        .fold(CloneFlags::empty(), |flags, (_, f)| flags | *f)
}

/// In a fresh, single-threaded process (a helper `exec` cloned): join the
/// `namespaces` of process `pid`, if it is still the one that started at
/// `start_time` (`setns` on a pidfd: all at once, the user namespace
/// first), then fork the process that will exec, as a child of our parent
/// (`CLONE_PARENT`: once we exit it would otherwise be reparented to the
/// container's PID 1, and `exec` could not wait for it). `child` runs in
/// it and must not return; its host pid is returned.
pub(crate) fn join_and_fork(
    pid: u32,
    start_time: u64,
    namespaces: i32,
    child: impl FnOnce() -> i32,
) -> Result<u32, JoinError> {
    let sys = |what| move |source| JoinError::Sys { what, source };
    let fd = super::state::pidfd_open(pid).map_err(sys("pidfd_open of the container's process"))?;
    if !crate::util::process_alive(pid, start_time) {
        return Err(JoinError::Gone);
    }
    let flags = CloneFlags::from_bits_truncate(namespaces);
    crate::step!(
        "setns(pidfd of the container's init, {}): join all its namespaces at once",
        namespace::describe_flags(flags)
    );
    nix::sched::setns(fd.as_fd(), flags)
        .map_err(|e| sys("setns into the container's namespaces")(e.into()))?;
    drop(fd);
    crate::step!(
        "clone(CLONE_PARENT): the process, in the container's PID namespace, is exec's own child"
    );
    // SAFETY: a raw clone with a null stack behaves like fork(2); this
    // process is single-threaded (a fresh exec), so the child may allocate
    // freely before it execs.
    let forked = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match forked {
        e if e < 0 => Err(sys("clone(CLONE_PARENT)")(std::io::Error::last_os_error())),
        0 => {
            let code = child();
            // SAFETY: _exit skips atexit handlers and buffered I/O that
            // belong to the parent, as a forked child must.
            unsafe { libc::_exit(code) }
        }
        child => Ok(child as u32),
    }
}

/// Entry point of `containr exec-init FD`, the helper `exec` cloned: join
/// the container, fork the process. Returns the status to exit with.
pub fn main(channel_fd: RawFd) -> i32 {
    // SAFETY: `exec` handed us this descriptor by number and nothing else
    // in this fresh process refers to it.
    let channel = unsafe { Channel::from_raw(channel_fd) };
    let config = match channel.recv() {
        Ok(Some((Message::Exec(config), _))) => *config,
        _ => return 125,
    };
    // Not dumpable: the container's processes can neither ptrace us nor
    // open our /proc files (execve makes the process dumpable again).
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let _ = explain::install(&config.process.reporting);
    explain::continue_from(config.process.next_step);
    let forked =
        join_and_fork(
            config.pid,
            config.start_time,
            config.namespaces,
            || match become_process(&config, &channel) {
                Ok(never) => match never {},
                Err(e) => {
                    let _ = channel.send(&Message::Failed {
                        code: e.status(),
                        message: e.to_string(),
                    });
                    e.status()
                }
            },
        );
    let sent = match forked {
        Ok(pid) => channel.send(&Message::ExecPid(pid)),
        Err(JoinError::Gone) => Err(std::io::ErrorKind::NotFound.into()),
        Err(e) => channel.send(&Message::Failed {
            code: 125,
            message: e.to_string(),
        }),
    };
    if sent.is_ok() { 0 } else { 125 }
}

/// In the container's namespaces (the PID one included): become the
/// process. Returns only on failure.
fn become_process(
    config: &ExecConfig,
    channel: &Channel,
) -> Result<std::convert::Infallible, Error> {
    let process = &config.process;
    let slave = if process.tty {
        // The container's devpts: joining its mount namespace made its
        // /dev ours.
        let pty = tty::open_pty().map_err(Error::sys("opening a pseudo-terminal"))?;
        channel
            .send_with_fd(&Message::Pty, Some(pty.master.as_fd()))
            .map_err(Error::sys("sending the terminal to containr"))?;
        Some(pty.slave)
    } else {
        // Out of `exec`'s session: the host terminal's signals reach it
        // once, through `exec`.
        nix::unistd::setsid().map_err(Error::sys_nix("setsid"))?;
        None
    };
    if config.detach {
        // Nobody is there to read or write: docker's -d drops stdio.
        let null = std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(Error::sys("/dev/null"))?;
        for fd in 0..3 {
            nix::unistd::dup2(null.as_raw_fd(), fd).map_err(Error::sys_nix("dup2"))?;
        }
    }
    let prepared = init::prepare_command(
        super::spec::process(process),
        &super::spec::user(process),
        process.confinement.clone(),
        process.interactive,
        slave,
    )?;
    init::exec_command(&prepared, channel)
}

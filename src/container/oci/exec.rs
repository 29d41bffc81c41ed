//! `exec`: one more process in a running container, in all its namespaces
//! and its cgroup, confined as the container's own.
//!
//! A process joins a PID namespace only through its children, so it takes
//! two: `exec` clones a child (from a sealed copy of containr: it will be in
//! the container's namespaces before it execs, where /proc/PID/exe must not
//! lead to the host's binary) into the container's cgroup; the child joins
//! the container's namespaces (`setns` on a pidfd of its process, all at
//! once) and clones the process as `exec`'s own child (`CLONE_PARENT`),
//! which becomes the user's program. The first child then exits; `exec`
//! waits for the process, or with `--detach` leaves it to its caller.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use serde::{Deserialize, Serialize};

use super::super::channel::{Channel, Message};
use super::super::selfexe;
use super::init::{Command, attach_terminal, become_process};
use super::lifecycle::{
    above, forward_signals, pidfd, send_console, wait_forwarding, write_pid_file,
};
use super::state::{Root, Status};
use super::{Error, parts};
use crate::namespace::{self, ChildExec};

/// `exec`'s options, as runc's.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// `--process FILE`: the whole process, instead of the rest.
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub cwd: Option<String>,
    pub env: Vec<String>,
    /// `uid[:gid]`.
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
}

/// What `exec` sends the child it clones.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecConfig {
    /// The container's process, whose namespaces to join.
    pub pid: u32,
    pub start_time: u64,
    /// `CLONE_NEW*` of the namespaces to join.
    pub namespaces: i32,
    pub process: Process,
    pub confinement: parts::Confinement,
    pub preserve_fds: u32,
}

/// Run a process in container `id`; with `detach`, return once it runs
/// (0), else wait for it and return its status.
pub fn exec(root: &Root, id: &str, opts: &ExecOptions) -> Result<i32, Error> {
    let record = root.load(id)?;
    match root.status(&record) {
        Status::Running => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => return Err(Error::ExecIn(id.to_string(), Status::Paused)),
        s => return Err(Error::ExecIn(id.to_string(), s)),
    }
    let spec = record.spec.clone().unwrap_or_default();
    let process = process(&spec, opts)?;
    if process.terminal().unwrap_or(false) && opts.console_socket.is_none() {
        return Err(Error::Terminal(
            "exec --tty needs --console-socket to hand the terminal over",
        ));
    }
    let confinement = parts::confinement(&spec, &process)?;
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .filter(|n| n.typ() != LinuxNamespaceType::Time)
        .fold(0, |flags, n| flags | n.typ() as i32);
    let Some(target) = pidfd(&record) else {
        return Err(Error::NotRunning(id.to_string()));
    };
    drop(target);

    let signals = if opts.detach {
        None
    } else {
        Some(forward_signals()?)
    };
    let exe = selfexe::sealed_copy().map_err(Error::sys("copying containr for exec"))?;
    let (ours, theirs) = Channel::pair().map_err(Error::sys("socketpair"))?;
    // The end the clone keeps, above the descriptors passed on; the
    // original goes, or `ours` would never see end-of-file.
    let theirs = {
        let moved = above(theirs.as_fd().as_raw_fd(), 3 + opts.preserve_fds)?;
        drop(theirs);
        moved
    };
    let cgroup = record.cgroup.clone();
    let entry = match &cgroup {
        Some(c) => c.location().entry()?,
        None => Default::default(),
    };
    let argv = vec![
        c"containr-oci".to_owned(),
        c"exec-init".to_owned(),
        std::ffi::CString::new(theirs.as_raw_fd().to_string()).expect("digits"),
    ];
    let (child, placed) = namespace::clone_and_exec(
        namespace::Namespaces {
            flags: CloneFlags::empty(),
        },
        &ChildExec {
            exe: namespace::Exe::Sealed(exe.as_fd()),
            keep_fd: theirs.as_fd(),
            preserve_fds: opts.preserve_fds,
            argv,
            cgroup: entry.target.as_ref().map(|f| f.as_fd()),
            join: &entry.tasks,
            userns_ready: None,
        },
    )?;
    drop(theirs);
    let reap = |e: Error| {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(child, None);
        e
    };
    if !placed && let Some(c) = &cgroup {
        c.add(child.as_raw()).map_err(|e| reap(e.into()))?;
    }
    let config = ExecConfig {
        pid: record.pid,
        start_time: record.start_time,
        namespaces,
        process,
        confinement,
        preserve_fds: opts.preserve_fds,
    };
    ours.send(&Message::OciExec(Box::new(config)))
        .map_err(|e| reap(Error::sys("sending exec its process")(e)))?;
    let mut pid = None;
    let failure = loop {
        match ours.recv() {
            Ok(Some((Message::ExecPid(p), _))) => pid = Some(Pid::from_raw(p as i32)),
            Ok(Some((Message::Pty, Some(master)))) => {
                let socket = opts.console_socket.as_deref().expect("checked");
                if let Err(e) = send_console(socket, master.as_fd()) {
                    break Some(e);
                }
            }
            Ok(Some((Message::Failed { code, message }, _))) => {
                break Some(Error::in_container(code, message));
            }
            // End of file: the process exec'd (or died).
            Ok(None) => break None,
            _ => break Some(Error::InitDied(1)),
        }
    };
    // The clone exits once it forked the process.
    let _ = waitpid(child, None);
    let Some(pid) = pid else {
        return Err(failure.unwrap_or(Error::InitDied(1)));
    };
    if let Some(e) = failure {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        if !opts.detach {
            let _ = waitpid(pid, None);
        }
        return Err(e);
    }
    if let Some(path) = &opts.pid_file {
        write_pid_file(path, pid)?;
    }
    match signals {
        None => Ok(0),
        Some(signals) => wait_forwarding(pid, &signals),
    }
}

/// The process to run: `--process`, or the container's own with the
/// command line's changes (args, terminal, cwd, env, user, groups, caps).
fn process(spec: &Spec, opts: &ExecOptions) -> Result<Process, Error> {
    if let Some(path) = &opts.process {
        let bad = |why: String| Error::Bundle {
            path: path.clone(),
            why,
        };
        // A process document is far smaller than a whole config.json:
        // the same bound serves.
        let bytes = crate::util::read_bounded(path, super::bundle::MAX_CONFIG)
            .map_err(|e| bad(e.to_string()))?;
        return serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()));
    }
    if opts.args.is_empty() {
        return Err(Error::unsupported(
            "exec",
            "a command (or --process FILE) is required",
        ));
    }
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(opts.args.clone()));
    p.set_terminal(Some(opts.tty));
    p.set_console_size(None);
    if let Some(cwd) = &opts.cwd {
        p.set_cwd(cwd.into());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for e in &opts.env {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|old| old.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if let Some(user) = &opts.user {
        let bad = || Error::unsupported("--user", format!("{user:?}: expected UID[:GID]"));
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        let mut u = p.user().clone();
        u.set_uid(uid.parse().map_err(|_| bad())?);
        u.set_gid(gid.parse().map_err(|_| bad())?);
        p.set_user(u);
    }
    if !opts.additional_gids.is_empty() {
        let mut u = p.user().clone();
        u.set_additional_gids(Some(opts.additional_gids.clone()));
        p.set_user(u);
    }
    if opts.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !opts.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &opts.caps {
            let cap: oci_spec::runtime::Capability =
                serde_json::from_value(serde_json::Value::String(name.to_ascii_uppercase()))
                    .map_err(|_| {
                        Error::unsupported("--cap", format!("unknown capability {name:?}"))
                    })?;
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut set = set.clone().unwrap_or_default();
                set.insert(cap);
                Some(set)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

/// Entry point of `containr-oci exec-init FD`, the clone `exec` made:
/// join the container, fork the process. Returns the status to exit with.
pub fn main(channel_fd: RawFd) -> i32 {
    // SAFETY: `exec` handed us this descriptor by number and nothing else
    // in this fresh process refers to it.
    let channel = unsafe { Channel::from_raw(channel_fd) };
    let config = match channel.recv() {
        Ok(Some((Message::OciExec(config), _))) => *config,
        _ => return 1,
    };
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    match join(&config, &channel) {
        Ok(()) => 0,
        Err(e) => {
            let _ = channel.send(&Message::Failed {
                code: e.status(),
                message: e.to_string(),
            });
            e.status()
        }
    }
}

/// Join the container's namespaces and fork the process (as `containr
/// exec` does: [`join_and_fork`](super::super::enter::join_and_fork)).
fn join(config: &ExecConfig, channel: &Channel) -> Result<(), Error> {
    use super::super::enter::{JoinError, join_and_fork};
    let forked =
        join_and_fork(
            config.pid,
            config.start_time,
            config.namespaces,
            || match run_process(config, channel) {
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
    match forked {
        Ok(pid) => channel
            .send(&Message::ExecPid(pid))
            .map_err(Error::sys("reporting the process")),
        Err(JoinError::Gone) => Err(Error::ExitedBeforeStart),
        Err(JoinError::Sys { what, source }) => Err(Error::sys(what)(source)),
    }
}

/// In the container's namespaces (the PID one included): become the
/// process.
fn run_process(config: &ExecConfig, channel: &Channel) -> Result<std::convert::Infallible, Error> {
    let process = &config.process;
    let _pty = if process.terminal().unwrap_or(false) {
        Some(attach_terminal(process, channel, false)?)
    } else {
        nix::unistd::setsid().map_err(Error::sys_nix("setsid"))?;
        None
    };
    let command = Command::resolve(process)?;
    nix::unistd::chdir(process.cwd().as_path()).map_err(Error::sys_nix("chdir to process.cwd"))?;
    become_process(
        process,
        &config.confinement,
        config.preserve_fds,
        &command,
        false,
    )
}

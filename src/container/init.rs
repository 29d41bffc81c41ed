//! The container's init: PID 1 of the new PID namespace.
//!
//! It builds the container's world, then, as docker does, execs the
//! command in its own place: the command is PID 1 and nothing of containr
//! stays in the container. The control channel closes on that exec, which
//! is how the parent learns the command runs.
//!
//! With `--init` it forks the command instead and stays, as a minimal init:
//! it reaps every process that is re-parented to it (so orphans never
//! linger as zombies) and passes the signals it receives on to the command.
//! When the command exits, so does the init, with the command's status, and
//! the kernel ends whatever else is left in the PID namespace.
//!
//! The init is not reachable from inside: it runs from a sealed memfd (see
//! [`selfexe`](super::selfexe)) and is not dumpable, so the container's
//! processes can neither open its `/proc/1/exe` for writing nor ptrace it.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::{Mode, umask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};

use super::channel::{Channel, Message};
use super::spec::RunExtras;
use super::user::UserSpec;
use super::{Error, env, oci, tty};
use crate::{explain, namespace, network, rootfs, step};

/// What `containr run` sends its init: the container's OCI runtime spec
/// (as `config.json` has it, less `linux.seccomp`, whose compiled program
/// travels in `confinement`), what the spec cannot say ([`RunExtras`]),
/// and what only this start needs.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunInit {
    pub spec: Spec,
    pub extras: RunExtras,
    /// The confinement as `run`'s flags gave it: its compiled seccomp
    /// program, and its wording for the walkthrough.
    pub confinement: crate::security::Confinement,
    pub reporting: explain::Reporting,
    /// The walkthrough step the init numbers from.
    pub next_step: u64,
    /// With `--userns-remap`: how many `MountTree` messages follow (the
    /// binds the parent idmapped).
    pub mount_trees: usize,
}

/// Entry point of the re-exec'd init; returns its exit status.
pub fn main(channel_fd: RawFd) -> i32 {
    // SAFETY: the parent handed us this descriptor by number and nothing
    // else in this fresh process refers to it.
    let channel = unsafe { Channel::from_raw(channel_fd) };
    let (run, idmapped) = match channel.recv() {
        Ok(Some((Message::Run(run), fd))) => (*run, fd),
        // The parent died or sent nonsense: it is no longer there to report
        // to, and PDEATHSIG is about to end us anyway.
        _ => return 125,
    };
    // The idmapped binds the parent made (--userns-remap), if any.
    let mut trees = Vec::new();
    for _ in 0..run.mount_trees {
        match channel.recv() {
            Ok(Some((Message::MountTree { index, dir }, Some(fd)))) => trees.push((index, fd, dir)),
            _ => return 125,
        }
    }
    let _ = explain::install(&run.reporting);
    explain::continue_from(run.next_step);
    // Not dumpable: /proc/1 of the container then belongs to the host's
    // root, and ptrace(2) of the init is refused.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };

    let signals = init_signals();
    match start(run, idmapped, trees, &channel) {
        Ok(command) => reap_until_exit(command, &signals),
        Err(e) => {
            let code = e.status();
            let _ = channel.send(&Message::Failed {
                code,
                message: e.to_string(),
            });
            code
        }
    }
}

/// Signals the init handles through a signalfd: all but the ones that
/// cannot be caught and the ones that mean the init itself crashed.
fn init_signals() -> SigSet {
    let mut set = SigSet::all();
    for sig in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGABRT,
    ] {
        set.remove(sig);
    }
    set
}

/// Build the container from its spec, as `containr-oci`'s init does (the
/// same steps), with what `extras` adds; then exec the command in place of
/// the init (returns only on failure), or with `--init` fork it: its pid
/// once it has exec'd.
fn start(
    run: RunInit,
    idmapped: Option<OwnedFd>,
    trees: Vec<(usize, OwnedFd, bool)>,
    channel: &Channel,
) -> Result<Pid, Error> {
    let RunInit {
        mut spec,
        extras,
        confinement,
        ..
    } = run;
    // A session of our own: the host terminal's Ctrl-C then reaches only the
    // host-side containr, which forwards it once, instead of every process
    // of the container getting it twice.
    nix::unistd::setsid().map_err(Error::sys_nix("setsid"))?;
    // Devices and mount points get exactly the modes we ask for.
    umask(Mode::empty());

    // Without a cgroup namespace, a cgroup mount would show the host's
    // whole hierarchy: then none.
    let cgroupfs = if namespace::enter_cgroup_namespace()? {
        &extras.cgroupfs
    } else {
        &rootfs::CgroupFs::None
    };
    oci::init::set_names(&spec).map_err(from_oci)?;
    oci::init::join_namespaces(&spec).map_err(from_oci)?;
    if oci::parts::new_namespace(&spec, LinuxNamespaceType::Network) {
        network::configure_inside(extras.interface.as_ref())?;
    }
    let rootfs = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    let rootfs_spec = oci::parts::RootfsSpec::of(&spec);
    let userns = oci::parts::new_namespace(&spec, LinuxNamespaceType::User);
    let plan = rootfs_spec.plan(&rootfs, false, userns);
    rootfs::oci::prepare_with(
        &plan,
        rootfs::oci::Additions {
            overlay: extras.overlay.as_ref(),
            root_tree: idmapped,
            copy_up: &extras.copy_up,
            premade: trees,
            cgroup: Some(cgroupfs),
        },
    )?;
    let process = spec.process_mut().take().unwrap_or_default();
    oci::init::make_cwd(&rootfs, &process).map_err(from_oci)?;
    rootfs::oci::finish(&plan)?;

    let pty = if process.terminal().unwrap_or(false) {
        let pty = tty::open_pty().map_err(Error::sys("opening a pseudo-terminal"))?;
        rootfs::bind_console(&pty.slave_path)?;
        step!(
            "send the pty master ({}) to the host over the control socket (SCM_RIGHTS)",
            pty.slave_path.display()
        );
        channel
            .send_with_fd(&Message::Pty, Some(pty.master.as_fd()))
            .map_err(Error::sys("sending the terminal to containr"))?;
        Some(pty.slave)
    } else {
        None
    };

    let mut prepared =
        prepare_command(process, &extras.user, confinement, extras.interactive, pty)?;
    if extras.init {
        return spawn_command(&prepared, channel);
    }
    prepared.pid1 = true;
    step!(
        "PID 1 execs the command in its own place: nothing of containr stays in the container (--init keeps an init to reap orphans and forward signals)"
    );
    // The channel is close-on-exec: its end of file tells the parent the
    // command runs; a failure is sent on it instead.
    match exec_command(&prepared, channel)? {}
}

/// `process`, as the OCI process every container process ends as
/// (`containr-oci`'s too), with `user` resolved in the container's
/// `/etc/passwd` and `/etc/group` (ids, groups, and `HOME` if the
/// environment has none), its program found in `PATH`, its confinement
/// resolved (`narrated`'s compiled seccomp program); `tty`: the pty's slave
/// side, with `-t`. The init's command and `exec`'s processes alike.
pub(super) fn prepare_command(
    mut process: oci_spec::runtime::Process,
    user: &UserSpec,
    narrated: crate::security::Confinement,
    interactive: bool,
    tty: Option<OwnedFd>,
) -> Result<Prepared, Error> {
    let identity = user.resolve(&read_or_empty("/etc/passwd"), &read_or_empty("/etc/group"))?;
    let mut envs = process.env().clone().unwrap_or_default();
    if env::get(&envs, "HOME").is_none() {
        envs.push(format!("HOME={}", identity.home));
    }
    process.set_env(Some(envs));
    let ids = process.user_mut();
    ids.set_uid(identity.uid);
    ids.set_gid(identity.gid);
    ids.set_additional_gids(Some(identity.groups.clone()));
    let confinement = crate::security::oci::ProcessConfinement::from_spec(&process, None)?
        .with_program(narrated.seccomp.clone());
    let command = oci::init::Command::resolve(&process).map_err(from_oci)?;
    Ok(Prepared {
        process,
        confinement,
        narrated,
        command,
        tty,
        interactive,
        pid1: false,
    })
}

fn read_or_empty(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// An error of the OCI runtime's code, as `containr run` reports it: a
/// runtime error (125) unless it is the primitives' own.
fn from_oci(e: oci::Error) -> Error {
    match e {
        oci::Error::Runtime(e) => e,
        other => Error::InContainer {
            code: 125,
            message: other.to_string(),
        },
    }
}

/// The command, ready to become.
pub(super) struct Prepared {
    process: oci_spec::runtime::Process,
    confinement: crate::security::oci::ProcessConfinement,
    /// The confinement as `run`'s flags gave it, for the walkthrough.
    narrated: crate::security::Confinement,
    command: oci::init::Command,
    tty: Option<OwnedFd>,
    interactive: bool,
    /// The command replaces PID 1 (no `--init`).
    pid1: bool,
}

/// Fork the command; wait until it has exec'd (its end of a close-on-exec
/// socket closes) or reported why it could not.
fn spawn_command(cmd: &Prepared, channel: &Channel) -> Result<Pid, Error> {
    let (ours, theirs) = Channel::pair().map_err(Error::sys("socketpair"))?;
    // Blocked before the fork, so a command that exits at once still leaves
    // its SIGCHLD pending for the signalfd.
    SigSet::thread_block(&init_signals()).map_err(Error::sys_nix("sigprocmask"))?;
    step!("fork(): the command is PID 2; PID 1 stays to reap orphans and forward signals");
    // SAFETY: the init is single-threaded, so the child may allocate and
    // take locks freely before it execs.
    match unsafe { nix::unistd::fork() }.map_err(Error::sys_nix("fork"))? {
        ForkResult::Child => {
            drop(ours);
            let code = match exec_command(cmd, &theirs) {
                Err(e) => {
                    let code = e.status();
                    let _ = theirs.send(&Message::Failed {
                        code,
                        message: e.to_string(),
                    });
                    code
                }
            };
            // SAFETY: _exit skips atexit handlers and buffered I/O that
            // belong to the init, which is what a forked child must do.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            loop {
                match ours.recv() {
                    Ok(Some((Message::Steps { next_step }, _))) => {
                        explain::continue_from(next_step)
                    }
                    Ok(Some((Message::Failed { code, message }, _))) => {
                        let _ = waitpid(child, None);
                        return Err(Error::InContainer { code, message });
                    }
                    // End of file: the command exec'd.
                    Ok(None) => break,
                    Ok(Some(_)) | Err(_) => {
                        let _ = waitpid(child, None);
                        return Err(Error::InContainer {
                            code: 125,
                            message: "the command's process ended before exec".into(),
                        });
                    }
                }
            }
            channel
                .send(&Message::Started {
                    next_step: explain::next_step(),
                })
                .map_err(Error::sys("reporting to containr"))?;
            Ok(child)
        }
    }
}

/// In the forked child (or PID 1 itself): become the command, through
/// the OCI runtime's last step (`oci::init::become_process`). Returns only
/// on failure.
pub(super) fn exec_command(
    cmd: &Prepared,
    report: &Channel,
) -> Result<std::convert::Infallible, Error> {
    let user = cmd.process.user();
    let cwd = cmd.process.cwd();
    // Steps are described before stdio may move onto the container's
    // terminal, so the walkthrough stays on the host's stderr.
    if cmd.tty.is_some() {
        step!(
            "setsid() + ioctl(TIOCSCTTY): the pty is the command's controlling terminal and stdio"
        );
    }
    step!(
        "setgroups({:?}), setgid({}), setuid({})",
        user.additional_gids().clone().unwrap_or_default(),
        user.gid(),
        user.uid()
    );
    step!("chdir({cwd:?}), umask(022)");
    cmd.narrated.explain();
    step!(
        "execve({:?}, {:?})",
        cmd.command.path().display().to_string(),
        cmd.process.args().clone().unwrap_or_default()
    );
    let _ = report.send(&Message::Steps {
        next_step: explain::next_step(),
    });

    match &cmd.tty {
        Some(slave) => tty::become_controlling(slave.as_fd())
            .map_err(Error::sys_nix("attaching the terminal"))?,
        None if !cmd.interactive => {
            // Without -i the command reads nothing from the host (docker).
            let null = std::fs::File::open("/dev/null").map_err(Error::sys("/dev/null"))?;
            nix::unistd::dup2(null.as_raw_fd(), 0).map_err(Error::sys_nix("dup2"))?;
        }
        None => {}
    }
    // As root, before the user switch (runc's order).
    nix::unistd::chdir(cwd.as_path()).map_err(|e| Error::Sys {
        what: "chdir to the working directory",
        source: e.into(),
    })?;
    oci::init::become_process(&cmd.process, &cmd.confinement, 0, &cmd.command, cmd.pid1)
        .map_err(from_oci)
}

/// Default dispositions and an empty mask, as every exec'd program expects.
pub(crate) fn reset_signals() {
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: restoring the default disposition installs no handler.
        let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) };
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// PID 1's loop: reap everything, forward signals to the command, and exit
/// with the command's status when it ends.
fn reap_until_exit(command: Pid, signals: &SigSet) -> i32 {
    let sfd = match SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC) {
        Ok(fd) => fd,
        // Without a signalfd we cannot wait for signals; waiting for the
        // command alone still gives the right status.
        Err(_) => return status_code(waitpid(command, None).ok()),
    };
    loop {
        let Ok(Some(info)) = sfd.read_signal() else {
            continue;
        };
        let sig = info.ssi_signo as i32;
        if sig != libc::SIGCHLD {
            if let Ok(sig) = Signal::try_from(sig) {
                let _ = kill(command, sig);
            }
            continue;
        }
        // One SIGCHLD may stand for several children: reap until none.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(status) if status.pid() == Some(command) => return status_code(Some(status)),
                Ok(_) => {}
            }
        }
    }
}

/// A wait status as a shell would report it: the exit code, or 128+N for
/// death by signal N.
pub fn status_code(status: Option<WaitStatus>) -> i32 {
    match status {
        Some(WaitStatus::Exited(_, code)) => code,
        Some(WaitStatus::Signaled(_, sig, _)) => 128 + sig as i32,
        _ => 125,
    }
}

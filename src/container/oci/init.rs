//! The OCI container's init, in its namespaces: it builds the container's
//! world, tells `create` it is ready, waits on the exec fifo for `start`,
//! and then execs the user's process in place of itself: the container's
//! PID 1 is the user's process, nothing of containr stays.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::sys::stat::{Mode, umask};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};

use super::super::channel::{Channel, Message};
use super::super::{exec, tty};
use super::{Error, hooks};
use crate::util::cstring_lossy as cstring;
use crate::{namespace, rootfs, step};

/// What `create` sends its init.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitConfig {
    pub spec: Spec,
    /// Absolute, canonical root filesystem on the host.
    pub rootfs: PathBuf,
    /// Descriptors 3..3+N the process inherits.
    pub preserve_fds: u32,
    /// Unshare a cgroup namespace (once placed in the cgroup).
    pub cgroup_ns: bool,
    /// `--no-pivot`: move the root onto `/` and chroot instead.
    pub no_pivot: bool,
    /// Stop for `prestart`/`createRuntime` hooks once the namespaces exist.
    pub hooks_due: bool,
    /// The state document (`creating`) for hooks run in the container.
    pub state: Vec<u8>,
    /// Whether the init is in a new user namespace.
    pub userns: bool,
    /// The process's confinement, resolved by `create`.
    pub confinement: super::parts::Confinement,
    /// A session keyring of its own (runc's default; `--no-new-keyring`
    /// keeps the caller's).
    pub new_keyring: bool,
}

/// Entry point of `containr-oci init FD`; returns only on failure: the
/// status to exit with, and the error for the command line to print when
/// `create` has already returned (the container's stderr is then all that
/// is left to tell; before that, it went to `create` over the channel).
pub fn main(channel_fd: RawFd) -> (i32, Option<Error>) {
    // SAFETY: `create` handed us this descriptor by number and nothing else
    // in this fresh process refers to it.
    let channel = unsafe { Channel::from_raw(channel_fd) };
    // The exec fifo comes with the config, opened by `create` (O_PATH): in
    // a user namespace the init could not get through the state
    // directory (0700, the host's root) to open it by path.
    let (config, fifo) = match channel.recv() {
        Ok(Some((Message::OciConfig(config), Some(fifo)))) => (*config, fifo),
        _ => return (1, None),
    };
    // Not dumpable while containr's code runs: the container's processes
    // cannot ptrace the init or open its /proc files. execve makes the
    // user's process dumpable again.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let mut reported = false;
    match build(&config, fifo, &channel, &mut reported) {
        Ok(never) => match never {},
        Err(e) => {
            let code = e.status();
            if reported {
                return (code, Some(e));
            }
            let _ = channel.send(&Message::Failed {
                code,
                message: e.to_string(),
            });
            (code, None)
        }
    }
}

fn build(
    config: &InitConfig,
    fifo: OwnedFd,
    channel: &Channel,
    reported: &mut bool,
) -> Result<std::convert::Infallible, Error> {
    let spec = &config.spec;
    let process = spec.process().as_ref().expect("checked by bundle::parse");
    // `create` exits once the container is created: the init must outlive
    // it (PR_SET_PDEATHSIG, set by the clone, survives exec).
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
    join_namespaces(spec)?;
    if config.new_keyring {
        join_new_keyring()?;
    }
    if config.cgroup_ns {
        namespace::enter_cgroup_namespace()?;
    }
    let terminal = process.terminal().unwrap_or(false);
    if !terminal {
        nix::unistd::setsid().map_err(Error::sys_nix("setsid"))?;
    }
    set_names(spec)?;
    // `fifo` is reopened for writing through /proc/self/fd once `start`
    // comes: a magic link, so no directory on the way is searched.
    // Devices and mount points get exactly the modes asked for.
    umask(Mode::empty());
    let rootfs_spec = super::parts::RootfsSpec::of(spec);
    let plan = rootfs_spec.plan(&config.rootfs, config.no_pivot, config.userns);
    rootfs::oci::prepare(&plan)?;
    make_cwd(&config.rootfs, process)?;
    if config.hooks_due {
        channel
            .send(&Message::HooksDue)
            .map_err(Error::sys("asking for the createRuntime hooks"))?;
        match channel.recv() {
            Ok(Some((Message::HooksDone, _))) => {}
            _ => return Err(Error::InitDied(1)),
        }
    }
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().clone())
    {
        hooks::run("createContainer", &h, &config.state)?;
    }
    rootfs::oci::finish(&plan)?;

    let pty = if terminal {
        Some(attach_terminal(process, channel, true)?)
    } else {
        None
    };

    let command = Command::resolve(process)?;
    nix::unistd::chdir(process.cwd().as_path()).map_err(Error::sys_nix("chdir to process.cwd"))?;

    // Created: `create` may return. From here on, errors go to stderr.
    channel
        .send(&Message::Started { next_step: 0 })
        .map_err(Error::sys("reporting to create"))?;
    *reported = true;
    wait_for_start(&fifo)?;
    drop(fifo);
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().clone())
    {
        hooks::run("startContainer", &h, &config.state)?;
    }
    drop(pty);
    become_process(
        process,
        &config.confinement,
        config.preserve_fds,
        &command,
        false,
    )
}

/// The spec's `hostname` and `domainname`, set in the container's UTS
/// namespace (any front end's init: `containr run`'s too).
pub(crate) fn set_names(spec: &Spec) -> Result<(), Error> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        namespace::set_hostname(h)?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        step!("setdomainname({d:?})");
        // SAFETY: a pointer and length into `d`, which the kernel only reads.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(Error::sys("setdomainname")(std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// The process's working directory, made if missing (as runc and docker
/// do), resolved in the root at `rootfs` (before the pivot, and before a
/// read-only root would forbid it).
pub(crate) fn make_cwd(
    rootfs: &std::path::Path,
    process: &oci_spec::runtime::Process,
) -> Result<(), Error> {
    let root = open_path(rootfs, "opening the root filesystem")?;
    rootfs::oci::resolve(root.as_fd(), process.cwd(), true).map_err(|source| {
        rootfs::Error::Op {
            op: "creating directory",
            path: process.cwd().clone(),
            source,
        }
    })?;
    Ok(())
}

/// A pseudo-terminal on the container's devpts, sized as `consoleSize`
/// says, its master sent over `channel` (for `--console-socket`), its
/// slave made the controlling terminal and stdio of this new session; with
/// `console`, bound at /dev/console too.
pub(super) fn attach_terminal(
    process: &oci_spec::runtime::Process,
    channel: &Channel,
    console: bool,
) -> Result<tty::Pty, Error> {
    let pty = tty::open_pty().map_err(Error::sys("opening a pseudo-terminal"))?;
    if console {
        rootfs::bind_console(&pty.slave_path)?;
    }
    if let Some(size) = process.console_size() {
        let ws = libc::winsize {
            ws_row: size.height() as u16,
            ws_col: size.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        tty::set_window_size(pty.master.as_fd(), &ws);
    }
    channel
        .send_with_fd(&Message::Pty, Some(pty.master.as_fd()))
        .map_err(Error::sys("sending the terminal"))?;
    tty::become_controlling(pty.slave.as_fd()).map_err(Error::sys_nix("attaching the terminal"))?;
    Ok(pty)
}

/// The user's program, found in the container, ready for `execve`.
pub(crate) struct Command {
    path: PathBuf,
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl Command {
    /// Find `process.args[0]` (in `PATH` from its environment) in the
    /// container's root, which must be `/` by now.
    pub(crate) fn resolve(process: &oci_spec::runtime::Process) -> Result<Command, Error> {
        let env: Vec<String> = process.env().clone().unwrap_or_default();
        let args = process.args().as_deref().unwrap_or_default();
        let Some(arg0) = args.first() else {
            return Err(Error::unsupported("process.args", "must not be empty"));
        };
        let path_var = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(super::super::env::DEFAULT_PATH);
        let path = exec::resolve(arg0, path_var)?;
        Ok(Command {
            program: cstring(path.as_os_str().as_bytes()),
            argv: args.iter().map(|a| cstring(a.as_bytes())).collect(),
            envp: env.iter().map(|e| cstring(e.as_bytes())).collect(),
            path,
        })
    }

    /// The program found, for the walkthrough and messages.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// The last steps of any container process, `create`'s or `exec`'s: the
/// confinement around the user switch (groups, gid, uid, umask), default
/// signal dispositions, every descriptor but stdio and the preserved ones
/// closed on exec, and `execve`. Returns only on failure. `pdeathsig`:
/// the process is `containr run`'s PID 1, which must still die with its
/// parent after the user switch (a change of credentials clears the
/// parent-death signal the clone set).
pub(crate) fn become_process(
    process: &oci_spec::runtime::Process,
    confinement: &super::parts::Confinement,
    preserve_fds: u32,
    command: &Command,
    pdeathsig: bool,
) -> Result<std::convert::Infallible, Error> {
    confinement.apply_early()?;
    let user = process.user();
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    nix::unistd::setgroups(&groups).map_err(Error::sys_nix("setgroups"))?;
    nix::unistd::setgid(Gid::from_raw(user.gid())).map_err(Error::sys_nix("setgid"))?;
    nix::unistd::setuid(Uid::from_raw(user.uid())).map_err(Error::sys_nix("setuid"))?;
    if pdeathsig {
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    }
    umask(Mode::from_bits_truncate(user.umask().unwrap_or(0o022) as _));
    confinement.apply_late()?;
    super::super::init::reset_signals();
    // Nothing but stdio and the preserved descriptors crosses into the
    // process (CVE-2024-21626): the rest becomes close-on-exec.
    // SAFETY: close_range with integer arguments only.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 + preserve_fds,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    let err = nix::unistd::execve(&command.program, &command.argv, &command.envp).unwrap_err();
    Err(exec::Error::from_errno(&command.path.display().to_string(), err as i32).into())
}

/// A new anonymous session keyring, so the container cannot read or add
/// to the keys of whoever ran the runtime. Kernels without keyrings are
/// no failure.
fn join_new_keyring() -> Result<(), Error> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl with a null name joins a new anonymous keyring; no
    // pointer is read.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOSYS) {
            return Err(Error::sys("keyctl(JOIN_SESSION_KEYRING)")(e));
        }
    }
    Ok(())
}

/// setns(2) into each namespace the spec gives by path; the user
/// namespace first, as it owns the others.
pub(crate) fn join_namespaces(spec: &Spec) -> Result<(), Error> {
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let mut joins: Vec<_> = namespaces
        .iter()
        .filter_map(|n| n.path().as_ref().map(|p| (n.typ(), p.clone())))
        .collect();
    joins.sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
    for (typ, path) in joins {
        let flags = nix::sched::CloneFlags::from_bits_truncate(typ as i32);
        step!(
            "setns({}, {}): join that {typ} namespace",
            path.display(),
            namespace::describe_flags(flags)
        );
        let file = std::fs::File::open(&path).map_err(|e| Error::Bundle {
            path: path.clone(),
            why: format!("linux.namespaces ({typ}): {e}"),
        })?;
        nix::sched::setns(file.as_fd(), flags).map_err(|e| Error::Bundle {
            path: path.clone(),
            why: format!("setns ({typ}): {e}"),
        })?;
    }
    Ok(())
}

/// `open(path, O_PATH)`: a handle that neither reads nor writes.
pub(super) fn open_path(path: &std::path::Path, what: &'static str) -> Result<OwnedFd, Error> {
    let c = cstring(path.as_os_str().as_bytes());
    // SAFETY: a NUL-terminated path and flags; returns a new fd or -1.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Error::sys(what)(std::io::Error::last_os_error()));
    }
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Block until `start` opens the fifo for reading, then write the byte it
/// waits for.
fn wait_for_start(fifo: &OwnedFd) -> Result<(), Error> {
    let reopen = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&reopen)
        .map_err(Error::sys("opening exec.fifo for writing"))?;
    nix::unistd::write(file.as_fd(), b"0").map_err(Error::sys_nix("writing exec.fifo"))?;
    Ok(())
}

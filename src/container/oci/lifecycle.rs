//! The runtime's commands on one container: `create`, `start`, `kill`,
//! `delete`, and `run` (the first two, then waiting and deleting).

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal, kill as kill_pid};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::runtime::{Hook, LinuxNamespaceType, Spec};

use super::super::channel::{Channel, Message};
use super::super::selfexe;
use super::bundle::{self, Bundle};
use super::init::InitConfig;
use super::state::{self, Record, Root, Status};
use super::{Error, hooks, parts};
use crate::namespace::{self, ChildExec};

/// How long `start` waits for the init to answer on its fifo, and `delete`
/// for a killed container to exit.
const PATIENCE: Duration = Duration::from_secs(10);

/// `create`'s options, as runc's.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    /// `--preserve-fds`: descriptors 3..3+N passed on (after `LISTEN_FDS`).
    pub preserve_fds: u32,
    /// `--systemd-cgroup`: `linux.cgroupsPath` is `slice:prefix:name`.
    pub systemd_cgroup: bool,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
}

/// Create the container: on return its init waits for `start`, and no
/// containr process but it is left.
pub fn create(root: &Root, opts: &CreateOptions) -> Result<(), Error> {
    // Loaded once: its parse is most of what create does in user space.
    let bundle = bundle::load(&opts.bundle);
    if opts.console_socket.is_none() && terminal_wanted(&bundle) {
        return Err(Error::Terminal(
            "create needs --console-socket to hand the terminal over",
        ));
    }
    create_inner(root, opts, bundle?).map(drop)
}

fn terminal_wanted(bundle: &Result<Bundle, Error>) -> bool {
    bundle.as_ref().is_ok_and(|b| {
        b.spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false)
    })
}

/// What create undoes if it fails half-way: the init, the cgroup, the
/// state directory.
struct Undo<'a> {
    root: &'a Root,
    id: &'a str,
    init: Option<Pid>,
    cgroup: Option<parts::ContainerCgroup>,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.init {
            let _ = kill_pid(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(cgroup) = self.cgroup.take() {
            let _ = cgroup.remove();
        }
        let _ = self.root.remove(self.id);
    }
}

/// Create the container of `bundle` (loaded from `opts.bundle`); its
/// record, and its init (a child of ours).
fn create_inner(root: &Root, opts: &CreateOptions, bundle: Bundle) -> Result<Record, Error> {
    let Bundle {
        dir: bundle_dir,
        mut spec,
        rootfs,
    } = bundle;
    let dir = root.claim(&opts.id)?;
    let mut undo = Undo {
        root,
        id: &opts.id,
        init: None,
        cgroup: None,
    };
    let fifo = state::fifo_path(&dir);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(Error::sys_nix("mkfifo exec.fifo"))?;
    // 0622 whatever the umask: in a user namespace the init is not the
    // host's root, and it opens the fifo for writing. Only the descriptor
    // `create` hands it reaches the fifo: the state directory is 0700.
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .map_err(crate::util::io_err(&fifo))?;
    let preserve_fds = pass_listen_fds(&mut spec) + opts.preserve_fds;
    let cgroup = parts::create_cgroup(&opts.id, &spec, opts.systemd_cgroup)?;
    let cgroup = undo.cgroup.insert(cgroup);

    let linux = spec.linux().clone().unwrap_or_default();
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    let flags = parts::clone_flags(&spec);
    let userns = flags.contains(CloneFlags::CLONE_NEWUSER);
    let cgroup_ns = parts::new_namespace(&spec, LinuxNamespaceType::Cgroup);
    for n in &namespaces {
        if let Some(p) = n.path()
            && !p.exists()
        {
            return Err(Error::Bundle {
                path: p.clone(),
                why: format!("linux.namespaces ({}): no such namespace file", n.typ()),
            });
        }
    }

    // The binary the init runs from: a read-only bind of ours, made in the
    // child's new mount namespace (CLONE_NEWNS is required by the bundle).
    let exe = selfexe::prepare().map_err(Error::sys("preparing containr's binary for the init"))?;
    let (ours, theirs) = Channel::pair().map_err(Error::sys("socketpair"))?;
    // The init's end, above the preserved descriptors; the original goes,
    // or `ours` would never see end-of-file if the init died.
    let theirs = {
        let moved = above(theirs.as_fd().as_raw_fd(), 3 + preserve_fds)?;
        drop(theirs);
        moved
    };
    let ready = if userns {
        Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys_nix("pipe"))?)
    } else {
        None
    };
    let entry = cgroup.location().entry()?;
    let argv = vec![
        c"containr-oci".to_owned(),
        c"init".to_owned(),
        std::ffi::CString::new(theirs.as_raw_fd().to_string()).expect("digits"),
    ];
    let (pid, placed) = namespace::clone_and_exec(
        namespace::Namespaces { flags },
        &ChildExec {
            exe: exe.as_exe(),
            keep_fd: theirs.as_fd(),
            preserve_fds,
            argv,
            cgroup: entry.target.as_ref().map(|f| f.as_fd()),
            join: &entry.tasks,
            userns_ready: ready.as_ref().map(|(r, _)| r.as_fd()),
        },
    )?;
    undo.init = Some(pid);
    drop(theirs);
    drop(exe);
    drop(entry);
    if !placed {
        cgroup.add(pid.as_raw())?;
    }
    if let Some((_, wake)) = &ready {
        write_id_maps(pid, &spec)?;
        nix::unistd::write(wake.as_fd(), b"1").map_err(Error::sys_nix("waking the init"))?;
    }

    let start_time = crate::util::process_start_time(pid.as_raw() as u32).unwrap_or(0);
    let record = Record {
        id: opts.id.clone(),
        pid: pid.as_raw() as u32,
        start_time,
        bundle: bundle_dir,
        rootfs: rootfs.clone(),
        created: crate::util::rfc3339(crate::util::now()),
        owner: owner(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: Some(cgroup.clone()),
        hooks: spec.hooks().clone(),
        spec: Some(spec.clone()),
    };
    let creating = state_bytes(&record, Status::Creating);
    #[allow(deprecated)]
    let runtime_hooks: Vec<(&'static str, Vec<Hook>)> = spec
        .hooks()
        .as_ref()
        .map(|h| {
            vec![
                ("prestart", h.prestart().clone().unwrap_or_default()),
                (
                    "createRuntime",
                    h.create_runtime().clone().unwrap_or_default(),
                ),
            ]
        })
        .unwrap_or_default();
    let hooks_due = runtime_hooks.iter().any(|(_, h)| !h.is_empty());
    let process = spec.process().as_ref().expect("checked by bundle::parse");
    let confinement = parts::confinement(&spec, process)?;
    let config = InitConfig {
        confinement,
        spec,
        rootfs,
        preserve_fds,
        cgroup_ns,
        no_pivot: opts.no_pivot,
        hooks_due,
        state: creating.clone(),
        userns,
        new_keyring: !opts.no_new_keyring,
    };
    let fifo_fd = super::init::open_path(&fifo, "opening exec.fifo")?;
    ours.send_with_fd(&Message::OciConfig(Box::new(config)), Some(fifo_fd.as_fd()))
        .map_err(|_| Error::InitDied(status_of(pid)))?;
    drop(fifo_fd);
    loop {
        match ours.recv() {
            Ok(Some((Message::Pty, Some(master)))) => {
                let socket = opts
                    .console_socket
                    .as_deref()
                    .expect("checked: a terminal comes with a console socket");
                send_console(socket, master.as_fd())?;
            }
            Ok(Some((Message::HooksDue, _))) => {
                for (kind, list) in &runtime_hooks {
                    hooks::run(kind, list, &creating)?;
                }
                ours.send(&Message::HooksDone)
                    .map_err(|_| Error::InitDied(status_of(pid)))?;
            }
            Ok(Some((Message::Started { .. }, _))) => break,
            Ok(Some((Message::Failed { code, message }, _))) => {
                return Err(Error::in_container(code, message));
            }
            _ => return Err(Error::InitDied(status_of(pid))),
        }
    }
    root.save(&record)?;
    if let Some(path) = &opts.pid_file {
        write_pid_file(path, pid)?;
    }
    undo.init = None;
    // The cgroup outlives create: `delete` removes it by the location
    // recorded in the state.
    std::mem::forget(undo.cgroup.take());
    std::mem::forget(undo);
    Ok(record)
}

/// The exit status of the init that died during create.
fn status_of(pid: Pid) -> i32 {
    super::super::init::status_code(waitpid(pid, None).ok())
}

/// `LISTEN_FDS` (socket activation): the descriptors 3..3+N go on to the
/// process, which is told of them as systemd would (`LISTEN_PID` is 1:
/// the process is PID 1 of its namespace).
fn pass_listen_fds(spec: &mut Spec) -> u32 {
    let Some(n) = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| *n > 0)
    else {
        return 0;
    };
    if let Some(process) = spec.process_mut() {
        let mut env = process.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={n}"));
        env.push("LISTEN_PID=1".into());
        process.set_env(Some(env));
    }
    n
}

/// The user running the runtime, for `owner`.
fn owner() -> String {
    let uid = nix::unistd::geteuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

/// Write the init's uid and gid maps from the spec (we hold CAP_SETUID and
/// CAP_SETGID over its new user namespace).
fn write_id_maps(pid: Pid, spec: &Spec) -> Result<(), Error> {
    let linux = spec.linux().as_ref().expect("checked");
    for (file, maps) in [
        ("uid_map", linux.uid_mappings()),
        ("gid_map", linux.gid_mappings()),
    ] {
        let text: String = maps
            .iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        if text.is_empty() {
            return Err(Error::unsupported(
                "linux.uidMappings/gidMappings",
                "a new user namespace needs both",
            ));
        }
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        std::fs::write(&path, text).map_err(crate::util::io_err(&path))?;
    }
    Ok(())
}

/// Hand the terminal's master over `--console-socket`, as runc does: one
/// message whose data is the terminal's name, the descriptor attached.
pub(super) fn send_console(socket: &Path, master: BorrowedFd<'_>) -> Result<(), Error> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let err = |source: std::io::Error| Error::ConsoleSocket {
        path: socket.to_path_buf(),
        source,
    };
    let stream = std::os::unix::net::UnixStream::connect(socket).map_err(err)?;
    let fds = [master.as_raw_fd()];
    let name = b"/dev/ptmx";
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(name)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| err(e.into()))?;
    Ok(())
}

/// `--pid-file`: written whole (a temporary file renamed), so a reader
/// never sees half a number.
pub(super) fn write_pid_file(path: &Path, pid: Pid) -> Result<(), Error> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(Error::sys("the current directory"))?
            .join(path)
    };
    crate::util::replace_file_volatile(&path, pid.to_string().as_bytes(), 0o644)
        .map_err(crate::util::io_err(&path))?;
    Ok(())
}

fn state_bytes(record: &Record, status: Status) -> Vec<u8> {
    serde_json::to_vec(&state::document(record, status)).expect("state serialises")
}

/// A pidfd for the recorded process, checked (after it is opened) to be
/// that process and not a later one with its pid; `None` if it has exited.
pub(super) fn pidfd(record: &Record) -> Option<OwnedFd> {
    let fd = super::super::state::pidfd_open(record.pid).ok()?;
    crate::util::process_alive(record.pid, record.start_time).then_some(fd)
}

/// Signal the process behind `pidfd`.
fn signal(pidfd: &OwnedFd, sig: i32) -> Result<(), Error> {
    // SAFETY: a pidfd we own and a signal number; no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(Error::sys("pidfd_send_signal")(e));
        }
    }
    Ok(())
}

/// Wait (at most `PATIENCE`) for the process behind `pidfd` to exit.
fn wait_exit(pidfd: &OwnedFd) -> Result<(), Error> {
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(PATIENCE.as_millis() as u16)) {
        Ok(n) if n > 0 => Ok(()),
        Ok(_) => Err(Error::sys("waiting for the container to exit")(
            std::io::ErrorKind::TimedOut.into(),
        )),
        Err(e) => Err(Error::sys_nix("poll")(e)),
    }
}

/// Start a created container: release its init through the fifo.
pub fn start(root: &Root, id: &str) -> Result<(), Error> {
    let record = root.load(id)?;
    match root.status(&record) {
        Status::Created => {}
        Status::Stopped => return Err(Error::StartStopped),
        s => return Err(Error::StartRunning(s)),
    }
    let fifo_path = state::fifo_path(&root.container_dir(id)?);
    let Some(process) = pidfd(&record) else {
        return Err(Error::ExitedBeforeStart);
    };
    let fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblock()
        .open(&fifo_path)
        .map_err(crate::util::io_err(&fifo_path))?;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(process.as_fd(), PollFlags::POLLIN),
        ];
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::sys("waiting for the container's init")(
                std::io::ErrorKind::TimedOut.into(),
            ));
        }
        match poll(
            &mut fds,
            PollTimeout::from(left.as_millis().min(10_000) as u16),
        ) {
            Err(nix::Error::EINTR) | Ok(0) => continue,
            Err(e) => return Err(Error::sys_nix("poll")(e)),
            Ok(_) => {}
        }
        let mut byte = [0u8; 1];
        if let Ok(1) = nix::unistd::read(fifo.as_raw_fd(), &mut byte) {
            break;
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            return Err(Error::ExitedBeforeStart);
        }
        // The fifo polled readable but gave nothing (no writer yet): wait
        // a little instead of spinning on its hang-up.
        std::thread::sleep(Duration::from_millis(1));
    }
    std::fs::remove_file(&fifo_path).map_err(crate::util::io_err(&fifo_path))?;
    if let Some(h) = record.hooks.as_ref().and_then(|h| h.poststart().clone()) {
        hooks::run_warn("poststart", &h, &state_bytes(&record, Status::Running));
    }
    Ok(())
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK)
    }
}

/// A signal by name (`TERM`, `SIGTERM`, any case) or number.
pub fn parse_signal(s: &str) -> Result<i32, Error> {
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(Error::Signal(s.to_string()))
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| Error::Signal(s.to_string()))
}

/// Send `sig` to the container's process, or with `all` to every process
/// in its cgroup.
pub fn kill(root: &Root, id: &str, sig: i32, all: bool) -> Result<(), Error> {
    let record = root.load(id)?;
    if root.status(&record) == Status::Stopped {
        return Err(Error::NotRunning(id.to_string()));
    }
    if all && let Some(cgroup) = &record.cgroup {
        return Ok(cgroup.signal_all(sig)?);
    }
    match pidfd(&record) {
        Some(fd) => signal(&fd, sig).map(|()| thaw_killed(&record, sig)),
        None => Err(Error::NotRunning(id.to_string())),
    }
}

/// A paused container's processes act on a SIGKILL once thawed (as runc);
/// other signals wait for `resume`.
fn thaw_killed(record: &Record, sig: i32) {
    if sig == libc::SIGKILL
        && let Some(cgroup) = &record.cgroup
    {
        let _ = cgroup.thaw();
    }
}

/// Delete a container: a created one is killed first, a running one only
/// with `force`. Its cgroup and state go; its `poststop` hooks run.
pub fn delete(root: &Root, id: &str, force: bool) -> Result<(), Error> {
    let record = match root.load(id) {
        Ok(r) => r,
        // runc: with --force, deleting what is not there is no error;
        // a directory without state is what a killed create left.
        Err(Error::NotExist(_)) if force => return root.remove(id),
        Err(e) => return Err(e),
    };
    let status = root.status(&record);
    match status {
        Status::Stopped => {}
        Status::Created | Status::Creating => stop(&record)?,
        Status::Running | Status::Paused if force => stop(&record)?,
        Status::Running | Status::Paused => {
            return Err(Error::NotStopped {
                id: id.to_string(),
                status,
            });
        }
    }
    destroy(root, record)
}

/// SIGKILL the container's process (and anything else in its cgroup) and
/// wait for it to exit.
fn stop(record: &Record) -> Result<(), Error> {
    let Some(fd) = pidfd(record) else {
        return Ok(());
    };
    signal(&fd, libc::SIGKILL)?;
    if let Some(cgroup) = &record.cgroup {
        // Everything else in it too (thawed first if it was frozen).
        cgroup.signal_all(libc::SIGKILL)?;
    }
    wait_exit(&fd)
}

/// Remove what a stopped container still has: cgroup, state; then its
/// `poststop` hooks.
fn destroy(root: &Root, record: Record) -> Result<(), Error> {
    if let Some(cgroup) = &record.cgroup {
        cgroup.remove()?;
    }
    root.remove(&record.id)?;
    if let Some(h) = record.hooks.as_ref().and_then(|h| h.poststop().clone()) {
        hooks::run_warn("poststop", &h, &state_bytes(&record, Status::Stopped));
    }
    Ok(())
}

/// Signals `run` passes on to the container.
const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// `run`: create and start; unless `detach`, wait for the process (passing
/// signals on) and delete the container (unless `keep`); the process's
/// status (128+N for a signal).
pub fn run(root: &Root, opts: &CreateOptions, detach: bool, keep: bool) -> Result<i32, Error> {
    let bundle = bundle::load(&opts.bundle);
    if opts.console_socket.is_none() && terminal_wanted(&bundle) {
        return Err(Error::Terminal(
            "containr-oci run needs --console-socket (it does not relay a terminal itself)",
        ));
    }
    let signals = if detach {
        None
    } else {
        Some(forward_signals()?)
    };
    let record = create_inner(root, opts, bundle?)?;
    let pid = Pid::from_raw(record.pid as i32);
    if let Err(e) = start(root, &opts.id) {
        let _ = delete(root, &opts.id, true);
        let _ = waitpid(pid, None);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let status = wait_forwarding(pid, signals.as_ref().expect("made when attached"))?;
    if !keep {
        delete(root, &opts.id, true)?;
    }
    Ok(status)
}

/// Block the signals an attached runtime passes on (and SIGCHLD), before
/// it clones, so none is lost; the clone unblocks its own. Their signalfd.
pub(super) fn forward_signals() -> Result<SignalFd, Error> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(s);
    }
    set.thread_block().map_err(Error::sys_nix("sigprocmask"))?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).map_err(Error::sys_nix("signalfd"))
}

/// Wait for our child `pid` to exit, passing signals on to it; its status
/// as a shell reports it (128+N for signal N).
pub(super) fn wait_forwarding(pid: Pid, signals: &SignalFd) -> Result<i32, Error> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(s) => return Ok(super::super::init::status_code(Some(s))),
            Err(e) => return Err(Error::sys_nix("waitpid")(e)),
        }
        match signals.read_signal() {
            Ok(Some(info)) if info.ssi_signo as i32 != libc::SIGCHLD => {
                let _ = kill_pid(pid, Signal::try_from(info.ssi_signo as i32).ok());
            }
            _ => {}
        }
    }
}

/// A copy of `fd` at `min` or above (close-on-exec), so that it does not
/// sit among the descriptors passed on.
pub(super) fn above(fd: std::os::fd::RawFd, min: u32) -> Result<OwnedFd, Error> {
    let fd = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(min as i32))
        .map_err(Error::sys_nix("dup"))?;
    // SAFETY: F_DUPFD_CLOEXEC just returned this descriptor; only we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

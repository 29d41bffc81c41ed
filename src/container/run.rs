//! The host side of `containr run`: check the request, prepare the
//! container's state, clone its init, supervise it, clean up.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::channel::{Channel, Message};
use super::init::status_code;
use super::state::{self, DataRoot};
use super::user::UserSpec;
use super::{Config, Error as ContainerError, env, selfexe, tty};
use crate::cgroup::{self, Cgroup, Limits};
use crate::error::{Error, Notice};
use crate::explain::{self, Reporting};
use crate::namespace::{self, ChildExec, Namespaces};
use crate::network::{self, Mode};
use crate::step;

/// Options that apply to every command.
#[derive(Debug, Clone)]
pub struct Global {
    /// containr's data root.
    pub root: PathBuf,
    pub reporting: Reporting,
    /// Registries reached over plain http (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
}

/// What the user asked `containr run` for, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub rootfs: Option<PathBuf>,
    /// The image to run, when not `--rootfs`.
    pub image: Option<String>,
    /// `--entrypoint`: replaces the image's Entrypoint (and drops its Cmd).
    pub entrypoint: Option<String>,
    /// `--platform` of an image pulled by `run`.
    pub platform: Option<String>,
    /// `-q`: no pull progress.
    pub quiet: bool,
    /// `--pull`: `missing` (the default), `never` or `always`.
    pub pull: String,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub name: Option<String>,
    pub hostname: Option<String>,
    pub interactive: bool,
    pub tty: bool,
    pub read_only: bool,
    /// `--rm`: remove the container when it exits instead of keeping it.
    pub rm: bool,
    pub network: network::Options,
    pub limits: LimitFlags,
    pub security: crate::security::Flags,
    pub userns_remap: Option<String>,
}

/// The resource-limit flags, as given (`--memory 32m`, `--cpus 0.5`, ...).
#[derive(Debug, Clone, Default)]
pub struct LimitFlags {
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub cpus: Option<String>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub device_read_bps: Vec<String>,
    pub device_write_bps: Vec<String>,
}

impl LimitFlags {
    /// Check and convert every flag; nothing is created before this passes.
    pub fn parse(&self) -> Result<Limits, cgroup::Error> {
        let memory_swap = match self.memory_swap.as_deref() {
            None => None,
            Some("-1") => Some(-1),
            Some(s) => Some(cgroup::parse_size(s)? as i64),
        };
        let limits = Limits {
            memory: self.memory.as_deref().map(cgroup::parse_size).transpose()?,
            memory_swap,
            cpus: self.cpus.as_deref().map(cgroup::parse_cpus).transpose()?,
            cpu_shares: self.cpu_shares,
            cpuset_cpus: self.cpuset_cpus.clone(),
            pids_limit: self.pids_limit,
            device_read_bps: self
                .device_read_bps
                .iter()
                .map(|d| cgroup::parse_device_rate("--device-read-bps", d))
                .collect::<Result<_, _>>()?,
            device_write_bps: self
                .device_write_bps
                .iter()
                .map(|d| cgroup::parse_device_rate("--device-write-bps", d))
                .collect::<Result<_, _>>()?,
            all_devices: false,
        };
        if let (Some(m), Some(total)) = (limits.memory, limits.memory_swap)
            && total != -1
            && (total as u64) < m
        {
            return Err(cgroup::Error::Value {
                flag: "--memory-swap",
                value: self.memory_swap.clone().unwrap_or_default(),
                why: "must be at least --memory (it counts memory plus swap), or -1",
            });
        }
        if let Some(s) = limits.cpu_shares
            && !(2..=262_144).contains(&s)
        {
            return Err(cgroup::Error::Value {
                flag: "--cpu-shares",
                value: s.to_string(),
                why: "must be between 2 and 262144",
            });
        }
        Ok(limits)
    }
}

/// How a container ended (or any command: the status containr exits with).
#[derive(Debug)]
pub struct Exit {
    /// containr's own exit status: the command's, or 128+N.
    pub status: i32,
    /// Something the user should be told besides the status.
    pub notice: Option<Notice>,
}

impl Exit {
    pub fn with_status(status: i32) -> Exit {
        Exit {
            status,
            notice: None,
        }
    }
}

/// Signals the parent handles: passed on to the container, except
/// `SIGWINCH`, which becomes a window-size change on the pty (and `SIGCHLD`,
/// added separately, which tells us the init ended).
const HANDLED: [Signal; 8] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCONT,
    Signal::SIGWINCH,
];

/// Run a container to completion.
pub fn run(opts: &RunOptions, global: &Global) -> Result<Exit, Error> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::NotRoot("run"));
    }
    // Checked before any pull: a refused run must not download first.
    let userns = opts
        .userns_remap
        .as_deref()
        .map(crate::namespace::userns::IdMap::parse)
        .transpose()?;
    let image = match &opts.image {
        Some(name) => {
            let pull = crate::registry::PullOptions::for_run(
                opts.platform.clone(),
                opts.quiet,
                &global.insecure_registries,
            );
            Some(crate::registry::for_run(
                &global.root,
                name,
                &opts.pull,
                &pull,
            )?)
        }
        None => None,
    };
    let (rootfs, args) = match &image {
        Some(img) => (
            PathBuf::new(),
            img.args(opts.entrypoint.as_deref(), &opts.command)?,
        ),
        None => (check_rootfs(opts.rootfs.as_deref())?, opts.command.clone()),
    };
    if args.is_empty() {
        return Err(ContainerError::NoCommand.into());
    }
    let net = opts.network.plan()?;
    // -u and -w win over the image's User and WorkingDir.
    let user = (opts.user.as_deref())
        .or(image.as_ref().and_then(|i| i.user()))
        .map(UserSpec::parse)
        .transpose()
        .map_err(ContainerError::from)?;
    let workdir = (opts.workdir.as_deref())
        .or(image.as_ref().and_then(|i| i.workdir()))
        .unwrap_or("/")
        .to_string();
    if !workdir.starts_with('/') {
        return Err(ContainerError::RelativeWorkdir(workdir).into());
    }
    let stdin = std::io::stdin();
    if opts.tty && opts.interactive && !tty::is_terminal(stdin.as_fd()) {
        return Err(ContainerError::NotATty.into());
    }
    let user_env = user_env(opts)?;
    let mut limits = opts.limits.parse()?;
    limits.all_devices = opts.security.privileged;
    let confinement = opts.security.resolve(&global.root.join("cache"))?;

    let data = DataRoot::open(&global.root).map_err(ContainerError::from)?;
    let hierarchy = cgroup::detect()?;
    // Killed runs leave empty cgroups. Only then are the records read (all
    // of them, kept containers included: too slow for every run): those of
    // runs that are gone are settled, their cgroups removed. An empty cgroup
    // with no record (a run killed before it wrote one) goes after a minute.
    let empty = hierarchy.empty();
    if !empty.is_empty() {
        data.reclaim_stale();
        for (location, age) in empty {
            if age > std::time::Duration::from_secs(60) {
                cgroup::Cgroup::remove_stale(location);
            }
        }
    }
    // 256 random bits in hex, as docker's container ids.
    let id = crate::util::random_hex(32);
    let cgroup = hierarchy.create(&id, &limits)?;
    let joined = net
        .join
        .as_deref()
        .map(|name| network::Joined::find(name, data.find(name).and_then(|s| s.init_pid())))
        .transpose()?;
    let record = data
        .create(state::NewContainer {
            id: &id,
            name: opts.name.as_deref(),
            rootfs: &rootfs,
            command: &args,
            cgroup: Some(cgroup.location().clone()),
            image: opts.image.as_deref(),
            image_id: image.as_ref().map(|i| i.id.to_string()),
            auto_remove: opts.rm,
            userns,
        })
        .map_err(ContainerError::from)?;
    let rw = match &image {
        Some(img) => Some(img.rw_layer(&record.id)?),
        None => None,
    };
    let rootfs = rw.as_ref().map_or(rootfs, |rw| rw.mount_point());
    let hostname = opts.hostname.clone().unwrap_or_else(|| match net.mode {
        // As docker: sharing the host's network means its name too.
        Mode::Host => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        Mode::Container => joined
            .as_ref()
            .map(|j| j.hostname.clone())
            .unwrap_or_default(),
        _ => record.id[..12].to_string(),
    });
    step!(
        "container {} ({}): state in {}",
        &record.id[..12],
        record.name,
        record.path.display()
    );
    let attachment = net.attach(&record.id, &record.name)?;
    let interface = attachment.as_ref().map(|a| a.interface());
    let mut etc_files = vec![("/etc/hostname".to_string(), format!("{hostname}\n"))];
    etc_files.extend(net.etc_files(&hostname, &record.name, interface.as_ref(), joined.as_ref()));

    // Docker's order: its defaults, the image's Env, then -e.
    let image_env = image.as_ref().map(|i| i.env()).unwrap_or_default();
    let config = Config {
        id: record.id.clone(),
        env: env::merge(
            env::merge(env::defaults(&hostname, opts.tty), image_env),
            user_env,
        ),
        hostname,
        rootfs,
        overlay: rw.as_ref().map(|rw| crate::rootfs::overlay::Overlay {
            base: rw.layers.base.clone(),
            lower: rw.layers.lower.clone(),
            upper: rw.layers.upper.clone(),
            work: rw.layers.work.clone(),
        }),
        args,
        workdir,
        user,
        tty: opts.tty,
        interactive: opts.interactive,
        readonly: opts.read_only,
        network: net.mode,
        interface,
        join_netns: joined.map(|j| j.pid),
        etc_files,
        confinement,
        userns,
        reporting: global.reporting.clone(),
        next_step: 0,
    };
    let status = start_and_supervise(config, &cgroup, attachment.as_ref())?;
    // 137 is SIGKILL's status; the cgroup's counter tells whether the
    // kernel's OOM killer sent it.
    let notice = (status == 137 && cgroup.oom_killed()).then(|| Notice::OomKilled {
        name: record.name.clone(),
        limit: cgroup.memory_limit(),
    });
    // What only a live container needs goes now; with --rm, all of it.
    drop(attachment);
    step!("rmdir the cgroup");
    drop(cgroup);
    match rw {
        Some(rw) if !opts.rm => rw.keep(),
        rw => drop(rw),
    }
    if opts.rm {
        step!("remove {} (the container's state)", record.path.display());
    } else {
        step!(
            "mark {} exited ({status}): kept until `containr rm`",
            record.path.display()
        );
    }
    record.finish(status).map_err(ContainerError::from)?;
    Ok(Exit { status, notice })
}

fn check_rootfs(rootfs: Option<&Path>) -> Result<PathBuf, Error> {
    let Some(rootfs) = rootfs else {
        return Err(Error::Usage(
            "containr run needs an IMAGE or --rootfs DIR".into(),
        ));
    };
    match std::fs::metadata(rootfs) {
        Ok(m) if m.is_dir() => std::fs::canonicalize(rootfs).map_err(|source| {
            ContainerError::RootfsAccess {
                path: rootfs.to_path_buf(),
                source,
            }
            .into()
        }),
        Ok(_) => Err(ContainerError::RootfsNotDir(rootfs.to_path_buf()).into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ContainerError::RootfsMissing(rootfs.to_path_buf()).into())
        }
        Err(source) => Err(ContainerError::RootfsAccess {
            path: rootfs.to_path_buf(),
            source,
        }
        .into()),
    }
}

/// `--env-file`s first, then `-e`, so `-e` wins, as with docker.
fn user_env(opts: &RunOptions) -> Result<Vec<String>, Error> {
    let host = |k: &str| std::env::var(k).ok();
    let mut out = Vec::new();
    for path in &opts.env_files {
        let text = std::fs::read_to_string(path).map_err(|source| ContainerError::EnvFileRead {
            path: path.clone(),
            source,
        })?;
        out.extend(
            env::parse_file(&path.display().to_string(), &text, &host)
                .map_err(ContainerError::from)?,
        );
    }
    for arg in &opts.env {
        out.push(env::parse_entry(arg, &host).map_err(ContainerError::from)?);
    }
    Ok(out)
}

/// Clone the init, hand it the config, and supervise it to the end.
fn start_and_supervise(
    mut config: Config,
    cgroup: &Cgroup,
    attachment: Option<&network::Attachment>,
) -> Result<i32, Error> {
    let exe = selfexe::prepare().map_err(ContainerError::sys(
        "preparing containr's binary for the init",
    ))?;
    let (ours, theirs) = Channel::pair().map_err(ContainerError::sys("socketpair"))?;

    // Blocked before the clone so none is lost in between; the child
    // unblocks them before it execs.
    let mut handled = SigSet::empty();
    handled.add(Signal::SIGCHLD);
    for sig in HANDLED {
        handled.add(sig);
    }
    handled
        .thread_block()
        .map_err(ContainerError::sys_nix("sigprocmask"))?;
    let signals = SignalFd::with_flags(&handled, SfdFlags::SFD_CLOEXEC)
        .map_err(ContainerError::sys_nix("signalfd"))?;

    let stdin = std::io::stdin();
    let raw_mode = if config.tty && config.interactive {
        Some(
            tty::RawMode::enable(stdin.as_fd())
                .map_err(ContainerError::sys_nix("setting the terminal to raw mode"))?,
        )
    } else {
        None
    };

    let namespaces =
        Namespaces::for_container(config.network.new_namespace(), config.userns.is_some());
    let argv = vec![
        c"containr".to_owned(),
        c"init".to_owned(),
        std::ffi::CString::new(theirs.as_fd().as_raw_fd().to_string()).expect("digits"),
    ];
    let target = cgroup.clone_target();
    let ready = match config.userns {
        Some(_) => Some(
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(ContainerError::sys_nix("pipe"))?,
        ),
        None => None,
    };
    let (init, placed) = namespace::clone_and_exec(
        namespaces,
        &ChildExec {
            exe: match &exe {
                selfexe::SelfExe::Sealed(fd) => namespace::Exe::Sealed(fd.as_fd()),
                selfexe::SelfExe::ReadOnly { path, locked } => namespace::Exe::ReadOnlyBind {
                    path,
                    locked: *locked,
                },
            },
            keep_fd: theirs.as_fd(),
            argv,
            cgroup: target.as_ref().map(|f| f.as_fd()),
            userns_ready: ready.as_ref().map(|(r, _)| r.as_fd()),
        },
    )?;
    drop(theirs);
    drop(exe);
    step!("the init (host pid {init}) re-execs containr as `containr init`");
    // Placed before it gets its config, so nothing it does escapes the limits.
    let placed = if placed {
        step!("clone3(CLONE_INTO_CGROUP) started the init inside its cgroup");
        Ok(())
    } else {
        cgroup.add(init.as_raw()).map_err(Error::from)
    };
    let plugged = placed.and_then(|()| match attachment {
        Some(a) => a.plug(init.as_raw() as u32).map_err(Error::from),
        None => Ok(()),
    });
    if let Err(e) = plugged {
        // The init may be waiting on the user namespace's pipe as well as
        // for its config: only a kill ends it for sure.
        let _ = kill(init, Signal::SIGKILL);
        let _ = waitpid(init, None);
        return Err(e);
    }

    // A user namespace needs its id maps before the init can be anyone,
    // and the rootfs an idmapped view only the host side can make.
    let idmapped = match config.userns {
        Some(map) => {
            let made = crate::namespace::userns::write_maps(init, map)
                .and_then(|()| {
                    // The child waits for this byte before it execs.
                    let (_, w) = ready.as_ref().expect("made with the user namespace");
                    nix::unistd::write(w, b"1").map_err(|e| crate::namespace::Error::UserNs {
                        what: "waking the init",
                        source: e.into(),
                    })?;
                    Ok(())
                })
                .and_then(|()| match config.overlay.take() {
                    // An image: the whole overlay is made here, idmapped.
                    Some(overlay) => {
                        crate::namespace::userns::idmapped_overlay(&overlay, init, map)
                    }
                    None => crate::namespace::userns::idmapped_rootfs(&config.rootfs, init),
                });
            match made {
                Ok(tree) => Some(tree),
                Err(e) => {
                    let _ = kill(init, Signal::SIGKILL);
                    let _ = waitpid(init, None);
                    return Err(e.into());
                }
            }
        }
        None => None,
    };
    config.next_step = explain::next_step();
    if ours
        .send_with_fd(
            &Message::Config(Box::new(config.clone())),
            idmapped.as_ref().map(|t| t.as_fd()),
        )
        .is_err()
    {
        // The init died before reading: its status says why.
        return Ok(status_code(waitpid(init, None).ok()));
    }

    let mut master: Option<OwnedFd> = None;
    let mut failure = None;
    loop {
        match ours.recv() {
            Ok(Some((Message::Pty, fd))) => {
                if let Some(fd) = &fd
                    && let Some(ws) = host_window_size()
                {
                    tty::set_window_size(fd.as_fd(), &ws);
                }
                master = fd;
            }
            Ok(Some((Message::Started { next_step }, _))) => {
                explain::continue_from(next_step);
                break;
            }
            Ok(Some((Message::Failed { code, message }, _))) => {
                failure = Some(Error::InContainer { code, message });
                break;
            }
            // The init died without a word (killed, or crashed).
            Ok(Some(_)) | Ok(None) | Err(_) => break,
        }
    }
    let status = supervise(init, &signals, master, config.interactive)?;
    drop(raw_mode);
    step!(
        "waitpid(init) -> {status}: PID 1 exited, the kernel tore down its namespaces and mounts"
    );
    match failure {
        Some(e) => Err(e),
        None => Ok(status),
    }
}

fn host_window_size() -> Option<libc::winsize> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    tty::window_size(stdin.as_fd()).or_else(|| tty::window_size(stdout.as_fd()))
}

/// Wait for the init to exit: forward signals, and with a terminal, copy
/// bytes between the host's stdio and the pty master.
fn supervise(
    init: Pid,
    signals: &SignalFd,
    master: Option<OwnedFd>,
    interactive: bool,
) -> Result<i32, Error> {
    if let Some(m) = &master {
        nix::fcntl::fcntl(
            m.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(ContainerError::sys_nix("fcntl"))?;
    }
    let stdin = std::io::stdin();
    let mut stdin_open = interactive && master.is_some();
    let mut master_open = master.is_some();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let (Some(m), true) = (&master, master_open) {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(ContainerError::sys_nix("poll")(e).into()),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut idx = 1;
        if let (Some(m), true) = (&master, master_open) {
            if ready[idx] {
                master_open = copy_out(m.as_fd(), &mut buf) != Copied::Closed;
            }
            idx += 1;
        }
        if stdin_open && ready[idx] {
            let m = master.as_ref().expect("stdin is read only with a terminal");
            stdin_open = copy_in(m.as_fd(), &mut buf);
        }
        if ready[0]
            && let Some(status) = handle_signal(init, signals, master.as_ref())?
        {
            // The container is gone; what it wrote last is still in
            // the pty's buffer.
            if let (Some(m), true) = (&master, master_open) {
                while copy_out(m.as_fd(), &mut buf) == Copied::Some {}
            }
            return Ok(status);
        }
    }
}

/// What one read from the pty master gave.
#[derive(Debug, PartialEq, Eq)]
enum Copied {
    Some,
    /// Nothing to read right now (a spurious wake-up, or drained).
    Nothing,
    /// Every slave side is closed: the container's terminal is gone.
    Closed,
}

/// Copy what the container wrote to our stdout.
fn copy_out(master: BorrowedFd<'_>, buf: &mut [u8]) -> Copied {
    match nix::unistd::read(master.as_raw_fd(), buf) {
        Ok(0) | Err(nix::Error::EIO) => Copied::Closed,
        Ok(n) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&buf[..n]).and_then(|_| out.flush());
            Copied::Some
        }
        Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => Copied::Nothing,
        Err(_) => Copied::Closed,
    }
}

/// Copy keystrokes to the container; false at end of input.
fn copy_in(master: BorrowedFd<'_>, buf: &mut [u8]) -> bool {
    let n = match nix::unistd::read(libc::STDIN_FILENO, buf) {
        Ok(0) | Err(_) => return false,
        Ok(n) => n,
    };
    let mut rest = &buf[..n];
    while !rest.is_empty() {
        match nix::unistd::write(master, rest) {
            Ok(w) => rest = &rest[w..],
            // The master is non-blocking: wait until the container reads.
            Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {
                let _ = poll(
                    &mut [PollFd::new(master, PollFlags::POLLOUT)],
                    PollTimeout::from(100u8),
                );
            }
            Err(_) => break,
        }
    }
    true
}

/// Handle one pending signal; the init's exit status once it has exited.
fn handle_signal(
    init: Pid,
    signals: &SignalFd,
    master: Option<&OwnedFd>,
) -> Result<Option<i32>, Error> {
    let Ok(Some(info)) = signals.read_signal() else {
        return Ok(None);
    };
    match Signal::try_from(info.ssi_signo as i32) {
        Ok(Signal::SIGCHLD) => match waitpid(init, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => Ok(None),
            Ok(status) => Ok(Some(status_code(Some(status)))),
            Err(e) => Err(ContainerError::sys_nix("waitpid")(e).into()),
        },
        Ok(Signal::SIGWINCH) => {
            if let (Some(m), Some(ws)) = (master, host_window_size()) {
                tty::set_window_size(m.as_fd(), &ws);
            }
            Ok(None)
        }
        Ok(sig) => {
            step!("forward {sig} to the container");
            let _ = kill(init, sig);
            Ok(None)
        }
        Err(_) => Ok(None),
    }
}

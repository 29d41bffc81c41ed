//! The monitor: what keeps a detached container (`run -d`) company after
//! `containr` has returned, as conmon does for podman.
//!
//! `containr run -d` forks it before anything else is done; the monitor
//! checks and resolves the request ([`prepare`]), leaves
//! the command line's session (`setsid`), creates and starts the container
//! with its stdout and stderr on pipes of its own, and tells the command
//! line over a pipe whether the container runs (its id) or why not (the
//! message and status `run` exits with). From then on it is a process of
//! its own, with `/dev/null` for stdio:
//!
//! - it is the parent (and a child subreaper) of the container's init, and
//!   the owner of its record: if it is SIGKILLed, the init dies of its
//!   parent-death signal and the next command settles the record as a
//!   killed `containr run`'s (`Exited (137)`, cgroup, network and `--rm`
//!   layer reclaimed);
//! - it writes what the container prints to its log ([`logs`](super::logs)),
//!   and holds the pty of `-t` containers;
//! - it passes the signals it gets on to the container, collects its exit
//!   status, applies the restart policy, and runs `delete`.
//!
//! One thread, no allocation while the container is quiet; its memory is
//! what the fork inherited, trimmed (`malloc_trim`) once the container
//! runs.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};
use serde::{Deserialize, Serialize};

use super::attach::{End, Hub};
use super::health::{Action, Checker};
use super::init::status_code;
use super::logs::{Driver, LogConfig, LogWriter, Stream};
use super::run::{Created, LifeFlags, RunOptions, Started};
use super::state::{Life, RestartPolicy, Status, now_ns};
use super::{Error, create, delete, prepare, start};
use crate::explain::Reporting;
use crate::registry::PullOptions;
use crate::step;

/// What the monitor tells `containr run -d`.
#[derive(Debug, Serialize, Deserialize)]
enum Report {
    Running { id: String },
    Failed { code: i32, message: String },
}

impl Report {
    /// Why the container could not start, with its status.
    fn failed(e: &Error) -> Report {
        Report::Failed {
            code: e.status(),
            message: e.to_string(),
        }
    }

    /// Tell `run -d` (or `start`), on the monitor's report pipe. Nobody may
    /// be reading any more (the command line was killed): not the
    /// container's failure.
    fn send(self, report: &std::fs::File) {
        let _ = (&*report).write_all(&serde_json::to_vec(&self).expect("plain data"));
    }
}

/// Check `--restart`, `--log-driver`, `--log-opt`, `--stop-signal` and
/// `--stop-timeout` (the image's `StopSignal` if no `--stop-signal`): what
/// the record keeps of them, and the log's configuration.
pub fn life(
    flags: &LifeFlags,
    detach: bool,
    rm: bool,
    image_stop_signal: Option<&str>,
) -> Result<(Life, LogConfig), Error> {
    let restart = match flags.restart.as_deref() {
        Some(s) => parse_restart(s)?,
        None => RestartPolicy::No,
    };
    if restart != RestartPolicy::No && rm {
        return Err(Error::RestartAndRm);
    }
    let log = LogConfig::parse(flags.log_driver.as_deref(), &flags.log_opts)?;
    let stop_signal = flags.stop_signal.as_deref().or(image_stop_signal);
    if let Some(s) = stop_signal {
        parse_signal(s)?;
    }
    let life = Life {
        restart,
        log_driver: detach.then(|| driver_name(log.driver).to_string()),
        stop_signal: stop_signal.map(str::to_string),
        stop_timeout: flags.stop_timeout,
        log_opts: flags.log_opts.clone(),
        ..Life::default()
    };
    Ok((life, log))
}

/// `--log-driver`'s name for `driver`, as the record keeps it.
pub(crate) fn driver_name(driver: Driver) -> &'static str {
    match driver {
        Driver::JsonFile => "json-file",
        Driver::None => "none",
    }
}

/// `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn parse_restart(s: &str) -> Result<RestartPolicy, Error> {
    let bad = || Error::BadRestart(s.to_string());
    Ok(match s.split_once(':') {
        None => match s {
            "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => RestartPolicy::OnFailure { max: 0 },
            _ => return Err(bad()),
        },
        Some(("on-failure", n)) => RestartPolicy::OnFailure {
            max: n.parse().map_err(|_| bad())?,
        },
        Some(_) => return Err(bad()),
    })
}

/// A signal by name (`TERM`, `SIGTERM`, any case) or number.
pub fn parse_signal(s: &str) -> Result<i32, Error> {
    super::oci::lifecycle::parse_signal(s).map_err(|_| Error::BadSignal(s.to_string()))
}

/// `containr run -d`: start the container under a monitor of its own; its
/// id once it runs, or why it does not.
pub fn run_detached(
    opts: &RunOptions,
    root: &Path,
    reporting: &Reporting,
    pull: &PullOptions,
) -> Result<String, Error> {
    fork_monitor(None, |report, _| {
        monitor(opts, root, reporting, pull, report)
    })
}

/// An attached `containr run` whose container has a restart policy or a
/// health check, which its monitor applies: made under a monitor as with
/// `run -d`, then attached (output, stdin with `-i`, the terminal with
/// `-t`) until its first exit, whose status is returned; the policy goes on
/// in the background, as docker's.
pub fn run_attached(
    mut prepared: super::Prepared,
    root: &Path,
    reporting: &Reporting,
) -> Result<i32, Error> {
    let (tty, interactive) = (prepared.tty(), prepared.interactive());
    prepared.hand_to_monitor();
    let (ours, theirs) = UnixStream::pair().map_err(Error::sys("socketpair"))?;
    let id = fork_monitor(Some(theirs), |report, starter| {
        monitor_prepared(prepared, tty, interactive, root, reporting, report, starter)
    })?;
    if !tty {
        proxy_signals(root, &id);
    }
    Ok(match attach_starter(&id, ours, tty, !interactive)? {
        End::Exited(code) => code,
        // The container runs on.
        End::Detached => 0,
        // Dropped for reading too slowly, or its monitor was killed (and
        // the container with it): its status from its record.
        End::Closed => super::state::DataRoot::open(root)
            .map_err(Error::from)
            .and_then(|data| super::lifecycle::wait(&data, &id))
            .unwrap_or(super::state::KILLED_RUN_STATUS),
    })
}

/// docker's `--sig-proxy` (without a terminal, whose keys are the
/// container's): the signals this command gets go to the container's
/// command, as an attached `run` without a monitor passes them on. A
/// thread of the command line (not of the monitor) waits for them.
fn proxy_signals(root: &Path, id: &str) {
    use nix::sys::signal::SigSet;
    let mut set = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        set.add(sig);
    }
    // Blocked here before the thread starts, which inherits the mask: the
    // signals wait for its sigwait.
    if set.thread_block().is_err() {
        return;
    }
    let (root, id) = (root.to_path_buf(), id.to_string());
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            if let Ok(s) = super::state::DataRoot::open(&root).and_then(|d| d.lookup(&id)) {
                let _ = s.signal_init(sig as i32);
            }
        }
    });
}

/// Relay a started container's stdio on `starter` until it exits or the
/// detach keys are typed, with our terminal raw if it has one.
pub fn attach_starter(
    name: &str,
    starter: UnixStream,
    tty: bool,
    no_stdin: bool,
) -> Result<End, Error> {
    let stdin = std::io::stdin();
    let raw = (tty && !no_stdin && super::tty::is_terminal(stdin.as_fd()))
        .then(|| super::tty::RawMode::enable(stdin.as_fd()).ok())
        .flatten();
    let keys = super::attach::parse_keys("ctrl-p,ctrl-q")?;
    let end = super::attach::relay(name, starter, &keys, no_stdin, true);
    drop(raw);
    Ok(end?)
}

/// `containr start` of a created or exited container: a new monitor makes
/// it again from its record and starts it; its id once it runs.
/// With `starter` (`start -a`), the monitor takes its other end as an
/// attached client before the container starts.
pub fn start_detached(
    root: &Path,
    name: &str,
    starter: Option<UnixStream>,
) -> Result<String, Error> {
    let data = super::state::DataRoot::open(root)?;
    let state = data.lookup(name)?;
    if state.is_live() && state.status != Status::Created {
        return Ok(state.id);
    }
    super::state::clear_stopped(&state.dir());
    fork_monitor(starter, |report, starter| {
        let send = |code: i32, message: String| Report::Failed { code, message }.send(&report);
        let record = match data.adopt(&state.id) {
            Ok(r) => r,
            Err(e) => {
                send(125, Error::from(e).to_string());
                return 125;
            }
        };
        let mut record = record;
        if record.state().life.log_driver.is_none() {
            // Run attached before: from now on its monitor logs it.
            let _ = record.update(|s| s.life.log_driver = Some("json-file".into()));
        }
        let life = &record.state().life;
        let log_config = match LogConfig::parse(life.log_driver.as_deref(), &life.log_opts) {
            Ok(c) => c,
            Err(e) => {
                let _ = record.finish(125);
                send(125, e.to_string());
                return 125;
            }
        };
        let (tty, interactive) =
            (record.state().config.as_ref()).map_or((false, false), |c| (c.tty, c.interactive));
        let _ = nix::unistd::setsid();
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let io = match Stdio::before_create(tty, interactive) {
            Ok(io) => io,
            Err(e) => {
                let _ = record.finish(125);
                send(125, e.to_string());
                return 125;
            }
        };
        let created = super::run::revive(record, root);
        io.detach_self();
        match created {
            Ok(c) => supervise_all(c, io, tty, interactive, &log_config, report, starter),
            Err(e) => {
                send(e.status(), e.to_string());
                125
            }
        }
    })
}

/// Fork a monitor running `body` (which reports on the pipe it is given,
/// and gets `starter`, the monitor's end of an attached client's socket
/// pair); the container's id once the monitor says it runs, or why not.
fn fork_monitor(
    starter: Option<UnixStream>,
    body: impl FnOnce(std::fs::File, Option<UnixStream>) -> i32,
) -> Result<String, Error> {
    let (rx, tx) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys_nix("pipe"))?;
    step!("fork(): the container's monitor, which outlives this command");
    // SAFETY: containr is single-threaded here (a pull runs its threads
    // later, in the child), so the child may allocate and take locks.
    match unsafe { nix::unistd::fork() }.map_err(Error::sys_nix("fork"))? {
        ForkResult::Child => {
            drop(rx);
            let keep = [
                Some(tx.as_raw_fd()),
                starter.as_ref().map(|s| s.as_raw_fd()),
            ];
            close_inherited(&keep.into_iter().flatten().collect::<Vec<_>>());
            // Our stdio becomes the container's log: the walkthrough stays
            // on the user's terminal until the container runs.
            crate::explain::keep_sink();
            let code = body(std::fs::File::from(tx), starter);
            // SAFETY: _exit skips the atexit handlers and buffers that
            // belong to the command line this process was forked from.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(tx);
            drop(starter);
            let mut buf = Vec::new();
            let _ = std::fs::File::from(rx).read_to_end(&mut buf);
            match serde_json::from_slice(&buf) {
                // Running: the monitor is on its own now (reparented when
                // we exit), not waited for.
                Ok(Report::Running { id }) => Ok(id),
                Ok(Report::Failed { code, message }) => {
                    let _ = waitpid(child, None);
                    Err(Error::InContainer { code, message })
                }
                Err(_) => {
                    let status = status_code(waitpid(child, None).ok());
                    Err(Error::InContainer {
                        code: 125,
                        message: format!("the container's monitor ended with status {status}"),
                    })
                }
            }
        }
    }
}

/// Close every descriptor the command line inherited but stdio and
/// `keep`: the monitor outlives its caller, and must not hold a pipe the
/// caller's caller waits to see closed.
fn close_inherited(keep: &[i32]) {
    let mut keep = keep.to_vec();
    keep.sort_unstable();
    let mut from = 3;
    for k in keep.into_iter().chain(std::iter::once(i32::MAX)) {
        if k > from {
            // SAFETY: close_range with integer arguments; nothing in this
            // fresh child owns those descriptors but the ones we keep.
            unsafe { libc::syscall(libc::SYS_close_range, from as u32, (k - 1) as u32, 0u32) };
        }
        from = from.max(k.saturating_add(1));
    }
}

/// The monitor's life; its exit status.
fn monitor(
    opts: &RunOptions,
    root: &Path,
    reporting: &Reporting,
    pull: &PullOptions,
    report: std::fs::File,
) -> i32 {
    let send = |r: Report| r.send(&report);
    let failed = Report::failed;
    // A pull shows its progress on the user's terminal, and Ctrl-C during
    // it ends the monitor with the command line: setsid only after.
    let prepared = match prepare(opts, root, pull) {
        Ok(p) => p,
        Err(e) => {
            send(failed(&e));
            return 125;
        }
    };
    monitor_prepared(
        prepared,
        opts.tty,
        opts.interactive,
        root,
        reporting,
        report,
        None,
    )
}

/// The monitor's life once the request is resolved; its exit status.
fn monitor_prepared(
    prepared: super::Prepared,
    tty: bool,
    interactive: bool,
    root: &Path,
    reporting: &Reporting,
    report: std::fs::File,
    starter: Option<UnixStream>,
) -> i32 {
    let send = |r: Report| r.send(&report);
    let failed = Report::failed;
    step!(
        "setsid() + prctl(PR_SET_CHILD_SUBREAPER): the monitor leaves the terminal's session and will reap the container's init"
    );
    let _ = nix::unistd::setsid();
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let log_config = prepared.log.clone();
    let io = match Stdio::before_create(tty, interactive) {
        Ok(io) => io,
        Err(e) => {
            send(failed(&e));
            return 125;
        }
    };
    let created = create(prepared, root, reporting);
    // The init has its stdio now; ours no longer holds the user's terminal
    // (nor `$(containr run -d …)`'s pipe) open.
    io.detach_self();
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            send(failed(&e));
            return 125;
        }
    };
    supervise_all(created, io, tty, interactive, &log_config, report, starter)
}

/// From a container made (its init waiting for its configuration) to its
/// end: start it, say so on `report`, log it, apply its restart policy,
/// delete it. The monitor's exit status.
fn supervise_all(
    mut created: Created,
    io: Stdio,
    tty: bool,
    interactive: bool,
    log_config: &LogConfig,
    report: std::fs::File,
    starter: Option<UnixStream>,
) -> i32 {
    let send = |r: Report| r.send(&report);
    let failed = Report::failed;
    let mut log = match log_config.driver {
        Driver::None => None,
        Driver::JsonFile => match open_log(&mut created, log_config) {
            Ok(w) => Some(w),
            Err(e) => {
                drop(created);
                send(failed(&e));
                return 125;
            }
        },
    };
    let first_step = crate::explain::next_step();
    let master = match start(&mut created) {
        Ok(Started::Running {
            master,
            failure: None,
        }) => master,
        Ok(Started::Running {
            master,
            failure: Some(e),
        }) => {
            // The init reported why the command cannot run, and exits.
            drop(master);
            let _ = waitpid(created.init_pid(), None);
            drop(created);
            send(failed(&e));
            return e.status();
        }
        Ok(Started::Exited(status)) => {
            drop(created);
            send(Report::Failed {
                code: status,
                message: format!(
                    "the container's init exited with status {status} before it started"
                ),
            });
            return status;
        }
        Err(e) => {
            drop(created);
            send(failed(&e));
            return 125;
        }
    };
    if let (Some(m), Some(ws)) = (&master, &io.winsize) {
        super::tty::set_window_size(m.as_fd(), ws);
    }
    // Where `attach` connects; a container runs without it if need be.
    let mut hub = (created.record_mut().dir().ok()).and_then(|d| Hub::listen(&d).ok());
    if let (Some(h), Some(s)) = (hub.as_mut(), starter) {
        h.add_starter(s);
    }
    take_init_steps(&created, &io, first_step, log.as_mut(), hub.as_mut());
    mark_running(&mut created);
    // The walkthrough ends here, on the user's terminal; it never reaches
    // the log.
    crate::explain::silence();
    send(Report::Running {
        id: created.id().to_string(),
    });
    drop(report);
    // What the fork inherited and the setup used, given back.
    shed_memory();
    let mut master = master;
    let mut io = io;
    let mut backoff = Backoff::default();
    loop {
        let started = Instant::now();
        let mut checker = created
            .record_mut()
            .state()
            .life
            .healthcheck
            .clone()
            .map(|c| {
                let root = created.root().to_path_buf();
                Checker::new(c, &root, created.record_mut())
            });
        let (status, health_restart) = supervise(
            &mut created,
            master.take(),
            &mut io,
            log.as_mut(),
            hub.as_mut(),
            checker.as_mut(),
        );
        if let Some(log) = &mut log {
            log.finish();
        }
        let state = created.record_mut().state().clone();
        let stopped = super::state::was_stopped(&state.dir());
        let restart = match health_restart {
            // --health-on-failure restart: whatever the policy says.
            true => !stopped,
            false => should_restart(
                state.life.restart,
                status,
                state.life.restart_count,
                stopped,
            ),
        };
        // Attached clients get the status once the record says how it
        // ended, as a command run after them expects; but a --rm one's
        // record goes only once its waiters had the status, and an
        // attached client may be one: before, for those.
        let mut close_clients = || {
            if let Some(h) = hub.as_mut() {
                h.close_clients(status);
            }
        };
        if !restart {
            let rm = state.auto_remove;
            if rm {
                close_clients();
            }
            let code = match delete(created, status) {
                Ok(_) => 0,
                Err(_) => 125,
            };
            if !rm {
                close_clients();
            }
            return code;
        }
        let delay = backoff.next(started.elapsed());
        let _ = created.record_mut().update(|s| {
            s.status = Status::Restarting;
            s.exit_code = Some(status);
            s.finished = Some(crate::util::now());
            s.life.finished_ns = Some(now_ns());
            s.life.restart_count += 1;
        });
        close_clients();
        // A stop during the back-off is a stop.
        if wait_until(delay, || super::state::was_stopped(&state.dir())) {
            return match delete(created, status) {
                Ok(_) => 0,
                Err(_) => 125,
            };
        }
        io = match Stdio::before_create(tty, interactive) {
            Ok(io) => io,
            Err(_) => return 125,
        };
        let again = super::run::recreate(created, status);
        io.detach_self();
        created = match again {
            Ok(c) => c,
            Err(_) => return 125,
        };
        let first_step = crate::explain::next_step();
        match start(&mut created) {
            Ok(Started::Running {
                master: m,
                failure: None,
            }) => {
                take_init_steps(&created, &io, first_step, log.as_mut(), hub.as_mut());
                mark_running(&mut created);
                master = m;
                // A stop that came while it was being made again (it saw
                // no init to signal) ends this run at once.
                if super::state::was_stopped(&state.dir()) {
                    let _ = kill(created.init_pid(), Signal::SIGKILL);
                }
            }
            // It could not start this time: that is an exit, for the
            // policy to judge; the init's status is collected as usual.
            Ok(Started::Running {
                failure: Some(e), ..
            }) => {
                let _ = created
                    .record_mut()
                    .update(|s| s.life.error = Some(e.to_string()));
            }
            Ok(Started::Exited(_)) | Err(_) => {}
        }
        shed_memory();
    }
}

/// Give back what the monitor used to set the container up and will not
/// touch again while it waits: free heap (`malloc_trim`), the stack below
/// where it now runs, and the pages of the binary and libraries it read
/// (read-only file mappings without a private copy: dropping them costs a
/// re-read from the page cache if ever touched again). What stays is the
/// loop's own working set.
fn shed_memory() {
    // SAFETY: malloc_trim only returns free memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let here = 0u8;
    // Below the loop's frames, with 16 KiB to spare: pages it touches
    // again there come back zeroed, which is all a fresh frame needs.
    let keep_below = (std::ptr::addr_of!(here) as usize).saturating_sub(16 << 10) & !4095;
    let mut vmas: Vec<(usize, usize, bool, bool)> = Vec::new();
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            let perms = words.next().unwrap_or("");
            let path = words.nth(3).unwrap_or("");
            let file_ro = path.starts_with('/') && !perms.contains('w');
            vmas.push((start, end, file_ro, path == "[stack]"));
        } else if first == "Anonymous:"
            && words.next().is_some_and(|kb| kb != "0")
            && let Some(v) = vmas.last_mut()
        {
            // Private copies (relocations): dropping them would undo them.
            v.2 = false;
        }
    }
    for (start, end, file_ro, stack) in vmas {
        let range = if stack {
            (start, keep_below.min(end))
        } else if file_ro {
            (start, end)
        } else {
            continue;
        };
        if range.1 > range.0 {
            // SAFETY: the stack range lies below every live frame, and a
            // read-only file mapping without private pages is refilled
            // from its file, unchanged, if touched again.
            unsafe {
                libc::madvise(
                    range.0 as *mut libc::c_void,
                    range.1 - range.0,
                    libc::MADV_DONTNEED,
                )
            };
        }
    }
}

/// With `--explain`, the container's init (and its command, before it
/// exec'd) wrote its walkthrough steps, from `first_step` on, on the
/// container's stdout (or stderr), the pipes the monitor logs: written
/// before the command ran, they are first in the pipe, and as many as the
/// step counter advanced. Passed on where the monitor's own steps go (the
/// user's terminal, the first time), never to the log; what the command
/// wrote after them in the same read goes to the log and attached clients.
fn take_init_steps(
    created: &Created,
    io: &Stdio,
    first_step: u64,
    log: Option<&mut LogWriter>,
    hub: Option<&mut Hub>,
) {
    let mut count = crate::explain::next_step().saturating_sub(first_step);
    let (pipe, stream) = match created.config().reporting.explain_to {
        crate::explain::Sink::Stdout => (&io.out, Stream::Stdout),
        crate::explain::Sink::Stderr => (&io.err, Stream::Stderr),
    };
    let Some(pipe) = pipe.as_ref().filter(|_| count > 0) else {
        return;
    };
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as u16;
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::from(left)), Ok(n) if n > 0) {
            return;
        }
        let n = match nix::unistd::read(pipe.as_raw_fd(), &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut end = n;
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' {
                count -= 1;
                if count == 0 {
                    end = i + 1;
                    break;
                }
            }
        }
        crate::explain::forward(&buf[..end]);
        if count == 0 {
            let rest = &buf[end..n];
            if !rest.is_empty() {
                if let Some(log) = log {
                    log.write(stream, rest);
                }
                if let Some(hub) = hub {
                    hub.broadcast(stream, rest);
                }
            }
            return;
        }
    }
}

/// The record says the container runs, since now.
fn mark_running(created: &mut Created) {
    let _ = created.record_mut().update(|s| {
        s.life.started_ns = Some(now_ns());
        s.status = Status::Running;
    });
}

/// Whether `policy` restarts a container that exited with `status`, after
/// `count` restarts, `stopped` by the user or not (docker's rules).
fn should_restart(policy: RestartPolicy, status: i32, count: u32, stopped: bool) -> bool {
    if stopped {
        return false;
    }
    match policy {
        RestartPolicy::No => false,
        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        RestartPolicy::OnFailure { max } => status != 0 && (max == 0 || count < max),
    }
}

/// Docker's restart back-off: 100 ms, doubled at each restart (at most a
/// minute), back to 100 ms once a run lasted 10 s.
#[derive(Debug, Default)]
struct Backoff {
    last: Option<Duration>,
}

impl Backoff {
    fn next(&mut self, ran: Duration) -> Duration {
        let delay = match self.last {
            Some(d) if ran < Duration::from_secs(10) => (d * 2).min(Duration::from_secs(60)),
            _ => Duration::from_millis(100),
        };
        self.last = Some(delay);
        delay
    }
}

/// The container's log, in its directory.
fn open_log(created: &mut Created, config: &LogConfig) -> Result<LogWriter, Error> {
    let dir = created.record_mut().dir()?;
    Ok(LogWriter::open(
        super::logs::path(&dir, created.id()),
        config.clone(),
    )?)
}

/// The container's stdio, as the monitor makes it.
struct Stdio {
    /// Read ends of the pipes on the container's stdout and stderr.
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    /// `-i` without `-t`: the write end of the container's stdin, held
    /// open so it does not read end-of-file, written by `attach`.
    stdin: Option<OwnedFd>,
    null: OwnedFd,
    /// With `-t`, the size of the terminal the monitor was started from
    /// (an attached `run`'s, or `run -d`'s), for the container's pty.
    winsize: Option<libc::winsize>,
}

impl Stdio {
    /// Put on our fds 0, 1 and 2 what the init (and so the command, but
    /// with `-t`) inherits: pipes to the monitor (its log and attached
    /// clients), or `/dev/null`.
    fn before_create(tty: bool, interactive: bool) -> Result<Stdio, Error> {
        let null: OwnedFd = std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(Error::sys("/dev/null"))?
            .into();
        let pipe =
            || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys_nix("pipe"));
        let dup = |from: BorrowedFd<'_>, to: i32| {
            // SAFETY: dup2 onto a standard descriptor, which we own.
            if unsafe { libc::dup2(from.as_raw_fd(), to) } < 0 {
                return Err(Error::sys("dup2")(std::io::Error::last_os_error()));
            }
            Ok(())
        };
        let mut io = Stdio {
            out: None,
            err: None,
            stdin: None,
            null,
            winsize: tty.then(super::run::host_window_size).flatten(),
        };
        if interactive && !tty {
            let (r, w) = pipe()?;
            dup(r.as_fd(), 0)?;
            io.stdin = Some(w);
        } else {
            dup(io.null.as_fd(), 0)?;
        }
        // Pipes even with --log-driver none: attached clients (an attached
        // `run`, `attach`) still get the output, as docker's.
        if tty {
            dup(io.null.as_fd(), 1)?;
            dup(io.null.as_fd(), 2)?;
            return Ok(io);
        }
        step!(
            "pipe2() twice, dup2() onto fds 1 and 2: the container's stdout and stderr go to the monitor, which logs them"
        );
        for (fd, slot) in [(1, &mut io.out), (2, &mut io.err)] {
            let (r, w) = pipe()?;
            // A burst is absorbed while the monitor writes the last one.
            // SAFETY: fcntl with integer arguments only.
            unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
            dup(w.as_fd(), fd)?;
            *slot = Some(r);
        }
        Ok(io)
    }

    /// The init has inherited its stdio: ours becomes `/dev/null`.
    fn detach_self(&self) {
        for fd in 0..3 {
            // SAFETY: dup2 onto a standard descriptor, which we own.
            unsafe { libc::dup2(self.null.as_raw_fd(), fd) };
        }
    }
}

/// Until the init exits: log what the container writes, pass signals on,
/// run its health checks. Its status, and whether its health check asks
/// for it to start again (`--health-on-failure restart`).
fn supervise(
    created: &mut Created,
    master: Option<OwnedFd>,
    io: &mut Stdio,
    mut log: Option<&mut LogWriter>,
    mut hub: Option<&mut Hub>,
    mut checker: Option<&mut Checker>,
) -> (i32, bool) {
    let mut health_restart = false;
    // When a health restart's stop turns to SIGKILL.
    let mut kill_at: Option<Instant> = None;
    let init = created.init_pid();
    // (fd, stream): the pty is the container's stdout, as docker logs it.
    let mut sources: Vec<(BorrowedFd<'_>, Stream)> = Vec::new();
    if let Some(m) = &master {
        sources.push((m.as_fd(), Stream::Stdout));
    }
    if let Some(o) = &io.out {
        sources.push((o.as_fd(), Stream::Stdout));
    }
    if let Some(e) = &io.err {
        sources.push((e.as_fd(), Stream::Stderr));
    }
    // What attached clients type goes to the pty, or to a -i pipe.
    let stdin = master.as_ref().or(io.stdin.as_ref()).map(|f| f.as_fd());
    for fd in sources.iter().map(|(fd, _)| *fd).chain(stdin) {
        let _ = nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut status = None;
    while status.is_none() {
        let mut fds = vec![PollFd::new(created.signals().as_fd(), PollFlags::POLLIN)];
        fds.extend(
            sources
                .iter()
                .map(|(fd, _)| PollFd::new(*fd, PollFlags::POLLIN)),
        );
        let hub_fds = hub.as_ref().map(|h| h.poll_fds()).unwrap_or_default();
        fds.extend(hub_fds.iter().map(|(fd, events)| PollFd::new(*fd, *events)));
        // The health check's output, and its timer (or the end of a
        // health restart's stop) as poll's timeout.
        let mut wake = kill_at.map(|t| t.saturating_duration_since(Instant::now()));
        if let Some(c) = checker.as_deref() {
            fds.extend(c.fd().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
            wake = Some(wake.map_or(c.timeout(), |w| w.min(c.timeout())));
        }
        let timeout = match wake {
            Some(w) => {
                let ms = w.as_millis().min(i32::MAX as u128 - 1) as i32;
                PollTimeout::try_from(ms + 1).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(_) => break,
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let hub_len = hub_fds.len();
        drop(hub_fds);
        let mut closed = Vec::new();
        for (i, (fd, stream)) in sources.iter().enumerate() {
            if ready[i + 1]
                && !copy(
                    *fd,
                    *stream,
                    &mut buf,
                    log.as_deref_mut(),
                    hub.as_deref_mut(),
                )
            {
                closed.push(i);
            }
        }
        if let Some(h) = hub.as_deref_mut() {
            let stdin = master.as_ref().or(io.stdin.as_ref()).map(|f| f.as_fd());
            if h.serve(&ready[1 + sources.len()..][..hub_len], stdin, &mut buf) {
                // The starter's input ended: so does a -i pipe's (a pty
                // has no end of input to pass on).
                io.stdin = None;
            }
        }
        for i in closed.into_iter().rev() {
            sources.remove(i);
        }
        if ready[0] {
            status = handle_signal(created, init);
        }
        if status.is_none()
            && let Some(c) = checker.as_deref_mut()
        {
            let done = c.done();
            let action = c.tick(created.record_mut(), init);
            if c.done() != done {
                // What the check's fork and its record update touched.
                shed_memory();
            }
            match action {
                Some(Action::Kill) => {
                    let _ = kill(init, Signal::SIGKILL);
                }
                Some(Action::Restart) => {
                    // A stop, as `containr stop` does it, then a start.
                    health_restart = true;
                    let life = &created.record_mut().state().life;
                    let sig = (life.stop_signal.as_deref())
                        .and_then(|s| parse_signal(s).ok())
                        .and_then(|n| Signal::try_from(n).ok())
                        .unwrap_or(Signal::SIGTERM);
                    let grace = Duration::from_secs(life.stop_timeout.unwrap_or(10).into());
                    let _ = kill(init, sig);
                    kill_at = Some(Instant::now() + grace);
                }
                None => {}
            }
        }
        if status.is_none() && kill_at.is_some_and(|t| Instant::now() >= t) {
            let _ = kill(init, Signal::SIGKILL);
            kill_at = None;
        }
    }
    if let Some(c) = checker {
        c.stop();
    }
    // What it wrote last is still in the pipes.
    for (fd, stream) in &sources {
        while copy(
            *fd,
            *stream,
            &mut buf,
            log.as_deref_mut(),
            hub.as_deref_mut(),
        ) && has_data(*fd)
        {}
    }
    (status.unwrap_or(125), health_restart)
}

/// One read from `fd` into the log and to attached clients; false once it
/// is closed.
fn copy(
    fd: BorrowedFd<'_>,
    stream: Stream,
    buf: &mut [u8],
    log: Option<&mut LogWriter>,
    hub: Option<&mut Hub>,
) -> bool {
    match nix::unistd::read(fd.as_raw_fd(), buf) {
        Ok(0) | Err(nix::Error::EIO) => false,
        Ok(n) => {
            if let Some(log) = log {
                log.write(stream, &buf[..n]);
            }
            if let Some(hub) = hub {
                hub.broadcast(stream, &buf[..n]);
            }
            true
        }
        Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => true,
        Err(_) => false,
    }
}

fn has_data(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN))
}

/// One pending signal: the init's status once it has exited; others are
/// passed on to the container (`SIGWINCH` has no terminal to follow here).
fn handle_signal(created: &Created, init: Pid) -> Option<i32> {
    let info = created.signals().read_signal().ok()??;
    match Signal::try_from(info.ssi_signo as i32) {
        Ok(Signal::SIGCHLD) => match waitpid(init, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => None,
            Ok(status) => Some(status_code(Some(status))),
            Err(_) => Some(125),
        },
        Ok(Signal::SIGWINCH) => None,
        Ok(sig) => {
            let _ = kill(init, sig);
            None
        }
        Err(_) => None,
    }
}

/// Wait until `done` holds, checking every 20 ms, for at most `limit`.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_are_docker_s() {
        use RestartPolicy::*;
        assert_eq!(parse_restart("on-failure:3").unwrap(), OnFailure { max: 3 });
        assert_eq!(parse_restart("unless-stopped").unwrap(), UnlessStopped);
        assert!(parse_restart("on-failure:x").is_err());
        assert!(parse_restart("always:2").is_err());
        assert!(!should_restart(No, 1, 0, false));
        assert!(should_restart(Always, 0, 9, false));
        assert!(!should_restart(Always, 0, 0, true));
        assert!(!should_restart(OnFailure { max: 0 }, 0, 0, false));
        assert!(should_restart(OnFailure { max: 0 }, 1, 99, false));
        assert!(should_restart(OnFailure { max: 2 }, 1, 1, false));
        assert!(!should_restart(OnFailure { max: 2 }, 1, 2, false));
    }

    #[test]
    fn the_back_off_doubles_and_resets_after_ten_seconds() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(5);
        let ms = |d: Duration| d.as_millis();
        assert_eq!(ms(b.next(quick)), 100);
        assert_eq!(ms(b.next(quick)), 200);
        assert_eq!(ms(b.next(quick)), 400);
        assert_eq!(ms(b.next(Duration::from_secs(11))), 100);
        for _ in 0..20 {
            b.next(quick);
        }
        assert_eq!(b.next(quick), Duration::from_secs(60));
    }
}

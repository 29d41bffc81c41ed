//! Health checks (docker's `HEALTHCHECK`, `--health-*`): what the record
//! keeps of them, and the [`Checker`] the monitor drives from its poll
//! loop.
//!
//! A check is an exec into the container, the same code as `containr
//! exec` ([`super::enter::exec`]), run in a child the monitor forks so its
//! loop never blocks: the child's stdout and stderr are a pipe the monitor
//! reads (the first 4 KiB kept), and a check that overruns its timeout has
//! its process group killed (the exec'd process leads a session of its
//! own) and counts as a failure with docker's message.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};
use serde::{Deserialize, Serialize};

use super::Error;
use super::state::ContainerRecord;
use crate::image::config::Healthcheck;

/// How many results the record keeps, and how much of each one's output.
const KEEP_RESULTS: usize = 5;
const MAX_OUTPUT: usize = 4096;

/// The `--health-*` flags, as given.
#[derive(Debug, Clone, Default)]
pub struct HealthFlags {
    pub cmd: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<u32>,
    pub start_period: Option<String>,
    pub no_healthcheck: bool,
    pub on_failure: Option<String>,
}

/// What the monitor does when the container becomes unhealthy (podman's
/// `--health-on-failure`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    #[default]
    None,
    /// SIGKILL; the restart policy decides what follows.
    Kill,
    /// Kill and start again, whatever the restart policy.
    Restart,
}

/// A container's health check, resolved from its flags and its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    /// `["CMD", args...]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    pub interval_ns: u64,
    pub timeout_ns: u64,
    pub start_period_ns: u64,
    pub retries: u32,
    #[serde(default)]
    pub on_failure: OnFailure,
}

/// `State.Health` in `inspect`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<Probe>,
}

/// One check's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

const DEFAULT_INTERVAL: u64 = 30_000_000_000;
const DEFAULT_TIMEOUT: u64 = 30_000_000_000;
const DEFAULT_RETRIES: u32 = 3;
/// How long a check's waiter has to end once its process was killed.
const GRACE: Duration = Duration::from_secs(1);

/// The check a container runs: `--no-healthcheck` disables the image's,
/// `--health-cmd` replaces its test, and each other flag its field (docker's
/// rules); none without a test, or with the image's `["NONE"]`.
pub fn resolve(
    flags: &HealthFlags,
    image: Option<&Healthcheck>,
) -> Result<Option<HealthConfig>, Error> {
    let dur = |s: &Option<String>, flag: &str| -> Result<Option<u64>, Error> {
        s.as_deref()
            .map(|s| {
                parse_duration(s).ok_or_else(|| {
                    Error::BadHealth(format!(
                        "invalid argument {s:?} for \"{flag}\" flag: time: invalid duration"
                    ))
                })
            })
            .transpose()
    };
    let interval = dur(&flags.interval, "--health-interval")?;
    let timeout = dur(&flags.timeout, "--health-timeout")?;
    let start_period = dur(&flags.start_period, "--health-start-period")?;
    let on_failure = match flags.on_failure.as_deref() {
        None | Some("none") => OnFailure::None,
        Some("kill") => OnFailure::Kill,
        Some("restart") => OnFailure::Restart,
        Some(s) => {
            return Err(Error::BadHealth(format!(
                "invalid --health-on-failure {s:?}: expected none, kill or restart"
            )));
        }
    };
    if flags.no_healthcheck {
        if flags.cmd.is_some() {
            return Err(Error::BadHealth(
                "--no-healthcheck conflicts with --health-* options".into(),
            ));
        }
        return Ok(None);
    }
    let test = match (&flags.cmd, image.and_then(|h| h.test.clone())) {
        (Some(cmd), _) => vec!["CMD-SHELL".to_string(), cmd.clone()],
        (None, Some(t)) => t,
        (None, None) => return Ok(None),
    };
    match test.first().map(String::as_str) {
        Some("NONE") | None => return Ok(None),
        Some("CMD") | Some("CMD-SHELL") if test.len() > 1 => {}
        _ => {
            return Err(Error::BadHealth(format!(
                "the image's health check {test:?} is not CMD or CMD-SHELL"
            )));
        }
    }
    let image_ns =
        |f: fn(&Healthcheck) -> Option<i64>| image.and_then(f).filter(|&n| n > 0).map(|n| n as u64);
    let retries = flags.retries.or_else(|| {
        image
            .and_then(|h| h.retries)
            .filter(|&n| n > 0)
            .map(|n| n as u32)
    });
    Ok(Some(HealthConfig {
        test,
        interval_ns: interval
            .or(image_ns(|h| h.interval))
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_INTERVAL),
        timeout_ns: timeout
            .or(image_ns(|h| h.timeout))
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_TIMEOUT),
        start_period_ns: start_period.or(image_ns(|h| h.start_period)).unwrap_or(0),
        retries: retries.filter(|&n| n > 0).unwrap_or(DEFAULT_RETRIES),
        on_failure,
    }))
}

/// A duration as docker's flags take it (Go's `time.ParseDuration`).
pub fn parse_duration(s: &str) -> Option<u64> {
    crate::util::parse_go_duration(s)
}

/// What the monitor should do after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Kill,
    Restart,
}

/// The check in flight.
struct Running {
    pid: Pid,
    out: Option<OwnedFd>,
    output: Vec<u8>,
    start: String,
    deadline: Instant,
    timed_out: bool,
    exit: Option<i32>,
}

/// The monitor's side of a container's health checks.
pub struct Checker {
    config: HealthConfig,
    root: std::path::PathBuf,
    id: String,
    started: Instant,
    next: Instant,
    running: Option<Running>,
    /// Checks finished so far.
    done: u64,
}

impl Checker {
    /// Checks for the container `id` that started now; its record says
    /// `starting`.
    pub fn new(config: HealthConfig, root: &Path, record: &mut ContainerRecord) -> Checker {
        let _ = record.update(|s| {
            s.life.health = Some(Health {
                status: "starting".into(),
                ..Health::default()
            })
        });
        let now = Instant::now();
        Checker {
            next: now + Duration::from_nanos(config.interval_ns),
            config,
            root: root.to_path_buf(),
            id: record.state().id.clone(),
            started: now,
            running: None,
            done: 0,
        }
    }

    /// How many checks have finished.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// How long the monitor may sleep before [`Checker::tick`] has work.
    pub fn timeout(&self) -> Duration {
        let due = match &self.running {
            Some(r) if !r.timed_out => r.deadline,
            // Killed: its end is seen on SIGCHLD and the pipe's close;
            // look again soon in case the pipe stays held open.
            Some(_) => Instant::now() + Duration::from_millis(100),
            None => self.next,
        };
        due.saturating_duration_since(Instant::now())
    }

    /// The check's output pipe, for the monitor to poll.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.running.as_ref()?.out.as_ref().map(|f| f.as_fd())
    }

    /// Read what the check wrote, reap it, kill it at its timeout, start
    /// the next one when due; what to do if the container just became
    /// unhealthy.
    pub fn tick(&mut self, record: &mut ContainerRecord, init: Pid) -> Option<Action> {
        let now = Instant::now();
        // The monitor's children are the init and the check in flight; any
        // other is a check's process whose waiter went first (the monitor
        // is a subreaper): it goes, or the container's PID namespace could
        // not end while it is not reaped.
        let check = self.running.as_ref().map(|r| r.pid);
        for child in children(nix::unistd::getpid()) {
            let pid = Pid::from_raw(child);
            if pid != init && Some(pid) != check {
                let _ = kill(Pid::from_raw(-child), Signal::SIGKILL);
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
            }
        }
        if let Some(r) = &mut self.running {
            if let Some(fd) = &r.out {
                let mut buf = [0u8; 4096];
                loop {
                    match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                        Ok(0) => {
                            r.out = None;
                            break;
                        }
                        Ok(n) => {
                            let room = MAX_OUTPUT.saturating_sub(r.output.len());
                            r.output.extend_from_slice(&buf[..n.min(room)]);
                        }
                        Err(nix::Error::EINTR) => {}
                        Err(nix::Error::EAGAIN) => break,
                        Err(_) => {
                            r.out = None;
                            break;
                        }
                    }
                }
            }
            if r.exit.is_none()
                && let Ok(status) = waitpid(r.pid, Some(WaitPidFlag::WNOHANG))
                && status != WaitStatus::StillAlive
            {
                r.exit = Some(super::init::status_code(Some(status)));
            }
            if r.exit.is_none() && now >= r.deadline {
                // The exec'd process leads its own session: its group goes,
                // and the child that waits for it reaps it and exits. Again
                // on each tick: exec may have been forking it just now.
                for child in children(r.pid) {
                    let _ = kill(Pid::from_raw(-child), Signal::SIGKILL);
                    let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
                }
                r.timed_out = true;
            }
            if r.exit.is_none() && r.timed_out && now >= r.deadline + GRACE {
                let _ = kill(r.pid, Signal::SIGKILL);
            }
            // A killed check is done once reaped, whoever holds its pipe;
            // one that exited, once the pipe closed or at its timeout.
            if r.exit.is_some() && (r.out.is_none() || r.timed_out || now >= r.deadline) {
                let r = self.running.take().expect("checked above");
                return self.record(r, record);
            }
            return None;
        }
        if now >= self.next {
            self.next = now + Duration::from_nanos(self.config.interval_ns);
            if super::pause::is_paused(record.state()) {
                return None;
            }
            match self.spawn() {
                Ok(r) => self.running = Some(r),
                Err(e) => {
                    let start = super::logs::rfc3339_nano(super::state::now_ns());
                    let probe = Running {
                        pid: Pid::from_raw(0),
                        out: None,
                        output: e.to_string().into_bytes(),
                        start,
                        deadline: now,
                        timed_out: false,
                        exit: Some(-1),
                    };
                    return self.record(probe, record);
                }
            }
        }
        None
    }

    /// Fork a child that execs the test in the container.
    fn spawn(&self) -> Result<Running, Error> {
        let args = match self.config.test[0].as_str() {
            "CMD-SHELL" => vec![
                "/bin/sh".into(),
                "-c".into(),
                self.config.test[1..].join(" "),
            ],
            _ => self.config.test[1..].to_vec(),
        };
        let (rx, tx) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys_nix("pipe"))?;
        let start = super::logs::rfc3339_nano(super::state::now_ns());
        crate::step!("fork() + exec into the container: a health check");
        // SAFETY: the monitor is single-threaded, so the child may allocate
        // and take locks; it only execs and exits.
        match unsafe { nix::unistd::fork() }.map_err(Error::sys_nix("fork"))? {
            ForkResult::Child => {
                drop(rx);
                // SAFETY: dup2 onto our standard descriptors.
                unsafe {
                    libc::dup2(tx.as_raw_fd(), 1);
                    libc::dup2(tx.as_raw_fd(), 2);
                }
                drop(tx);
                // None of the monitor's descriptors (the container's stdin,
                // its pty, attach clients) is held open by a check.
                // SAFETY: close_range with integer arguments; this child
                // owns nothing above stdio that it will use.
                unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
                let opts = super::enter::ExecOptions {
                    args,
                    ..Default::default()
                };
                let code = match super::enter::exec(
                    &self.root,
                    &self.id,
                    &opts,
                    &crate::explain::Reporting::default(),
                ) {
                    Ok(code) => code,
                    Err(e) => {
                        let _ = std::io::Write::write_all(
                            &mut std::io::stderr(),
                            format!("{e}\n").as_bytes(),
                        );
                        e.status()
                    }
                };
                // SAFETY: _exit skips the monitor's atexit handlers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(tx);
                let _ = nix::fcntl::fcntl(
                    rx.as_raw_fd(),
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                );
                Ok(Running {
                    pid: child,
                    out: Some(rx),
                    output: Vec::new(),
                    start,
                    deadline: Instant::now() + Duration::from_nanos(self.config.timeout_ns),
                    timed_out: false,
                    exit: None,
                })
            }
        }
    }

    /// Keep a finished check's result and the status it leads to (docker's
    /// rules); the action if it just became unhealthy.
    fn record(&mut self, r: Running, record: &mut ContainerRecord) -> Option<Action> {
        let (exit_code, output) = match r.timed_out {
            true => (
                -1,
                format!(
                    "Health check exceeded timeout ({})",
                    format_duration(self.config.timeout_ns)
                ),
            ),
            false => (
                r.exit.unwrap_or(-1),
                String::from_utf8_lossy(&r.output).into_owned(),
            ),
        };
        self.done += 1;
        // The next one an interval after this one ended, as docker's.
        self.next = Instant::now() + Duration::from_nanos(self.config.interval_ns);
        let probe = Probe {
            start: r.start,
            end: super::logs::rfc3339_nano(super::state::now_ns()),
            exit_code,
            output,
        };
        let in_start_period =
            self.started.elapsed() < Duration::from_nanos(self.config.start_period_ns);
        let (retries, on_failure) = (self.config.retries, self.config.on_failure);
        let mut action = None;
        let _ = record.update(|s| {
            let h = s.life.health.get_or_insert_with(Health::default);
            h.log.push(probe);
            if h.log.len() > KEEP_RESULTS {
                h.log.remove(0);
            }
            if exit_code == 0 {
                h.failing_streak = 0;
                h.status = "healthy".into();
            } else if !(h.status == "starting" && in_start_period) {
                h.failing_streak += 1;
                if h.failing_streak >= retries && h.status != "unhealthy" {
                    h.status = "unhealthy".into();
                    action = match on_failure {
                        OnFailure::None => None,
                        OnFailure::Kill => Some(Action::Kill),
                        OnFailure::Restart => Some(Action::Restart),
                    };
                }
            }
        });
        action
    }

    /// End a check still running (the container is gone).
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take()
            && r.exit.is_none()
        {
            for child in children(r.pid) {
                let _ = kill(Pid::from_raw(-child), Signal::SIGKILL);
                let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
            }
            let _ = kill(r.pid, Signal::SIGKILL);
            let _ = waitpid(r.pid, None);
        }
    }
}

/// The children of process `pid` (`/proc/PID/task/PID/children`).
fn children(pid: Pid) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Nanoseconds as Go prints a duration (`30s`, `1.5s`, `200ms`, `1m30s`).
pub fn format_duration(ns: u64) -> String {
    if ns < 1_000_000_000 {
        return match ns % 1_000_000 {
            0 => format!("{}ms", ns / 1_000_000),
            _ => format!("{}µs", ns / 1000),
        };
    }
    let secs = ns as f64 / 1e9;
    let (h, m) = ((secs / 3600.0) as u64, ((secs % 3600.0) / 60.0) as u64);
    let s = secs % 60.0;
    let s = match s.fract() {
        0.0 => format!("{}s", s as u64),
        _ => format!("{s}s"),
    };
    match (h, m) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_s() {
        assert_eq!(parse_duration("1s"), Some(1_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        for bad in ["", "1", "s", "-1s", "1x", "1s2"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(format_duration(30_000_000_000), "30s");
        assert_eq!(format_duration(200_000_000), "200ms");
        assert_eq!(format_duration(90_000_000_000), "1m30s");
    }

    #[test]
    fn flags_override_the_image_s_check() {
        let image = Healthcheck {
            test: Some(vec!["CMD".into(), "true".into()]),
            interval: Some(1_000_000_000),
            retries: Some(5),
            ..Default::default()
        };
        let c = resolve(&HealthFlags::default(), Some(&image))
            .unwrap()
            .unwrap();
        assert_eq!(c.test, ["CMD", "true"]);
        assert_eq!(
            (c.interval_ns, c.timeout_ns, c.retries),
            (1_000_000_000, DEFAULT_TIMEOUT, 5)
        );
        let flags = HealthFlags {
            cmd: Some("exit 1".into()),
            interval: Some("200ms".into()),
            ..Default::default()
        };
        let c = resolve(&flags, Some(&image)).unwrap().unwrap();
        assert_eq!(c.test, ["CMD-SHELL", "exit 1"]);
        assert_eq!(c.interval_ns, 200_000_000);
        let none = HealthFlags {
            no_healthcheck: true,
            ..Default::default()
        };
        assert!(resolve(&none, Some(&image)).unwrap().is_none());
        let off = Healthcheck {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        };
        assert!(
            resolve(&HealthFlags::default(), Some(&off))
                .unwrap()
                .is_none()
        );
        let bad = HealthFlags {
            cmd: Some("true".into()),
            interval: Some("5".into()),
            ..Default::default()
        };
        assert!(resolve(&bad, None).is_err());
    }
}

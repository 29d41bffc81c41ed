//! `--explain`: a numbered walkthrough of every primitive as it happens.
//!
//! Each step is an ordinary tracing event with the target [`TARGET`], emitted
//! at DEBUG level with the [`step!`](crate::step) macro. With `--explain`, the
//! `ExplainLayer` prints those events as numbered lines; with
//! `--log-level debug` the regular formatter prints them with everything else.
//! One source of truth serves both audiences.
//!
//! A container spans three processes (the host-side parent, the container's
//! init, and the command it forks), so the step counter is handed from one to
//! the next (see `container::channel`) and the time base is one
//! `CLOCK_MONOTONIC` reading taken by the parent.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{self, Targets};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// The tracing target of walkthrough steps.
pub const TARGET: &str = "containr::explain";

/// Record one step of the walkthrough.
#[macro_export]
macro_rules! step {
    ($($arg:tt)*) => {
        ::tracing::debug!(target: $crate::explain::TARGET, $($arg)*)
    };
}

/// How the user asked containr to report what it does. Travels to the
/// container's init inside its configuration so both sides report alike.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reporting {
    /// Print the numbered walkthrough.
    pub explain: bool,
    /// Where the walkthrough goes.
    pub explain_to: Sink,
    /// How each step is written.
    #[serde(default)]
    pub explain_format: Format,
    /// A tracing filter directive such as `debug` or `containr=trace`.
    pub log_level: Option<String>,
    /// `CLOCK_MONOTONIC` in nanoseconds when the user's command started.
    pub t0_ns: u64,
}

/// Where the walkthrough is written. It is output the user asked for, so
/// stdout, where `| less` and `> file` find it; stderr when stdout carries
/// data of its own (a tar from `export` or `save`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sink {
    #[default]
    Stdout,
    Stderr,
}

/// How each step is written: a line of text, or a JSON object per line
/// (`--explain=json`, for tools and graders).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    #[default]
    Text,
    Json,
}

static NEXT_STEP: AtomicU64 = AtomicU64::new(1);
static T0_NS: AtomicU64 = AtomicU64::new(0);
/// The walkthrough is on, and where it goes (true: stderr).
static EXPLAINING: AtomicBool = AtomicBool::new(false);
static TO_STDERR: AtomicBool = AtomicBool::new(false);
/// Where steps go instead of stdout or stderr, once [`keep_sink`] was
/// called: a monitor's own stdio becomes the container's log.
static REDIRECT: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// From now on, write steps to a copy of the stdout (or stderr) this
/// process has now, whatever becomes of it: a container's monitor keeps
/// the terminal of the `containr run -d` that forked it, until the
/// container runs ([`silence`]). Nothing without `--explain`.
pub fn keep_sink() {
    if !EXPLAINING.load(Ordering::Relaxed) {
        return;
    }
    let fd = if TO_STDERR.load(Ordering::Relaxed) {
        2
    } else {
        1
    };
    // SAFETY: fcntl with integer arguments; the new descriptor is ours.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if copy >= 0 {
        // SAFETY: just returned by the kernel, owned by nothing else.
        let file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(copy) };
        *REDIRECT.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
    }
}

/// From now on, drop steps (closing what [`keep_sink`] kept): nobody
/// reads them any more.
pub fn silence() {
    if !EXPLAINING.load(Ordering::Relaxed) {
        return;
    }
    *REDIRECT.lock().unwrap_or_else(|e| e.into_inner()) = std::fs::File::create("/dev/null").ok();
}

/// Write `lines`, steps another process formatted (a container's init),
/// where [`keep_sink`] sends this process's; dropped if it was not called.
pub fn forward(lines: &[u8]) {
    if let Some(f) = REDIRECT.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        let _ = (&*f).write_all(lines);
    }
}

/// `CLOCK_MONOTONIC` now, in nanoseconds; comparable across processes.
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// The number the next step will get; handed to the next process.
pub fn next_step() -> u64 {
    NEXT_STEP.load(Ordering::Relaxed)
}

/// Continue numbering where another process stopped.
pub fn continue_from(step: u64) {
    NEXT_STEP.store(step, Ordering::Relaxed);
}

/// Install the subscriber `reporting` asks for. Installs nothing when neither
/// flag is given, so the common path pays no formatting cost.
pub fn install(reporting: &Reporting) -> Result<(), String> {
    T0_NS.store(reporting.t0_ns, Ordering::Relaxed);
    EXPLAINING.store(reporting.explain, Ordering::Relaxed);
    TO_STDERR.store(reporting.explain_to == Sink::Stderr, Ordering::Relaxed);
    if !reporting.explain && reporting.log_level.is_none() {
        return Ok(());
    }
    let explain = reporting.explain.then(|| {
        ExplainLayer(reporting.explain_to, reporting.explain_format)
            .with_filter(filter::filter_fn(|meta| meta.target() == TARGET))
    });
    let log = match &reporting.log_level {
        Some(level) => {
            // Targets: `debug`, or `containr=debug,warn`; no regex engine
            // in the binary, which the sealed copy makes every run pay for.
            let filter: Targets = level
                .parse()
                .map_err(|e| format!("invalid --log-level {level:?}: {e}"))?;
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_target(true)
                    .with_filter(filter),
            )
        }
        None => None,
    };
    // A second install in the same process (tests) keeps the first one.
    let _ = tracing_subscriber::registry()
        .with(explain)
        .with(log)
        .try_init();
    Ok(())
}

/// Prints walkthrough steps as `[ n] +t ms  message [man(2), lab N]`, or as
/// JSON lines.
struct ExplainLayer(Sink, Format);

impl<S: Subscriber> Layer<S> for ExplainLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut text = MessageText(String::new());
        event.record(&mut text);
        let n = NEXT_STEP.fetch_add(1, Ordering::Relaxed);
        let ms = monotonic_ns().saturating_sub(T0_NS.load(Ordering::Relaxed)) as f64 / 1e6;
        // One write per line so lines from the parent and the container's
        // processes never interleave mid-line on a shared stream.
        let line = match self.1 {
            Format::Text => format!("[{n:>2}] +{ms:7.3}ms  {}\n", annotated(&text.0)),
            Format::Json => format!("{}\n", json_line(n, ms, &text.0)),
        };
        if let Some(f) = REDIRECT.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = (&*f).write_all(line.as_bytes());
            return;
        }
        let _ = match self.0 {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes()).and_then(|()| out.flush())
            }
            Sink::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
        };
    }
}

/// What a step's text starts with, the manual page that documents it, and
/// the lab of the lab book (docs/labs/) that explains it. The first entry
/// whose prefix the text starts with wins, so longer prefixes come first.
const REFERENCES: &[(&str, &str, Option<u8>)] = &[
    ("clone(", "clone(2)", Some(1)),
    ("clone3(", "clone(2)", Some(3)),
    ("unshare(CLONE_NEWCGROUP)", "cgroup_namespaces(7)", Some(3)),
    ("unshare(", "unshare(2)", Some(1)),
    ("setns(", "setns(2)", Some(1)),
    ("sethostname(", "sethostname(2)", Some(1)),
    ("ioctl(SIOCSIFFLAGS", "netdevice(7)", Some(1)),
    ("fork(", "fork(2)", Some(1)),
    ("PID 1 execs", "execve(2)", Some(1)),
    ("fork;", "mount_setattr(2)", Some(6)),
    ("waitpid(", "waitpid(2)", Some(1)),
    ("forward ", "kill(2)", Some(1)),
    ("mount(overlay", "mount(2)", Some(4)),
    ("mount(", "mount(2)", Some(2)),
    ("move_mount(", "move_mount(2)", Some(2)),
    ("pivot_root(", "pivot_root(2)", Some(2)),
    ("umount2(", "umount2(2)", Some(2)),
    ("fsopen(overlay)", "fsopen(2)", Some(4)),
    ("fsopen(", "fsopen(2)", Some(2)),
    ("open_tree(", "mount_setattr(2)", Some(6)),
    ("mask ", "mount(2)", Some(2)),
    ("bind read-only ", "mount(2)", Some(2)),
    ("bind the host's /dev", "mount(2)", Some(2)),
    ("mknod ", "mknod(2)", Some(2)),
    ("symlink ", "symlink(2)", Some(2)),
    ("chdir(", "chdir(2)", Some(2)),
    ("mkdir ", "cgroups(7)", Some(3)),
    ("rmdir the cgroup", "cgroups(7)", Some(3)),
    ("echo ", "cgroups(7)", Some(3)),
    ("devices cgroup", "cgroups(7)", Some(3)),
    ("bpf(", "bpf(2)", Some(3)),
    ("unpack layer", "openat2(2)", Some(4)),
    ("fsync ", "fsync(2)", Some(4)),
    ("GET ", "", Some(4)),
    ("index: ", "", Some(4)),
    ("flock(", "flock(2)", Some(5)),
    ("lease ", "", Some(5)),
    ("release ", "", Some(5)),
    ("reclaim ", "", Some(5)),
    ("RTM_", "rtnetlink(7)", Some(5)),
    ("netlink in the container", "rtnetlink(7)", Some(5)),
    ("NFT_MSG_", "nft(8)", Some(5)),
    ("nft ", "nft(8)", Some(5)),
    ("sysctl ", "sysctl(8)", Some(5)),
    ("bind(", "bind(2)", Some(5)),
    ("setgroups(", "setgroups(2)", Some(6)),
    ("capabilities:", "capabilities(7)", Some(6)),
    ("prctl(PR_SET_NO_NEW_PRIVS", "prctl(2)", Some(6)),
    ("seccomp", "seccomp(2)", Some(6)),
    ("write /proc/", "user_namespaces(7)", Some(6)),
    ("the init will run ", "mount(2)", Some(7)),
    ("memfd_create(", "memfd_create(2)", Some(7)),
    ("the init (host pid", "execve(2)", Some(7)),
    ("execve(", "execve(2)", Some(8)),
    ("setsid(", "setsid(2)", None),
    ("send the pty master", "unix(7)", None),
];

/// The manual page and the lab of a step, from the start of its text.
fn reference(text: &str) -> (Option<&'static str>, Option<u8>) {
    REFERENCES
        .iter()
        .find(|(prefix, _, _)| text.starts_with(prefix))
        .map(|(_, man, lab)| ((!man.is_empty()).then_some(*man), *lab))
        .unwrap_or((None, None))
}

/// A step's text with its manual page and lab, `[pivot_root(2), lab 2]`.
fn annotated(text: &str) -> String {
    match reference(text) {
        (Some(man), Some(lab)) => format!("{text}  [{man}, lab {lab}]"),
        (Some(man), None) => format!("{text}  [{man}]"),
        (None, Some(lab)) => format!("{text}  [lab {lab}]"),
        (None, None) => text.to_string(),
    }
}

/// A step that starts with a call, `name(args)...: why`, split into its
/// parts; the parentheses may nest (`move_mount(open_tree(...), ...)`).
fn call_parts(text: &str) -> Option<(&str, &str, &str)> {
    let open = text.find('(')?;
    let name = &text[..open];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let mut depth = 0usize;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    let close = open + i;
                    let rest = &text[close + 1..];
                    return Some((name, &text[open + 1..close], rest));
                }
            }
            _ => {}
        }
    }
    None
}

/// One step of `--explain=json`, fields in this order.
#[derive(Serialize)]
struct JsonStep<'a> {
    step: u64,
    time_ms: f64,
    /// The system call the step makes, where it names one.
    syscall: Option<&'a str>,
    /// Its arguments, as the text shows them.
    arguments: Option<&'a str>,
    /// Why containr does it.
    why: Option<&'a str>,
    man: Option<&'static str>,
    lab: Option<u8>,
    /// The whole step, as `--explain` prints it.
    text: &'a str,
}

/// One step as a JSON line: the call and its arguments where the text
/// starts with one (`name(args)`), else the system call its man page
/// names; why, after `: ` or `-> `.
fn json_line(step: u64, time_ms: f64, text: &str) -> String {
    let (man, lab) = reference(text);
    let (syscall, arguments, rest) = match call_parts(text) {
        Some((name, args, rest)) => (Some(name), Some(args), rest),
        None => (man.and_then(|m| m.strip_suffix("(2)")), None, text),
    };
    let why = rest
        .split_once(": ")
        .or_else(|| rest.split_once("-> "))
        .map(|(_, why)| why);
    serde_json::to_string(&JsonStep {
        step,
        time_ms: (time_ms * 1000.0).round() / 1000.0,
        syscall,
        arguments,
        why,
        man,
        lab,
        text,
    })
    .expect("a step serializes")
}

/// Flags as the man pages spell them, `MS_NOSUID|MS_NODEV`, the one
/// spelling every step uses; `0` for none.
pub fn flag_names<'a, T>(names: impl Iterator<Item = (&'a str, T)>) -> String {
    let names: Vec<&str> = names.map(|(name, _)| name).collect();
    if names.is_empty() {
        "0".to_string()
    } else {
        names.join("|")
    }
}

/// Collects an event's message and fields into one line of text.
/// The text of a tracing event: its message, then its other fields.
pub struct MessageText(pub String);

impl Visit for MessageText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::mount::MsFlags;

    #[test]
    fn flags_are_spelled_as_the_man_pages_do() {
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        assert_eq!(
            flag_names(flags.iter_names()),
            "MS_NOSUID|MS_NODEV|MS_NOEXEC"
        );
        assert_eq!(flag_names(MsFlags::empty().iter_names()), "0");
    }

    #[test]
    fn steps_name_their_man_page_and_lab() {
        assert_eq!(
            annotated("pivot_root(\".\", \".\") in /r: the rootfs becomes /"),
            "pivot_root(\".\", \".\") in /r: the rootfs becomes /  [pivot_root(2), lab 2]"
        );
        assert_eq!(
            reference("unshare(CLONE_NEWCGROUP): x"),
            (Some("cgroup_namespaces(7)"), Some(3))
        );
        assert_eq!(
            reference("unshare(CLONE_NEWNS)"),
            (Some("unshare(2)"), Some(1))
        );
        assert_eq!(reference("mount(overlay, /x)"), (Some("mount(2)"), Some(4)));
        assert_eq!(
            reference("lease 10.88.0.2 for container x"),
            (None, Some(5))
        );
        assert_eq!(
            annotated("container 1234 (x): state in /y"),
            "container 1234 (x): state in /y"
        );
    }

    #[test]
    fn json_lines_split_the_call_its_arguments_and_why() {
        let line = json_line(
            15,
            41.5134,
            "move_mount(open_tree(tmpfs file), /etc/hosts): bind over the rootfs' own",
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["step"], 15);
        assert_eq!(v["time_ms"], 41.513);
        assert_eq!(v["syscall"], "move_mount");
        assert_eq!(v["arguments"], "open_tree(tmpfs file), /etc/hosts");
        assert_eq!(v["why"], "bind over the rootfs' own");
        assert_eq!(v["man"], "move_mount(2)");
        assert_eq!(v["lab"], 2);
        let v: serde_json::Value =
            serde_json::from_str(&json_line(2, 1.0, "lease 10.88.0.2 for container x")).unwrap();
        assert!(v["syscall"].is_null() && v["arguments"].is_null() && v["why"].is_null());
        assert_eq!(v["text"], "lease 10.88.0.2 for container x");
        assert_eq!(v["lab"], 5);
        let line = json_line(4, 2.0, "clone(CLONE_NEWPID) -> the child is PID 1");
        assert!(line.starts_with(r#"{"step":4,"time_ms":2.0,"syscall":"clone","arguments":"CLONE_NEWPID","why":"the child is PID 1","#), "{line}");
        let v: serde_json::Value =
            serde_json::from_str(&json_line(9, 1.0, "mknod /dev/{null,zero} (docker's)")).unwrap();
        assert_eq!(v["syscall"], "mknod");
    }
}

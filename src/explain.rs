//! `--explain`: a numbered walkthrough of every primitive as it happens.
//!
//! Each step is an ordinary tracing event with the target [`TARGET`], emitted
//! at DEBUG level with the [`step!`](crate::step) macro. With `--explain`, the
//! [`ExplainLayer`] prints those events as numbered lines; with
//! `--log-level debug` the regular formatter prints them with everything else.
//! One source of truth serves both audiences.
//!
//! A container spans three processes (the host-side parent, the container's
//! init, and the command it forks), so the step counter is handed from one to
//! the next (see `container::channel`) and the time base is one
//! `CLOCK_MONOTONIC` reading taken by the parent.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

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

static NEXT_STEP: AtomicU64 = AtomicU64::new(1);
static T0_NS: AtomicU64 = AtomicU64::new(0);

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
    if !reporting.explain && reporting.log_level.is_none() {
        return Ok(());
    }
    let explain = reporting.explain.then(|| {
        ExplainLayer(reporting.explain_to)
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

/// Prints walkthrough steps as `[ n] +t ms  message`.
struct ExplainLayer(Sink);

impl<S: Subscriber> Layer<S> for ExplainLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut text = MessageText(String::new());
        event.record(&mut text);
        let n = NEXT_STEP.fetch_add(1, Ordering::Relaxed);
        let ms = monotonic_ns().saturating_sub(T0_NS.load(Ordering::Relaxed)) as f64 / 1e6;
        // One write per line so lines from the parent and the container's
        // processes never interleave mid-line on a shared stream.
        let line = format!("[{n:>2}] +{ms:7.3}ms  {}\n", text.0);
        let _ = match self.0 {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes()).and_then(|()| out.flush())
            }
            Sink::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
        };
    }
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
struct MessageText(String);

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
}

//! The spec's hooks: a program run at a point of the lifecycle, with the
//! container's state document on its stdin, within its `timeout`.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use super::Error;

/// A hook without a `timeout` still may not hang the runtime (and so the
/// engine driving it) forever.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Run `hooks` in order, each with `state` (JSON) on stdin; the first that
/// fails, times out or cannot start stops the rest.
pub fn run(kind: &'static str, hooks: &[Hook], state: &[u8]) -> Result<(), Error> {
    for hook in hooks {
        run_one(kind, hook, state)?;
    }
    Ok(())
}

/// Run `hooks`, reporting each failure as a warning (a `tracing` event the
/// command line writes where runc writes its warnings) and going on: for
/// `poststart` and `poststop`, whose failures the spec says must not stop
/// the lifecycle.
pub fn run_warn(kind: &'static str, hooks: &[Hook], state: &[u8]) {
    for hook in hooks {
        if let Err(e) = run_one(kind, hook, state) {
            tracing::warn!("{e}");
        }
    }
}

fn run_one(kind: &'static str, hook: &Hook, state: &[u8]) -> Result<(), Error> {
    let path = hook.path().clone();
    let fail = |why: String| Error::Hook {
        kind,
        path: path.clone(),
        why,
    };
    let mut cmd = Command::new(&path);
    if let Some((arg0, rest)) = hook.args().as_deref().and_then(|a| a.split_first()) {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    // A hook that does not read its stdin gets EPIPE: not its failure.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(state);
    }
    let timeout = match hook.timeout() {
        Some(t) if t > 0 => Duration::from_secs(t as u64),
        Some(t) => return Err(fail(format!("timeout {t} must be positive"))),
        None => DEFAULT_TIMEOUT,
    };
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    loop {
        match child.try_wait().map_err(|e| fail(e.to_string()))? {
            Some(status) if status.success() => return Ok(()),
            Some(status) => return Err(fail(format!("failed: {status}"))),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "timed out after {} s and was killed",
                    timeout.as_secs()
                )));
            }
            None => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
    }
}

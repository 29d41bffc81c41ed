//! Where `import` and `load` read an archive from: a file, or stdin (`-`,
//! or no `-i` for `load`), as docker's do.
//!
//! Both commands read the archive once, front to back, straight into the
//! blob store, so stdin needs no spooling. What a read leaves half-made is
//! a blob writer's temporary file, removed when the writer is dropped on an
//! error: for Ctrl-C (or a `kill`) to take that path too instead of killing
//! the process mid-write, SIGINT, SIGTERM and SIGHUP only interrupt the
//! read while the archive is open.

use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// An archive's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Stdin,
}

impl Source {
    /// A command-line argument: `-` (or none) is stdin.
    pub fn from_arg(arg: Option<PathBuf>) -> Source {
        match arg {
            Some(p) if p.as_os_str() != "-" => Source::File(p),
            _ => Source::Stdin,
        }
    }

    /// What error messages call it.
    pub fn label(&self) -> &Path {
        match self {
            Source::File(p) => p,
            Source::Stdin => Path::new("stdin"),
        }
    }

    /// Open it for one front-to-back read. A terminal is refused: nobody
    /// types a tar.
    pub fn open(&self) -> io::Result<Reader> {
        let inner: Box<dyn Read> = match self {
            Source::File(p) => Box::new(std::fs::File::open(p)?),
            Source::Stdin => {
                let stdin = io::stdin();
                if stdin.is_terminal() {
                    return Err(io::Error::other(
                        "is a terminal: pipe or redirect an archive into it, or name a file",
                    ));
                }
                Box::new(stdin)
            }
        };
        Ok(Reader {
            inner,
            _signals: Interruptible::install(),
        })
    }
}

/// The signal that interrupted the last read, 0 if none did.
static CAUGHT: AtomicI32 = AtomicI32::new(0);

extern "C" fn catch(sig: libc::c_int) {
    CAUGHT.store(sig, Ordering::SeqCst);
}

const SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// SIGINT, SIGTERM and SIGHUP caught (and blocking reads interrupted,
/// without `SA_RESTART`) for as long as it lives; the previous handlers
/// come back when it is dropped.
struct Interruptible {
    previous: Vec<(Signal, SigAction)>,
}

impl Interruptible {
    fn install() -> Interruptible {
        CAUGHT.store(0, Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(catch),
            SaFlags::empty(),
            SigSet::empty(),
        );
        let previous = SIGNALS
            .iter()
            // SAFETY: the handler only stores to an atomic, which is
            // async-signal-safe.
            .filter_map(|&sig| unsafe { sigaction(sig, &action) }.ok().map(|p| (sig, p)))
            .collect();
        Interruptible { previous }
    }
}

impl Drop for Interruptible {
    fn drop(&mut self) {
        for (sig, action) in &self.previous {
            // SAFETY: puts back the action that was there before install.
            let _ = unsafe { sigaction(*sig, action) };
        }
    }
}

/// The signal that interrupted reading an archive, if one did.
pub fn interrupted() -> Option<i32> {
    match CAUGHT.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// An open archive; a caught signal turns the next read into an error.
pub struct Reader {
    inner: Box<dyn Read>,
    _signals: Interruptible,
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // Not ErrorKind::Interrupted: io::copy would retry that.
            if let Some(sig) = interrupted() {
                return Err(io::Error::other(format!("interrupted by signal {sig}")));
            }
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dash_or_nothing_is_stdin() {
        assert_eq!(Source::from_arg(None), Source::Stdin);
        assert_eq!(Source::from_arg(Some("-".into())), Source::Stdin);
        assert_eq!(
            Source::from_arg(Some("./-".into())),
            Source::File("./-".into())
        );
        assert_eq!(Source::Stdin.label(), Path::new("stdin"));
    }
}

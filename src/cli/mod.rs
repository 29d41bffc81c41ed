//! The command line's side of every command: call the library, print what
//! it returns (docker's formats), turn failures into one line and an exit
//! status. One file per command group, as `main.rs` dispatches them; this
//! file holds what they share.

pub mod container;
pub mod enter;
pub mod fsops;
pub mod generate;
pub mod image;
pub mod lifecycle;
pub mod network;
pub mod oci;
pub mod progress;
pub mod volume;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use containr::explain::Reporting;

use crate::error::{Error, RUNTIME_ERROR};

/// Options that apply to every command.
#[derive(Debug, Clone)]
pub struct Global {
    /// containr's data root.
    pub root: PathBuf,
    pub reporting: Reporting,
    /// Registries reached over plain http (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// What a registry may make a pull spend (`--min-rate` and others).
    pub pull_limits: containr::registry::limits::Limits,
}

impl Global {
    /// How to pull, with the progress rendered by `progress` (see
    /// [`progress::new`]).
    pub fn pull_options(
        &self,
        platform: Option<String>,
        progress: std::sync::Arc<dyn containr::registry::progress::Progress>,
    ) -> containr::registry::PullOptions {
        containr::registry::PullOptions {
            platform,
            insecure: self.insecure_registries.clone(),
            progress,
            limits: self.pull_limits.clone(),
            ..Default::default()
        }
    }
}

pub fn require_root(what: &'static str) -> Result<(), Error> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Error::NotRoot(what))
    }
}

/// Columns padded to their widest cell, three spaces apart, as docker's.
pub fn print_table<const N: usize>(head: [&str; N], rows: &[[String; N]]) {
    let mut width = head.map(str::len);
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    let mut line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   ", w = width[i]));
            }
        }
        let _ = writeln!(out, "{}", s.trim_end());
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// Write a tar made by `write` to `output` (through a temporary file
/// renamed at the end: never half a file) or to stdout (not a terminal).
pub fn write_tar<E: Into<Error>>(
    output: Option<PathBuf>,
    write: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<(), Error> {
    let Some(path) = output else {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() {
            return Err(Error::Usage(
                "refusing to write a tar to a terminal: use -o FILE or a redirect".into(),
            ));
        }
        return write(&mut std::io::stdout().lock()).map_err(Into::into);
    };
    let tmp = path.with_extension("containr-tmp");
    let io = |p: &Path, e: std::io::Error| Error::Usage(format!("{}: {e}", p.display()));
    let result = std::fs::File::create(&tmp)
        .map_err(|e| io(&tmp, e))
        .and_then(|mut f| {
            write(&mut f).map_err(Into::into)?;
            f.sync_all().map_err(|e| io(&tmp, e))
        })
        .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| io(&path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Ask `label` on stdout and read one line from stdin, as `docker login`
/// asks for what its flags did not give. With `echo` false and a terminal
/// on stdin, what is typed is not shown (the terminal's ECHO is off until
/// the line is read); from a pipe or a file, the line is just read.
pub fn prompt(label: &str, echo: bool) -> Result<String, Error> {
    use nix::sys::termios::{self, LocalFlags, SetArg};
    use std::io::BufRead;
    use std::os::fd::AsFd;
    let what = label.trim_end_matches([':', ' ']).to_lowercase();
    let fail = |e: std::io::Error| Error::Usage(format!("reading the {what}: {e}"));
    let mut out = std::io::stdout();
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let saved = if echo {
        None
    } else {
        termios::tcgetattr(fd).ok()
    };
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        // Before the prompt shows, so that nothing typed after it is
        // echoed; TCSANOW, not TCSAFLUSH, which would drop what is typed
        // ahead.
        termios::tcsetattr(fd, SetArg::TCSANOW, &quiet).map_err(|e| fail(e.into()))?;
    }
    write!(out, "{label}")
        .and_then(|()| out.flush())
        .map_err(fail)?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = &saved {
        // The Enter that ended the line was not echoed either.
        let _ = termios::tcsetattr(fd, SetArg::TCSANOW, saved);
        let _ = writeln!(out);
    }
    if read.map_err(fail)? == 0 {
        return Err(Error::Usage(format!("no {what} given (end of input)")));
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// The end of a command: its status, or its error on one line and the
/// status that goes with it.
pub fn finish(result: Result<i32, Error>) -> ExitCode {
    match result {
        Ok(status) => exit(status),
        Err(e) => {
            eprintln!("{}", e.user_message());
            exit(e.exit_code())
        }
    }
}

/// Help and version go to stdout with status 0; anything else is a one-line
/// error with docker's status for a bad command line, 125, naming what is
/// wrong and the help of the command it is wrong for.
pub fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let _ = e.print();
        return exit(RUNTIME_ERROR);
    }
    eprintln!(
        "containr: {}",
        one_line_usage_error(&e.render().to_string())
    );
    exit(RUNTIME_ERROR)
}

/// clap's rendered error, `error: WHAT\n  DETAIL...\n\nUsage: containr
/// CMD ...\n...`, as `WHAT DETAIL (see 'containr CMD --help')`.
fn one_line_usage_error(text: &str) -> String {
    let what: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let what = what.join(" ");
    let what = what.trim_start_matches("error: ");
    let what = if what.is_empty() {
        "invalid command line"
    } else {
        what
    };
    // The command's words are the usage line's up to the first option,
    // placeholder or operand: `containr image inspect <IMAGE>...`.
    let command: Vec<&str> = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .unwrap_or("containr")
        .split_whitespace()
        .take_while(|w| {
            w.bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'_')
                && !w.starts_with('-')
        })
        .collect();
    let command = if command.is_empty() {
        "containr".to_string()
    } else {
        command.join(" ")
    };
    format!("{what} (see '{command} --help')")
}

/// `init FD` or `exec-init FD`, exactly so: the internal commands a
/// container's init and exec's helper are exec'd as, at every container
/// start, read without building clap's command tree first (1.6 M
/// instructions for containr's, 0.7 M for containr-oci's, by callgrind of
/// `--version`). Anything else is `None`.
pub fn internal_command(args: &[std::ffi::OsString]) -> Option<(&str, i32)> {
    match args {
        [_, command, fd] => {
            let command = command
                .to_str()
                .filter(|c| ["init", "exec-init"].contains(c))?;
            let fd = fd.to_str()?.parse().ok().filter(|fd: &i32| *fd >= 0)?;
            Some((command, fd))
        }
        _ => None,
    }
}

pub fn exit(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}

//! The commands of a container's life after `run`: `run -d`, `logs`,
//! `stop`, `kill`, `wait`.

use std::io::Write;
use std::path::Path;

use containr::container::logs::{Entry, Query, Stream};
use containr::container::state::DataRoot;
use containr::container::{self, RunOptions, lifecycle};

use super::{Global, require_root};
use crate::error::Error;

/// `containr run -d`: the container's full id once it runs.
pub fn run_detached(
    global: &Global,
    opts: &RunOptions,
    platform: Option<String>,
    quiet: bool,
) -> Result<i32, Error> {
    require_root("run")?;
    let pull = global.pull_options(platform, super::progress::new(quiet, false));
    let id = container::monitor::run_detached(opts, &global.root, &global.reporting, &pull)?;
    println!("{id}");
    Ok(0)
}

/// Run `each` on every name: the name on stdout when it succeeds (as
/// docker's `stop`, `kill`), the error on stderr otherwise; status 1 if any
/// failed.
fn for_each(
    root: &Path,
    names: &[String],
    mut each: impl FnMut(&DataRoot, &str) -> Result<(), container::Error>,
) -> Result<i32, Error> {
    require_root("this command")?;
    let data = DataRoot::open(root)?;
    let mut status = 0;
    for name in names {
        match each(&data, name) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("{}", Error::from(e).user_message());
                status = 1;
            }
        }
    }
    Ok(status)
}

/// `containr boot`: start what a reboot stopped (see
/// `lifecycle::to_start_at_boot`), printing each name, as `start` does.
/// With `--shutdown`, stop every running container for the host's
/// shutdown instead (see `lifecycle::shutdown`), printing each name as
/// `stop` does.
pub fn boot(root: &Path, shutdown: bool) -> Result<i32, Error> {
    require_root("boot")?;
    if shutdown {
        let mut status = 0;
        for (name, stopped) in lifecycle::shutdown(&DataRoot::open(root)?) {
            match stopped {
                Ok(()) => println!("{name}"),
                Err(e) => {
                    eprintln!("{}", Error::from(e).user_message());
                    status = 1;
                }
            }
        }
        return Ok(status);
    }
    let names = lifecycle::to_start_at_boot(&DataRoot::open(root)?);
    for_each(root, &names, |data, name| {
        container::monitor::start_detached(data.path(), name, None).map(drop)
    })
}

/// `containr stop [-t N] [-s SIG] CONTAINER...`.
pub fn stop(
    root: &Path,
    names: &[String],
    timeout: Option<u32>,
    signal: Option<&str>,
) -> Result<i32, Error> {
    for_each(root, names, |data, name| {
        lifecycle::stop(data, name, timeout, signal)
    })
}

/// `containr kill [-s SIG] CONTAINER...`.
pub fn kill(root: &Path, names: &[String], signal: Option<&str>) -> Result<i32, Error> {
    for_each(root, names, |data, name| {
        lifecycle::kill(data, name, signal)
    })
}

/// `containr wait CONTAINER...`: each one's exit status, one a line.
pub fn wait(root: &Path, names: &[String]) -> Result<i32, Error> {
    let data = DataRoot::open(root)?;
    let mut status = 0;
    for name in names {
        match lifecycle::wait(&data, name) {
            Ok(code) => println!("{code}"),
            Err(e) => {
                eprintln!("{}", Error::from(e).user_message());
                status = 1;
            }
        }
    }
    Ok(status)
}

/// What `containr logs` was asked.
pub struct LogsArgs {
    pub follow: bool,
    pub tail: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub timestamps: bool,
}

/// `containr logs`: the container's stdout lines on stdout, its stderr
/// lines on stderr, with `-t` each after its time.
pub fn logs(root: &Path, name: &str, args: &LogsArgs) -> Result<i32, Error> {
    let now = container::state::now_ns();
    let time = |flag, v: &Option<String>| {
        v.as_deref()
            .map(|v| container::logs::parse_time(flag, v, now))
            .transpose()
            .map_err(container::Error::from)
    };
    let tail = match args.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            Error::Usage(format!("invalid --tail {n:?}: a number of lines, or all"))
        })?),
    };
    let query = Query {
        tail,
        since: time("--since", &args.since)?,
        until: time("--until", &args.until)?,
    };
    let data = DataRoot::open(root)?;
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    lifecycle::logs(&data, name, &query, args.follow, |e: &Entry| {
        let written = match e.stream {
            Stream::Stdout => print_entry(&mut stdout.lock(), e, args.timestamps),
            Stream::Stderr => print_entry(&mut stderr.lock(), e, args.timestamps),
        };
        // A closed pipe (`| head`) ends the command quietly.
        written.is_ok()
    })?;
    Ok(0)
}

fn print_entry(out: &mut dyn Write, e: &Entry, timestamps: bool) -> std::io::Result<()> {
    if timestamps {
        write!(out, "{} ", e.time)?;
    }
    out.write_all(e.log.as_bytes())?;
    out.flush()
}

/// `containr create`: the new container's full id.
pub fn create(
    global: &Global,
    opts: &RunOptions,
    platform: Option<String>,
    quiet: bool,
) -> Result<i32, Error> {
    require_root("create")?;
    let pull = global.pull_options(platform, super::progress::new(quiet, false));
    let id = lifecycle::create(opts, &global.root, &global.reporting, &pull)?;
    println!("{id}");
    Ok(0)
}

/// `containr start [-a] [-i] CONTAINER...`: each name once it runs; with
/// `-a` (one container), its output until it exits, and its status; with
/// `-i` our stdin too, whose end is its stdin's (docker's `start -ai`).
pub fn start(root: &Path, names: &[String], attach: bool, interactive: bool) -> Result<i32, Error> {
    if (attach || interactive) && names.len() != 1 {
        return Err(Error::Usage(
            "start -a/-i: you cannot start and attach multiple containers at once".into(),
        ));
    }
    if !attach && !interactive {
        return for_each(root, names, |data, name| {
            container::monitor::start_detached(data.path(), name, None).map(drop)
        });
    }
    require_root("start")?;
    let data = DataRoot::open(root)?;
    let name = &names[0];
    let state = lifecycle::lookup(root, name)?;
    let running = state.is_running();
    let config = state.config;
    let tty = config.as_ref().is_some_and(|c| c.tty);
    // Its stdin, if it was made with -i to have one.
    let stdin = interactive && config.is_some_and(|c| c.interactive);
    if running {
        // Nothing to start: attached to, as docker's.
        return self::attach(root, name, None, !stdin);
    }
    // Taken first: a --rm container's status is left for it.
    let ending = lifecycle::ending(&data, name)?;
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| Error::from(container::Error::sys("socketpair")(e)))?;
    container::monitor::start_detached(root, name, Some(theirs))?;
    match container::monitor::attach_starter(name, ours, tty, !stdin)? {
        container::attach::End::Exited(code) => Ok(code),
        container::attach::End::Detached => {
            eprintln!("read escape sequence");
            Ok(0)
        }
        container::attach::End::Closed => Ok(ending.wait(&data)?),
    }
}

/// `containr restart [-t N] CONTAINER...`.
pub fn restart(root: &Path, names: &[String], timeout: Option<u32>) -> Result<i32, Error> {
    for_each(root, names, |data, name| {
        lifecycle::restart(data, name, timeout)
    })
}

/// `containr attach`: until the container exits (its status) or the
/// detach keys are typed (0, and docker's "read escape sequence").
pub fn attach(root: &Path, name: &str, keys: Option<&str>, no_stdin: bool) -> Result<i32, Error> {
    use std::os::fd::AsFd;
    require_root("attach")?;
    let data = DataRoot::open(root)?;
    let tty = lifecycle::lookup(root, name)?.config.is_some_and(|c| c.tty);
    let stdin = std::io::stdin();
    let raw = (tty && !no_stdin && container::tty::is_terminal(stdin.as_fd()))
        .then(|| container::tty::RawMode::enable(stdin.as_fd()).ok())
        .flatten();
    // Taken first: a --rm container's status is left for it.
    let ending = lifecycle::ending(&data, name)?;
    let end = lifecycle::attach(&data, name, keys, no_stdin);
    drop(raw);
    match end? {
        container::attach::End::Detached => {
            eprintln!("read escape sequence");
            Ok(0)
        }
        container::attach::End::Exited(code) => Ok(code),
        container::attach::End::Closed => Ok(ending.wait(&data)?),
    }
}

//! The container commands: `run`, `ps`, `rm`, `inspect`, `container
//! inspect`, `export`, `stats`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use containr::container::state::{DataRoot, Error as StateError, KILLED_RUN_STATUS, State, Status};
use containr::container::{self, RunOptions, lifecycle, stats};
use containr::image;
use containr::util::{human_bytes, human_duration, now};

use super::{Global, print_table, require_root, write_tar};
use crate::error::Error;

/// `containr run`: the container's status, and a line if the kernel's OOM
/// killer ended it. A pull's progress (`--platform`, `-q`) goes to stderr:
/// stdout is the container's.
pub fn run(
    global: &Global,
    opts: &RunOptions,
    platform: Option<String>,
    quiet: bool,
) -> Result<i32, Error> {
    require_root("run")?;
    let pull = global.pull_options(platform, super::progress::new(quiet, false));
    let exit = container::run(opts, &global.root, &global.reporting, &pull)?;
    if let Some(oom) = exit.oom_killed {
        let limit = oom
            .limit
            .map(|l| format!(" (memory limit {} MiB)", l >> 20))
            .unwrap_or_default();
        eprintln!(
            "containr: container {} was killed by the kernel's OOM killer{limit}",
            oom.name
        );
    }
    Ok(exit.status)
}

/// `containr ps`: running containers, or all with `all`; ids only with
/// `quiet`.
pub fn ps(root: &Path, all: bool, quiet: bool, filters: &[String]) -> Result<i32, Error> {
    let mut states = Vec::new();
    for s in lifecycle::list(root, all)? {
        if lifecycle::matches_all(&s, filters)? {
            states.push(s);
        }
    }
    if quiet {
        for s in &states {
            println!("{}", &s.id[..12]);
        }
        return Ok(0);
    }
    let now = now();
    let rows: Vec<[String; 6]> = states
        .iter()
        .map(|s| {
            [
                s.id[..12].to_string(),
                s.image
                    .clone()
                    .unwrap_or_else(|| s.rootfs.display().to_string()),
                format!("\"{}\"", ellipsis(&s.command.join(" "), 20)),
                format!("{} ago", human_duration(now - s.created)),
                status_line(s, now),
                s.name.clone(),
            ]
        })
        .collect();
    print_table(
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "NAMES",
        ],
        &rows,
    );
    Ok(0)
}

/// `Up 3 seconds`, `Up 3 seconds (Paused)`, `Up 3 seconds (healthy)`,
/// `Exited (0) 5 seconds ago`,
/// `Created`, `Restarting (1) 2 seconds ago`.
fn status_line(s: &State, now: i64) -> String {
    let secs = |ns: Option<i64>| ns.map(|n| n.div_euclid(1_000_000_000));
    let live = s.is_live();
    if s.status == Status::Created {
        return "Created".into();
    }
    if live && s.status == Status::Restarting {
        return format!(
            "Restarting ({}) {} ago",
            s.exit_code.unwrap_or(0),
            human_duration(now - secs(s.life.finished_ns).or(s.finished).unwrap_or(now))
        );
    }
    if s.is_running() {
        let started = secs(s.life.started_ns).unwrap_or(s.created);
        // A check not yet run (or its monitor not yet there) is starting.
        let health = (s.life.healthcheck.as_ref()).map(|_| {
            s.life
                .health
                .as_ref()
                .map_or("starting", |h| h.status.as_str())
        });
        let paused = match (container::pause::is_paused(s), health) {
            (true, _) => " (Paused)",
            (false, Some("healthy")) => " (healthy)",
            (false, Some("unhealthy")) => " (unhealthy)",
            (false, Some(_)) => " (health: starting)",
            _ => "",
        };
        return format!("Up {}{paused}", human_duration(now - started));
    }
    format!(
        "Exited ({}) {} ago",
        s.exit_code.unwrap_or(KILLED_RUN_STATUS),
        human_duration(now - s.finished.unwrap_or(now))
    )
}

/// At most `max` characters, the last one `…` if cut, as docker's.
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    s.chars().take(max - 1).chain(['…']).collect()
}

/// `containr rm [-f] CONTAINER...`: each removed container's name as given
/// on stdout, each failure on stderr; status 1 if any failed, as docker's.
pub fn rm(root: &Path, names: &[String], force: bool, volumes: bool) -> Result<i32, Error> {
    let data = DataRoot::open(root)?;
    let mut status = 0;
    for name in names {
        match lifecycle::remove(&data, name, force, volumes) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("{}", Error::from(e).user_message());
                status = 1;
            }
        }
    }
    Ok(status)
}

/// What `inspect` looks among.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objects {
    /// `containr container inspect`.
    Containers,
    /// `containr inspect`: containers first, then images, as docker.
    Any,
}

/// `containr inspect NAME...`: a JSON array of what was found on stdout,
/// each name not found on stderr; status 1 if any was not, as docker's.
pub fn inspect(root: &Path, names: &[String], among: Objects) -> Result<i32, Error> {
    let mut found = Vec::new();
    let mut status = 0;
    for name in names {
        let result = match lifecycle::inspect(root, name) {
            Err(container::Error::State(StateError::NoSuchContainer(_)))
                if among == Objects::Any =>
            {
                image::inspect(root, name).map_err(|e| match e {
                    image::Error::NotFound(_) => Error::NoSuchObject(name.clone()),
                    e => e.into(),
                })
            }
            other => other.map_err(Error::from),
        };
        match result {
            Ok(v) => found.push(v),
            Err(e) => {
                eprintln!("{}", e.user_message());
                status = 1;
            }
        }
    }
    // A closed pipe (`| head`) is the reader's choice, not an error.
    let _ = writeln!(
        std::io::stdout(),
        "{}",
        serde_json::to_string_pretty(&found).expect("plain data")
    );
    Ok(status)
}

/// `containr export [-o FILE] CONTAINER`: its filesystem as a tar.
pub fn export(root: &Path, output: Option<PathBuf>, name: &str) -> Result<i32, Error> {
    write_tar(output, |out| {
        let s = lifecycle::lookup(root, name)?;
        // An image's container is read through an overlay, which needs
        // root to mount.
        if s.image.is_some() && !nix::unistd::geteuid().is_root() {
            return Err(Error::NotRoot("export"));
        }
        Ok(lifecycle::export(root, &s, out)?)
    })?;
    Ok(0)
}

/// `containr stats`: usage of the named containers (all running ones if
/// none named), once with `no_stream`, else every second until they have
/// all ended.
pub fn stats(root: &Path, names: &[String], no_stream: bool) -> Result<i32, Error> {
    let data = DataRoot::open(root)?;
    let mut before = stats::sample(stats::pick(&data, names)?);
    let interval = if no_stream {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(1)
    };
    let host_memory = stats::host_memory();
    loop {
        std::thread::sleep(interval);
        let after = stats::sample(stats::still_running(&before, &data));
        let mut out = std::io::stdout().lock();
        if !no_stream {
            // Clear the screen and home the cursor, as docker does.
            let _ = out.write_all(b"\x1b[2J\x1b[H");
        }
        let _ = writeln!(
            out,
            "{:<14} {:<20} {:>8}   {:<22} {:>7}   {:>5}",
            "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"
        );
        for a in &after {
            let Some(b) = before.iter().find(|b| b.state.id == a.state.id) else {
                continue;
            };
            let u = stats::usage(b, a, host_memory);
            let _ = writeln!(
                out,
                "{:<14} {:<20} {:>7.2}%   {:<22} {:>6.2}%   {:>5}",
                &a.state.id[..12],
                a.state.name,
                u.cpu_percent,
                format!(
                    "{} / {}",
                    human_bytes(u.memory),
                    human_bytes(u.memory_limit)
                ),
                u.memory_percent,
                u.pids
            );
        }
        let _ = out.flush();
        if no_stream || after.is_empty() {
            return Ok(0);
        }
        before = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_commands_are_cut_as_docker_cuts_them() {
        assert_eq!(ellipsis("sleep 5", 20), "sleep 5");
        assert_eq!(
            ellipsis("sh -c 'echo hello; sleep 100'", 20),
            "sh -c 'echo hello; …"
        );
    }
}

//! Containers after `run`: `ps`, `rm`, `inspect` and `export`, on the
//! records `state` keeps and the writable layers `image::overlay` keeps.

use std::io::Write;
use std::path::Path;

use super::Error as ContainerError;
use super::state::{DataRoot, State, Status};
use crate::error::Error;
use crate::image;
use crate::output::print_table;
use crate::util::human_duration;

fn open(root: &Path) -> Result<DataRoot, Error> {
    DataRoot::open(root).map_err(|e| ContainerError::from(e).into())
}

fn lookup(data: &DataRoot, name: &str) -> Result<State, Error> {
    data.lookup(name)
        .map_err(|e| ContainerError::from(e).into())
}

/// The ids of the containers that exist (running or kept), records of
/// killed runs settled first: what `gc` and `verify` must keep.
pub fn ids(root: &Path) -> std::collections::BTreeSet<String> {
    DataRoot::open(root)
        .map(|d| d.all().into_iter().map(|s| s.id).collect())
        .unwrap_or_default()
}

/// The short id of a container (running or kept) that uses image `id`.
pub fn user_of_image(root: &Path, id: &crate::cas::Digest) -> Option<String> {
    let id = id.to_string();
    DataRoot::open(root)
        .ok()?
        .all()
        .into_iter()
        .find(|s| s.image_id.as_deref() == Some(id.as_str()))
        .map(|s| s.id[..12].to_string())
}

/// `containr ps`: running containers, or all with `all`; ids only with
/// `quiet`.
pub fn ps(root: &Path, all: bool, quiet: bool) -> Result<(), Error> {
    let states: Vec<State> = open(root)?
        .all()
        .into_iter()
        .filter(|s| all || s.is_running())
        .collect();
    if quiet {
        for s in &states {
            println!("{}", &s.id[..12]);
        }
        return Ok(());
    }
    let now = crate::util::now();
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
    Ok(())
}

/// `Up 3 seconds`, `Exited (0) 5 seconds ago`.
fn status_line(s: &State, now: i64) -> String {
    if s.is_running() {
        return format!("Up {}", human_duration(now - s.created));
    }
    format!(
        "Exited ({}) {} ago",
        s.exit_code.unwrap_or(super::state::KILLED_RUN_STATUS),
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
pub fn rm(root: &Path, names: &[String], force: bool) -> Result<i32, Error> {
    let data = open(root)?;
    let mut status = 0;
    for name in names {
        match remove(&data, name, force) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("{}", e.user_message());
                status = 1;
            }
        }
    }
    Ok(status)
}

fn remove(data: &DataRoot, name: &str, force: bool) -> Result<(), Error> {
    let state = lookup(data, name)?;
    if state.is_running() && force {
        state.kill_and_wait().map_err(ContainerError::from)?;
    }
    match data.remove(&state) {
        Ok(()) => {}
        // An --rm container removed itself when it was killed.
        Err(super::state::Error::NoSuchContainer(_)) if force => return Ok(()),
        Err(e) => return Err(ContainerError::from(e).into()),
    }
    let rw = data.path().join("rw").join(&state.id);
    image::layers::remove(data.path(), &state.id)
        .map_err(|e| image::Error::from(crate::util::io_err(&rw)(e)).into())
}

/// `containr inspect CONTAINER`: docker's main fields, as JSON.
pub fn inspect(root: &Path, name: &str) -> Result<serde_json::Value, Error> {
    let s = lookup(&open(root)?, name)?;
    let running = s.is_running();
    let zero_time = "0001-01-01T00:00:00Z".to_string();
    let (path, args) = match s.command.split_first() {
        Some((p, a)) => (p.as_str(), a),
        None => ("", &[][..]),
    };
    Ok(serde_json::json!({
        "Id": s.id,
        "Created": crate::util::rfc3339(s.created),
        "Path": path,
        "Args": args,
        "State": {
            "Status": if running { "running" } else { "exited" },
            "Running": running,
            "Paused": false,
            "Restarting": false,
            "Dead": false,
            "Pid": s.init_pid().unwrap_or(0),
            "ExitCode": if running { 0 } else { s.exit_code.unwrap_or(super::state::KILLED_RUN_STATUS) },
            "StartedAt": crate::util::rfc3339(s.created),
            "FinishedAt": match (s.status, s.finished) {
                (Status::Exited, Some(t)) if !running => crate::util::rfc3339(t),
                _ => zero_time,
            },
        },
        "Image": s.image,
        "Name": format!("/{}", s.name),
        "HostConfig": { "AutoRemove": s.auto_remove },
        "GraphDriver": {
            "Name": if s.image.is_some() { "overlay" } else { "rootfs" },
            "Data": if s.image.is_some() {
                serde_json::json!({ "UpperDir": root.join("rw").join(&s.id).join("upper") })
            } else {
                serde_json::json!({ "Dir": s.rootfs })
            },
        },
        "Config": {
            "Image": s.image,
            "Cmd": s.command,
        },
    }))
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
pub fn inspect_all(root: &Path, names: &[String], among: Objects) -> Result<i32, Error> {
    let mut found = Vec::new();
    let mut status = 0;
    for name in names {
        let result = match inspect(root, name) {
            Err(Error::Container(ContainerError::State(super::state::Error::NoSuchContainer(
                _,
            )))) if among == Objects::Any => image::inspect(root, name).map_err(|e| match e {
                image::Error::NotFound(_) => Error::NoSuchObject(name.clone()),
                e => e.into(),
            }),
            other => other,
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

/// `containr export CONTAINER`, running or exited, as a tar on `out`.
pub fn export(root: &Path, name: &str, out: &mut dyn Write) -> Result<(), Error> {
    let s = lookup(&open(root)?, name)?;
    if s.image.is_some() && !nix::unistd::geteuid().is_root() {
        return Err(Error::NotRoot("export"));
    }
    super::export::export(root, &s.id, &s.rootfs, s.userns, out)
        .map_err(Error::from)
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

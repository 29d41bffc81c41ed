//! Containers after `run`: what `ps`, `rm`, `inspect` and `export` need,
//! on the records `state` keeps and the writable layers `image::layers`
//! describes. Data only: the command line prints it. [`config`] gives the
//! resolved configuration a container was started with.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use super::Error;
use super::state::{DataRoot, KILLED_RUN_STATUS, State, Status};
use crate::image;

/// The container called `name`, or whose id is or starts with `name`.
pub fn lookup(root: &Path, name: &str) -> Result<State, Error> {
    Ok(DataRoot::open(root)?.lookup(name)?)
}

/// The container `name` (or id) and the resolved configuration its init
/// was sent (command, env, user, workdir, confinement, rlimits, tty,
/// mounts...): what `exec` into it and a later `start` of it reuse.
pub fn config(root: &Path, name: &str) -> Result<(State, super::Config), Error> {
    Ok(DataRoot::open(root)?.config(name)?)
}

/// The ids of the containers that exist (running or kept), records of
/// killed runs settled first: what `gc` and `verify` must keep.
pub fn ids(root: &Path) -> BTreeSet<String> {
    DataRoot::open(root)
        .map(|d| d.all().into_iter().map(|s| s.id).collect())
        .unwrap_or_default()
}

/// The ids of the containers that exist, read only (nothing settled), less
/// the `run --rm`s whose containr was killed: their writable layers are
/// leftovers, which the next `run`, `ps` or `pull` reclaims.
pub fn ids_as_they_are(root: &Path) -> BTreeSet<String> {
    let Ok(data) = DataRoot::open(root) else {
        return BTreeSet::new();
    };
    let killed = data.killed_auto_remove_ids();
    data.record_ids()
        .into_iter()
        .filter(|id| !killed.contains(id))
        .collect()
}

/// The ids of the containers running now, read only (nothing settled: a
/// record whose owner was killed is not running).
pub fn running_ids(root: &Path) -> BTreeSet<String> {
    DataRoot::open(root)
        .map(|d| d.running_ids().into_iter().collect())
        .unwrap_or_default()
}

/// Settle what killed `containr run`s left: their records, cgroups and
/// writable layers.
pub fn settle_killed_runs(root: &Path) {
    if let Ok(data) = DataRoot::open(root) {
        data.reclaim_stale();
        release_unused_tmpfs(root, &data);
    }
}

/// The tmpfs volumes only killed runs still used: unmounted.
fn release_unused_tmpfs(root: &Path, data: &DataRoot) {
    if root.join("volumes").is_dir()
        && let Ok(store) = super::volume::Store::open(root)
    {
        let _ = store.release_tmpfs(data, None);
    }
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

/// `containr ps`: running containers, or all with `all`, newest first.
pub fn list(root: &Path, all: bool) -> Result<Vec<State>, Error> {
    let data = DataRoot::open(root)?;
    release_unused_tmpfs(root, &data);
    Ok(data
        .all()
        .into_iter()
        .filter(|s| all || s.is_running())
        .collect())
}

/// `ps --filter`: `label=KEY[=VALUE]`, `name=SUBSTRING`,
/// `status=running|exited`; a container passes when it matches every one.
pub fn matches_all(s: &State, filters: &[String]) -> Result<bool, Error> {
    for f in filters {
        let bad = || Error::BadFilter(f.clone());
        let (key, value) = f.split_once('=').ok_or_else(bad)?;
        let ok = match key {
            "label" => match value.split_once('=') {
                Some((k, v)) => s.labels.get(k).is_some_and(|x| x == v),
                None => s.labels.contains_key(value),
            },
            "name" => s.name.contains(value),
            "status" => match value {
                "running" => s.is_running(),
                "exited" => !s.is_running(),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `containr rm [-f] [-v] NAME`: remove a stopped container (a running
/// one too with `force`, killed first), its record and writable layer, and
/// with `volumes` its anonymous volumes.
pub fn remove(data: &DataRoot, name: &str, force: bool, volumes: bool) -> Result<(), Error> {
    let state = data.lookup(name)?;
    if state.is_running() && force {
        state.kill_and_wait()?;
    }
    match data.remove(&state) {
        Ok(()) => {}
        // An --rm container removed itself when it was killed.
        Err(super::state::Error::NoSuchContainer(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    if volumes {
        super::volume::remove_anonymous(data, &state.mounts)?;
    }
    let rw = data.path().join("rw").join(&state.id);
    image::layers::remove(data.path(), &state.id).map_err(crate::util::io_err(&rw))?;
    Ok(())
}

/// `containr inspect CONTAINER`: docker's main fields, as JSON.
pub fn inspect(root: &Path, name: &str) -> Result<serde_json::Value, Error> {
    let s = lookup(root, name)?;
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
            "Status": match (running, super::pause::is_paused(&s)) {
                (true, true) => "paused",
                (true, false) => "running",
                _ => "exited",
            },
            "Running": running,
            "Paused": super::pause::is_paused(&s),
            "Restarting": false,
            "Dead": false,
            "Pid": s.init_pid().unwrap_or(0),
            "ExitCode": if running { 0 } else { s.exit_code.unwrap_or(KILLED_RUN_STATUS) },
            "StartedAt": crate::util::rfc3339(s.created),
            "FinishedAt": match (s.status, s.finished) {
                (Status::Exited, Some(t)) if !running => crate::util::rfc3339(t),
                _ => zero_time,
            },
        },
        "Image": s.image,
        "Name": format!("/{}", s.name),
        "HostConfig": { "AutoRemove": s.auto_remove },
        "Mounts": s.mounts,
        "GraphDriver": {
            "Name": if s.image.is_some() { "overlay" } else { "rootfs" },
            "Data": if s.image.is_some() {
                serde_json::json!({ "UpperDir": root.join("rw").join(&s.id).join("upper") })
            } else {
                serde_json::json!({ "Dir": s.rootfs })
            },
        },
        "Config": {
            "Labels": s.labels,
            "Image": s.image,
            "Cmd": s.command,
        },
    }))
}

/// `containr export CONTAINER` of the container `s`, running or exited,
/// as a tar on `out`.
pub fn export(root: &Path, s: &State, out: &mut dyn Write) -> Result<(), Error> {
    super::export::export(root, &s.id, &s.rootfs, s.userns, out)
}

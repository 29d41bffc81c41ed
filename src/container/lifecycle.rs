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
        .filter(|s| all || (s.is_live() && s.status != Status::Created))
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
                "exited" => !s.is_live(),
                "created" => s.status == Status::Created,
                "restarting" => s.is_live() && s.status == Status::Restarting,
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
    // Restarting counts as running: its monitor would bring it back.
    if state.is_live() && force {
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
    let live = s.is_live();
    let running = s.is_running();
    let zero_time = "0001-01-01T00:00:00Z".to_string();
    let (path, args) = match s.command.split_first() {
        Some((p, a)) => (p.as_str(), a),
        None => ("", &[][..]),
    };
    let status = match s.status {
        Status::Created => "created",
        Status::Restarting if live => "restarting",
        Status::Running if live => "running",
        _ => "exited",
    };
    let nano = |ns: Option<i64>| ns.map(super::logs::rfc3339_nano);
    let started = nano(s.life.started_ns).unwrap_or_else(|| match s.status {
        Status::Created => zero_time.clone(),
        _ => crate::util::rfc3339(s.created),
    });
    let finished = match (s.status, s.finished) {
        (Status::Exited | Status::Restarting, Some(t)) => {
            nano(s.life.finished_ns).unwrap_or_else(|| crate::util::rfc3339(t))
        }
        _ => zero_time,
    };
    let (policy, retries) = match s.life.restart {
        super::state::RestartPolicy::No => ("no", 0),
        super::state::RestartPolicy::Always => ("always", 0),
        super::state::RestartPolicy::UnlessStopped => ("unless-stopped", 0),
        super::state::RestartPolicy::OnFailure { max } => ("on-failure", max),
    };
    let log_path = log_path(&s)
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    // Docker shows a check's last results while its container runs, and
    // none without a check.
    let health = s.life.healthcheck.as_ref().map(|_| {
        let mut h = s.life.health.clone().unwrap_or_default();
        if h.status.is_empty() || !running {
            h.status = if running { "starting" } else { "unhealthy" }.into();
        }
        h
    });
    Ok(serde_json::json!({
        "Id": s.id,
        "Created": crate::util::rfc3339(s.created),
        "Path": path,
        "Args": args,
        "State": {
            "Status": match (status, super::pause::is_paused(&s)) {
                ("running", true) => "paused",
                (status, _) => status,
            },
            "Running": running || status == "restarting",
            "Paused": running && super::pause::is_paused(&s),
            "Restarting": status == "restarting",
            "OOMKilled": s.life.oom_killed,
            "Dead": false,
            "Pid": s.init_pid().unwrap_or(0),
            "ExitCode": if running || s.status == Status::Created { 0 } else { s.exit_code.unwrap_or(KILLED_RUN_STATUS) },
            "Error": s.life.error.clone().unwrap_or_default(),
            "StartedAt": started,
            "FinishedAt": finished,
            "Health": health,
        },
        "RestartCount": s.life.restart_count,
        "LogPath": log_path,
        "Image": s.image,
        "Name": format!("/{}", s.name),
        "HostConfig": {
            "AutoRemove": s.auto_remove,
            "RestartPolicy": { "Name": policy, "MaximumRetryCount": retries },
            "LogConfig": { "Type": s.life.log_driver.as_deref().unwrap_or("json-file") },
            "CgroupParent": s.life.cgroup_parent.as_deref().unwrap_or(""),
        },
        "NetworkSettings": network_settings(&s),
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
            "StopSignal": s.life.stop_signal,
            "StopTimeout": s.life.stop_timeout,
            "Healthcheck": s.life.healthcheck.as_ref().map(|h| serde_json::json!({
                "Test": h.test,
                "Interval": h.interval_ns,
                "Timeout": h.timeout_ns,
                "StartPeriod": h.start_period_ns,
                "Retries": h.retries,
            })),
        },
    }))
}

/// docker's `NetworkSettings` of `s`: its address on the bridge while it
/// runs, empty otherwise (as docker's for a container off the network).
fn network_settings(s: &State) -> serde_json::Value {
    let now = (s.life.network.as_ref())
        .filter(|_| s.is_running())
        .and_then(|n| n.settings(&s.id));
    serde_json::json!({
        "IPAddress": now.as_ref().map(|n| n.address.to_string()).unwrap_or_default(),
        "IPPrefixLen": now.as_ref().map_or(0, |n| n.prefix),
        "Gateway": now.as_ref().and_then(|n| n.gateway).map(|g| g.to_string()).unwrap_or_default(),
        "MacAddress": now.as_ref().map(|n| n.mac.clone()).unwrap_or_default(),
    })
}

/// `containr export CONTAINER` of the container `s`, running or exited,
/// as a tar on `out`.
pub fn export(root: &Path, s: &State, out: &mut dyn Write) -> Result<(), Error> {
    super::export::export(root, &s.id, &s.rootfs, s.userns, out)
}

/// How long `stop` and `wait` give a container's owner to record its end
/// once the container is dead.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether the container `s` was (its record gone, or no longer live).
fn settled(data: &DataRoot, s: &State) -> bool {
    match data.lookup(&s.name) {
        Ok(now) => now.id != s.id || !now.is_live() || now.life.finished_ns != s.life.finished_ns,
        Err(_) => true,
    }
}

/// `containr stop [-t N] [-s SIG] CONTAINER`: its stop signal (`-s`, else
/// `--stop-signal` or the image's `StopSignal`, else SIGTERM), then after
/// `-t` seconds (else `--stop-timeout`, else 10) SIGKILL; returns once its
/// owner has recorded its end. A stop is remembered: no restart policy
/// brings it back. Stopping a stopped container does nothing, as docker's.
pub fn stop(
    data: &DataRoot,
    name: &str,
    timeout: Option<u32>,
    signal: Option<&str>,
) -> Result<(), Error> {
    stop_marked(data, name, timeout, signal, super::state::mark_stopped)
}

/// `containr boot --shutdown`: stop every running container as `stop`
/// does (its stop signal and timeout, then SIGKILL), all at once, but
/// marked stopped by the shutdown, not the user: the next boot brings back
/// `unless-stopped` ones too. Each one's name, and how its stop went.
pub fn shutdown(data: &DataRoot) -> Vec<(String, Result<(), Error>)> {
    let names: Vec<String> = (data.all().into_iter())
        .filter(|s| s.is_live() && s.status != Status::Created)
        .map(|s| s.name)
        .collect();
    std::thread::scope(|scope| {
        let stops: Vec<_> = (names.iter())
            .map(|name| {
                scope.spawn(move || {
                    stop_marked(data, name, None, None, super::state::mark_shut_down)
                })
            })
            .collect();
        (names.iter().zip(stops))
            .map(|(name, stop)| {
                let result = stop
                    .join()
                    .unwrap_or_else(|_| Err(Error::StopTimedOut(name.clone())));
                (name.clone(), result)
            })
            .collect()
    })
}

/// `stop`, with `mark` saying who stopped it.
fn stop_marked(
    data: &DataRoot,
    name: &str,
    timeout: Option<u32>,
    signal: Option<&str>,
    mark: fn(&Path),
) -> Result<(), Error> {
    let s = data.lookup(name)?;
    let sig = super::monitor::parse_signal(
        signal
            .or(s.life.stop_signal.as_deref())
            .unwrap_or("SIGTERM"),
    )?;
    let timeout = timeout.or(s.life.stop_timeout).unwrap_or(10);
    mark(&s.dir());
    if !s.is_live() {
        return Ok(());
    }
    let sys = |e: std::io::Error| Error::Sys {
        what: "waiting for the container to stop",
        source: e,
    };
    // Paused, it would act on no signal: thawed once signalled (docker's
    // order), it gets the stop signal first.
    let signalled = s.signal_init(sig)?;
    super::pause::thaw(&s);
    if let Some(init) = signalled
        && !super::state::wait_pidfd(&init, timeout.saturating_mul(1000)).map_err(sys)?
    {
        s.signal_init(libc::SIGKILL)?;
        super::state::wait_pidfd(&init, 10_000).map_err(sys)?;
    }
    if super::monitor::wait_until(SETTLE, || settled(data, &s)) {
        Ok(())
    } else {
        Err(Error::StopTimedOut(s.name.clone()))
    }
}

/// `containr kill [-s SIG] CONTAINER`: the signal (default SIGKILL) to its
/// init, which passes it on to the command.
pub fn kill(data: &DataRoot, name: &str, signal: Option<&str>) -> Result<(), Error> {
    let s = data.lookup(name)?;
    let sig = super::monitor::parse_signal(signal.unwrap_or("SIGKILL"))?;
    if !s.is_running() {
        return Err(Error::NotRunning(s.name.clone()));
    }
    match s.signal_init(sig)? {
        Some(_) => Ok(()),
        None => Err(Error::NotRunning(s.name.clone())),
    }
}

/// `containr wait CONTAINER`: block until it exits; its exit status.
pub fn wait(data: &DataRoot, name: &str) -> Result<i32, Error> {
    ending(data, name)?.wait(data)
}

/// A container's end, to wait for: a `--rm` container's record goes when
/// it exits, so its waiters register with its owner first, which leaves
/// them the status ([`Waiter`](super::state::Waiter)). `attach` and
/// `start -a` take it before they attach or start; a container removed
/// before it was taken is no such container, as docker's.
pub struct Ending {
    id: String,
    name: String,
    waiter: Option<super::state::Waiter>,
}

/// The end of the container `name`, registered for if it is `--rm`.
pub fn ending(data: &DataRoot, name: &str) -> Result<Ending, Error> {
    let s = data.lookup(name)?;
    let waiter = (s.auto_remove && s.status != Status::Exited)
        .then(|| super::state::Waiter::register(&s))
        .flatten();
    Ok(Ending {
        id: s.id,
        name: name.to_string(),
        waiter,
    })
}

impl Ending {
    /// Block until the container exits (a created one must be started
    /// first, as with docker's `wait`); its exit status.
    pub fn wait(self, data: &DataRoot) -> Result<i32, Error> {
        let left = || self.waiter.as_ref().and_then(|w| w.status());
        let gone = || Error::from(super::state::Error::NoSuchContainer(self.name.clone()));
        let look = || data.lookup(&self.id).map_err(|_| ());
        let mut s = match look() {
            Ok(s) => s,
            Err(()) => return left().ok_or_else(gone),
        };
        while s.status == Status::Created {
            std::thread::sleep(std::time::Duration::from_millis(50));
            s = match (left(), look()) {
                (Some(code), _) => return Ok(code),
                (None, Ok(s)) => s,
                (None, Err(())) => return Err(gone()),
            };
        }
        let live = s.is_live();
        if live {
            if let Some(pid) = s.init_pid()
                && let Ok(init) = super::state::pidfd_open(pid)
            {
                while let Ok(false) = super::state::wait_pidfd(&init, 60_000) {}
            }
            // Between two runs of a restart policy, or its owner still
            // recording its end: look again.
            loop {
                if let Some(code) = left() {
                    return Ok(code);
                }
                if settled(data, &s) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        match data.lookup(&s.name) {
            Ok(now) if now.id == s.id => Ok(now.exit_code.unwrap_or(KILLED_RUN_STATUS)),
            // Removed while we waited, without leaving us a status: its
            // owner was killed (and the container with it), or `rm -f`
            // killed it.
            _ if live => Ok(left().unwrap_or(KILLED_RUN_STATUS)),
            _ => Err(gone()),
        }
    }
}

/// The log of the container `s`.
pub fn log_path(s: &State) -> Result<std::path::PathBuf, Error> {
    match s.life.log_driver.as_deref() {
        Some("json-file") => Ok(super::logs::path(&s.dir(), &s.id)),
        Some(_) => Err(super::logs::Error::NotReadable.into()),
        None => Err(super::logs::Error::Attached(s.name.clone()).into()),
    }
}

/// `containr logs CONTAINER`: each entry `query` admits to `sink`, oldest
/// first; with `follow`, then each new one until the container exits (or
/// `sink` returns false, or `query.until` is past).
pub fn logs(
    data: &DataRoot,
    name: &str,
    query: &super::logs::Query,
    follow: bool,
    mut sink: impl FnMut(&super::logs::Entry) -> bool,
) -> Result<(), Error> {
    let s = data.lookup(name)?;
    let path = log_path(&s)?;
    let (entries, mut follower) = super::logs::read(&path, query)?;
    for e in &entries {
        if !sink(e) {
            return Ok(());
        }
    }
    if !follow {
        return Ok(());
    }
    let admits = query.filter();
    loop {
        // Looked at before reading: what a dead container wrote is all in
        // the file by the time its record says so.
        let live = data
            .lookup(&s.name)
            .is_ok_and(|n| n.id == s.id && n.is_live());
        for e in follower.poll() {
            if admits(&e) && !sink(&e) {
                return Ok(());
            }
        }
        let past_until = query.until.is_some_and(|u| super::state::now_ns() > u);
        if !live || past_until {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `containr create`: the container made as `run -d` would make it, but
/// not started: `ps -a` shows it `Created` until `start`. Its id.
pub fn create(
    opts: &super::RunOptions,
    root: &Path,
    reporting: &crate::explain::Reporting,
    pull: &crate::registry::PullOptions,
) -> Result<String, Error> {
    let mut opts = opts.clone();
    // Made as a detached container is: logged, restartable, startable.
    opts.detach = true;
    let prepared = super::prepare(&opts, root, pull)?;
    let created = super::create(prepared, root, reporting)?;
    super::run::park(created)
}

/// The containers a host boot must start again, by name: there is no
/// daemon to do it, so the boot step (`containr boot`, run by the units in
/// `contrib/`) asks here. Docker's rule when its daemon starts: restart
/// policy `always`, or `unless-stopped` unless the user stopped it; not
/// `on-failure` or `no`. Records of containers the shutdown killed are
/// settled first (exited 137; a `--rm` one removed).
pub fn to_start_at_boot(data: &DataRoot) -> Vec<String> {
    use super::state::RestartPolicy;
    (data.all().into_iter())
        .filter(|s| s.status == Status::Exited && !s.is_live())
        .filter(|s| match s.life.restart {
            RestartPolicy::Always => true,
            RestartPolicy::UnlessStopped => !super::state::stopped_by_user(&s.dir()),
            RestartPolicy::No | RestartPolicy::OnFailure { .. } => false,
        })
        .map(|s| s.name)
        .collect()
}

/// `containr restart [-t N] CONTAINER`: stop it (as `stop`), then start it
/// again under a new monitor.
pub fn restart(data: &DataRoot, name: &str, timeout: Option<u32>) -> Result<(), Error> {
    stop(data, name, timeout, None)?;
    super::monitor::start_detached(data.path(), name, None)?;
    Ok(())
}

/// `containr attach [--detach-keys K] [--no-stdin] CONTAINER`: the running
/// container's output here, our input to it, until it ends or the detach
/// keys are typed (docker's ctrl-p ctrl-q by default). Whether it has a
/// terminal (then ours should be raw) is `state.config`'s `tty`.
pub fn attach(
    data: &DataRoot,
    name: &str,
    keys: Option<&str>,
    no_stdin: bool,
) -> Result<super::attach::End, Error> {
    let s = data.lookup(name)?;
    let keys = super::attach::parse_keys(keys.unwrap_or("ctrl-p,ctrl-q"))?;
    if !s.is_running() {
        return Err(super::attach::Error::NotRunning(s.name.clone()).into());
    }
    Ok(super::attach::attach(&s.name, &s.dir(), &keys, no_stdin)?)
}

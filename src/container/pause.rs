//! `pause`/`unpause`: every process of a container stopped by its cgroup's
//! freezer, and let go again: `cgroup.freeze` on v2; on v1 the freezer
//! hierarchy, which a container joins only when it is first paused (each
//! v1 hierarchy joined at start costs an RCU grace period), so the freezer
//! cgroup is made then, the container's processes moved into it, and
//! removed with the container ([`remove_freezer`]).
//!
//! Whether a container is paused is read from the freezer, never recorded:
//! nothing to get out of date if a command is killed halfway. Freezing and
//! thawing are `cgroup::oci`'s, the OCI runtime's.

use std::path::PathBuf;

use super::Error;
use super::state::{DataRoot, State};
use crate::cgroup::{Location, oci::OciCgroup};

/// How many times the processes of a container are listed and moved into
/// a new v1 freezer cgroup before giving up on one that forks faster.
const MOVE_ROUNDS: usize = 100;

/// `containr pause NAME`: freeze every process of the running container.
pub fn pause(root: &std::path::Path, name: &str) -> Result<State, Error> {
    let state = DataRoot::open(root)?.lookup(name)?;
    if !state.is_running() {
        return Err(Error::NotRunning(state.id));
    }
    if is_paused(&state) {
        return Err(Error::AlreadyPaused(state.id));
    }
    let freezer = freezer(&state, true)?.ok_or_else(|| Error::NotRunning(state.id.clone()))?;
    freezer.freeze()?;
    Ok(state)
}

/// `containr unpause NAME`: let the paused container run again.
pub fn unpause(root: &std::path::Path, name: &str) -> Result<State, Error> {
    let state = DataRoot::open(root)?.lookup(name)?;
    if !state.is_running() || !is_paused(&state) {
        return Err(Error::NotPaused(state.id));
    }
    if let Some(freezer) = freezer(&state, false)? {
        freezer.thaw()?;
    }
    Ok(state)
}

/// A running container frozen while a command reads it whole (`commit`,
/// as docker's `commit --pause`); thawed when dropped, on every error path.
/// SIGINT, SIGTERM and SIGHUP are held (blocked) meanwhile, so that a
/// Ctrl-C thaws the container before it ends the command; the freeze is
/// bounded by what the command does while it holds it.
pub struct Frozen {
    freezer: OciCgroup,
    mask: nix::sys::signal::SigSet,
}

/// Freeze the running container `state` until the value returned is
/// dropped. `None` (nothing done) if it is not running, or is paused
/// already: it stays paused, as docker leaves it.
pub fn freeze_while(state: &State) -> Result<Option<Frozen>, Error> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
    if !state.is_running() || is_paused(state) {
        return Ok(None);
    }
    let Some(freezer) = freezer(state, true)? else {
        return Ok(None);
    };
    let mut held = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        held.add(sig);
    }
    let mut mask = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&held), Some(&mut mask)).map_err(
        Error::sys_nix("blocking signals while the container is frozen"),
    )?;
    let frozen = Frozen { freezer, mask };
    frozen.freezer.freeze()?;
    Ok(Some(frozen))
}

impl Drop for Frozen {
    fn drop(&mut self) {
        use nix::sys::signal::{SigmaskHow, pthread_sigmask};
        if let Err(e) = self.freezer.thaw() {
            tracing::warn!("thawing the container: {e}");
        }
        // A signal held meanwhile is delivered now, the container running.
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.mask), None);
    }
}

/// Whether the container is paused (its freezer says frozen).
pub fn is_paused(state: &State) -> bool {
    state.is_running()
        && freezer(state, false)
            .ok()
            .flatten()
            .is_some_and(|f| f.is_frozen())
}

/// Thaw the container if it is paused: after a SIGKILL, which a process
/// frozen by the v1 freezer only acts on once thawed (docker's order).
pub fn thaw(state: &State) {
    if let Ok(Some(freezer)) = freezer(state, false) {
        let _ = freezer.thaw();
    }
}

/// Put process `pid` (`exec`'s) in the container's v1 freezer cgroup, if it
/// has one (it was paused before).
pub(super) fn join_freezer(state: &State, pid: i32) -> Result<(), Error> {
    if let Some(Location::V1(_)) = &state.cgroup
        && let Some(dir) = v1_freezer_dir(&state.id).filter(|d| d.is_dir())
    {
        std::fs::write(dir.join("cgroup.procs"), pid.to_string())
            .map_err(crate::util::io_err(&dir.join("cgroup.procs")))?;
    }
    Ok(())
}

/// Remove the v1 freezer cgroup of container `id`, if it was ever paused.
/// Thawed first: a container whose `containr run` was killed while it was
/// paused has its SIGKILL pending until then (up to a second to exit).
pub fn remove_freezer(id: &str, location: &Location) {
    let Location::V1(_) = location else {
        return;
    };
    let Some(dir) = v1_freezer_dir(id).filter(|d| d.is_dir()) else {
        return;
    };
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    for _ in 0..50 {
        match std::fs::remove_dir(&dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            _ => return,
        }
    }
}

/// The container's freezer: its v2 cgroup, or its v1 freezer cgroup (with
/// `make`, made and joined by all its processes if it is not yet).
fn freezer(state: &State, make: bool) -> Result<Option<OciCgroup>, Error> {
    let dir = match &state.cgroup {
        None => return Ok(None),
        Some(Location::V2(dir)) => return Ok(Some(OciCgroup::at(Location::V2(dir.clone())))),
        Some(Location::V1(dirs)) => match v1_freezer_dir(&state.id) {
            Some(dir) if dir.is_dir() => dir,
            Some(dir) if make => {
                make_v1_freezer(&dir, dirs)?;
                dir
            }
            _ => return Ok(None),
        },
    };
    Ok(Some(OciCgroup::at(Location::V1(vec![(
        "freezer".into(),
        dir,
    )]))))
}

/// Where container `id`'s v1 freezer cgroup is (or would be): beside its
/// other cgroups, under containr's own cgroup of the freezer hierarchy.
fn v1_freezer_dir(id: &str) -> Option<PathBuf> {
    let crate::cgroup::Host::V1(v1) = crate::cgroup::host(true).ok()? else {
        return None;
    };
    v1.hierarchies()
        .find(|(controllers, _, _)| controllers.split(',').any(|c| c == "freezer"))
        .map(|(_, mountpoint, own)| mountpoint.join(own).join("containr").join(id))
}

/// Make the v1 freezer cgroup `dir` and move every process of the
/// container (listed in its cgroup `dirs`) into it, until a round finds
/// none left outside (a process may fork while they are moved).
fn make_v1_freezer(dir: &std::path::Path, dirs: &[(String, PathBuf)]) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(crate::util::io_err(dir))?;
    let procs = |d: &std::path::Path| -> Vec<i32> {
        std::fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    let Some((_, source)) = dirs.first() else {
        return Ok(());
    };
    for _ in 0..MOVE_ROUNDS {
        let inside = procs(dir);
        let outside: Vec<i32> = procs(source)
            .into_iter()
            .filter(|p| !inside.contains(p))
            .collect();
        if outside.is_empty() {
            return Ok(());
        }
        for pid in outside {
            // It may have exited since it was listed.
            let _ = std::fs::write(dir.join("cgroup.procs"), pid.to_string());
        }
    }
    let _ = std::fs::remove_dir(dir);
    Err(Error::Sys {
        what: "moving the container's processes into its freezer cgroup",
        source: std::io::Error::other("they fork faster than they can be moved"),
    })
}

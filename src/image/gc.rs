//! `containr gc` (remove what no image uses) and `containr verify`
//! (re-hash blobs, re-sum snapshots, report what is wrong and, with
//! `--repair`, unpack corrupt snapshots again).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::store::Check;
use super::{Error, Images};
use crate::cas::Digest;

/// What `gc` removed.
#[derive(Debug, Default)]
pub struct Swept {
    pub blobs: Vec<Digest>,
    pub snapshots: Vec<String>,
    pub other: Vec<PathBuf>,
    pub bytes: u64,
}

/// The snapshots the containers `live` use (listed in their
/// `rw/<id>/layers`), and the `rw/<id>` directories of all others: of
/// containers that no longer exist, or `run --rm`s whose containr was
/// killed, which the caller leaves out of `live`.
fn containers(data_root: &Path, live: &BTreeSet<String>) -> (BTreeSet<String>, Vec<PathBuf>) {
    let mut in_use = BTreeSet::new();
    let mut dead = Vec::new();
    if let Ok(entries) = fs::read_dir(data_root.join("rw")) {
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if live.contains(&id) {
                let layers = fs::read_to_string(e.path().join("layers")).unwrap_or_default();
                in_use.extend(layers.lines().map(str::to_string));
            } else {
                dead.push(e.path());
            }
        }
    }
    (in_use, dead)
}

/// Bytes of a file, or of the files in a tree (symlinks not followed).
fn size_of(path: &Path) -> u64 {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::read_dir(path)
            .map(|d| d.flatten().map(|e| size_of(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) if m.is_file() => m.len(),
        _ => 0,
    }
}

/// Remove every blob and snapshot no image references (nor a container
/// uses), and whatever interrupted pulls and runs left. `containers`: the
/// ids of the containers that exist, running or kept, which the caller
/// knows (the image store does not read container records).
pub fn gc(data_root: &Path, containers: &BTreeSet<String>) -> Result<Swept, Error> {
    let images = Images::open(data_root)?;
    // No pull is running while this is held, and none starts.
    let _guard = images.gc_guard(true)?;
    let _lock = images.lock()?;
    let (blobs, snapshots) = images.referenced()?;
    let (in_use, _) = self::containers(images.data_root(), containers);
    let mut swept = Swept::default();
    for b in images.cas.list()? {
        if !blobs.contains(&b) {
            swept.bytes += size_of(&images.cas.path(&b));
            images.cas.remove(&b)?;
            swept.blobs.push(b);
        }
    }
    let keep: BTreeSet<String> = snapshots.iter().map(|d| d.hex().to_string()).collect();
    for name in snapshot_entries(&images) {
        if Digest::from_hex(&name).is_ok() && !keep.contains(&name) && !in_use.contains(&name) {
            swept.bytes += size_of(&images.snapshot_dir().join(&name));
            images.remove_snapshot(&name)?;
            swept.snapshots.push(name);
        }
    }
    // Then what interrupted commands left.
    let (leftovers, _) = leftovers(&images, containers);
    for p in leftovers {
        swept.bytes += size_of(&p);
        let _ = if p.is_dir() {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
        swept.other.push(p);
    }
    Ok(swept)
}

/// Every name in the snapshot directory.
fn snapshot_entries(images: &Images) -> Vec<String> {
    fs::read_dir(images.snapshot_dir())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What interrupted pulls, unpacks, removals and killed runs left: partial
/// and temporary blobs, `snapshots/.tmp-*` trees, sums whose snapshot is
/// gone, and `rw/<id>` directories of containers that no longer exist.
/// With them, the snapshots the containers `live` use.
fn leftovers(images: &Images, live: &BTreeSet<String>) -> (Vec<PathBuf>, BTreeSet<String>) {
    let names = snapshot_entries(images);
    let stray = names.iter().filter(|name| {
        if Digest::from_hex(name).is_ok() {
            return false;
        }
        // A sum goes with its snapshot.
        match name.strip_suffix(".sum") {
            Some(owner) => !names.iter().any(|n| n == owner),
            None => true,
        }
    });
    let (in_use, dead_rw) = containers(images.data_root(), live);
    let mut out = images.cas.leftovers();
    out.extend(stray.map(|n| images.snapshot_dir().join(n)));
    out.extend(dead_rw);
    (out, in_use)
}

/// What `verify` found, and did with `--repair`.
#[derive(Debug, Default)]
pub struct Report {
    /// What is wrong (and was not repaired): verify fails.
    pub problems: Vec<String>,
    /// What `--repair` put right.
    pub repaired: Vec<String>,
    /// What could not be checked, without being wrong.
    pub notes: Vec<String>,
    /// What interrupted commands left: not corruption; `gc` removes it.
    pub leftovers: Vec<PathBuf>,
    pub blobs: usize,
    pub snapshots: usize,
}

/// Re-hash every blob, re-sum every snapshot and check every image is
/// whole. With `repair`, a corrupt snapshot (or one without a sum) whose
/// layer blob is intact is unpacked again, unless a running container
/// uses it. `containers`: the ids of the containers that exist, as for
/// [`gc`], less the `run --rm`s whose containr was killed (their writable
/// layers are leftovers); `running`: those of them running now. An exited
/// container's snapshots may be repaired: its overlay is not mounted, and
/// the repaired tree is the one it was made on (same path, same sum). A
/// repair unpacks a layer again, leaving `reserve` bytes free.
pub fn verify(
    data_root: &Path,
    containers: &BTreeSet<String>,
    running: &BTreeSet<String>,
    repair: bool,
    reserve: u64,
) -> Result<Report, Error> {
    let images = Images::open(data_root)?;
    // Repairs replace snapshots: no pull or run may pick one meanwhile.
    let _guard = if repair {
        Some(images.gc_guard(true)?)
    } else {
        None
    };
    let mut report = Report::default();
    let all = images.cas.list()?;
    let mut bad_blobs = BTreeSet::new();
    for b in &all {
        match images.cas.rehash(b) {
            Ok(actual) if actual == *b => {}
            Ok(actual) => {
                bad_blobs.insert(b.clone());
                report.problems.push(format!(
                    "blob {b} is corrupt: its content hashes to {actual}"
                ));
            }
            Err(e) => {
                bad_blobs.insert(b.clone());
                report.problems.push(format!("blob {b}: {e}"));
            }
        }
    }
    report.blobs = all.len();
    let (leftovers, _) = leftovers(&images, containers);
    report.leftovers = leftovers;
    let (in_use, _) = self::containers(data_root, running);
    // Each snapshot's users (image names) and the layer blob it comes from.
    let mut users: BTreeMap<Digest, (Vec<String>, Digest)> = BTreeMap::new();
    for (name, manifest) in images.index()? {
        match images.load(&manifest) {
            Ok(img) => {
                for (layer, diff_id) in img.layers.iter().zip(&img.diff_ids) {
                    if !images.cas.contains(layer) {
                        report
                            .problems
                            .push(format!("{name}: layer {layer} is missing"));
                    }
                    if !images.snapshot_path(diff_id).is_dir() && !images.cas.contains(layer) {
                        report
                            .problems
                            .push(format!("{name}: snapshot {diff_id} is missing"));
                    }
                    let entry = users
                        .entry(diff_id.clone())
                        .or_insert_with(|| (Vec::new(), layer.clone()));
                    if !entry.0.contains(&name) {
                        entry.0.push(name.clone());
                    }
                }
            }
            Err(e) => report.problems.push(format!("{name}: {e}")),
        }
    }
    for diff_id in snapshot_names(&images) {
        report.snapshots += 1;
        let (names, blob) = match users.get(&diff_id) {
            Some((names, blob)) => (names.join(", "), Some(blob)),
            None => ("no image".to_string(), None),
        };
        let (what, is_problem) = match images.check_snapshot(&diff_id) {
            Check::Intact => continue,
            Check::Corrupt { recorded, actual } => (
                format!("is corrupt: its tree sums to {actual}, {recorded} when it was unpacked"),
                true,
            ),
            Check::Unreadable(e) => (format!("cannot be read: {e}"), true),
            Check::Unrecorded => (
                "has no recorded sum (unpacked by an older containr): not verified".to_string(),
                false,
            ),
        };
        let line = format!("snapshot {diff_id} (used by {names}) {what}");
        if !repair {
            if is_problem {
                report.problems.push(line);
            } else {
                report.notes.push(line);
            }
            continue;
        }
        let refused = if in_use.contains(diff_id.hex()) {
            Some("a running container uses it (stop the container first)".to_string())
        } else {
            match blob {
                Some(b) if images.cas.contains(b) && !bad_blobs.contains(b) => {
                    images.remove_snapshot(diff_id.hex())?;
                    images
                        .ensure_snapshot(b, &diff_id, reserve)
                        .err()
                        .map(|e| format!("unpacking it again: {e}"))
                }
                Some(b) => Some(format!("its layer blob {b} is missing or corrupt")),
                None => Some("no image uses it (containr gc removes it)".to_string()),
            }
        };
        match refused {
            None => report.repaired.push(format!(
                "{line}; repaired: unpacked again from its layer blob"
            )),
            Some(why) if is_problem => report.problems.push(format!("{line}; not repaired: {why}")),
            Some(why) => report.notes.push(format!("{line}; not repaired: {why}")),
        }
    }
    Ok(report)
}

/// The snapshots in the store, by diff-id.
fn snapshot_names(images: &Images) -> Vec<Digest> {
    let mut out: Vec<Digest> = fs::read_dir(images.snapshot_dir())
        .map(|d| {
            d.flatten()
                .filter_map(|e| Digest::from_hex(e.file_name().to_str()?).ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

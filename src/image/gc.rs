//! `containr gc` (remove what no image uses) and `containr verify`
//! (re-hash the store and report what is wrong).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

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

/// The snapshots running containers use (listed in `rw/<id>/layers`), and
/// the `rw/<id>` directories of containers that no longer exist.
fn containers(data_root: &Path) -> (BTreeSet<String>, Vec<PathBuf>) {
    let mut live_ids = BTreeSet::new();
    if let Ok(entries) = fs::read_dir(data_root.join("containers")) {
        for e in entries.flatten() {
            let id = fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_string));
            live_ids.extend(id);
        }
    }
    let mut in_use = BTreeSet::new();
    let mut dead = Vec::new();
    if let Ok(entries) = fs::read_dir(data_root.join("rw")) {
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if live_ids.contains(&id) {
                let layers = fs::read_to_string(e.path().join("layers")).unwrap_or_default();
                in_use.extend(layers.lines().map(str::to_string));
            } else {
                dead.push(e.path());
            }
        }
    }
    (in_use, dead)
}

fn size_of(path: &Path) -> u64 {
    fs::symlink_metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Remove every blob and snapshot no image references (nor a running
/// container uses), and whatever interrupted pulls and runs left.
pub fn gc(data_root: &Path) -> Result<Swept, Error> {
    crate::container::state::DataRoot::open(data_root)
        .map(|d| d.reclaim_stale())
        .ok();
    let images = Images::open(data_root)?;
    // No pull is running while this is held, and none starts.
    let _guard = images.gc_guard(true)?;
    let _lock = images.lock()?;
    let (blobs, snapshots) = images.referenced()?;
    let (in_use, dead_rw) = containers(images.data_root());
    let mut swept = Swept::default();
    for b in images.cas.list()? {
        if !blobs.contains(&b) {
            swept.bytes += size_of(&images.cas.path(&b));
            images.cas.remove(&b)?;
            swept.blobs.push(b);
        }
    }
    let keep: BTreeSet<String> = snapshots.iter().map(|d| d.hex().to_string()).collect();
    if let Ok(entries) = fs::read_dir(images.snapshot_dir()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if keep.contains(&name) || in_use.contains(&name) {
                continue;
            }
            let _ = fs::remove_dir_all(e.path());
            swept.snapshots.push(name);
        }
    }
    for p in images.cas.leftovers().into_iter().chain(dead_rw) {
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

/// One problem `verify` found.
pub type Problem = String;

/// Re-hash every blob and check every image is whole; the problems, and
/// how many blobs were checked.
pub fn verify(data_root: &Path) -> Result<(Vec<Problem>, usize), Error> {
    let images = Images::open(data_root)?;
    let mut problems = Vec::new();
    let all = images.cas.list()?;
    for b in &all {
        match images.cas.rehash(b) {
            Ok(actual) if actual == *b => {}
            Ok(actual) => problems.push(format!(
                "blob {b} is corrupt: its content hashes to {actual}"
            )),
            Err(e) => problems.push(format!("blob {b}: {e}")),
        }
    }
    for p in images.cas.leftovers() {
        // Partial downloads are kept on purpose, to resume.
        let partial = p.parent().and_then(|d| d.file_name()) == Some("partial".as_ref());
        if !partial {
            problems.push(format!(
                "{} is not a blob (left by an interrupted write; containr gc removes it)",
                p.display()
            ));
        }
    }
    for (name, manifest) in images.index()? {
        match images.load(&manifest) {
            Ok(img) => {
                for (layer, diff_id) in img.manifest.layers.iter().zip(&img.config.rootfs.diff_ids)
                {
                    if !images.cas.contains(&layer.digest) {
                        problems.push(format!("{name}: layer {} is missing", layer.digest));
                    }
                    if !images.snapshot_path(diff_id).is_dir()
                        && !images.cas.contains(&layer.digest)
                    {
                        problems.push(format!("{name}: snapshot {diff_id} is missing"));
                    }
                }
            }
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
    Ok((problems, all.len()))
}

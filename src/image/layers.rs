//! A container's root filesystem from an image, as the image store
//! describes it: the image's layer snapshots (read-only, shared) under a
//! writable layer of the container's own.
//!
//! ```text
//! rw/<container id>/upper    the container's changes
//! rw/<container id>/work     overlayfs's scratch directory
//! rw/<container id>/merged   the mount point
//! rw/<container id>/layers   the snapshots it uses, for gc
//! ```
//!
//! [`Layers`] is a plain description; mounting it is `rootfs::overlay`'s.
//! The `rw/<id>` directory is removed by the host side when the container
//! is done ([`RwLayer`]'s `Drop`), or kept with the exited container until
//! `containr rm` ([`RwLayer::keep`], [`remove`]).

use std::path::{Path, PathBuf};

use crate::step;

/// The layers of a container's overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layers {
    /// The directory the lower layers are named relative to: the mount's
    /// options must fit in one page, and short names fit ~60 layers.
    pub base: PathBuf,
    /// Lower layers relative to `base`, top first.
    pub lower: Vec<String>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// A container's writable layer and mount point; removed when dropped.
pub struct RwLayer {
    pub dir: PathBuf,
    pub layers: Layers,
}

impl RwLayer {
    /// Create `rw/<id>/{upper,work,merged}` over `snapshots` (bottom
    /// first, as an image lists them).
    pub fn create(
        data_root: &Path,
        snapshot_base: &Path,
        id: &str,
        snapshots: &[PathBuf],
    ) -> std::io::Result<RwLayer> {
        let dir = data_root.join("rw").join(id);
        std::fs::create_dir_all(&dir)?;
        let layer = RwLayer {
            dir: dir.clone(),
            layers: Layers {
                base: snapshot_base.to_path_buf(),
                lower: snapshots
                    .iter()
                    .rev()
                    .map(|p| {
                        p.strip_prefix(snapshot_base)
                            .unwrap_or(p)
                            .to_string_lossy()
                            .into_owned()
                    })
                    .collect(),
                upper: dir.join("upper"),
                work: dir.join("work"),
            },
        };
        for sub in ["upper", "work", "merged"] {
            std::fs::create_dir(dir.join(sub))?;
        }
        // What `gc` must keep while this container runs.
        std::fs::write(dir.join("layers"), layer.layers.lower.join("\n"))?;
        Ok(layer)
    }

    pub fn mount_point(&self) -> PathBuf {
        self.dir.join("merged")
    }
}

impl RwLayer {
    /// The container exited and is kept: so is its writable layer. Its
    /// overlay was `volatile` (see `rootfs::overlay`) (no flush of the whole filesystem at every
    /// exit), so what the container wrote is flushed here, file by file:
    /// a kept container outlives a host crash, as docker's do, at a cost
    /// in proportion to what it wrote.
    pub fn keep(mut self) {
        step!(
            "fsync every file and directory of {}",
            self.layers.upper.display()
        );
        sync_tree(&self.layers.upper);
        self.dir = PathBuf::new();
    }
}

/// Best effort: a file that cannot be flushed is no reason to lose the
/// container's record.
fn sync_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => sync_tree(&e.path()),
                Ok(t) if t.is_file() => {
                    if let Ok(f) = std::fs::File::open(e.path()) {
                        let _ = f.sync_all();
                    }
                }
                _ => {}
            }
        }
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Drop for RwLayer {
    fn drop(&mut self) {
        if self.dir.as_os_str().is_empty() {
            return;
        }
        step!(
            "remove {} (the container's writable layer)",
            self.dir.display()
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Remove the kept writable layer of container `id`, if it has one.
pub fn remove(data_root: &Path, id: &str) -> std::io::Result<()> {
    match std::fs::remove_dir_all(data_root.join("rw").join(id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The layers container `id` sees, top first: its writable layer over the
/// image's snapshots; `None` for a container without a writable layer
/// (`--rootfs`).
pub fn view(data_root: &Path, id: &str) -> std::io::Result<Option<Vec<PathBuf>>> {
    let dir = data_root.join("rw").join(id);
    let lower = match std::fs::read_to_string(dir.join("layers")) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        other => other?,
    };
    let snapshots = data_root.join("snapshots");
    let mut layers = vec![dir.join("upper")];
    layers.extend(lower.lines().map(|l| snapshots.join(l)));
    Ok(Some(layers))
}

//! `containr diff CONTAINER`: what the container changed in its image's
//! filesystem, from its writable layer (the overlay's upper directory),
//! as docker lists it: `A` added, `C` changed, `D` deleted, by path.
//!
//! An overlay whiteout (a character device 0/0) is a deletion; an opaque
//! directory hides everything the image had below it, so what the image
//! had there and the layer has not is deleted too. Anything else is added
//! when the image's layers do not have its path, and changed when they do
//! (a directory is in the upper layer because something below it changed,
//! as docker shows it). The upper directory is walked by descriptor,
//! never following a symlink a running container makes.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::Error;
use super::export::{fd_path, is_opaque, open_child, open_path};
use super::state::State;
use crate::rootfs::mountapi::open_in_root;
use crate::util::io_err;
use crate::{image, rootfs};

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Added,
    Changed,
    Deleted,
}

impl Kind {
    /// docker's letter.
    pub fn letter(self) -> char {
        match self {
            Kind::Added => 'A',
            Kind::Changed => 'C',
            Kind::Deleted => 'D',
        }
    }
}

/// One line of `diff`: the kind and the path as the container sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: Kind,
    pub path: String,
}

/// The files containr bind-mounts its own over (`rootfs`'s `/etc` files):
/// when the image has none, an empty one is made in the writable layer as
/// the mount point. Not the container's change, so neither `diff` nor
/// `commit` shows it (docker keeps its own in an "init" layer).
const MOUNT_POINTS: [&str; 3] = ["etc/hostname", "etc/hosts", "etc/resolv.conf"];

/// The image's layers under a container's writable layer, merged, to ask
/// whether a path was there.
pub(crate) struct Lower {
    fd: OwnedFd,
}

impl Lower {
    /// Whether the upper layer's `rel` is one of containr's mount points
    /// (see [`MOUNT_POINTS`]), not something the container made.
    pub(crate) fn is_mount_point(&self, rel: &Path, meta: &std::fs::Metadata) -> bool {
        meta.is_file()
            && meta.len() == 0
            && MOUNT_POINTS.iter().any(|m| rel == Path::new(m))
            && !self.has(rel)
    }

    pub(crate) fn open(layers: &[PathBuf]) -> std::io::Result<Lower> {
        let fd = match layers {
            [one] => open_path(one)?,
            many => rootfs::overlay::read_only_view(many)?,
        };
        Ok(Lower { fd })
    }

    fn has(&self, rel: &Path) -> bool {
        self.image_meta(rel).is_some()
    }

    /// What the image has at `rel`, if anything.
    fn image_meta(&self, rel: &Path) -> Option<std::fs::Metadata> {
        let p = crate::util::cstring_lossy(Path::new(".").join(rel).as_os_str().as_bytes());
        let fd = open_in_root(self.fd.as_fd(), &p, libc::O_PATH | libc::O_NOFOLLOW).ok()?;
        std::fs::File::from(fd).metadata().ok()
    }

    /// The names the image has in the directory `rel`.
    fn names(&self, rel: &Path) -> Vec<OsString> {
        let p = crate::util::cstring_lossy(Path::new(".").join(rel).as_os_str().as_bytes());
        let Ok(dir) = open_in_root(
            self.fd.as_fd(),
            &p,
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY,
        ) else {
            return Vec::new();
        };
        std::fs::read_dir(fd_path(dir.as_fd()))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default()
    }
}

/// The changes of container `s`, by path.
pub fn diff(data_root: &Path, s: &State) -> Result<Vec<Change>, Error> {
    let rw = data_root.join("rw").join(&s.id);
    let layers = image::layers::view(data_root, &s.id)
        .map_err(io_err(&rw))?
        .ok_or_else(|| Error::NoWritableLayer(s.name.clone()))?;
    let upper = open_path(&layers[0]).map_err(io_err(&layers[0]))?;
    let lower = Lower::open(&layers[1..]).map_err(io_err(&rw))?;
    let mut out = Vec::new();
    walk(upper.as_fd(), Path::new(""), &lower, &mut out).map_err(io_err(&layers[0]))?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(
    dir: BorrowedFd<'_>,
    rel: &Path,
    lower: &Lower,
    out: &mut Vec<Change>,
) -> std::io::Result<()> {
    let names: BTreeSet<OsString> = std::fs::read_dir(fd_path(dir))?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let shown = |p: &Path| format!("/{}", p.display());
    for name in &names {
        let path = rel.join(name);
        let fd = match open_child(dir, name) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        let meta = std::fs::File::from(fd.try_clone()?).metadata()?;
        let t = meta.file_type();
        if t.is_char_device() && meta.rdev() == 0 {
            out.push(Change {
                kind: Kind::Deleted,
                path: shown(&path),
            });
            continue;
        }
        if lower.is_mount_point(&path, &meta) {
            continue;
        }
        let in_image = lower.image_meta(&path);
        if !t.is_dir() {
            out.push(Change {
                kind: if in_image.is_some() {
                    Kind::Changed
                } else {
                    Kind::Added
                },
                path: shown(&path),
            });
            continue;
        }
        let mut below = Vec::new();
        if in_image.is_some() && is_opaque(fd.as_fd()) {
            for gone in lower.names(&path) {
                if open_child(fd.as_fd(), &gone).is_err() {
                    below.push(Change {
                        kind: Kind::Deleted,
                        path: shown(&path.join(&gone)),
                    });
                }
            }
        }
        walk(fd.as_fd(), &path, lower, &mut below)?;
        // A directory of the image is in the writable layer because
        // something below it changed (shown, as docker shows it), or its
        // own owner or mode did; otherwise it only held a mount point.
        let kind = match in_image {
            None => Some(Kind::Added),
            Some(m)
                if !below.is_empty()
                    || (m.mode(), m.uid(), m.gid()) != (meta.mode(), meta.uid(), meta.gid()) =>
            {
                Some(Kind::Changed)
            }
            Some(_) => None,
        };
        if let Some(kind) = kind {
            out.push(Change {
                kind,
                path: shown(&path),
            });
        }
        out.extend(below);
    }
    Ok(())
}

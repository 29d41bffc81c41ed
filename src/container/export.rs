//! `containr export CONTAINER`: a container's filesystem as one tar,
//! running or exited. For a container from an image, the tree is its
//! overlay, mounted read-only and attached nowhere
//! ([`rootfs::overlay::read_only_view`] of [`image::layers::view`]): the
//! kernel merges the layers exactly as
//! the container saw them, and the mount goes away with its fd. For a
//! `--rootfs` container, the directory is the tar.

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Error;
use crate::namespace::userns::IdMap;
use crate::{image, rootfs};

use crate::util::io_err;

/// Write the filesystem of container `id` (whose root filesystem, without
/// an image, is `rootfs`) as a tar to `out`.
/// With a user namespace (`userns`), what the container wrote is stored
/// under host ids; they are written as the container's, as docker does.
pub fn export(
    data_root: &Path,
    id: &str,
    rootfs: &Path,
    userns: Option<IdMap>,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let rw = data_root.join("rw").join(id);
    let view = match image::layers::view(data_root, id).map_err(io_err(&rw))? {
        Some(layers) => Some(rootfs::overlay::read_only_view(&layers).map_err(io_err(&rw))?),
        None => None,
    };
    let root = match &view {
        Some(fd) => PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
        None => rootfs.to_path_buf(),
    };
    let mut b = tar::Builder::new(out);
    let ids = |id: u64| match userns {
        Some(m) if (m.host as u64..m.host as u64 + m.count as u64).contains(&id) => {
            id - m.host as u64
        }
        _ => id,
    };
    walk(&mut b, &root, Path::new(""), &ids)?;
    b.into_inner()
        .and_then(|w| w.flush())
        .map_err(io_err(Path::new("export")))?;
    Ok(())
}

/// Append everything below `root/rel`, parents before their children, in
/// name order (the same tree gives the same tar).
fn walk(
    b: &mut tar::Builder<&mut dyn Write>,
    root: &Path,
    rel: &Path,
    ids: &dyn Fn(u64) -> u64,
) -> Result<(), Error> {
    let dir = root.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(io_err(&dir))?
        .flatten()
        .map(|e| (e.file_name(), e.file_type().is_ok_and(|t| t.is_dir())))
        .collect();
    entries.sort();
    for (name, is_dir) in entries {
        let rel = rel.join(&name);
        let full = root.join(&rel);
        append(b, &full, &rel, ids).map_err(io_err(&full))?;
        if is_dir {
            walk(b, root, &rel, ids)?;
        }
    }
    Ok(())
}

/// One entry, its header made from its metadata with owners through `ids`.
fn append(
    b: &mut tar::Builder<&mut dyn Write>,
    full: &Path,
    rel: &Path,
    ids: &dyn Fn(u64) -> u64,
) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(full)?;
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
    h.set_uid(ids(meta.uid() as u64));
    h.set_gid(ids(meta.gid() as u64));
    let t = meta.file_type();
    if t.is_symlink() {
        b.append_link(&mut h, rel, fs::read_link(full)?)
    } else if t.is_file() {
        b.append_data(&mut h, rel, fs::File::open(full)?)
    } else {
        // Directories, devices, fifos, sockets: the header is the entry.
        h.set_size(0);
        b.append_data(&mut h, rel, std::io::empty())
    }
}

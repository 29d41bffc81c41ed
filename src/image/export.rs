//! `containr export CONTAINER`: a container's filesystem as one tar,
//! running or exited. For a container from an image, the tree is its
//! overlay, mounted read-only and attached nowhere
//! ([`overlay::detached_view`]): the kernel merges the layers exactly as
//! the container saw them, and the mount goes away with its fd. For a
//! `--rootfs` container, the directory is the tar.

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::{Error, overlay};

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Write the filesystem of container `id` (whose root filesystem, without
/// an image, is `rootfs`) as a tar to `out`.
pub fn export(data_root: &Path, id: &str, rootfs: &Path, out: &mut dyn Write) -> Result<(), Error> {
    let view =
        overlay::detached_view(data_root, id).map_err(io_err(&data_root.join("rw").join(id)))?;
    let root = match &view {
        Some(fd) => PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
        None => rootfs.to_path_buf(),
    };
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    walk(&mut b, &root, Path::new(""))?;
    b.into_inner()
        .and_then(|w| w.flush())
        .map_err(io_err(Path::new("export")))?;
    Ok(())
}

/// Append everything below `root/rel`, parents before their children, in
/// name order (the same tree gives the same tar).
fn walk(b: &mut tar::Builder<&mut dyn Write>, root: &Path, rel: &Path) -> Result<(), Error> {
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
        b.append_path_with_name(&full, &rel)
            .map_err(io_err(&full))?;
        if is_dir {
            walk(b, root, &rel)?;
        }
    }
    Ok(())
}

//! Docker's copy-up: a new, empty named volume mounted over a directory
//! the image fills gets that directory's content first, owners and modes
//! kept, so `-v pgdata:/var/lib/postgresql` starts from the image's files.
//!
//! The destination is resolved inside the root (`openat2(RESOLVE_IN_ROOT)`)
//! and walked without following symlinks (they are copied as symlinks), so
//! nothing outside the root is read. Runs before the container's command
//! exists, so nothing inside can race the walk.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::{Error, mountapi};
use crate::step;

/// Copy the image's `dest` (resolved inside `root`) into `volume` if the
/// volume is empty and `dest` is a directory; otherwise nothing.
pub fn copy_up(root: &Path, dest: &Path, volume: &Path) -> Result<(), Error> {
    let err = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Op {
            op: what,
            path,
            source,
        }
    };
    let empty = fs::read_dir(volume)
        .map_err(err("reading the volume", volume))?
        .next()
        .is_none();
    if !empty {
        return Ok(());
    }
    let root_fd = fs::File::open(root).map_err(err("opening the rootfs", root))?;
    let rel = dest.strip_prefix("/").unwrap_or(dest);
    let rel = CString::new(Path::new(".").join(rel).as_os_str().as_bytes())
        .map_err(|_| err("copy-up of", dest)(io::ErrorKind::InvalidInput.into()))?;
    let dir = match mountapi::open_in_root(root_fd.as_fd(), &rel, libc::O_PATH | libc::O_DIRECTORY)
    {
        Ok(fd) => fd,
        // Not in the image, or not a directory: nothing to copy.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
            return Ok(());
        }
        Err(e) => return Err(err("copy-up: resolving in the root", dest)(e)),
    };
    step!(
        "copy {} of the image into the new volume {} (owners and modes kept)",
        dest.display(),
        volume.display()
    );
    let from = Path::new("/proc/self/fd").join(dir.as_raw_fd().to_string());
    copy_dir(&from, volume).map_err(err("copy-up into", volume))?;
    let meta = fs::metadata(&from).map_err(err("copy-up of", dest))?;
    same_owner_mode(volume, &meta).map_err(err("copy-up into", volume))
}

/// The content of `from` into the existing directory `to`.
fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&src)?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
            std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
            continue;
        } else if kind.is_dir() {
            fs::create_dir(&dst)?;
            copy_dir(&src, &dst)?;
        } else if kind.is_file() {
            fs::copy(&src, &dst)?;
        } else {
            // Devices, fifos and sockets have no place in a volume.
            continue;
        }
        same_owner_mode(&dst, &meta)?;
    }
    Ok(())
}

/// Owner first: chown clears the set-id bits chmod then restores.
fn same_owner_mode(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))
}

//! `containr export CONTAINER`: a container's filesystem as one tar,
//! running or exited. For a container from an image, the tree is its
//! overlay, mounted read-only and attached nowhere
//! ([`rootfs::overlay::read_only_view`] of [`image::layers::view`]): the
//! kernel merges the layers exactly as
//! the container saw them, and the mount goes away with its fd. For a
//! `--rootfs` container, the directory is the tar.
//!
//! The tar writer here is shared: `cp` writes a container's files with it
//! and `commit` a writable layer (its whiteouts as OCI `.wh.` entries).
//! It walks by descriptor, each entry opened relative to its parent without
//! following symlinks, so a running container's renames cannot lead it
//! out of the tree.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

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
    let root = open_path(&root).map_err(io_err(&root))?;
    let ids = |id: u64| userns.map_or(id, |m| m.to_container(id));
    let mut b = tar::Builder::new(out);
    let opts = TarOptions {
        ids: &ids,
        whiteouts: false,
        skip: None,
        links: Default::default(),
    };
    append_children(&mut b, root.as_fd(), Path::new(""), &opts)?;
    b.into_inner()
        .and_then(|w| w.flush())
        .map_err(io_err(Path::new("export")))?;
    Ok(())
}

/// How [`append_tree`] writes a tree as tar entries.
pub struct TarOptions<'a> {
    /// The owner a tar entry carries for a host uid or gid (a user
    /// namespace's host ids are written as the container's, as docker does).
    pub ids: &'a dyn Fn(u64) -> u64,
    /// Overlay whiteouts (character devices 0/0) and opaque directories
    /// become the OCI layer's `.wh.NAME` and `.wh..wh..opq` entries: an
    /// image layer made from a writable layer (`commit`).
    pub whiteouts: bool,
    /// Entries (by their name in the tar) left out, with what is below.
    pub skip: Option<&'a Skip<'a>>,
    /// Files met so far that have other names too: a later name of the
    /// same inode is written as a hard link to the first, as tar does.
    pub links: HardLinks,
}

/// The first tar name of each multiply-linked file, by device and inode.
#[derive(Default)]
pub struct HardLinks(std::cell::RefCell<std::collections::HashMap<(u64, u64), PathBuf>>);

/// Whether to leave an entry out of a tar, by its name and metadata.
pub type Skip<'a> = dyn Fn(&Path, &fs::Metadata) -> bool + 'a;

/// An `O_PATH` descriptor of the host path `path`, following it.
pub fn open_path(path: &Path) -> std::io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: open just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An `O_PATH` descriptor of `name` in the directory `dir`, not following
/// it if it is a symlink: walking a tree this way, each step relative to
/// the descriptor of the one before, never leaves it, whatever a running
/// container renames or replaces meanwhile.
pub fn open_child(dir: BorrowedFd<'_>, name: &OsStr) -> std::io::Result<OwnedFd> {
    let name = std::ffi::CString::new(name.as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: openat relative to a descriptor we hold, with a
    // NUL-terminated name; it returns a new descriptor or -1.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openat just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The path that reopens what an `O_PATH` descriptor refers to (the same
/// inode: no name is looked up again).
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Append everything below the directory `dir`, named under `prefix`,
/// parents before their children, in name order (the same tree gives the
/// same tar).
pub fn append_children(
    b: &mut tar::Builder<&mut dyn Write>,
    dir: BorrowedFd<'_>,
    prefix: &Path,
    opts: &TarOptions<'_>,
) -> Result<(), Error> {
    let listed = fd_path(dir);
    let mut names: Vec<_> = fs::read_dir(&listed)
        .map_err(io_err(prefix))?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let rel = prefix.join(&name);
        let fd = match open_child(dir, &name) {
            Ok(fd) => fd,
            // Removed since it was listed (a running container).
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(io_err(&rel)(e).into()),
        };
        append_tree(b, fd.as_fd(), &rel, opts)?;
    }
    Ok(())
}

/// Append the file `fd` refers to (an `O_PATH` descriptor, a symlink not
/// followed) as `name`, and everything below it if it is a directory.
pub fn append_tree(
    b: &mut tar::Builder<&mut dyn Write>,
    fd: BorrowedFd<'_>,
    name: &Path,
    opts: &TarOptions<'_>,
) -> Result<(), Error> {
    let meta = fs::File::from(fd.try_clone_to_owned().map_err(io_err(name))?)
        .metadata()
        .map_err(io_err(name))?;
    if opts.skip.is_some_and(|skip| skip(name, &meta)) {
        return Ok(());
    }
    let t = meta.file_type();
    if opts.whiteouts && t.is_char_device() && meta.rdev() == 0 {
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(0);
        let file = name.file_name().unwrap_or_default().to_string_lossy();
        let wh = name.with_file_name(format!(".wh.{file}"));
        return b
            .append_data(&mut h, &wh, std::io::empty())
            .map_err(|e| io_err(name)(e).into());
    }
    append(b, fd, &meta, name, opts).map_err(io_err(name))?;
    if t.is_dir() {
        if opts.whiteouts && is_opaque(fd) {
            let mut h = tar::Header::new_gnu();
            h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(0);
            b.append_data(&mut h, name.join(".wh..wh..opq"), std::io::empty())
                .map_err(io_err(name))?;
        }
        append_children(b, fd, name, opts)?;
    }
    Ok(())
}

/// Whether an overlay upper directory is opaque: it hides what the
/// layers below have at its path.
pub fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    let path = crate::util::cstring_lossy(fd_path(dir).as_os_str().as_bytes());
    let mut v = [0u8; 1];
    // SAFETY: a NUL-terminated path and name, and a buffer of the length
    // given; getxattr writes at most that much.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    n == 1 && v[0] == b'y'
}

/// One entry, its header made from its metadata with owners through `ids`.
fn append(
    b: &mut tar::Builder<&mut dyn Write>,
    fd: BorrowedFd<'_>,
    meta: &fs::Metadata,
    rel: &Path,
    opts: &TarOptions<'_>,
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    h.set_uid((opts.ids)(meta.uid() as u64));
    h.set_gid((opts.ids)(meta.gid() as u64));
    let t = meta.file_type();
    if t.is_file() && meta.nlink() > 1 {
        let mut seen = opts.links.0.borrow_mut();
        match seen.get(&(meta.dev(), meta.ino())) {
            Some(first) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                return b.append_link(&mut h, rel, first);
            }
            None => {
                seen.insert((meta.dev(), meta.ino()), rel.to_path_buf());
            }
        }
    }
    if t.is_symlink() {
        let target = nix::fcntl::readlinkat(Some(fd.as_raw_fd()), "")?;
        b.append_link(&mut h, rel, target)
    } else if t.is_file() {
        b.append_data(&mut h, rel, fs::File::open(fd_path(fd))?)
    } else {
        // Directories, devices, fifos, sockets: the header is the entry.
        h.set_size(0);
        b.append_data(&mut h, rel, std::io::empty())
    }
}

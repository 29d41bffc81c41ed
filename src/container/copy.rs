//! `containr cp`: files between a container and the host, both ways, or a
//! tar stream on stdin/stdout (`-`), with docker's rules for what lands
//! where.
//!
//! Both ways go through a tar: the source side writes one with the shared
//! tar writer (`export`), the destination side unpacks it. The container's
//! side is always reached through a descriptor of its root:
//!
//! - running: `/proc/PID/root` of its init, so the paths are those the
//!   container sees, its volumes included;
//! - not running: its overlay (the layers it recorded), mounted attached
//!   nowhere (read-only to copy out, writable over its upper layer to copy
//!   in), or its `--rootfs` directory.
//!
//! Every path in the container is looked up with `openat2(RESOLVE_IN_ROOT
//! | RESOLVE_NO_MAGICLINKS)` from that descriptor, and everything below it
//! is created or opened relative to the descriptor of its parent without
//! following symlinks: a symlink in the container (`/escape -> /`,
//! `/etc/x -> ../../../host`) resolves inside the container, never to a
//! host path. On the host side the same unpacker runs with the destination
//! directory as its root, so a hostile tar cannot write outside it either.
//!
//! A destination that is a symlink is followed, as docker's is: copying
//! onto `DEST -> /etc/target` writes the target (the link stays), onto a
//! link to a directory writes into it, onto a dangling link makes its
//! target ([`follow_in_root`], in the container's root for a container's
//! side). What is below the destination is never followed: an entry over a
//! symlink replaces it.

use std::ffi::{CString, OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::export::{TarOptions, append_children, append_tree, fd_path, open_path};
use super::state::State;
use crate::rootfs::mountapi::open_in_root;
use crate::util::{PathIo, io_err};
use crate::{image, rootfs, step};

/// Errors of `cp`, in docker's words where docker has some.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Could not find the file {path} in container {container}")]
    NotInContainer { path: String, container: String },
    #[error("{0}: no such file or directory")]
    NoSuchHostPath(PathBuf),
    #[error("destination directory {0} does not exist")]
    NoDestDir(String),
    #[error("cannot copy a directory to a file: {0}")]
    DirToFile(String),
    #[error("cannot overwrite directory {0} with non-directory")]
    NonDirOverDir(String),
    #[error("cannot overwrite non-directory {0} with directory")]
    DirOverNonDir(String),
    #[error("destination {0} must be a directory to extract a tar stream into")]
    StreamNotIntoDir(String),
    #[error("the archive holds {0:?}, which leads out of the destination")]
    BadEntry(String),
    #[error(
        "{path}: copying stopped: its filesystem has {} free, under the reserve of {} (--disk-reserve)",
        crate::image::limits::bytes(*.free),
        crate::image::limits::bytes(*.reserve)
    )]
    DiskFull {
        path: String,
        free: u64,
        reserve: u64,
    },
    #[error("container {0} is starting: try again")]
    Starting(String),
    #[error(transparent)]
    Io(#[from] PathIo),
    #[error("{path}: {source}")]
    Path {
        path: String,
        source: std::io::Error,
    },
}

fn path_err(path: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_string();
    move |source| Error::Path { path, source }
}

fn export_err(e: super::Error) -> Error {
    match e {
        super::Error::Io(e) => Error::Io(e),
        other => Error::Path {
            path: "archive".into(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// A descriptor of a container's root, and what keeps it valid.
struct Root {
    fd: Option<OwnedFd>,
    /// The writable overlay's scratch directory, removed once the mount
    /// is gone.
    scratch: Option<PathBuf>,
    userns: Option<crate::namespace::userns::IdMap>,
}

impl Root {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_ref().expect("open until dropped").as_fd()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        // The detached mount goes with its last descriptor, before its
        // scratch directory can be removed.
        drop(self.fd.take());
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The root of container `s` as it sees it, writable if `write`.
fn open_root(data_root: &Path, s: &State, write: bool) -> Result<Root, Error> {
    let root = |fd, scratch| Root {
        fd: Some(fd),
        scratch,
        userns: s.userns,
    };
    if s.is_running() {
        let pid = s
            .init_pid()
            .ok_or_else(|| Error::Starting(s.name.clone()))?;
        // The pidfd pins the process: if it is still alive after its root
        // is opened, the pid was not reused in between.
        let proc_root = PathBuf::from(format!("/proc/{pid}/root"));
        let pidfd = super::state::pidfd_open(pid).map_err(io_err(&proc_root))?;
        step!(
            "open {} (the container's root, as it sees it)",
            proc_root.display()
        );
        let fd = open_path(&proc_root).map_err(io_err(&proc_root))?;
        // SAFETY: a pidfd we own, signal 0 (a check only), no siginfo.
        let alive = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                0,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        } == 0;
        if alive {
            return Ok(root(fd, None));
        }
        return Err(Error::Starting(s.name.clone()));
    }
    let rw = data_root.join("rw").join(&s.id);
    match image::layers::view(data_root, &s.id).map_err(io_err(&rw))? {
        Some(layers) if write => {
            // A scratch directory of its own: the container's `work` may
            // hold the mark its volatile overlay left, which overlayfs
            // refuses to mount again.
            let scratch = rw.join(format!("cp-work-{}", crate::util::random_name()));
            std::fs::create_dir(&scratch).map_err(io_err(&scratch))?;
            match rootfs::overlay::writable_view(&layers, &scratch) {
                Ok(fd) => Ok(root(fd, Some(scratch))),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&scratch);
                    Err(io_err(&rw)(e).into())
                }
            }
        }
        Some(layers) => {
            let fd = rootfs::overlay::read_only_view(&layers).map_err(io_err(&rw))?;
            Ok(root(fd, None))
        }
        None => Ok(root(open_path(&s.rootfs).map_err(io_err(&s.rootfs))?, None)),
    }
}

/// `path` as openat2 takes it: relative to the root it is resolved in.
fn in_root(path: &Path) -> CString {
    let rel: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect();
    crate::util::cstring_lossy(Path::new(".").join(rel).as_os_str().as_bytes())
}

/// How many symlinks a destination may lead through, as the kernel's
/// `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;

/// Where `path` leads in `root`, as docker's `cp` takes a destination:
/// each symlink along it followed, the last one too, resolved with `root`
/// as `/` (an absolute target starts from it, `..` stops at it), so it
/// never leads out. What follows the first missing component is kept as
/// written (a dangling link names the file to make). `None` when no
/// symlink was met: the path as given is the destination.
pub fn follow_in_root(root: BorrowedFd<'_>, path: &str) -> std::io::Result<Option<String>> {
    let mut todo: Vec<OsString> = Vec::new();
    push_components(&mut todo, Path::new(path));
    let mut done = PathBuf::from("/");
    let (mut links, mut missing) = (0, false);
    while let Some(c) = todo.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        let next = done.join(&c);
        if missing {
            done = next;
            continue;
        }
        let fd = match open_in_root(root, &in_root(&next), libc::O_PATH | libc::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                missing = true;
                done = next;
                continue;
            }
            Err(e) => return Err(e),
        };
        let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
            done = next;
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
        }
        // The link itself (the descriptor is O_PATH|O_NOFOLLOW).
        let target = PathBuf::from(nix::fcntl::readlinkat(Some(fd.as_raw_fd()), "")?);
        if target.is_absolute() {
            done = PathBuf::from("/");
        }
        push_components(&mut todo, &target);
    }
    if links == 0 {
        return Ok(None);
    }
    let mut out = done.to_string_lossy().into_owned();
    // A trailing slash still says the destination must be a directory.
    if path.ends_with('/') && !out.ends_with('/') {
        out.push('/');
    }
    Ok(Some(out))
}

/// The names and `..`s of `path` pushed on the stack `todo`, the first on
/// top.
fn push_components(todo: &mut Vec<OsString>, path: &Path) {
    let parts = path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some("..".into()),
        _ => None,
    });
    let at = todo.len();
    todo.extend(parts);
    todo[at..].reverse();
}

/// What a source or destination is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    Other,
}

fn kind_of(fd: BorrowedFd<'_>) -> std::io::Result<Kind> {
    let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
    Ok(if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        Kind::Dir
    } else {
        Kind::Other
    })
}

/// Where a copy lands: the directory it is unpacked into, and the name
/// the source takes there (`None`: the source directory's contents go
/// straight into it).
#[derive(Debug, PartialEq, Eq)]
pub struct Placement {
    pub dir: PathBuf,
    pub name: Option<OsString>,
}

/// docker's rules (`docker cp`): the source `src` is a `src_kind`; the
/// destination `dest` exists as `dest_kind`, or not.
pub fn place(
    src: &str,
    src_kind: Kind,
    dest: &str,
    dest_kind: Option<Kind>,
) -> Result<Placement, Error> {
    let contents_only = src.ends_with("/.") || src == ".";
    let base = |p: &str| -> Option<OsString> {
        Path::new(p).components().rev().find_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            _ => None,
        })
    };
    let parent = |p: &str| -> PathBuf {
        let p = Path::new(p.trim_end_matches('/'));
        match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ if p.is_absolute() => PathBuf::from("/"),
            _ => PathBuf::from("."),
        }
    };
    match (src_kind, dest_kind) {
        (Kind::Dir, Some(Kind::Dir)) => Ok(Placement {
            dir: dest.into(),
            name: if contents_only { None } else { base(src) },
        }),
        (Kind::Dir, Some(Kind::Other)) => Err(Error::DirToFile(dest.into())),
        (Kind::Other, Some(Kind::Dir)) => Ok(Placement {
            dir: dest.into(),
            name: base(src),
        }),
        (Kind::Other, Some(Kind::Other)) => Ok(Placement {
            dir: parent(dest),
            name: base(dest),
        }),
        (Kind::Other, None) if dest.ends_with('/') => Err(Error::NoDestDir(dest.into())),
        (_, None) => Ok(Placement {
            dir: parent(dest),
            name: base(dest),
        }),
    }
}

/// Owners of what is unpacked: as the tar says (`-a`), through the
/// container's id map; or the destination's root.
struct Owners {
    keep: bool,
    userns: Option<crate::namespace::userns::IdMap>,
    default: (u64, u64),
}

impl Owners {
    fn of(&self, uid: u64, gid: u64) -> (u32, u32) {
        let (uid, gid) = if self.keep { (uid, gid) } else { self.default };
        let map = |id| self.userns.map_or(id, |m| m.to_host(id)) as u32;
        (map(uid), map(gid))
    }
}

/// An opened source: its descriptor and kind.
struct Source {
    fd: OwnedFd,
    kind: Kind,
}

/// Open the source `path` in `root` (following a final symlink if
/// `follow`).
fn open_source(root: BorrowedFd<'_>, path: &str, follow: bool) -> std::io::Result<Source> {
    let mut flags = libc::O_PATH;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    let fd = open_in_root(root, &in_root(Path::new(path)), flags)?;
    let kind = kind_of(fd.as_fd())?;
    Ok(Source { fd, kind })
}

/// Write `src` as a tar: as `name`, or its contents at the top.
fn write_source(
    src: &Source,
    name: Option<&OsStr>,
    ids: &dyn Fn(u64) -> u64,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let mut b = tar::Builder::new(out);
    let opts = TarOptions {
        ids,
        whiteouts: false,
        skip: None,
        links: Default::default(),
    };
    match name {
        Some(n) => append_tree(&mut b, src.fd.as_fd(), Path::new(n), &opts),
        None => append_children(&mut b, src.fd.as_fd(), Path::new(""), &opts),
    }
    .map_err(export_err)?;
    b.into_inner()
        .and_then(|w| w.flush())
        .map_err(path_err("archive"))?;
    Ok(())
}

/// `containr cp CONTAINER:SRC -`: `src` as a tar on `out`, named by its
/// last component, owners as the container sees them.
pub fn copy_out_tar(
    data_root: &Path,
    s: &State,
    src: &str,
    follow: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let root = open_root(data_root, s, false)?;
    let source = open_source(root.fd(), src, follow).map_err(not_found(src, s))?;
    let name = Path::new(src)
        .file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_else(|| ".".into());
    let ids = |id| root.userns.map_or(id, |m| m.to_container(id));
    let contents = src.ends_with("/.") && source.kind == Kind::Dir;
    write_source(&source, (!contents).then_some(name.as_os_str()), &ids, out)
}

fn not_found<'a>(path: &'a str, s: &'a State) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| {
        if e.raw_os_error() == Some(libc::ENOENT) {
            Error::NotInContainer {
                path: path.into(),
                container: s.name.clone(),
            }
        } else {
            Error::Path {
                path: format!("{}:{path}", s.name),
                source: e,
            }
        }
    }
}

/// `containr cp CONTAINER:SRC DEST`: onto the host, with docker's rules
/// for what lands where; owners kept with `archive`, else the caller's.
pub fn copy_out(
    data_root: &Path,
    s: &State,
    src: &str,
    follow: bool,
    archive: bool,
    dest: &Path,
    reserve: u64,
) -> Result<(), Error> {
    let root = open_root(data_root, s, false)?;
    let source = open_source(root.fd(), src, follow).map_err(not_found(src, s))?;
    // The host's side is the user's: its symlinks followed as they lead.
    let host = open_path(Path::new("/")).map_err(io_err(Path::new("/")))?;
    let abs = std::env::current_dir()
        .map(|d| d.join(dest))
        .map_err(io_err(dest))?;
    let followed = follow_in_root(host.as_fd(), &abs.to_string_lossy()).map_err(io_err(dest))?;
    let dest = followed.as_deref().map_or(dest, Path::new);
    let dest_s = dest.to_string_lossy();
    let dest_kind = match std::fs::metadata(dest) {
        Ok(m) if m.is_dir() => Some(Kind::Dir),
        Ok(_) => Some(Kind::Other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(dest)(e).into()),
    };
    let place = place(src, source.kind, &dest_s, dest_kind)?;
    let dir = open_path(&place.dir).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOENT) {
            Error::NoSuchHostPath(place.dir.clone())
        } else {
            io_err(&place.dir)(e).into()
        }
    })?;
    let owners = Owners {
        keep: archive,
        userns: None,
        default: (
            nix::unistd::geteuid().as_raw() as u64,
            nix::unistd::getegid().as_raw() as u64,
        ),
    };
    let ids = |id| root.userns.map_or(id, |m| m.to_container(id));
    pipe_through(
        |out| write_source(&source, place.name.as_deref(), &ids, out),
        |input| extract(dir.as_fd(), Path::new("."), input, &owners, reserve),
    )
}

/// `containr cp - CONTAINER:DEST`: the tar on `input` unpacked into the
/// directory `dest`; owners as the tar says with `archive`, else the
/// container's root.
pub fn copy_in_tar(
    data_root: &Path,
    s: &State,
    input: &mut dyn Read,
    dest: &str,
    archive: bool,
    reserve: u64,
) -> Result<(), Error> {
    let root = open_root(data_root, s, true)?;
    let followed = follow_in_root(root.fd(), dest).map_err(not_found(dest, s))?;
    let dest = followed.as_deref().unwrap_or(dest);
    match open_in_root(root.fd(), &in_root(Path::new(dest)), libc::O_PATH)
        .map_err(not_found(dest, s))
        .and_then(|fd| kind_of(fd.as_fd()).map_err(path_err(dest)))?
    {
        Kind::Dir => {}
        Kind::Other => return Err(Error::StreamNotIntoDir(dest.into())),
    }
    let owners = Owners {
        keep: archive,
        userns: root.userns,
        default: (0, 0),
    };
    extract(root.fd(), Path::new(dest), input, &owners, reserve)
}

/// `containr cp SRC CONTAINER:DEST`: the host's `src` into the container,
/// with docker's rules for what lands where; owners as on the host with
/// `archive`, else the container's root.
pub fn copy_in(
    data_root: &Path,
    s: &State,
    src: &Path,
    follow: bool,
    archive: bool,
    dest: &str,
    reserve: u64,
) -> Result<(), Error> {
    let host = open_path(Path::new("/")).map_err(io_err(Path::new("/")))?;
    // The host's own paths are the user's: looked up as given (from the
    // working directory), the final symlink followed only with -L.
    let abs = std::env::current_dir()
        .map(|d| d.join(src))
        .map_err(io_err(src))?;
    let source = open_source(host.as_fd(), &abs.to_string_lossy(), follow).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOENT) {
            Error::NoSuchHostPath(src.to_path_buf())
        } else {
            io_err(src)(e).into()
        }
    })?;
    let root = open_root(data_root, s, true)?;
    let followed = follow_in_root(root.fd(), dest).map_err(not_found(dest, s))?;
    let dest = followed.as_deref().unwrap_or(dest);
    let dest_kind = match open_in_root(root.fd(), &in_root(Path::new(dest)), libc::O_PATH) {
        Ok(fd) => Some(kind_of(fd.as_fd()).map_err(path_err(dest))?),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
        Err(e) => return Err(not_found(dest, s)(e)),
    };
    let src_s = src.to_string_lossy();
    let place = place(&src_s, source.kind, dest, dest_kind)?;
    match open_in_root(
        root.fd(),
        &in_root(&place.dir),
        libc::O_PATH | libc::O_DIRECTORY,
    ) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            return Err(Error::NoDestDir(place.dir.display().to_string()));
        }
        Err(e) => return Err(not_found(dest, s)(e)),
    }
    let owners = Owners {
        keep: archive,
        userns: root.userns,
        default: (0, 0),
    };
    let ids = |id| id;
    pipe_through(
        |out| write_source(&source, place.name.as_deref(), &ids, out),
        |input| extract(root.fd(), &place.dir, input, &owners, reserve),
    )
}

/// Run `write` (a tar writer) in a thread into a pipe that `read` (an
/// unpacker) reads: the tree is never held whole, in memory or on disk.
fn pipe_through(
    write: impl FnOnce(&mut dyn Write) -> Result<(), Error> + Send,
    read: impl FnOnce(&mut dyn Read) -> Result<(), Error>,
) -> Result<(), Error> {
    let (mut r, mut w) = std::io::pipe().map_err(path_err("pipe"))?;
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || write(&mut w));
        let read = read(&mut r);
        // An unpacker that stopped early closes its end: the writer ends
        // on EPIPE instead of blocking.
        drop(r);
        let written = writer.join().expect("the tar writer does not panic");
        read.and(written)
    })
}

/// The path of an archive entry, relative and without `..`.
fn clean(p: &Path) -> Result<PathBuf, Error> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            _ => return Err(Error::BadEntry(p.display().to_string())),
        }
    }
    Ok(out)
}

fn cstr(name: &OsStr) -> CString {
    crate::util::cstring_lossy(name.as_bytes())
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Unpack the tar on `input` into `base` (a path resolved inside `root`).
/// Every parent is resolved inside `root`; every entry is made relative to
/// its parent's descriptor, without following symlinks.
fn extract(
    root: BorrowedFd<'_>,
    base: &Path,
    input: &mut dyn Read,
    owners: &Owners,
    reserve: u64,
) -> Result<(), Error> {
    let mut archive = tar::Archive::new(input);
    // What comes in may be larger than the disk: stop before the
    // destination's filesystem falls under the reserve, as a pull does.
    let root_path = fd_path(root);
    let mut space = image::unpack::Space::new(&root_path, reserve);
    // Directory times are set last: what is unpacked into them changes
    // them.
    let mut dir_times: Vec<(PathBuf, u64)> = Vec::new();
    for entry in archive.entries().map_err(path_err("archive"))? {
        let mut entry = entry.map_err(path_err("archive"))?;
        let raw = entry.path().map_err(path_err("archive"))?.into_owned();
        let rel = clean(&raw)?;
        let Some(name) = rel.file_name().map(OsStr::to_os_string) else {
            continue;
        };
        let path = base.join(&rel);
        let shown = path.display().to_string();
        let err = |e| Error::Path {
            path: shown.clone(),
            source: e,
        };
        space
            .spend(entry.size() + image::unpack::ENTRY_COST)
            .map_err(|(free, reserve)| Error::DiskFull {
                path: shown.clone(),
                free,
                reserve,
            })?;
        let parent_path = path.parent().unwrap_or(Path::new("/"));
        let parent = rootfs::oci::resolve(root, parent_path, true).map_err(err)?;
        let h = entry.header();
        // Fields a writer left blank are zero, as tar reads them.
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let (uid, gid) = owners.of(h.uid().unwrap_or(0), h.gid().unwrap_or(0));
        let mtime = h.mtime().unwrap_or(0);
        let kind = h.entry_type();
        let name = cstr(&name);
        let pfd = parent.as_raw_fd();
        let existing = nix::sys::stat::fstatat(
            Some(pfd),
            name.as_c_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ok()
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
        if kind.is_dir() {
            if existing == Some(false) {
                // A symlink to a directory (`/bin -> usr/bin`) stays, and
                // what the tar has below goes through it, resolved in the
                // root (GNU tar's --keep-directory-symlink).
                let through = open_in_root(root, &in_root(&path), libc::O_PATH | libc::O_DIRECTORY);
                if through.is_ok() {
                    continue;
                }
                return Err(Error::DirOverNonDir(shown));
            }
            if existing.is_none() {
                // SAFETY: relative to a directory descriptor we hold, a
                // NUL-terminated single-component name.
                check(unsafe { libc::mkdirat(pfd, name.as_ptr(), 0o700) }).map_err(err)?;
            }
            let fd = open_at(pfd, &name, libc::O_RDONLY | libc::O_DIRECTORY).map_err(err)?;
            own(fd.as_fd(), uid, gid, mode).map_err(err)?;
            dir_times.push((path, mtime));
            continue;
        }
        if existing == Some(true) {
            return Err(Error::NonDirOverDir(shown));
        }
        if existing == Some(false) {
            // SAFETY: as above; unlinkat never follows the name.
            check(unsafe { libc::unlinkat(pfd, name.as_ptr(), 0) }).map_err(err)?;
        }
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let fd = open_at(
                    pfd,
                    &name,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC,
                )
                .map_err(err)?;
                let mut file = std::fs::File::from(fd);
                std::io::copy(&mut entry, &mut file).map_err(err)?;
                own(file.as_fd(), uid, gid, mode).map_err(err)?;
                set_mtime(file.as_raw_fd(), None, mtime, false).map_err(err)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(err)?
                    .ok_or_else(|| err(std::io::ErrorKind::InvalidData.into()))?;
                let target = cstr(target.as_os_str());
                // SAFETY: NUL-terminated target and name, relative to a
                // descriptor we hold; the link is made, never followed.
                check(unsafe { libc::symlinkat(target.as_ptr(), pfd, name.as_ptr()) })
                    .map_err(err)?;
                // SAFETY: as above, AT_SYMLINK_NOFOLLOW: the link itself.
                check(unsafe {
                    libc::fchownat(pfd, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW)
                })
                .map_err(err)?;
                set_mtime(pfd, Some(&name), mtime, true).map_err(err)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(err)?
                    .ok_or_else(|| err(std::io::ErrorKind::InvalidData.into()))?;
                let target = base.join(clean(&target)?);
                let tfd = open_in_root(root, &in_root(&target), libc::O_PATH | libc::O_NOFOLLOW)
                    .map_err(err)?;
                // SAFETY: linkat of the file a descriptor we hold refers
                // to (AT_EMPTY_PATH), to a name in a directory we hold.
                check(unsafe {
                    libc::linkat(
                        tfd.as_raw_fd(),
                        c"".as_ptr(),
                        pfd,
                        name.as_ptr(),
                        libc::AT_EMPTY_PATH,
                    )
                })
                .map_err(err)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (t, dev) = match kind {
                    tar::EntryType::Char => (libc::S_IFCHR, device(&entry)),
                    tar::EntryType::Block => (libc::S_IFBLK, device(&entry)),
                    _ => (libc::S_IFIFO, 0),
                };
                // SAFETY: as above; the node is made, not opened.
                check(unsafe { libc::mknodat(pfd, name.as_ptr(), t | 0o600, dev) }).map_err(err)?;
                let fd = open_at(pfd, &name, libc::O_PATH).map_err(err)?;
                // SAFETY: AT_EMPTY_PATH: the node the descriptor is of.
                check(unsafe {
                    libc::fchownat(fd.as_raw_fd(), c"".as_ptr(), uid, gid, libc::AT_EMPTY_PATH)
                })
                .map_err(err)?;
                let p = crate::util::cstring_lossy(fd_path(fd.as_fd()).as_os_str().as_bytes());
                // SAFETY: a NUL-terminated path of the node just made (the
                // descriptor was opened O_NOFOLLOW: not a symlink).
                check(unsafe { libc::chmod(p.as_ptr(), mode) }).map_err(err)?;
            }
            // Sockets and extensions have no file to make.
            _ => {}
        }
    }
    for (path, mtime) in dir_times.iter().rev() {
        if let Ok(fd) = open_in_root(
            root,
            &in_root(path),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        ) {
            let _ = set_mtime(fd.as_raw_fd(), None, *mtime, false);
        }
    }
    Ok(())
}

fn device<R: Read>(entry: &tar::Entry<'_, R>) -> libc::dev_t {
    let h = entry.header();
    let major = h.device_major().ok().flatten().unwrap_or(0);
    let minor = h.device_minor().ok().flatten().unwrap_or(0);
    libc::makedev(major, minor)
}

/// `name` in the directory `dir`, never following a symlink.
fn open_at(dir: libc::c_int, name: &CString, flags: libc::c_int) -> std::io::Result<OwnedFd> {
    // SAFETY: openat relative to a descriptor we hold, a NUL-terminated
    // name; a new descriptor or -1.
    let fd = unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openat just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Owner first: chown clears the set-id bits chmod then sets.
fn own(fd: BorrowedFd<'_>, uid: u32, gid: u32, mode: u32) -> std::io::Result<()> {
    // SAFETY: fchown/fchmod on a descriptor we hold.
    check(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) })?;
    // SAFETY: as above.
    check(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })
}

/// Set access and modification times to `mtime`: of the descriptor `fd`,
/// or of `name` in it (`nofollow`: the symlink itself).
fn set_mtime(
    fd: libc::c_int,
    name: Option<&CString>,
    mtime: u64,
    nofollow: bool,
) -> std::io::Result<()> {
    let t = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    let times = [t, t];
    let flags = if nofollow {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    match name {
        // SAFETY: utimensat with a descriptor we hold, a NUL-terminated
        // name and two timespecs.
        Some(n) => check(unsafe { libc::utimensat(fd, n.as_ptr(), times.as_ptr(), flags) }),
        // SAFETY: futimens on a descriptor we hold, two timespecs.
        None => check(unsafe { libc::futimens(fd, times.as_ptr()) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(dir: &str, name: Option<&str>) -> Placement {
        Placement {
            dir: dir.into(),
            name: name.map(OsString::from),
        }
    }

    #[test]
    fn placement_follows_docker() {
        use Kind::*;
        // A file into a directory keeps its name; onto a file or a new
        // name takes that name.
        assert_eq!(
            place("/etc/hosts", Other, "/tmp", Some(Dir)).unwrap(),
            p("/tmp", Some("hosts"))
        );
        assert_eq!(
            place("/etc/hosts", Other, "/tmp/h", Some(Other)).unwrap(),
            p("/tmp", Some("h"))
        );
        assert_eq!(
            place("/etc/hosts", Other, "/tmp/new", None).unwrap(),
            p("/tmp", Some("new"))
        );
        assert!(matches!(
            place("/etc/hosts", Other, "/tmp/new/", None),
            Err(Error::NoDestDir(_))
        ));
        // A directory into one goes under its name, or its contents with
        // `/.`; to a new name becomes it; never onto a file.
        assert_eq!(
            place("/etc", Dir, "/tmp", Some(Dir)).unwrap(),
            p("/tmp", Some("etc"))
        );
        assert_eq!(
            place("/etc/.", Dir, "/tmp", Some(Dir)).unwrap(),
            p("/tmp", None)
        );
        assert_eq!(
            place("/etc", Dir, "/tmp/e", None).unwrap(),
            p("/tmp", Some("e"))
        );
        assert!(matches!(
            place("/etc", Dir, "/tmp/f", Some(Other)),
            Err(Error::DirToFile(_))
        ));
        assert_eq!(place("d", Dir, "x", None).unwrap(), p(".", Some("x")));
    }

    #[test]
    fn a_destination_is_followed_inside_its_root() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("etc")).unwrap();
        std::fs::write(d.join("etc/target"), "").unwrap();
        symlink("/etc/target", d.join("tlink")).unwrap();
        symlink("etc", d.join("dlink")).unwrap();
        symlink("../../../../x", d.join("up")).unwrap();
        symlink("loop2", d.join("loop1")).unwrap();
        symlink("/loop1", d.join("loop2")).unwrap();
        let root = open_path(d).unwrap();
        let follow = |p: &str| follow_in_root(root.as_fd(), p);
        assert_eq!(follow("/etc/target").unwrap(), None);
        assert_eq!(follow("/etc/new").unwrap(), None);
        assert_eq!(follow("/tlink").unwrap().as_deref(), Some("/etc/target"));
        assert_eq!(follow("dlink/new").unwrap().as_deref(), Some("/etc/new"));
        // `..` stops at the root, before and after a link.
        assert_eq!(follow("/up").unwrap().as_deref(), Some("/x"));
        assert_eq!(follow("/up/").unwrap().as_deref(), Some("/x/"));
        assert_eq!(
            follow("/dlink/../../tlink").unwrap().as_deref(),
            Some("/etc/target")
        );
        let looped = follow("/loop1").unwrap_err();
        assert_eq!(looped.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn archive_paths_stay_below() {
        assert_eq!(clean(Path::new("./a/b")).unwrap(), PathBuf::from("a/b"));
        assert_eq!(clean(Path::new("/a")).unwrap(), PathBuf::from("a"));
        assert!(clean(Path::new("a/../../b")).is_err());
    }
}

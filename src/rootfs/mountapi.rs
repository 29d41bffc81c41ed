//! The new mount API (`open_tree`, `move_mount`, `mount_setattr`, `fsopen`,
//! `fsconfig`, `fsmount`), which the libc crate declares no wrappers or
//! constants for. Mounts made this way are *detached*: held by a file
//! descriptor, visible in no mount namespace until `move_mount` attaches
//! them, and gone when the last descriptor closes. That is what lets
//! containr prepare a mount on one side of a namespace boundary and place it
//! on the other, and never leave one behind on the host.
//!
//! Every function takes `&CStr` and does no allocation, so it may be called
//! in a child forked from a multi-threaded process.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

// linux/mount.h
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
pub const MOUNT_ATTR_RDONLY: libc::c_uint = 0x1;
pub const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
pub const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
pub const MOUNT_ATTR_NOEXEC: libc::c_uint = 0x8;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn fd_result(rc: libc::c_long) -> io::Result<OwnedFd> {
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) })
}

fn unit_result(rc: libc::c_long) -> io::Result<()> {
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A detached bind mount of `path` (relative to `dir`, or absolute), with
/// the mounts below it when `recursive`.
pub fn clone_tree(dir: RawFd, path: &CStr, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: open_tree reads a NUL-terminated path and returns a new fd.
    fd_result(unsafe { libc::syscall(libc::SYS_open_tree, dir, path.as_ptr(), flags) })
}

/// Idmap a detached tree (and the mounts below it) through the user
/// namespace `userns`: ids are translated between disk and callers by that
/// namespace's maps.
pub fn set_idmap(tree: BorrowedFd<'_>, userns: BorrowedFd<'_>) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: mount_setattr reads `attr` (of the size given) and an empty
    // path relative to the tree fd, which stays open for the call.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
}

/// Attach a detached mount at `target` (relative to the working directory,
/// or absolute).
pub fn attach(tree: BorrowedFd<'_>, target: &CStr) -> io::Result<()> {
    // SAFETY: move_mount reads two NUL-terminated paths; the fd stays open.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
}

/// A filesystem being configured (`fsopen`), to be made a detached mount
/// with [`FsContext::mount`].
pub struct FsContext(OwnedFd);

impl FsContext {
    pub fn open(fstype: &CStr) -> io::Result<FsContext> {
        // SAFETY: fsopen reads a NUL-terminated name and returns a new fd.
        fd_result(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })
            .map(FsContext)
    }

    fn config(
        &self,
        cmd: libc::c_uint,
        key: *const libc::c_char,
        value: *const libc::c_char,
    ) -> io::Result<()> {
        // SAFETY: key and value are null or NUL-terminated strings that
        // outlive the call; the context fd is ours.
        unit_result(unsafe {
            libc::syscall(libc::SYS_fsconfig, self.0.as_raw_fd(), cmd, key, value, 0)
        })
    }

    pub fn set_string(&self, key: &CStr, value: &CStr) -> io::Result<()> {
        self.config(FSCONFIG_SET_STRING, key.as_ptr(), value.as_ptr())
    }

    pub fn set_flag(&self, key: &CStr) -> io::Result<()> {
        self.config(FSCONFIG_SET_FLAG, key.as_ptr(), std::ptr::null())
    }

    /// Create the superblock and return it as a detached mount with the
    /// given `MOUNT_ATTR_*` flags.
    pub fn mount(self, attrs: libc::c_uint) -> io::Result<OwnedFd> {
        self.config(FSCONFIG_CMD_CREATE, std::ptr::null(), std::ptr::null())?;
        // SAFETY: integer arguments only; returns a new fd.
        fd_result(unsafe {
            libc::syscall(
                libc::SYS_fsmount,
                self.0.as_raw_fd(),
                FSMOUNT_CLOEXEC,
                attrs,
            )
        })
    }
}

// linux/mount.h and linux/openat2.h, for the OCI runtime's mounts.
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
pub const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// What [`set_attr`] changes: `MOUNT_ATTR_*` bits to set and to clear, a
/// propagation type (`MS_SHARED`, …, or 0) and an idmapping user namespace.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub set: u64,
    pub clear: u64,
    pub propagation: u64,
}

/// mount_setattr(2) on the mount `tree` refers to (a detached tree or an
/// `O_PATH` descriptor of a mount's root), and on the mounts below it when
/// `recursive`; `userns` idmaps it.
pub fn set_attr(
    tree: BorrowedFd<'_>,
    attr: Attr,
    userns: Option<BorrowedFd<'_>>,
    recursive: bool,
) -> io::Result<()> {
    let mut set = attr.set;
    if userns.is_some() {
        set |= MOUNT_ATTR_IDMAP;
    }
    let raw = MountAttr {
        attr_set: set,
        attr_clr: attr.clear,
        propagation: attr.propagation,
        userns_fd: userns.map_or(0, |u| u.as_raw_fd() as u64),
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: mount_setattr reads `raw` (of the size given) and an empty
    // path relative to the tree fd, which stays open for the call.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &raw as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
}

/// Attach a detached mount on the file or directory `target` refers to:
/// no path is looked up, so nothing (a symlink swapped in) can redirect it.
pub fn attach_to_fd(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: move_mount reads two empty NUL-terminated paths; both fds
    // stay open for the call.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
}

/// `struct open_how` of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(`root`, `path`, `flags`, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS):
/// `path` (absolute or not) is looked up as if `root` were `/`. A symlink
/// to `/`, an absolute one or `..` stays inside `root`, and `/proc`'s magic
/// links are refused, so what this opens is always inside `root`.
pub fn open_in_root(root: BorrowedFd<'_>, path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2 reads a NUL-terminated path and `how` (of the size
    // given); it returns a new fd or -1.
    fd_result(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })
}

//! Thin wrappers over the `*at` syscalls that layer unpacking and tree
//! sums work with: each passes NUL-terminated strings and integers to one
//! syscall and turns -1 into the errno.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;

pub(super) fn proc_path(parent: RawFd, name: &CString) -> CString {
    let mut p = format!("/proc/self/fd/{parent}/").into_bytes();
    p.extend_from_slice(name.as_bytes());
    CString::new(p).expect("no NUL bytes")
}

pub(super) fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

pub(super) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: a NUL-terminated path; returns a new descriptor or -1.
    let fd = cvt(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(super) fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we hold; returns a new one.
    let new = cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

pub(super) fn openat2_beneath(dirfd: RawFd, path: &CString) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain integers; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: openat2 reads the path and `how` (of the size passed) and
    // returns a new descriptor or -1.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    let fd = cvt(rc as libc::c_int)?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(super) fn openat(
    dirfd: RawFd,
    name: &CString,
    flags: libc::c_int,
    mode: u32,
) -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name relative to a descriptor we hold.
    let fd = cvt(unsafe {
        libc::openat(
            dirfd,
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode,
        )
    })?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(super) fn mkdirat(dirfd: RawFd, name: &CString, mode: u32) -> io::Result<()> {
    // SAFETY: a NUL-terminated name relative to a descriptor we hold.
    cvt(unsafe { libc::mkdirat(dirfd, name.as_ptr(), mode) }).map(drop)
}

pub(super) fn symlinkat(target: &CString, dirfd: RawFd, name: &CString) -> io::Result<()> {
    // SAFETY: NUL-terminated strings and a descriptor we hold.
    cvt(unsafe { libc::symlinkat(target.as_ptr(), dirfd, name.as_ptr()) }).map(drop)
}

pub(super) fn linkat(
    from_dir: RawFd,
    from: &CString,
    to_dir: RawFd,
    to: &CString,
) -> io::Result<()> {
    // SAFETY: NUL-terminated names relative to descriptors we hold; flags 0
    // links a symlink itself rather than what it points to.
    cvt(unsafe { libc::linkat(from_dir, from.as_ptr(), to_dir, to.as_ptr(), 0) }).map(drop)
}

pub(super) fn mknodat(dirfd: RawFd, name: &CString, mode: u32, dev: libc::dev_t) -> io::Result<()> {
    // SAFETY: a NUL-terminated name relative to a descriptor we hold.
    cvt(unsafe { libc::mknodat(dirfd, name.as_ptr(), mode, dev) }).map(drop)
}

pub(super) fn unlinkat(dirfd: RawFd, name: &CString) -> io::Result<()> {
    // SAFETY: a NUL-terminated name relative to a descriptor we hold.
    cvt(unsafe { libc::unlinkat(dirfd, name.as_ptr(), 0) }).map(drop)
}

/// `fstatat` of `name` itself, never what it points to.
pub(super) fn fstatat(dirfd: RawFd, name: &CString) -> io::Result<libc::stat> {
    // SAFETY: stat is plain data, filled in by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated name and a stat buffer we own.
    cvt(unsafe { libc::fstatat(dirfd, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

pub(super) fn fstatat_mode(dirfd: RawFd, name: &CString) -> io::Result<u32> {
    fstatat(dirfd, name).map(|st| st.st_mode)
}

pub(super) fn fchownat(dirfd: RawFd, name: &CString, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: a NUL-terminated name relative to a descriptor we hold.
    cvt(unsafe { libc::fchownat(dirfd, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) })
        .map(drop)
}

pub(super) fn fchmodat(dirfd: RawFd, name: &CString, mode: u32) -> io::Result<()> {
    // SAFETY: a NUL-terminated name relative to a descriptor we hold. Only
    // called for entries we just created that are not symlinks.
    cvt(unsafe { libc::fchmodat(dirfd, name.as_ptr(), mode, 0) }).map(drop)
}

pub(super) fn fchown(fd: RawFd, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: integer arguments on a descriptor we hold.
    cvt(unsafe { libc::fchown(fd, uid, gid) }).map(drop)
}

pub(super) fn fchmod(fd: RawFd, mode: u32) -> io::Result<()> {
    // SAFETY: integer arguments on a descriptor we hold.
    cvt(unsafe { libc::fchmod(fd, mode) }).map(drop)
}

/// `utimensat` with atime and mtime both `t`, never following `name`.
pub(super) fn utimensat(dirfd: RawFd, name: &CString, t: libc::timespec) -> io::Result<()> {
    let ts = [t, t];
    // SAFETY: a NUL-terminated name and two timespecs we own.
    cvt(unsafe { libc::utimensat(dirfd, name.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
        .map(drop)
}

/// `futimens` with atime and mtime both `t`.
pub(super) fn futimens(fd: RawFd, t: libc::timespec) -> io::Result<()> {
    let ts = [t, t];
    // SAFETY: two timespecs we own, on a descriptor we hold.
    cvt(unsafe { libc::futimens(fd, ts.as_ptr()) }).map(drop)
}

pub(super) fn fsetxattr(fd: RawFd, name: &std::ffi::CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: a NUL-terminated name and a value buffer of the length passed.
    cvt(unsafe { libc::fsetxattr(fd, name.as_ptr(), value.as_ptr().cast(), value.len(), 0) })
        .map(drop)
}

pub(super) fn lsetxattr(path: &CString, name: &CString, value: &[u8]) -> io::Result<()> {
    // SAFETY: NUL-terminated strings and a value buffer of the length passed.
    cvt(unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
    .map(drop)
}
pub(super) fn readlinkat(dirfd: RawFd, name: &CString) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: a NUL-terminated name and a buffer of the length passed.
    let n = unsafe { libc::readlinkat(dirfd, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// The names of `path`'s xattrs (never following it), each without its NUL.
pub(super) fn llistxattr(path: &CString) -> io::Result<Vec<Vec<u8>>> {
    let buf = sized(|buf: &mut [u8]| {
        // SAFETY: a NUL-terminated path and a buffer of the length passed
        // (a null pointer with length 0 asks for the size).
        unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
    })?;
    Ok(buf
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// The value of `path`'s xattr `name`, never following `path`.
pub(super) fn lgetxattr(path: &CString, name: &CString) -> io::Result<Vec<u8>> {
    sized(|buf: &mut [u8]| {
        // SAFETY: NUL-terminated strings and a buffer of the length passed.
        unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        }
    })
}

/// Run an xattr call that fills `buf` or says how large it must be; retries
/// while the value grows between the two calls.
fn sized(mut call: impl FnMut(&mut [u8]) -> libc::ssize_t) -> io::Result<Vec<u8>> {
    loop {
        let want = call(&mut []);
        if want < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; want as usize];
        let n = call(&mut buf);
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
    }
}

/// Start writing back `len` bytes of `fd` from `offset` (0: to the end)
/// without waiting for them: no durability by itself, only an earlier start.
pub(super) fn start_writeback(fd: RawFd, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: integer arguments on a descriptor we hold; SYNC_FILE_RANGE_WRITE
    // only queues the range's dirty pages for writing.
    cvt(unsafe { libc::sync_file_range(fd, offset as _, len as _, libc::SYNC_FILE_RANGE_WRITE) })
        .map(drop)
}

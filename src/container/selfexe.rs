//! What the container's init is exec'd from: never the host's binary as
//! the container could write it.
//!
//! Why not `/proc/self/exe` as it is: that is the CVE-2019-5736 class. A
//! process inside the container can open `/proc/<init>/exe`, which would be
//! the host's containr binary, and write to it, so the next containr run as
//! root on the host runs the attacker's code. Two ways out, as runc has:
//!
//! - [`SelfExe::ReadOnly`] (the default): the child, already in its new
//!   mount namespace, makes it private, bind-mounts the binary onto itself
//!   and remounts that read-only, then execs it. The init's pivot_root later
//!   detaches the mount from the container's namespace; from then on
//!   `/proc/1/exe` leads to a read-only mount that nobody in the container
//!   can remount, clone or change (the kernel only lets those act on mounts
//!   of the caller's own namespace): every write is EROFS. Three mount
//!   calls, where a copy of the 5 MB binary costs 4-5 ms per start.
//! - [`SelfExe::Sealed`], where the binary's path cannot be used (replaced
//!   or deleted since containr started): a memfd copy sealed against writes,
//!   growth, shrinking and the seals themselves.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::step;

/// `MFD_EXEC` (Linux 6.3): explicitly executable, needed where
/// `vm.memfd_noexec` makes memfds non-executable by default.
const MFD_EXEC: libc::c_uint = 0x0010;

/// How the init will be exec'd.
pub enum SelfExe {
    /// containr's path, to be bound read-only onto itself in the child;
    /// with the mount flags a remount must keep (nosuid, nodev).
    ReadOnly {
        path: std::ffi::CString,
        locked: libc::c_ulong,
    },
    Sealed(OwnedFd),
}

impl SelfExe {
    /// What `namespace::clone_and_exec` runs.
    pub fn as_exe(&self) -> crate::namespace::Exe<'_> {
        match self {
            SelfExe::Sealed(fd) => crate::namespace::Exe::Sealed(std::os::fd::AsFd::as_fd(fd)),
            SelfExe::ReadOnly { path, locked } => crate::namespace::Exe::ReadOnlyBind {
                path,
                locked: *locked,
            },
        }
    }
}

/// The read-only bind where containr's binary is still at its path, else a
/// sealed copy.
pub fn prepare() -> std::io::Result<SelfExe> {
    let link = std::fs::read_link("/proc/self/exe")?;
    let name = link.as_os_str().as_encoded_bytes();
    let usable = !name.ends_with(b" (deleted)") && link.is_file();
    if usable
        && let (Ok(path), Ok(st)) = (
            std::ffi::CString::new(name),
            nix::sys::statvfs::statvfs(&link),
        )
    {
        use nix::sys::statvfs::FsFlags;
        let mut locked = 0;
        for (fs, ms) in [
            (FsFlags::ST_NOSUID, libc::MS_NOSUID),
            (FsFlags::ST_NODEV, libc::MS_NODEV),
        ] {
            if st.flags().contains(fs) {
                locked |= ms;
            }
        }
        step!(
            "the init will run {} through a read-only bind mount of it: the container can never write the host binary",
            link.display()
        );
        return Ok(SelfExe::ReadOnly { path, locked });
    }
    sealed_copy().map(SelfExe::Sealed)
}

/// Copy `/proc/self/exe` into a sealed memfd.
pub fn sealed_copy() -> std::io::Result<OwnedFd> {
    let mut src = File::open("/proc/self/exe")?;
    let name = c"containr";
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create takes a valid NUL-terminated name and flags.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), base | MFD_EXEC) };
    if fd < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // Kernels before 6.3 do not know MFD_EXEC; memfds are executable there.
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), base) };
    }
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by memfd_create and nothing else owns it.
    let mut dst = unsafe { File::from_raw_fd(fd) };
    // std::io::copy uses copy_file_range/sendfile: an in-kernel copy.
    let size = std::io::copy(&mut src, &mut dst)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS on a memfd we own; no pointers involved.
    if unsafe { libc::fcntl(dst.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    step!(
        "memfd_create(\"containr\") + copy of /proc/self/exe ({} KiB), sealed SEAL|SHRINK|GROW|WRITE: the container can never reach the host binary",
        size / 1024
    );
    Ok(OwnedFd::from(dst))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn copy_is_identical_and_cannot_be_written() {
        let fd = sealed_copy().unwrap();
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let copy = std::fs::read(&path).unwrap();
        let original = std::fs::read("/proc/self/exe").unwrap();
        assert!(copy == original, "the memfd must hold the exact binary");
        let mut writer = File::options().write(true).open(&path).unwrap();
        let err = writer.write_all(b"overwrite").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    }
}

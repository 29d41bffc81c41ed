//! A sealed, in-memory copy of containr's own binary, which is what the
//! container's init is exec'd from.
//!
//! Why not `/proc/self/exe` directly: that is the CVE-2019-5736 class. A
//! process inside the container can open `/proc/<init>/exe`, which would be
//! the host's containr binary, and write to it once the init is gone, so the
//! next containr run as root on the host runs the attacker's code. Exec'ing a
//! memfd copy instead means `/proc/<init>/exe` names an anonymous file that
//! lives only as long as this container; and because the copy is sealed
//! against writes, growth and shrinking (and the seals themselves), even that
//! copy cannot be changed. runc's fix took this same route.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::step;

/// `MFD_EXEC` (Linux 6.3): explicitly executable, needed where
/// `vm.memfd_noexec` makes memfds non-executable by default.
const MFD_EXEC: libc::c_uint = 0x0010;

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

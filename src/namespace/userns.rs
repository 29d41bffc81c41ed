//! User namespaces (`--userns-remap`): container root is an unprivileged
//! range of host ids, and the rootfs is seen through an idmapped mount so
//! that its root-owned files belong to container root.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::Error;
use crate::step;

/// Container ids `0..count` are host ids `host..host+count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub host: u32,
    pub count: u32,
}

/// Default range, as /etc/subuid conventionally starts: 100000, 65536 ids.
pub const DEFAULT: IdMap = IdMap {
    host: 100_000,
    count: 65_536,
};

impl IdMap {
    /// `START[:COUNT]`, or `default`. START must not be 0 (that would be no
    /// remapping at all) and the range must fit 32 bits.
    pub fn parse(s: &str) -> Result<IdMap, Error> {
        if s == "default" {
            return Ok(DEFAULT);
        }
        let bad = || Error::IdMap(s.to_string());
        let (start, count) = match s.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let host: u32 = start.parse().map_err(|_| bad())?;
        let count: u32 = count.map_or(Ok(DEFAULT.count), |c| c.parse().map_err(|_| bad()))?;
        if host == 0 || count == 0 || host.checked_add(count).is_none() {
            return Err(bad());
        }
        Ok(IdMap { host, count })
    }

    fn line(&self) -> String {
        format!("0 {} {}\n", self.host, self.count)
    }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::UserNs { what, source }
}

/// Write the child's uid and gid maps (from the parent, which holds
/// CAP_SETUID and CAP_SETGID over the new namespace).
pub fn write_maps(pid: Pid, map: IdMap) -> Result<(), Error> {
    step!(
        "write /proc/{pid}/{{uid,gid}}_map: container 0..{} = host {}..{}",
        map.count,
        map.host,
        map.host as u64 + map.count as u64
    );
    std::fs::write(format!("/proc/{pid}/uid_map"), map.line()).map_err(io("writing uid_map"))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), map.line()).map_err(io("writing gid_map"))
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// A detached, idmapped copy of the mount tree at `rootfs`, mapped through
/// the user namespace of `pid`: a file owned by host uid 0 on disk reads as
/// owned by container root, and what container root writes is stored as
/// uid 0, so the directory needs no chown. Made here, in the host's user
/// namespace, because idmapping needs privilege over the filesystem; the
/// init attaches it in its own mount namespace.
pub fn idmapped_rootfs(rootfs: &Path, pid: Pid) -> Result<OwnedFd, Error> {
    step!(
        "open_tree({}, OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_IDMAP): an idmapped view of the rootfs",
        rootfs.display()
    );
    let userns = std::fs::File::open(format!("/proc/{pid}/ns/user"))
        .map_err(io("opening the user namespace"))?;
    let path = std::ffi::CString::new(rootfs.as_os_str().as_encoded_bytes())
        .map_err(|_| io("the rootfs path")(std::io::ErrorKind::InvalidInput.into()))?;
    // SAFETY: open_tree reads a NUL-terminated path and returns a new fd.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io("open_tree of the rootfs")(
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: mount_setattr reads `attr` (of the size given) and an empty
    // path relative to our tree fd.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(Error::IdMappedMount {
            rootfs: rootfs.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(IdMap::parse("default").unwrap(), DEFAULT);
        assert_eq!(
            IdMap::parse("200000").unwrap(),
            IdMap {
                host: 200_000,
                count: 65_536
            }
        );
        assert_eq!(
            IdMap::parse("300000:1000").unwrap(),
            IdMap {
                host: 300_000,
                count: 1000
            }
        );
        for bad in ["0", "0:10", "x", "5:", "5:0", "4294967295:2", "-1"] {
            assert!(IdMap::parse(bad).is_err(), "{bad}");
        }
    }
}

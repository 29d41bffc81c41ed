//! User namespaces (`--userns-remap`): container root is an unprivileged
//! range of host ids, and the rootfs is seen through an idmapped mount so
//! that its root-owned files belong to container root.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::Error;
use crate::rootfs::mountapi;
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
    /// The container's id for the host id `id` (ids outside the range are
    /// left as they are).
    pub fn to_container(self, id: u64) -> u64 {
        if (self.host as u64..self.host as u64 + self.count as u64).contains(&id) {
            id - self.host as u64
        } else {
            id
        }
    }

    /// The host id for the container's id `id` (ids the map does not
    /// cover are left as they are).
    pub fn to_host(self, id: u64) -> u64 {
        if id < self.count as u64 {
            id + self.host as u64
        } else {
            id
        }
    }

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

fn userns_of(pid: Pid) -> Result<std::fs::File, Error> {
    std::fs::File::open(format!("/proc/{pid}/ns/user")).map_err(io("opening the user namespace"))
}

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
    let userns = userns_of(pid)?;
    let path = std::ffi::CString::new(rootfs.as_os_str().as_encoded_bytes())
        .map_err(|_| io("the rootfs path")(std::io::ErrorKind::InvalidInput.into()))?;
    let tree =
        mountapi::clone_tree(libc::AT_FDCWD, &path, true).map_err(io("open_tree of the rootfs"))?;
    mountapi::set_idmap(tree.as_fd(), userns.as_fd()).map_err(|source| Error::IdMappedMount {
        rootfs: rootfs.to_path_buf(),
        source,
    })?;
    Ok(tree)
}

/// The bind mounts (and volumes) among `mounts`, for a container in the
/// user namespace of `pid`: detached clones idmapped through it (see
/// [`crate::rootfs::oci::stage_idmapped_binds`]), by index in `mounts`,
/// for the init to attach. As the rootfs: seen through the idmap, never
/// chowned.
pub fn idmapped_binds(
    mounts: &[oci_spec::runtime::Mount],
    pid: Pid,
) -> Result<Vec<(usize, OwnedFd, bool)>, Error> {
    if mounts.is_empty() {
        return Ok(Vec::new());
    }
    let userns = userns_of(pid)?;
    Ok(crate::rootfs::oci::stage_idmapped_binds(
        mounts,
        userns.as_fd(),
    )?)
}

/// An image's overlay for a container in the user namespace of `pid`:
/// every layer idmapped (see [`crate::rootfs::overlay::Overlay::mount_idmapped`]),
/// as a detached mount the init attaches in place of mounting the overlay.
/// Its writable layer is chowned to container root (`map`'s first host id).
pub fn idmapped_overlay(
    overlay: &crate::rootfs::overlay::Overlay,
    pid: Pid,
    map: IdMap,
) -> Result<OwnedFd, Error> {
    let userns = userns_of(pid)?;
    std::os::unix::fs::chown(&overlay.upper, Some(map.host), Some(map.host))
        .map_err(io("chowning the writable layer"))?;
    overlay
        .mount_idmapped(userns.as_fd())
        .map_err(|source| Error::IdMappedMount {
            rootfs: overlay.base.clone(),
            source,
        })
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

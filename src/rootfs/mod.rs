//! The container's mount table, built inside its new mount namespace.
//!
//! [`oci`] builds it from an OCI runtime spec (`root`, `mounts`, devices,
//! masked and read-only paths), for `containr-oci`'s init and for
//! `containr run`'s, which adds an image's overlay, volume copy-ups and the
//! host side's idmapped trees ([`oci::Additions`]). Every destination is
//! resolved inside the container's root, so a rootfs whose `/proc` or
//! `/etc/hosts` is a symlink pointing at `/` can only ever redirect a mount
//! to somewhere else inside itself, never onto a host path.
//!
//! This module holds what that shares: the pivot, the masking of `/proc`
//! and `/sys`, the read-only root, the console, and the tmpfs of a volume.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;

use crate::step;

pub mod copyup;
pub mod mountapi;
pub mod oci;
pub mod options;
pub mod overlay;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {path}: {source}")]
    Op {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the rootfs's {path} is {what}, not a directory: containr mounts its own {path} there")]
    NotADirectory { path: String, what: String },
    #[error("mount {dest}: unknown or unsupported option {option:?}")]
    MountOption { dest: PathBuf, option: String },
    #[error("mount {dest}: {what}: {source}")]
    Mount {
        dest: PathBuf,
        what: String,
        source: std::io::Error,
    },
    #[error("mount {dest}: {what}")]
    BadMount { dest: PathBuf, what: String },
    #[error("device {path}: {what}: {source}")]
    Device {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("sysctl {key}: {what}")]
    Sysctl { key: String, what: String },
    #[error(
        "rootfsPropagation {0:?}: not one of shared, slave, private, unbindable (or r-prefixed)"
    )]
    Propagation(String),
}

fn op_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(nix::Error) -> Error {
    let path = path.into();
    move |e| Error::Op {
        op,
        path,
        source: e.into(),
    }
}

fn io_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Op { op, path, source }
}

/// What the container sees at `/sys/fs/cgroup`: its own cgroup as the
/// root, as docker shows it. Mounted from inside the container's cgroup
/// namespace, whose root is the container's cgroup, so nothing of the
/// host's hierarchy above it is reachable.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CgroupFs {
    /// Nothing (no cgroup namespace of its own): `/sys/fs/cgroup` stays
    /// an empty directory.
    #[default]
    None,
    /// cgroup2 at `/sys/fs/cgroup`.
    V2,
    /// A tmpfs at `/sys/fs/cgroup` with a directory per v1 hierarchy the
    /// container has a cgroup in, named by its controllers as mounted
    /// (`memory`, `cpu,cpuacct`; a link per controller of a shared one).
    V1(Vec<String>),
}

/// The character devices every container gets: docker's default set.
pub(super) const DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// `--read-only` (`root.readonly`): the root, once pivoted onto, read-only.
fn remount_root_readonly() -> Result<(), Error> {
    step!("mount(\"/\", MS_REMOUNT|MS_BIND|MS_RDONLY): --read-only");
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | locked_flags("/"),
        None::<&str>,
    )
    .map_err(op_err("remounting / read-only", "/"))
}

/// Bind `root` onto itself (with the mounts below it): pivot_root needs the
/// new root to be a mount point.
pub(super) fn bind_onto_itself(root: &Path) -> Result<(), Error> {
    step!(
        "mount({}, {}, MS_BIND|MS_REC): pivot_root needs the new root to be a mount point",
        root.display(),
        root.display()
    );
    mount(
        Some(root),
        root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(op_err("bind-mounting the rootfs", root))
}

/// `pivot_root(".", ".")`: the new root and the old one are stacked on the
/// same directory, and the old one is detached from on top. No `put_old`
/// directory is needed, so a read-only rootfs works and nothing is left in it.
pub(super) fn pivot(root: &Path) -> Result<(), Error> {
    nix::unistd::chdir(root).map_err(op_err("chdir", root))?;
    step!(
        "pivot_root(\".\", \".\") in {}: the rootfs becomes /, the old root sits on top of it",
        root.display()
    );
    nix::unistd::pivot_root(".", ".").map_err(op_err("pivot_root", root))?;
    step!("umount2(\".\", MNT_DETACH): the old root (the host's) is gone from this namespace");
    umount2(".", MntFlags::MNT_DETACH).map_err(op_err("unmounting the old root", "/"))?;
    nix::unistd::chdir("/").map_err(op_err("chdir", "/"))?;
    Ok(())
}

/// Files and directories of /proc and /sys that expose the host (kernel
/// memory, keys, timers, firmware): hidden, as docker does. A file gets
/// /dev/null bound over it, a directory an empty read-only tmpfs.
pub const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Kernel tunables the container may read but not change.
pub const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Mask each of `masked` and make each of `read_only` a read-only bind of
/// itself, by paths (the root is the container's by now: they resolve in it).
/// Paths the kernel does not have are skipped.
pub(super) fn mask_paths<S: AsRef<str>>(masked: &[S], read_only: &[S]) -> Result<(), Error> {
    let masked: Vec<&str> = masked.iter().map(AsRef::as_ref).collect();
    let read_only: Vec<&str> = read_only.iter().map(AsRef::as_ref).collect();
    step!(
        "mask {} (/dev/null or an empty tmpfs over each)",
        masked.join(" ")
    );
    for path in masked {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            continue; // not on this kernel
        };
        let result = if meta.is_dir() {
            mount(
                Some("tmpfs"),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0"),
            )
        } else {
            mount(
                Some("/dev/null"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        result.map_err(op_err("masking", path))?;
    }
    step!("bind read-only {}", read_only.join(" "));
    for path in read_only {
        if std::fs::symlink_metadata(path).is_err() {
            continue;
        }
        mount(
            Some(path),
            path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(op_err("binding", path))?;
        // Recursive (mount_setattr AT_RECURSIVE): a mount already below
        // the path (a volume under /proc/sys, say) is made read-only too.
        let top = nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(op_err("opening", path))?;
        // SAFETY: open just returned this descriptor; nothing else owns it.
        let top = unsafe { OwnedFd::from_raw_fd(top) };
        let attr = mountapi::Attr {
            set: (mountapi::MOUNT_ATTR_RDONLY
                | mountapi::MOUNT_ATTR_NOSUID
                | mountapi::MOUNT_ATTR_NODEV
                | mountapi::MOUNT_ATTR_NOEXEC) as u64,
            ..mountapi::Attr::default()
        };
        mountapi::set_attr(top.as_fd(), attr, None, true)
            .map_err(io_err("making read-only", path))?;
    }
    Ok(())
}

/// The flags a remount must keep: in a user namespace the kernel locks
/// nosuid, nodev and noexec of mounts inherited from the host.
fn locked_flags(path: &str) -> MsFlags {
    use nix::sys::statvfs::FsFlags;
    let Ok(st) = nix::sys::statvfs::statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

/// The symlinks of every container's /dev (name in /dev, target).
pub(super) const DEV_LINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// Bind-mount the container's terminal over `/dev/console`, as docker does
/// for `-t`.
pub fn bind_console(pts: &Path) -> Result<(), Error> {
    step!("mount(bind) /dev/console <- {}", pts.display());
    create_file("/dev/console")?;
    mount(
        Some(pts),
        "/dev/console",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(op_err("bind-mounting", "/dev/console"))
}

/// An empty file to bind-mount over, 0644 (not the umask-0 0666).
fn create_file(path: &str) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .map(drop)
        .map_err(io_err("creating", path))
}

/// Mount a tmpfs at `path` (a volume's directory in the store, on the
/// host) with mount(8)-style `options` (`size=64m`, `ro`, …), and docker's
/// `nosuid,nodev,noexec`.
pub fn mount_tmpfs_at(path: &Path, options: &[String]) -> Result<(), Error> {
    let mut all: Vec<String> = ["nosuid", "nodev", "noexec"].map(String::from).to_vec();
    all.extend(options.iter().cloned());
    let opts =
        options::Options::parse(Some("tmpfs"), &all).map_err(|option| Error::MountOption {
            dest: path.to_path_buf(),
            option,
        })?;
    if opts.bind {
        return Err(Error::MountOption {
            dest: path.to_path_buf(),
            option: "bind".into(),
        });
    }
    let data = opts.data();
    step!(
        "mount(tmpfs, {}, {:?}, {}): the volume's tmpfs, shared by its containers",
        path.display(),
        opts.flags,
        data.as_deref().unwrap_or("")
    );
    mount(
        Some("tmpfs"),
        path,
        Some("tmpfs"),
        opts.flags,
        data.as_deref(),
    )
    .map_err(op_err("mounting a tmpfs on", path))
}

/// Detach the mount at `path` (lazily: a container still holding a bind of
/// it keeps its own view).
pub fn unmount(path: &Path) -> Result<(), Error> {
    step!("umount2({}, MNT_DETACH)", path.display());
    nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH).map_err(op_err("unmounting", path))
}

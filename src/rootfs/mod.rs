//! The container's mount table, built inside its new mount namespace.
//!
//! Order matters for safety: the root filesystem is pivoted onto *first*,
//! and every other mount (`/proc`, `/sys`, `/dev`, the `/etc` files) is made
//! afterwards, by paths that resolve inside the container's root. A rootfs
//! whose `/proc` or `/etc/hosts` is a symlink pointing at `/` can therefore
//! only ever redirect a mount to somewhere else inside itself, never onto a
//! host path.
//!
//! The `/etc` files containr provides (`hostname`, `hosts`, `resolv.conf`)
//! never touch a disk: they are written to a small tmpfs that is mounted
//! nowhere (`fsopen`/`fsmount`), and each is bound over its path with
//! `open_tree(OPEN_TREE_CLONE)` + `move_mount`.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};

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

/// A file containr provides inside the container, bound over `target`.
pub struct EtcFile<'a> {
    /// Absolute path inside the container, e.g. `/etc/hosts`.
    pub target: &'a str,
    pub contents: &'a str,
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

/// Everything the init needs to build the container's filesystem view.
pub struct Plan<'a> {
    /// The root filesystem directory on the host (absolute).
    pub rootfs: &'a Path,
    /// An image's overlay to mount on `rootfs` before using it.
    pub overlay: Option<&'a overlay::Overlay>,
    pub readonly: bool,
    /// `--privileged`: `/sys` writable, nothing of `/proc` masked.
    pub privileged: bool,
    /// In a user namespace, where device nodes cannot be made: the host's
    /// are bound instead.
    pub userns: bool,
    /// An idmapped view of the rootfs (see `namespace::userns`), to mount
    /// over it before anything else.
    pub idmapped: Option<OwnedFd>,
    pub files: &'a [EtcFile<'a>],
    pub cgroupfs: &'a CgroupFs,
    /// The working directory inside the container; created if missing, as
    /// docker does, before a `--read-only` root would forbid it.
    pub workdir: &'a str,
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

/// The storage a front end adds to the root (`-v`, `--mount`, `--tmpfs`):
/// OCI mounts, placed as `oci::mount_into` places a bundle's.
#[derive(Default)]
pub struct Storage<'a> {
    pub mounts: &'a [oci_spec::runtime::Mount],
    /// (new volume's directory, destination): the image's content at the
    /// destination copied into the volume first (see [`copyup`]).
    pub copy_up: &'a [(PathBuf, PathBuf)],
    /// `--sysctl`: written in the container's namespaces.
    pub sysctl: Option<&'a std::collections::HashMap<String, String>>,
    /// `--shm-size`: the size of /dev/shm, bytes (default 64 MiB).
    pub shm_size: Option<u64>,
    /// `--device`: nodes made in the container's /dev.
    pub devices: &'a [oci_spec::runtime::LinuxDevice],
    /// (index in `mounts`, tree, is a directory): binds the host side
    /// staged (idmapped, with `--userns-remap`), attached as they are.
    pub premade: Vec<(usize, OwnedFd, bool)>,
}

/// Build the container's filesystem and make it the root. Must run in a
/// fresh mount namespace (and PID namespace, for `/proc`).
pub fn enter(plan: &Plan<'_>) -> Result<(), Error> {
    enter_with(plan, Storage::default())
}

/// [`enter`], with the front end's mounts placed after /proc and /sys and
/// before the pivot (their sources are host paths), so the masked and
/// read-only paths made after stay so over them.
pub fn enter_with(plan: &Plan<'_>, storage: Storage<'_>) -> Result<(), Error> {
    step!("mount(\"/\", MS_REC|MS_PRIVATE): nothing we mount propagates back to the host");
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(op_err("making / private", "/"))?;

    let root = plan.rootfs;
    if let Some(overlay) = plan.overlay {
        overlay
            .mount(root)
            .map_err(io_err("mounting the image's overlay on", root))?;
    }
    if let Some(tree) = &plan.idmapped {
        step!(
            "move_mount(the idmapped root the host side made, {})",
            root.display()
        );
        move_mount(tree, &root.to_string_lossy())?;
    }
    // In a user namespace mknod is refused: clone the host's device nodes
    // now, while the host's /dev is still in view.
    let host_devices = if plan.userns {
        DEVICES
            .iter()
            .map(|(name, _, _)| detached_clone(&format!("/dev/{name}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)?
    } else {
        None
    };
    bind_onto_itself(root)?;

    mount_proc_sys(root, plan.privileged)?;
    for (volume, dest) in storage.copy_up {
        copyup::copy_up(root, dest, volume)?;
    }
    // A mount on or under /dev would be hidden by the container's /dev,
    // mounted after the pivot: those are staged now (a bind's source, a
    // host path, cloned while in view) and attached once /dev is there.
    let mut premade: std::collections::HashMap<usize, (OwnedFd, bool)> = storage
        .premade
        .into_iter()
        .map(|(i, tree, dir)| (i, (tree, dir)))
        .collect();
    let (mut dev, mut rest) = (Vec::new(), Vec::new());
    for (i, m) in storage.mounts.iter().enumerate() {
        let staged = match premade.remove(&i) {
            Some((tree, dir)) => oci::Staged::premade(m, tree, dir)?,
            None => oci::stage_one(m)?,
        };
        if on_dev(m.destination()) {
            dev.push(staged);
        } else {
            rest.push(staged);
        }
    }
    oci::attach_staged(root, rest, plan.userns)?;
    if let Some(sysctl) = storage.sysctl {
        // Through the host's /proc, still in view: the values are those of
        // this process's (the container's) namespaces all the same.
        oci::write_sysctls(sysctl)?;
    }
    pivot(root)?;
    mount_dev(host_devices, storage.shm_size)?;
    if !storage.devices.is_empty() {
        oci::make_devices_in(Path::new("/"), storage.devices)?;
    }
    oci::attach_staged(Path::new("/"), dev, plan.userns)?;
    mount_cgroupfs(plan.cgroupfs, plan.privileged)?;
    if !plan.privileged {
        mask_paths(&MASKED, &READ_ONLY)?;
    }
    provide_files(plan.files)?;
    mkdir_p(plan.workdir)?;
    if plan.readonly {
        remount_root_readonly()?;
    }
    Ok(())
}

/// Whether a destination is `/dev` or below it (`.` and `//` aside; a `..`
/// is resolved inside the root later, and never counts as /dev here).
fn on_dev(dest: &Path) -> bool {
    let mut parts = dest.components().filter(|c| {
        !matches!(
            c,
            std::path::Component::RootDir | std::path::Component::CurDir
        )
    });
    parts.next() == Some(std::path::Component::Normal("dev".as_ref()))
        && parts.all(|c| matches!(c, std::path::Component::Normal(_)))
}

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

fn mount_fs(
    fstype: &'static str,
    target: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), Error> {
    mkdir_p(target)?;
    step!(
        "mount({fstype}, {target}, {}{}{})",
        crate::explain::flag_names(flags.iter_names()),
        if data.is_some() { ", " } else { "" },
        data.unwrap_or("")
    );
    mount(Some(fstype), target, Some(fstype), flags, data).map_err(op_err("mounting", target))
}

/// `/proc` and `/sys`, mounted *before* the pivot: in a user namespace the
/// kernel only allows a new proc or sysfs where one is already fully
/// visible, which the host's are until the old root goes. The mount points
/// are checked not to be symlinks, so nothing can redirect these two
/// mounts out of the rootfs.
fn mount_proc_sys(root: &Path, privileged: bool) -> Result<(), Error> {
    let common = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let ro = if privileged {
        MsFlags::empty()
    } else {
        MsFlags::MS_RDONLY
    };
    for (fstype, dir, flags) in [("proc", "proc", common), ("sysfs", "sys", common | ro)] {
        let target = root.join(dir);
        mount_point(&target, &format!("/{dir}"))?;
        mount_fs(fstype, &target.to_string_lossy(), flags, None)?;
    }
    Ok(())
}

/// The container's cgroup at `/sys/fs/cgroup`, read-only unless
/// `privileged` (as docker). Done after the pivot: `/sys` is the
/// container's own sysfs by then, and cgroup filesystems have no rule
/// about being visible elsewhere first.
fn mount_cgroupfs(cgroupfs: &CgroupFs, privileged: bool) -> Result<(), Error> {
    const DIR: &str = "/sys/fs/cgroup";
    let common = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let ro = if privileged {
        MsFlags::empty()
    } else {
        MsFlags::MS_RDONLY
    };
    match cgroupfs {
        CgroupFs::None => Ok(()),
        CgroupFs::V2 => mount_fs("cgroup2", DIR, common | ro, None),
        CgroupFs::V1(hierarchies) => {
            mount_fs("tmpfs", DIR, common, Some("mode=755,size=64k"))?;
            for controllers in hierarchies {
                // The options name an existing hierarchy: a mount of it,
                // rooted at the namespace's root.
                mount_fs(
                    "cgroup",
                    &format!("{DIR}/{controllers}"),
                    common | ro,
                    Some(controllers),
                )?;
                if controllers.contains(',') {
                    for c in controllers.split(',') {
                        let link = format!("{DIR}/{c}");
                        symlink(controllers, &link).map_err(io_err("symlink", link))?;
                    }
                }
            }
            if privileged {
                return Ok(());
            }
            step!("mount(\"{DIR}\", MS_REMOUNT|MS_RDONLY): the tmpfs read-only too");
            mount(
                None::<&str>,
                DIR,
                None::<&str>,
                MsFlags::MS_REMOUNT | common | ro,
                None::<&str>,
            )
            .map_err(op_err("remounting read-only", DIR))
        }
    }
}

/// Refuse a mount point of the rootfs (`shown` inside it) that exists and
/// is not a directory: a symlink could send the mount elsewhere, and
/// anything else would fail with a puzzling `File exists`.
fn mount_point(path: &Path, shown: &str) -> Result<(), Error> {
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let what = if m.is_symlink() {
        match std::fs::read_link(path) {
            Ok(to) => format!("a symlink to {}", to.display()),
            Err(_) => "a symlink".to_string(),
        }
    } else if m.is_dir() {
        return Ok(());
    } else {
        "a file".to_string()
    };
    Err(Error::NotADirectory {
        path: shown.to_string(),
        what,
    })
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

fn mount_dev(host_devices: Option<Vec<OwnedFd>>, shm_size: Option<u64>) -> Result<(), Error> {
    mount_point(Path::new("/dev"), "/dev")?;
    mount_fs(
        "tmpfs",
        "/dev",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    match host_devices {
        None => {
            step!("mknod /dev/{{null,zero,full,random,urandom,tty}} (docker's default devices)");
            for (name, major, minor) in DEVICES {
                let path = format!("/dev/{name}");
                mknod(
                    path.as_str(),
                    SFlag::S_IFCHR,
                    Mode::from_bits_truncate(0o666),
                    makedev(*major, *minor),
                )
                .map_err(op_err("mknod", &path))?;
            }
        }
        Some(trees) => {
            step!(
                "bind the host's /dev/{{null,zero,full,random,urandom,tty}} (no mknod in a user namespace)"
            );
            for ((name, _, _), tree) in DEVICES.iter().zip(trees) {
                let path = format!("/dev/{name}");
                create_file(&path)?;
                move_mount(&tree, &path)?;
            }
        }
    }
    mount_fs(
        "devpts",
        "/dev/pts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    // In KiB when whole (docker's default reads `size=65536k`), as tmpfs
    // and findmnt show it; bytes otherwise.
    let shm = match shm_size.unwrap_or(64 << 20) {
        n if n % 1024 == 0 => format!("mode=1777,size={}k", n / 1024),
        n => format!("mode=1777,size={n}"),
    };
    mount_fs(
        "tmpfs",
        "/dev/shm",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(&shm),
    )?;
    mount_fs(
        "mqueue",
        "/dev/mqueue",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )?;
    step!("symlink /dev/{{ptmx,fd,stdin,stdout,stderr}}");
    for (name, target) in DEV_LINKS {
        let link = format!("/dev/{name}");
        symlink(target, &link).map_err(io_err("symlink", link))?;
    }
    Ok(())
}

/// The symlinks of every container's /dev (name in /dev, target).
pub(super) const DEV_LINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// Write `files` to a detached tmpfs and bind each over its target.
fn provide_files(files: &[EtcFile<'_>]) -> Result<(), Error> {
    if files.is_empty() {
        return Ok(());
    }
    step!("fsopen(tmpfs) + fsmount: a tmpfs mounted nowhere, for containr's /etc files");
    let fs = mountapi::FsContext::open(c"tmpfs").map_err(io_err("fsopen(tmpfs)", "/"))?;
    fs.set_string(c"size", c"1m")
        .map_err(io_err("fsconfig(tmpfs)", "/"))?;
    let mnt = fs
        .mount(
            mountapi::MOUNT_ATTR_NOSUID | mountapi::MOUNT_ATTR_NODEV | mountapi::MOUNT_ATTR_NOEXEC,
        )
        .map_err(io_err("fsmount(tmpfs)", "/"))?;
    // Older kernels (Debian 12's 6.1; not 6.18) refuse, with EINVAL, to
    // open_tree(OPEN_TREE_CLONE) a mount that is in no namespace, as a fresh
    // fsmount is: attach it while cloning, under containr's own tmpfs /dev,
    // so nothing reaches a disk.
    let staging = Path::new("/dev/.containr-etc");
    mkdir_p(staging)?;
    move_mount(&mnt, &staging.to_string_lossy())?;
    for (i, file) in files.iter().enumerate() {
        let name = format!("{i}");
        let cname = std::ffi::CString::new(name.as_str()).expect("digits");
        // SAFETY: openat relative to our mount fd with a NUL-terminated
        // name; it returns a new descriptor or -1.
        let fd = unsafe {
            libc::openat(
                mnt.as_raw_fd(),
                cname.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd < 0 {
            return Err(io_err("creating", file.target)(
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: the kernel just returned this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        File::from(fd)
            .write_all(file.contents.as_bytes())
            .map_err(io_err("writing", file.target))?;
        let tree = detached_clone_at(mnt.as_raw_fd(), &name)?;
        attach(&tree, file.target)?;
    }
    // The clones stay; the staging mount point goes.
    umount2(staging, MntFlags::MNT_DETACH).map_err(op_err("unmounting", staging))?;
    std::fs::remove_dir(staging).map_err(io_err("removing", staging))?;
    Ok(())
}

/// Attach a detached mount over `target` (inside the container), creating
/// an empty file there first if the rootfs has none.
fn attach(tree: &OwnedFd, target: &str) -> Result<(), Error> {
    step!("move_mount(open_tree(tmpfs file), {target}): bind over the rootfs' own");
    if !Path::new(target).exists() {
        if let Some(parent) = Path::new(target).parent() {
            mkdir_p(parent)?;
        }
        // Follows a dangling symlink to create its target, which is inside
        // the container's root now that the pivot is done.
        create_file(target)?;
    }
    move_mount(tree, target)
}

/// A detached bind mount of `path`, to be placed later with [`move_mount`].
fn detached_clone(path: &str) -> Result<OwnedFd, Error> {
    detached_clone_at(libc::AT_FDCWD, path)
}

/// [`detached_clone`] of `path` relative to directory `dir`.
fn detached_clone_at(dir: RawFd, path: &str) -> Result<OwnedFd, Error> {
    let c = std::ffi::CString::new(path)
        .map_err(|_| io_err("cloning", path)(std::io::ErrorKind::InvalidInput.into()))?;
    mountapi::clone_tree(dir, &c, false).map_err(io_err("open_tree", path))
}

/// Attach a detached mount at `target`.
fn move_mount(tree: &OwnedFd, target: &str) -> Result<(), Error> {
    let to = std::ffi::CString::new(target)
        .map_err(|_| io_err("bind-mounting", target)(std::io::ErrorKind::InvalidInput.into()))?;
    mountapi::attach(tree.as_fd(), &to).map_err(io_err("bind-mounting", target))
}

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

/// `mkdir -p`, for mount points the rootfs may lack: 0755, as docker
/// makes them (the init runs with umask 0, which would leave 0777).
pub fn mkdir_p(path: impl AsRef<Path>) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    let path = path.as_ref();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(io_err("creating directory", path))
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

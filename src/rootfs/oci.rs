//! The root filesystem of an OCI container (config.md's `root`, `mounts`,
//! and config-linux.md's devices, sysctl, rootfsPropagation, maskedPaths,
//! readonlyPaths), built by the container's init in its new mount
//! namespace, as runc and crun build it.
//!
//! Safety against the runc mount CVE class (CVE-2021-30465 and kin): every
//! destination is looked up with `openat2(RESOLVE_IN_ROOT)` on a descriptor
//! of the root, missing directories and files are created relative to the
//! descriptor of their resolved parent, and the mount is placed on the
//! descriptor of the resolved target (`move_mount` of an `open_tree` clone,
//! or `mount(2)` onto `/proc/self/fd/N`). No path is looked up twice, so a
//! symlink in the rootfs (or one swapped in while the container starts)
//! can point a mount only somewhere else inside the root.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, LinuxIdMapping, Mount};

use super::mountapi::{self, Attr};
use super::options::{Options, propagation_flags};
use super::{
    DEV_LINKS, DEVICES, Error, bind_onto_itself, mask_paths, pivot, remount_root_readonly,
};
use crate::step;

/// What the container's root filesystem is made of (from its config.json).
pub struct Plan<'a> {
    /// Absolute host path (the bundle's `root.path`, resolved).
    pub rootfs: &'a Path,
    /// `root.readonly`.
    pub readonly: bool,
    pub mounts: &'a [Mount],
    pub devices: &'a [LinuxDevice],
    pub masked_paths: &'a [String],
    pub readonly_paths: &'a [String],
    pub rootfs_propagation: Option<&'a str>,
    pub sysctl: &'a HashMap<String, String>,
    pub no_pivot: bool,
    /// In a user namespace: devices are bind-mounted from the host, not
    /// mknod'ed.
    pub in_userns: bool,
    /// The pty slave (a path as seen when [`prepare`] runs) to bind at
    /// /dev/console.
    pub console: Option<&'a Path>,
}

/// What a front end adds to a spec's root filesystem (`containr run`'s
/// extras, which a spec cannot say), each at its place in [`prepare_with`].
#[derive(Default)]
pub struct Additions<'a> {
    /// An image's overlay, mounted on the rootfs first.
    pub overlay: Option<&'a super::overlay::Overlay>,
    /// Or a detached tree the host side made (the idmapped root of
    /// `--userns-remap`), attached there instead.
    pub root_tree: Option<OwnedFd>,
    /// (new volume's directory, destination): the image's content at the
    /// destination copied into the volume before the mounts (see
    /// [`copyup`](super::copyup)).
    pub copy_up: &'a [(PathBuf, PathBuf)],
    /// (index in the plan's mounts, tree, is a directory): binds the host
    /// side staged ([`stage_idmapped_binds`]), attached as they are.
    pub premade: Vec<(usize, OwnedFd, bool)>,
    /// What a `cgroup` mount shows, from inside the container's own
    /// cgroup namespace: nothing, cgroup2, or on a v1 (or hybrid) host
    /// just the hierarchies the container has a cgroup of its own in (one
    /// it has none in would show its creator's cgroup and everything beside
    /// the container in it). `None`: the host's kind, and every v1
    /// hierarchy the process is in.
    pub cgroup: Option<&'a super::CgroupFs>,
}

/// Everything before the `createContainer` hooks: root propagation, the
/// rootfs made a mount point, every mount in order, devices, the /dev
/// symlinks, /dev/console and sysctls. Runs in the container's new mount
/// namespace, with the host's root (and /proc) still in view.
pub fn prepare(plan: &Plan<'_>) -> Result<(), Error> {
    prepare_with(plan, Additions::default())
}

/// [`prepare`], with what a front end adds: the root's overlay (or tree)
/// once the propagation is set, the copy-ups before the mounts, the
/// premade binds in their place among them, and the cgroup view limited.
pub fn prepare_with(plan: &Plan<'_>, add: Additions<'_>) -> Result<(), Error> {
    let root = plan.rootfs;
    if !root.is_absolute() {
        return Err(Error::BadMount {
            dest: root.to_path_buf(),
            what: "the rootfs path must be absolute".into(),
        });
    }
    let propagation = match plan.rootfs_propagation {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(p) => propagation_flags(p).ok_or_else(|| Error::Propagation(p.to_string()))?,
    };
    step!(
        "mount(\"/\", {}): {}",
        crate::explain::flag_names(propagation.iter_names()),
        match propagation.contains(MsFlags::MS_SHARED) {
            true => "the root's propagation (rootfsPropagation)",
            false => "nothing we mount propagates back to the host",
        }
    );
    mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>)
        .map_err(sys_err("/", "setting the propagation of /"))?;
    // Made recursively slave, private or unbindable, no mount is shared
    // any more: only otherwise can the rootfs's parent mount be.
    if !propagation.contains(MsFlags::MS_REC) || propagation.contains(MsFlags::MS_SHARED) {
        parent_mount_private(root)?;
    }
    if let Some(overlay) = add.overlay {
        overlay.mount(root).map_err(|source| Error::Op {
            op: "mounting the image's overlay on",
            path: root.to_path_buf(),
            source,
        })?;
    }
    if let Some(tree) = &add.root_tree {
        step!(
            "move_mount(the idmapped root the host side made, {})",
            root.display()
        );
        let to = cstr(root.as_os_str()).map_err(mount_err(root, "its path"))?;
        mountapi::attach(tree.as_fd(), &to).map_err(mount_err(root, "move_mount"))?;
    }
    bind_onto_itself(root)?;
    let root_fd = open_path(root).map_err(mount_err(root, "opening the rootfs"))?;
    let root_fd = root_fd.as_fd();
    for (volume, dest) in add.copy_up {
        super::copyup::copy_up(root, dest, volume)?;
    }

    let mut premade: HashMap<usize, (OwnedFd, bool)> = (add.premade.into_iter())
        .map(|(i, tree, dir)| (i, (tree, dir)))
        .collect();
    for (i, m) in plan.mounts.iter().enumerate() {
        let staged = match premade.remove(&i) {
            Some((tree, dir)) => Staged::premade(m, tree, dir)?,
            None => stage_entry(m)?,
        };
        attach_entry(root_fd, staged, plan.in_userns, add.cgroup)?;
    }
    make_devices(root_fd, plan.devices, plan.in_userns)?;
    dev_links(root_fd)?;
    if let Some(console) = plan.console {
        step!("move_mount(open_tree({}), /dev/console)", console.display());
        let dest = Path::new("/dev/console");
        let target = resolve(root_fd, dest, false).map_err(mount_err(dest, "creating"))?;
        let tree = clone(console, false).map_err(mount_err(dest, "open_tree of the console"))?;
        mountapi::attach_to_fd(tree.as_fd(), target.as_fd())
            .map_err(mount_err(dest, "binding the console"))?;
    }
    write_sysctls(plan.sysctl)
}

/// Write each sysctl (namespaced ones only), in key order, for the
/// namespaces of the calling process: the container's.
pub fn write_sysctls(sysctl: &HashMap<String, String>) -> Result<(), Error> {
    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort();
    for key in keys {
        write_sysctl(key, &sysctl[key])?;
    }
    Ok(())
}

/// After the `createContainer` hooks: the rootfs becomes `/` (pivot_root,
/// or with `no_pivot` a move onto `/` and chroot), then masked paths,
/// read-only paths and a read-only root.
pub fn finish(plan: &Plan<'_>) -> Result<(), Error> {
    if plan.no_pivot {
        let root = plan.rootfs;
        nix::unistd::chdir(root).map_err(sys_err(root, "chdir"))?;
        step!("mount(\".\", \"/\", MS_MOVE) + chroot(\".\"): --no-pivot");
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .map_err(sys_err(root, "moving the rootfs onto /"))?;
        nix::unistd::chroot(".").map_err(sys_err(root, "chroot"))?;
        nix::unistd::chdir("/").map_err(sys_err("/", "chdir"))?;
    } else {
        pivot(plan.rootfs)?;
    }
    if let Some(p) = plan.rootfs_propagation.filter(|p| !p.is_empty()) {
        // Applied again to the new root, as runc does: the bind made in
        // prepare took the host's propagation.
        let flags = propagation_flags(p).ok_or_else(|| Error::Propagation(p.to_string()))?;
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .map_err(sys_err("/", "setting the propagation of /"))?;
    }
    mask_paths(plan.masked_paths, plan.readonly_paths)?;
    if plan.readonly {
        remount_root_readonly()?;
    }
    Ok(())
}

/// The namespace a sysctl belongs to (`ipc`, `net`, `uts`), or `None` for
/// one the kernel shares with the host: runc's list, which a container may
/// not set.
pub fn sysctl_namespace(key: &str) -> Option<&'static str> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some("ipc")
    } else if key.starts_with("net.") {
        Some("net")
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some("uts")
    } else {
        None
    }
}

fn write_sysctl(key: &str, value: &str) -> Result<(), Error> {
    let bad = |what: &str| Error::Sysctl {
        key: key.to_string(),
        what: what.to_string(),
    };
    if sysctl_namespace(key).is_none() {
        return Err(bad("not namespaced: it would change the host"));
    }
    if key.split(['.', '/']).any(|c| c.is_empty() || c == "..") {
        return Err(bad("not a sysctl name"));
    }
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    step!("write {path} = {value:?} (sysctl, in the container's namespaces)");
    std::fs::write(&path, value).map_err(|e| bad(&e.to_string()))
}

fn sys_err(path: impl AsRef<Path>, what: &str) -> impl FnOnce(nix::Error) -> Error {
    let dest = path.as_ref().to_path_buf();
    let what = what.to_string();
    move |e| Error::Mount {
        dest,
        what,
        source: e.into(),
    }
}

fn mount_err(path: impl AsRef<Path>, what: &str) -> impl FnOnce(io::Error) -> Error {
    let dest = path.as_ref().to_path_buf();
    let what = what.to_string();
    move |source| Error::Mount { dest, what, source }
}

fn cstr(p: &OsStr) -> io::Result<CString> {
    CString::new(p.as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

/// An `O_PATH` descriptor of a host path.
fn open_path(path: &Path) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: open just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn clone(source: &Path, recursive: bool) -> io::Result<OwnedFd> {
    mountapi::clone_tree(libc::AT_FDCWD, &cstr(source.as_os_str())?, recursive)
}

fn proc_fd(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// The components of a destination, relative to the root.
fn relative(dest: &Path) -> Vec<&OsStr> {
    dest.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            Component::ParentDir => Some(OsStr::new("..")),
            _ => None,
        })
        .collect()
}

/// An `O_PATH` descriptor of `dest` resolved inside `root`, creating what
/// is missing: directories along the way, and at the end a directory, or
/// an empty file when `dir` is false. Each creation is relative to the
/// descriptor of the already-resolved parent, and each step re-resolves in
/// the root, so no symlink can lead outside it.
pub fn resolve(root: BorrowedFd<'_>, dest: &Path, dir: bool) -> io::Result<OwnedFd> {
    let parts = relative(dest);
    let path_of = |n: usize| -> io::Result<CString> {
        let mut p = std::ffi::OsString::from(".");
        for c in &parts[..n] {
            p.push("/");
            p.push(c);
        }
        cstr(&p)
    };
    match mountapi::open_in_root(root, &path_of(parts.len())?, libc::O_PATH) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        other => return other,
    }
    // Most often only the last component is missing (a mount point the
    // rootfs lacks): start from its parent, if it is there and the way to
    // it has no `..` (which is walked a step at a time).
    let last_only = parts.len() >= 2 && !parts.iter().any(|p| p.as_bytes() == b"..");
    let from_parent = match last_only {
        true => match mountapi::open_in_root(root, &path_of(parts.len() - 1)?, libc::O_PATH) {
            Ok(fd) => Some(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
            Err(e) => return Err(e),
        },
        false => None,
    };
    let (mut parent, start) = match from_parent {
        Some(fd) => (fd, parts.len() - 1),
        None => (
            mountapi::open_in_root(root, c".", libc::O_PATH | libc::O_DIRECTORY)?,
            0,
        ),
    };
    for (i, name) in parts.iter().enumerate().skip(start) {
        let path = path_of(i + 1)?;
        // (The last component was found missing above, from the parent.)
        let lookup = match start > 0 && i == start {
            true => Err(io::Error::from_raw_os_error(libc::ENOENT)),
            false => mountapi::open_in_root(root, &path, libc::O_PATH),
        };
        match lookup {
            Ok(fd) => {
                parent = fd;
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let name = cstr(name)?;
        let last = i + 1 == parts.len();
        // SAFETY: mkdirat/mknodat relative to a directory descriptor we
        // hold, with a NUL-terminated single-component name.
        let rc = unsafe {
            if last && !dir {
                libc::mknodat(parent.as_raw_fd(), name.as_ptr(), libc::S_IFREG | 0o644, 0)
            } else {
                libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o755)
            }
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e);
            }
        }
        parent = match open_no_follow(parent.as_fd(), &name) {
            // Just made (or there already): use it without a second lookup
            // from the root, which a swapped symlink could send elsewhere.
            Ok(fd) if name.as_bytes() != b".." => fd,
            // A symlink (or `..`): resolved in the root like the rest.
            _ => mountapi::open_in_root(root, &path, libc::O_PATH).map_err(|e| {
                if e.raw_os_error() == Some(libc::ENOENT) {
                    // It exists (mkdir said so) but does not resolve: a
                    // dangling symlink, which is not followed out of the root.
                    io::Error::other("a dangling symlink is in the way")
                } else {
                    e
                }
            })?,
        };
    }
    Ok(parent)
}

/// `name` in `dir`, if it is not a symlink.
fn open_no_follow(dir: BorrowedFd<'_>, name: &std::ffi::CStr) -> io::Result<OwnedFd> {
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
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat just returned this descriptor; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    Ok(fd)
}

/// One mount, checked, and for a bind its source already cloned (with its
/// attributes): what must happen while the source's path is in view.
pub struct Staged<'a> {
    m: &'a Mount,
    opts: Options,
    /// A bind's detached tree, and whether its source is a directory.
    tree: Option<(OwnedFd, bool)>,
}

/// The bind mounts among `mounts` (by index), staged on the host side for
/// a container in user namespace `userns`: each source cloned with its
/// attributes and idmapped through `userns`, so that what the host's root
/// owns is the container root's, and what container root writes is stored
/// as the host's root, with nothing chowned. Idmapping needs privilege over
/// the source's filesystem, which the container's init lacks; it attaches
/// the trees ([`Staged::premade`]).
pub fn stage_idmapped_binds(
    mounts: &[Mount],
    userns: BorrowedFd<'_>,
) -> Result<Vec<(usize, OwnedFd, bool)>, Error> {
    let mut out = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let staged = stage_entry(m)?;
        let Some((tree, dir)) = staged.tree else {
            continue;
        };
        let dest = m.destination();
        step!(
            "mount_setattr(MOUNT_ATTR_IDMAP) on the clone for {}: seen through the container's user namespace",
            dest.display()
        );
        mountapi::set_attr(
            tree.as_fd(),
            Attr::default(),
            Some(userns),
            staged.opts.recursive,
        )
        .map_err(mount_err(
            dest,
            "idmapping for --userns-remap (needs a kernel and filesystem with idmapped mounts)",
        ))?;
        out.push((i, tree, dir));
    }
    Ok(out)
}

impl<'a> Staged<'a> {
    /// Mount `m` with its source already cloned (`tree`, a directory when
    /// `dir`), e.g. by [`stage_idmapped_binds`].
    pub fn premade(m: &'a Mount, tree: OwnedFd, dir: bool) -> Result<Staged<'a>, Error> {
        let mut staged = Staged {
            m,
            opts: parse_options(m)?,
            tree: None,
        };
        staged.tree = Some((tree, dir));
        Ok(staged)
    }
}

fn parse_options(m: &Mount) -> Result<Options, Error> {
    let fstype = m.typ().as_deref().filter(|t| !t.is_empty());
    let no_options = Vec::new();
    Options::parse(fstype, m.options().as_ref().unwrap_or(&no_options)).map_err(|option| {
        Error::MountOption {
            dest: m.destination().clone(),
            option,
        }
    })
}

fn stage_entry(m: &Mount) -> Result<Staged<'_>, Error> {
    let dest = m.destination();
    let fstype = m.typ().as_deref().filter(|t| !t.is_empty());
    let opts = parse_options(m)?;
    if opts.bind {
        let tree = bind_tree(m, &opts)?;
        return Ok(Staged {
            m,
            opts,
            tree: Some(tree),
        });
    }
    if fstype.is_none() {
        return Err(Error::BadMount {
            dest: dest.clone(),
            what: "no type (and no bind option)".into(),
        });
    }
    if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        return Err(Error::BadMount {
            dest: dest.clone(),
            what: "uidMappings/gidMappings need an idmap bind mount".into(),
        });
    }
    Ok(Staged {
        m,
        opts,
        tree: None,
    })
}

fn attach_entry(
    root: BorrowedFd<'_>,
    s: Staged<'_>,
    in_userns: bool,
    cgroup: Option<&super::CgroupFs>,
) -> Result<(), Error> {
    use super::CgroupFs;
    let Staged { m, opts, tree } = s;
    let dest = m.destination();
    match tree {
        Some((tree, is_dir)) => {
            let target =
                resolve(root, dest, is_dir).map_err(mount_err(dest, "resolving in the root"))?;
            mountapi::attach_to_fd(tree.as_fd(), target.as_fd())
                .map_err(mount_err(dest, "move_mount"))?;
        }
        None => {
            let fstype = m.typ().as_deref().unwrap_or_default();
            let target = match ordinary_dir(root, dest)? {
                Some(dir) => dir,
                None => {
                    resolve(root, dest, true).map_err(mount_err(dest, "resolving in the root"))?
                }
            };
            match fstype {
                "cgroup" | "cgroup2" if cgroup == Some(&CgroupFs::None) => {}
                "cgroup" => match cgroup {
                    Some(CgroupFs::V1(hierarchies)) => {
                        cgroup_v1(root, dest, target, &opts, Some(hierarchies))?
                    }
                    // runc's reading of `cgroup` on a cgroup2 host.
                    Some(CgroupFs::V2 | CgroupFs::None) => {
                        fs_entry(m, "cgroup2", target, &opts, in_userns)?
                    }
                    None if host_cgroup_v2() => fs_entry(m, "cgroup2", target, &opts, in_userns)?,
                    None => cgroup_v1(root, dest, target, &opts, None)?,
                },
                _ => fs_entry(m, fstype, target, &opts, in_userns)?,
            }
            if opts.recursive_attr != Attr::default() || !opts.propagation.is_empty() {
                let top = reopen(root, dest)?;
                if opts.recursive_attr != Attr::default() {
                    mountapi::set_attr(top.as_fd(), opts.recursive_attr, None, true)
                        .map_err(mount_err(dest, "mount_setattr(AT_RECURSIVE)"))?;
                }
                set_propagation(top.as_fd(), dest, &opts.propagation)?;
            }
        }
    }
    Ok(())
}

/// Refuse to mount a filesystem on the rootfs's `/proc`, `/sys` or `/dev`
/// if it exists and is not a directory (as runc refuses proc and sysfs
/// on anything else): a symlink there is followed only inside the root,
/// but would put the container's kernel filesystems somewhere else than
/// where every program looks for them; a file fails with a puzzling
/// `File exists`. The directory, if it is one of those and there.
fn ordinary_dir(root: BorrowedFd<'_>, dest: &Path) -> Result<Option<OwnedFd>, Error> {
    let parts = relative(dest);
    let [name] = parts.as_slice() else {
        return Ok(None);
    };
    if !matches!(name.as_bytes(), b"proc" | b"sys" | b"dev") {
        return Ok(None);
    }
    let path =
        cstr(&Path::new(".").join(name).into_os_string()).map_err(mount_err(dest, "its path"))?;
    let Ok(fd) = mountapi::open_in_root(root, &path, libc::O_PATH | libc::O_NOFOLLOW) else {
        return Ok(None); // missing: made as a directory
    };
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(sys_err(dest, "fstat"))?;
    let what = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => return Ok(Some(fd)),
        libc::S_IFLNK => match nix::fcntl::readlinkat(Some(fd.as_raw_fd()), "") {
            Ok(to) => format!("a symlink to {}", to.to_string_lossy()),
            Err(_) => "a symlink".into(),
        },
        _ => "a file".into(),
    };
    Err(Error::NotADirectory {
        path: dest.display().to_string(),
        what,
    })
}

/// Set `propagation` (in order: (MS_* type, recursive)) on the mount `top`.
fn set_propagation(
    top: BorrowedFd<'_>,
    dest: &Path,
    propagation: &[(MsFlags, bool)],
) -> Result<(), Error> {
    for (flag, recursive) in propagation {
        step!(
            "mount_setattr({}, propagation {}{}): as the mount's options say",
            dest.display(),
            if *recursive { "r" } else { "" },
            match *flag {
                MsFlags::MS_SHARED => "shared",
                MsFlags::MS_SLAVE => "slave",
                MsFlags::MS_UNBINDABLE => "unbindable",
                _ => "private",
            }
        );
        let attr = Attr {
            propagation: flag.bits(),
            ..Attr::default()
        };
        mountapi::set_attr(top, attr, None, *recursive)
            .map_err(mount_err(dest, "setting its propagation"))?;
    }
    Ok(())
}

/// The mount now on `dest` (its root, not the directory under it).
fn reopen(root: BorrowedFd<'_>, dest: &Path) -> Result<OwnedFd, Error> {
    let p = cstr(relative(dest).join(OsStr::new("/")).as_os_str())
        .map_err(mount_err(dest, "its path"))?;
    let p = if p.as_bytes().is_empty() {
        c".".into()
    } else {
        p
    };
    mountapi::open_in_root(root, &p, libc::O_PATH).map_err(mount_err(dest, "reopening"))
}

/// A bind's source cloned (`open_tree`), its attributes set; with whether
/// it is a directory.
fn bind_tree(m: &Mount, opts: &Options) -> Result<(OwnedFd, bool), Error> {
    let dest = m.destination();
    let source = m.source().as_ref().ok_or_else(|| Error::BadMount {
        dest: dest.clone(),
        what: "a bind mount needs a source".into(),
    })?;
    let meta = std::fs::metadata(source).map_err(mount_err(dest, &source.display().to_string()))?;
    step!(
        "open_tree({}{}) + move_mount onto {} resolved in the root",
        source.display(),
        if opts.recursive { ", AT_RECURSIVE" } else { "" },
        dest.display()
    );
    let tree = clone(source, opts.recursive).map_err(mount_err(dest, "open_tree of the source"))?;
    if opts.attr != Attr::default() {
        mountapi::set_attr(tree.as_fd(), opts.attr, None, false)
            .map_err(mount_err(dest, "mount_setattr"))?;
    }
    if opts.recursive_attr != Attr::default() {
        mountapi::set_attr(tree.as_fd(), opts.recursive_attr, None, true)
            .map_err(mount_err(dest, "mount_setattr(AT_RECURSIVE)"))?;
    }
    // Its propagation set on the detached tree: no lookup of the
    // destination again once attached (which a rename in the container
    // could make fail), and two system calls fewer.
    set_propagation(tree.as_fd(), dest, &opts.propagation)?;
    if let Some(recursive) = opts.idmap {
        let userns = userns_with_maps(
            m.uid_mappings().as_deref().unwrap_or(&[]),
            m.gid_mappings().as_deref().unwrap_or(&[]),
        )
        .map_err(mount_err(dest, "a user namespace for idmap"))?;
        mountapi::set_attr(
            tree.as_fd(),
            Attr::default(),
            Some(userns.as_fd()),
            recursive,
        )
        .map_err(mount_err(
            dest,
            "idmapping (needs a kernel and filesystem with idmapped mounts)",
        ))?;
    } else if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        return Err(Error::BadMount {
            dest: dest.clone(),
            what: "uidMappings/gidMappings without the idmap option".into(),
        });
    }
    Ok((tree, meta.is_dir()))
}

/// A filesystem (tmpfs, proc, sysfs, devpts, mqueue, cgroup2, …) mounted
/// onto `target` through its `/proc/self/fd` link, so the path is not
/// looked up again.
fn fs_entry(
    m: &Mount,
    fstype: &str,
    target: OwnedFd,
    opts: &Options,
    in_userns: bool,
) -> Result<(), Error> {
    let dest = m.destination();
    let source = m
        .source()
        .as_ref()
        .map_or_else(|| PathBuf::from(fstype), Clone::clone);
    let data = opts.data();
    step!(
        "mount({}, {} resolved in the root, {fstype}, {}, {})",
        source.display(),
        dest.display(),
        crate::explain::flag_names(opts.flags.iter_names()),
        data.as_deref().unwrap_or("")
    );
    let at = proc_fd(target.as_fd());
    let result = mount(
        Some(&source),
        at.as_str(),
        Some(fstype),
        opts.flags,
        data.as_deref(),
    );
    match result {
        // A user namespace that does not own the network namespace may not
        // mount sysfs: bind the host's, as runc does.
        Err(nix::Error::EPERM) if fstype == "sysfs" && in_userns => {
            step!("sysfs refused in this user namespace: bind the host's /sys instead");
            let tree =
                clone(Path::new("/sys"), true).map_err(mount_err(dest, "open_tree(/sys)"))?;
            let mut attr = opts.attr;
            attr.clear &= !mountapi::MOUNT_ATTR_ATIME_MASK;
            attr.set &= !mountapi::MOUNT_ATTR_ATIME_MASK;
            mountapi::set_attr(tree.as_fd(), attr, None, true)
                .map_err(mount_err(dest, "mount_setattr"))?;
            mountapi::attach_to_fd(tree.as_fd(), target.as_fd())
                .map_err(mount_err(dest, "move_mount"))
        }
        r => r.map_err(sys_err(
            dest,
            &match &data {
                Some(d) => format!("mounting {fstype} with {d}"),
                None => format!("mounting {fstype}"),
            },
        )),
    }
}

fn host_cgroup_v2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// A cgroup v1 mount on a v1 (or hybrid) host, laid out as runc does: a
/// tmpfs at `dest` with a directory per hierarchy this process is in,
/// named by its controllers (a symlink per controller of a shared one).
/// In a cgroup namespace of its own each is a fresh mount of the hierarchy
/// (rooted at the namespace's cgroup); otherwise the host's directory of
/// the process's cgroup is bound there, so nothing above it shows. `only`:
/// just these hierarchies (by their controllers, as mounted), from a
/// cgroup namespace of its own (`containr run`'s init has entered one).
fn cgroup_v1(
    root: BorrowedFd<'_>,
    dest: &Path,
    target: OwnedFd,
    opts: &Options,
    only: Option<&[String]>,
) -> Result<(), Error> {
    let own_ns = only.is_some()
        || std::fs::metadata("/proc/self/ns/cgroup")
            .and_then(|a| std::fs::metadata("/proc/1/ns/cgroup").map(|b| (a, b)))
            .is_ok_and(|(a, b)| {
                use std::os::unix::fs::MetadataExt;
                a.ino() != b.ino()
            });
    // (number, controllers, path) of each hierarchy: `only`'s (in a
    // namespace of its own the path is not needed), or the process's.
    let cgroups = match only {
        Some(only) => only.iter().map(|h| format!("0:{h}:/\n")).collect(),
        None => std::fs::read_to_string("/proc/self/cgroup")
            .map_err(mount_err(dest, "reading /proc/self/cgroup"))?,
    };
    let flags = opts.flags & !MsFlags::MS_RDONLY;
    step!("mount(tmpfs, {}): cgroup v1 layout", dest.display());
    mount(
        Some("tmpfs"),
        proc_fd(target.as_fd()).as_str(),
        Some("tmpfs"),
        flags,
        Some("mode=755,size=64k"),
    )
    .map_err(sys_err(dest, "mounting tmpfs for cgroup v1"))?;
    let dir = reopen(root, dest)?;
    for line in cgroups.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if controllers.is_empty() {
            continue; // the v2 line of a hybrid host
        }
        let name = controllers.strip_prefix("name=").unwrap_or(controllers);
        let sub = cstr(OsStr::new(name)).map_err(mount_err(dest, name))?;
        // SAFETY: mkdirat/openat relative to the fresh tmpfs we hold.
        let fd = unsafe {
            libc::mkdirat(dir.as_raw_fd(), sub.as_ptr(), 0o755);
            libc::openat(
                dir.as_raw_fd(),
                sub.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(mount_err(dest.join(name), "creating")(
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: openat just returned this descriptor.
        let sub_fd = unsafe { OwnedFd::from_raw_fd(fd) };
        if own_ns {
            let data = if controllers.starts_with("name=") {
                format!("none,{controllers}")
            } else {
                controllers.to_string()
            };
            step!(
                "mount(cgroup, {}, {}, {data})",
                dest.join(name).display(),
                crate::explain::flag_names(opts.flags.iter_names())
            );
            mount(
                Some("cgroup"),
                proc_fd(sub_fd.as_fd()).as_str(),
                Some("cgroup"),
                opts.flags,
                Some(data.as_str()),
            )
            .map_err(sys_err(dest.join(name), "mounting cgroup"))?;
        } else {
            let host = Path::new("/sys/fs/cgroup")
                .join(name)
                .join(path.trim_start_matches('/'));
            let tree = clone(&host, false).map_err(mount_err(dest.join(name), "open_tree"))?;
            mountapi::set_attr(tree.as_fd(), opts.attr, None, false)
                .map_err(mount_err(dest.join(name), "mount_setattr"))?;
            mountapi::attach_to_fd(tree.as_fd(), sub_fd.as_fd())
                .map_err(mount_err(dest.join(name), "move_mount"))?;
        }
        if controllers.contains(',') {
            for c in controllers.split(',') {
                let _ = nix::unistd::symlinkat(controllers, Some(dir.as_raw_fd()), c);
            }
        }
    }
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        step!(
            "mount_setattr({}, MOUNT_ATTR_RDONLY): the tmpfs read-only too",
            dest.display()
        );
        let ro = Attr {
            set: mountapi::MOUNT_ATTR_RDONLY as u64,
            ..Attr::default()
        };
        mountapi::set_attr(dir.as_fd(), ro, None, false)
            .map_err(mount_err(dest, "making the tmpfs read-only"))?;
    }
    Ok(())
}

/// A user namespace with these maps, for idmapped mounts: made by a child
/// that unshares one and waits while the maps are written, then exits.
fn userns_with_maps(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> io::Result<OwnedFd> {
    fn lines(maps: &[LinuxIdMapping]) -> String {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect()
    }
    if uids.is_empty() || gids.is_empty() {
        return Err(io::Error::other("idmap needs uidMappings and gidMappings"));
    }
    let (uid_map, gid_map) = (lines(uids), lines(gids));
    let (ready_r, ready_w) = nix::unistd::pipe()?;
    let (done_r, done_w) = nix::unistd::pipe()?;
    // SAFETY: the child makes raw syscalls only (unshare, write, read,
    // _exit): nothing that takes a lock another thread might hold.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => unsafe {
            // SAFETY: raw syscalls on descriptors this child owns.
            // The first byte says whether unshare worked; then the
            // child's pid as /proc (the host's, while the rootfs is
            // prepared) names it, which in a new PID namespace is not the
            // one fork returned.
            let mut msg = [0u8; 32];
            msg[0] = (libc::unshare(libc::CLONE_NEWUSER) == 0) as u8;
            let n = libc::readlink(c"/proc/self".as_ptr(), msg[1..].as_mut_ptr().cast(), 31);
            libc::write(
                ready_w.as_raw_fd(),
                msg.as_ptr().cast(),
                1 + n.max(0) as usize,
            );
            libc::close(done_w.as_raw_fd());
            let mut b = 0u8;
            libc::read(done_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
            libc::_exit(0)
        },
        nix::unistd::ForkResult::Parent { child } => {
            drop(ready_w);
            drop(done_r);
            let mut msg = [0u8; 32];
            let got = nix::unistd::read(ready_r.as_raw_fd(), &mut msg).unwrap_or(0);
            let result = (|| {
                if got < 2 || msg[0] != 1 {
                    return Err(io::Error::other("unshare(CLONE_NEWUSER) failed"));
                }
                let pid = String::from_utf8_lossy(&msg[1..got]);
                std::fs::write(format!("/proc/{pid}/uid_map"), &uid_map)?;
                std::fs::write(format!("/proc/{pid}/gid_map"), &gid_map)?;
                let ns = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
                Ok(OwnedFd::from(ns))
            })();
            drop(done_w);
            let _ = nix::sys::wait::waitpid(child, None);
            result
        }
    }
}

/// The /dev symlinks (`fd`, `stdin`, …, `ptmx` → `pts/ptmx`), made in the
/// root's /dev. (Not runc's `core` → `/proc/kcore`: a link to a file the
/// masks hide, which `containr run` never made.)
fn dev_links(root: BorrowedFd<'_>) -> Result<(), Error> {
    let dev = Path::new("/dev");
    let dir = resolve(root, dev, true).map_err(mount_err(dev, "resolving in the root"))?;
    let dirfd = Some(dir.as_raw_fd());
    step!("symlink /dev/{{ptmx,fd,stdin,stdout,stderr}}");
    let _ = nix::unistd::unlinkat(dirfd, "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir);
    for (name, target) in DEV_LINKS {
        match nix::unistd::symlinkat(target, dirfd, name) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(sys_err(dev.join(name), "symlink")(e)),
        }
    }
    Ok(())
}

/// One device node to make: where, what, and who owns it.
struct Node {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// The default devices (null, zero, full, random, urandom, tty) and then
/// the config's, which win for the same path.
fn nodes(devices: &[LinuxDevice]) -> Vec<Node> {
    let mut out: Vec<Node> = DEVICES
        .iter()
        .map(|(name, major, minor)| Node {
            path: Path::new("/dev").join(name),
            kind: SFlag::S_IFCHR,
            major: *major,
            minor: *minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect();
    for d in devices {
        out.retain(|n| n.path != *d.path());
        out.push(Node {
            path: d.path().clone(),
            kind: match d.typ() {
                LinuxDeviceType::B => SFlag::S_IFBLK,
                LinuxDeviceType::P => SFlag::S_IFIFO,
                _ => SFlag::S_IFCHR,
            },
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    out
}

fn make_devices(
    root: BorrowedFd<'_>,
    devices: &[LinuxDevice],
    in_userns: bool,
) -> Result<(), Error> {
    step!(
        "{} the devices (null, zero, full, random, urandom, tty and the config's)",
        if in_userns {
            "bind from the host"
        } else {
            "mknod"
        }
    );
    // What mknod gives a node: the caller's ids, the mode less the umask
    // (the inits set none).
    let ids = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let umask = nix::sys::stat::umask(Mode::empty());
    nix::sys::stat::umask(umask);
    let umask_is_0 = umask.is_empty();
    let mut dirs: Option<(PathBuf, OwnedFd)> = None;
    for node in nodes(devices) {
        let path = &node.path;
        let dev_err = |what| {
            move |source| Error::Device {
                path: path.clone(),
                what,
                source,
            }
        };
        if matches!(node.kind, SFlag::S_IFCHR | SFlag::S_IFBLK) && node.path.file_name().is_none() {
            return Err(dev_err("no file name")(io::ErrorKind::InvalidInput.into()));
        }
        if in_userns {
            let target = resolve(root, path, false).map_err(dev_err("creating"))?;
            let tree = clone(path, false).map_err(dev_err("open_tree of the host's node"))?;
            mountapi::attach_to_fd(tree.as_fd(), target.as_fd()).map_err(dev_err("binding"))?;
            continue;
        }
        let parent = path.parent().unwrap_or(Path::new("/"));
        // Most nodes are in /dev: its directory resolved once.
        let dir = match dirs.take() {
            Some((p, fd)) if p == parent => fd,
            _ => resolve(root, parent, true).map_err(dev_err("creating its directory"))?,
        };
        let dir = &dirs.insert((parent.to_path_buf(), dir)).1;
        let name = path.file_name().unwrap_or_default();
        match nix::sys::stat::mknodat(
            Some(dir.as_raw_fd()),
            name,
            node.kind,
            Mode::from_bits_truncate(node.mode),
            nix::sys::stat::makedev(node.major, node.minor),
        ) {
            Ok(()) => {}
            Err(nix::Error::EEXIST) => continue,
            Err(e) => return Err(dev_err("mknod")(e.into())),
        }
        if node.uid == ids.0 && node.gid == ids.1 && node.mode & !0o777 == 0 && umask_is_0 {
            continue; // made as asked already
        }
        // mknod applied the umask, and the owner is root: set both on the
        // node just made (O_NOFOLLOW: on nothing a symlink points to).
        let fd = nix::fcntl::openat(
            Some(dir.as_raw_fd()),
            name,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_NOFOLLOW
                | nix::fcntl::OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| dev_err("opening")(e.into()))?;
        // SAFETY: openat just returned this descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        nix::unistd::fchownat(
            Some(fd.as_raw_fd()),
            "",
            Some(node.uid.into()),
            Some(node.gid.into()),
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        )
        .map_err(|e| dev_err("chown")(e.into()))?;
        std::fs::set_permissions(
            proc_fd(fd.as_fd()),
            std::os::unix::fs::PermissionsExt::from_mode(node.mode),
        )
        .map_err(dev_err("chmod"))?;
    }
    Ok(())
}

/// Make the mount `rootfs` is on private, if shared: pivot_root refuses a
/// new root whose parent mount is shared (rootfsPropagation `shared`).
fn parent_mount_private(rootfs: &Path) -> Result<(), Error> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(mount_err(rootfs, "reading /proc/self/mountinfo"))?;
    let mut best: Option<(PathBuf, bool)> = None;
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 7 {
            continue;
        }
        let point = PathBuf::from(unescape(f[4]));
        let shared = f[6..]
            .iter()
            .take_while(|x| **x != "-")
            .any(|x| x.starts_with("shared:"));
        if rootfs.starts_with(&point)
            && best
                .as_ref()
                .is_none_or(|(b, _)| point.as_os_str().len() >= b.as_os_str().len())
        {
            best = Some((point, shared));
        }
    }
    if let Some((point, true)) = best {
        mount(
            None::<&str>,
            &point,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(sys_err(&point, "making the rootfs's parent mount private"))?;
    }
    Ok(())
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if b[i] == b'\\'
            && let Some(d) = octal
        {
            out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8) + (c - b'0')));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_namespaces_follow_runc() {
        assert_eq!(sysctl_namespace("kernel.shmmax"), Some("ipc"));
        assert_eq!(sysctl_namespace("fs.mqueue.msg_max"), Some("ipc"));
        assert_eq!(sysctl_namespace("net.ipv4.ip_forward"), Some("net"));
        assert_eq!(sysctl_namespace("kernel.domainname"), Some("uts"));
        assert_eq!(sysctl_namespace("kernel.panic"), None);
        assert_eq!(sysctl_namespace("vm.overcommit_memory"), None);
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\"), "/end\\");
    }

    #[test]
    fn destinations_are_relative_components() {
        let v = relative(Path::new("/a/../b/./c"));
        assert_eq!(
            v,
            vec![
                OsStr::new("a"),
                OsStr::new(".."),
                OsStr::new("b"),
                OsStr::new("c")
            ]
        );
    }
}

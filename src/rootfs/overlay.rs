//! Mounting an image's overlay: the container's writable layer over the
//! image's layer snapshots. What the layers are is the image store's to say
//! (`image::layers`); this module only mounts them:
//!
//! - [`Overlay::mount`]: by the container's init, inside its own mount
//!   namespace, so the host never sees the mount and the kernel removes it
//!   with the namespace however containr ends;
//! - [`Overlay::mount_idmapped`]: by the host side, for a container in a
//!   user namespace, as a detached mount its init attaches;
//! - [`read_only_view`]: what `containr export` reads, an overlay attached
//!   nowhere; [`writable_view`], the same writable, for `containr cp`.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::mountapi;
use crate::step;

/// The overlay to mount on a container's rootfs; travels to the init.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Overlay {
    /// The directory the lower layers are named relative to: the mount's
    /// options must fit in one page, and short names fit ~60 layers (more
    /// are given one by one, see [`Overlay::mount`]).
    pub base: PathBuf,
    /// Lower layers relative to `base`, top first.
    pub lower: Vec<String>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// overlayfs splits options at `,` and lower layers at `:`; a backslash
/// escapes either.
fn escape(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Overlay {
    /// The mount(2) data string. `volatile`: overlayfs need not `syncfs`
    /// the whole host filesystem when it is unmounted (which cost 100 ms a
    /// run); a kept upper layer is flushed by `image::layers::RwLayer::keep`,
    /// file by file, instead.
    pub fn options(&self) -> String {
        let lower: Vec<String> = self.lower.iter().map(|l| escape(l)).collect();
        format!(
            "lowerdir={},upperdir={},workdir={},volatile",
            lower.join(":"),
            escape(&self.upper.to_string_lossy()),
            escape(&self.work.to_string_lossy())
        )
    }

    /// Mount the overlay on `target`. Changes the working directory (to
    /// `base`); callers pivot or chdir afterwards.
    pub fn mount(&self, target: &Path) -> std::io::Result<()> {
        nix::unistd::chdir(&self.base)?;
        step!(
            "mount(overlay, {}, lowerdir={} layer snapshot(s), upperdir={}, workdir={})",
            target.display(),
            self.lower.len(),
            self.upper.display(),
            self.work.display()
        );
        let options = self.options();
        if options.len() < MOUNT_DATA_MAX {
            return nix::mount::mount(
                Some("overlay"),
                target,
                Some("overlay"),
                nix::mount::MsFlags::empty(),
                Some(options.as_str()),
            )
            .map_err(std::io::Error::from);
        }
        // Too many layers for one page: one `lowerdir+` each (Linux 6.8).
        use std::ffi::CString;
        let invalid = || std::io::Error::from(std::io::ErrorKind::InvalidInput);
        let cstr = |s: &str| CString::new(s).map_err(|_| invalid());
        let fs = mountapi::FsContext::open(c"overlay")?;
        for layer in &self.lower {
            fs.set_string(c"lowerdir+", &cstr(layer)?)?;
        }
        fs.set_string(c"upperdir", &cstr(&escape(&self.upper.to_string_lossy()))?)?;
        fs.set_string(c"workdir", &cstr(&escape(&self.work.to_string_lossy()))?)?;
        fs.set_flag(c"volatile")?;
        let mount = fs.mount(0)?;
        let target = CString::new(target.as_os_str().as_encoded_bytes()).map_err(|_| invalid())?;
        mountapi::attach(mount.as_fd(), &target)
    }
}

/// mount(2) copies one page of options.
const MOUNT_DATA_MAX: usize = 4096;

/// fsconfig(2) copies at most this much of a string value.
const FSCONFIG_VALUE_MAX: usize = 256;

impl Overlay {
    /// The overlay for a container in a user namespace, as a detached
    /// mount for its init to attach. Every lower layer is seen through an
    /// idmapped mount (ids translated by `userns`'s maps), so root-owned
    /// snapshots belong to container root without a chown, and stay shared
    /// with ordinary containers. The writable layer is not idmapped:
    /// overlayfs creates its work files and copies up as the mounter (host
    /// root), which an idmapped upper layer could not represent (EOVERFLOW);
    /// what the container writes is stored under its host ids, as with any
    /// user-namespaced container, and the caller chowns the upper directory
    /// to container root.
    ///
    /// Made here, by host root, rather than by the init: overlayfs mounted
    /// inside a user namespace may not read the `trusted.overlay.*` xattrs
    /// that mark opaque directories. The idmapped layers must be attached in
    /// the mounter's mount namespace, so a forked child does it in a
    /// throwaway one: it mounts each idmapped layer over its own path there,
    /// builds the overlay with `fsopen`, and the parent takes the result
    /// with `pidfd_getfd`. The namespace dies with the child; the overlay
    /// keeps private clones of its layers.
    pub fn mount_idmapped(&self, userns: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
        use std::ffi::CString;
        let invalid = || std::io::Error::from(std::io::ErrorKind::InvalidInput);
        let base = CString::new(self.base.as_os_str().as_encoded_bytes()).map_err(|_| invalid())?;
        let layers = self
            .lower
            .iter()
            .map(|l| CString::new(l.as_str()).map_err(|_| invalid()))
            .collect::<Result<Vec<_>, _>>()?;
        // fsconfig takes values of at most 256 bytes: the idmapped layers
        // are attached at short names on a tmpfs (over `base`, in the
        // child's namespace only), which fits ~80 layers in one value;
        // more are given one by one.
        let short: Vec<CString> = (0..layers.len())
            .map(|i| CString::new(i.to_string()).expect("digits"))
            .collect();
        let lowerdir = (0..layers.len()).map(|i| i.to_string()).collect::<Vec<_>>();
        let lowerdir = CString::new(lowerdir.join(":")).expect("digits");
        let upper = CString::new(escape(&self.upper.to_string_lossy())).map_err(|_| invalid())?;
        let work = CString::new(escape(&self.work.to_string_lossy())).map_err(|_| invalid())?;
        // Reserved now: the child must not allocate.
        let mut trees: Vec<OwnedFd> = Vec::with_capacity(layers.len());
        step!(
            "fork; unshare(CLONE_NEWNS); open_tree + mount_setattr(MOUNT_ATTR_IDMAP) of each of {} layer(s), attached on a tmpfs; fsopen(overlay) + fsmount: the container's overlay, mounted nowhere",
            self.lower.len(),
        );

        let build = move || -> std::io::Result<OwnedFd> {
            // SAFETY: integer flags / NUL-terminated strings only.
            if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0
                || unsafe {
                    libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    )
                } != 0
                || unsafe { libc::chdir(base.as_ptr()) } != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            for path in &layers {
                let tree = mountapi::clone_tree(libc::AT_FDCWD, path, false)?;
                mountapi::set_idmap(tree.as_fd(), userns)?;
                trees.push(tree);
            }
            // SAFETY: NUL-terminated strings; the new tmpfs hides `base` in
            // this namespace only, and the chdir enters it.
            if unsafe {
                libc::mount(
                    c"tmpfs".as_ptr(),
                    base.as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    std::ptr::null(),
                )
            } != 0
                || unsafe { libc::chdir(base.as_ptr()) } != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            for (tree, name) in trees.iter().zip(&short) {
                // SAFETY: a NUL-terminated name relative to the cwd.
                if unsafe { libc::mkdir(name.as_ptr(), 0o755) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                mountapi::attach(tree.as_fd(), name)?;
            }
            let fs = mountapi::FsContext::open(c"overlay")?;
            if lowerdir.as_bytes().len() < FSCONFIG_VALUE_MAX {
                fs.set_string(c"lowerdir", &lowerdir)?;
            } else {
                // One `lowerdir+` each (Linux 6.8): no length to run out of.
                for name in &short {
                    fs.set_string(c"lowerdir+", name)?;
                }
            }
            fs.set_string(c"upperdir", &upper)?;
            fs.set_string(c"workdir", &work)?;
            fs.set_flag(c"volatile")?;
            fs.mount(0)
        };
        crate::namespace::in_forked_child(build)
    }
}

/// A read-only overlay of `layers` (top first), as a mount attached
/// nowhere: the kernel unmounts it when the returned fd is closed, so no
/// mount is ever left behind, however containr ends. Its files are reached
/// as `/proc/self/fd/<fd>/PATH`.
///
/// For `containr export`, the container's writable layer is the top *lower*
/// layer here: this overlay has no upper of its own, so it can look at a
/// running container's layer without writing to it.
pub fn read_only_view(layers: &[PathBuf]) -> std::io::Result<OwnedFd> {
    detached_view(layers, None)
}

/// As [`read_only_view`], but writable: `layers[0]` is the upper layer
/// (what is written lands there, as if the container wrote it) and `work`
/// overlayfs's scratch directory, on the same filesystem. For `containr
/// cp` into a container that is not running; the mount goes away with the
/// returned fd. Not `volatile`: what is copied into a kept container is on
/// disk when the mount goes.
pub fn writable_view(layers: &[PathBuf], work: &Path) -> std::io::Result<OwnedFd> {
    detached_view(layers, Some(work))
}

fn open_dir(l: &Path) -> std::io::Result<OwnedFd> {
    nix::fcntl::open(
        l,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    // SAFETY: open returned a new fd that nothing else owns.
    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
    .map_err(|e| std::io::Error::other(format!("{}: {e}", l.display())))
}

fn detached_view(layers: &[PathBuf], work: Option<&Path>) -> std::io::Result<OwnedFd> {
    let fds = layers
        .iter()
        .map(|l| open_dir(l))
        .collect::<std::io::Result<Vec<OwnedFd>>>()?;
    let work = work.map(open_dir).transpose()?;
    // fsconfig takes at most 256 bytes per value, which a few absolute
    // snapshot paths exceed: the layers are named by fd number, relative
    // to /proc/self/fd as the working directory, which fits ~60 of them.
    let name = |f: &OwnedFd| f.as_raw_fd().to_string();
    let (upper, lower) = match work {
        Some(_) => (Some(&fds[0]), &fds[1..]),
        None => (None, &fds[..]),
    };
    let lowerdir: Vec<String> = lower.iter().map(name).collect();
    let lowerdir = std::ffi::CString::new(lowerdir.join(":")).expect("digits");
    if lowerdir.as_bytes().len() > 255 {
        return Err(std::io::Error::other(format!(
            "{} layers are more than an overlay can be given at once",
            layers.len()
        )));
    }
    let cwd = std::fs::File::open(".")?;
    nix::unistd::chdir("/proc/self/fd")?;
    step!(
        "fsopen(overlay) + fsmount: a {} overlay of {} and {} snapshot(s), attached nowhere",
        if work.is_some() {
            "writable"
        } else {
            "read-only"
        },
        layers[0].display(),
        layers.len() - 1
    );
    let digits = |f: &OwnedFd| std::ffi::CString::new(name(f)).expect("digits");
    let mounted = match (upper, &work) {
        (Some(upper), Some(work)) => (|| {
            let fs = mountapi::FsContext::open(c"overlay")?;
            fs.set_string(c"lowerdir", &lowerdir)?;
            fs.set_string(c"upperdir", &digits(upper))?;
            fs.set_string(c"workdir", &digits(work))?;
            fs.mount(0)
        })(),
        _ => mount_detached(&lowerdir),
    };
    nix::unistd::fchdir(cwd.as_raw_fd())?;
    mounted
}

fn mount_detached(lowerdir: &std::ffi::CStr) -> std::io::Result<OwnedFd> {
    let fs = mountapi::FsContext::open(c"overlay")?;
    fs.set_string(c"lowerdir", lowerdir)?;
    fs.mount(mountapi::MOUNT_ATTR_RDONLY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_escape_separators() {
        let o = Overlay {
            base: "/b".into(),
            lower: vec!["top".into(), "bottom".into()],
            upper: "/r/a,b/upper".into(),
            work: "/r/x:y/work".into(),
        };
        assert_eq!(
            o.options(),
            "lowerdir=top:bottom,upperdir=/r/a\\,b/upper,workdir=/r/x\\:y/work,volatile"
        );
    }
}

//! Namespaces: which ones a container gets, and the `clone(2)` that makes
//! them.
//!
//! The container's init must be PID 1 of a new PID namespace. `unshare(2)`
//! cannot give that to the calling process (only to its future children), so
//! the namespaces are created by `clone(2)` itself, and the child at once
//! re-execs containr (see `container::selfexe`) to start from a clean image.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::step;

pub mod userns;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("clone({flags}) failed: {source}")]
    Clone { flags: String, source: nix::Error },
    #[error("invalid --userns-remap {0:?}: expected default or START[:COUNT] with START > 0")]
    IdMap(String),
    #[error("user namespace: {what}: {source}")]
    UserNs {
        what: &'static str,
        source: std::io::Error,
    },
    #[error(
        "rootfs {rootfs}: its filesystem cannot be idmapped ({source}); with --userns-remap, use a filesystem this kernel can idmap (ext4, xfs and btrfs since 5.12, tmpfs since 6.3) or chown the rootfs to the remapped range"
    )]
    IdMappedMount {
        rootfs: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("--userns-remap: {0}")]
    IdMappedBind(#[from] crate::rootfs::Error),
    #[error("setting the hostname to {hostname:?} failed: {source}")]
    Hostname {
        hostname: String,
        source: nix::Error,
    },
}

/// The set of namespaces one container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Namespaces {
    pub flags: CloneFlags,
}

impl Namespaces {
    /// `CLONE_NEWUTS|CLONE_NEWPID|...`, for messages and the walkthrough.
    pub fn describe(&self) -> String {
        describe_flags(self.flags)
    }
}

/// Renders clone flags the way the man page spells them.
pub fn describe_flags(flags: CloneFlags) -> String {
    const NAMES: &[(CloneFlags, &str)] = &[
        (CloneFlags::CLONE_NEWUTS, "CLONE_NEWUTS"),
        (CloneFlags::CLONE_NEWPID, "CLONE_NEWPID"),
        (CloneFlags::CLONE_NEWNS, "CLONE_NEWNS"),
        (CloneFlags::CLONE_NEWIPC, "CLONE_NEWIPC"),
        (CloneFlags::CLONE_NEWNET, "CLONE_NEWNET"),
        (CloneFlags::CLONE_NEWCGROUP, "CLONE_NEWCGROUP"),
        (CloneFlags::CLONE_NEWUSER, "CLONE_NEWUSER"),
    ];
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(f, _)| flags.contains(*f))
        .map(|(_, n)| *n)
        .collect();
    names.join("|")
}

/// The binary the child execs (see `container::selfexe`).
pub enum Exe<'a> {
    /// A sealed memfd copy.
    Sealed(BorrowedFd<'a>),
    /// containr's own path, bound read-only onto itself first, in the
    /// child's new mount namespace; `locked`: flags the remount must keep.
    ReadOnlyBind {
        path: &'a std::ffi::CStr,
        locked: libc::c_ulong,
    },
}

/// What the cloned child does before it becomes the container's init: all
/// of it prepared by the parent, because between `clone` and `execve` the
/// child may only make async-signal-safe system calls.
pub struct ChildExec<'a> {
    /// The sealed copy of containr to run (see `container::selfexe`).
    pub exe: Exe<'a>,
    /// The one descriptor the init inherits besides stdio.
    pub keep_fd: BorrowedFd<'a>,
    /// Descriptors 3..3+N inherited as well (an OCI runtime's
    /// `--preserve-fds` and `LISTEN_FDS`); `keep_fd` must be above them.
    pub preserve_fds: u32,
    pub argv: Vec<CString>,
    /// A cgroup v2 directory to start the child in (`CLONE_INTO_CGROUP`):
    /// no separate move, which on v1 costs an RCU grace period.
    pub cgroup: Option<BorrowedFd<'a>>,
    /// cgroup v1: the `tasks` file of each hierarchy, open for writing; the
    /// child writes `0` (itself) to each before anything else. A thread
    /// moving itself skips the kernel's global threadgroup lock, whose RCU
    /// grace period a write of its pid to `cgroup.procs` from another
    /// process waits for (5-12 ms on a v1 host). The child is single
    /// threaded, so the thread is the whole process.
    pub join: &'a [std::fs::File],
    /// With a new user namespace: the read end of a pipe the parent writes
    /// to once the id maps exist. The child then becomes uid/gid 0 of the
    /// namespace *before* it execs, which is what keeps its capabilities
    /// across the exec (an exec by an unmapped uid drops them all).
    pub userns_ready: Option<BorrowedFd<'a>>,
}

/// `struct clone_args` of clone3(2) (Linux 5.3; `cgroup` since 5.7).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Clone a child into new `namespaces` and re-exec `exec.exe` in it.
/// Returns its pid, and whether it was started inside `exec.cgroup` or
/// joined `exec.join` itself (false where the kernel predates
/// `CLONE_INTO_CGROUP`: the caller moves it). A child that cannot join
/// exits with 125 before it execs.
///
/// The child dies with the parent (`PR_SET_PDEATHSIG`), starts with an
/// empty signal mask, and inherits no descriptor but stdio and `keep_fd`.
pub fn clone_and_exec(namespaces: Namespaces, exec: &ChildExec<'_>) -> Result<(Pid, bool), Error> {
    let flags = namespaces.flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    let argv: Vec<*const libc::c_char> = exec
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let empty = c"";
    let (exe_fd, exe_path, locked) = match &exec.exe {
        Exe::Sealed(fd) => (fd.as_raw_fd(), None, 0),
        Exe::ReadOnlyBind { path, locked } => (-1, Some(path.as_ptr()), *locked),
    };
    let keep_fd = exec.keep_fd.as_raw_fd();
    let preserved = 3..3 + exec.preserve_fds as libc::c_int;
    let ready_fd = exec.userns_ready.map(|f| f.as_raw_fd());
    let join: Vec<libc::c_int> = exec.join.iter().map(|f| f.as_raw_fd()).collect();

    step!(
        "clone({}) -> the child is PID 1 of its new PID namespace",
        namespaces.describe()
    );
    let mut placed = false;
    let mut pid = -1;
    if let Some(cgroup) = exec.cgroup {
        let args = CloneArgs {
            flags: namespaces.flags.bits() as u64 | CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: cgroup.as_raw_fd() as u64,
            ..CloneArgs::default()
        };
        // SAFETY: as for clone below; clone3 with no stack behaves like
        // fork(2), and `args` is a valid clone_args the kernel only reads.
        pid = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        placed = pid >= 0;
        let old_kernel = matches!(
            nix::Error::last(),
            nix::Error::ENOSYS | nix::Error::E2BIG | nix::Error::EINVAL
        );
        if pid < 0 && !old_kernel {
            return Err(Error::Clone {
                flags: format!("{}|CLONE_INTO_CGROUP", namespaces.describe()),
                source: nix::Error::last(),
            });
        }
    }
    if pid < 0 {
        // SAFETY: a raw clone with a null stack behaves like fork(2): the
        // child gets a copy-on-write copy of this address space. containr is
        // single-threaded here, so no lock can be held by another thread.
        // The child only makes raw system calls on data prepared above (no
        // allocation, no locks) and then either execs or _exits.
        pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    }
    if pid < 0 {
        return Err(Error::Clone {
            flags: namespaces.describe(),
            source: nix::Error::last(),
        });
    }
    if pid == 0 {
        // SAFETY: async-signal-safe system calls only, see above.
        unsafe {
            // If the parent is already gone, the init finds the control
            // channel closed and exits; getppid() cannot tell us here, it is
            // 0 in a new PID namespace.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            for &fd in &join {
                if libc::write(fd, c"0".as_ptr().cast(), 1) != 1 {
                    libc::_exit(125);
                }
            }
            if let Some(ready) = ready_fd {
                let mut byte = 0u8;
                if libc::read(ready, (&mut byte as *mut u8).cast(), 1) != 1
                    || libc::syscall(libc::SYS_setresgid, 0, 0, 0) != 0
                    || libc::syscall(libc::SYS_setresuid, 0, 0, 0) != 0
                {
                    libc::_exit(125);
                }
            }
            let empty_set: libc::sigset_t = std::mem::zeroed();
            libc::sigprocmask(libc::SIG_SETMASK, &empty_set, std::ptr::null_mut());
            // Mark every inherited descriptor close-on-exec, then clear the
            // flag on the one the init needs: nothing else reaches it.
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            libc::fcntl(keep_fd, libc::F_SETFD, 0);
            for fd in preserved {
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
            match exe_path {
                None => {
                    libc::syscall(
                        libc::SYS_execveat,
                        exe_fd,
                        empty.as_ptr(),
                        argv.as_ptr(),
                        envp.as_ptr(),
                        libc::AT_EMPTY_PATH,
                    );
                }
                Some(path) => {
                    // Private first: the bind must not propagate to the host.
                    let null = std::ptr::null::<libc::c_char>();
                    let bound = libc::mount(
                        null,
                        c"/".as_ptr(),
                        null,
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ) == 0
                        && libc::mount(path, path, null, libc::MS_BIND, std::ptr::null()) == 0
                        && libc::mount(
                            null,
                            path,
                            null,
                            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked,
                            std::ptr::null(),
                        ) == 0;
                    if bound {
                        libc::execve(path, argv.as_ptr(), envp.as_ptr());
                    }
                }
            }
            libc::_exit(125);
        }
    }
    Ok((
        Pid::from_raw(pid as libc::pid_t),
        placed || !join.is_empty(),
    ))
}

/// A cgroup namespace rooted at the cgroup the caller is in now, where the
/// kernel has cgroup namespaces: the container then sees its own cgroup as
/// `/` in /proc/self/cgroup and cannot name its parents. False where the
/// kernel has none.
pub fn enter_cgroup_namespace() -> Result<bool, Error> {
    if !Path::new("/proc/self/ns/cgroup").exists() {
        return Ok(false);
    }
    step!("unshare(CLONE_NEWCGROUP): the container's cgroup becomes its /");
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).map_err(|source| Error::Clone {
        flags: "CLONE_NEWCGROUP".into(),
        source,
    })?;
    Ok(true)
}

/// Give the container its hostname (in its own UTS namespace).
pub fn set_hostname(hostname: &str) -> Result<(), Error> {
    step!("sethostname({hostname:?}) in the new UTS namespace");
    nix::unistd::sethostname(hostname).map_err(|source| Error::Hostname {
        hostname: hostname.to_string(),
        source,
    })
}

/// Run `make` in a forked child and return the descriptor it makes, taken
/// from the child with `pidfd_getfd`. For work that must change the
/// process's own namespaces (a throwaway mount namespace, say) without
/// touching the caller's. `make` must not allocate or take locks: the
/// caller may have other threads, whose locks a forked child inherits held.
pub fn in_forked_child(
    make: impl FnOnce() -> std::io::Result<std::os::fd::OwnedFd>,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use nix::fcntl::OFlag;
    use nix::unistd::{ForkResult, fork, pipe2};
    use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

    let (result_r, result_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (done_r, done_w) = pipe2(OFlag::O_CLOEXEC)?;
    // SAFETY: the child runs only `make` (allocation- and lock-free by
    // contract), then raw write/read/_exit: nothing that needs a lock
    // another thread could hold at the fork.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // Only the parent's copies may keep these open: `done` must
            // reach end-of-file when the parent closes its end.
            // SAFETY: closing descriptors this process owns and forgets.
            unsafe {
                libc::close(done_w.into_raw_fd());
                libc::close(result_r.into_raw_fd());
            }
            let v: i64 = match make() {
                Ok(fd) => fd.into_raw_fd() as i64,
                Err(e) => -(e.raw_os_error().unwrap_or(libc::EIO) as i64),
            };
            // SAFETY: plain syscalls on our own pipe ends and a local
            // buffer; _exit skips the parent's atexit handlers and buffers.
            unsafe {
                libc::write(result_w.as_raw_fd(), (&v as *const i64).cast(), 8);
                // Hold the descriptor until the parent has taken it: it
                // closes its end of `done` when it has.
                let mut b = 0u8;
                libc::read(done_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
                libc::_exit(0)
            }
        }
        ForkResult::Parent { child } => {
            drop(result_w);
            drop(done_r);
            let mut buf = [0u8; 8];
            let got = std::io::Read::read_exact(&mut std::fs::File::from(result_r), &mut buf);
            let taken = got.and_then(|()| match i64::from_ne_bytes(buf) {
                v if v < 0 => Err(std::io::Error::from_raw_os_error(-v as i32)),
                v => {
                    // SAFETY: integer arguments only; each returns a new
                    // descriptor (close-on-exec) or -1, checked below.
                    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.as_raw(), 0) };
                    if pidfd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // SAFETY: the kernel just returned this descriptor.
                    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
                    // SAFETY: integer arguments; returns a new descriptor or -1.
                    let fd =
                        unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), v, 0) };
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // SAFETY: as above, a new descriptor nothing else owns.
                    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
                }
            });
            drop(done_w);
            let _ = nix::sys::wait::waitpid(child, None);
            taken
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_flags_in_man_page_order() {
        let flags = CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWUTS;
        assert_eq!(describe_flags(flags), "CLONE_NEWUTS|CLONE_NEWPID");
    }
}

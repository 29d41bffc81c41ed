//! Terminals for `-t`.
//!
//! The pseudo-terminal is opened *inside* the container, on the container's
//! own devpts instance, so that the command's `/proc/self/fd/0` is a
//! `/dev/pts/N` that exists in its world (`tty`, `ttyname()` and shells that
//! check work). Only the master side travels to the host, over the control
//! channel; the host terminal is put in raw mode so that keys, Ctrl-C
//! included, reach the container's line discipline untouched.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use nix::sys::termios::{self, SetArg, Termios};

/// The host terminal in raw mode; restored when dropped, on every exit path
/// (errors and panics unwind through it).
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    pub fn enable(fd: BorrowedFd<'_>) -> nix::Result<RawMode> {
        let saved = termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw)?;
        Ok(RawMode {
            fd: fd
                .try_clone_to_owned()
                .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)))?,
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // TCSADRAIN: let the container's last output reach the screen first.
        let _ = termios::tcsetattr(self.fd.as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd.as_raw_fd()).unwrap_or(false)
}

/// The window size of terminal `fd`.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<libc::winsize> {
    // SAFETY: an all-zero winsize is valid, and TIOCGWINSZ writes only
    // within it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (rc == 0).then_some(ws)
}

/// Set the window size of terminal `fd`. On a pty master, the kernel then
/// sends SIGWINCH to the foreground process group of the other side.
pub fn set_window_size(fd: BorrowedFd<'_>, ws: &libc::winsize) {
    // SAFETY: TIOCSWINSZ only reads the winsize it is given.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws) };
}

/// A pseudo-terminal opened on the current `/dev/ptmx`.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    /// The slave's path, e.g. `/dev/pts/0`.
    pub slave_path: PathBuf,
}

/// Open a pty pair on `/dev/ptmx` (inside the container after the pivot).
pub fn open_pty() -> std::io::Result<Pty> {
    let master = OwnedFd::from(
        File::options()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open("/dev/ptmx")?,
    );
    let m = master.as_raw_fd();
    let mut unlock: libc::c_int = 0;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCSPTLCK reads an int, TIOCGPTN writes an unsigned int, both
    // pointing at locals of those types; TIOCGPTPEER returns a new fd.
    let slave = unsafe {
        if libc::ioctl(m, libc::TIOCSPTLCK, &mut unlock) < 0
            || libc::ioctl(m, libc::TIOCGPTN, &mut n) < 0
        {
            return Err(std::io::Error::last_os_error());
        }
        // TIOCGPTPEER opens the slave through the master itself, immune to
        // anything having been mounted over /dev/pts by then.
        libc::ioctl(
            m,
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The size of the terminal containr runs on (the init still has its
    // stdio): containr sets it too once the master reaches it, but by then
    // the command may have started and read a 0x0 window.
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    if let Some(ws) = window_size(stdin.as_fd()).or_else(|| window_size(stdout.as_fd())) {
        set_window_size(master.as_fd(), &ws);
    }
    Ok(Pty {
        master,
        // SAFETY: slave was just returned by the kernel and nothing owns it.
        slave: unsafe { OwnedFd::from_raw_fd(slave) },
        slave_path: PathBuf::from(format!("/dev/pts/{n}")),
    })
}

/// Make `slave` the controlling terminal of a new session and the
/// process's stdio. For the command, between fork and exec (or in the
/// container's PID 1 before it execs the command: already the leader of a
/// session of its own, with no terminal yet).
pub fn become_controlling(slave: BorrowedFd<'_>) -> nix::Result<()> {
    if nix::unistd::getsid(None)? != nix::unistd::getpid() {
        nix::unistd::setsid()?;
    }
    // SAFETY: TIOCSCTTY takes an int argument, no pointer.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(nix::Error::last());
    }
    for fd in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), fd)?;
    }
    Ok(())
}

//! A pseudo-terminal the test plays the emulator of: a command runs as the
//! session leader of its slave, and everything is read and typed on the
//! master side, as a user would see it.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::Winsize;
use nix::sys::termios::{self, Termios};

/// How long any single wait may take before the test gives up.
pub const TIMEOUT: Duration = Duration::from_secs(15);

nix::ioctl_write_ptr_bad!(tiocswinsz, nix::libc::TIOCSWINSZ, Winsize);
nix::ioctl_write_int_bad!(tiocsctty, nix::libc::TIOCSCTTY);

pub fn winsize(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// A pty pair whose descriptors are close-on-exec from the start.
///
/// Not `openpty(3)`: its descriptors are inheritable, and the tests of this
/// file spawn processes from parallel threads, so another test's containr
/// could inherit our slave and keep it open, and the master would then
/// never report the end of the session.
fn open_pty(size: Winsize) -> (OwnedFd, OwnedFd) {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .expect("posix_openpt");
    nix::pty::grantpt(&master).expect("grantpt");
    nix::pty::unlockpt(&master).expect("unlockpt");
    let path = nix::pty::ptsname_r(&master).expect("ptsname_r");
    let slave = nix::fcntl::open(
        path.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .expect("open the pty slave");
    // SAFETY: both descriptors were just opened and nothing else owns them.
    let (master, slave) = unsafe {
        (
            OwnedFd::from_raw_fd(master.into_raw_fd()),
            OwnedFd::from_raw_fd(slave),
        )
    };
    set_size(&master, size);
    (master, slave)
}

/// Resize the terminal, as an emulator does when its window changes.
pub fn set_size(master: &OwnedFd, size: Winsize) {
    // SAFETY: TIOCSWINSZ only reads the Winsize it is given.
    unsafe { tiocswinsz(master.as_raw_fd(), &raw const size) }.expect("TIOCSWINSZ");
}

/// containr running on a terminal of the test's own.
pub struct Term {
    pub master: OwnedFd,
    pub child: Child,
    pub output: Vec<u8>,
    /// The master reported that every slave descriptor is closed.
    hung_up: bool,
    status: Option<ExitStatus>,
}

impl Term {
    /// `cmd` with a terminal of `size` as its stdio and controlling
    /// terminal, as the session leader.
    pub fn spawn(mut cmd: Command, size: Winsize) -> Term {
        let (master, slave) = open_pty(size);
        let stdio = || Stdio::from(slave.try_clone().expect("dup the pty slave"));
        cmd.stdin(stdio()).stdout(stdio()).stderr(stdio());
        // SAFETY: setsid and ioctl are async-signal-safe, and the closure
        // touches nothing else of the parent.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid()?;
                tiocsctty(0, 0)?;
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn under a pty");
        // Only the child and its descendants may hold the slave, or the end
        // of the session would never show on the master.
        drop(cmd);
        drop(slave);
        Term {
            master,
            child,
            output: Vec::new(),
            hung_up: false,
            status: None,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    /// Read what is there within `wait`; false once the session has ended
    /// and everything it wrote has been read.
    pub fn pump(&mut self, wait: Duration) -> bool {
        if self.hung_up {
            return false;
        }
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::Error::EINTR) => return true,
            Ok(_) => {}
            Err(e) => panic!("poll on the pty master: {e}"),
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(self.master.as_raw_fd(), &mut buf) {
            Ok(0) | Err(nix::Error::EIO) => {
                self.hung_up = true;
                false
            }
            Ok(n) => {
                self.output.extend_from_slice(&buf[..n]);
                true
            }
            Err(nix::Error::EINTR | nix::Error::EAGAIN) => true,
            Err(e) => panic!("read from the pty master: {e}"),
        }
    }

    /// Read until the output contains `needle`; panics after [`TIMEOUT`].
    pub fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while !self.text().contains(needle) {
            let now = Instant::now();
            assert!(
                now < deadline,
                "no {needle:?} on the terminal within {TIMEOUT:?}; got {:?}",
                self.text()
            );
            if !self.pump(deadline - now) {
                // The session is over: a short sleep keeps this from
                // spinning while the deadline runs out.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    pub fn send(&self, keys: &str) {
        let mut rest = keys.as_bytes();
        while !rest.is_empty() {
            let n = nix::unistd::write(&self.master, rest).expect("write to the pty master");
            rest = &rest[n..];
        }
    }

    /// Wait for containr to exit and read all it wrote; panics after
    /// [`TIMEOUT`].
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if self.status.is_none() {
                self.status = self.child.try_wait().expect("wait for containr");
            }
            if let Some(status) = self.status
                && self.hung_up
            {
                return status;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "containr did not end within {TIMEOUT:?} (exit status {:?}); output: {:?}",
                self.status,
                self.text()
            );
            if !self.pump((deadline - now).min(Duration::from_millis(50))) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    pub fn termios(&self) -> Termios {
        // A pty master answers terminal-attribute requests with its slave's
        // attributes, which keeps working after the slave side has closed.
        termios::tcgetattr(&self.master).expect("tcgetattr")
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        if self.status.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

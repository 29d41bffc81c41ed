//! `containr attach`: a terminal (or pipe) joined to a detached
//! container's stdio, through a unix socket its monitor listens on,
//! `containers/<id>/attach.sock`.
//!
//! The monitor side ([`Hub`]) sends each client what the container writes,
//! framed as `[stream: u8][length: u32 LE][bytes]` (1 stdout, 2 stderr;
//! 3 with its exit status, `i32 LE`, last), and passes what a client sends
//! on to the container's stdin (its pty, or the pipe of a `-i` container).
//! `start -a` and an attached `run` under a monitor are its *starter*: a
//! client handed to the monitor when it was forked (so nothing the
//! container writes first is missed) whose end of input (a half-close)
//! closes the container's stdin, as docker's `StdinOnce`. A client that
//! cannot keep up is disconnected rather than waited for: the container is
//! never held back.
//! The client side ([`attach`]) copies both ways until the container ends
//! or the user types the detach keys (docker's ctrl-p ctrl-q by default).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::logs::Stream;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid detach keys {0:?}: a comma-separated list of ctrl-<letter> or single characters"
    )]
    Keys(String),
    #[error(
        "container {0} is not running: you cannot attach to a stopped container, start it first"
    )]
    NotRunning(String),
    #[error("attaching to container {name}: {source}")]
    Io {
        name: String,
        source: std::io::Error,
    },
}

/// The frame that carries the container's exit status.
const EXIT_FRAME: u8 = 3;

/// The socket's name in the container's directory.
const SOCKET: &str = "attach.sock";

/// `path` as a socket address short enough for `sun_path` (108 bytes),
/// whatever the data root: the directory through a descriptor of ours.
fn short_path(dir: &OwnedFd) -> String {
    format!("/proc/self/fd/{}/{SOCKET}", dir.as_raw_fd())
}

fn open_dir(dir: &Path) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    Ok(std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)?
        .into())
}

/// The monitor's side: the listening socket and the clients attached.
pub struct Hub {
    listener: UnixListener,
    clients: Vec<Client>,
}

struct Client {
    stream: UnixStream,
    /// `start -a` or an attached `run`: its end of input is the container's.
    starter: bool,
    /// Its input is still open (a starter's ends with a half-close).
    reading: bool,
}

impl Hub {
    /// Listen in the container's directory `dir`.
    pub fn listen(dir: &Path) -> std::io::Result<Hub> {
        let d = open_dir(dir)?;
        let _ = std::fs::remove_file(dir.join(SOCKET));
        let listener = UnixListener::bind(short_path(&d))?;
        listener.set_nonblocking(true)?;
        Ok(Hub {
            listener,
            clients: Vec::new(),
        })
    }

    /// Take the starter's end of a socket pair as a client.
    pub fn add_starter(&mut self, stream: UnixStream) {
        if stream.set_nonblocking(true).is_ok() {
            self.clients.push(Client {
                stream,
                starter: true,
                reading: true,
            });
        }
    }

    /// What to poll, and for what: the listener, then each client (one
    /// whose input ended only for its hang-up).
    pub fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        let input = |c: &Client| match c.reading {
            true => PollFlags::POLLIN,
            false => PollFlags::empty(),
        };
        std::iter::once((self.listener.as_fd(), PollFlags::POLLIN))
            .chain(self.clients.iter().map(|c| (c.stream.as_fd(), input(c))))
            .collect()
    }

    /// `ready[i]` for each of [`Hub::poll_fds`]: accept new clients, and
    /// pass what clients typed on to `stdin` (if the container has one).
    /// True when the starter's input ended: the container's should too.
    pub fn serve(&mut self, ready: &[bool], stdin: Option<BorrowedFd<'_>>, buf: &mut [u8]) -> bool {
        let mut gone = Vec::new();
        let mut stdin_ended = false;
        for (i, client) in self.clients.iter_mut().enumerate() {
            if !ready.get(i + 1).copied().unwrap_or(false) {
                continue;
            }
            if !client.reading {
                // Polled for nothing: it hung up.
                gone.push(i);
                continue;
            }
            match client.stream.read(buf) {
                Ok(0) if client.starter => {
                    client.reading = false;
                    stdin_ended = true;
                }
                Ok(0) | Err(_) => gone.push(i),
                Ok(n) => {
                    if let Some(fd) = stdin {
                        write_all_bounded(fd, &buf[..n]);
                    }
                }
            }
        }
        for i in gone.into_iter().rev() {
            self.clients.remove(i);
        }
        if ready.first().copied().unwrap_or(false) {
            while let Ok((stream, _)) = self.listener.accept() {
                if stream.set_nonblocking(true).is_ok() {
                    self.clients.push(Client {
                        stream,
                        starter: false,
                        reading: true,
                    });
                }
            }
        }
        stdin_ended
    }

    /// Send every client what the container wrote on `stream`; a client
    /// whose socket is full is dropped.
    pub fn broadcast(&mut self, stream: Stream, bytes: &[u8]) {
        if self.clients.is_empty() {
            return;
        }
        let mut frame = Vec::with_capacity(bytes.len() + 5);
        frame.push(match stream {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        });
        frame.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        frame.extend_from_slice(bytes);
        self.clients
            .retain_mut(|c| matches!(c.stream.write(&frame), Ok(n) if n == frame.len()));
    }

    /// The container exited with `status`: its clients get it, then
    /// end-of-file.
    pub fn close_clients(&mut self, status: i32) {
        let mut frame = vec![EXIT_FRAME];
        frame.extend_from_slice(&4u32.to_le_bytes());
        frame.extend_from_slice(&status.to_le_bytes());
        for mut c in self.clients.drain(..) {
            let _ = c.stream.write(&frame);
        }
    }
}

/// Write `bytes` to the container's (non-blocking) stdin, waiting at most
/// 100 ms at a time for it to read; what it never reads is dropped.
fn write_all_bounded(fd: BorrowedFd<'_>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                if !matches!(poll(&mut fds, PollTimeout::from(100u8)), Ok(n) if n > 0) {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// docker's `--detach-keys`: `ctrl-p,ctrl-q`, `ctrl-a,x`, ...
pub fn parse_keys(spec: &str) -> Result<Vec<u8>, Error> {
    let bad = || Error::Keys(spec.to_string());
    spec.split(',')
        .map(|k| {
            if let Some(c) = k.strip_prefix("ctrl-") {
                let b = match c.as_bytes() {
                    [b] if b.is_ascii_alphabetic() => b.to_ascii_lowercase() - b'a' + 1,
                    [b'@'] => 0,
                    [b'['] => 27,
                    [b'\\'] => 28,
                    [b']'] => 29,
                    [b'^'] => 30,
                    [b'_'] => 31,
                    _ => return Err(bad()),
                };
                Ok(b)
            } else {
                match k.as_bytes() {
                    [b] => Ok(*b),
                    _ => Err(bad()),
                }
            }
        })
        .collect()
}

/// How an attach ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The user typed the detach keys; the container runs on.
    Detached,
    /// The container exited with this status.
    Exited(i32),
    /// The container's stdio closed without a status (its monitor died).
    Closed,
}

/// Attach to the container whose directory is `dir`: its output to our
/// stdout and stderr, our stdin (unless `no_stdin`) to it, until it ends or
/// `keys` are typed. With a terminal on stdin, the caller sets it raw.
pub fn attach(name: &str, dir: &Path, keys: &[u8], no_stdin: bool) -> Result<End, Error> {
    let d = open_dir(dir).map_err(|_| Error::NotRunning(name.to_string()))?;
    let sock =
        UnixStream::connect(short_path(&d)).map_err(|_| Error::NotRunning(name.to_string()))?;
    relay(name, sock, keys, no_stdin, false)
}

/// Copy both ways between `sock` (connected to a monitor's [`Hub`]) and
/// our stdio, as [`attach`]. A `starter` half-closes `sock` at the end of
/// our stdin, which ends the container's.
pub fn relay(
    name: &str,
    mut sock: UnixStream,
    keys: &[u8],
    no_stdin: bool,
    starter: bool,
) -> Result<End, Error> {
    let io = |source| Error::Io {
        name: name.to_string(),
        source,
    };
    let stdin = std::io::stdin();
    let mut stdin_open = !no_stdin;
    let mut matched = 0;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut fds = vec![PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(io(e.into())),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            let n = sock.read(&mut buf).map_err(io)?;
            if n == 0 {
                return Ok(End::Closed);
            }
            pending.extend_from_slice(&buf[..n]);
            while pending.len() >= 5 {
                let len = u32::from_le_bytes(pending[1..5].try_into().expect("4 bytes")) as usize;
                if pending.len() < 5 + len {
                    break;
                }
                let frame: Vec<u8> = pending.drain(..5 + len).collect();
                if frame[0] == EXIT_FRAME && len == 4 {
                    let code = i32::from_le_bytes(frame[5..9].try_into().expect("4 bytes"));
                    return Ok(End::Exited(code));
                }
                let _ = match frame[0] {
                    2 => std::io::stderr().write_all(&frame[5..]),
                    _ => {
                        let mut out = std::io::stdout().lock();
                        out.write_all(&frame[5..]).and_then(|()| out.flush())
                    }
                };
            }
        }
        if stdin_open && ready[1] {
            let n = match nix::unistd::read(libc::STDIN_FILENO, &mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    if starter {
                        let _ = sock.shutdown(std::net::Shutdown::Write);
                    }
                    continue;
                }
                Ok(n) => n,
            };
            // The detach keys are held back until they are known not to
            // be the sequence; then sent as typed.
            let mut send = Vec::with_capacity(n);
            for &b in &buf[..n] {
                if !keys.is_empty() && b == keys[matched] {
                    matched += 1;
                    if matched == keys.len() {
                        sock.write_all(&send).map_err(io)?;
                        return Ok(End::Detached);
                    }
                    continue;
                }
                send.extend_from_slice(&keys[..matched]);
                matched = 0;
                send.push(b);
            }
            sock.write_all(&send).map_err(io)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_are_docker_s() {
        assert_eq!(parse_keys("ctrl-p,ctrl-q").unwrap(), [16, 17]);
        assert_eq!(parse_keys("ctrl-a,x").unwrap(), [1, b'x']);
        assert_eq!(parse_keys("ctrl-[").unwrap(), [27]);
        assert!(parse_keys("ctrl-").is_err());
        assert!(parse_keys("xy").is_err());
    }
}

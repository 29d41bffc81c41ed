//! The control channel between containr's processes: the host-side parent,
//! the container's init, and the command the init forks.
//!
//! A `socketpair(AF_UNIX, SOCK_STREAM)` carrying length-prefixed JSON
//! messages, optionally with one file descriptor attached (`SCM_RIGHTS`),
//! which is how the terminal's master side reaches the parent. Both ends are
//! close-on-exec, so the channel closes by itself when the command execs:
//! end-of-file is the success signal.

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use serde::{Deserialize, Serialize};

/// Messages exchanged over the channel.
#[derive(Debug, Serialize, Deserialize)]
pub enum Message {
    /// Parent to init: what to build and run.
    Run(Box<super::init::RunInit>),
    /// `containr-oci create` to its init: what to build.
    OciConfig(Box<super::oci::init::InitConfig>),
    /// OCI init to `create`: the namespaces exist, run the `prestart` and
    /// `createRuntime` hooks now.
    HooksDue,
    /// `create` to its init: the hooks ran, go on.
    HooksDone,
    /// `containr-oci exec` to the process it cloned: what to join and run.
    OciExec(Box<super::oci::exec::ExecConfig>),
    /// `containr exec` to the helper it cloned: what to join and run.
    Exec(Box<super::enter::ExecConfig>),
    /// That process to `exec`: the process that will exec is this host pid.
    ExecPid(u32),
    /// Init to parent: the terminal's master side is attached.
    Pty,
    /// Init to parent: the command is running; walkthrough steps continue
    /// from this number.
    Started { next_step: u64 },
    /// Command (before exec) to init: its walkthrough steps ended here.
    Steps { next_step: u64 },
    /// Parent to init, after `Run`, with `--userns-remap`: the bind
    /// mount `spec.mounts[index]`'s idmapped tree (the descriptor sent
    /// with it), its source a directory when `dir`.
    MountTree { index: usize, dir: bool },
    /// Any side: setting up failed; exit with `code`.
    Failed { code: i32, message: String },
}

/// Largest message accepted: a config with a huge environment still fits,
/// a corrupt length prefix does not make us allocate gigabytes.
const MAX_MESSAGE: usize = 64 << 20;

/// One end of the control channel.
#[derive(Debug)]
pub struct Channel {
    sock: OwnedFd,
}

impl Channel {
    /// A connected pair, both ends close-on-exec.
    pub fn pair() -> std::io::Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel { sock: a }, Channel { sock: b }))
    }

    /// Take over an inherited descriptor (the init's end, by number).
    ///
    /// # Safety
    /// `fd` must be an open socket owned by nobody else in this process.
    pub unsafe fn from_raw(fd: RawFd) -> Channel {
        // SAFETY: guaranteed by the caller.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        // Ours alone from now on: nothing we exec must inherit it.
        let _ = nix::fcntl::fcntl(
            sock.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
        Channel { sock }
    }

    pub fn send(&self, msg: &Message) -> std::io::Result<()> {
        self.send_with_fd(msg, None)
    }

    /// Send a message with a descriptor attached.
    pub fn send_with_fd(&self, msg: &Message, fd: Option<BorrowedFd<'_>>) -> std::io::Result<()> {
        let body = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
        let len = (body.len() as u32).to_le_bytes();
        let fds: Vec<RawFd> = fd.iter().map(|f| f.as_raw_fd()).collect();
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
        let iov = [IoSlice::new(&len), IoSlice::new(&body)];
        let sent = sendmsg::<()>(
            self.sock.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        // A stream socket may take only part of a large message; the rest
        // follows as plain bytes (the descriptor went with the first byte).
        let mut whole = Vec::with_capacity(len.len() + body.len());
        whole.extend_from_slice(&len);
        whole.extend_from_slice(&body);
        if sent < whole.len() {
            (&*self.as_file()).write_all(&whole[sent..])?;
        }
        Ok(())
    }

    /// Receive the next message and its descriptor, if any. `None` when the
    /// other side closed (or exec'd) without sending anything more.
    pub fn recv(&self) -> std::io::Result<Option<(Message, Option<OwnedFd>)>> {
        let mut len = [0u8; 4];
        let mut cmsg_space = nix::cmsg_space!([RawFd; 1]);
        let (got, fd) = {
            let mut iov = [IoSliceMut::new(&mut len)];
            let msg = recvmsg::<()>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg_space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )?;
            let mut fd = None;
            for c in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    for raw in fds {
                        // SAFETY: the kernel just installed this descriptor
                        // in our table for us; nobody else owns it.
                        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                        fd.get_or_insert(owned);
                    }
                }
            }
            (msg.bytes, fd)
        };
        if got == 0 {
            return Ok(None);
        }
        let mut file = self.as_file();
        file.read_exact(&mut len[got..])?;
        let size = u32::from_le_bytes(len) as usize;
        if size > MAX_MESSAGE {
            return Err(std::io::Error::other("control message too large"));
        }
        let mut body = vec![0u8; size];
        file.read_exact(&mut body)?;
        let msg = serde_json::from_slice(&body).map_err(std::io::Error::other)?;
        Ok(Some((msg, fd)))
    }

    fn as_file(&self) -> std::mem::ManuallyDrop<std::fs::File> {
        // SAFETY: the File is never dropped (ManuallyDrop), so the socket
        // stays owned by self.sock; it only borrows the descriptor for I/O.
        std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(self.sock.as_raw_fd()) })
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_descriptors_cross() {
        let (a, b) = Channel::pair().unwrap();
        // Larger than a socket buffer: the sender blocks until we read.
        let sender = std::thread::spawn(move || {
            let file = std::fs::File::open("/dev/null").unwrap();
            a.send_with_fd(&Message::Pty, Some(file.as_fd())).unwrap();
            a.send(&Message::Failed {
                code: 127,
                message: "x".repeat(300_000),
            })
            .unwrap();
        });
        let (m, fd) = b.recv().unwrap().unwrap();
        assert!(matches!(m, Message::Pty));
        assert!(fd.is_some());
        let (m, fd) = b.recv().unwrap().unwrap();
        assert!(
            matches!(m, Message::Failed { code: 127, ref message } if message.len() == 300_000)
        );
        assert!(fd.is_none());
        sender.join().unwrap();
        assert!(b.recv().unwrap().is_none());
    }
}

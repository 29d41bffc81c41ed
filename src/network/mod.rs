//! The container's network.
//!
//! For now a container gets its own network namespace with only the
//! loopback interface, brought up (`--network none`, docker's name for it).
//! This module also writes the `/etc/hosts` and `/etc/resolv.conf` the
//! container sees.

use std::str::FromStr;

use crate::step;

mod files;
pub use files::{hosts_file, resolv_conf};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown network mode {0:?} (supported: none)")]
    UnknownMode(String),
    #[error("network mode {0:?} is not supported yet (supported: none)")]
    Unsupported(String),
    #[error("bringing up the loopback interface failed: {0}")]
    Loopback(std::io::Error),
}

/// `--network`: how the container is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// A private network namespace with loopback only.
    None,
}

impl FromStr for Mode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "none" => Ok(Mode::None),
            "bridge" | "host" => Err(Error::Unsupported(s.to_string())),
            _ if s.starts_with("container:") => Err(Error::Unsupported(s.to_string())),
            _ => Err(Error::UnknownMode(s.to_string())),
        }
    }
}

impl Mode {
    /// Whether the container gets a network namespace of its own.
    pub fn new_namespace(self) -> bool {
        match self {
            Mode::None => true,
        }
    }
}

/// Set `IFF_UP` on `lo` in the current network namespace. A new network
/// namespace starts with loopback down, and programs expect 127.0.0.1.
///
/// An `ioctl(SIOCSIFFLAGS)` on any socket is the whole job; netlink comes
/// with the bridge network, which needs it for links and addresses.
pub fn loopback_up() -> Result<(), Error> {
    step!("ioctl(SIOCSIFFLAGS, lo, IFF_UP): bring up loopback in the new network namespace");
    // SAFETY: socket(2) has no memory-safety preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Error::Loopback(std::io::Error::last_os_error()));
    }
    // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&sock);
    // SAFETY: an all-zero ifreq is valid; the name fits with its NUL.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: req is a valid ifreq for SIOCGIFFLAGS/SIOCSIFFLAGS, which read
    // and write only within it.
    unsafe {
        if libc::ioctl(raw, libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(Error::Loopback(std::io::Error::last_os_error()));
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(raw, libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(Error::Loopback(std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modes() {
        assert_eq!("none".parse::<Mode>().unwrap(), Mode::None);
        assert!(matches!(
            "bridge".parse::<Mode>(),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!("wifi".parse::<Mode>(), Err(Error::UnknownMode(_))));
    }
}

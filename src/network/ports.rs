//! Published ports: `-p [IP:]HOSTPORT:CTRPORT[/tcp|udp]`, and the host-side
//! reservation that makes "port already in use" an error at start.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{FromRawFd, OwnedFd};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One `-p`: traffic to `host_ip:host_port` (any local address when
/// `host_ip` is 0.0.0.0) goes to the container's `ctr_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub ctr_port: u16,
    pub proto: Proto,
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.host_ip.is_unspecified() {
            write!(f, "{}:", self.host_ip)?;
        }
        write!(f, "{}:{}/{}", self.host_port, self.ctr_port, self.proto)
    }
}

impl FromStr for PortSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<PortSpec, String> {
        let (rest, proto) = match s.rsplit_once('/') {
            Some((r, "tcp")) => (r, Proto::Tcp),
            Some((r, "udp")) => (r, Proto::Udp),
            Some((_, p)) => return Err(format!("unknown protocol {p:?} (tcp or udp)")),
            None => (s, Proto::Tcp),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (host_ip, host_port, ctr_port) = match parts[..] {
            [h, c] => (Ipv4Addr::UNSPECIFIED, h, c),
            [ip, h, c] => (
                ip.parse()
                    .map_err(|_| format!("{ip:?} is not an IPv4 address"))?,
                h,
                c,
            ),
            _ => return Err("expected [IP:]HOSTPORT:CTRPORT[/tcp|udp]".into()),
        };
        Ok(PortSpec {
            host_ip,
            host_port: port(host_port)?,
            ctr_port: port(ctr_port)?,
            proto,
        })
    }
}

fn port(s: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{s:?} is not a port number (1-65535)"))
}

/// Bind the host side of `spec`, which fails if a host program or another
/// container already has the port. The socket (bound, never listening, so
/// it receives nothing) is then held for the container's lifetime: the
/// port stays reserved, as docker's proxy reserves it.
pub fn reserve(spec: &PortSpec) -> std::io::Result<OwnedFd> {
    let kind = match spec.proto {
        Proto::Tcp => libc::SOCK_STREAM,
        Proto::Udp => libc::SOCK_DGRAM,
    };
    // SAFETY: socket(2) has no memory-safety preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, kind | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let addr = nix::sys::socket::SockaddrIn::from(SocketAddrV4::new(spec.host_ip, spec.host_port));
    nix::sys::socket::bind(fd, &addr)?;
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_two_forms() {
        let p: PortSpec = "8080:80".parse().unwrap();
        assert_eq!(
            p,
            PortSpec {
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_port: 8080,
                ctr_port: 80,
                proto: Proto::Tcp
            }
        );
        let p: PortSpec = "127.0.0.1:5353:53/udp".parse().unwrap();
        assert_eq!(p.host_ip, Ipv4Addr::LOCALHOST);
        assert_eq!((p.host_port, p.ctr_port, p.proto), (5353, 53, Proto::Udp));
        assert_eq!(p.to_string(), "127.0.0.1:5353:53/udp");
        assert_eq!(
            "1:2/tcp".parse::<PortSpec>().unwrap().to_string(),
            "1:2/tcp"
        );
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "80",
            "",
            ":80",
            "8080:",
            "0:80",
            "65536:80",
            "8080:80/sctp",
            "a:80",
            "1.2.3:8080:80",
            "::1:8080:80",
            "1.2.3.4:5:6:7",
            "8080-8081:80",
        ] {
            assert!(bad.parse::<PortSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_reserved_port_cannot_be_reserved_twice() {
        let spec = PortSpec {
            host_ip: Ipv4Addr::LOCALHOST,
            host_port: 0,
            ctr_port: 1,
            proto: Proto::Tcp,
        };
        // Port 0 lets the kernel pick a free one; then try that one again.
        let first = reserve(&spec).unwrap();
        let bound: nix::sys::socket::SockaddrIn =
            nix::sys::socket::getsockname(std::os::fd::AsRawFd::as_raw_fd(&first)).unwrap();
        let again = PortSpec {
            host_port: bound.port(),
            ..spec
        };
        let err = reserve(&again).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        drop(first);
        reserve(&again).unwrap();
    }
}

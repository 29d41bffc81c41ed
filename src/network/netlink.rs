//! A small synchronous netlink client for the dozen requests containr makes:
//! links, addresses and routes over rtnetlink, and the nf_tables table
//! check and port map elements over nfnetlink.
//!
//! Built by hand on a blocking socket rather than with a crate:
//! - `rtnetlink` needs a tokio runtime, whose worker threads must not exist
//!   when the parent `clone`s the init (the child of a multi-threaded
//!   process may only run async-signal-safe code);
//! - `netlink-packet-route` (used synchronously in a first version) grew the
//!   binary from 1.2 to 2.2 MB, which the sealed memfd copy of containr pays
//!   on every run, in every network mode (about 1 ms), for eight fixed-layout
//!   messages; and nf_tables needed a hand-built encoder anyway.
//!
//! Each request is one message (or one nf_tables batch) and its answers up
//! to the acknowledgement or the end of the dump; reads time out, so a
//! kernel that never answers cannot hang a run.

use std::io;
use std::net::Ipv4Addr;

use netlink_sys::{Socket, SocketAddr};

use super::ipam::{HostRoute, Subnet};

/// Netlink constants (linux/netlink.h, rtnetlink.h, if_link.h,
/// nfnetlink.h, nf_tables.h).
mod c {
    pub const NETLINK_ROUTE: isize = 0;
    pub const NETLINK_NETFILTER: isize = 12;

    pub const NLM_F_REQUEST: u16 = 0x1;
    pub const NLM_F_ACK: u16 = 0x4;
    pub const NLM_F_DUMP: u16 = 0x300;
    pub const NLM_F_EXCL: u16 = 0x200;
    pub const NLM_F_CREATE: u16 = 0x400;
    pub const NLMSG_ERROR: u16 = 2;
    pub const NLMSG_DONE: u16 = 3;
    pub const NLA_F_NESTED: u16 = 0x8000;
    pub const NLA_TYPE_MASK: u16 = 0x3fff;

    pub const RTM_NEWLINK: u16 = 16;
    pub const RTM_DELLINK: u16 = 17;
    pub const RTM_GETLINK: u16 = 18;
    pub const RTM_SETLINK: u16 = 19;
    pub const RTM_NEWADDR: u16 = 20;
    pub const RTM_GETADDR: u16 = 22;
    pub const RTM_NEWROUTE: u16 = 24;
    pub const RTM_GETROUTE: u16 = 26;

    pub const IFLA_ADDRESS: u16 = 1;
    pub const IFLA_IFNAME: u16 = 3;
    pub const IFLA_MASTER: u16 = 10;
    pub const IFLA_LINKINFO: u16 = 18;
    pub const IFLA_NET_NS_PID: u16 = 19;
    pub const IFLA_INFO_KIND: u16 = 1;
    pub const IFLA_INFO_DATA: u16 = 2;
    pub const VETH_INFO_PEER: u16 = 1;
    pub const IFA_ADDRESS: u16 = 1;
    pub const IFA_LOCAL: u16 = 2;
    pub const IFA_BROADCAST: u16 = 4;
    pub const RTA_DST: u16 = 1;
    pub const RTA_OIF: u16 = 4;
    pub const RTA_GATEWAY: u16 = 5;
    pub const RTN_UNICAST: u8 = 1;
    pub const RT_TABLE_MAIN: u8 = 254;
    pub const RTPROT_BOOT: u8 = 3;
    pub const RT_SCOPE_UNIVERSE: u8 = 0;
    pub const AF_INET: u8 = 2;
    pub const IFF_UP: u32 = 1;

    pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
    pub const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
    pub const NFNL_MSG_BATCH_END: u16 = 0x11;
    pub const NFT_MSG_GETTABLE: u16 = 1;
    pub const NFT_MSG_NEWSETELEM: u16 = 12;
    pub const NFT_MSG_DELSETELEM: u16 = 14;
    pub const NFTA_TABLE_NAME: u16 = 1;
    pub const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
    pub const NFTA_SET_ELEM_LIST_SET: u16 = 2;
    pub const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
    pub const NFTA_LIST_ELEM: u16 = 1;
    pub const NFTA_SET_ELEM_KEY: u16 = 1;
    pub const NFTA_SET_ELEM_DATA: u16 = 2;
    pub const NFTA_DATA_VALUE: u16 = 1;
    pub const NFPROTO_IPV4: u8 = 2;
    pub const AF_UNSPEC: u8 = 0;
}

/// One netlink message being built: header, fixed family header, attributes.
struct Message {
    buf: Vec<u8>,
    /// nf_tables marks nested attributes (as libnftnl does); rtnetlink's
    /// link info predates the flag.
    nested_flag: u16,
}

impl Message {
    fn new(kind: u16, flags: u16, seq: u32, family_header: &[u8]) -> Message {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel's
        buf.extend_from_slice(family_header);
        Message {
            buf,
            nested_flag: 0,
        }
    }

    /// An nfnetlink message: `nfgenmsg` (family, version 0, resource id).
    fn nf(kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> Message {
        let res = res_id.to_be_bytes();
        let mut m = Message::new(kind, flags, seq, &[family, 0, res[0], res[1]]);
        m.nested_flag = c::NLA_F_NESTED;
        m
    }

    fn attr(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        self.buf
            .extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
        self
    }

    fn attr_str(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut v = value.as_bytes().to_vec();
        v.push(0);
        self.attr(kind, &v)
    }

    fn attr_u32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.attr(kind, &value.to_ne_bytes())
    }

    /// A nested attribute whose contents `inner` writes.
    fn nest(&mut self, kind: u16, inner: impl FnOnce(&mut Self)) -> &mut Self {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | self.nested_flag).to_ne_bytes());
        inner(self);
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// Raw bytes inside a nested attribute (a peer's `ifinfomsg`).
    fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.pad();
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// `struct ifinfomsg`: family, type, index, flags, change mask.
fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// `struct ifaddrmsg`: family, prefix length, flags, scope, index.
fn ifaddrmsg(prefix: u8, index: u32) -> [u8; 8] {
    let mut h = [c::AF_INET, prefix, 0, 0, 0, 0, 0, 0];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h
}

/// The attributes in `buf`: (type without flags, value).
fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & c::NLA_TYPE_MASK;
        if len < 4 || len > buf.len() {
            return None;
        }
        let value = &buf[4..len];
        buf = &buf[((len + 3) & !3).min(buf.len())..];
        Some((kind, value))
    })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_ne_bytes(s.try_into().expect("4 bytes")))
}

fn ipv4(value: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(value).ok().map(Ipv4Addr::from)
}

fn open(protocol: isize) -> io::Result<Socket> {
    let mut sock = Socket::new(protocol)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    nix::sys::socket::setsockopt(
        &sock,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(5, 0),
    )?;
    Ok(sock)
}

/// Send `msg` and collect the answers to sequence numbers from `first_seq`
/// on, as (type, payload after the netlink header), until `acks`
/// acknowledgements or the end of a dump. An error answer is the error.
fn exchange(
    sock: &Socket,
    msg: &[u8],
    first_seq: u32,
    acks: usize,
) -> io::Result<Vec<(u16, Vec<u8>)>> {
    sock.send(msg, 0)?;
    let mut answers = Vec::new();
    let mut got = 0;
    let mut buf = Vec::with_capacity(64 * 1024);
    // Bounded: a dump of a host's routes fits in far fewer datagrams.
    for _ in 0..10_000 {
        buf.clear();
        let n = sock.recv(&mut buf, 0)?;
        let mut off = 0;
        while off + 16 <= n {
            let len = u32_at(&buf, off) as usize;
            if len < 16 || off + len > n {
                break;
            }
            let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
            let seq = u32_at(&buf, off + 8);
            let payload = &buf[off + 16..off + len];
            off += (len + 3) & !3;
            if seq < first_seq {
                continue;
            }
            match kind {
                c::NLMSG_DONE => return Ok(answers),
                c::NLMSG_ERROR => {
                    let code = u32_at(payload, 0) as i32;
                    if code != 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    got += 1;
                    if got == acks {
                        return Ok(answers);
                    }
                }
                _ => answers.push((kind, payload.to_vec())),
            }
        }
    }
    Err(io::Error::other("netlink: no end to the answer"))
}

/// A route-netlink socket in the caller's network namespace.
pub struct Netlink {
    sock: Socket,
    seq: u32,
}

/// What we know about a link.
pub struct Link {
    pub index: u32,
    /// `IFLA_INFO_KIND`: "bridge", "veth"...
    pub kind: Option<String>,
    pub up: bool,
}

impl Link {
    /// From an `RTM_NEWLINK` payload.
    fn parse(payload: &[u8]) -> Option<(Link, Option<String>)> {
        let index = u32_at(payload, 4);
        let flags = u32_at(payload, 8);
        let mut name = None;
        let mut kind = None;
        for (t, v) in attrs(payload.get(16..)?) {
            match t {
                c::IFLA_IFNAME => name = Some(cstr(v)),
                c::IFLA_LINKINFO => {
                    kind = attrs(v)
                        .find(|(t, _)| *t == c::IFLA_INFO_KIND)
                        .map(|(_, k)| cstr(k))
                }
                _ => {}
            }
        }
        let up = flags & c::IFF_UP != 0;
        Some((Link { index, kind, up }, name))
    }
}

fn cstr(v: &[u8]) -> String {
    String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or_default()).into_owned()
}

impl Netlink {
    pub fn open() -> io::Result<Netlink> {
        Ok(Netlink {
            sock: open(c::NETLINK_ROUTE)?,
            seq: 0,
        })
    }

    /// One request with `header` and attributes written by `attrs`.
    fn request(
        &mut self,
        kind: u16,
        flags: u16,
        header: &[u8],
        attrs: impl FnOnce(&mut Message),
    ) -> io::Result<Vec<(u16, Vec<u8>)>> {
        self.seq += 1;
        let mut msg = Message::new(
            kind,
            c::NLM_F_REQUEST | c::NLM_F_ACK | flags,
            self.seq,
            header,
        );
        attrs(&mut msg);
        exchange(&self.sock, &msg.finish(), self.seq, 1)
    }

    /// The link called `name`, if there is one.
    pub fn link(&mut self, name: &str) -> io::Result<Option<Link>> {
        let answers = match self.request(c::RTM_GETLINK, 0, &ifinfomsg(0, 0, 0), |m| {
            m.attr_str(c::IFLA_IFNAME, name);
        }) {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(None),
            other => other?,
        };
        Ok(answers
            .iter()
            .filter(|(t, _)| *t == c::RTM_NEWLINK)
            .find_map(|(_, p)| Link::parse(p))
            .map(|(l, _)| l))
    }

    /// Create a bridge, down; returns its index.
    pub fn create_bridge(&mut self, name: &str) -> io::Result<u32> {
        self.request(
            c::RTM_NEWLINK,
            c::NLM_F_CREATE | c::NLM_F_EXCL,
            &ifinfomsg(0, 0, 0),
            |m| {
                m.attr_str(c::IFLA_IFNAME, name)
                    .nest(c::IFLA_LINKINFO, |m| {
                        m.attr_str(c::IFLA_INFO_KIND, "bridge");
                    });
            },
        )?;
        self.link(name)?
            .map(|l| l.index)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
    }

    /// A veth pair: `host` on this side, enslaved to `master` and up; its
    /// peer created directly in the network namespace of process `pid`,
    /// named `peer` there (so the name cannot clash with the host's).
    /// A veth pair: `host` on the bridge `master`, up; `peer`, with the
    /// hardware address `peer_mac`, in the network namespace of `pid`.
    pub fn create_veth(
        &mut self,
        host: &str,
        master: u32,
        (peer, peer_mac): (&str, [u8; 6]),
        pid: u32,
    ) -> io::Result<()> {
        self.request(
            c::RTM_NEWLINK,
            c::NLM_F_CREATE | c::NLM_F_EXCL,
            &ifinfomsg(0, c::IFF_UP, c::IFF_UP),
            |m| {
                m.attr_str(c::IFLA_IFNAME, host)
                    .attr_u32(c::IFLA_MASTER, master)
                    .nest(c::IFLA_LINKINFO, |m| {
                        m.attr_str(c::IFLA_INFO_KIND, "veth")
                            .nest(c::IFLA_INFO_DATA, |m| {
                                m.nest(c::VETH_INFO_PEER, |m| {
                                    m.raw(&ifinfomsg(0, 0, 0))
                                        .attr_str(c::IFLA_IFNAME, peer)
                                        .attr(c::IFLA_ADDRESS, &peer_mac)
                                        .attr_u32(c::IFLA_NET_NS_PID, pid);
                                });
                            });
                    });
            },
        )
        .map(drop)
    }

    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        self.request(
            c::RTM_SETLINK,
            0,
            &ifinfomsg(index, c::IFF_UP, c::IFF_UP),
            |_| {},
        )
        .map(drop)
    }

    /// Delete the link called `name`; true if it existed.
    pub fn delete_link(&mut self, name: &str) -> io::Result<bool> {
        match self.request(c::RTM_DELLINK, 0, &ifinfomsg(0, 0, 0), |m| {
            m.attr_str(c::IFLA_IFNAME, name);
        }) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Give link `index` the address `ip/prefix` (with its broadcast).
    pub fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let broadcast = Subnet::containing(ip, prefix).broadcast();
        self.request(
            c::RTM_NEWADDR,
            c::NLM_F_CREATE | c::NLM_F_EXCL,
            &ifaddrmsg(prefix, index),
            |m| {
                m.attr(c::IFA_LOCAL, &ip.octets())
                    .attr(c::IFA_ADDRESS, &ip.octets())
                    .attr(c::IFA_BROADCAST, &broadcast.octets());
            },
        )
        .map(drop)
    }

    /// The IPv4 addresses of link `index`, with their prefix lengths.
    pub fn addresses(&mut self, index: u32) -> io::Result<Vec<(Ipv4Addr, u8)>> {
        let answers = self.request(c::RTM_GETADDR, c::NLM_F_DUMP, &ifaddrmsg(0, 0), |_| {})?;
        Ok(answers
            .iter()
            .filter(|(t, p)| *t == c::RTM_NEWADDR && u32_at(p, 4) == index)
            .filter_map(|(_, p)| {
                let ip = attrs(p.get(8..)?)
                    .find(|(t, _)| *t == c::IFA_LOCAL)
                    .and_then(|(_, v)| ipv4(v))?;
                Some((ip, p[1]))
            })
            .collect())
    }

    /// The host's IPv4 unicast routes, in every table.
    pub fn routes(&mut self) -> io::Result<Vec<HostRoute>> {
        let mut rtmsg = [0u8; 12];
        rtmsg[0] = c::AF_INET;
        let answers = self.request(c::RTM_GETROUTE, c::NLM_F_DUMP, &rtmsg, |_| {})?;
        let links = self.request(c::RTM_GETLINK, c::NLM_F_DUMP, &ifinfomsg(0, 0, 0), |_| {})?;
        let names: Vec<(u32, String)> = links
            .iter()
            .filter_map(|(_, p)| Link::parse(p))
            .filter_map(|(l, n)| Some((l.index, n?)))
            .collect();
        Ok(answers
            .iter()
            .filter(|(t, p)| *t == c::RTM_NEWROUTE && p.len() >= 12 && p[7] == c::RTN_UNICAST)
            .map(|(_, p)| {
                let mut dst = Ipv4Addr::UNSPECIFIED;
                let mut oif = 0;
                for (t, v) in attrs(&p[12..]) {
                    match t {
                        c::RTA_DST => dst = ipv4(v).unwrap_or(dst),
                        c::RTA_OIF => oif = u32_at(v, 0),
                        _ => {}
                    }
                }
                let dev = names
                    .iter()
                    .find(|(i, _)| *i == oif)
                    .map_or_else(|| format!("#{oif}"), |(_, n)| n.clone());
                HostRoute {
                    dst: Subnet::containing(dst, p[1]),
                    oif,
                    dev,
                }
            })
            .collect())
    }

    /// `default via gateway`, in the main table.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> io::Result<()> {
        let rtmsg = [
            c::AF_INET,
            0, // destination prefix length: default
            0,
            0,
            c::RT_TABLE_MAIN,
            c::RTPROT_BOOT,
            c::RT_SCOPE_UNIVERSE,
            c::RTN_UNICAST,
            0,
            0,
            0,
            0,
        ];
        self.request(
            c::RTM_NEWROUTE,
            c::NLM_F_CREATE | c::NLM_F_EXCL,
            &rtmsg,
            |m| {
                m.attr(c::RTA_GATEWAY, &gateway.octets());
            },
        )
        .map(drop)
    }
}

/// Whether nftables has the table `ip NAME`: one `NFT_MSG_GETTABLE`, which
/// costs microseconds where running `nft` costs milliseconds.
pub fn nft_table_exists(name: &str) -> io::Result<bool> {
    let mut msg = Message::nf(
        c::NFNL_SUBSYS_NFTABLES << 8 | c::NFT_MSG_GETTABLE,
        c::NLM_F_REQUEST | c::NLM_F_ACK,
        1,
        c::NFPROTO_IPV4,
        0,
    );
    msg.attr_str(c::NFTA_TABLE_NAME, name);
    match exchange(&open(c::NETLINK_NETFILTER)?, &msg.finish(), 1, 1) {
        Ok(answers) => Ok(answers
            .iter()
            .any(|(t, _)| t >> 8 == c::NFNL_SUBSYS_NFTABLES)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// One element of an nftables map: its key and, to add it, its value, as
/// the kernel stores them (see `nft::port_elements`).
pub struct SetElement<'a> {
    pub set: &'a str,
    pub key: &'a [u8],
    pub data: &'a [u8],
}

/// Add `elems` to maps of table `ip TABLE`, in one transaction (a batch):
/// all of them or, on any error, none.
pub fn nft_add_elements(table: &str, elems: &[SetElement<'_>]) -> io::Result<()> {
    nft_batch(table, elems, true)
}

/// Delete one element (its key) from a map of table `ip TABLE`.
pub fn nft_delete_element(table: &str, elem: &SetElement<'_>) -> io::Result<()> {
    nft_batch(table, std::slice::from_ref(elem), false)
}

fn nft_batch(table: &str, elems: &[SetElement<'_>], add: bool) -> io::Result<()> {
    let subsys = c::NFNL_SUBSYS_NFTABLES;
    let mut batch = Message::nf(
        c::NFNL_MSG_BATCH_BEGIN,
        c::NLM_F_REQUEST,
        1,
        c::AF_UNSPEC,
        subsys,
    )
    .finish();
    let (kind, flags) = if add {
        (c::NFT_MSG_NEWSETELEM, c::NLM_F_CREATE | c::NLM_F_EXCL)
    } else {
        (c::NFT_MSG_DELSETELEM, 0)
    };
    for (i, e) in elems.iter().enumerate() {
        let mut msg = Message::nf(
            subsys << 8 | kind,
            c::NLM_F_REQUEST | c::NLM_F_ACK | flags,
            2 + i as u32,
            c::NFPROTO_IPV4,
            0,
        );
        msg.attr_str(c::NFTA_SET_ELEM_LIST_TABLE, table)
            .attr_str(c::NFTA_SET_ELEM_LIST_SET, e.set)
            .nest(c::NFTA_SET_ELEM_LIST_ELEMENTS, |m| {
                m.nest(c::NFTA_LIST_ELEM, |m| {
                    m.nest(c::NFTA_SET_ELEM_KEY, |m| {
                        m.attr(c::NFTA_DATA_VALUE, e.key);
                    });
                    if add {
                        m.nest(c::NFTA_SET_ELEM_DATA, |m| {
                            m.attr(c::NFTA_DATA_VALUE, e.data);
                        });
                    }
                });
            });
        batch.extend_from_slice(&msg.finish());
    }
    let end = Message::nf(
        c::NFNL_MSG_BATCH_END,
        c::NLM_F_REQUEST,
        2 + elems.len() as u32,
        c::AF_UNSPEC,
        subsys,
    );
    batch.extend_from_slice(&end.finish());
    exchange(&open(c::NETLINK_NETFILTER)?, &batch, 1, elems.len()).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_laid_out_as_the_kernel_reads_them() {
        let mut m = Message::new(c::RTM_GETLINK, c::NLM_F_REQUEST, 7, &ifinfomsg(3, 1, 1));
        m.attr_str(c::IFLA_IFNAME, "eth0")
            .nest(c::IFLA_LINKINFO, |m| {
                m.attr_str(c::IFLA_INFO_KIND, "veth");
            });
        let b = m.finish();
        assert_eq!(u32_at(&b, 0) as usize, b.len());
        assert_eq!(b.len() % 4, 0);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), c::RTM_GETLINK);
        assert_eq!(u32_at(&b, 8), 7);
        assert_eq!(u32_at(&b, 16 + 4), 3, "ifinfomsg index");
        let got: Vec<(u16, Vec<u8>)> = attrs(&b[32..]).map(|(t, v)| (t, v.to_vec())).collect();
        assert_eq!(got[0], (c::IFLA_IFNAME, b"eth0\0".to_vec()));
        assert_eq!(got[1].0, c::IFLA_LINKINFO);
        let inner: Vec<(u16, Vec<u8>)> = attrs(&got[1].1).map(|(t, v)| (t, v.to_vec())).collect();
        assert_eq!(inner, [(c::IFLA_INFO_KIND, b"veth\0".to_vec())]);
    }

    #[test]
    fn nf_nests_carry_the_flag_and_attrs_strip_it() {
        let mut m = Message::nf(1, 0, 1, c::NFPROTO_IPV4, 10);
        m.nest(3, |m| {
            m.attr(1, &[1, 2, 3]);
        });
        let b = m.finish();
        assert_eq!(&b[16..20], &[c::NFPROTO_IPV4, 0, 0, 10]);
        assert_eq!(u16::from_ne_bytes([b[22], b[23]]), 3 | c::NLA_F_NESTED);
        let (t, v) = attrs(&b[20..]).next().unwrap();
        assert_eq!(t, 3);
        assert_eq!(attrs(v).next().unwrap(), (1, &[1u8, 2, 3][..]));
    }

    #[test]
    fn truncated_attributes_end_the_walk() {
        assert_eq!(attrs(&[8, 0, 1, 0, 1]).count(), 0);
        assert_eq!(attrs(&[]).count(), 0);
    }
}

//! A small synchronous rtnetlink client: the few link, address and route
//! requests containr makes, built with `netlink-packet-route` and sent over
//! a blocking `netlink-sys` socket.
//!
//! Synchronous on purpose: `rtnetlink` needs a tokio runtime, whose worker
//! threads must not exist when the parent `clone`s the init (the child of a
//! multi-threaded process may only run async-signal-safe code, and a
//! runtime is dead weight in the init); and every request here is one
//! message and its acknowledgement.

use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use super::ipam::{HostRoute, Subnet};

/// A route-netlink socket in the caller's network namespace.
pub struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// What we know about a link.
pub struct Link {
    pub index: u32,
    pub kind: Option<InfoKind>,
    pub up: bool,
}

impl Netlink {
    pub fn open() -> io::Result<Netlink> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink {
            sock,
            seq: 0,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Send one request and collect the answers until its acknowledgement
    /// (or, for a dump, its end). A negative acknowledgement is the error.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        self.sock.send(&out, 0)?;

        let mut answers = Vec::new();
        // Bounded: a dump of a host's routes fits in far fewer datagrams.
        for _ in 0..10_000 {
            self.buf.clear();
            let n = self.sock.recv(&mut self.buf, 0)?;
            let mut off = 0;
            while off < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(io::Error::other)?;
                let len = msg.header.length as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                if msg.header.sequence_number != self.seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                            None => Ok(answers),
                        };
                    }
                    NetlinkPayload::InnerMessage(m) => answers.push(m),
                    _ => {}
                }
            }
        }
        Err(io::Error::other("netlink: no end to the answer"))
    }

    /// The link called `name`, if there is one.
    pub fn link(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        let answers = match self.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(None),
            other => other?,
        };
        Ok(answers.into_iter().find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(Link {
                index: l.header.index,
                up: l.header.flags.contains(LinkFlags::Up),
                kind: l.attributes.iter().find_map(|a| match a {
                    LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                        LinkInfo::Kind(k) => Some(k.clone()),
                        _ => None,
                    }),
                    _ => None,
                }),
            }),
            _ => None,
        }))
    }

    /// Create a bridge, down; returns its index.
    pub fn create_bridge(&mut self, name: &str) -> io::Result<u32> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)?;
        self.link(name)?
            .map(|l| l.index)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
    }

    /// A veth pair: `host` on this side, enslaved to `master` and up; its
    /// peer created directly in the network namespace of process `pid`,
    /// named `peer` there (so the name cannot clash with the host's).
    pub fn create_veth(&mut self, host: &str, master: u32, peer: &str, pid: u32) -> io::Result<()> {
        let mut peer_msg = LinkMessage::default();
        peer_msg.attributes.push(LinkAttribute::IfName(peer.into()));
        peer_msg.attributes.push(LinkAttribute::NetNsPid(pid));
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(host.into()));
        msg.attributes.push(LinkAttribute::Controller(master));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }

    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(msg), 0).map(drop)
    }

    /// Delete the link called `name`; true if it existed.
    pub fn delete_link(&mut self, name: &str) -> io::Result<bool> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        match self.request(RouteNetlinkMessage::DelLink(msg), 0) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Give link `index` the address `ip/prefix` (with its broadcast).
    pub fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(ip.into()));
        msg.attributes.push(AddressAttribute::Address(ip.into()));
        msg.attributes.push(AddressAttribute::Broadcast(
            Subnet::containing(ip, prefix).broadcast(),
        ));
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// The IPv4 addresses of link `index`, with their prefix lengths.
    pub fn addresses(&mut self, index: u32) -> io::Result<Vec<(Ipv4Addr, u8)>> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        let answers = self.request(RouteNetlinkMessage::GetAddress(msg), NLM_F_DUMP)?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => {
                    a.attributes.iter().find_map(|at| match at {
                        AddressAttribute::Local(std::net::IpAddr::V4(ip)) => {
                            Some((*ip, a.header.prefix_len))
                        }
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// The host's IPv4 unicast routes, in every table.
    pub fn routes(&mut self) -> io::Result<Vec<HostRoute>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        let answers = self.request(RouteNetlinkMessage::GetRoute(msg), NLM_F_DUMP)?;
        let names = self.link_names()?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) if r.header.kind == RouteType::Unicast => {
                    let mut dst = Ipv4Addr::UNSPECIFIED;
                    let mut oif = 0;
                    for a in &r.attributes {
                        match a {
                            RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = *ip,
                            RouteAttribute::Oif(i) => oif = *i,
                            _ => {}
                        }
                    }
                    let dev = names
                        .iter()
                        .find(|(i, _)| *i == oif)
                        .map_or_else(|| format!("#{oif}"), |(_, n)| n.clone());
                    Some(HostRoute {
                        dst: Subnet::containing(dst, r.header.destination_prefix_length),
                        oif,
                        dev,
                    })
                }
                _ => None,
            })
            .collect())
    }

    fn link_names(&mut self) -> io::Result<Vec<(u32, String)>> {
        let answers = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => l.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some((l.header.index, n.clone())),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    /// `default via gateway`, in the main table.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> io::Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }
}

/// nf_tables over nfnetlink, by hand: the few fixed-layout messages
/// containr sends (is the table there; add or delete a port map element)
/// cost microseconds, where running `nft` costs milliseconds. Creating the
/// table, done once, stays with `nft` and its readable script.
mod nf {
    pub const NETLINK_NETFILTER: isize = 12;
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
    pub const NLA_F_NESTED: u16 = 0x8000;
    pub const NLMSG_ERROR: u16 = 2;
    pub const NFPROTO_IPV4: u8 = 2;
    pub const AF_UNSPEC: u8 = 0;
}

/// Builds netlink messages with an `nfgenmsg` header and attributes.
struct NfMessage {
    buf: Vec<u8>,
}

impl NfMessage {
    fn new(kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> NfMessage {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel's
        buf.extend_from_slice(&[family, 0]); // nfgenmsg: family, version
        buf.extend_from_slice(&res_id.to_be_bytes());
        NfMessage { buf }
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

    /// A nested attribute whose contents `inner` writes.
    fn nest(&mut self, kind: u16, inner: impl FnOnce(&mut Self)) -> &mut Self {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | nf::NLA_F_NESTED).to_ne_bytes());
        inner(self);
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
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

/// Send `msg` on a fresh nfnetlink socket and read answers until `acks`
/// acknowledgements arrived; the first error answer is the error. `seen`
/// is told of every other message's type.
fn nf_exchange(msg: &[u8], acks: usize, mut seen: impl FnMut(u16)) -> io::Result<()> {
    let mut sock = Socket::new(nf::NETLINK_NETFILTER)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    // Bounded: a kernel that never answers must not hang a run.
    nix::sys::socket::setsockopt(
        &sock,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(5, 0),
    )?;
    sock.send(msg, 0)?;
    let mut got = 0;
    let mut buf = Vec::with_capacity(16 * 1024);
    while got < acks {
        buf.clear();
        let n = sock.recv(&mut buf, 0)?;
        let mut off = 0;
        while off + 16 <= n {
            let word = |at: usize| u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
            let len = word(off) as usize;
            let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
            if len < 16 {
                break;
            }
            if kind == nf::NLMSG_ERROR && off + 20 <= n {
                let code = word(off + 16) as i32;
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
                got += 1;
            } else {
                seen(kind);
            }
            off += (len + 3) & !3;
        }
    }
    Ok(())
}

/// Whether nftables has the table `ip NAME`: one `NFT_MSG_GETTABLE`.
pub fn nft_table_exists(name: &str) -> io::Result<bool> {
    let mut msg = NfMessage::new(
        nf::NFNL_SUBSYS_NFTABLES << 8 | nf::NFT_MSG_GETTABLE,
        NLM_F_REQUEST | NLM_F_ACK,
        1,
        nf::NFPROTO_IPV4,
        0,
    );
    msg.attr_str(nf::NFTA_TABLE_NAME, name);
    let mut found = false;
    match nf_exchange(&msg.finish(), 1, |kind| {
        found |= kind >> 8 == nf::NFNL_SUBSYS_NFTABLES
    }) {
        Ok(()) => Ok(found),
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
    let subsys = nf::NFNL_SUBSYS_NFTABLES;
    let mut batch = NfMessage::new(
        nf::NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        1,
        nf::AF_UNSPEC,
        subsys,
    )
    .finish();
    for (i, e) in elems.iter().enumerate() {
        let (kind, flags) = if add {
            (nf::NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL)
        } else {
            (nf::NFT_MSG_DELSETELEM, 0)
        };
        let mut msg = NfMessage::new(
            subsys << 8 | kind,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            2 + i as u32,
            nf::NFPROTO_IPV4,
            0,
        );
        msg.attr_str(nf::NFTA_SET_ELEM_LIST_TABLE, table)
            .attr_str(nf::NFTA_SET_ELEM_LIST_SET, e.set)
            .nest(nf::NFTA_SET_ELEM_LIST_ELEMENTS, |m| {
                m.nest(nf::NFTA_LIST_ELEM, |m| {
                    m.nest(nf::NFTA_SET_ELEM_KEY, |m| {
                        m.attr(nf::NFTA_DATA_VALUE, e.key);
                    });
                    if add {
                        m.nest(nf::NFTA_SET_ELEM_DATA, |m| {
                            m.attr(nf::NFTA_DATA_VALUE, e.data);
                        });
                    }
                });
            });
        batch.extend_from_slice(&msg.finish());
    }
    let end = NfMessage::new(
        nf::NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        2 + elems.len() as u32,
        nf::AF_UNSPEC,
        subsys,
    );
    batch.extend_from_slice(&end.finish());
    nf_exchange(&batch, elems.len(), |_| {})
}

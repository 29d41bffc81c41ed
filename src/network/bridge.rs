//! `--network bridge`: the host side of a container's network.
//!
//! The bridge and its nftables table are made on first use and stay for the
//! next container; each container gets an address lease, a veth pair (host
//! end on the bridge, peer as `eth0` in the container) and its published
//! ports' DNAT elements. When it ends, the lease and the elements are
//! removed ([`Attachment`]'s `Drop`) and the kernel deletes the veth pair
//! with its network namespace; if its `containr run` was killed, the next
//! run or `network prune` reclaims them.
//!
//! Order matters for "nothing half-made": what can fail on bad input (a
//! port in use, a missing `nft`, a clashing subnet) is checked before
//! anything is created, and what is created is undone on any later failure.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use super::ipam::{self, Lease, LeaseFile, Subnet};
use super::netlink::{self, Netlink};
use super::ports::{self, PortSpec};
use super::{Error, Interface, nft};
use crate::step;
use crate::util::{process_alive, process_start_time};

/// Default bridge name.
pub const DEFAULT_BRIDGE: &str = "containr0";

/// The container's end of the veth pair, inside its namespace.
const PEER_NAME: &str = "eth0";

/// A bridge name containr may manage: it also names the nftables table, so
/// it must say "containr" to keep containr away from anything else's.
pub fn validate_bridge_name(name: &str) -> Result<(), Error> {
    let ok = name.starts_with("containr")
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::BadBridgeName(name.to_string()))
    }
}

/// The host end of a container's veth: `ctr` and 12 hex digits of its id
/// (15 characters, the kernel's limit).
fn veth_name(id: &str) -> String {
    format!("ctr{}", &id[..12])
}

fn netlink_err(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Netlink { what, source }
}

fn lease_err(source: std::io::Error) -> Error {
    Error::Leases {
        path: PathBuf::from(ipam::STATE_DIR),
        source,
    }
}

/// What one container asks of the bridge network.
pub struct Request<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub bridge: &'a str,
    pub subnet: Option<Subnet>,
    pub ports: &'a [PortSpec],
}

/// A container's place on the bridge; released when dropped.
pub struct Attachment {
    bridge: String,
    bridge_index: u32,
    subnet: Subnet,
    ip: Ipv4Addr,
    id: String,
    veth: String,
    ports: Vec<PortSpec>,
    /// Bound host sockets that keep the published ports reserved.
    _reserved: Vec<OwnedFd>,
}

/// Reserve ports, make sure the bridge and NAT table exist, and lease an
/// address; the veth comes once the container's namespace exists
/// ([`Attachment::plug`]).
pub fn attach(req: &Request<'_>) -> Result<Attachment, Error> {
    let mut reserved = Vec::new();
    for p in req.ports {
        step!(
            "bind({}:{}/{}) on the host: the published port is free, and stays reserved",
            p.host_ip,
            p.host_port,
            p.proto
        );
        reserved.push(ports::reserve(p).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AddrInUse {
                Error::PortInUse { spec: *p }
            } else {
                Error::PortBind { spec: *p, source }
            }
        })?);
    }

    let dir = Path::new(ipam::STATE_DIR);
    step!(
        "flock({}/{}.json): leases of bridge {} are ours until the address is recorded",
        dir.display(),
        req.bridge,
        req.bridge
    );
    let mut leases = LeaseFile::lock(dir, req.bridge).map_err(lease_err)?;
    let mut nl = Netlink::open().map_err(netlink_err("opening a netlink socket"))?;
    reclaim(&mut leases, &mut nl, req.bridge)?;

    step!(
        "NFT_MSG_GETTABLE ip {}: does containr's NAT table exist?",
        req.bridge
    );
    let has_table = netlink::nft_table_exists(req.bridge)
        .map_err(netlink_err("looking up the nftables table"))?;
    // Found before anything is made, so a missing nft leaves nothing behind.
    let nft = if has_table { None } else { Some(nft::find()?) };

    let (bridge_index, subnet, created) = ensure_bridge(&mut nl, req.bridge, req.subnet)?;
    let mut table_made = false;
    let mut rest = || {
        enable_forwarding()?;
        if !has_table {
            let nft = nft.as_ref().expect("found above");
            step!(
                "nft -f -: table ip {} (masquerade {subnet}, DNAT maps for published ports)",
                req.bridge
            );
            nft::apply(nft, &nft::table_script(req.bridge, &subnet))?;
            table_made = true;
        }
        let ip = leases
            .leases
            .address_for(req.id, &subnet)
            .ok_or(Error::Exhausted(subnet))?;
        step!("lease {ip} for container {}", req.name);
        leases.leases.leases.push(Lease {
            ip,
            id: req.id.to_string(),
            name: req.name.to_string(),
            veth: veth_name(req.id),
            owner_pid: std::process::id(),
            owner_start: process_start_time(std::process::id()).unwrap_or(0),
            ports: req.ports.to_vec(),
            subnet: Some(subnet),
        });
        leases.save().map_err(lease_err)?;
        let elements = nft::port_elements(req.ports, ip);
        if !elements.is_empty() {
            let texts: Vec<&str> = elements.iter().map(|e| e.text.as_str()).collect();
            step!(
                "NFT_MSG_NEWSETELEM ip {}: {} (one transaction)",
                req.bridge,
                texts.join(", ")
            );
            let batch: Vec<_> = elements.iter().map(|e| e.as_set_element()).collect();
            if let Err(source) = netlink::nft_add_elements(req.bridge, &batch) {
                leases.leases.release(req.id);
                let _ = leases.save();
                return Err(Error::Netlink {
                    what: "publishing the ports",
                    source,
                });
            }
        }
        Ok(ip)
    };
    let ip = match rest() {
        Ok(ip) => ip,
        Err(e) => {
            // What this run made for a first container that never started
            // goes too; what was there before stays.
            if created {
                let _ = nl.delete_link(req.bridge);
                if table_made && let Some(nft) = &nft {
                    let _ = nft::apply(nft, &format!("delete table ip {}\n", req.bridge));
                }
            }
            return Err(e);
        }
    };
    Ok(Attachment {
        bridge: req.bridge.to_string(),
        bridge_index,
        subnet,
        ip,
        id: req.id.to_string(),
        veth: veth_name(req.id),
        ports: req.ports.to_vec(),
        _reserved: reserved,
    })
}

/// The bridge's index and subnet, creating and addressing it if needed;
/// true when this call created it.
fn ensure_bridge(
    nl: &mut Netlink,
    name: &str,
    wanted: Option<Subnet>,
) -> Result<(u32, Subnet, bool), Error> {
    if let Some(link) = nl
        .link(name)
        .map_err(netlink_err("looking up the bridge"))?
    {
        if link.kind.as_deref() != Some("bridge") {
            return Err(Error::NotABridge(name.to_string()));
        }
        let addrs = nl
            .addresses(link.index)
            .map_err(netlink_err("reading the bridge's address"))?;
        if let Some((ip, prefix)) = addrs.first() {
            let subnet = Subnet::containing(*ip, *prefix);
            if let Some(w) = wanted.filter(|w| *w != subnet) {
                return Err(Error::BridgeSubnetMismatch {
                    bridge: name.to_string(),
                    existing: subnet,
                    wanted: w,
                });
            }
            if !link.up {
                step!("RTM_SETLINK {name} up: someone brought the bridge down");
                nl.set_up(link.index)
                    .map_err(netlink_err("bringing the bridge up"))?;
            }
            return Ok((link.index, subnet, false));
        }
        // A bridge without an address: a run died while making it.
        let subnet = pick_subnet(nl, wanted, Some(link.index))?;
        configure_bridge(nl, name, link.index, &subnet)?;
        return Ok((link.index, subnet, false));
    }
    let subnet = pick_subnet(nl, wanted, None)?;
    step!(
        "RTM_NEWLINK {name} (bridge), RTM_NEWADDR {}/{}, up",
        subnet.gateway(),
        subnet.prefix
    );
    let index = nl
        .create_bridge(name)
        .map_err(netlink_err("creating the bridge"))?;
    if let Err(e) = configure_bridge(nl, name, index, &subnet) {
        let _ = nl.delete_link(name);
        return Err(e);
    }
    Ok((index, subnet, true))
}

/// The user's subnet if no host route clashes with it; else the first
/// default candidate that no route clashes with.
fn pick_subnet(
    nl: &mut Netlink,
    wanted: Option<Subnet>,
    own: Option<u32>,
) -> Result<Subnet, Error> {
    let routes = nl
        .routes()
        .map_err(netlink_err("reading the host's routes"))?;
    match wanted {
        Some(s) => match ipam::clash(&s, &routes, own) {
            Some(r) => Err(Error::SubnetClash {
                subnet: s,
                route: r.dst,
                dev: r.dev.clone(),
            }),
            None => Ok(s),
        },
        None => ipam::default_candidates()
            .find(|s| ipam::clash(s, &routes, own).is_none())
            .ok_or(Error::NoFreeSubnet),
    }
}

fn configure_bridge(
    nl: &mut Netlink,
    name: &str,
    index: u32,
    subnet: &Subnet,
) -> Result<(), Error> {
    nl.add_address(index, subnet.gateway(), subnet.prefix)
        .map_err(netlink_err("addressing the bridge"))?;
    // Packets DNAT'ed from the host's 127.0.0.1 keep that source address;
    // the kernel routes them out of the bridge only with this set (on the
    // bridge alone, not host-wide).
    step!("sysctl net.ipv4.conf.{name}.route_localnet=1: published ports answer on 127.0.0.1");
    write_sysctl(&format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"))?;
    nl.set_up(index)
        .map_err(netlink_err("bringing the bridge up"))
}

fn write_sysctl(path: &str) -> Result<(), Error> {
    std::fs::write(path, "1").map_err(|source| Error::Sysctl {
        path: path.to_string(),
        source,
    })
}

/// Outbound NAT needs the host to route between the bridge and its uplink.
fn enable_forwarding() -> Result<(), Error> {
    const PATH: &str = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(PATH).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    step!("sysctl net.ipv4.ip_forward=1: the host routes for the containers (outbound NAT)");
    write_sysctl(PATH)
}

/// Whether a lease's `containr run` is still there.
fn owner_alive(l: &Lease) -> bool {
    process_alive(l.owner_pid, l.owner_start)
}

/// Drop the leases of `containr run`s that are gone, with what they held.
fn reclaim(leases: &mut LeaseFile, nl: &mut Netlink, bridge: &str) -> Result<(), Error> {
    let stale = leases.leases.take_stale(owner_alive);
    if stale.is_empty() {
        return Ok(());
    }
    for l in &stale {
        step!(
            "reclaim {} of container {} (its containr run is gone): veth {}, {} port(s)",
            l.ip,
            l.name,
            l.veth,
            l.ports.len()
        );
        let _ = nl.delete_link(&l.veth);
        unpublish(bridge, &l.ports, l.ip);
    }
    leases.save().map_err(lease_err)
}

/// Delete the map elements of `ports`, one transaction each, so that one
/// already gone (deleted by hand) does not keep the others.
fn unpublish(bridge: &str, ports: &[PortSpec], ip: Ipv4Addr) {
    for e in nft::port_elements(ports, ip) {
        if let Err(err) = netlink::nft_delete_element(bridge, &e.as_set_element()) {
            tracing::warn!("removing {} from table ip {bridge}: {err}", e.text);
        }
    }
}

impl Attachment {
    /// What the init configures on `eth0`.
    pub fn interface(&self) -> Interface {
        Interface {
            address: self.ip,
            prefix: self.subnet.prefix,
            gateway: self.subnet.gateway(),
        }
    }

    /// Create the veth pair into the namespace of the container's init.
    pub fn plug(&self, init_pid: u32) -> Result<(), Error> {
        let mac = mac_of(self.ip);
        step!(
            "RTM_NEWLINK veth {} (on {}, up) <-> {PEER_NAME} ({}) in the netns of pid {init_pid}",
            self.veth,
            self.bridge,
            mac.map(|b| format!("{b:02x}")).join(":")
        );
        let mut nl = Netlink::open().map_err(netlink_err("opening a netlink socket"))?;
        let peer = (PEER_NAME, mac);
        match nl.create_veth(&self.veth, self.bridge_index, peer, init_pid) {
            // The name comes from the container's id: a link under it is
            // this container's previous veth, which the kernel deletes with
            // its previous network namespace, in a work queue, some time
            // after its init died (see `Drop`). A container made again at
            // once (`start` after `create`, a restart policy) finds it still
            // there: delete it now, and create ours.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                nl.delete_link(&self.veth)
                    .map_err(netlink_err("removing the container's previous veth"))?;
                nl.create_veth(&self.veth, self.bridge_index, peer, init_pid)
                    .map_err(netlink_err("creating the veth pair"))
            }
            made => made.map_err(netlink_err("creating the veth pair")),
        }
    }
}

/// The hardware address of the container's `eth0`: docker's, `02:42`
/// and the IPv4 address. An address taken again (a container made again,
/// or one released long ago) comes with the same MAC, so the host's and
/// other containers' ARP caches, which may still hold it, stay right.
pub(super) fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // The veth pair is not deleted here: the kernel deletes it with the
        // container's network namespace, which dies with the init. That
        // happens in a kernel work queue a few tens of milliseconds after
        // the init is reaped; an RTM_DELLINK now would make `run` wait
        // those 20-30 ms (unregistering a netdev waits for RCU) for
        // nothing. Another container cannot get the address meanwhile:
        // leases go round-robin through the subnet; this container made
        // again takes it back, but its veth has the same name, and `plug`
        // deletes the old one first.
        step!(
            "release {}: {} port rule(s), the lease (the kernel deletes veth {} with the netns)",
            self.ip,
            self.ports.len(),
            self.veth
        );
        unpublish(&self.bridge, &self.ports, self.ip);
        match LeaseFile::lock(Path::new(ipam::STATE_DIR), &self.bridge) {
            Ok(mut f) => {
                f.leases.release(&self.id);
                if let Err(e) = f.save() {
                    tracing::warn!("releasing lease {}: {e}", self.ip);
                }
            }
            Err(e) => tracing::warn!("releasing lease {}: {e}", self.ip),
        }
    }
}

/// `containr network prune`: remove the bridge, its table and its lease
/// file when no container uses them; returns what was removed.
pub fn prune(bridge: &str) -> Result<Vec<String>, Error> {
    validate_bridge_name(bridge)?;
    let dir = Path::new(ipam::STATE_DIR);
    let mut leases = LeaseFile::lock(dir, bridge).map_err(lease_err)?;
    let mut nl = Netlink::open().map_err(netlink_err("opening a netlink socket"))?;
    reclaim(&mut leases, &mut nl, bridge)?;
    if !leases.leases.leases.is_empty() {
        return Err(Error::BridgeInUse {
            bridge: bridge.to_string(),
            count: leases.leases.leases.len(),
        });
    }
    let mut removed = Vec::new();
    if let Some(link) = nl
        .link(bridge)
        .map_err(netlink_err("looking up the bridge"))?
    {
        if link.kind.as_deref() != Some("bridge") {
            return Err(Error::NotABridge(bridge.to_string()));
        }
        step!("RTM_DELLINK {bridge}");
        nl.delete_link(bridge)
            .map_err(netlink_err("deleting the bridge"))?;
        removed.push(format!("bridge {bridge}"));
    }
    if netlink::nft_table_exists(bridge).map_err(netlink_err("looking up the nftables table"))? {
        step!("nft delete table ip {bridge}");
        nft::apply(&nft::find()?, &format!("delete table ip {bridge}\n"))?;
        removed.push(format!("nftables table ip {bridge}"));
    }
    leases.remove().map_err(lease_err)?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names_say_containr_and_fit() {
        for good in ["containr0", "containr-t1", "containr_x"] {
            assert!(validate_bridge_name(good).is_ok(), "{good}");
        }
        for bad in [
            "br0",
            "eth0",
            "containr0123456789",
            "containr 0",
            "containr/0",
            "",
        ] {
            assert!(validate_bridge_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_containers_mac_is_dockers_from_its_address() {
        assert_eq!(
            mac_of(Ipv4Addr::new(10, 88, 0, 2)),
            [0x02, 0x42, 10, 88, 0, 2]
        );
    }

    #[test]
    fn veth_names_fit_ifnamsiz() {
        assert_eq!(veth_name(&"ab".repeat(32)), "ctrabababababab");
        assert_eq!(veth_name(&"ab".repeat(32)).len(), 15);
    }
}

//! The container's network.
//!
//! - `--network bridge` (the default): a veth pair to the host's bridge
//!   (`containr0`, made on first use), an address leased from its subnet,
//!   outbound NAT and published ports (`-p`) with nftables. See [`bridge`].
//! - `--network none`: a network namespace with loopback only.
//! - `--network host`: the host's own network stack, no namespace.
//!
//! This module also writes the `/etc/hosts` and `/etc/resolv.conf` the
//! container sees.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::step;

pub mod bridge;
mod files;
pub mod ipam;
mod netlink;
mod nft;
pub mod ports;

pub use bridge::{Attachment, DEFAULT_BRIDGE, prune};
pub use files::{HostEntry, hosts_file, resolv_conf};
use ipam::Subnet;
use ports::PortSpec;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown network mode {0:?} (supported: bridge, none, host, container:NAME)")]
    UnknownMode(String),
    #[error(
        "--dns and --add-host cannot be used with --network container:NAME (its files are shared)"
    )]
    SharedFiles,
    #[error("bringing up the loopback interface failed: {0}")]
    Loopback(std::io::Error),
    #[error("invalid port spec {spec:?}: {reason}")]
    BadPort { spec: String, reason: String },
    #[error("-p/--publish needs --network bridge")]
    PortsNeedBridge,
    #[error("cannot publish {spec}: host port {}/{} is already in use", spec.host_port, spec.proto)]
    PortInUse { spec: PortSpec },
    #[error("cannot publish {spec}: binding {}:{} on the host: {source}", spec.host_ip, spec.host_port)]
    PortBind {
        spec: PortSpec,
        source: std::io::Error,
    },
    #[error("invalid --subnet {value:?}: {reason}")]
    BadSubnet { value: String, reason: String },
    #[error(
        "subnet {subnet} clashes with the host's route {route} dev {dev}: choose another with --subnet"
    )]
    SubnetClash {
        subnet: Subnet,
        route: Subnet,
        dev: String,
    },
    #[error(
        "no free subnet for the bridge: 10.88.0.0/16 to 10.99.0.0/16 all clash with host routes; choose one with --subnet"
    )]
    NoFreeSubnet,
    #[error(
        "bridge {bridge} exists with subnet {existing}, not {wanted}: drop --subnet, or run 'containr network prune' first"
    )]
    BridgeSubnetMismatch {
        bridge: String,
        existing: Subnet,
        wanted: Subnet,
    },
    #[error("{0} exists and is not a bridge")]
    NotABridge(String),
    #[error(
        "invalid bridge name {0:?}: it must start with \"containr\" and fit in 15 characters of [a-zA-Z0-9_-]"
    )]
    BadBridgeName(String),
    #[error("no free address left in {0}")]
    Exhausted(Subnet),
    #[error("bridge {bridge} is in use by {count} running container(s)")]
    BridgeInUse { bridge: String, count: usize },
    #[error("nft not found in PATH: the bridge network needs nftables (apt-get install nftables)")]
    NftMissing,
    #[error("nft: {message}")]
    Nft { message: String },
    #[error("{what}: {source}")]
    Netlink {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("leases in {path}: {source}")]
    Leases {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Sysctl {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid --dns {0:?}: not an IP address")]
    BadDns(String),
    #[error("invalid --add-host {0:?}: expected HOST:IP (IP may be host-gateway)")]
    BadAddHost(String),
    #[error("--network container:{0}: no such running container")]
    NoSuchContainer(String),
}

/// `--network`: how the container is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// On containr's bridge, with an address of its own and NAT.
    Bridge,
    /// A private network namespace with loopback only.
    None,
    /// The host's network namespace.
    Host,
    /// Another container's network namespace (`container:NAME`), which
    /// the init joins.
    Container,
}

impl FromStr for Mode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "bridge" => Ok(Mode::Bridge),
            "none" => Ok(Mode::None),
            "host" => Ok(Mode::Host),
            _ if s.len() > "container:".len() && s.starts_with("container:") => Ok(Mode::Container),
            _ => Err(Error::UnknownMode(s.to_string())),
        }
    }
}

impl Mode {
    /// Whether the container gets a network namespace of its own.
    pub fn new_namespace(self) -> bool {
        match self {
            Mode::Bridge | Mode::None => true,
            Mode::Host | Mode::Container => false,
        }
    }
}

/// The network flags of `containr run`, as given (kept in a container's
/// record, to plan its network again when it is started again).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Options {
    pub mode: Option<String>,
    pub publish: Vec<String>,
    pub dns: Vec<String>,
    pub add_hosts: Vec<String>,
    pub bridge: Option<String>,
    pub subnet: Option<String>,
}

/// A running container's place on its bridge, as `inspect` shows it
/// (docker's `NetworkSettings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    /// `aa:bb:...`, as `ip link` writes it.
    pub mac: String,
}

impl Options {
    /// Where container `id` is on its bridge now: the address its lease
    /// holds (which a container made again may have changed), `None` off
    /// the bridge or with no lease (not running).
    pub fn settings(&self, id: &str) -> Option<Settings> {
        let plan = self.plan().ok()?;
        if plan.mode != Mode::Bridge {
            return None;
        }
        let dir = std::path::Path::new(ipam::STATE_DIR);
        let lease = ipam::lease_of(dir, &plan.bridge, id)?;
        Some(Settings {
            address: lease.ip,
            prefix: lease.subnet.map_or(0, |s| s.prefix),
            gateway: lease.subnet.map(|s| s.gateway()),
            mac: bridge::mac_of(lease.ip)
                .map(|b| format!("{b:02x}"))
                .join(":"),
        })
    }
}

/// Where `--add-host` points.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostTarget {
    Ip(IpAddr),
    /// docker's `host-gateway`: the host, as the container reaches it.
    Gateway,
}

/// The network flags, checked: everything that can be wrong with them is
/// found here, before anything is made.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mode: Mode,
    /// With `container:NAME`, the name.
    pub join: Option<String>,
    pub ports: Vec<PortSpec>,
    dns: Vec<IpAddr>,
    add_hosts: Vec<(String, HostTarget)>,
    bridge: String,
    subnet: Option<Subnet>,
}

impl Options {
    pub fn plan(&self) -> Result<Plan, Error> {
        let mode: Mode = self.mode.as_deref().unwrap_or("bridge").parse()?;
        let ports = self
            .publish
            .iter()
            .map(|p| {
                p.parse().map_err(|reason| Error::BadPort {
                    spec: p.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<PortSpec>, Error>>()?;
        if !ports.is_empty() && mode != Mode::Bridge {
            return Err(Error::PortsNeedBridge);
        }
        let dns = self
            .dns
            .iter()
            .map(|d| d.parse().map_err(|_| Error::BadDns(d.clone())))
            .collect::<Result<_, _>>()?;
        let add_hosts = self
            .add_hosts
            .iter()
            .map(|h| parse_add_host(h).ok_or_else(|| Error::BadAddHost(h.clone())))
            .collect::<Result<_, _>>()?;
        let bridge = self.bridge.as_deref().unwrap_or(DEFAULT_BRIDGE).to_string();
        bridge::validate_bridge_name(&bridge)?;
        let subnet = self
            .subnet
            .as_deref()
            .map(|s| {
                s.parse().map_err(|reason| Error::BadSubnet {
                    value: s.to_string(),
                    reason,
                })
            })
            .transpose()?;
        if mode == Mode::Container && !(self.dns.is_empty() && self.add_hosts.is_empty()) {
            return Err(Error::SharedFiles);
        }
        let join = self
            .mode
            .as_deref()
            .and_then(|m| m.strip_prefix("container:"))
            .map(str::to_string);
        Ok(Plan {
            mode,
            join,
            ports,
            dns,
            add_hosts,
            bridge,
            subnet,
        })
    }
}

/// `HOST:IP`, split at the first colon so that IPv6 addresses stay whole.
fn parse_add_host(s: &str) -> Option<(String, HostTarget)> {
    let (host, ip) = s.split_once(':').or_else(|| s.split_once('='))?;
    let valid_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !valid_host {
        return None;
    }
    let target = match ip {
        "host-gateway" => HostTarget::Gateway,
        _ => HostTarget::Ip(ip.trim_matches(|c| c == '[' || c == ']').parse().ok()?),
    };
    Some((host.to_string(), target))
}

/// What the init configures on `eth0` in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

/// The container whose network namespace `container:NAME` joins.
#[derive(Debug, Clone)]
pub struct Joined {
    /// Host pid of its init, whose namespace the new init enters.
    pub pid: u32,
    pub hostname: String,
    hosts: String,
    resolv: String,
}

impl Joined {
    /// The running container `name`, whose init is host pid `pid` (`None`
    /// if there is no such running container): read, through the init's
    /// `/proc/PID/root`, the name files it sees: sharing a network means
    /// sharing those too (docker does the same).
    pub fn find(name: &str, pid: Option<u32>) -> Result<Joined, Error> {
        let missing = || Error::NoSuchContainer(name.to_string());
        let pid = pid.ok_or_else(missing)?;
        let read = |f: &str| {
            std::fs::read_to_string(format!("/proc/{pid}/root/etc/{f}")).map_err(|_| missing())
        };
        Ok(Joined {
            pid,
            hostname: read("hostname")?.trim().to_string(),
            hosts: read("hosts")?,
            resolv: read("resolv.conf")?,
        })
    }
}

impl Plan {
    /// With `--network bridge`: the container's place on the bridge.
    pub fn attach(&self, id: &str, name: &str) -> Result<Option<Attachment>, Error> {
        if self.mode != Mode::Bridge {
            return Ok(None);
        }
        bridge::attach(&bridge::Request {
            id,
            name,
            bridge: &self.bridge,
            subnet: self.subnet,
            ports: &self.ports,
        })
        .map(Some)
    }

    /// `/etc/hosts` and `/etc/resolv.conf` for the container.
    pub fn etc_files(
        &self,
        hostname: &str,
        name: &str,
        iface: Option<&Interface>,
        joined: Option<&Joined>,
    ) -> Vec<(String, String)> {
        if let Some(j) = joined {
            return vec![
                ("/etc/hosts".to_string(), j.hosts.clone()),
                ("/etc/resolv.conf".to_string(), j.resolv.clone()),
            ];
        }
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let host_hosts = (self.mode == Mode::Host)
            .then(|| std::fs::read_to_string("/etc/hosts").unwrap_or_default());
        // Without a bridge, the host is not reachable at any one address:
        // docker's host-gateway then means the host's own stack.
        let gateway = iface.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |i| IpAddr::V4(i.gateway));
        let extra: Vec<HostEntry> = self
            .add_hosts
            .iter()
            .map(|(h, t)| HostEntry {
                ip: match t {
                    HostTarget::Ip(ip) => *ip,
                    HostTarget::Gateway => gateway,
                },
                names: vec![h.clone()],
            })
            .collect();
        let own = iface.map(|i| HostEntry {
            ip: IpAddr::V4(i.address),
            names: if name == hostname {
                vec![hostname.to_string()]
            } else {
                vec![hostname.to_string(), name.to_string()]
            },
        });
        vec![
            (
                "/etc/hosts".to_string(),
                hosts_file(host_hosts.as_deref(), &extra, own.as_ref()),
            ),
            (
                "/etc/resolv.conf".to_string(),
                resolv_conf(&host_resolv, &self.dns, self.mode == Mode::Host),
            ),
        ]
    }
}

/// In the container's init, in a network namespace of its own: loopback
/// up, and with a bridge (`iface`), `eth0` up with its address and the
/// default route through the bridge.
pub fn configure_inside(iface: Option<&Interface>) -> Result<(), Error> {
    loopback_up()?;
    let Some(i) = iface else {
        return Ok(());
    };
    let err = |what| move |source| Error::Netlink { what, source };
    step!(
        "netlink in the container: {}/{} on eth0, eth0 up, default via {}",
        i.address,
        i.prefix,
        i.gateway
    );
    let mut nl = netlink::Netlink::open().map_err(err("opening a netlink socket"))?;
    let eth0 = nl
        .link("eth0")
        .map_err(err("looking up eth0"))?
        .ok_or_else(|| err("looking up eth0")(std::io::Error::from_raw_os_error(libc::ENODEV)))?;
    nl.add_address(eth0.index, i.address, i.prefix)
        .map_err(err("addressing eth0"))?;
    nl.set_up(eth0.index).map_err(err("bringing eth0 up"))?;
    nl.add_default_route(i.gateway)
        .map_err(err("adding the default route"))
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
        assert_eq!("bridge".parse::<Mode>().unwrap(), Mode::Bridge);
        assert_eq!("host".parse::<Mode>().unwrap(), Mode::Host);
        assert_eq!("container:web".parse::<Mode>().unwrap(), Mode::Container);
        assert!(matches!(
            "container:".parse::<Mode>(),
            Err(Error::UnknownMode(_))
        ));
        assert!(matches!("wifi".parse::<Mode>(), Err(Error::UnknownMode(_))));
    }

    #[test]
    fn plans_check_every_flag() {
        let plan = Options::default().plan().unwrap();
        assert_eq!(plan.mode, Mode::Bridge);
        assert_eq!(plan.bridge, DEFAULT_BRIDGE);
        let bad = |o: Options| o.plan().unwrap_err().to_string();
        let opts = |f: fn(&mut Options)| {
            let mut o = Options::default();
            f(&mut o);
            o
        };
        assert!(bad(opts(|o| o.publish = vec!["x".into()])).contains("invalid port spec"));
        assert!(
            bad(opts(|o| {
                o.mode = Some("none".into());
                o.publish = vec!["80:80".into()];
            }))
            .contains("needs --network bridge")
        );
        assert!(bad(opts(|o| o.dns = vec!["dns.example".into()])).contains("--dns"));
        assert!(bad(opts(|o| o.add_hosts = vec!["nocolon".into()])).contains("--add-host"));
        assert!(bad(opts(|o| o.subnet = Some("10.1.0.1/16".into()))).contains("host bits"));
        assert!(bad(opts(|o| o.bridge = Some("br0".into()))).contains("bridge name"));
    }

    #[test]
    fn add_host_forms() {
        assert_eq!(
            parse_add_host("db:10.0.0.5"),
            Some(("db".into(), HostTarget::Ip("10.0.0.5".parse().unwrap())))
        );
        assert_eq!(
            parse_add_host("v6:::1"),
            Some(("v6".into(), HostTarget::Ip("::1".parse().unwrap())))
        );
        assert_eq!(
            parse_add_host("gw=host-gateway"),
            Some(("gw".into(), HostTarget::Gateway))
        );
        for bad in ["db", ":1.2.3.4", "db:", "d b:1.2.3.4", "db:999.1.1.1"] {
            assert_eq!(parse_add_host(bad), None, "{bad}");
        }
    }

    #[test]
    fn etc_files_name_the_container() {
        let plan = Options {
            add_hosts: vec!["gw:host-gateway".into()],
            dns: vec!["10.0.0.53".into()],
            ..Options::default()
        }
        .plan()
        .unwrap();
        let iface = Interface {
            address: Ipv4Addr::new(10, 88, 0, 7),
            prefix: 16,
            gateway: Ipv4Addr::new(10, 88, 0, 1),
        };
        let files = plan.etc_files("abc", "web", Some(&iface), None);
        assert!(
            files[0].1.ends_with("10.88.0.1\tgw\n10.88.0.7\tabc web\n"),
            "{}",
            files[0].1
        );
        let ns: Vec<&str> = files[1]
            .1
            .lines()
            .filter(|l| l.starts_with("nameserver"))
            .collect();
        assert_eq!(ns, ["nameserver 10.0.0.53"]);
    }
}

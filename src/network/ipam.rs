//! IPv4 subnets and address allocation (IPAM) for the bridge network.
//!
//! Leases live in one JSON file per bridge, under [`STATE_DIR`], locked with
//! `flock(2)` while a run reads and rewrites it, so concurrent `containr run`s
//! never get the same address. The file sits in `/run`, not under `--root`:
//! the bridge, its veths and its NAT table are host-wide kernel objects that
//! every containr on the host shares, whatever its data root, and that vanish
//! at reboot, as leases must.
//!
//! Each lease names its owner (pid and start time, as container records do),
//! so leases of `containr run`s that were killed outright are reclaimed by the
//! next run or `network prune`.
//!
//! An ended lease is remembered (the container's id and address, the last
//! [`REMEMBERED`] of them), so that a container made again (`start` after
//! `stop`, `restart`, a restart policy) gets its address back while it is
//! free, as docker's containers usually do.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ports::PortSpec;

/// Where lease files live: runtime state, shared by the whole host.
pub const STATE_DIR: &str = "/run/containr/network";

/// How many ended leases a lease file remembers (the oldest forgotten
/// first): the file is rewritten at each start and end of a container.
pub const REMEMBERED: usize = 256;

/// An IPv4 network: its address (host bits zero) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// The subnet of `addr/prefix`, host bits cleared.
    pub fn containing(addr: Ipv4Addr, prefix: u8) -> Subnet {
        Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.network)
    }

    /// Whether two networks share any address (one contains the other).
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let shorter = self.prefix.min(other.prefix);
        u32::from(self.network) & mask(shorter) == u32::from(other.network) & mask(shorter)
    }

    /// The bridge's own address: the first one of the subnet.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix))
    }

    /// Addresses containers may get: after the gateway, before broadcast.
    fn hosts(&self) -> (u32, u32) {
        (u32::from(self.network) + 2, u32::from(self.broadcast()) - 1)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;

    /// `A.B.C.D/N`, N from 8 to 30 (a gateway and at least one container),
    /// with no host bits set, so that what the user typed is what is used.
    fn from_str(s: &str) -> Result<Subnet, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| "expected A.B.C.D/N".to_string())?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| format!("prefix length {prefix:?} is not between 8 and 30"))?;
        let subnet = Subnet::containing(addr, prefix);
        if subnet.network != addr {
            return Err(format!("host bits are set (the network is {subnet})"));
        }
        Ok(subnet)
    }
}

/// Subnets tried, in order, when the user names none: the first that no
/// host route overlaps is taken.
pub fn default_candidates() -> impl Iterator<Item = Subnet> {
    (88..=99).map(|b| Subnet {
        network: Ipv4Addr::new(10, b, 0, 0),
        prefix: 16,
    })
}

/// A route of the host's, as far as clash detection cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoute {
    pub dst: Subnet,
    /// Output interface index (0 when the route has none).
    pub oif: u32,
    /// Its name, for messages.
    pub dev: String,
}

/// The first host route that overlaps `subnet`, ignoring default routes
/// (everything overlaps those) and routes through `own` (our bridge).
pub fn clash<'a>(
    subnet: &Subnet,
    routes: &'a [HostRoute],
    own: Option<u32>,
) -> Option<&'a HostRoute> {
    routes
        .iter()
        .find(|r| r.dst.prefix > 0 && Some(r.oif) != own && r.dst.overlaps(subnet))
}

/// One container's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub ip: Ipv4Addr,
    pub id: String,
    pub name: String,
    /// The host end of its veth pair.
    pub veth: String,
    pub owner_pid: u32,
    pub owner_start: u64,
    /// Published ports, so that a reclaimer can remove their rules.
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// The bridge's subnet, for `inspect` (its prefix and gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<Subnet>,
}

/// The address a container had when its lease ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    pub id: String,
    pub ip: Ipv4Addr,
}

/// The contents of a lease file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leases {
    /// The last address handed out: the next search starts after it, so a
    /// released address is not reused at once (peers may still have it in
    /// their ARP caches).
    pub last: Option<Ipv4Addr>,
    pub leases: Vec<Lease>,
    /// Ended leases, the latest last, at most [`REMEMBERED`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ended: Vec<Ended>,
}

impl Leases {
    /// The address for container `id`: the one it had last if that is in
    /// `subnet` and nobody holds it, else the next free one. `last` moves
    /// only for a new address: one taken back is not handed out next.
    pub fn address_for(&mut self, id: &str, subnet: &Subnet) -> Option<Ipv4Addr> {
        let had = self
            .ended
            .iter()
            .rev()
            .find(|e| e.id == id)
            .map(|e| e.ip)
            .filter(|ip| {
                let (first, last) = subnet.hosts();
                (first..=last).contains(&u32::from(*ip)) && !self.leases.iter().any(|l| l.ip == *ip)
            });
        if had.is_some() {
            return had;
        }
        let ip = self.next_free(subnet)?;
        self.last = Some(ip);
        Some(ip)
    }

    /// Take out the lease of container `id` (if it has one), remembering
    /// its address.
    pub fn release(&mut self, id: &str) -> Option<Lease> {
        let at = self.leases.iter().position(|l| l.id == id)?;
        let lease = self.leases.remove(at);
        self.remember(&lease);
        Some(lease)
    }

    fn remember(&mut self, lease: &Lease) {
        self.ended.retain(|e| e.id != lease.id);
        self.ended.push(Ended {
            id: lease.id.clone(),
            ip: lease.ip,
        });
        let over = self.ended.len().saturating_sub(REMEMBERED);
        self.ended.drain(..over);
    }

    /// The next free address of `subnet` after the last one handed out,
    /// wrapping around; `None` when every address is leased.
    pub fn next_free(&self, subnet: &Subnet) -> Option<Ipv4Addr> {
        let (first, last) = subnet.hosts();
        let count = last - first + 1;
        let start = self
            .last
            .filter(|ip| subnet.contains(*ip))
            .map_or(first, |ip| u32::from(ip).clamp(first - 1, last) + 1);
        (0..count)
            .map(|i| first + (start - first + i) % count)
            .map(Ipv4Addr::from)
            .find(|ip| !self.leases.iter().any(|l| l.ip == *ip))
    }

    /// Remove and return the leases whose owner `alive` says is gone
    /// (their addresses remembered, as [`Leases::release`] does).
    pub fn take_stale(&mut self, alive: impl Fn(&Lease) -> bool) -> Vec<Lease> {
        let (live, stale): (Vec<Lease>, Vec<Lease>) = std::mem::take(&mut self.leases)
            .into_iter()
            .partition(|l| alive(l));
        self.leases = live;
        for l in &stale {
            self.remember(l);
        }
        stale
    }
}

/// A lease file, locked for as long as this value lives.
pub struct LeaseFile {
    file: File,
    pub path: PathBuf,
    pub leases: Leases,
}

impl LeaseFile {
    /// Open (creating as needed) and lock the lease file of `bridge`.
    pub fn lock(dir: &Path, bridge: &str) -> std::io::Result<LeaseFile> {
        use std::os::unix::fs::MetadataExt;
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{bridge}.json"));
        // `network prune` removes the file under the lock: whoever was
        // waiting then holds a lock on a file nobody else will open, so it
        // starts over with the one now at `path`. Bounded: each retry means
        // another prune ran in between.
        for _ in 0..100 {
            let mut file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            // SAFETY: flock on a descriptor we own; no memory is involved.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let current = std::fs::metadata(&path).map(|m| m.ino()).ok();
            if current != Some(file.metadata()?.ino()) {
                continue;
            }
            let mut text = Vec::new();
            file.read_to_end(&mut text)?;
            return Ok(LeaseFile {
                leases: parse(&text),
                file,
                path,
            });
        }
        Err(std::io::Error::other(format!(
            "{}: removed again and again while waiting for its lock",
            path.display()
        )))
    }

    /// Remove the file (no container uses the bridge any more).
    pub fn remove(self) -> std::io::Result<()> {
        std::fs::remove_file(&self.path)
    }

    /// Write the leases back (the lock is kept until drop).
    ///
    /// Written in place and then truncated, so that a run killed between the
    /// two leaves the new contents followed by stale bytes, which `parse`
    /// ignores: the file is never half-written JSON.
    pub fn save(&mut self) -> std::io::Result<()> {
        let body = serde_json::to_vec(&self.leases).expect("plain data");
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(&body)?;
        self.file.set_len(body.len() as u64)
    }
}

/// The lease of container `id` on `bridge`, if it holds one: read under a
/// shared lock (a writer holds it exclusively), without creating the file.
pub fn lease_of(dir: &Path, bridge: &str, id: &str) -> Option<Lease> {
    let mut file = File::open(dir.join(format!("{bridge}.json"))).ok()?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH) } < 0 {
        return None;
    }
    let mut text = Vec::new();
    file.read_to_end(&mut text).ok()?;
    parse(&text).leases.into_iter().find(|l| l.id == id)
}

/// The first JSON value of the file; empty or unreadable means no lease.
fn parse(text: &[u8]) -> Leases {
    serde_json::Deserializer::from_slice(text)
        .into_iter::<Leases>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    fn lease(ip: &str) -> Lease {
        Lease {
            ip: ip.parse().unwrap(),
            id: ip.into(),
            name: ip.into(),
            veth: "v".into(),
            owner_pid: 1,
            owner_start: 1,
            ports: vec![],
            subnet: None,
        }
    }

    #[test]
    fn parses_subnets() {
        assert_eq!(net("10.88.0.0/16").to_string(), "10.88.0.0/16");
        assert_eq!(net("10.88.0.0/16").gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(
            net("10.88.0.0/16").broadcast(),
            Ipv4Addr::new(10, 88, 255, 255)
        );
        for bad in [
            "10.88.0.0",
            "10.88.0.1/16",
            "10.88.0.0/31",
            "10.0.0.0/7",
            "x/16",
            "10.88.0.0/x",
        ] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn overlap_is_symmetric_and_exact() {
        assert!(net("10.0.0.0/8").overlaps(&net("10.88.0.0/16")));
        assert!(net("10.88.0.0/16").overlaps(&net("10.0.0.0/8")));
        assert!(net("10.88.4.0/24").overlaps(&net("10.88.0.0/16")));
        assert!(!net("10.89.0.0/16").overlaps(&net("10.88.0.0/16")));
        assert!(!net("192.0.2.0/24").overlaps(&net("10.88.0.0/16")));
    }

    #[test]
    fn clash_ignores_default_routes_and_our_bridge() {
        let routes = vec![
            HostRoute {
                dst: Subnet::containing(Ipv4Addr::UNSPECIFIED, 0),
                oif: 2,
                dev: "eth0".into(),
            },
            HostRoute {
                dst: net("192.0.2.0/24"),
                oif: 2,
                dev: "eth0".into(),
            },
            HostRoute {
                dst: net("10.88.0.0/16"),
                oif: 7,
                dev: "containr0".into(),
            },
        ];
        assert_eq!(clash(&net("10.88.0.0/16"), &routes, Some(7)), None);
        assert_eq!(
            clash(&net("10.88.0.0/16"), &routes, None).unwrap().dev,
            "containr0"
        );
        assert_eq!(
            clash(&net("192.0.0.0/16"), &routes, Some(7)).unwrap().dev,
            "eth0"
        );
        let first_free = default_candidates()
            .find(|s| clash(s, &routes, None).is_none())
            .unwrap();
        assert_eq!(first_free, net("10.89.0.0/16"));
    }

    #[test]
    fn allocates_round_robin_and_skips_leased() {
        let s = net("10.88.0.0/29"); // hosts .2 to .6
        let mut l = Leases::default();
        let mut got = vec![];
        for _ in 0..5 {
            let ip = l.next_free(&s).unwrap();
            l.last = Some(ip);
            l.leases.push(lease(&ip.to_string()));
            got.push(ip.octets()[3]);
        }
        assert_eq!(got, [2, 3, 4, 5, 6]);
        assert_eq!(l.next_free(&s), None, "subnet exhausted");
        // .3 released: found again after wrapping around.
        l.leases.retain(|x| x.ip.octets()[3] != 3);
        assert_eq!(l.next_free(&s), Some(Ipv4Addr::new(10, 88, 0, 3)));
        // A `last` outside the subnet (the bridge changed) starts over.
        let l = Leases {
            last: Some(Ipv4Addr::new(172, 16, 0, 9)),
            ..Leases::default()
        };
        assert_eq!(l.next_free(&s), Some(Ipv4Addr::new(10, 88, 0, 2)));
    }

    #[test]
    fn stale_leases_are_taken_out() {
        let mut l = Leases {
            leases: vec![lease("10.88.0.2"), lease("10.88.0.3")],
            ..Leases::default()
        };
        let stale = l.take_stale(|x| x.ip.octets()[3] == 2);
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].ip, Ipv4Addr::new(10, 88, 0, 3));
        assert_eq!(l.leases.len(), 1);
        // Its address is remembered, as a release's is.
        assert_eq!(
            l.address_for("10.88.0.3", &net("10.88.0.0/24")),
            Some(Ipv4Addr::new(10, 88, 0, 3))
        );
    }

    #[test]
    fn a_container_gets_its_address_back_while_it_is_free() {
        let s = net("10.88.0.0/29"); // hosts .2 to .6
        let mut l = Leases::default();
        let take = |l: &mut Leases, id: &str| {
            let ip = l.address_for(id, &s).unwrap();
            l.leases.push(Lease {
                id: id.into(),
                ..lease(&ip.to_string())
            });
            ip.octets()[3]
        };
        assert_eq!((take(&mut l, "a"), take(&mut l, "b")), (2, 3));
        assert!(l.release("a").is_some());
        assert!(l.release("a").is_none(), "released once");
        // Made again: its own address, and `last` does not move back.
        assert_eq!(take(&mut l, "a"), 2);
        assert_eq!(take(&mut l, "c"), 4);
        // Taken by another in between: a new one.
        l.release("a");
        l.release("c");
        l.leases.push(lease("10.88.0.2"));
        assert_eq!(take(&mut l, "a"), 5);
        // One from another subnet (the bridge was made again) is not used.
        let other = net("10.99.0.0/29");
        assert_eq!(
            l.address_for("c", &other),
            Some(Ipv4Addr::new(10, 99, 0, 2))
        );
        // The oldest are forgotten past the bound.
        for i in 0..REMEMBERED + 1 {
            l.remember(&Lease {
                id: format!("x{i}"),
                ..lease("10.88.0.6")
            });
        }
        assert_eq!(l.ended.len(), REMEMBERED);
        assert!(!l.ended.iter().any(|e| e.id == "x0"));
        assert!(l.ended.iter().any(|e| e.id == format!("x{REMEMBERED}")));
    }

    #[test]
    fn lease_file_round_trips_and_tolerates_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut f = LeaseFile::lock(dir.path(), "containr-t").unwrap();
            assert_eq!(f.leases, Leases::default());
            f.leases.leases.push(lease("10.88.0.2"));
            f.leases.last = Some(Ipv4Addr::new(10, 88, 0, 2));
            f.save().unwrap();
        }
        let path = dir.path().join("containr-t.json");
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(b"0.0.9\",\"id\":\"x\"}]}");
        std::fs::write(&path, &text).unwrap();
        let f = LeaseFile::lock(dir.path(), "containr-t").unwrap();
        assert_eq!(f.leases.leases, vec![lease("10.88.0.2")]);
        drop(f);
        let found = lease_of(dir.path(), "containr-t", "10.88.0.2");
        assert_eq!(found, Some(lease("10.88.0.2")));
        assert_eq!(lease_of(dir.path(), "containr-t", "other"), None);
        assert_eq!(lease_of(dir.path(), "containr-none", "10.88.0.2"), None);
    }
}

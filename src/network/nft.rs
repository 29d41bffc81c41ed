//! containr's nftables table: one `ip` table per bridge, named after it, so
//! that containr only ever adds to, changes and deletes a table of its own
//! and never another's rules.
//!
//! ```text
//! postrouting  masquerade what leaves the subnet for elsewhere (outbound NAT);
//!              masquerade 127.0.0.0/8 sources that were DNAT'ed onto the
//!              bridge (published ports reached from the host's 127.0.0.1,
//!              together with route_localnet=1 on the bridge), and hairpin
//!              traffic (a container reaching another through a published port)
//! prerouting,  for packets to a local address, DNAT through two maps:
//! output       ports_ip  (daddr . proto . port -> container ip . port) for -p IP:H:C
//!              ports_any (proto . port -> container ip . port)          for -p H:C
//! ```
//!
//! Port rules are map elements, so publishing and unpublishing are one
//! element added or deleted each, atomic, with no rule handles to track;
//! they go over nfnetlink directly (see `netlink`), which saves two runs
//! of `nft` per container. The table itself, made once, is created by the
//! `nft` binary from the script below.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use std::net::Ipv4Addr;

use super::Error;
use super::ipam::Subnet;
use super::ports::{PortSpec, Proto};

/// The whole table for `bridge` with `subnet`, created in one transaction.
pub fn table_script(bridge: &str, subnet: &Subnet) -> String {
    format!(
        "table ip {bridge} {{
  map ports_any {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}
  map ports_ip {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }}
  chain ports {{
    dnat ip to ip daddr . meta l4proto . th dport map @ports_ip
    dnat ip to meta l4proto . th dport map @ports_any
  }}
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local jump ports
  }}
  chain output {{
    type nat hook output priority -100; policy accept;
    fib daddr type local jump ports
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {subnet} oifname != \"{bridge}\" masquerade
    oifname \"{bridge}\" ip saddr 127.0.0.0/8 masquerade
    oifname \"{bridge}\" ip saddr {subnet} ct status dnat masquerade
  }}
}}
"
    )
}

/// One port map element, encoded as the kernel stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortElement {
    pub map: &'static str,
    pub key: Vec<u8>,
    pub data: Vec<u8>,
    /// As `nft list` shows it, for the walkthrough.
    pub text: String,
}

impl PortElement {
    pub fn as_set_element(&self) -> super::netlink::SetElement<'_> {
        super::netlink::SetElement {
            set: self.map,
            key: &self.key,
            data: &self.data,
        }
    }
}

/// The map elements that publish `ports` to `target`. A concatenation
/// (`a . b`) is each field in network byte order, padded to 4 bytes (one
/// nftables register each): `inet_proto` is 1 byte, `inet_service` 2.
pub fn port_elements(ports: &[PortSpec], target: Ipv4Addr) -> Vec<PortElement> {
    let reg = |bytes: &[u8]| {
        let mut r = bytes.to_vec();
        r.resize(4, 0);
        r
    };
    ports
        .iter()
        .map(|p| {
            let proto = reg(&[match p.proto {
                Proto::Tcp => libc::IPPROTO_TCP as u8,
                Proto::Udp => libc::IPPROTO_UDP as u8,
            }]);
            let port = reg(&p.host_port.to_be_bytes());
            let data = [target.octets().to_vec(), reg(&p.ctr_port.to_be_bytes())].concat();
            let to = format!("{target} . {}", p.ctr_port);
            if p.host_ip.is_unspecified() {
                PortElement {
                    map: "ports_any",
                    key: [proto, port].concat(),
                    data,
                    text: format!("ports_any {{ {} . {} : {to} }}", p.proto, p.host_port),
                }
            } else {
                PortElement {
                    map: "ports_ip",
                    key: [p.host_ip.octets().to_vec(), proto, port].concat(),
                    data,
                    text: format!(
                        "ports_ip {{ {} . {} . {} : {to} }}",
                        p.host_ip, p.proto, p.host_port
                    ),
                }
            }
        })
        .collect()
}

/// The `nft` binary, from `PATH`.
pub fn find() -> Result<PathBuf, Error> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("nft"))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
        .ok_or(Error::NftMissing)
}

/// Run `nft -f -` with `script`; its first error line is the error.
pub fn apply(nft: &PathBuf, script: &str) -> Result<(), Error> {
    let fail = |message: String| Error::Nft { message };
    let mut child = Command::new(nft)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("running {}: {e}", nft.display())))?;
    let written = child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes());
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("waiting for nft: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err
            .lines()
            .find(|l| l.contains("Error"))
            .or_else(|| err.lines().next())
            .unwrap_or("failed");
        return Err(fail(first.trim().to_string()));
    }
    written.map_err(|e| fail(format!("writing to nft: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_the_bridge_and_subnet() {
        let s = table_script("containr0", &"10.88.0.0/16".parse().unwrap());
        assert!(s.starts_with("table ip containr0 {"));
        assert!(s.contains("ip saddr 10.88.0.0/16 oifname != \"containr0\" masquerade"));
        assert!(s.contains("oifname \"containr0\" ip saddr 127.0.0.0/8 masquerade"));
    }

    #[test]
    fn port_elements_are_encoded_register_by_register() {
        let ports = [
            "8080:80".parse::<PortSpec>().unwrap(),
            "127.0.0.1:5353:53/udp".parse::<PortSpec>().unwrap(),
        ];
        let got = port_elements(&ports, Ipv4Addr::new(10, 88, 0, 2));
        assert_eq!(got[0].map, "ports_any");
        assert_eq!(got[0].key, [6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
        assert_eq!(got[0].data, [10, 88, 0, 2, 0, 80, 0, 0]);
        assert_eq!(got[0].text, "ports_any { tcp . 8080 : 10.88.0.2 . 80 }");
        assert_eq!(got[1].map, "ports_ip");
        assert_eq!(got[1].key, [127, 0, 0, 1, 17, 0, 0, 0, 0x14, 0xe9, 0, 0]);
        assert_eq!(got[1].data, [10, 88, 0, 2, 0, 53, 0, 0]);
    }
}

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
//! element added or deleted each, atomic, with no rule handles to track.
//! Changes go through the `nft` binary, fed a script on stdin.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::Error;
use super::ipam::Subnet;
use super::ports::PortSpec;

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

/// `add element` (or `delete element`) lines for one container's ports.
pub fn ports_script(
    bridge: &str,
    ports: &[PortSpec],
    target: std::net::Ipv4Addr,
    add: bool,
) -> String {
    let mut out = String::new();
    for p in ports {
        let (map, key) = if p.host_ip.is_unspecified() {
            ("ports_any", format!("{} . {}", p.proto, p.host_port))
        } else {
            (
                "ports_ip",
                format!("{} . {} . {}", p.host_ip, p.proto, p.host_port),
            )
        };
        if add {
            out.push_str(&format!(
                "add element ip {bridge} {map} {{ {key} : {target} . {} }}\n",
                p.ctr_port
            ));
        } else {
            out.push_str(&format!("delete element ip {bridge} {map} {{ {key} }}\n"));
        }
    }
    out
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
    use crate::network::ports::Proto;

    #[test]
    fn table_names_the_bridge_and_subnet() {
        let s = table_script("containr0", &"10.88.0.0/16".parse().unwrap());
        assert!(s.starts_with("table ip containr0 {"));
        assert!(s.contains("ip saddr 10.88.0.0/16 oifname != \"containr0\" masquerade"));
        assert!(s.contains("oifname \"containr0\" ip saddr 127.0.0.0/8 masquerade"));
    }

    #[test]
    fn port_elements() {
        let ports = [
            "8080:80".parse::<PortSpec>().unwrap(),
            PortSpec {
                host_ip: std::net::Ipv4Addr::LOCALHOST,
                host_port: 5353,
                ctr_port: 53,
                proto: Proto::Udp,
            },
        ];
        let ip = std::net::Ipv4Addr::new(10, 88, 0, 2);
        assert_eq!(
            ports_script("containr0", &ports, ip, true),
            "add element ip containr0 ports_any { tcp . 8080 : 10.88.0.2 . 80 }\n\
             add element ip containr0 ports_ip { 127.0.0.1 . udp . 5353 : 10.88.0.2 . 53 }\n"
        );
        assert_eq!(
            ports_script("containr0", &ports, ip, false),
            "delete element ip containr0 ports_any { tcp . 8080 }\n\
             delete element ip containr0 ports_ip { 127.0.0.1 . udp . 5353 }\n"
        );
    }
}

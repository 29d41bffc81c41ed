//! The name-service files a container sees: `/etc/hosts` and
//! `/etc/resolv.conf`. Pure text in, text out.

use std::net::IpAddr;

/// Resolvers docker falls back to when the host has only loopback ones.
const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// `/etc/hosts` for a container that has no address but loopback (docker
/// adds no line for the hostname then either).
pub fn hosts_file() -> String {
    "127.0.0.1\tlocalhost\n\
     ::1\tlocalhost ip6-localhost ip6-loopback\n\
     fe00::0\tip6-localnet\n\
     ff00::0\tip6-mcastprefix\n\
     ff02::1\tip6-allnodes\n\
     ff02::2\tip6-allrouters\n"
        .to_string()
}

/// The container's `/etc/resolv.conf` from the host's: loopback resolvers
/// (systemd-resolved's 127.0.0.53, a local dnsmasq) are unreachable from
/// another network namespace, so they are dropped; if none remain, docker's
/// public fallbacks are written instead. Other lines are kept as they are.
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut nameservers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let addr = words.next().unwrap_or("");
            let loopback = addr
                .split('%')
                .next()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .is_some_and(|ip| ip.is_loopback());
            if loopback || addr.is_empty() {
                continue;
            }
            nameservers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if nameservers == 0 {
        for ns in FALLBACK_NAMESERVERS {
            out.push_str("nameserver ");
            out.push_str(ns);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_loopback_resolvers_and_keeps_the_rest() {
        let host =
            "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch lan\noptions edns0\n";
        let got = resolv_conf(host);
        assert_eq!(
            got,
            "# generated\nnameserver 10.0.0.2\nsearch lan\noptions edns0\n"
        );
    }

    #[test]
    fn falls_back_when_only_loopback_resolvers() {
        let got = resolv_conf("nameserver 127.0.0.53\nnameserver ::1\nsearch x\n");
        assert_eq!(got, "search x\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }

    #[test]
    fn empty_host_file_gets_fallbacks() {
        assert_eq!(resolv_conf(""), "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }

    #[test]
    fn hosts_has_localhost() {
        assert!(hosts_file().starts_with("127.0.0.1\tlocalhost\n"));
    }
}

//! The name-service files a container sees: `/etc/hosts` and
//! `/etc/resolv.conf`. Pure text in, text out.

use std::net::IpAddr;

/// Resolvers docker falls back to when the host has only loopback ones.
const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// One `/etc/hosts` line: an address and its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub ip: IpAddr,
    pub names: Vec<String>,
}

/// Docker's localhost lines, for a container with a network of its own.
const LOCALHOST: &str = "127.0.0.1\tlocalhost\n\
     ::1\tlocalhost ip6-localhost ip6-loopback\n\
     fe00::0\tip6-localnet\n\
     ff00::0\tip6-mcastprefix\n\
     ff02::1\tip6-allnodes\n\
     ff02::2\tip6-allrouters\n";

/// `/etc/hosts`: `base` (the host's file with `--network host`, docker's
/// localhost lines otherwise), then `--add-host` entries, then the
/// container's own address and names (docker's order).
pub fn hosts_file(base: Option<&str>, extra: &[HostEntry], own: Option<&HostEntry>) -> String {
    let mut out = base.unwrap_or(LOCALHOST).to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for e in extra.iter().chain(own) {
        out.push_str(&format!("{}\t{}\n", e.ip, e.names.join(" ")));
    }
    out
}

/// The container's `/etc/resolv.conf` from the host's. Loopback resolvers
/// (systemd-resolved's 127.0.0.53, a local dnsmasq) are unreachable from
/// another network namespace, so they are dropped unless `keep_loopback`
/// (the container shares the host's network); if none remain, docker's
/// public fallbacks are written instead. `dns` (from `--dns`), when given,
/// replaces the host's resolvers. Other lines are kept as they are.
pub fn resolv_conf(host: &str, dns: &[IpAddr], keep_loopback: bool) -> String {
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
            if !dns.is_empty() || (loopback && !keep_loopback) || addr.is_empty() {
                continue;
            }
            nameservers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    for ns in dns {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if nameservers == 0 && dns.is_empty() {
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
        let got = resolv_conf(host, &[], false);
        assert_eq!(
            got,
            "# generated\nnameserver 10.0.0.2\nsearch lan\noptions edns0\n"
        );
    }

    #[test]
    fn falls_back_when_only_loopback_resolvers() {
        let got = resolv_conf(
            "nameserver 127.0.0.53\nnameserver ::1\nsearch x\n",
            &[],
            false,
        );
        assert_eq!(got, "search x\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }

    #[test]
    fn empty_host_file_gets_fallbacks() {
        assert_eq!(
            resolv_conf("", &[], false),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }

    #[test]
    fn dns_replaces_resolvers_and_host_mode_keeps_loopback() {
        let host = "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch lan\n";
        let dns: Vec<IpAddr> = vec!["192.0.2.53".parse().unwrap(), "::1".parse().unwrap()];
        assert_eq!(
            resolv_conf(host, &dns, false),
            "search lan\nnameserver 192.0.2.53\nnameserver ::1\n"
        );
        assert_eq!(resolv_conf(host, &[], true), host);
    }

    #[test]
    fn hosts_has_localhost_extras_then_own_line() {
        assert!(hosts_file(None, &[], None).starts_with("127.0.0.1\tlocalhost\n"));
        let extra = [HostEntry {
            ip: "10.1.2.3".parse().unwrap(),
            names: vec!["db".into()],
        }];
        let own = HostEntry {
            ip: "10.88.0.2".parse().unwrap(),
            names: vec!["abc".into(), "web".into()],
        };
        let h = hosts_file(None, &extra, Some(&own));
        assert!(
            h.ends_with("ff02::2\tip6-allrouters\n10.1.2.3\tdb\n10.88.0.2\tabc web\n"),
            "{h}"
        );
        assert_eq!(
            hosts_file(Some("127.0.0.1 me"), &extra, None),
            "127.0.0.1 me\n10.1.2.3\tdb\n"
        );
    }
}

//! Image references, normalized exactly as docker does
//! (github.com/distribution/reference's `ParseNormalizedNamed`):
//!
//! - no domain: `alpine` is `docker.io/library/alpine`, `user/app` is
//!   `docker.io/user/app`;
//! - the first path component is a domain only if it contains `.` or `:`,
//!   or is `localhost`, and is lowercase; `index.docker.io` is `docker.io`;
//! - no tag and no digest: the tag is `latest`.

use std::fmt;

use crate::cas::Digest;

/// Docker Hub's canonical domain, and where its API really is.
pub const DOCKER_HUB: &str = "docker.io";
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Errors of reference parsing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("invalid reference format: {0:?}")]
    Format(String),
    #[error("invalid reference format: repository name {0:?} must be lowercase")]
    Uppercase(String),
    #[error("invalid reference format: {0:?} is longer than 255 characters")]
    TooLong(String),
    #[error("invalid reference format: bad tag in {0:?}")]
    Tag(String),
    #[error("invalid reference format: bad digest in {0:?}")]
    Digest(String),
}

/// A fully normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `127.0.0.1:5000`, `localhost`, ...
    pub domain: String,
    /// `library/alpine`, `ns/repo`, ...
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parse a reference as the user types it.
    pub fn parse(s: &str) -> Result<Reference, Error> {
        let fmt_err = || Error::Format(s.to_string());
        if s.is_empty() {
            return Err(fmt_err());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(
                    d.parse::<Digest>()
                        .map_err(|_| Error::Digest(s.to_string()))?,
                ),
            ),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/': a ':'
        // before it belongs to a domain's port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let t = &rest[last_slash + i + 1..];
                if !valid_tag(t) {
                    return Err(Error::Tag(s.to_string()));
                }
                (&rest[..last_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        if name.len() > 255 {
            return Err(Error::TooLong(s.to_string()));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if (first.contains(['.', ':']) || first == "localhost")
                    && first.to_lowercase() == first =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let domain = if domain == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            domain
        };
        if !valid_domain(&domain) {
            return Err(fmt_err());
        }
        let path = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.to_lowercase() != path {
            return Err(Error::Uppercase(name.to_string()));
        }
        if path.is_empty() || !path.split('/').all(valid_component) {
            return Err(fmt_err());
        }
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// `docker.io/library/alpine`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository as docker shows it: `alpine`, `user/app`,
    /// `127.0.0.1:5000/ns/app`.
    pub fn familiar_repository(&self) -> String {
        if self.domain == DOCKER_HUB {
            self.path
                .strip_prefix("library/")
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.repository()
        }
    }

    /// The host (and port) of the registry's API.
    pub fn registry_host(&self) -> &str {
        if self.domain == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.domain
        }
    }

    /// What to ask the registry for: the digest if there is one, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    /// The canonical form, the key of the image index:
    /// `docker.io/library/alpine:latest`, `host/repo@sha256:...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: one '.', one or two '_', or any number of '-'.
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// A host name or IP, with an optional port: `[a-zA-Z0-9-.]` labels or an
/// `[IPv6]` literal.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip6, tail)) if ip6.parse::<std::net::Ipv6Addr>().is_ok() => {
                ("ipv6", tail.strip_prefix(':'))
            }
            _ => return false,
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = !host.is_empty()
        && host.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        });
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_hub_normalization() {
        assert_eq!(norm("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(norm("alpine:3.20"), "docker.io/library/alpine:3.20");
        assert_eq!(norm("library/alpine"), "docker.io/library/alpine:latest");
        assert_eq!(
            norm("docker.io/library/alpine:latest"),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(norm("docker.io/alpine"), "docker.io/library/alpine:latest");
        assert_eq!(
            norm("index.docker.io/library/alpine"),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(norm("user/app/sub:v1"), "docker.io/user/app/sub:v1");
        let r = Reference::parse("alpine").unwrap();
        assert_eq!(r.registry_host(), "registry-1.docker.io");
        assert_eq!(r.familiar_repository(), "alpine");
        assert_eq!(
            Reference::parse("user/app").unwrap().familiar_repository(),
            "user/app"
        );
    }

    #[test]
    fn registries_with_ports_and_localhost() {
        let r = Reference::parse("127.0.0.1:5000/ns/repo:tag").unwrap();
        assert_eq!(r.domain, "127.0.0.1:5000");
        assert_eq!(r.path, "ns/repo");
        assert_eq!(r.tag.as_deref(), Some("tag"));
        assert_eq!(r.registry_host(), "127.0.0.1:5000");
        assert_eq!(r.familiar_repository(), "127.0.0.1:5000/ns/repo");
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(norm("quay.io/a/b"), "quay.io/a/b:latest");
        // Not a domain: no '.', no ':', not localhost; stays on Docker Hub.
        assert_eq!(norm("myhost/app"), "docker.io/myhost/app:latest");
        assert_eq!(norm("[::1]:5000/app"), "[::1]:5000/app:latest");
    }

    #[test]
    fn digests() {
        let hex = "a".repeat(64);
        let r = Reference::parse(&format!("repo@sha256:{hex}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/repo@sha256:{hex}")
        );
        assert_eq!(r.manifest_ref(), format!("sha256:{hex}"));
        let r = Reference::parse(&format!("h:1/r:t@sha256:{hex}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("t"));
        assert_eq!(
            Reference::parse("repo@sha256:abc"),
            Err(Error::Digest("repo@sha256:abc".into()))
        );
    }

    #[test]
    fn bad_references() {
        for bad in [
            "",
            ":tag",
            "repo:",
            "repo:-bad",
            "a//b",
            "/a",
            "a/",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "repo:tag:more",
            "host:port/x",
            "hé",
            "a b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(
            Reference::parse("Alpine"),
            Err(Error::Uppercase("Alpine".into()))
        );
        assert!(matches!(
            Reference::parse(&"a".repeat(256)),
            Err(Error::TooLong(_))
        ));
        // Components docker accepts.
        for good in ["a-b", "a--b", "a_b", "a__b", "a.b", "a1/b2", "x:1.0-rc_2"] {
            assert!(Reference::parse(good).is_ok(), "{good:?}");
        }
    }
}

//! An OCI Distribution client for one repository: manifests and blobs by
//! GET, with the anonymous or authenticated bearer-token flow and basic
//! auth, over https (plain http only for loopback registries and those
//! given with `--insecure-registry`).

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use super::Error;
use super::auth::{Challenge, Credentials, parse_challenge};
use super::limits::{Limits, MANIFEST_LIMIT, Meter};
use crate::image::reference::Reference;

/// The manifest media types containr accepts, most wanted first.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

pub struct Client {
    agent: ureq::Agent,
    /// `https://host` or `http://127.0.0.1:5000`.
    base: String,
    host: String,
    repo: String,
    creds: Option<Credentials>,
    /// The `Authorization` value that worked, shared by the download
    /// threads so the token is fetched once.
    auth: Mutex<Option<String>>,
    limits: Limits,
}

/// A loopback host: plain http is allowed there, as docker does.
pub fn is_loopback(host: &str) -> bool {
    let h = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Client {
    pub fn new(
        reference: &Reference,
        insecure: &[String],
        creds: Option<Credentials>,
        limits: &Limits,
    ) -> Client {
        let host = reference.registry_host().to_string();
        let plain = is_loopback(&host) || insecure.contains(&reference.domain);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            // A registry that answers nothing for a whole rate window is
            // under any minimum rate too.
            .timeout_recv_response(Some(limits.read_timeout()))
            // A read that waits a whole rate window is under any minimum
            // rate: the download fails then, instead of hanging.
            .timeout_per_read(Some(limits.read_timeout()))
            .user_agent(concat!("containr/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client {
            agent,
            base: format!("{}://{host}", if plain { "http" } else { "https" }),
            host,
            repo: reference.path.clone(),
            creds,
            auth: Mutex::new(None),
            limits: limits.clone(),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// GET `/v2/<repo>/<path>`, authenticating once if challenged.
    fn get(
        &self,
        path: &str,
        headers: &[(&str, String)],
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        self.get_url(&format!("{}/v2/{}/{path}", self.base, self.repo), headers)
    }

    /// `containr login`: the registry's `/v2/` answers 200 once
    /// authenticated with the credentials.
    pub fn check_login(&self) -> Result<(), Error> {
        let resp = self.get_url(&format!("{}/v2/", self.base), &[])?;
        match resp.status().as_u16() {
            200 => Ok(()),
            _ => Err(self.status_error(resp, "/v2/")),
        }
    }

    fn get_url(
        &self,
        url: &str,
        headers: &[(&str, String)],
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        let send = |auth: Option<&str>| {
            let mut req = self.agent.get(url);
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.call().map_err(|e| self.transport(e))
        };
        let current = self.auth.lock().expect("not poisoned").clone();
        let resp = send(current.as_deref())?;
        if resp.status().as_u16() != 401 {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        let Some(challenge) = challenge else {
            return Err(self.unauthorized(resp));
        };
        if current.is_some() && challenge == Challenge::Basic {
            return Err(self.unauthorized(resp));
        }
        let auth = self.authenticate(&challenge)?;
        *self.auth.lock().expect("not poisoned") = Some(auth.clone());
        let resp = send(Some(&auth))?;
        if resp.status().as_u16() == 401 {
            return Err(self.unauthorized(resp));
        }
        Ok(resp)
    }

    /// The `Authorization` value a challenge asks for.
    fn authenticate(&self, challenge: &Challenge) -> Result<String, Error> {
        match challenge {
            Challenge::Basic => match &self.creds {
                Some(c) => Ok(c.basic()),
                None => Err(Error::Unauthorized {
                    host: self.host.clone(),
                    detail: "credentials required: containr login".into(),
                }),
            },
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope
                    .clone()
                    .unwrap_or_else(|| format!("repository:{}:pull", self.repo));
                let mut url = format!("{realm}?scope={}", percent_encode(&scope));
                if let Some(s) = service {
                    url.push_str(&format!("&service={}", percent_encode(s)));
                }
                let mut req = self.agent.get(&url);
                if let Some(c) = &self.creds {
                    req = req.header("Authorization", c.basic());
                }
                let mut resp = req.call().map_err(|e| self.transport(e))?;
                match resp.status().as_u16() {
                    200 => {}
                    401 | 403 => {
                        return Err(Error::Unauthorized {
                            host: self.host.clone(),
                            detail: if self.creds.is_some() {
                                "the token server refused the credentials (wrong user or password?)"
                                    .into()
                            } else {
                                "the token server refused anonymous access: containr login".into()
                            },
                        });
                    }
                    s => {
                        return Err(Error::Protocol {
                            host: self.host.clone(),
                            reason: format!("token server {realm} answered HTTP {s}"),
                        });
                    }
                }
                let body = resp
                    .body_mut()
                    .with_config()
                    .limit(1 << 20)
                    .read_to_vec()
                    .map_err(|e| self.transport(e))?;
                #[derive(serde::Deserialize)]
                struct Token {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let t: Token = serde_json::from_slice(&body).map_err(|e| Error::Protocol {
                    host: self.host.clone(),
                    reason: format!("token server {realm} sent no token: {e}"),
                })?;
                let token = t.token.or(t.access_token).ok_or_else(|| Error::Protocol {
                    host: self.host.clone(),
                    reason: format!("token server {realm} sent no token"),
                })?;
                Ok(format!("Bearer {token}"))
            }
        }
    }

    /// A manifest or index by tag or digest: its bytes and `Content-Type`.
    pub fn manifest(&self, reference: &str) -> Result<(Vec<u8>, Option<String>), Error> {
        let resp = self.get(
            &format!("manifests/{reference}"),
            &[("Accept", ACCEPT.to_string())],
        )?;
        let sep = if reference.starts_with("sha256:") {
            "@"
        } else {
            ":"
        };
        let name = format!("{}/{}{sep}{reference}", self.host, self.repo);
        if resp.status().as_u16() != 200 {
            return Err(self.status_error(resp, &name));
        }
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or("").trim().to_string());
        let what = format!("manifest of {name}");
        let too_large = |size: Option<u64>| Error::TooLarge {
            what: what.clone(),
            size,
            limit: MANIFEST_LIMIT,
        };
        if let Some(n) = content_length(&resp)
            && n > MANIFEST_LIMIT
        {
            return Err(too_large(Some(n)));
        }
        // Read by hand, not with ureq's limit: a trickle must fail by the
        // rate, and a body without a length at the limit, with a message.
        let mut body = Vec::new();
        let mut reader = resp.into_body().into_reader();
        let mut meter = Meter::new(&self.limits, None);
        let mut buf = [0u8; 16 << 10];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => {
                    return Err(Error::Stopped {
                        what: what.clone(),
                        stop: meter.stalled(),
                    });
                }
                Err(e) => return Err(self.transport(ureq::Error::from(e))),
            };
            if (body.len() + n) as u64 > MANIFEST_LIMIT {
                return Err(too_large(None));
            }
            body.extend_from_slice(&buf[..n]);
            meter.add(n).map_err(|stop| Error::Stopped {
                what: what.clone(),
                stop,
            })?;
        }
        Ok((body, ctype))
    }

    /// A blob's body from byte `offset` on; true if the registry honoured
    /// the range (206), false if it sends the whole blob (200).
    pub fn blob(&self, digest: &str, offset: u64) -> Result<(ureq::Body, bool), Error> {
        let headers = if offset > 0 {
            vec![("Range", format!("bytes={offset}-"))]
        } else {
            Vec::new()
        };
        let resp = self.get(&format!("blobs/{digest}"), &headers)?;
        match resp.status().as_u16() {
            200 => Ok((resp.into_body(), false)),
            206 => Ok((resp.into_body(), true)),
            _ => Err(self.status_error(resp, digest)),
        }
    }

    pub fn transport(&self, e: ureq::Error) -> Error {
        let reason = match &e {
            ureq::Error::Io(io) => io.to_string(),
            ureq::Error::ConnectionFailed => "connection failed".into(),
            ureq::Error::HostNotFound => "host not found".into(),
            ureq::Error::Timeout(t) => format!("timed out ({t})"),
            other => other.to_string(),
        };
        Error::Unreachable {
            host: self.host.clone(),
            reason,
        }
    }

    fn unauthorized(&self, resp: ureq::http::Response<ureq::Body>) -> Error {
        Error::Unauthorized {
            host: self.host.clone(),
            detail: if self.creds.is_some() {
                "the registry refused the credentials (wrong user or password?)".into()
            } else {
                format!(
                    "authentication required: containr login {}",
                    error_detail(resp).unwrap_or_default()
                )
                .trim()
                .to_string()
            },
        }
    }

    fn status_error(&self, resp: ureq::http::Response<ureq::Body>, what: &str) -> Error {
        let status = resp.status().as_u16();
        let detail = error_detail(resp);
        if status == 404 {
            Error::NotFound {
                what: what.to_string(),
                host: self.host.clone(),
                detail: detail.map(|d| format!(" ({d})")).unwrap_or_default(),
            }
        } else {
            Error::Status {
                host: self.host.clone(),
                what: what.to_string(),
                status,
                detail: detail.map(|d| format!(": {d}")).unwrap_or_default(),
            }
        }
    }
}

/// The `Content-Length` a response declares.
pub fn content_length(resp: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    resp.headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// A read that timed out (ureq wraps its own timeouts in an `io::Error`).
pub fn is_timeout(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::TimedOut
        || e.kind() == std::io::ErrorKind::WouldBlock
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)))
}

/// The registry's `{"errors":[{"code":..,"message":..}]}`, as one line.
fn error_detail(mut resp: ureq::http::Response<ureq::Body>) -> Option<String> {
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_vec()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let errs = v.get("errors")?.as_array()?;
    let parts: Vec<String> = errs
        .iter()
        .map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
            format!("{code}: {msg}")
                .trim_matches([' ', ':'])
                .to_string()
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Percent-encode a query value (RFC 3986 unreserved characters pass).
fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost:80",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "registry-1.docker.io",
            "10.0.0.1:5000",
            "[fe80::1]:1",
            "localhost.evil.com",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            percent_encode("repository:library/alpine:pull"),
            "repository%3Alibrary%2Falpine%3Apull"
        );
    }
}

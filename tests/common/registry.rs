//! A real registry for the tests: Debian's `docker-registry` (the CNCF
//! distribution registry) on 127.0.0.1 and a free port, images written as
//! OCI layouts by the test and pushed with `skopeo`, and a small proxy in
//! front of it that adds token auth, throttling and a request log.
//! Everything listens on loopback only and is gone when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::Digest as _;

/// `docker-registry serve` on 127.0.0.1:<free port>.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`
    pub host: String,
    pub dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("containr-registry.")
            .tempdir()
            .unwrap();
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (apt-get install docker-registry, or scripts/deps test)");
        let reg = Registry {
            child,
            host: format!("127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(&reg.host).is_err() {
            assert!(Instant::now() < deadline, "the registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    /// Push the OCI layout `layout`'s `tag` as `repo_tag` on this registry
    /// (`skopeo copy --all`); `v2s2` converts to Docker's media types.
    pub fn push(&self, layout: &Path, tag: &str, repo_tag: &str, v2s2: bool) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q", "--all", "--dest-tls-verify=false"]);
        if v2s2 {
            cmd.args(["--format", "v2s2"]);
        }
        let out = cmd
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo_tag}", self.host))
            .output()
            .expect("skopeo");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The file where the registry keeps blob `hex`.
    pub fn blob_file(&self, hex: &str) -> PathBuf {
        self.dir.path().join(format!(
            "storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A registry that misbehaves on purpose (tests/helpers/hostile_registry.py):
/// the repository `hostile/<case>` picks how.
pub struct Hostile {
    child: Child,
    /// `127.0.0.1:PORT`
    pub host: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Hostile {
    pub fn start() -> Hostile {
        let dir = tempfile::Builder::new()
            .prefix("containr-hostile.")
            .tempdir()
            .unwrap();
        let log = dir.path().join("requests");
        std::fs::write(&log, "").unwrap();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/hostile_registry.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(&log)
            .arg(host_arch())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        // The port, once it listens (or nothing, if it failed to start).
        let mut port = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        let port: u16 = port.trim().parse().expect("the hostile registry's port");
        Hostile {
            child,
            host: format!("127.0.0.1:{port}"),
            log,
            _dir: dir,
        }
    }

    /// The image name that makes it misbehave as `case`.
    pub fn name(&self, case: &str) -> String {
        format!("{}/hostile/{case}:1", self.host)
    }

    /// `GET PATH [Range]` of each request so far.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Forget the requests so far.
    pub fn clear(&self) {
        std::fs::write(&self.log, "").unwrap();
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The host's architecture as OCI names it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no test image for {other}"),
    }
}

// ------------------------------------------------------------ OCI layouts

pub fn sha256_hex(b: &[u8]) -> String {
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[derive(Clone, Copy)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// An OCI image layout being written.
pub struct Layout {
    pub dir: PathBuf,
    tags: Vec<serde_json::Value>,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_path_buf(),
            tags: Vec::new(),
        }
    }

    /// Store a blob; its descriptor.
    pub fn blob(&self, media_type: &str, bytes: &[u8]) -> serde_json::Value {
        let hex = sha256_hex(bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(&hex), bytes).unwrap();
        serde_json::json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()})
    }

    /// An image of `layers` (uncompressed tars, each compressed as asked)
    /// with `config` as its run config; the manifest's descriptor.
    pub fn image(
        &self,
        layers: &[(Vec<u8>, Compression)],
        config: serde_json::Value,
        arch: &str,
    ) -> serde_json::Value {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for (tar, c) in layers {
            diff_ids.push(format!("sha256:{}", sha256_hex(tar)));
            let (mt, bytes) = match c {
                Compression::None => ("application/vnd.oci.image.layer.v1.tar", tar.clone()),
                Compression::Gzip => {
                    let mut g =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    g.write_all(tar).unwrap();
                    (
                        "application/vnd.oci.image.layer.v1.tar+gzip",
                        g.finish().unwrap(),
                    )
                }
                Compression::Zstd => (
                    "application/vnd.oci.image.layer.v1.tar+zstd",
                    zstd::encode_all(&tar[..], 3).unwrap(),
                ),
            };
            descs.push(self.blob(mt, &bytes));
        }
        let cfg = serde_json::json!({
            "architecture": arch, "os": "linux",
            "created": "2024-05-01T12:00:00Z",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let cfg_desc = self.blob(
            "application/vnd.oci.image.config.v1+json",
            &serde_json::to_vec(&cfg).unwrap(),
        );
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cfg_desc, "layers": descs,
        });
        let mut d = self.blob(
            "application/vnd.oci.image.manifest.v1+json",
            &serde_json::to_vec(&manifest).unwrap(),
        );
        d["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
        d
    }

    /// An index of manifests (with their platforms); its descriptor.
    pub fn index(&self, manifests: &[serde_json::Value]) -> serde_json::Value {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        self.blob(
            "application/vnd.oci.image.index.v1+json",
            &serde_json::to_vec(&index).unwrap(),
        )
    }

    /// Name `desc` `tag` in the layout's index.json.
    pub fn tag(&mut self, tag: &str, desc: &serde_json::Value) {
        let mut d = desc.clone();
        d.as_object_mut().unwrap().remove("platform");
        d["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
        self.tags.push(d);
        let index = serde_json::json!({"schemaVersion": 2, "manifests": self.tags});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }
}

/// A tar of `dir` (the busybox rootfs), as `tar` writes it.
pub fn tar_dir(dir: &Path) -> Vec<u8> {
    let out = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .args(["--numeric-owner", "-cf", "-", "."])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// A small tar: (path, Some(contents)) files and (path, None) directories.
pub fn tar_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        match data {
            Some(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(d.len() as u64);
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
            }
        }
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_path(path).unwrap();
        h.set_cksum();
        b.append(&h, data.unwrap_or(b"")).unwrap();
    }
    b.into_inner().unwrap()
}

// ------------------------------------------------------------ the proxy

/// What the proxy in front of the registry does.
#[derive(Clone, Default)]
pub struct ProxyConfig {
    /// Token auth: `(user, password)` the token server accepts; the
    /// registry side then wants `Bearer <token>`.
    pub token_auth: Option<(String, String)>,
    /// Sleep this long after each 16 KiB of a blob body.
    pub throttle: Option<Duration>,
    /// Answer every manifest request with this (Content-Type, body).
    pub manifest: Option<(String, Vec<u8>)>,
    /// Basic auth: `(user, password)` every registry request must carry.
    pub basic_auth: Option<(String, String)>,
}

/// An HTTP proxy on 127.0.0.1 in front of a registry.
pub struct Proxy {
    pub host: String,
    /// `METHOD PATH [range]` of each request that reached the registry.
    pub log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

const TOKEN: &str = "containr-test-token";

impl Proxy {
    pub fn start(upstream: &str, config: ProxyConfig) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        listener.set_nonblocking(true).unwrap();
        let (up, me, l, s) = (
            upstream.to_string(),
            host.clone(),
            log.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (up, me, l, c) = (up.clone(), me.clone(), l.clone(), config.clone());
                        std::thread::spawn(move || {
                            let _ = serve(conn, &up, &me, &c, &l);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Proxy { host, log, stop }
    }

    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn respond(conn: &mut TcpStream, status: &str, headers: &[String], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
}

fn serve(
    mut conn: TcpStream,
    upstream: &str,
    me: &str,
    config: &ProxyConfig,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        headers.push(line.trim_end().to_string());
    }
    let header = |name: &str| {
        headers.iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if let Some((user, pass)) = &config.token_auth {
        if path.starts_with("/token") {
            let want = format!(
                "Basic {}",
                containr::registry::auth::base64_encode(format!("{user}:{pass}").as_bytes())
            );
            if header("authorization").as_deref() == Some(want.as_str()) {
                respond(
                    &mut conn,
                    "200 OK",
                    &[],
                    format!(r#"{{"token":"{TOKEN}"}}"#).as_bytes(),
                );
            } else {
                respond(
                    &mut conn,
                    "401 Unauthorized",
                    &[],
                    br#"{"details":"bad credentials"}"#,
                );
            }
            return Ok(());
        }
        if header("authorization").as_deref() != Some(&format!("Bearer {TOKEN}")) {
            respond(
                &mut conn,
                "401 Unauthorized",
                &[format!(
                    r#"WWW-Authenticate: Bearer realm="http://{me}/token",service="containr-test",scope="repository:x:pull""#
                )],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            );
            return Ok(());
        }
    }
    if let Some((user, pass)) = &config.basic_auth {
        let want = format!(
            "Basic {}",
            containr::registry::auth::base64_encode(format!("{user}:{pass}").as_bytes())
        );
        if header("authorization").as_deref() != Some(want.as_str()) {
            respond(
                &mut conn,
                "401 Unauthorized",
                &[r#"WWW-Authenticate: Basic realm="containr-test""#.to_string()],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            );
            return Ok(());
        }
    }
    if let Some((ctype, body)) = &config.manifest
        && path.contains("/manifests/")
    {
        respond(
            &mut conn,
            "200 OK",
            &[format!("Content-Type: {ctype}")],
            body,
        );
        return Ok(());
    }
    let range = header("range");
    log.lock().unwrap().push(format!(
        "{method} {path}{}",
        range
            .as_deref()
            .map(|r| format!(" {r}"))
            .unwrap_or_default()
    ));
    let mut up = TcpStream::connect(upstream)?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n");
    for name in ["accept", "range"] {
        if let Some(v) = header(name) {
            req.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    req.push_str("\r\n");
    up.write_all(req.as_bytes())?;
    let mut buf = [0u8; 16 * 1024];
    let throttle = config.throttle.filter(|_| path.contains("/blobs/"));
    loop {
        let n = up.read(&mut buf)?;
        if n == 0 {
            break;
        }
        conn.write_all(&buf[..n])?;
        if let Some(t) = throttle {
            std::thread::sleep(t);
        }
    }
    Ok(())
}

//! Pulling from a real registry (Debian's docker-registry on 127.0.0.1),
//! images built by the test as OCI layouts and pushed with skopeo: layers
//! and their compressions, whiteouts, indexes, token auth, shared layers,
//! resumed downloads, and every kind of bad input.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::registry::{
    Compression, Layout, Proxy, ProxyConfig, Registry, host_arch, tar_dir, tar_of,
};
use common::{Sandbox, assert_fails};
use serde_json::json;

fn pull(sb: &Sandbox, name: &str) -> std::process::Output {
    sb.cmd(&["pull", name]).output().unwrap()
}

fn pull_ok(sb: &Sandbox, name: &str) -> String {
    let out = pull(sb, name);
    assert!(
        out.status.success(),
        "pull {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn run(sb: &Sandbox, args: &[&str]) -> String {
    let mut full = vec!["run", "--rm", "-q"];
    full.extend_from_slice(args);
    sb.containr_ok(&full)
}

/// `containr verify` finds nothing wrong.
fn assert_verified(sb: &Sandbox) {
    let out = sb.containr_ok(&["verify"]);
    assert!(out.ends_with("no problems\n"), "{out}");
}

fn blob_count(sb: &Sandbox) -> usize {
    sb.entries("blobs/sha256").len()
}

#[test]
fn pulls_a_single_layer_image_and_applies_its_config() {
    let sb = Sandbox::new();
    let reg = Registry::start();
    let mut layout = Layout::new(&sb.dir.path().join("oci"));
    let m = layout.image(
        &[(tar_dir(&sb.rootfs), Compression::Gzip)],
        json!({
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo $GREETING from $(pwd) as $(id -u)"],
            "Env": ["GREETING=hi", "PATH=/bin:/usr/bin"],
            "WorkingDir": "/work",
            "User": "1000",
        }),
        "amd64",
    );
    layout.tag("1", &m);
    reg.push(&layout.dir, "1", "test/base:1", false);
    let name = format!("{}/test/base:1", reg.host);
    let out = sb.cmd(&["pull", &name]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Progress on stdout as docker's, the name last.
    let progress = String::from_utf8_lossy(&out.stdout);
    assert!(progress.contains("Pull complete"), "{progress}");
    assert!(progress.ends_with(&format!("\n{name}\n")), "{progress}");
    // Layer, config and manifest, stored once each.
    assert_eq!(blob_count(&sb), 3);
    assert_eq!(run(&sb, &[&name]), "hi from /work as 1000\n");
    // --pull always pulls again (the manifest is asked for again).
    assert_eq!(
        run(&sb, &["--pull", "always", &name, "echo again"]),
        "again\n"
    );
    // Arguments replace Cmd and keep the Entrypoint; -e, -w, -u win.
    assert_eq!(run(&sb, &[&name, "echo override"]), "override\n");
    assert_eq!(
        run(&sb, &["-e", "GREETING=yo", "-w", "/tmp", "-u", "0", &name]),
        "yo from /tmp as 0\n"
    );
    assert_eq!(run(&sb, &["--entrypoint", "/bin/echo", &name, "x"]), "x\n");
    assert!(
        sb.containr_ok(&["images"])
            .contains(&format!("{}/test/base", reg.host))
    );
    // Quiet pulls print nothing but the name; an image already there is not
    // downloaded again.
    let again = sb.cmd(&["pull", "-q", &name]).output().unwrap();
    assert!(again.status.success() && again.stderr.is_empty());
    assert_eq!(String::from_utf8_lossy(&again.stdout), format!("{name}\n"));
    assert_verified(&sb);
}

#[test]
fn multi_layer_image_with_whiteouts_gzip_zstd_and_plain_layers() {
    let sb = Sandbox::new();
    let reg = Registry::start();
    let mut layout = Layout::new(&sb.dir.path().join("oci"));
    let l2 = tar_of(&[
        ("data", None),
        ("data/a", Some(b"1")),
        ("data/b", Some(b"2")),
        ("keep", None),
        ("keep/x", Some(b"x")),
        ("gone", Some(b"g")),
    ]);
    let l3 = tar_of(&[
        ("data", None),
        ("data/.wh..wh..opq", Some(b"")),
        ("data/c", Some(b"3")),
        (".wh.gone", Some(b"")),
        ("keep/y", Some(b"y")),
    ]);
    let m = layout.image(
        &[
            (tar_dir(&sb.rootfs), Compression::Gzip),
            (l2, Compression::Zstd),
            (l3, Compression::None),
            // More layers than fsconfig's 256-byte values could name by
            // path: the userns overlay below must still find them all.
            (tar_of(&[("keep/4", Some(b"4"))]), Compression::Gzip),
            (tar_of(&[("keep/5", Some(b"5"))]), Compression::Gzip),
            (tar_of(&[("keep/6", Some(b"6"))]), Compression::Gzip),
        ],
        json!({"Cmd": ["sh"]}),
        "amd64",
    );
    layout.tag("multi", &m);
    reg.push(&layout.dir, "multi", "test/multi:1", false);
    let name = format!("{}/test/multi:1", reg.host);
    pull_ok(&sb, &name);
    assert_eq!(sb.snapshots().len(), 6);
    assert_eq!(
        run(
            &sb,
            &[
                &name,
                "sh",
                "-c",
                "ls /data; ls /keep; test -e /gone || echo no-gone"
            ]
        ),
        "c\n4\n5\n6\nx\ny\nno-gone\n"
    );
    // In a user namespace the layers are idmapped, and the overlay is still
    // host root's: the opaque marker (a trusted.* xattr) and the whiteout
    // still hide what they hide, image files belong to container root, and
    // what the container writes is stored under its host ids.
    assert_eq!(
        run(
            &sb,
            &[
                "--userns-remap=300000:65536",
                &name,
                "sh",
                "-c",
                "ls /data; test -e /gone || echo no-gone; stat -c '%u:%g' /keep/x /; \
                 touch /keep/z && rm /data/c && ls /keep /data && stat -c '%u:%g' /keep/z; \
                 cat /proc/self/uid_map | tr -s ' '"
            ]
        ),
        "c\nno-gone\n0:0\n0:0\n/data:\n\n/keep:\n4\n5\n6\nx\ny\nz\n0:0\n 0 300000 65536\n"
    );
    assert!(sb.entries("rw").is_empty());
    // The whiteout and the opaque marker are overlayfs's own.
    let top = sb
        .snapshots()
        .into_iter()
        .map(|s| sb.data.join("snapshots").join(s))
        .find(|p| p.join("data/c").exists())
        .unwrap();
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let wh = std::fs::symlink_metadata(top.join("gone")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    let xattr = std::process::Command::new("getfattr")
        .args([
            "--absolute-names",
            "-n",
            "trusted.overlay.opaque",
            "--only-values",
        ])
        .arg(top.join("data"))
        .output()
        .expect("getfattr (attr)");
    assert_eq!(String::from_utf8_lossy(&xattr.stdout), "y");
    assert_verified(&sb);
}

/// A two-platform index; `arch` marks which image was picked.
fn push_multiarch(sb: &Sandbox, reg: &Registry, v2s2: bool) -> String {
    let mut layout = Layout::new(&sb.dir.path().join(format!("oci-{v2s2}")));
    let base = tar_dir(&sb.rootfs);
    let mut manifests = Vec::new();
    for arch in ["amd64", "arm64", "s390x"] {
        let marker = tar_of(&[("etc", None), ("etc/arch", Some(arch.as_bytes()))]);
        manifests.push(layout.image(
            &[
                (base.clone(), Compression::Gzip),
                (marker, Compression::Gzip),
            ],
            json!({"Cmd": ["cat", "/etc/arch"]}),
            arch,
        ));
    }
    let index = layout.index(&manifests);
    layout.tag("multi", &index);
    let repo = if v2s2 { "test/list:1" } else { "test/index:1" };
    reg.push(&layout.dir, "multi", repo, v2s2);
    format!("{}/{repo}", reg.host)
}

#[test]
fn an_index_resolves_to_the_host_platform_or_the_one_asked() {
    let sb = Sandbox::new();
    let reg = Registry::start();
    // OCI index, and the same converted to a Docker manifest list.
    for v2s2 in [false, true] {
        let name = push_multiarch(&sb, &reg, v2s2);
        pull_ok(&sb, &name);
        assert_eq!(run(&sb, &[&name]), host_arch());
        // The platform's manifest is what the name points to.
        let inspect: serde_json::Value =
            serde_json::from_str(&sb.containr_ok(&["image", "inspect", &name])).unwrap();
        assert_eq!(inspect[0]["Architecture"], host_arch());
        let out = sb
            .cmd(&["pull", "--platform", "linux/s390x", &name])
            .output()
            .unwrap();
        assert!(out.status.success());
        let inspect: serde_json::Value =
            serde_json::from_str(&sb.containr_ok(&["image", "inspect", &name])).unwrap();
        assert_eq!(inspect[0]["Architecture"], "s390x");
        // A stored image of another platform than asked is never used:
        // refused with --pull never, pulled again otherwise, as docker.
        let host = format!("linux/{}", host_arch());
        assert_fails(
            &sb.cmd(&["run", "--rm", "--pull", "never", "--platform", &host, &name])
                .output()
                .unwrap(),
            125,
            &format!("does not match the specified platform: wanted {host}, actual: linux/s390x"),
        );
        assert_eq!(run(&sb, &["--platform", &host, &name]), host_arch());
        for cmd in ["run", "pull"] {
            assert_fails(
                &sb.cmd(&[cmd, "--platform", "foo", &name]).output().unwrap(),
                125,
                "invalid --platform \"foo\": expected os/arch[/variant]",
            );
        }
        assert_fails(
            &sb.cmd(&["pull", "--platform", "linux/riscv64", &name])
                .output()
                .unwrap(),
            125,
            "no image for platform linux/riscv64",
        );
    }
    assert_verified(&sb);
}

#[test]
fn images_sharing_a_base_layer_store_and_unpack_it_once() {
    let sb = Sandbox::new();
    let reg = Registry::start();
    let mut layout = Layout::new(&sb.dir.path().join("oci"));
    let base = tar_dir(&sb.rootfs);
    for app in ["one", "two"] {
        let top = tar_of(&[("app", None), ("app/name", Some(app.as_bytes()))]);
        let m = layout.image(
            &[(base.clone(), Compression::Gzip), (top, Compression::Gzip)],
            json!({"Cmd": ["cat", "/app/name"]}),
            "amd64",
        );
        layout.tag(app, &m);
        reg.push(&layout.dir, app, &format!("test/{app}:1"), false);
    }
    // Concurrent pulls of the same image and of another sharing its base.
    let names = [
        format!("{}/test/one:1", reg.host),
        format!("{}/test/one:1", reg.host),
        format!("{}/test/two:1", reg.host),
    ];
    let children: Vec<_> = names
        .iter()
        .map(|n| {
            sb.cmd(&["pull", "-q", n])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_verified(&sb);
    let second = pull_ok(&sb, &format!("{}/test/two:1", reg.host));
    assert!(second.contains("Already exists"), "{second}");
    // base + two tops; 3 layer blobs + 2 configs + 2 manifests.
    assert_eq!(sb.snapshots().len(), 3);
    assert_eq!(blob_count(&sb), 7);
    assert_eq!(run(&sb, &[&format!("{}/test/one:1", reg.host)]), "one");
    assert_eq!(run(&sb, &[&format!("{}/test/two:1", reg.host)]), "two");
    // gc keeps what images use, then sweeps what rmi freed.
    sb.containr_ok(&["gc"]);
    assert_eq!(blob_count(&sb), 7);
    sb.containr_ok(&["rmi", &format!("{}/test/one:1", reg.host)]);
    let swept = sb.containr_ok(&["gc"]);
    assert_eq!(swept.matches("Deleted blob").count(), 3, "{swept}");
    assert_eq!(sb.snapshots().len(), 2);
    // Each with its sum; the swept one's went with it.
    assert_eq!(sb.entries("snapshots").len(), 4);
    assert_eq!(run(&sb, &[&format!("{}/test/two:1", reg.host)]), "two");
    assert_verified(&sb);
}

#[test]
fn token_auth_login_and_logout() {
    let sb = Sandbox::new();
    let reg = Registry::start();
    let mut layout = Layout::new(&sb.dir.path().join("oci"));
    let m = layout.image(
        &[(tar_dir(&sb.rootfs), Compression::Gzip)],
        json!({"Cmd": ["echo", "authed"]}),
        "amd64",
    );
    layout.tag("1", &m);
    reg.push(&layout.dir, "1", "private/app:1", false);
    let proxy = Proxy::start(
        &reg.host,
        ProxyConfig {
            token_auth: Some(("alice".into(), "s3cret".into())),
            ..Default::default()
        },
    );
    let docker_config = sb.dir.path().join("docker-config");
    let cmd = |args: &[&str]| {
        let mut c = sb.cmd(args);
        c.env("DOCKER_CONFIG", &docker_config);
        c.output().unwrap()
    };
    let name = format!("{}/private/app:1", proxy.host);
    assert_fails(&cmd(&["pull", &name]), 125, "unauthorized");
    assert_fails(
        &cmd(&["login", "-u", "alice", "-p", "wrong", &proxy.host]),
        125,
        "wrong user or password",
    );
    assert!(!docker_config.join("config.json").exists());
    let out = cmd(&["login", "-u", "alice", "-p", "s3cret", &proxy.host]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = std::fs::read_to_string(docker_config.join("config.json")).unwrap();
    assert!(
        saved.contains(&proxy.host) && saved.contains("YWxpY2U6czNjcmV0"),
        "{saved}"
    );
    let out = cmd(&["pull", &name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(run(&sb, &[&name]), "authed\n");
    let out = cmd(&["logout", &proxy.host]);
    assert!(out.status.success());
    assert_fails(
        &cmd(&["pull", &format!("{name}-other")]),
        125,
        "unauthorized",
    );

    // Basic auth, credentials from the same config file.
    let basic = Proxy::start(
        &reg.host,
        ProxyConfig {
            basic_auth: Some(("bob".into(), "pw".into())),
            ..Default::default()
        },
    );
    let name = format!("{}/private/app:1", basic.host);
    assert_fails(&cmd(&["pull", &name]), 125, "unauthorized");
    assert_fails(
        &cmd(&["login", "-u", "bob", "-p", "nope", &basic.host]),
        125,
        "wrong user or password",
    );
    let out = cmd(&["login", "-u", "bob", "-p", "pw", &basic.host]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cmd(&["pull", &name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_verified(&sb);
}

#[test]
fn bad_input_is_a_one_line_error_and_stores_nothing() {
    let sb = Sandbox::new();
    let reg = Registry::start();
    let mut layout = Layout::new(&sb.dir.path().join("oci"));
    let base = tar_dir(&sb.rootfs);
    let m = layout.image(&[(base, Compression::Gzip)], json!({}), "amd64");
    layout.tag("1", &m);
    reg.push(&layout.dir, "1", "test/ok:1", false);
    let h = &reg.host;
    let nothing_stored = |case: &str| {
        assert_eq!(blob_count(&sb), 0, "{case} stored a blob");
        assert!(sb.entries("snapshots").is_empty(), "{case} left a snapshot");
        assert_eq!(
            sb.containr_ok(&["images", "-q"]),
            "",
            "{case} named an image"
        );
        assert_verified(&sb);
    };
    let cases = [
        (format!("{h}/test/nope:1"), "not found in registry"),
        (format!("{h}/test/ok:nope"), "MANIFEST_UNKNOWN"),
        (format!("{h}/Test/ok"), "must be lowercase"),
        (format!("{h}/test/ok:"), "invalid reference format"),
        (
            "127.0.0.1:1/test/ok:1".to_string(),
            "cannot reach registry 127.0.0.1:1",
        ),
    ];
    for (name, needle) in &cases {
        assert_fails(&pull(&sb, name), 125, needle);
        nothing_stored(name);
    }
    // `run` pulls what it does not have, with the same errors.
    assert_fails(
        &sb.cmd(&["run", "-q", "127.0.0.1:1/test/ok:1", "true"])
            .output()
            .unwrap(),
        125,
        "cannot reach registry 127.0.0.1:1",
    );
    nothing_stored("run");
    // A registry whose manifests are not JSON, or not a manifest.
    for (ctype, body, needle) in [
        (
            "application/vnd.oci.image.manifest.v1+json",
            &b"<html>oops</html>"[..],
            "not JSON",
        ),
        (
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            br#"{"schemaVersion":1,"name":"x"}"#,
            "unsupported manifest media type",
        ),
    ] {
        let proxy = Proxy::start(
            h,
            ProxyConfig {
                manifest: Some((ctype.into(), body.to_vec())),
                ..Default::default()
            },
        );
        assert_fails(
            &pull(&sb, &format!("{}/test/ok:1", proxy.host)),
            125,
            needle,
        );
        nothing_stored(ctype);
    }
    // The registry's copy of the layer corrupted, then truncated.
    let layer = m_layer_hex(&layout.dir, &m);
    let file = reg.blob_file(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let len = bytes.len();
    bytes[len / 2] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    assert_fails(
        &pull(&sb, &format!("{h}/test/ok:1")),
        125,
        "digest mismatch",
    );
    nothing_stored("corrupt layer");
    std::fs::write(&file, &bytes[..len / 2]).unwrap();
    assert_fails(&pull(&sb, &format!("{h}/test/ok:1")), 125, "size mismatch");
    nothing_stored("truncated layer");
    assert!(sb.entries("blobs/partial").is_empty());
}

/// The hex digest of the first layer of the manifest `m` in `layout`.
fn m_layer_hex(layout: &Path, m: &serde_json::Value) -> String {
    let hex = m["digest"].as_str().unwrap().trim_start_matches("sha256:");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap())
            .unwrap();
    manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string()
}

#[test]
fn a_pull_killed_half_way_resumes_with_range() {
    let sb = Sandbox::new();
    let reg = Registry::start();
    let mut layout = Layout::new(&sb.dir.path().join("oci"));
    // 3 MiB that does not compress, throttled to ~3 MiB/s by the proxy.
    let mut noise = vec![0u8; 3 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let big = tar_of(&[("noise", Some(&noise))]);
    let m = layout.image(
        &[
            (tar_dir(&sb.rootfs), Compression::Gzip),
            (big, Compression::None),
        ],
        json!({"Cmd": ["sh", "-c", "wc -c < /noise"]}),
        "amd64",
    );
    layout.tag("1", &m);
    reg.push(&layout.dir, "1", "test/big:1", false);
    let proxy = Proxy::start(
        &reg.host,
        ProxyConfig {
            throttle: Some(Duration::from_millis(5)),
            ..Default::default()
        },
    );
    let name = format!("{}/test/big:1", proxy.host);
    let mut child = sb
        .cmd(&["pull", "-q", &name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let partial: u64 = sb
            .entries("blobs/partial")
            .iter()
            .map(|p| {
                std::fs::metadata(sb.data.join("blobs/partial").join(p)).map_or(0, |m| m.len())
            })
            .max()
            .unwrap_or(0);
        if partial > 512 * 1024 {
            break;
        }
        assert!(Instant::now() < deadline, "the download never got going");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull ended too soon"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(sb.containr_ok(&["images", "-q"]), "");
    pull_ok(&sb, &name);
    let ranged: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.contains("bytes="))
        .collect();
    // Both layers were under way when the pull was killed: each resumes
    // where it stopped.
    assert!(!ranged.is_empty(), "{:?}", proxy.requests());
    assert!(ranged.iter().all(|r| !r.contains("bytes=0-")), "{ranged:?}");
    assert!(sb.entries("blobs/partial").is_empty());
    assert_eq!(run(&sb, &[&name]).trim(), (noise.len()).to_string());
    assert_verified(&sb);
}

/// An OCI layout of busybox plus a layer holding `file` (`contents`), which
/// the image's Cmd prints; tagged `tag`.
fn busybox_with(sb: &Sandbox, file: &str, contents: &[u8], tag: &str) -> Layout {
    let mut layout = Layout::new(&sb.dir.path().join("oci"));
    let m = layout.image(
        &[
            (tar_dir(&sb.rootfs), Compression::Gzip),
            (tar_of(&[(file, Some(contents))]), Compression::Gzip),
        ],
        json!({"Cmd": ["cat", format!("/{file}")]}),
        "amd64",
    );
    layout.tag(tag, &m);
    layout
}

fn skopeo_copy(from: &str, to: &str) {
    let out = std::process::Command::new("skopeo")
        .args(["copy", "-q", from, to])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn load_and_save_round_trip_docker_archives_and_oci_layouts() {
    let sb = Sandbox::new();
    let layout = busybox_with(&sb, "etc/loaded", b"yes", "loaded/oci:1");
    // An OCI layout as a tar.
    let oci_tar = sb.dir.path().join("oci.tar");
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&layout.dir)
        .arg("-cf")
        .arg(&oci_tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        sb.containr_ok(&["load", "-i", oci_tar.to_str().unwrap()]),
        "Loaded image: docker.io/loaded/oci:1\n"
    );
    assert_eq!(run(&sb, &["loaded/oci:1"]), "yes");
    // What `docker save` writes, as skopeo writes it (uncompressed layers).
    let archive = sb.dir.path().join("docker.tar");
    skopeo_copy(
        &format!("oci:{}:loaded/oci:1", layout.dir.display()),
        &format!("docker-archive:{}:loaded/docker:2", archive.display()),
    );
    assert_eq!(
        sb.containr_ok(&["load", "-i", archive.to_str().unwrap()]),
        "Loaded image: docker.io/loaded/docker:2\n"
    );
    assert_eq!(run(&sb, &["loaded/docker:2"]), "yes");
    // Only blobs were stored: gc finds nothing to sweep.
    let swept = sb.containr_ok(&["gc"]);
    assert!(!swept.contains("Deleted blob"), "{swept}");
    // save, then load into an empty store.
    let saved = sb.dir.path().join("saved.tar");
    sb.containr_ok(&["save", "-o", saved.to_str().unwrap(), "loaded/oci:1"]);
    let other = sb.dir.path().join("other-root");
    let load = std::process::Command::new(common::BIN)
        .arg("--root")
        .arg(&other)
        .args(["load", "-i", saved.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let ids = |root: &Path| {
        let out = std::process::Command::new(common::BIN)
            .arg("--root")
            .arg(root)
            .args(["images", "-q"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(ids(&sb.data).contains(ids(&other).trim()));
    // skopeo reads what save wrote, both ways.
    for transport in ["docker-archive", "oci-archive"] {
        let out = std::process::Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("{transport}:{}", saved.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{transport}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A tar whose blob does not match its name stores nothing.
    let bad = sb.dir.path().join("bad.tar");
    let blob = std::fs::read_dir(layout.dir.join("blobs/sha256"))
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&layout.dir)
        .arg("-cf")
        .arg(&bad)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let before = blob_count(&sb);
    assert_fails(
        &sb.cmd(&["load", "-i", bad.to_str().unwrap()])
            .output()
            .unwrap(),
        125,
        "digest mismatch",
    );
    assert_eq!(blob_count(&sb), before);
    assert_verified(&sb);
}

#[test]
fn an_unnamed_docker_archive_loads_by_id_and_runs_tags_and_saves_by_id() {
    let sb = Sandbox::new();
    let layout = busybox_with(&sb, "etc/unnamed", b"anon", "t");
    // No name after the file: skopeo writes `"RepoTags": []`.
    let archive = sb.dir.path().join("unnamed.tar");
    skopeo_copy(
        &format!("oci:{}:t", layout.dir.display()),
        &format!("docker-archive:{}", archive.display()),
    );
    let loaded = sb.containr_ok(&["load", "-i", archive.to_str().unwrap()]);
    let id = loaded
        .strip_prefix("Loaded image ID: ")
        .and_then(|s| s.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("{loaded:?}"))
        .to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    // docker's `<none>:<none>` row, with the id.
    let images = sb.containr_ok(&["images"]);
    let row = images.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("<none>") && row.contains(&id[7..19]),
        "{images}"
    );
    assert_eq!(sb.containr_ok(&["images", "-q"]).trim(), &id[7..19]);
    // Run by the whole id and by a unique prefix, with or without sha256:.
    assert_eq!(run(&sb, &[&id]), "anon");
    assert_eq!(run(&sb, &[&id[7..15]]), "anon");
    // The manifest's `<none>` entry keeps it from gc.
    sb.containr_ok(&["gc"]);
    assert_eq!(run(&sb, &[&id[..14]]), "anon");
    // Saved by id: an archive without names, which loads unnamed again.
    let saved = sb.dir.path().join("saved.tar");
    sb.containr_ok(&["save", "-o", saved.to_str().unwrap(), &id[7..19]]);
    let other = sb.dir.path().join("other-root");
    let again = std::process::Command::new(common::BIN)
        .arg("--root")
        .arg(&other)
        .args(["load", "-i", saved.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&again.stdout), loaded);
    // There it has no name: rmi by id deletes it, as docker words it.
    let rmi = std::process::Command::new(common::BIN)
        .arg("--root")
        .arg(&other)
        .args(["rmi", &id[7..19]])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&rmi.stdout),
        format!("Deleted: {id}\n")
    );
    // Tagged, it is no longer `<none>`; loading it again adds no row.
    sb.containr_ok(&["tag", &id[7..19], "named:1"]);
    let images = sb.containr_ok(&["images"]);
    assert!(!images.contains("<none>"), "{images}");
    assert_eq!(run(&sb, &["named:1"]), "anon");
    assert_eq!(
        sb.containr_ok(&["load", "-i", archive.to_str().unwrap()]),
        loaded
    );
    assert_eq!(sb.containr_ok(&["images", "-q"]).lines().count(), 1);
    // rmi by id removes it whole.
    assert_eq!(
        sb.containr_ok(&["rmi", &id[7..19]]),
        "Untagged: docker.io/library/named:1\n"
    );
    assert_eq!(sb.containr_ok(&["images", "-q"]), "");
    assert_verified(&sb);
}

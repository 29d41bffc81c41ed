//! The image compatibility corpus: the same small busybox image (the test
//! rootfs, `CMD sh -c 'echo compat'`) made by every Debian tool that writes
//! OCI or docker images (umoci, skopeo, podman, buildah), each result
//! loaded and pulled (through the loopback registry) and run. Each test
//! also checks the quirk that made it worth a row of the README's table.
//!
//! podman and buildah keep everything under the test's own directory: a
//! containers.conf and storage.conf of its own (vfs, cgroupfs, CNI config
//! and temp dirs inside it), so nothing is left on the host.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Sandbox;
use common::registry::Registry;

const CMD: &str = "echo compat";

/// A tool run with the sandbox's private containers configuration; its
/// stdout, after checking it succeeded.
fn tool(sb: &Sandbox, prog: &str, args: &[&str]) -> String {
    let t = sb.dir.path().join("tools");
    if !t.exists() {
        for d in ["tmp", "net", "root", "run"] {
            std::fs::create_dir_all(t.join(d)).unwrap();
        }
        std::fs::write(
            t.join("containers.conf"),
            format!(
                "[network]\nnetwork_backend = \"cni\"\nnetwork_config_dir = \"{0}/net\"\n\
                 [engine]\ntmp_dir = \"{0}/tmp\"\nevents_logger = \"none\"\n\
                 cgroup_manager = \"cgroupfs\"\n",
                t.display()
            ),
        )
        .unwrap();
        std::fs::write(
            t.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\nrunroot = \"{0}/run\"\ngraphroot = \"{0}/root\"\n",
                t.display()
            ),
        )
        .unwrap();
    }
    let out = Command::new(prog)
        .args(args)
        .env("CONTAINERS_CONF", t.join("containers.conf"))
        .env("CONTAINERS_STORAGE_CONF", t.join("storage.conf"))
        .env("TMPDIR", t.join("tmp"))
        .output()
        .unwrap_or_else(|e| panic!("{prog}: {e} (scripts/deps test installs it)"));
    assert!(
        out.status.success(),
        "{prog} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `containr load -i FILE`, then run what it loaded (by name, or by id
/// when the archive named nothing); the load's output line.
fn load_and_run(sb: &Sandbox, file: &Path, args: &[&str]) -> String {
    let out = sb.containr_ok(&["load", "-i", p(file)]);
    let line = out.lines().next().unwrap_or_default().to_string();
    let image = line
        .strip_prefix("Loaded image: ")
        .or_else(|| line.strip_prefix("Loaded image ID: "))
        .unwrap_or_else(|| panic!("load said {out:?}"));
    assert_eq!(run(sb, image, args), expected(args), "{}", file.display());
    line
}

/// `containr pull`, then run it.
fn pull_and_run(sb: &Sandbox, reference: &str, args: &[&str]) {
    sb.containr_ok(&["pull", "-q", reference]);
    assert_eq!(run(sb, reference, args), expected(args), "{reference}");
}

fn run(sb: &Sandbox, image: &str, args: &[&str]) -> String {
    let mut full = vec!["run", "--rm", "-q", image];
    full.extend_from_slice(args);
    sb.containr_ok(&full)
}

fn expected(args: &[&str]) -> &'static str {
    if args.is_empty() {
        "compat\n"
    } else {
        "repacked\n"
    }
}

/// A directory as a tar (what `load` reads).
fn tar_of_dir(dir: &Path, file: &Path) {
    let status = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(file)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
}

/// The manifest a registry serves, as skopeo reads it.
fn raw_manifest(sb: &Sandbox, reference: &str) -> serde_json::Value {
    let raw = tool(
        sb,
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
    );
    serde_json::from_str(&raw).unwrap()
}

fn layer_types(manifest: &serde_json::Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_string())
        .collect()
}

/// The busybox image made by `umoci insert … /` into an OCI layout
/// (tag `bb`); the layout's directory.
fn umoci_image(sb: &Sandbox) -> PathBuf {
    let l = sb.dir.path().join("umoci");
    let img = format!("{}:bb", l.display());
    tool(sb, "umoci", &["init", "--layout", p(&l)]);
    tool(sb, "umoci", &["new", "--image", &img]);
    tool(
        sb,
        "umoci",
        &["insert", "--image", &img, p(&sb.rootfs), "/"],
    );
    tool(
        sb,
        "umoci",
        &[
            "config",
            "--image",
            &img,
            "--config.cmd",
            "sh",
            "--config.cmd",
            "-c",
            "--config.cmd",
            CMD,
        ],
    );
    tool(sb, "umoci", &["gc", "--layout", p(&l)]);
    l
}

/// Copy `from` to the registry as `repo` with skopeo.
fn push(sb: &Sandbox, from: &str, to: &str, extra: &[&str]) {
    let mut args = vec!["copy", "-q", "--dest-tls-verify=false"];
    args.extend_from_slice(extra);
    let dest = format!("docker://{to}");
    args.extend_from_slice(&[from, &dest]);
    tool(sb, "skopeo", &args);
}

#[test]
fn umoci_insert_and_repack() {
    let sb = Sandbox::new();
    let reg = Registry::start();
    let l = umoci_image(&sb);
    // The quirk: the layer's first entry is `/`, the layer's root.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(l.join("index.json")).unwrap()).unwrap();
    let blob = |d: &serde_json::Value| {
        l.join("blobs/sha256").join(
            d["digest"]
                .as_str()
                .unwrap()
                .strip_prefix("sha256:")
                .unwrap(),
        )
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(&index["manifests"][0])).unwrap()).unwrap();
    let layer = std::fs::File::open(blob(&manifest["layers"][0])).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let first = tar.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(&*first.path_bytes(), b"/");
    assert_eq!(
        layer_types(&manifest),
        ["application/vnd.oci.image.layer.v1.tar+gzip"]
    );

    let file = sb.dir.path().join("umoci.tar");
    tar_of_dir(&l, &file);
    assert_eq!(
        load_and_run(&sb, &file, &[]),
        "Loaded image: docker.io/library/bb:latest"
    );
    let insert = format!("{}/umoci/insert:1", reg.host);
    push(&sb, &format!("oci:{}:bb", l.display()), &insert, &[]);
    pull_and_run(&sb, &insert, &[]);

    // unpack, change, repack: a second layer on top.
    let bundle = sb.dir.path().join("bundle");
    let img = format!("{}:bb", l.display());
    tool(&sb, "umoci", &["unpack", "--image", &img, p(&bundle)]);
    std::fs::write(bundle.join("rootfs/etc/repacked"), "repacked\n").unwrap();
    let img2 = format!("{}:bb2", l.display());
    tool(&sb, "umoci", &["repack", "--image", &img2, p(&bundle)]);
    let file2 = sb.dir.path().join("umoci2.tar");
    tar_of_dir(&l, &file2);
    // The layout now names bb and bb2.
    let loaded = sb.containr_ok(&["load", "-i", p(&file2)]);
    assert!(
        loaded.contains("Loaded image: docker.io/library/bb2:latest"),
        "{loaded}"
    );
    assert_eq!(run(&sb, "bb2", &["cat", "/etc/repacked"]), "repacked\n");
    let repack = format!("{}/umoci/repack:1", reg.host);
    push(&sb, &format!("oci:{}:bb2", l.display()), &repack, &[]);
    assert_eq!(layer_types(&raw_manifest(&sb, &repack)).len(), 2);
    pull_and_run(&sb, &repack, &["cat", "/etc/repacked"]);
}

#[test]
fn skopeo_copies_to_every_transport() {
    let sb = Sandbox::new();
    let reg = Registry::start();
    let l = umoci_image(&sb);
    let src = format!("oci:{}:bb", l.display());
    let dir = sb.dir.path();

    // docker-archive without a name: `"RepoTags": []`, loaded unnamed.
    let unnamed = dir.join("unnamed.tar");
    tool(
        &sb,
        "skopeo",
        &[
            "copy",
            "-q",
            &src,
            &format!("docker-archive:{}", p(&unnamed)),
        ],
    );
    let out = Command::new("tar")
        .args(["-xOf", p(&unnamed), "manifest.json"])
        .output()
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m[0]["RepoTags"], serde_json::json!([]));
    assert!(load_and_run(&sb, &unnamed, &[]).starts_with("Loaded image ID: sha256:"));

    let named = dir.join("named.tar");
    let dest = format!("docker-archive:{}:skopeo/archive:1", p(&named));
    tool(&sb, "skopeo", &["copy", "-q", &src, &dest]);
    assert_eq!(
        load_and_run(&sb, &named, &[]),
        "Loaded image: docker.io/skopeo/archive:1"
    );

    let oci_archive = dir.join("oci-archive.tar");
    let dest = format!("oci-archive:{}:skopeo/oci-archive:1", p(&oci_archive));
    tool(&sb, "skopeo", &["copy", "-q", &src, &dest]);
    assert_eq!(
        load_and_run(&sb, &oci_archive, &[]),
        "Loaded image: docker.io/skopeo/oci-archive:1"
    );

    // oci: a layout directory; load reads it as a tar.
    let layout = dir.join("oci-dir");
    let dest = format!("oci:{}:skopeo/oci-dir:1", p(&layout));
    tool(&sb, "skopeo", &["copy", "-q", &src, &dest]);
    let file = dir.join("oci-dir.tar");
    tar_of_dir(&layout, &file);
    assert_eq!(
        load_and_run(&sb, &file, &[]),
        "Loaded image: docker.io/skopeo/oci-dir:1"
    );

    // To the registry, zstd (OCI media types) and gzip (docker's).
    let zstd = format!("{}/skopeo/zstd:1", reg.host);
    let args = ["--format", "oci", "--dest-compress-format", "zstd"];
    push(&sb, &src, &zstd, &args);
    assert_eq!(
        layer_types(&raw_manifest(&sb, &zstd)),
        ["application/vnd.oci.image.layer.v1.tar+zstd"]
    );
    pull_and_run(&sb, &zstd, &[]);
    let gzip = format!("{}/skopeo/gzip:1", reg.host);
    let args = ["--format", "v2s2", "--dest-compress-format", "gzip"];
    push(&sb, &src, &gzip, &args);
    assert_eq!(
        layer_types(&raw_manifest(&sb, &gzip)),
        ["application/vnd.docker.image.rootfs.diff.tar.gzip"]
    );
    pull_and_run(&sb, &gzip, &[]);
    assert!(sb.containr_ok(&["verify"]).ends_with("no problems\n"));
}

#[test]
fn podman_import_and_save() {
    let sb = Sandbox::new();
    let reg = Registry::start();
    let rootfs_tar = sb.rootfs_tar("rootfs.tar");
    let change = format!("CMD [\"sh\", \"-c\", \"{CMD}\"]");
    tool(
        &sb,
        "podman",
        &[
            "import",
            "-q",
            "--change",
            &change,
            p(&rootfs_tar),
            "localhost/podman/bb:1",
        ],
    );
    let dir = sb.dir.path();
    for format in ["docker-archive", "oci-archive"] {
        let file = dir.join(format!("podman-{format}.tar"));
        tool(
            &sb,
            "podman",
            &[
                "save",
                "-q",
                "--format",
                format,
                "-o",
                p(&file),
                "localhost/podman/bb:1",
            ],
        );
        if format == "docker-archive" {
            // The quirk: docker's old per-layer directories, with a
            // symlink to the layer tar.
            let out = Command::new("tar")
                .args(["-tvf", p(&file)])
                .output()
                .unwrap();
            let list = String::from_utf8_lossy(&out.stdout);
            assert!(list.contains("/layer.tar -> ../"), "{list}");
        }
        assert_eq!(
            load_and_run(&sb, &file, &[]),
            "Loaded image: localhost/podman/bb:1"
        );
        sb.containr_ok(&["rmi", "localhost/podman/bb:1"]);
    }
    let pushed = format!("{}/podman/bb:1", reg.host);
    let dest = format!("docker://{pushed}");
    tool(
        &sb,
        "podman",
        &[
            "push",
            "-q",
            "--tls-verify=false",
            "localhost/podman/bb:1",
            &dest,
        ],
    );
    pull_and_run(&sb, &pushed, &[]);
    assert!(sb.containr_ok(&["verify"]).ends_with("no problems\n"));
}

#[test]
fn buildah_from_scratch_copy_commit() {
    let sb = Sandbox::new();
    let reg = Registry::start();
    let c = tool(&sb, "buildah", &["from", "-q", "scratch"]);
    let c = c.trim();
    let rootfs = format!("{}/", p(&sb.rootfs));
    tool(&sb, "buildah", &["copy", "-q", c, &rootfs, "/"]);
    let cmd = format!("[\"sh\", \"-c\", \"{CMD}\"]");
    tool(&sb, "buildah", &["config", "--cmd", &cmd, c]);
    let dir = sb.dir.path();
    for (format, manifest_type) in [
        (
            "docker",
            "application/vnd.docker.distribution.manifest.v2+json",
        ),
        ("oci", "application/vnd.oci.image.manifest.v1+json"),
    ] {
        let name = format!("localhost/buildah/{format}:1");
        tool(
            &sb,
            "buildah",
            &["commit", "-q", "--format", format, c, &name],
        );
        let archive = dir.join(format!("buildah-{format}.tar"));
        let (transport, loaded) = match format {
            "docker" => ("docker-archive", format!("Loaded image: {name}")),
            _ => ("oci-archive", format!("Loaded image: {name}")),
        };
        let dest = format!("{transport}:{}:{name}", p(&archive));
        tool(&sb, "buildah", &["push", "-q", &name, &dest]);
        assert_eq!(load_and_run(&sb, &archive, &[]), loaded);
        let pushed = format!("{}/buildah/{format}:1", reg.host);
        let dest = format!("docker://{pushed}");
        tool(
            &sb,
            "buildah",
            &["push", "-q", "--tls-verify=false", &name, &dest],
        );
        assert_eq!(raw_manifest(&sb, &pushed)["mediaType"], manifest_type);
        pull_and_run(&sb, &pushed, &[]);
    }
    tool(&sb, "buildah", &["rm", c]);
    assert!(sb.containr_ok(&["verify"]).ends_with("no problems\n"));
}

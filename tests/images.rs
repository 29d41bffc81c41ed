//! Images without a registry: `import`, running an image on an overlay of
//! its snapshots, `images`, `tag`, `rmi`, `image inspect`, and layers that
//! try to write outside their snapshot.

mod common;

use common::{Sandbox, assert_fails};

/// The tarball imported as `name`; returns the image id.
fn import(sb: &Sandbox, tarball: &str, name: &str) -> String {
    let file = sb.rootfs_tar(tarball);
    let id = sb.containr_ok(&["import", file.to_str().unwrap(), name]);
    id.trim().to_string()
}

fn run_image(sb: &Sandbox, args: &[&str]) -> String {
    let mut full = vec!["run", "--rm"];
    full.extend_from_slice(args);
    sb.containr_ok(&full)
}

#[test]
fn an_imported_image_runs_on_an_overlay_that_goes_away() {
    let sb = Sandbox::new();
    let id = import(&sb, "rootfs.tar.gz", "busybox:1");
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(run_image(&sb, &["busybox:1", "echo", "hello"]), "hello\n");
    // The root is an overlay, visible only inside the container.
    let mounts = run_image(&sb, &["busybox:1", "cat", "/proc/self/mountinfo"]);
    let root = mounts
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap();
    assert!(root.contains(" - overlay "), "{root}");
    // Writes land in the container's own upper layer, gone with it.
    assert_eq!(
        run_image(
            &sb,
            &[
                "busybox:1",
                "sh",
                "-c",
                "echo x > /bin/new; rm /bin/ls; ls /bin/new"
            ]
        ),
        "/bin/new\n"
    );
    let after = run_image(
        &sb,
        &["busybox:1", "sh", "-c", "ls /bin/new; ls /bin/ls; true"],
    );
    assert_eq!(after, "/bin/ls\n");
    // ... and the snapshot itself is untouched.
    let snaps = sb.entries("snapshots");
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert!(
        sb.data
            .join("snapshots")
            .join(&snaps[0])
            .join("bin/ls")
            .exists()
    );
    assert!(sb.entries("rw").is_empty());
    // By id prefix, as docker allows.
    assert_eq!(run_image(&sb, &[&id[7..19], "true"]), "");
    // An import has no command of its own.
    assert_fails(
        &sb.cmd(&["run", "busybox:1"]).output().unwrap(),
        125,
        "no command specified",
    );
}

#[test]
fn images_sharing_a_layer_store_it_once() {
    let sb = Sandbox::new();
    let tarball = sb.rootfs_tar("rootfs.tar");
    for name in ["one", "two:v2"] {
        sb.containr_ok(&["import", tarball.to_str().unwrap(), name]);
    }
    assert_eq!(sb.entries("snapshots").len(), 1);
    let layer = std::fs::read(&tarball).unwrap();
    let blobs = sb.entries("blobs/sha256");
    let layer_blobs: Vec<_> = blobs
        .iter()
        .filter(|b| std::fs::read(sb.data.join("blobs/sha256").join(b)).unwrap() == layer)
        .collect();
    assert_eq!(layer_blobs.len(), 1, "{blobs:?}");
    let list = sb.containr_ok(&["images"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    let head: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        head,
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("one ") && l.contains(" latest ")),
        "{list}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("two ") && l.contains(" v2 ")),
        "{list}"
    );
}

#[test]
fn tag_inspect_and_rmi() {
    let sb = Sandbox::new();
    let id = import(&sb, "rootfs.tar.gz", "base");
    sb.containr_ok(&["tag", "base", "127.0.0.1:5000/ns/app:1.0"]);
    let json: serde_json::Value =
        serde_json::from_str(&sb.containr_ok(&["image", "inspect", "127.0.0.1:5000/ns/app:1.0"]))
            .unwrap();
    assert_eq!(json[0]["Id"], id.as_str());
    let tags = json[0]["RepoTags"].as_array().unwrap();
    assert_eq!(tags.len(), 2, "{tags:?}");
    assert_eq!(json[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert!(
        sb.containr_ok(&["images"])
            .contains("127.0.0.1:5000/ns/app   1.0")
    );
    assert_eq!(
        sb.containr_ok(&["rmi", "127.0.0.1:5000/ns/app:1.0"]),
        "Untagged: 127.0.0.1:5000/ns/app:1.0\n"
    );
    assert_fails(
        &sb.cmd(&["image", "inspect", "127.0.0.1:5000/ns/app:1.0"])
            .output()
            .unwrap(),
        125,
        "No such image",
    );
    assert_eq!(run_image(&sb, &["base", "echo", "still"]), "still\n");
    assert_fails(
        &sb.cmd(&["rmi", "nope"]).output().unwrap(),
        125,
        "No such image: nope",
    );
    assert_fails(
        &sb.cmd(&["tag", "base", "Bad:name"]).output().unwrap(),
        125,
        "invalid reference",
    );
    assert_fails(
        &sb.cmd(&["run", "UPPER", "true"]).output().unwrap(),
        125,
        "must be lowercase",
    );
    assert_eq!(
        sb.containr_ok(&["rmi", &id[7..]]),
        "Untagged: docker.io/library/base:latest\n"
    );
    assert_eq!(sb.containr_ok(&["images", "-q"]), "");
}

#[test]
fn a_zstd_layer_imports() {
    let sb = Sandbox::new();
    let tarball = sb.rootfs_tar("rootfs.tar");
    let zst = sb.dir.path().join("rootfs.tar.zst");
    let data = std::fs::read(&tarball).unwrap();
    std::fs::write(&zst, zstd::encode_all(&data[..], 3).unwrap()).unwrap();
    sb.containr_ok(&["import", zst.to_str().unwrap(), "zst"]);
    assert_eq!(run_image(&sb, &["zst", "echo", "z"]), "z\n");
}

/// (name, type, link target) of one tar entry.
type Entry<'a> = (&'a str, tar::EntryType, &'a str);

/// A tarball whose entries are written raw, so that names tar::Builder
/// would refuse can be built.
fn evil_tar(path: &std::path::Path, entries: &[Entry<'_>]) {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_gnu_mut().unwrap().linkname[..link.len()].copy_from_slice(link.as_bytes());
        let data: &[u8] = if kind.is_file() { b"pwned\n" } else { b"" };
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    std::fs::write(path, b.into_inner().unwrap()).unwrap();
}

#[test]
fn layers_that_write_outside_are_refused_and_nothing_is_stored() {
    use tar::EntryType::{Link, Regular, Symlink};
    let sb = Sandbox::new();
    let outside = sb.dir.path().join("outside");
    let out_str = outside.to_str().unwrap().trim_start_matches('/');
    let up = format!("../../../../../../../../..{}", outside.to_str().unwrap());
    let through = format!("evil/{out_str}");
    let cases: Vec<(Vec<Entry<'_>>, &str)> = vec![
        (vec![(&up, Regular, "")], "'..'"),
        (
            vec![(outside.to_str().unwrap(), Regular, "")],
            "absolute path",
        ),
        (
            vec![("evil", Symlink, "/"), (&through, Regular, "")],
            "symlink out of the layer",
        ),
        (
            vec![("evil", Symlink, &up), ("evil/x", Regular, "")],
            "symlink out of the layer",
        ),
        (vec![("hard", Link, "/etc/passwd")], "outside the layer"),
        (
            vec![("hard", Link, "../../etc/passwd")],
            "outside the layer",
        ),
    ];
    for (i, (entries, needle)) in cases.iter().enumerate() {
        let file = sb.dir.path().join(format!("evil{i}.tar"));
        evil_tar(&file, entries);
        let out = sb
            .cmd(&["import", file.to_str().unwrap(), "evil"])
            .output()
            .unwrap();
        assert_fails(&out, 125, needle);
        assert!(String::from_utf8_lossy(&out.stderr).contains("refusing entry"));
        assert!(!outside.exists(), "case {i} wrote outside");
        assert!(
            sb.entries("blobs/sha256").is_empty(),
            "case {i} stored a blob"
        );
        assert!(
            sb.entries("snapshots").is_empty(),
            "case {i} left a snapshot"
        );
        assert_eq!(sb.containr_ok(&["images", "-q"]), "");
        assert!(sb.containr_ok(&["verify"]).ends_with("no problems\n"));
    }
}

#[test]
fn export_writes_a_running_containers_merged_filesystem() {
    let sb = Sandbox::new();
    import(&sb, "rootfs.tar.gz", "busybox:1");
    let mut child = sb
        .cmd(&[
            "run",
            "--rm",
            "--name",
            "exp",
            "busybox:1",
            "sh",
            "-c",
            "echo new > /new; rm /bin/ls; touch /ready; exec sleep 30",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !sb
        .entries("rw")
        .iter()
        .any(|id| sb.data.join("rw").join(id).join("upper/ready").exists())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never got ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let tarball = sb.dir.path().join("exp.tar");
    sb.containr_ok(&["export", "-o", tarball.to_str().unwrap(), "exp"]);
    // SIGTERM to containr run reaches the command.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait().unwrap();
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(&tarball).unwrap());
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name == "new" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            assert_eq!(s, "new\n");
        }
        names.push(name);
    }
    assert!(names.contains(&"new".to_string()), "{names:?}");
    assert!(names.contains(&"bin/sh".to_string()), "{names:?}");
    assert!(
        !names.contains(&"bin/ls".to_string()),
        "the whiteout hides it"
    );
    assert_eq!(
        names.iter().filter(|n| *n == "bin").count(),
        1,
        "one entry per path"
    );
    assert_fails(
        &sb.cmd(&["export", "-o", tarball.to_str().unwrap(), "nope"])
            .output()
            .unwrap(),
        125,
        "No such container: nope",
    );
}

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
    let snaps = sb.snapshots();
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
    assert_eq!(sb.snapshots().len(), 1);
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
    // docker's status for a failed rmi is 1.
    assert_fails(
        &sb.cmd(&["rmi", "nope"]).output().unwrap(),
        1,
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
fn rmi_of_several_removes_what_it_can_and_reports_each_failure() {
    let sb = Sandbox::new();
    import(&sb, "rootfs.tar", "a");
    sb.containr_ok(&["tag", "a", "b"]);
    let out = sb
        .cmd(&["rmi", "a", "nope", "b", "Bad:name"])
        .output()
        .unwrap();
    // As docker: both removals happen, in order, and each failure is a
    // line of its own on stderr; the status is 1.
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Untagged: docker.io/library/a:latest\nUntagged: docker.io/library/b:latest\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("containr: ") && lines[0].contains("No such image: nope"));
    assert!(lines[1].starts_with("containr: ") && lines[1].contains("invalid reference"));
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
    let slash_up = format!("/..{}", outside.display());
    let cases: Vec<(Vec<Entry<'_>>, &str)> = vec![
        (vec![(&up, Regular, "")], "'..'"),
        // A leading `/` is the layer's root; `..` still cannot climb out.
        (vec![(&slash_up, Regular, "")], "'..'"),
        (
            vec![("evil", Symlink, "/"), (&through, Regular, "")],
            "symlink out of the layer",
        ),
        (
            vec![("evil", Symlink, &up), ("evil/x", Regular, "")],
            "symlink out of the layer",
        ),
        (vec![("hard", Link, "/../etc/passwd")], "outside the layer"),
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
fn entries_with_a_leading_slash_are_under_the_layers_root() {
    use tar::EntryType::{Directory, Regular};
    let sb = Sandbox::new();
    // The busybox rootfs with every name as `umoci insert … /` writes it
    // (`/bin/sh`), after the entry `/` itself, plus `./y` mixed in.
    let base = std::fs::read(sb.rootfs_tar("rootfs.tar")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let raw = |b: &mut tar::Builder<Vec<u8>>, mut h: tar::Header, name: &str, data: &[u8]| {
        h.as_gnu_mut().unwrap().name = [0; 100];
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    let header = |kind, mode, (uid, gid), mtime| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(mtime);
        h
    };
    raw(
        &mut b,
        header(Directory, 0o711, (123, 456), 1_500_000_000),
        "/",
        b"",
    );
    let mut archive = tar::Archive::new(&base[..]);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let Some(rest) = name.strip_prefix("./").filter(|r| !r.is_empty()) else {
            continue;
        };
        let mut h = header(
            e.header().entry_type(),
            e.header().mode().unwrap(),
            (0, 0),
            0,
        );
        if let Some(l) = e.link_name_bytes() {
            h.as_gnu_mut().unwrap().linkname[..l.len()].copy_from_slice(&l);
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        raw(&mut b, h, &format!("/{rest}"), &data);
    }
    raw(&mut b, header(Regular, 0o644, (0, 0), 0), "/etc/x", b"x\n");
    raw(&mut b, header(Regular, 0o644, (0, 0), 0), "./y", b"y\n");
    let bytes = b.into_inner().unwrap();
    let path = sb.dir.path().join("slash.tar");
    std::fs::write(&path, &bytes).unwrap();
    sb.containr_ok(&["import", path.to_str().unwrap(), "slash"]);
    assert_eq!(run_image(&sb, &["slash", "cat", "/etc/x", "/y"]), "x\ny\n");
    // The entry `/` gave the snapshot's root its mode, owner and time.
    let hex = common::registry::sha256_hex(&bytes);
    let snap = std::fs::metadata(sb.data.join("snapshots").join(hex)).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (snap.mode() & 0o7777, snap.uid(), snap.gid(), snap.mtime()),
        (0o711, 123, 456, 1_500_000_000)
    );
    assert!(sb.containr_ok(&["verify"]).ends_with("no problems\n"));
}

#[test]
fn export_writes_a_running_containers_merged_filesystem() {
    let sb = Sandbox::new();
    import(&sb, "rootfs.tar.gz", "busybox:1");
    let mut child = sb
        .cmd(&[
            "run",
            "--rm",
            "--init",
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
    // SIGTERM to containr run reaches the command (through --init: as
    // PID 1, sleep would be shielded from it).
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

#[test]
fn pax_owners_and_times_apply_to_every_kind_of_entry() {
    use std::os::unix::fs::MetadataExt;
    use tar::EntryType::{Char, Directory, Link, Regular, Symlink};
    let sb = Sandbox::new();
    // (name, type, link target, PAX uid, gid and mtime); the ustar fields
    // say uid 1, gid 2, mtime 3: PAX must win.
    let entries: &[(&str, tar::EntryType, &str, &str, &str, &str)] = &[
        ("d/", Directory, "", "3000000", "3000001", "1700000000.25"),
        ("d/f", Regular, "", "4000000", "4000001", "1700000001.5"),
        ("d/l", Symlink, "f", "5000000", "5000001", "1700000002.75"),
        (
            "dev",
            Char,
            "",
            "7000000",
            "7000001",
            "1700000004.000000001",
        ),
        // Docker applies a hard link's header to the inode it shares.
        ("h", Link, "d/f", "6000000", "6000001", "1700000003.125"),
    ];
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, uid, gid, mtime) in entries {
        b.append_pax_extensions([
            ("uid", uid.as_bytes()),
            ("gid", gid.as_bytes()),
            ("mtime", mtime.as_bytes()),
        ])
        .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(*kind);
        h.set_mode(0o750);
        h.set_uid(1);
        h.set_gid(2);
        h.set_mtime(3);
        h.set_path(name).unwrap();
        if !link.is_empty() {
            h.set_link_name(link).unwrap();
        }
        if *kind == Char {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        let data: &[u8] = if *kind == Regular { b"pax\n" } else { b"" };
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    let file = sb.dir.path().join("pax.tar");
    std::fs::write(&file, b.into_inner().unwrap()).unwrap();
    sb.containr_ok(&["import", file.to_str().unwrap(), "pax"]);
    let snaps = sb.snapshots();
    let snapshot = sb.data.join("snapshots").join(&snaps[0]);
    let stat = |p: &str| {
        let m = std::fs::symlink_metadata(snapshot.join(p)).unwrap();
        (m.uid(), m.gid(), m.mtime(), m.mtime_nsec())
    };
    assert_eq!(
        stat("d"),
        (3_000_000, 3_000_001, 1_700_000_000, 250_000_000)
    );
    assert_eq!(
        stat("d/l"),
        (5_000_000, 5_000_001, 1_700_000_002, 750_000_000)
    );
    assert_eq!(stat("dev"), (7_000_000, 7_000_001, 1_700_000_004, 1));
    assert_eq!(
        stat("d/f"),
        (6_000_000, 6_000_001, 1_700_000_003, 125_000_000)
    );
    assert_eq!(stat("h"), stat("d/f"));
    assert_eq!(std::fs::read(snapshot.join("h")).unwrap(), b"pax\n");
}

#[test]
fn verify_finds_tampered_snapshots_and_repair_unpacks_them_again() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    import(&sb, "rootfs.tar.gz", "busybox:1");
    sb.containr_ok(&["tag", "busybox:1", "other"]);
    let verified = sb.containr_ok(&["verify"]);
    assert!(
        verified.ends_with("3 blobs and 1 snapshots verified, no problems\n"),
        "{verified}"
    );
    let snap = sb.snapshots().pop().unwrap();
    let sh = sb.data.join("snapshots").join(&snap).join("bin/busybox");
    let mode = std::fs::metadata(&sh).unwrap().permissions().mode();
    let tampers: [(&str, &dyn Fn()); 2] = [
        ("append a byte", &|| {
            let mut f = std::fs::OpenOptions::new().append(true).open(&sh).unwrap();
            std::io::Write::write_all(&mut f, b"x").unwrap();
        }),
        ("chmod", &|| {
            std::fs::set_permissions(&sh, std::fs::Permissions::from_mode(mode | 0o4000)).unwrap()
        }),
    ];
    // A kept, exited container on the image: its snapshot may be repaired
    // (its overlay is not mounted), and it still exports after.
    sb.containr_ok(&["run", "--name", "kept", "busybox:1", "touch", "/made"]);
    for (what, tamper) in tampers {
        tamper();
        let out = sb.cmd(&["verify"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{what}: {stdout}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{what}: one line per bad snapshot: {stdout}"
        );
        assert!(
            lines[0].starts_with(&format!(
                "snapshot sha256:{snap} (used by docker.io/library/busybox:1, docker.io/library/other:latest) is corrupt"
            )),
            "{what}: {stdout}"
        );
        let repaired = sb.containr_ok(&["verify", "--repair"]);
        assert!(repaired.contains("repaired"), "{what}: {repaired}");
        assert!(repaired.ends_with("no problems\n"), "{what}: {repaired}");
        assert!(sb.containr_ok(&["verify"]).ends_with("no problems\n"));
        assert_eq!(std::fs::metadata(&sh).unwrap().permissions().mode(), mode);
        assert_eq!(run_image(&sb, &["busybox:1", "echo", "ok"]), "ok\n");
        let tar = sb.cmd(&["export", "kept"]).output().unwrap();
        assert!(tar.status.success(), "{what}: export after repair");
        let mut names = tar::Archive::new(&tar.stdout[..]);
        let names: Vec<String> = (names.entries().unwrap())
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(
            names.iter().any(|n| n.trim_start_matches("./") == "made"),
            "{what}"
        );
        assert!(
            names
                .iter()
                .any(|n| n.trim_start_matches("./") == "bin/busybox")
        );
    }
    sb.containr_ok(&["rm", "kept"]);
    // A running container's snapshot is not replaced under it.
    let mut running = (sb.cmd(&["run", "--rm", "--name", "busy", "busybox:1", "sleep", "60"]))
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut waited = 0;
    while !sb
        .containr_ok(&["ps", "-q"])
        .contains(char::is_alphanumeric)
    {
        waited += 1;
        assert!(waited < 200, "the container never ran");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    tampers[0].1();
    let out = sb.cmd(&["verify", "--repair"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("not repaired: a running container uses it"),
        "{stdout}"
    );
    sb.containr_ok(&["rm", "-f", "busy"]);
    running.wait().unwrap();
    assert!(
        sb.containr_ok(&["verify", "--repair"])
            .ends_with("no problems\n")
    );
    // A snapshot made before sums were recorded: noted, not a failure.
    std::fs::remove_file(sb.data.join("snapshots").join(format!("{snap}.sum"))).unwrap();
    let out = sb.containr_ok(&["verify"]);
    assert!(out.contains("has no recorded sum"), "{out}");
    assert!(out.ends_with("no problems\n"), "{out}");
    // gc keeps a snapshot in use and its sum, and sweeps what interrupted
    // unpacks and removals left: a temporary tree, a sum without its
    // snapshot.
    let snapshots = sb.data.join("snapshots");
    std::fs::write(
        snapshots.join(format!("{snap}.sum")),
        "containr-tree-v0 x\n",
    )
    .unwrap();
    std::fs::create_dir(snapshots.join(".tmp-1-1-0")).unwrap();
    let orphan = format!("{}.sum", "0".repeat(64));
    std::fs::write(snapshots.join(&orphan), "").unwrap();
    // verify lists them as leftovers, not as corruption.
    let out = sb.containr_ok(&["verify"]);
    assert_eq!(out.matches("leftover: ").count(), 2, "{out}");
    assert!(
        out.contains(".tmp-1-1-0 (left by an interrupted command"),
        "{out}"
    );
    assert!(out.ends_with("no problems\n"), "{out}");
    let swept = sb.containr_ok(&["gc"]);
    assert_eq!(swept.matches("Deleted leftover").count(), 2, "{swept}");
    assert_eq!(
        sb.entries("snapshots"),
        [snap.clone(), format!("{snap}.sum")]
    );
    // A sum of another format is no sum to compare with.
    assert!(sb.containr_ok(&["verify"]).contains("has no recorded sum"));
    // A missing snapshot is unpacked again by the next run.
    std::fs::remove_dir_all(sb.data.join("snapshots").join(&snap)).unwrap();
    assert_eq!(run_image(&sb, &["busybox:1", "echo", "back"]), "back\n");
    assert_eq!(
        sb.entries("snapshots"),
        [snap.clone(), format!("{snap}.sum")]
    );
    assert!(sb.containr_ok(&["verify"]).ends_with("no problems\n"));
}

/// `cmd` run with `input` on its stdin; its output.
fn with_stdin(mut cmd: std::process::Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // containr may stop reading early (an error): a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

#[test]
fn import_and_load_read_stdin() {
    let sb = Sandbox::new();
    let tar = std::fs::read(sb.rootfs_tar("rootfs.tar.gz")).unwrap();
    let out = with_stdin(sb.cmd(&["import", "-", "piped"]), &tar);
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(run_image(&sb, &["piped", "echo", "in"]), "in\n");
    let json: serde_json::Value =
        serde_json::from_str(&sb.containr_ok(&["image", "inspect", "piped"])).unwrap();
    assert_eq!(json[0]["Comment"], "Imported from -");

    // save | load, into another data root; with no -i, and with -i -.
    let saved = sb.cmd(&["save", "piped"]).output().unwrap();
    assert!(saved.status.success());
    for (i, args) in [&["load"][..], &["load", "-i", "-"][..]]
        .into_iter()
        .enumerate()
    {
        let other = sb.dir.path().join(format!("other-{i}"));
        let mut load = std::process::Command::new(common::BIN);
        load.arg("--root").arg(&other).args(args);
        let out = with_stdin(load, &saved.stdout);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Loaded image: docker.io/library/piped:latest\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ids = std::process::Command::new(common::BIN)
            .arg("--root")
            .arg(&other)
            .args(["images", "-q"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&ids.stdout).trim(), &id[7..19]);
    }
    // Not a tar: one line naming stdin, nothing stored.
    let before = sb.entries("blobs/sha256");
    let out = with_stdin(sb.cmd(&["load"]), b"not a tar at all");
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("containr: stdin"),
        "{out:?}"
    );
    assert_eq!(sb.entries("blobs/sha256"), before);
}

#[test]
fn an_interrupted_import_from_stdin_leaves_nothing() {
    use std::io::Write;
    let sb = Sandbox::new();
    let tar = std::fs::read(sb.rootfs_tar("rootfs.tar")).unwrap();
    let mut child = sb
        .cmd(&["import", "-", "half"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&tar[..tar.len() / 2]).unwrap();
    // The blob being written is there, so the signal lands mid-read.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sb.entries("blobs/tmp").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no blob being written"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    // 128 + SIGINT, as a shell reports it; one line; nothing kept.
    assert_fails(&out, 130, "interrupted");
    assert!(sb.entries("blobs/tmp").is_empty());
    assert!(sb.entries("blobs/sha256").is_empty());
    assert!(sb.snapshots().is_empty());
    assert_eq!(sb.containr_ok(&["images", "-q"]), "");
}

#[test]
fn import_changes_set_the_config_the_container_runs_with() {
    let sb = Sandbox::new();
    let tarball = sb.rootfs_tar("rootfs.tar");
    let file = tarball.to_str().unwrap();
    sb.containr_ok(&[
        "import",
        "-c",
        r#"ENV GREETING=hello NAME="the world""#,
        "--change",
        "ENV OLD old form",
        "-c",
        "WORKDIR /srv",
        "-c",
        "workdir app",
        "-c",
        "USER 1234",
        "-c",
        "EXPOSE 80 53/udp",
        "-c",
        "LABEL team=core",
        "-c",
        "STOPSIGNAL SIGQUIT",
        "-c",
        "CMD echo $GREETING $NAME, $OLD, in $(pwd) as $(id -u)",
        "-m",
        "made by a test",
        file,
        "configured",
    ]);
    assert_eq!(
        run_image(&sb, &["configured"]),
        "hello the world, old form, in /srv/app as 1234\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&sb.containr_ok(&["inspect", "configured"])).unwrap();
    let config = &json[0]["Config"];
    assert_eq!(
        config["Cmd"],
        serde_json::json!([
            "/bin/sh",
            "-c",
            "echo $GREETING $NAME, $OLD, in $(pwd) as $(id -u)"
        ])
    );
    assert_eq!(
        config["Env"],
        serde_json::json!(["GREETING=hello", "NAME=the world", "OLD=old form"])
    );
    assert_eq!(config["WorkingDir"], "/srv/app");
    assert_eq!(config["User"], "1234");
    assert_eq!(
        config["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "80/tcp": {}})
    );
    assert_eq!(config["Labels"]["team"], "core");
    assert_eq!(config["StopSignal"], "SIGQUIT");
    assert_eq!(json[0]["Comment"], "made by a test");

    // The exec form, with the command line's arguments after it.
    sb.containr_ok(&[
        "import",
        "-c",
        r#"ENTRYPOINT ["/bin/echo", "from the entrypoint:"]"#,
        "-c",
        r#"CMD ["default"]"#,
        file,
        "ep",
    ]);
    assert_eq!(run_image(&sb, &["ep"]), "from the entrypoint: default\n");
    assert_eq!(
        run_image(&sb, &["ep", "mine"]),
        "from the entrypoint: mine\n"
    );

    // What docker refuses is refused before anything is read or stored.
    let blobs = sb.entries("blobs/sha256");
    assert_fails(
        &sb.cmd(&["import", "-c", "RUN make", file, "bad"])
            .output()
            .unwrap(),
        125,
        "run is not a valid change command",
    );
    assert_fails(
        &sb.cmd(&["import", "-c", "ENV A=\"x", file, "bad"])
            .output()
            .unwrap(),
        125,
        "unterminated quote",
    );
    assert_eq!(sb.entries("blobs/sha256"), blobs);
}

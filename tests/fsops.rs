//! A container's filesystem and record from outside: `cp` (both ways,
//! tar streams, running and exited containers, symlinks that try to lead
//! out), `diff`, `commit`, `port` and `rename`.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Sandbox, assert_fails};

fn import(sb: &Sandbox, name: &str) {
    let file = sb.rootfs_tar("rootfs.tar");
    sb.containr_ok(&["import", file.to_str().unwrap(), name]);
}

/// Kills and reaps the `containr run` it holds when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM reaches the command; the run cleans up and exits.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

/// `containr run --init --name NAME ARGS... sh -c 'SCRIPT; touch /ready;
/// exec sleep 60'` in the background, once `/ready` is there.
fn start(sb: &Sandbox, name: &str, args: &[&str], script: &str) -> Running {
    let script = format!("{script}; touch /ready; exec sleep 60");
    // --init: the SIGTERM that ends it reaches `sleep`, which as PID 1
    // would be shielded from it.
    let mut full = vec!["run", "--init", "--name", name];
    full.extend_from_slice(args);
    full.extend(["sh", "-c", &script]);
    let child = sb
        .cmd(&full)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = format!("{name}:/ready");
    while !sb
        .cmd(&["cp", &ready, "-"])
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "{name} never got ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    running
}

fn with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

/// Entries of a tar: (path, uid, gid, contents of a file or a link's
/// target).
fn entries(tar: &[u8]) -> Vec<(String, u64, u64, String)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let h = e.header().clone();
            let body = match e.link_name().unwrap() {
                Some(l) => l.to_string_lossy().into_owned(),
                None => {
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut e, &mut s).unwrap_or(0);
                    s
                }
            };
            (path, h.uid().unwrap_or(0), h.gid().unwrap_or(0), body)
        })
        .collect()
}

fn names(tar: &[u8]) -> Vec<String> {
    entries(tar).into_iter().map(|e| e.0).collect()
}

/// `containr cp NAME:PATH -`'s tar.
fn cp_out(sb: &Sandbox, from: &str) -> Vec<u8> {
    let out = sb.cmd(&["cp", from, "-"]).output().unwrap();
    assert!(
        out.status.success(),
        "cp {from} -: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn export(sb: &Sandbox, name: &str) -> Vec<(String, u64, u64, String)> {
    let out = sb.cmd(&["export", name]).output().unwrap();
    assert!(out.status.success());
    entries(&out.stdout)
}

/// A path on the host that must never appear (a random name at the root).
fn host_canary() -> String {
    format!("containr-fsops-{}-{}", std::process::id(), rand_hex())
}

fn rand_hex() -> String {
    let mut b = [0u8; 6];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn cp_copies_both_ways_on_an_exited_container() {
    let sb = Sandbox::new();
    import(&sb, "bb");
    sb.containr_ok(&[
        "run",
        "--name",
        "c",
        "bb",
        "sh",
        "-c",
        "echo hi > /hello; mkdir -p /d/e; echo f > /d/e/f; chown 123:456 /d/e/f",
    ]);
    let host = sb.dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    let h = host.to_str().unwrap();

    // Out: a file into a directory keeps its name; a directory to a new
    // name becomes it; owners are the caller's unless -a.
    sb.containr_ok(&["cp", "c:/hello", h]);
    assert_eq!(std::fs::read_to_string(host.join("hello")).unwrap(), "hi\n");
    sb.containr_ok(&["cp", "c:/d", &format!("{h}/dd")]);
    let f = host.join("dd/e/f");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "f\n");
    assert_eq!(
        (f.metadata().unwrap().uid(), f.metadata().unwrap().gid()),
        (0, 0)
    );
    sb.containr_ok(&["cp", "-a", "c:/d/.", &format!("{h}/da")]);
    let f = host.join("da/e/f");
    assert_eq!(
        (f.metadata().unwrap().uid(), f.metadata().unwrap().gid()),
        (123, 456)
    );
    // docker's refusals, one line each.
    assert_fails(
        &sb.cmd(&["cp", "c:/nope", h]).output().unwrap(),
        1,
        "Could not find the file /nope in container c",
    );
    assert_fails(
        &sb.cmd(&["cp", "c:/d", &format!("{h}/hello")])
            .output()
            .unwrap(),
        1,
        "cannot copy a directory to a file",
    );

    // In: a file, a directory with -a (owners kept), then seen by export.
    let src = sb.dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/data"), "data\n").unwrap();
    std::os::unix::fs::chown(src.join("sub/data"), Some(7), Some(8)).unwrap();
    sb.containr_ok(&["cp", src.join("sub/data").to_str().unwrap(), "c:/etc/"]);
    sb.containr_ok(&["cp", "-a", src.to_str().unwrap(), "c:/newdir"]);
    let files = export(&sb, "c");
    let find = |p: &str| files.iter().find(|e| e.0 == p).cloned();
    let data = find("etc/data").expect("etc/data copied in");
    assert_eq!((data.1, data.2, data.3.as_str()), (0, 0, "data\n"));
    let kept = find("newdir/sub/data").expect("newdir/sub/data copied in");
    assert_eq!((kept.1, kept.2), (7, 8));
    assert_fails(
        &sb.cmd(&["cp", src.to_str().unwrap(), "c:/nodir/x"])
            .output()
            .unwrap(),
        1,
        "destination directory /nodir does not exist",
    );
    // What comes in stops before the disk falls under --disk-reserve.
    let sparse = sb.dir.path().join("sparse");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    assert_fails(
        &sb.cmd(&[
            "--disk-reserve",
            "1000000g",
            "cp",
            sparse.to_str().unwrap(),
            "c:/",
        ])
        .output()
        .unwrap(),
        1,
        "copying stopped: its filesystem has",
    );
    assert!(!export(&sb, "c").iter().any(|e| e.0 == "sparse"));
    // The writable overlay's scratch directory is gone with it.
    let rw = sb.entries("rw");
    assert_eq!(rw.len(), 1);
    let left = sb.entries(&format!("rw/{}", rw[0]));
    assert_eq!(left, ["layers", "merged", "upper", "work"]);

    // Tar streams: out, and back in under another directory.
    let tar = cp_out(&sb, "c:/d");
    assert_eq!(names(&tar), ["d", "d/e", "d/e/f"]);
    let out = with_stdin(sb.cmd(&["cp", "-", "c:/tmp"]), &tar);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back = entries(&cp_out(&sb, "c:/tmp/d/e/f"));
    assert_eq!(back[0].3, "f\n");
    assert_fails(
        &with_stdin(sb.cmd(&["cp", "-", "c:/hello"]), &tar),
        1,
        "must be a directory",
    );
    sb.containr_ok(&["rm", "c"]);
}

#[test]
fn cp_never_follows_a_containers_symlink_out_of_it() {
    let sb = Sandbox::new();
    import(&sb, "bb");
    sb.containr_ok(&[
        "run",
        "--name",
        "s",
        "bb",
        "sh",
        "-c",
        "ln -s / /escape; ln -s ../../../../host /etc/x; echo mine > /etc/marker",
    ]);
    let canary = host_canary();
    let file = sb.dir.path().join(&canary);
    std::fs::write(&file, "from the host\n").unwrap();
    let f = file.to_str().unwrap();

    // Into /escape/ (the container's /) and onto /etc/x, followed to
    // where it leads in the container (its /host): in the container.
    sb.containr_ok(&["cp", f, "s:/escape/"]);
    sb.containr_ok(&["cp", f, "s:/etc/x"]);
    assert!(
        !Path::new("/").join(&canary).exists(),
        "written on the host"
    );
    assert!(!Path::new("/host").exists(), "written on the host");
    let files = export(&sb, "s");
    let find = |p: &str| files.iter().find(|e| e.0 == p).map(|e| e.3.clone());
    assert_eq!(find(&canary).as_deref(), Some("from the host\n"));
    assert_eq!(find("host").as_deref(), Some("from the host\n"));
    assert_eq!(find("etc/x").as_deref(), Some("../../../../host"));

    // Out of them: the container's files, not the host's.
    let t = entries(&cp_out(&sb, "s:/escape/etc/marker"));
    assert_eq!(t[0].3, "mine\n");
    // Without -L a symlink is copied as one; with -L, what it leads to
    // in the container.
    let t = entries(&cp_out(&sb, "s:/escape"));
    assert_eq!(t.len(), 1);
    assert!(
        !t[0].3.is_empty() && t[0].3.trim_matches('/').is_empty(),
        "{t:?}"
    );
    let out = sb.cmd(&["cp", "-L", "s:/escape", "-"]).output().unwrap();
    let mut t: Vec<String> = names(&out.stdout)
        .into_iter()
        .filter_map(|n| n.strip_prefix("escape/").map(str::to_string))
        .collect();
    assert!(t.contains(&"etc/marker".to_string()), "{t:?}");
    // Exactly the container's tree: nothing of the host's.
    let mut whole: Vec<String> = export(&sb, "s").into_iter().map(|e| e.0).collect();
    t.sort();
    whole.sort();
    assert_eq!(t, whole);

    // A hostile tar: a symlink to /, then a file through it.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "up", "/").unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    b.append_data(&mut h, format!("up/{canary}.tar"), &b"evil"[..])
        .unwrap();
    let tar = b.into_inner().unwrap();
    let out = with_stdin(sb.cmd(&["cp", "-", "s:/tmp"]), &tar);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!Path::new("/").join(format!("{canary}.tar")).exists());
    let files: Vec<String> = export(&sb, "s").into_iter().map(|e| e.0).collect();
    assert!(files.contains(&format!("{canary}.tar")), "{files:?}");
    // A directory entry over the container's symlink to a directory keeps
    // the symlink (as for `/bin -> usr/bin`); what is below goes through
    // it, inside the container.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o755);
    b.append_data(&mut h, "escape", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    b.append_data(&mut h, format!("escape/{canary}.dir"), &b"evil"[..])
        .unwrap();
    let out = with_stdin(sb.cmd(&["cp", "-", "s:/"]), &b.into_inner().unwrap());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!Path::new("/").join(format!("{canary}.dir")).exists());
    let files = export(&sb, "s");
    assert!(files.iter().any(|e| e.0 == format!("{canary}.dir")));
    // (The tar crate writes a link to `/` as `//`.)
    let link = &files.iter().find(|e| e.0 == "escape").unwrap().3;
    assert!(
        !link.is_empty() && link.trim_matches('/').is_empty(),
        "still a symlink to /: {link:?}"
    );
    sb.containr_ok(&["rm", "s"]);
}

#[test]
fn cp_reaches_a_running_container_as_it_sees_itself() {
    let sb = Sandbox::new();
    import(&sb, "bb");
    let vol = sb.dir.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    let v = format!("{}:/vol", vol.display());
    let run = start(&sb, "live", &["--rm", "-v", &v, "bb"], "echo live > /state");
    let t = entries(&cp_out(&sb, "live:/state"));
    assert_eq!(t[0].3, "live\n");
    // Into its volume: on the host's directory.
    let f = sb.dir.path().join("in.txt");
    std::fs::write(&f, "through the volume\n").unwrap();
    sb.containr_ok(&["cp", f.to_str().unwrap(), "live:/vol/"]);
    assert_eq!(
        std::fs::read_to_string(vol.join("in.txt")).unwrap(),
        "through the volume\n"
    );
    // Into its root: the container sees it at once.
    sb.containr_ok(&["cp", f.to_str().unwrap(), "live:/seen"]);
    let t = entries(&cp_out(&sb, "live:/seen"));
    assert_eq!(t[0].3, "through the volume\n");
    // /proc's magic links are refused, not followed to the host.
    let out = sb
        .cmd(&["cp", "live:/proc/1/root/etc/hostname", "-"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    drop(run);
}

#[test]
fn diff_lists_added_changed_and_deleted_paths_in_order() {
    let sb = Sandbox::new();
    import(&sb, "bb");
    sb.containr_ok(&[
        "run",
        "--name",
        "d",
        "bb",
        "sh",
        "-c",
        "rm /bin/ls; echo x >> /etc/passwd; mkdir -p /new/sub; touch /new/sub/f",
    ]);
    let out = sb.containr_ok(&["diff", "d"]);
    assert_eq!(
        out,
        "C /bin\nD /bin/ls\nC /etc\nC /etc/passwd\nA /new\nA /new/sub\nA /new/sub/f\n"
    );
    // A container that changed nothing (containr's own mount points are
    // not its changes).
    sb.containr_ok(&["run", "--name", "quiet", "bb", "true"]);
    assert_eq!(sb.containr_ok(&["diff", "quiet"]), "");
    sb.containr_ok(&["rm", "d", "quiet"]);
}

#[test]
fn commit_makes_a_runnable_savable_image_with_the_changes() {
    let sb = Sandbox::new();
    import(&sb, "bb");
    sb.containr_ok(&[
        "run",
        "--name",
        "w",
        "bb",
        "sh",
        "-c",
        "rm /bin/ls; echo made > /made",
    ]);
    let id = sb.containr_ok(&[
        "commit",
        "-m",
        "my change",
        "-a",
        "A U Thor",
        "-c",
        "CMD [\"cat\", \"/made\"]",
        "-c",
        "ENV GREETING=hello",
        "w",
        "made:1",
    ]);
    let id = id.trim();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "prints the image id: {id}"
    );
    // It runs: its command, its env, the deletion kept.
    assert_eq!(sb.containr_ok(&["run", "--rm", "made:1"]), "made\n");
    let out = sb.containr_ok(&[
        "run",
        "--rm",
        "made:1",
        "sh",
        "-c",
        "echo $GREETING; ls /bin/ls 2>&1; ls /bin/sh",
    ]);
    assert!(out.starts_with("hello\n"), "{out}");
    assert!(out.contains("No such file"), "{out}");
    assert!(out.contains("/bin/sh"), "{out}");
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.containr_ok(&["image", "inspect", "made:1"])).unwrap();
    assert_eq!(inspect[0]["Comment"], "my change");
    assert_eq!(inspect[0]["Layers"].as_array().unwrap().len(), 2);
    // It saves: the new layer holds the change and the whiteout, not
    // containr's mount points.
    let out = sb.cmd(&["save", "made:1"]).output().unwrap();
    assert!(out.status.success());
    let saved = entries(&out.stdout);
    let manifest = &saved.iter().find(|e| e.0 == "manifest.json").unwrap().3;
    let manifest: serde_json::Value = serde_json::from_str(manifest).unwrap();
    let top = manifest[0]["Layers"].as_array().unwrap().last().unwrap();
    let layer = saved
        .iter()
        .find(|e| e.0 == top.as_str().unwrap())
        .map(|e| e.0.clone())
        .unwrap();
    let out = sb.cmd(&["save", "made:1"]).output().unwrap();
    let mut a = tar::Archive::new(&out.stdout[..]);
    let mut layer_bytes = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == layer {
            std::io::Read::read_to_end(&mut e, &mut layer_bytes).unwrap();
        }
    }
    let mut in_layer = names(&layer_bytes);
    in_layer.sort();
    // `etc` is restated (unchanged): containr's mount points in it are
    // left out.
    assert_eq!(in_layer, ["bin", "bin/.wh.ls", "etc", "made"]);
    // Unnamed: listed as <none>.
    let id2 = sb.containr_ok(&["commit", "w"]);
    let images = sb.containr_ok(&["images"]);
    assert!(
        images.contains(&id2.trim()["sha256:".len()..][..12]),
        "{images}"
    );
    assert_fails(
        &sb.cmd(&["commit", "-c", "RUN true", "w"]).output().unwrap(),
        1,
        "not a valid change command",
    );
    sb.containr_ok(&["rm", "w"]);
}

#[test]
fn rename_keeps_a_running_container_going_under_its_new_name() {
    let sb = Sandbox::new();
    import(&sb, "bb");
    sb.containr_ok(&["run", "--name", "taken", "bb", "true"]);
    let run = start(&sb, "old", &["bb"], "true");
    sb.containr_ok(&["rename", "old", "new"]);
    let ps = sb.containr_ok(&["ps"]);
    assert!(ps.contains(" new\n") && !ps.contains(" old\n"), "{ps}");
    // The old name is free, the new one works for every command.
    sb.containr_ok(&["run", "--rm", "--name", "old", "bb", "true"]);
    let t = entries(&cp_out(&sb, "new:/ready"));
    assert_eq!(t[0].0, "ready");
    assert_fails(
        &sb.cmd(&["rename", "new", "taken"]).output().unwrap(),
        1,
        "The container name \"/taken\" is already in use",
    );
    assert_fails(
        &sb.cmd(&["rename", "nope", "x"]).output().unwrap(),
        1,
        "No such container: nope",
    );
    // When it exits, its record keeps the new name.
    drop(run);
    let all = sb.containr_ok(&["ps", "-a"]);
    assert!(all.contains(" new\n") && !all.contains(" old\n"), "{all}");
    // (Beside the records: each container's bundle directory, by id.)
    let records: Vec<String> = (sb.entries("containers").into_iter())
        .filter(|e| e.ends_with(".json"))
        .collect();
    assert_eq!(records, ["new.json", "taken.json"]);
    sb.containr_ok(&["rm", "new", "taken"]);
}

#[test]
fn port_lists_the_published_ports() {
    let sb = Sandbox::new();
    import(&sb, "bb");
    let bridge = "containr-fsops";
    let prune = || {
        Command::new(common::BIN)
            .args(["network", "prune", "--bridge", bridge])
            .output()
            .unwrap()
    };
    prune();
    let p = |addr: &str| {
        let l = std::net::TcpListener::bind(addr).unwrap();
        l.local_addr().unwrap().port()
    };
    let (a, b) = (p("0.0.0.0:0"), p("127.0.0.1:0"));
    let run = start(
        &sb,
        "web",
        &[
            "--rm",
            "--bridge",
            bridge,
            "--subnet",
            "10.231.213.0/24",
            "-p",
            &format!("{a}:80"),
            "-p",
            &format!("127.0.0.1:{b}:53/udp"),
            "bb",
        ],
        "true",
    );
    assert_eq!(
        sb.containr_ok(&["port", "web"]),
        format!("53/udp -> 127.0.0.1:{b}\n80/tcp -> 0.0.0.0:{a}\n")
    );
    assert_eq!(
        sb.containr_ok(&["port", "web", "80"]),
        format!("0.0.0.0:{a}\n")
    );
    assert_fails(
        &sb.cmd(&["port", "web", "53"]).output().unwrap(),
        1,
        "No public port '53/tcp' published for web",
    );
    drop(run);
    let out = prune();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cp_maps_owners_through_a_user_namespace() {
    let sb = Sandbox::new();
    import(&sb, "bb");
    sb.containr_ok(&[
        "run",
        "--name",
        "u",
        "--userns-remap=210000:65536",
        "bb",
        "sh",
        "-c",
        "touch /made; chown 5:6 /made",
    ]);
    let f = sb.dir.path().join("f");
    std::fs::write(&f, "x").unwrap();
    std::os::unix::fs::chown(&f, Some(7), Some(8)).unwrap();
    sb.containr_ok(&["cp", f.to_str().unwrap(), "u:/as-root"]);
    sb.containr_ok(&["cp", "-a", f.to_str().unwrap(), "u:/as-is"]);
    // On the host, in the writable layer: the container's ids, mapped.
    let rw = sb.entries("rw");
    let upper = sb.data.join("rw").join(&rw[0]).join("upper");
    let owner = |p: &str| {
        let m = std::fs::metadata(upper.join(p)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("as-root"), (210_000, 210_000));
    assert_eq!(owner("as-is"), (210_007, 210_008));
    assert_eq!(owner("made"), (210_005, 210_006));
    // Out: as the container sees them.
    let t = entries(&cp_out(&sb, "u:/made"));
    assert_eq!((t[0].1, t[0].2), (5, 6));
    sb.containr_ok(&["rm", "u"]);
}

#[test]
fn an_opaque_directory_hides_the_images_files_in_diff_and_commit() {
    let sb = Sandbox::new();
    import(&sb, "bb");
    // Removed and made again: overlayfs marks the new directory opaque.
    sb.containr_ok(&[
        "run",
        "--name",
        "o",
        "bb",
        "sh",
        "-c",
        "rm -rf /home; mkdir /home; touch /home/new",
    ]);
    assert_eq!(
        sb.containr_ok(&["diff", "o"]),
        "C /home\nA /home/new\nD /home/user\n"
    );
    sb.containr_ok(&["commit", "o", "opaque"]);
    assert_eq!(
        sb.containr_ok(&["run", "--rm", "opaque", "ls", "/home"]),
        "new\n"
    );
    sb.containr_ok(&["rm", "o"]);
}

#[test]
fn hard_links_stay_links_through_cp_and_commit() {
    let sb = Sandbox::new();
    import(&sb, "bb");
    sb.containr_ok(&[
        "run",
        "--name",
        "h",
        "bb",
        "sh",
        "-c",
        "mkdir /hl; echo one > /hl/a; ln /hl/a /hl/b",
    ]);
    let mut a = tar::Archive::new(std::io::Cursor::new(cp_out(&sb, "h:/hl")));
    let kinds: Vec<(String, tar::EntryType)> = a
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().entry_type(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("hl".to_string(), tar::EntryType::Directory),
            ("hl/a".to_string(), tar::EntryType::Regular),
            ("hl/b".to_string(), tar::EntryType::Link),
        ]
    );
    // Copied back in as a stream, and committed: still one inode.
    let tar = cp_out(&sb, "h:/hl");
    let out = with_stdin(sb.cmd(&["cp", "-", "h:/tmp"]), &tar);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sb.containr_ok(&["commit", "h", "linked"]);
    let out = sb.containr_ok(&[
        "run",
        "--rm",
        "linked",
        "stat",
        "-c",
        "%i %h",
        "/hl/a",
        "/hl/b",
        "/tmp/hl/a",
        "/tmp/hl/b",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], lines[1], "{out}");
    assert_eq!(lines[2], lines[3], "{out}");
    assert!(lines[0].ends_with(" 2"), "{out}");
    sb.containr_ok(&["rm", "h"]);
}

#[test]
fn commit_keeps_the_docker_fields_of_its_image() {
    use common::registry::{Compression, Layout, host_arch, tar_dir};
    let sb = Sandbox::new();
    let mut layout = Layout::new(&sb.dir.path().join("oci"));
    let healthcheck = serde_json::json!({
        "Test": ["CMD-SHELL", "test -e /x"], "Interval": 2_000_000_000u64, "Retries": 3,
    });
    let m = layout.image(
        &[(tar_dir(&sb.rootfs), Compression::Gzip)],
        serde_json::json!({
            "Cmd": ["sh"], "Healthcheck": healthcheck, "Shell": ["/bin/sh", "-ec"],
            "OnBuild": ["RUN a"], "ArgsEscaped": true,
        }),
        host_arch(),
    );
    layout.tag("hc:1", &m);
    let file = sb.dir.path().join("hc.tar");
    std::fs::write(&file, tar_dir(&layout.dir)).unwrap();
    sb.containr_ok(&["load", "-i", file.to_str().unwrap()]);
    let inspect = |name: &str| -> serde_json::Value {
        let all: serde_json::Value =
            serde_json::from_str(&sb.containr_ok(&["image", "inspect", name])).unwrap();
        all[0].clone()
    };
    // Loaded as it was: the same manifest (so the same digests).
    let loaded = inspect("hc:1");
    assert_eq!(loaded["ManifestDigest"], m["digest"]);
    assert_eq!(loaded["Config"]["Healthcheck"], healthcheck);

    sb.containr_ok(&["run", "--name", "c", "hc:1", "sh", "-c", "echo x > /x"]);
    sb.containr_ok(&["commit", "-c", "ONBUILD RUN b", "c", "hc:2"]);
    let config = &inspect("hc:2")["Config"];
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["sh", "-c", "echo x > /x"])
    );
    assert_eq!(config["Healthcheck"], healthcheck);
    assert_eq!(config["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert_eq!(config["OnBuild"], serde_json::json!(["RUN a", "RUN b"]));
    assert_eq!(config["ArgsEscaped"], true, "a field no type knows is kept");
    sb.containr_ok(&["rm", "c"]);
}

#[test]
fn errors_end_with_status_1_as_dockers_client() {
    let sb = Sandbox::new();
    let host = sb.dir.path().to_str().unwrap().to_string();
    let fails = |args: &[&str], needle: &str| {
        assert_fails(&sb.cmd(args).output().unwrap(), 1, needle);
    };
    fails(&["cp", "nope:/etc/hosts", &host], "No such container: nope");
    fails(&["cp", &host, "nope:/tmp"], "No such container: nope");
    fails(&["cp", &host, "elsewhere"], "one of SRC and DEST must be");
    fails(&["diff", "nope"], "No such container: nope");
    fails(&["commit", "nope"], "No such container: nope");
    fails(&["port", "nope"], "No such container: nope");
    fails(&["rename", "nope", "new"], "No such container: nope");
    // A bad command line is still 125, as docker's.
    assert_fails(&sb.cmd(&["cp", "-z"]).output().unwrap(), 125, "-z");
}

#[test]
fn cp_onto_a_symlink_writes_where_it_leads_inside_the_container() {
    let sb = Sandbox::new();
    import(&sb, "bb");
    let canary = host_canary();
    let script = format!(
        "echo old > /etc/target; ln -s /etc/target /tlink; ln -s tlink /chain; \
         ln -s etc /dlink; ln -s /etc/made /dangling; ln -s /tmp/{canary} /abs; \
         ln -s ../../../../{canary} /up; ln -s /loop2 /loop1; ln -s /loop1 /loop2"
    );
    sb.containr_ok(&["run", "--name", "l", "bb", "sh", "-c", &script]);
    let write = |name: &str, text: &str| {
        let p = sb.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let note = write("note", "new\n");
    let files = || export(&sb, "l");
    let find = |files: &[(String, u64, u64, String)], p: &str| {
        files.iter().find(|e| e.0 == p).map(|e| e.3.clone())
    };

    // A link to a file: the file is written, the link stays.
    sb.containr_ok(&["cp", &note, "l:/tlink"]);
    let f = files();
    assert_eq!(find(&f, "etc/target").as_deref(), Some("new\n"));
    assert_eq!(find(&f, "tlink").as_deref(), Some("/etc/target"));
    // A link to a directory: into it. A dangling one: its target is made.
    sb.containr_ok(&["cp", &note, "l:/dlink"]);
    sb.containr_ok(&["cp", &note, "l:/dangling"]);
    let f = files();
    assert_eq!(find(&f, "etc/note").as_deref(), Some("new\n"));
    assert_eq!(find(&f, "dlink").as_deref(), Some("etc"));
    assert_eq!(find(&f, "etc/made").as_deref(), Some("new\n"));
    assert_eq!(find(&f, "dangling").as_deref(), Some("/etc/made"));
    // A directory goes under a link to one; onto a link to a file, never.
    let dir = sb.dir.path().join("dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("f"), "in dir\n").unwrap();
    let d = dir.to_str().unwrap();
    sb.containr_ok(&["cp", d, "l:/dlink"]);
    assert_eq!(find(&files(), "etc/dir/f").as_deref(), Some("in dir\n"));
    assert_fails(
        &sb.cmd(&["cp", d, "l:/tlink"]).output().unwrap(),
        1,
        "cannot copy a directory to a file",
    );
    // Links that would lead out of the root lead inside it: nothing is
    // written on the host.
    sb.containr_ok(&["cp", &note, "l:/abs"]);
    sb.containr_ok(&["cp", &note, "l:/up"]);
    assert!(
        !Path::new("/tmp").join(&canary).exists(),
        "written on the host"
    );
    assert!(
        !Path::new("/").join(&canary).exists(),
        "written on the host"
    );
    let f = files();
    assert_eq!(find(&f, &format!("tmp/{canary}")).as_deref(), Some("new\n"));
    assert_eq!(find(&f, &canary).as_deref(), Some("new\n"));
    // Through a chain of links; a loop is an error, not a hang.
    let chained = write("chained", "chained\n");
    sb.containr_ok(&["cp", &chained, "l:/chain"]);
    let f = files();
    assert_eq!(find(&f, "etc/target").as_deref(), Some("chained\n"));
    assert_eq!(find(&f, "chain").as_deref(), Some("tlink"));
    assert_fails(
        &sb.cmd(&["cp", &note, "l:/loop1"]).output().unwrap(),
        1,
        "symbolic links",
    );
    // The host's side too: a link to a file is written through.
    let target = write("target", "host\n");
    let link = sb.dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    sb.containr_ok(&["cp", "l:/etc/target", link.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "chained\n");
    assert!(link.symlink_metadata().unwrap().is_symlink());
    sb.containr_ok(&["rm", "l"]);
}

/// Run `args` (a commit), watching the freezer of process `pid` until it
/// ends: its output, and whether the freezer was ever seen frozen.
fn watch_freezer(sb: &Sandbox, pid: u32, args: &[&str]) -> (Output, bool) {
    let mut child = sb
        .cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut frozen = false;
    while child.try_wait().unwrap().is_none() {
        frozen |= common::freezer_state(pid) == "FROZEN";
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?} did not end");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    (child.wait_with_output().unwrap(), frozen)
}

#[test]
fn commit_freezes_a_running_container_while_it_reads_its_layer() {
    let sb = Sandbox::new();
    import(&sb, "bb");
    // A layer that takes a while to read, and a process that never waits.
    let marker = format!("spin{}", rand_hex());
    let script = format!(
        "dd if=/dev/zero of=/big bs=1M count=64 2>/dev/null; M={marker}; \
         {{ while :; do :; done & }}"
    );
    let run = start(&sb, "busy", &["--rm", "bb"], &script);
    let deadline = Instant::now() + Duration::from_secs(10);
    // The loop's shell only: its parent execs `sleep` once it is ready.
    let spinner: u32 = loop {
        let found = common::processes_with(&marker);
        let found: Vec<&String> = found.iter().filter(|p| !p.contains("containr")).collect();
        if let [p] = found[..] {
            break p.split(':').next().unwrap().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "the spinning loop never ran");
        std::thread::sleep(Duration::from_millis(20));
    };
    let running_not_paused = || {
        assert_eq!(common::freezer_state(spinner), "THAWED");
        let out = sb.containr_ok(&["inspect", "busy"]);
        let inspect: serde_json::Value = serde_json::from_str(&out).unwrap();
        let state = &inspect[0]["State"];
        assert_eq!(
            (state["Status"].as_str(), state["Paused"].as_bool()),
            (Some("running"), Some(false))
        );
        let before = common::cpu_ticks(spinner);
        let deadline = Instant::now() + Duration::from_secs(5);
        while common::cpu_ticks(spinner) == before {
            assert!(Instant::now() < deadline, "the container does not run");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // By default, frozen while read, and running again after.
    let (out, frozen) = watch_freezer(&sb, spinner, &["commit", "busy", "snap:1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(frozen, "the container was never frozen during the commit");
    running_not_paused();
    // --pause=false: never frozen.
    let (out, frozen) = watch_freezer(&sb, spinner, &["commit", "--pause=false", "busy", "snap:2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!frozen, "frozen despite --pause=false");
    running_not_paused();
    // Paused already: left paused.
    sb.containr_ok(&["pause", "busy"]);
    sb.containr_ok(&["commit", "busy", "snap:3"]);
    assert_eq!(common::freezer_state(spinner), "FROZEN");
    sb.containr_ok(&["unpause", "busy"]);
    running_not_paused();
    // The image has what the container wrote.
    let out = sb.containr_ok(&["run", "--rm", "snap:1", "ls", "-l", "/big"]);
    assert!(out.contains(&(64u64 << 20).to_string()), "{out}");
    drop(run);
}

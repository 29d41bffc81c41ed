//! Containers after they exit: kept (unless `--rm`) with their status and
//! writable layer, listed by `ps`, removed by `rm`, read by `inspect` and
//! `export`, and nothing of a live container (cgroup, mount) left behind.

mod common;

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Sandbox, assert_fails, cgroup_dirs, processes_with};

/// `containr run ARGS...` (no `--rm`) on the sandbox's rootfs.
fn run_kept(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    let mut full = vec!["run", "--rootfs", sb.rootfs.to_str().unwrap()];
    full.extend_from_slice(args);
    sb.cmd(&full).output().unwrap()
}

/// `containr ps ARGS...`: its lines after the header (all of them with -q).
fn ps(sb: &Sandbox, args: &[&str]) -> Vec<String> {
    let mut full = vec!["ps"];
    full.extend_from_slice(args);
    let out = sb.containr_ok(&full);
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    if !args.contains(&"-q") && !args.contains(&"-aq") {
        assert!(lines[0].starts_with("CONTAINER ID"), "{out}");
        lines.remove(0);
    }
    lines
}

fn inspect(sb: &Sandbox, name: &str) -> serde_json::Value {
    let out = sb.containr_ok(&["inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect prints JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{out}");
    v[0].clone()
}

/// A container started in the background, once its record exists.
fn start(sb: &Sandbox, name: &str, args: &[&str]) -> Child {
    let mut full = vec![
        "run",
        "--rootfs",
        sb.rootfs.to_str().unwrap(),
        "--name",
        name,
    ];
    full.extend_from_slice(args);
    let child = sb.cmd(&full).stdout(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ps(sb, &["-q"]).is_empty() {
        assert!(Instant::now() < deadline, "{name} never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn an_exited_container_is_kept_with_its_status_until_rm() {
    let sb = Sandbox::new();
    let out = run_kept(&sb, &["--name", "three", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let cgroups = cgroup_dirs(&sb, "three");
    for (_, d) in &cgroups {
        assert!(!d.exists(), "cgroup {} outlived the container", d.display());
    }
    // Not running: only `ps -a` lists it.
    assert!(ps(&sb, &[]).is_empty());
    assert!(ps(&sb, &["-q"]).is_empty());
    let all = ps(&sb, &["-a"]);
    assert_eq!(all.len(), 1, "{all:?}");
    let row = &all[0];
    assert!(row.contains("Exited (3) "), "{row}");
    assert!(row.ends_with("   three"), "{row}");
    assert!(row.contains("\"sh -c exit 3\""), "{row}");
    let id = ps(&sb, &["-aq"]).remove(0);
    assert_eq!(id.len(), 12);
    assert!(row.starts_with(&id), "{row}");

    let v = inspect(&sb, "three");
    assert_eq!(v["Name"], "/three");
    assert!(v["Id"].as_str().unwrap().starts_with(&id));
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["Running"], false);
    assert_eq!(v["State"]["ExitCode"], 3);
    assert_eq!(v["State"]["Pid"], 0);
    assert_ne!(v["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        v["Config"]["Cmd"],
        serde_json::json!(["sh", "-c", "exit 3"])
    );
    // By id prefix too, and through `container inspect`.
    assert_eq!(inspect(&sb, &id[..6])["Name"], "/three");
    let c = sb.containr_ok(&["container", "inspect", "three"]);
    assert!(c.contains("\"/three\""), "{c}");

    // The name stays taken, as docker's.
    assert_fails(
        &run_kept(&sb, &["--name", "three", "true"]),
        125,
        "The container name \"/three\" is already in use",
    );
    assert_eq!(ps(&sb, &["-aq"]), [id.as_str()]);

    assert_eq!(sb.containr_ok(&["rm", "three"]), "three\n");
    assert!(sb.entries("containers").is_empty());
    assert!(ps(&sb, &["-a"]).is_empty());
    // ... and is free again.
    assert_eq!(
        run_kept(&sb, &["--name", "three", "true"]).status.code(),
        Some(0)
    );
    sb.containr_ok(&["rm", &inspect(&sb, "three")["Id"].as_str().unwrap()[..12]]);
}

#[test]
fn unknown_containers_are_errors_as_docker_says_them() {
    let sb = Sandbox::new();
    assert_fails(
        &sb.cmd(&["rm", "nope"]).output().unwrap(),
        1,
        "No such container: nope",
    );
    let out = sb.cmd(&["inspect", "nope"]).output().unwrap();
    assert_fails(&out, 1, "No such object: nope");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    assert_fails(
        &sb.cmd(&["export", "-o", "/dev/null", "nope"])
            .output()
            .unwrap(),
        125,
        "No such container: nope",
    );
}

#[test]
fn with_rm_nothing_is_kept() {
    let sb = Sandbox::new();
    let out = sb.run(&["--name", "gone", "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(sb.entries("containers").is_empty());
    assert!(ps(&sb, &["-a"]).is_empty());
    // A failed run is never kept, --rm or not.
    assert_fails(
        &run_kept(&sb, &["--name", "bad", "no-such-command"]),
        127,
        "not found",
    );
    assert!(sb.entries("containers").is_empty());
}

#[test]
fn rm_refuses_a_running_container_unless_forced() {
    let sb = Sandbox::new();
    let marker = format!("sleep {}", 100 + std::process::id() % 1000);
    let mut run = start(&sb, "busy", &["sh", "-c", &format!("exec {marker}")]);
    let cgroups = cgroup_dirs(&sb, "busy");
    let row = ps(&sb, &[]);
    assert_eq!(row.len(), 1);
    assert!(row[0].contains("   Up "), "{row:?}");
    let v = inspect(&sb, "busy");
    assert_eq!(v["State"]["Running"], true);
    assert!(v["State"]["Pid"].as_u64().unwrap() > 1);

    assert_fails(
        &sb.cmd(&["rm", "busy"]).output().unwrap(),
        1,
        "container is running",
    );
    assert_eq!(ps(&sb, &[]).len(), 1, "a refused rm touched it");

    assert_eq!(sb.containr_ok(&["rm", "-f", "busy"]), "busy\n");
    // Killed: its run saw SIGKILL's status and cleaned up before rm returned.
    assert_eq!(run.wait().unwrap().code(), Some(137));
    assert!(ps(&sb, &["-a"]).is_empty());
    assert!(sb.entries("containers").is_empty());
    for (_, d) in &cgroups {
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
    assert!(processes_with(&marker).is_empty());
}

#[test]
fn a_killed_run_shows_as_exited() {
    let sb = Sandbox::new();
    let mut run = start(&sb, "orphan", &["sleep", "100"]);
    let cgroups = cgroup_dirs(&sb, "orphan");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    run.wait().unwrap();
    // Its record still says running; ps knows better.
    assert!(ps(&sb, &[]).is_empty());
    let all = ps(&sb, &["-a"]);
    assert!(all[0].contains("Exited (137) "), "{all:?}");
    assert_eq!(inspect(&sb, "orphan")["State"]["ExitCode"], 137);
    for (_, d) in &cgroups {
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
    sb.containr_ok(&["rm", "orphan"]);
}

#[test]
fn an_image_container_keeps_its_layer_and_exports_it_when_stopped() {
    let sb = Sandbox::new();
    let tarball = sb.rootfs_tar("rootfs.tar");
    sb.containr_ok(&["import", tarball.to_str().unwrap(), "bb:1"]);
    sb.containr_ok(&[
        "run",
        "--name",
        "writer",
        "bb:1",
        "sh",
        "-c",
        "echo written > /hello; rm /bin/ls",
    ]);
    let id = inspect(&sb, "writer")["Id"].as_str().unwrap().to_string();
    assert_eq!(sb.entries("rw"), [id.as_str()]);
    let upper = sb.data.join("rw").join(&id).join("upper");
    assert_eq!(
        std::fs::read_to_string(upper.join("hello")).unwrap(),
        "written\n"
    );
    assert_eq!(inspect(&sb, "writer")["Image"], "bb:1");
    assert!(ps(&sb, &["-a"])[0].contains("   bb:1   "));

    // Exported, the container's view: its file, without what it deleted.
    let file = sb.dir.path().join("writer.tar");
    sb.containr_ok(&["export", "-o", file.to_str().unwrap(), "writer"]);
    let entries = tar_entries(std::fs::File::open(&file).unwrap());
    let hello = entries
        .iter()
        .find(|(p, _)| p == "hello")
        .expect("hello in the tar");
    assert_eq!(hello.1, "written\n");
    assert!(entries.iter().any(|(p, _)| p == "bin/sh"));
    assert!(
        !entries.iter().any(|(p, _)| p == "bin/ls"),
        "a deleted file came back"
    );
    // To stdout as well; and the overlay it read was never attached.
    let out = sb.cmd(&["export", &id[..8]]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(tar_entries(&out.stdout[..]).len(), entries.len());
    let findmnt = std::process::Command::new("findmnt")
        .args(["-rn", "-t", "overlay"])
        .output()
        .unwrap();
    let here = sb.data.to_str().unwrap();
    let overlays = String::from_utf8_lossy(&findmnt.stdout);
    assert!(!overlays.contains(here), "export left a mount: {overlays}");

    sb.containr_ok(&["rm", "writer"]);
    assert!(sb.entries("rw").is_empty());
    assert!(sb.entries("containers").is_empty());
    // With --rm, neither record nor layer stays.
    sb.containr_ok(&["run", "--rm", "bb:1", "touch", "/x"]);
    assert!(sb.entries("rw").is_empty());
}

#[test]
fn a_user_namespaced_container_exports_its_own_ids() {
    let sb = Sandbox::new();
    let tarball = sb.rootfs_tar("rootfs.tar");
    sb.containr_ok(&["import", tarball.to_str().unwrap(), "bb:1"]);
    sb.containr_ok(&[
        "run",
        "--name",
        "mapped",
        "--userns-remap=200000:65536",
        "bb:1",
        "sh",
        "-c",
        "echo mine > /mine && chown 7:8 /mine && touch /root-owned",
    ]);
    // On disk, what it wrote belongs to the host range...
    use std::os::unix::fs::MetadataExt;
    let id = inspect(&sb, "mapped")["Id"].as_str().unwrap().to_string();
    let upper = sb.data.join("rw").join(&id).join("upper");
    let meta = std::fs::metadata(upper.join("mine")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (200_007, 200_008));
    // ...and the export is the container's view, as docker's is.
    let out = sb.cmd(&["export", "mapped"]).output().unwrap();
    assert!(out.status.success());
    let mut a = tar::Archive::new(&out.stdout[..]);
    let owners: std::collections::BTreeMap<String, (u64, u64)> = a
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            (path, (h.uid().unwrap(), h.gid().unwrap()))
        })
        .collect();
    assert_eq!(owners["mine"], (7, 8));
    assert_eq!(owners["root-owned"], (0, 0));
    assert_eq!(owners["bin/busybox"], (0, 0));
    sb.containr_ok(&["rm", "mapped"]);
}

#[test]
fn rmi_refuses_the_last_name_of_an_image_a_container_uses() {
    let sb = Sandbox::new();
    let tarball = sb.rootfs_tar("rootfs.tar");
    sb.containr_ok(&["import", tarball.to_str().unwrap(), "bb:1"]);
    sb.containr_ok(&["tag", "bb:1", "bb:2"]);
    sb.containr_ok(&["run", "--name", "user", "bb:1", "touch", "/made"]);
    // Another name of the same image may go...
    sb.containr_ok(&["rmi", "bb:2"]);
    // ...the last one not, while the exited container exists.
    assert_fails(
        &sb.cmd(&["rmi", "bb:1"]).output().unwrap(),
        1,
        "conflict: unable to remove repository reference \"bb:1\" (must force) - container",
    );
    assert!(sb.containr_ok(&["images"]).contains("bb "));
    // Forced, the name goes; the container's layers stay until it does.
    sb.containr_ok(&["rmi", "-f", "bb:1"]);
    sb.containr_ok(&["gc"]);
    let out = sb.cmd(&["export", "user"]).output().unwrap();
    assert!(out.status.success());
    assert!(
        tar_entries(&out.stdout[..])
            .iter()
            .any(|(p, _)| p == "made")
    );
    sb.containr_ok(&["rm", "user"]);
    sb.containr_ok(&["gc"]);
    assert!(sb.snapshots().is_empty());
}

#[test]
fn unnamed_containers_get_docker_like_names() {
    let sb = Sandbox::new();
    let rootfs = sb.rootfs.to_str().unwrap();
    for _ in 0..2 {
        sb.containr_ok(&["run", "--rootfs", rootfs, "true"]);
    }
    let lines = ps(&sb, &["-a"]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let names: Vec<String> = lines
        .iter()
        .map(|l| l.split_whitespace().last().unwrap().to_string())
        .collect();
    assert_ne!(names[0], names[1]);
    for name in &names {
        let (adjective, noun) = name.split_once('_').expect("adjective_noun");
        assert!(
            !adjective.is_empty()
                && noun
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{name}"
        );
        // The name is the container's: inspect and rm take it.
        assert_eq!(inspect(&sb, name)["Name"], format!("/{name}"));
        sb.containr_ok(&["rm", name]);
    }
    assert!(sb.entries("containers").is_empty());
}

/// (path, contents) of each entry of a tar.
fn tar_entries(r: impl Read) -> Vec<(String, String)> {
    let mut a = tar::Archive::new(r);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut s = String::new();
            let _ = e.read_to_string(&mut s);
            (path, s)
        })
        .collect()
}

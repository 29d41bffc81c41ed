//! `containr run`'s storage: `-v` binds and named/anonymous volumes,
//! `--mount`, `--tmpfs`, `--volumes-from`, and the `volume` commands. Each
//! effect is checked from inside the container (its mount table, writes
//! that must or must not work) and on the host (the files, the store).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use common::{Sandbox, assert_fails};

/// The line of the container's mountinfo whose mount point is `target`.
fn mount_line<'a>(mountinfo: &'a str, target: &str) -> &'a str {
    mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(target))
        .unwrap_or_else(|| panic!("no mount on {target} in:\n{mountinfo}"))
}

/// `containr run --rootfs ROOTFS ARGS...` kept (no `--rm`).
fn run_kept(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    let mut full = vec!["run", "--rootfs", sb.rootfs.to_str().unwrap()];
    full.extend_from_slice(args);
    sb.cmd(&full).output().unwrap()
}

#[test]
fn bind_mounts_read_write_and_read_only() {
    let sb = Sandbox::new();
    let host = sb.dir.path().join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "from the host\n").unwrap();
    let spec = format!("{}:/mnt/shared", host.display());
    let out = sb.ok(&[
        "-v",
        &spec,
        "sh",
        "-c",
        "cat /mnt/shared/in; echo from inside > /mnt/shared/out; cat /proc/self/mountinfo",
    ]);
    assert!(out.starts_with("from the host\n"), "{out}");
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "from inside\n"
    );
    let line = mount_line(&out, "/mnt/shared");
    assert!(line.split(' ').nth(5).unwrap().starts_with("rw"), "{line}");
    // rprivate by default (docker's): no peer group; `rshared` joins one.
    assert_eq!(line.split(' ').nth(6), Some("-"), "{line}");
    let spec_shared = format!("{}:/mnt/shared:rshared", host.display());
    let out = sb.ok(&["-v", &spec_shared, "cat", "/proc/self/mountinfo"]);
    let line = mount_line(&out, "/mnt/shared");
    assert!(
        line.split(' ').nth(6).unwrap().starts_with("shared:"),
        "{line}"
    );

    // :ro — the kernel refuses the write; the host's file is unchanged.
    let spec = format!("{}:/mnt/shared:ro", host.display());
    let out = sb.run(&[
        "-v",
        &spec,
        "sh",
        "-c",
        "cat /proc/self/mountinfo; echo x > /mnt/shared/in",
    ]);
    assert_ne!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = mount_line(&stdout, "/mnt/shared");
    assert!(line.split(' ').nth(5).unwrap().starts_with("ro"), "{line}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only file system"));
    assert_eq!(
        std::fs::read_to_string(host.join("in")).unwrap(),
        "from the host\n"
    );
}

#[test]
fn dash_v_makes_a_missing_source_and_dash_dash_mount_refuses_it() {
    let sb = Sandbox::new();
    let missing = sb.dir.path().join("made-by-v");
    let spec = format!("{}:/m", missing.display());
    sb.ok(&["-v", &spec, "touch", "/m/f"]);
    assert!(missing.join("f").is_file());

    let missing = sb.dir.path().join("not-there");
    let spec = format!("type=bind,source={},target=/m", missing.display());
    let out = sb.run(&["--mount", &spec, "true"]);
    assert_fails(&out, 125, "bind source path does not exist");
    assert!(!missing.exists());
}

#[test]
fn bad_specs_are_one_line_errors_with_125() {
    let sb = Sandbox::new();
    for (args, needle) in [
        (vec!["-v", "/a:rel"], "absolute path"),
        (vec!["-v", "/a:/b:bogus"], "unknown option \"bogus\""),
        (vec!["-v", "./x:/y"], "invalid volume name"),
        (
            vec!["--mount", "type=nfs,target=/x"],
            "expected bind, volume or tmpfs",
        ),
        (
            vec!["--mount", "type=tmpfs,target=/x,volume-nocopy"],
            "volume-nocopy",
        ),
        (vec!["--tmpfs", "rel"], "absolute path"),
        (
            vec!["--tmpfs", "/x", "--tmpfs", "/x"],
            "duplicate mount point",
        ),
        (vec!["--volumes-from", "nobody-here"], "no such container"),
    ] {
        let mut full = args.clone();
        full.push("true");
        assert_fails(&sb.run(&full), 125, needle);
    }
    // Nothing was made for the refused requests.
    assert!(
        sb.entries("volumes").is_empty(),
        "{:?}",
        sb.entries("volumes")
    );
}

#[test]
fn named_volumes_persist_and_are_refused_removal_while_used() {
    let sb = Sandbox::new();
    sb.ok(&["-v", "notes:/data", "sh", "-c", "echo kept > /data/file"]);
    assert_eq!(sb.containr_ok(&["volume", "ls", "-q"]), "notes\n");
    let dir = sb.data.join("volumes/notes/_data");
    assert_eq!(std::fs::read_to_string(dir.join("file")).unwrap(), "kept\n");
    // A second container sees it; read-only there.
    assert_eq!(sb.ok(&["-v", "notes:/d:ro", "cat", "/d/file"]), "kept\n");
    let out = sb.run(&["-v", "notes:/d:ro", "touch", "/d/x"]);
    assert_ne!(out.status.code(), Some(0));

    // An exited container that used it keeps it from removal.
    let out = run_kept(&sb, &["--name", "user1", "-v", "notes:/data", "true"]);
    assert!(out.status.success());
    let out = sb.cmd(&["volume", "rm", "notes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("volume is in use - [user1]"), "{err}");
    assert!(dir.join("file").exists());
    // inspect lists it under Mounts.
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.containr_ok(&["inspect", "user1"])).unwrap();
    let m = &inspect[0]["Mounts"][0];
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Name"], "notes");
    assert_eq!(m["Destination"], "/data");
    assert_eq!(m["Source"], dir.to_str().unwrap());
    assert_eq!(m["RW"], true);

    sb.containr_ok(&["rm", "user1"]);
    assert_eq!(sb.containr_ok(&["volume", "rm", "notes"]), "notes\n");
    assert!(!sb.data.join("volumes/notes").exists());
    let out = sb.cmd(&["volume", "rm", "notes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such volume: notes"));
    sb.containr_ok(&["volume", "rm", "-f", "notes"]);
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_dash_dash_rm() {
    let sb = Sandbox::new();
    // --rm: made for the run, gone after it.
    sb.ok(&["-v", "/scratch", "touch", "/scratch/x"]);
    assert!(
        sb.entries("volumes").is_empty(),
        "{:?}",
        sb.entries("volumes")
    );

    // Kept: stays with its container; `rm` alone keeps it, `rm -v` not.
    assert!(
        run_kept(&sb, &["--name", "a1", "-v", "/scratch", "true"])
            .status
            .success()
    );
    let made = sb.entries("volumes");
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].len(), 64, "{made:?}");
    sb.containr_ok(&["rm", "-v", "a1"]);
    assert!(sb.entries("volumes").is_empty());

    assert!(
        run_kept(&sb, &["--name", "a2", "-v", "/scratch", "true"])
            .status
            .success()
    );
    sb.containr_ok(&["rm", "a2"]);
    assert_eq!(sb.entries("volumes").len(), 1);
    // prune removes the unused anonymous one; named ones only with -a.
    sb.containr_ok(&["volume", "create", "named"]);
    let out = sb.containr_ok(&["volume", "prune", "-f"]);
    assert!(out.contains("Total reclaimed volumes: 1"), "{out}");
    assert_eq!(sb.entries("volumes"), ["named"]);
    sb.containr_ok(&["volume", "prune", "-a", "-f"]);
    assert!(sb.entries("volumes").is_empty());
}

#[test]
fn a_new_volume_gets_the_images_content_owners_and_modes_kept() {
    let sb = Sandbox::new();
    let app = sb.rootfs.join("opt/app");
    std::fs::create_dir_all(app.join("sub")).unwrap();
    std::fs::write(app.join("conf"), "setting=1\n").unwrap();
    std::fs::set_permissions(app.join("conf"), PermissionsExt::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(app.join("conf"), Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(&app, PermissionsExt::from_mode(0o750)).unwrap();
    symlink("conf", app.join("link")).unwrap();

    sb.ok(&["-v", "appdata:/opt/app", "true"]);
    let vol = sb.data.join("volumes/appdata/_data");
    let conf = std::fs::metadata(vol.join("conf")).unwrap();
    assert_eq!((conf.uid(), conf.gid()), (1000, 1000));
    assert_eq!(conf.mode() & 0o7777, 0o640);
    assert_eq!(
        std::fs::read_to_string(vol.join("conf")).unwrap(),
        "setting=1\n"
    );
    assert!(vol.join("sub").is_dir());
    assert_eq!(
        std::fs::read_link(vol.join("link")).unwrap(),
        Path::new("conf")
    );
    assert_eq!(std::fs::metadata(&vol).unwrap().mode() & 0o7777, 0o750);

    // Only a new (empty) volume: what the container changed stays.
    sb.ok(&["-v", "appdata:/opt/app", "rm", "/opt/app/conf"]);
    sb.ok(&["-v", "appdata:/opt/app", "true"]);
    assert!(!vol.join("conf").exists());

    // volume-nocopy: nothing copied.
    let spec = "type=volume,source=bare,target=/opt/app,volume-nocopy";
    assert_eq!(sb.ok(&["--mount", spec, "ls", "-A", "/opt/app"]), "");
}

#[test]
fn tmpfs_mounts_and_a_read_only_root() {
    let sb = Sandbox::new();
    let out = sb.ok(&[
        "--read-only",
        "--tmpfs",
        "/tmp:size=1m",
        "--mount",
        "type=tmpfs,target=/run/app,tmpfs-mode=700,tmpfs-size=64k",
        "sh",
        "-c",
        "touch /tmp/ok && ! touch /nope 2>/dev/null && stat -c %a /run/app && cat /proc/self/mountinfo",
    ]);
    assert!(out.starts_with("700\n"), "{out}");
    let tmp = mount_line(&out, "/tmp");
    assert!(tmp.contains("tmpfs"), "{tmp}");
    assert!(tmp.contains("size=1024k"), "{tmp}");
    for flag in ["nosuid", "nodev", "noexec"] {
        assert!(tmp.split(' ').nth(5).unwrap().contains(flag), "{tmp}");
    }
    assert!(mount_line(&out, "/run/app").contains("size=64k"));
    let root = mount_line(&out, "/");
    assert!(root.split(' ').nth(5).unwrap().starts_with("ro"), "{root}");
}

#[test]
fn volumes_from_shares_another_containers_volumes() {
    let sb = Sandbox::new();
    let out = run_kept(
        &sb,
        &[
            "--name",
            "src",
            "-v",
            "shared:/data",
            "sh",
            "-c",
            "echo v1 > /data/f",
        ],
    );
    assert!(out.status.success());
    assert_eq!(sb.ok(&["--volumes-from", "src", "cat", "/data/f"]), "v1\n");
    let out = sb.run(&["--volumes-from", "src:ro", "touch", "/data/g"]);
    assert_ne!(out.status.code(), Some(0));
    sb.containr_ok(&["rm", "-v", "src"]);
    // A named volume is not anonymous: rm -v keeps it.
    assert_eq!(sb.entries("volumes"), ["shared"]);
}

#[test]
fn volume_commands() {
    let sb = Sandbox::new();
    sb.containr_ok(&["volume", "create", "--label", "team=lab", "--name", "v1"]);
    sb.containr_ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "o=size=1m",
        "v2",
    ]);
    let out = sb.cmd(&["volume", "create", "v1"]).output().unwrap();
    assert_fails(&out, 125, "volume v1: already exists");
    assert_fails(
        &sb.cmd(&["volume", "create", "--opt", "type=nfs", "v3"])
            .output()
            .unwrap(),
        125,
        "only tmpfs",
    );
    assert_eq!(sb.containr_ok(&["volume", "ls", "-q"]), "v1\nv2\n");
    assert_eq!(
        sb.containr_ok(&["volume", "ls", "-q", "--filter", "label=team=lab"]),
        "v1\n"
    );
    assert_eq!(
        sb.containr_ok(&["volume", "ls", "-q", "-f", "name=2"]),
        "v2\n"
    );
    let v: serde_json::Value =
        serde_json::from_str(&sb.containr_ok(&["volume", "inspect", "v1"])).unwrap();
    assert_eq!(v[0]["Labels"]["team"], "lab");
    assert_eq!(
        v[0]["Mountpoint"],
        sb.data.join("volumes/v1/_data").to_str().unwrap()
    );
    // A tmpfs volume is a tmpfs in the container.
    let out = sb.ok(&["-v", "v2:/t", "cat", "/proc/self/mountinfo"]);
    let line = mount_line(&out, "/t");
    assert!(
        line.contains("tmpfs") && line.contains("size=1024k"),
        "{line}"
    );
}

#[test]
fn destinations_cannot_leave_the_root() {
    let sb = Sandbox::new();
    let host = sb.dir.path().join("payload");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("marker"), "payload\n").unwrap();
    symlink("/", sb.rootfs.join("to-root")).unwrap();
    symlink("../../../../..", sb.rootfs.join("to-dotdot")).unwrap();
    let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for dest in ["/to-root/escaped", "/to-dotdot/escaped"] {
        let spec = format!("{}:{dest}", host.display());
        // Inside the root the symlink leads to the root's own /escaped.
        assert_eq!(sb.ok(&["-v", &spec, "cat", "/escaped/marker"]), "payload\n");
        assert!(
            !Path::new("/escaped").exists(),
            "{dest} reached the host's /"
        );
    }
    // Nothing new on the host's mount table (the test's own runs aside).
    let after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let here = sb.dir.path().to_str().unwrap();
    assert!(
        !after
            .lines()
            .any(|l| l.contains(here) && !before.contains(l))
    );
    // Through a symlink to /proc: into the container's own procfs, where
    // nothing can be made: an error, not a mount on the host's /proc.
    symlink("/proc", sb.rootfs.join("to-proc")).unwrap();
    let spec = format!("{}:/to-proc/escaped", host.display());
    let out = sb.run(&["-v", &spec, "true"]);
    assert_fails(&out, 125, "/to-proc/escaped");
    assert!(!Path::new("/proc/escaped").exists());
}

#[test]
fn read_only_proc_paths_stay_read_only_under_a_mount() {
    let sb = Sandbox::new();
    // A tmpfs placed under /proc/sys is made read-only with it.
    let out = sb.run(&[
        "--tmpfs",
        "/proc/sys/kernel/random",
        "sh",
        "-c",
        "touch /proc/sys/kernel/random/x",
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ulimits_sysctls_shm_size_and_oom_score_adj_are_seen_inside() {
    let sb = Sandbox::new();
    let host_shmmax = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let out = sb.ok(&[
        "--network",
        "none",
        "--ulimit",
        "nofile=512:1024",
        "--sysctl",
        "kernel.shmmax=123456",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--shm-size",
        "8m",
        "--oom-score-adj",
        "500",
        "sh",
        "-c",
        "grep 'open files' /proc/self/limits; cat /proc/sys/kernel/shmmax \
         /proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj /proc/self/mountinfo",
    ]);
    let mut lines = out.lines();
    let limits: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&limits[3..5], ["512", "1024"], "{limits:?}");
    assert_eq!(lines.next(), Some("123456"));
    assert_eq!(lines.next(), Some("1"));
    assert_eq!(lines.next(), Some("500"));
    assert!(mount_line(&out, "/dev/shm").contains("size=8192k"), "{out}");
    // The host's own values did not move.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        host_shmmax
    );
}

#[test]
fn resource_refusals_are_one_line_errors_with_125() {
    let sb = Sandbox::new();
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open").unwrap();
    let above = format!("nofile={}", nr_open.trim().parse::<u64>().unwrap() + 1);
    for (args, needle) in [
        (vec!["--sysctl", "kernel.panic=1"], "not namespaced"),
        (vec!["--sysctl", "vm.swappiness=1"], "not namespaced"),
        (
            vec!["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"],
            "not allowed with --network host",
        ),
        (vec!["--ulimit", above.as_str()], "fs.nr_open"),
        (vec!["--ulimit", "nofile=10:5"], "above the hard limit"),
        (vec!["--ulimit", "files=1"], "unknown limit"),
        (vec!["--shm-size", "0"], "--shm-size"),
        (vec!["--oom-score-adj", "2000"], "between -1000 and 1000"),
    ] {
        let mut full = args.clone();
        full.push("true");
        assert_fails(&sb.run(&full), 125, needle);
    }
}

#[test]
fn labels_and_cidfile() {
    let sb = Sandbox::new();
    let file = sb.dir.path().join("labels");
    std::fs::write(&file, "# team labels\nteam=lab\ntier=db\n").unwrap();
    let cid = sb.dir.path().join("cid");
    let out = run_kept(
        &sb,
        &[
            "--name",
            "labelled",
            "--label-file",
            file.to_str().unwrap(),
            "-l",
            "tier=web",
            "--cidfile",
            cid.to_str().unwrap(),
            "true",
        ],
    );
    assert!(out.status.success());
    let id = std::fs::read_to_string(&cid).unwrap();
    assert_eq!(id.len(), 64);
    let v: serde_json::Value =
        serde_json::from_str(&sb.containr_ok(&["inspect", "labelled"])).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(v[0]["Config"]["Labels"]["team"], "lab");
    assert_eq!(v[0]["Config"]["Labels"]["tier"], "web", "--label wins");
    let ps = |f: &str| sb.containr_ok(&["ps", "-a", "-q", "--filter", f]);
    assert_eq!(ps("label=team=lab"), format!("{}\n", &id[..12]));
    assert_eq!(ps("label=team"), format!("{}\n", &id[..12]));
    assert_eq!(ps("label=team=other"), "");
    // An existing cidfile is refused, as docker.
    let out = sb.run(&["--cidfile", cid.to_str().unwrap(), "true"]);
    assert_fails(&out, 125, "Container ID file found");
    sb.containr_ok(&["rm", "labelled"]);
}

#[test]
fn devices_are_made_and_allowed() {
    let sb = Sandbox::new();
    // /dev/loop-control (10:237) is outside docker's default set: made by
    // --device and opened; without it the device rules refuse the open.
    let open = "mknod /dev/lc c 10 237 2>/dev/null; : < /dev/lc && echo opened";
    let out = sb.run(&["sh", "-c", open]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
        "{out:?}"
    );
    let out = sb.ok(&[
        "--device",
        "/dev/loop-control:/dev/lc",
        "sh",
        "-c",
        "stat -c '%F %t:%T %a' /dev/lc; : < /dev/lc && echo opened",
    ]);
    assert_eq!(out, "character special file a:ed 600\nopened\n");
    assert_eq!(
        sb.ok(&["--device-cgroup-rule", "c 10:237 rw", "sh", "-c", open]),
        "opened\n"
    );
    assert_fails(
        &sb.run(&["--device", "/etc/passwd", "true"]),
        125,
        "not a device node",
    );
    assert_fails(
        &sb.run(&["--device-cgroup-rule", "c 10 rw", "true"]),
        125,
        "expected",
    );
}

/// The parents `--cgroup-parent` made in each hierarchy (docker leaves
/// them): removed when the test ends, however it ends.
struct CgroupParents(Vec<std::path::PathBuf>);

impl Drop for CgroupParents {
    fn drop(&mut self) {
        // Deepest first: a level goes once its children have.
        self.0
            .sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for dir in &self.0 {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn cgroup_parent_places_the_cgroup_under_it() {
    let sb = Sandbox::new();
    let rootfs = sb.rootfs.to_str().unwrap();
    let top = format!("containr-test-parent-{}", std::process::id());
    let mut made = CgroupParents(Vec::new());
    for (flag, name) in [
        (format!("/{top}/sub"), "abs"),
        (format!("{top}-rel"), "rel"),
    ] {
        let mut child = sb
            .cmd(&[
                "run",
                "--rm",
                "--rootfs",
                rootfs,
                "--name",
                name,
                "--cgroup-parent",
                &flag,
                "--memory",
                "32m",
                "sleep",
                "2",
            ])
            .spawn()
            .unwrap();
        let dirs = common::cgroup_dirs(&sb, name);
        for (controllers, dir) in &dirs {
            let parent = dir.parent().unwrap();
            made.0.push(parent.to_path_buf());
            if flag.starts_with('/') {
                made.0.push(parent.parent().unwrap().to_path_buf());
                assert!(
                    parent.ends_with(format!("{top}/sub")),
                    "{controllers}: {}",
                    dir.display()
                );
                // Absolute: from the hierarchy's root, not containr's own.
                let root = parent.parent().unwrap().parent().unwrap();
                assert!(
                    root.join("cgroup.procs").exists() && !root.ends_with("containr"),
                    "{}",
                    dir.display()
                );
            } else {
                assert!(parent.ends_with(&flag), "{controllers}: {}", dir.display());
            }
            assert!(dir.join("cgroup.procs").exists(), "{}", dir.display());
        }
        // The container is in it, with its limit.
        let limit = dirs
            .iter()
            .find_map(|(c, d)| {
                let file = match c.as_str() {
                    "v2" => d.join("memory.max"),
                    c if c.split(',').any(|c| c == "memory") => d.join("memory.limit_in_bytes"),
                    _ => return None,
                };
                std::fs::read_to_string(file).ok()
            })
            .expect("a memory cgroup");
        assert_eq!(limit.trim(), "33554432");
        assert!(child.wait().unwrap().success());
        // Its own cgroup goes with it; the parents stay, as docker's.
        for (_, dir) in &dirs {
            assert!(!dir.exists(), "{} left", dir.display());
            assert!(dir.parent().unwrap().exists());
        }
    }
    // Recorded: a container made again (`create` then `start`, a restart)
    // goes under it again.
    let flag = format!("/{top}/again");
    sb.containr_ok(&[
        "create",
        "--rootfs",
        rootfs,
        "--name",
        "again",
        "--cgroup-parent",
        &flag,
        "sleep",
        "30",
    ]);
    sb.containr_ok(&["start", "again"]);
    let dirs = common::cgroup_dirs(&sb, "again");
    assert!(!dirs.is_empty());
    for (controllers, dir) in &dirs {
        made.0.push(dir.parent().unwrap().to_path_buf());
        assert!(
            dir.parent().unwrap().ends_with(format!("{top}/again")),
            "{controllers}: {}",
            dir.display()
        );
    }
    sb.containr_ok(&["rm", "-f", "again"]);
    // `..` could lead out of the hierarchy: refused before anything is made.
    for bad in ["../x", "/a/../../x", "a/../../.."] {
        assert_fails(
            &sb.run(&["--cgroup-parent", bad, "true"]),
            125,
            "invalid --cgroup-parent",
        );
    }
}

#[test]
fn mounts_under_dev_land_on_the_containers_dev() {
    let sb = Sandbox::new();
    let host = sb.dir.path().join("devdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "from the host\n").unwrap();
    let bind = format!("{}:/dev/x:ro", host.display());
    // A bind, a tmpfs and a named volume under /dev, one under /dev/shm:
    // all on top of the container's own /dev (its tmpfs, devices, shm),
    // none hidden by it.
    let out = sb.ok(&[
        "-v",
        &bind,
        "--tmpfs",
        "/dev/foo:size=1m",
        "-v",
        "devvol:/dev/shm/vol",
        "sh",
        "-c",
        "cat /dev/x/f; touch /dev/x/new 2>/dev/null || echo x is read-only; \
         touch /dev/foo/ok /dev/shm/vol/kept && echo written; \
         cat /proc/self/mountinfo; : > /dev/null && echo null works",
    ]);
    let (lines, mountinfo) = out.split_at(out.find("written\n").unwrap() + 8);
    assert_eq!(lines, "from the host\nx is read-only\nwritten\n", "{out}");
    assert!(out.ends_with("null works\n"), "{out}");
    // Each is mounted on the container's own /dev (or /dev/shm): that
    // mount is its parent.
    let ids = |target: &str| {
        let line = mount_line(mountinfo, target);
        let mut f = line.split(' ');
        let id = f.next().unwrap().to_string();
        let parent = f.next().unwrap().to_string();
        (id, parent, line.to_string())
    };
    for (target, on) in [
        ("/dev/x", "/dev"),
        ("/dev/foo", "/dev"),
        ("/dev/shm/vol", "/dev/shm"),
    ] {
        let (_, parent, line) = ids(target);
        assert_eq!(parent, ids(on).0, "{target} is not on {on}: {line}");
    }
    let id_of = |target: &str| ids(target).2;
    assert!(id_of("/dev/foo").contains(" - tmpfs "), "{mountinfo}");
    assert!(
        sb.data.join("volumes/devvol/_data/kept").exists(),
        "the volume's write is in the store"
    );
    sb.containr_ok(&["volume", "rm", "devvol"]);
}

/// Whether something is mounted at `path` on the host.
fn host_mounted(path: &Path) -> bool {
    let want = path.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want))
}

#[test]
fn a_tmpfs_volume_is_shared_while_used_and_unmounted_after() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let sb = Sandbox::new();
    sb.containr_ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=2m",
        "shared",
    ]);
    let data = sb.data.join("volumes/shared/_data");
    let rootfs = sb.rootfs.to_str().unwrap();
    // The first user writes, says so, and waits for the host's word.
    let mut first = sb
        .cmd(&[
            "run",
            "--rm",
            "--rootfs",
            rootfs,
            "-v",
            "shared:/t",
            "sh",
            "-c",
            "echo one > /t/one; echo ready; i=0; \
             while [ ! -e /t/done ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; cat /t/two",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(first.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    // Mounted once, on the host, at the volume's _data, while used.
    assert!(host_mounted(&data), "no tmpfs at {}", data.display());
    let second = sb.ok(&[
        "-v",
        "shared:/t",
        "sh",
        "-c",
        "cat /t/one; echo two > /t/two; grep ' /t ' /proc/self/mountinfo | cut -d' ' -f9-",
    ]);
    assert!(second.starts_with("one\ntmpfs "), "{second}");
    assert!(second.contains("size=2048k"), "{second}");
    // The second's exit leaves it to the first, which sees the write
    // (and ends once the host has looked: done, written through the
    // host's view of the same tmpfs).
    assert!(
        host_mounted(&data),
        "unmounted while the first still uses it"
    );
    std::fs::write(data.join("done"), "").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(first.wait().unwrap().success());
    assert_eq!(rest, "two\n");
    // The last user gone, so is the mount, and its content with it.
    assert!(!host_mounted(&data), "the tmpfs outlived its last user");
    assert_eq!(sb.entries("volumes/shared/_data"), Vec::<String>::new());

    // A container made again (create, then start) mounts it again: not
    // the plain directory under it.
    sb.containr_ok(&[
        "create",
        "--name",
        "later",
        "--rootfs",
        rootfs,
        "-v",
        "shared:/t",
        "sh",
        "-c",
        "grep ' /t ' /proc/self/mountinfo | cut -d' ' -f9",
    ]);
    assert_eq!(sb.containr_ok(&["start", "-a", "later"]), "tmpfs\n");
    sb.containr_ok(&["rm", "later"]);
    assert!(!host_mounted(&data), "the tmpfs outlived its last user");

    // A killed run leaves the mount; the next command reclaims it.
    let mut victim = sb
        .cmd(&[
            "run",
            "--rm",
            "--rootfs",
            rootfs,
            "-v",
            "shared:/t",
            "sh",
            "-c",
            "echo stale > /t/stale; echo ready; sleep 30",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(victim.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    victim.kill().unwrap();
    victim.wait().unwrap();
    assert!(host_mounted(&data));
    // A new user gets a fresh tmpfs, not the killed run's.
    assert_eq!(sb.ok(&["-v", "shared:/t", "ls", "/t"]), "");
    assert!(!host_mounted(&data));
    // So does ps, alone.
    let mut victim = sb
        .cmd(&[
            "run",
            "--rm",
            "--rootfs",
            rootfs,
            "-v",
            "shared:/t",
            "sh",
            "-c",
            "echo ready; sleep 30",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(victim.stdout.take().unwrap());
    out.read_line(&mut String::new()).unwrap();
    victim.kill().unwrap();
    victim.wait().unwrap();
    assert!(host_mounted(&data));
    sb.containr_ok(&["ps", "-a"]);
    assert!(!host_mounted(&data), "ps left a mount nobody uses");
    // --volumes-from an exited user: mounted again for the new one.
    let kept = run_kept(&sb, &["--name", "keeper", "-v", "shared:/t", "true"]);
    assert!(kept.status.success());
    let seen = sb.ok(&[
        "--volumes-from",
        "keeper",
        "sh",
        "-c",
        "grep ' /t ' /proc/self/mountinfo | cut -d' ' -f9",
    ]);
    assert_eq!(seen, "tmpfs\n");
    assert!(!host_mounted(&data));
    sb.containr_ok(&["rm", "keeper"]);
    sb.containr_ok(&["volume", "rm", "shared"]);
}

#[test]
fn userns_remap_sees_volumes_and_binds_through_idmapped_mounts() {
    let sb = Sandbox::new();
    let host = sb.dir.path().join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("by-root"), "r\n").unwrap();
    std::fs::write(host.join("by-1234"), "u\n").unwrap();
    std::os::unix::fs::chown(host.join("by-1234"), Some(1234), Some(1234)).unwrap();
    let before = std::fs::metadata(&host).unwrap();
    let bind = format!("{}:/b", host.display());
    let bind_ro = format!("{}:/ro:ro", host.display());
    // Container root (host uid 100000) writes to a volume and a bind, and
    // reads the host's owners as they are on disk.
    let out = sb.ok(&[
        "--userns-remap",
        "-v",
        "remapped:/data",
        "-v",
        &bind,
        "-v",
        &bind_ro,
        "sh",
        "-c",
        "head -n1 /proc/self/uid_map | tr -s ' '; touch /data/new /b/new && echo written; \
         stat -c '%n %u' /b/by-root /b/by-1234 /data/new; touch /ro/x 2>/dev/null || echo ro refused",
    ]);
    assert_eq!(
        out,
        " 0 100000 65536\nwritten\n/b/by-root 0\n/b/by-1234 1234\n/data/new 0\nro refused\n"
    );
    // On the host: what container root made belongs to the host's root
    // (idmapped, unlike docker's remapped volumes, owned by 100000), and
    // nothing was chowned.
    for made in [host.join("new"), sb.data.join("volumes/remapped/_data/new")] {
        let m = std::fs::metadata(&made).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0), "{}", made.display());
    }
    let after = std::fs::metadata(&host).unwrap();
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_eq!(std::fs::metadata(host.join("by-1234")).unwrap().uid(), 1234);
    sb.containr_ok(&["volume", "rm", "remapped"]);
}

/// CVE-2021-30465 through the front end: a container keeps swapping a
/// directory of a shared volume with a symlink to `/` while other
/// containers start with mounts under it. Each mount must land inside the
/// starting container's root (in the volume, or at /NAME when the symlink
/// won), never on the host. Bounded: 8 runs of 25 mounts, and the swapper
/// stops with them (or after 100000 swaps).
#[test]
fn a_volume_swapped_to_a_symlink_cannot_send_mounts_out() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let sb = Sandbox::new();
    let rootfs = sb.rootfs.to_str().unwrap();
    sb.containr_ok(&["volume", "create", "racevol"]);
    let data = sb.data.join("volumes/racevol/_data");
    std::fs::create_dir(data.join("sub")).unwrap();
    let host_mounts = || std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let before = host_mounts();
    let tag = format!("containr-frontrace-{}", std::process::id());
    let mut swapper = sb
        .cmd(&[
            "run",
            "--rm",
            "--init",
            "--rootfs",
            rootfs,
            "-v",
            "racevol:/x",
            "sh",
            "-c",
            "echo ready; i=0; while [ $i -lt 100000 ] && [ ! -e /x/stop ]; do \
               mv /x/sub /x/sub.d; ln -s / /x/sub; rm /x/sub; mv /x/sub.d /x/sub; i=$((i+1)); \
             done 2>/dev/null; echo swaps $i",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(swapper.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let bind = sb.dir.path().join("bindsrc");
    std::fs::create_dir(&bind).unwrap();
    let (mut landed, mut at_top) = (0, 0);
    for round in 0..8 {
        let mut args = vec!["-v".to_string(), "racevol:/x".to_string()];
        for i in 0..25 {
            args.push("--tmpfs".into());
            args.push(format!("/x/sub/{tag}-{round}-{i}:size=4k"));
        }
        args.push("-v".into());
        args.push(format!("{}:/x/sub/{tag}-{round}-bind", bind.display()));
        args.extend(["cat".into(), "/proc/self/mountinfo".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = sb.run(&args);
        let (o, e) = (
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr),
        );
        if !run.status.success() {
            eprintln!("round {round}: {e}");
            // Allowed only as a clean refusal naming a mount.
            assert_eq!(run.status.code(), Some(125), "{e}");
            assert!(e.contains(&format!("/x/sub/{tag}")), "{e}");
            continue;
        }
        for l in o.lines().filter(|l| l.contains(&tag)) {
            let point = l.split(' ').nth(4).unwrap();
            let name = point.rsplit('/').next().unwrap();
            // In the volume (where a rename of `sub` may have carried it
            // since), or at the root's top when the symlink won.
            assert!(
                (point.starts_with("/x/") && point.ends_with(&format!("/{name}")))
                    || point == format!("/{name}"),
                "a mount outside its place: {l}"
            );
            landed += 1;
            at_top += usize::from(point == format!("/{name}"));
        }
    }
    std::fs::write(data.join("stop"), "").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(swapper.wait().unwrap().success());
    let swaps: u64 = rest.trim().strip_prefix("swaps ").unwrap().parse().unwrap();
    assert!(swaps > 0, "{rest}");
    assert!(landed > 0, "no run placed its mounts");
    eprintln!("{landed} mounts placed, {at_top} through the symlink; {swaps} swaps");
    // Nothing on the host: no mount point made, no mount left.
    for round in 0..8 {
        for i in 0..25 {
            assert!(
                !Path::new(&format!("/{tag}-{round}-{i}")).exists(),
                "/{tag}-{round}-{i} was made on the host"
            );
        }
    }
    let after = host_mounts();
    assert!(!after.contains(&tag), "a mount on the host: {after}");
    assert_eq!(
        before.lines().count(),
        after.lines().count(),
        "the host's mount table changed"
    );
    sb.containr_ok(&["volume", "rm", "racevol"]);
}

//! `rootfs::oci::{prepare, finish}` on a real kernel: each test re-runs
//! this test binary's ignored `container` entry under `unshare` (new mount,
//! PID and IPC namespaces; a user namespace for the userns case), where it
//! builds a busybox rootfs from an OCI `mounts` list, pivots into it and
//! execs a shell script whose output the test checks. Before the pivot it
//! prints every mount point of its namespace, so the test can check that
//! no mount landed outside the rootfs.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::Sandbox;
use serde_json::{Value, json};

const ENV: &str = "CONTAINR_TEST_OCI_ROOTFS";

/// What a test asks of the container: the Plan's fields as JSON, and a
/// script to run inside after `finish`.
fn run(rootfs: &Path, scenario: Value, unshare: &[&str]) -> Output {
    let mut s = scenario;
    s["rootfs"] = json!(rootfs);
    Command::new("unshare")
        .args(unshare)
        .args(["--mount", "--pid", "--ipc", "--fork", "--kill-child"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "container",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV, s.to_string())
        .output()
        .expect("run unshare")
}

/// Mount points the container's namespace had after `prepare` (`MOUNT`)
/// or before it (`BEFORE`).
fn points(out: &str, tag: &str) -> Vec<String> {
    let tag = format!("{tag} ");
    out.lines()
        .filter_map(|l| l.split_once(tag.as_str()).map(|(_, p)| p))
        .map(str::to_string)
        .collect()
}

fn mount_points(out: &str) -> Vec<String> {
    points(out, "MOUNT")
}

/// Every mount `prepare` made is under the rootfs.
fn assert_confined(out: &str, rootfs: &Path) {
    let before = points(out, "BEFORE");
    let after = mount_points(out);
    assert!(
        !before.is_empty() && !after.is_empty(),
        "no mount list printed: {out}"
    );
    for p in after.iter().filter(|p| !before.contains(p)) {
        assert!(
            Path::new(p).starts_with(rootfs),
            "a mount outside the rootfs: {p}\n{out}"
        );
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(rootfs: &Path, scenario: Value, unshare: &[&str]) -> String {
    let out = run(rootfs, scenario, unshare);
    let (o, e) = text(&out);
    assert!(out.status.success(), "container failed: {o}\n{e}");
    assert!(o.contains("SCRIPT-DONE"), "script did not finish: {o}\n{e}");
    assert_confined(&o, rootfs);
    o
}

/// The default mounts of `runc spec`.
fn runc_mounts() -> Value {
    json!([
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
    ])
}

fn with_mounts(extra: Value) -> Value {
    let mut m = runc_mounts();
    m.as_array_mut()
        .unwrap()
        .extend(extra.as_array().unwrap().clone());
    m
}

/// The fields of a mountinfo line for `point`, as the container saw them.
fn mountinfo<'a>(out: &'a str, point: &str) -> Option<&'a str> {
    out.lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(point))
}

#[test]
fn runc_default_spec_builds_the_filesystem() {
    let sb = Sandbox::new();
    let data = sb.dir.path().join("data-src");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("hello"), "from the host\n").unwrap();
    let out = ok(
        &sb.rootfs,
        json!({
            "readonly": true,
            "mounts": with_mounts(json!([
                {"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro", "nosuid"]},
                {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1777", "noexec"]}
            ])),
            "devices": [{"path": "/dev/mine", "type": "c", "major": 1, "minor": 3,
                          "fileMode": 0o600, "uid": 1000, "gid": 1001}],
            "masked_paths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware", "/proc/nonexistent"],
            "readonly_paths": ["/proc/sys", "/proc/sysrq-trigger"],
            "sysctl": {"kernel.shmmax": "12345678"},
            "script": "cat /proc/self/mountinfo; \
                       echo DATA $(cat /data/hello); \
                       touch /data/x 2>/dev/null && echo DATA-WRITABLE; \
                       touch /rootfile 2>/dev/null && echo ROOT-WRITABLE; \
                       touch /scratch/x && echo SCRATCH-WRITABLE; \
                       echo SHMMAX $(cat /proc/sys/kernel/shmmax); \
                       echo 1 > /proc/sys/kernel/shmmax 2>/dev/null && echo SYSCTL-WRITABLE; \
                       echo KEYS $(wc -c < /proc/keys); \
                       echo FIRMWARE $(ls /sys/firmware | wc -l); \
                       echo MINE $(stat -c '%F %t:%T %a %u:%g' /dev/mine); \
                       echo NULL $(stat -c '%t:%T %a' /dev/null); \
                       for l in ptmx fd stdin stdout stderr; do echo LINK $l $(readlink /dev/$l); done; \
                       echo CGROUP $(ls /sys/fs/cgroup | sort | tr '\\n' ' '); \
                       echo SCRIPT-DONE"
        }),
        &[],
    );
    assert!(out.contains("DATA from the host"), "{out}");
    assert!(!out.contains("DATA-WRITABLE"), "ro bind writable: {out}");
    assert!(
        !out.contains("ROOT-WRITABLE"),
        "readonly root writable: {out}"
    );
    assert!(out.contains("SCRATCH-WRITABLE"), "{out}");
    assert!(out.contains("SHMMAX 12345678"), "sysctl not written: {out}");
    assert!(
        !out.contains("SYSCTL-WRITABLE"),
        "/proc/sys writable: {out}"
    );
    assert!(out.contains("KEYS 0"), "/proc/keys not masked: {out}");
    assert!(mountinfo(&out, "/proc/timer_list").is_some(), "{out}");
    assert!(
        out.contains("FIRMWARE 0"),
        "/sys/firmware not masked: {out}"
    );
    assert!(
        out.contains("MINE character special file 1:3 600 1000:1001"),
        "{out}"
    );
    assert!(out.contains("NULL 1:3 666"), "{out}");
    assert!(out.contains("LINK ptmx pts/ptmx"), "{out}");
    assert!(out.contains("LINK fd /proc/self/fd"), "{out}");
    assert!(out.contains("LINK stderr /proc/self/fd/2"), "{out}");
    let cgroup = out.lines().find(|l| l.starts_with("CGROUP ")).unwrap();
    assert!(
        cgroup.contains("memory"),
        "no v1 memory hierarchy: {cgroup}"
    );

    let data = mountinfo(&out, "/data").expect("/data mounted");
    assert!(data.contains(" ro,nosuid"), "{data}");
    let scratch = mountinfo(&out, "/scratch").expect("/scratch mounted");
    assert!(
        scratch.contains("noexec") && scratch.contains("size=1024k"),
        "{scratch}"
    );
    let pts = mountinfo(&out, "/dev/pts").expect("/dev/pts");
    assert!(pts.contains("ptmxmode=666"), "{pts}");
    let root = mountinfo(&out, "/").expect("/");
    assert!(root.split(' ').nth(5).unwrap().starts_with("ro"), "{root}");
    assert!(mountinfo(&out, "/proc/sys").unwrap().contains(" ro,"));
    assert!(mountinfo(&out, "/sys").unwrap().contains(" ro,"));
}

#[test]
fn recursive_read_only_and_propagation() {
    let sb = Sandbox::new();
    let src = sb.dir.path().join("tree");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    // A mount below the source, on the host side of nothing: made inside
    // the container's namespace by an earlier entry, then rbound.
    let out = ok(
        &sb.rootfs,
        json!({
            "mounts": with_mounts(json!([
                {"destination": "/t1", "type": "bind", "source": src, "options": ["rbind"]},
                {"destination": "/t1/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
                {"destination": "/t2", "type": "bind", "source": sb.rootfs.join("t1"),
                 "options": ["rbind", "rro", "rprivate"]},
                {"destination": "/t3", "type": "bind", "source": src, "options": ["bind", "shared", "noexec", "noatime"]},
                {"destination": "/t4", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
                {"destination": "/t4/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}
            ])),
            "readonly_paths": ["/t4"],
            "script": "cat /proc/self/mountinfo; \
                       touch /t4/sub/x 2>/dev/null && echo T4-SUB-WRITABLE; \
                       touch /t2/sub/x 2>/dev/null && echo T2-SUB-WRITABLE; \
                       touch /t1/sub/x && echo T1-WRITABLE; echo SCRIPT-DONE"
        }),
        &[],
    );
    assert!(
        !out.contains("T2-SUB-WRITABLE"),
        "rro did not reach the submount: {out}"
    );
    assert!(
        !out.contains("T4-SUB-WRITABLE"),
        "a mount under a readonlyPath stayed writable: {out}"
    );
    assert!(out.contains("T1-WRITABLE"), "{out}");
    let sub = mountinfo(&out, "/t2/sub").expect("/t2/sub came with rbind");
    assert!(sub.contains(" ro,"), "{sub}");
    let t3 = mountinfo(&out, "/t3").expect("/t3");
    assert!(t3.contains("noexec") && t3.contains("noatime"), "{t3}");
    assert!(t3.contains("shared:"), "{t3}");
    let t2 = mountinfo(&out, "/t2").unwrap();
    assert!(!t2.contains("shared:") && !t2.contains("master:"), "{t2}");
}

/// Symlinks in the rootfs pointing at `/`, `..` and `/proc`: each mount
/// must land inside the rootfs, and nothing appear on the host.
#[test]
fn destinations_under_symlinks_stay_in_the_root() {
    let sb = Sandbox::new();
    let r = &sb.rootfs;
    symlink("/", r.join("to-root")).unwrap();
    symlink("../../../../../../..", r.join("to-dotdot")).unwrap();
    symlink("/proc", r.join("to-proc")).unwrap();
    symlink("/", r.join("etc/to-root-rel")).unwrap();
    let tag = format!("containr-escape-{}", std::process::id());
    let out = ok(
        r,
        json!({
            "mounts": [
                {"destination": format!("/to-root/{tag}-a"), "type": "tmpfs", "source": "tmpfs"},
                {"destination": format!("/to-dotdot/{tag}-b"), "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/to-proc", "type": "tmpfs", "source": "tmpfs"},
                {"destination": format!("/etc/to-root-rel/../../{tag}-c"), "type": "bind",
                 "source": "/etc/passwd", "options": ["bind", "ro"]},
                {"destination": "/proc", "type": "proc", "source": "proc"}
            ],
            "script": "cat /proc/self/mountinfo; echo SCRIPT-DONE"
        }),
        &[],
    );
    for s in ["a", "b", "c"] {
        let name = format!("{tag}-{s}");
        assert!(
            !Path::new("/").join(&name).exists(),
            "/{name} was made on the host"
        );
        assert!(r.join(&name).exists(), "{name} not made in the rootfs");
        assert!(
            mountinfo(&out, &format!("/{name}")).is_some(),
            "/{name} not mounted inside: {out}"
        );
    }
    // The host's /proc got no tmpfs: the container's /proc did (under
    // its proc, mounted later).
    let on_proc = mount_points(&out)
        .iter()
        .filter(|p| Path::new(p) == r.join("proc"))
        .count();
    assert_eq!(
        on_proc, 2,
        "the tmpfs and proc on the rootfs's /proc: {out}"
    );
}

/// CVE-2021-30465: while the container's mounts are made, the host swaps
/// a directory of the rootfs with a symlink to `/` (renameat2
/// RENAME_EXCHANGE, so the name always exists). Every mount must still
/// land in the rootfs. Bounded: 200 mounts, the swapper stops with them.
#[test]
fn symlink_swap_race_stays_in_the_root() {
    let sb = Sandbox::new();
    let r = sb.rootfs.clone();
    std::fs::create_dir(r.join("race")).unwrap();
    symlink("/", r.join("race-link")).unwrap();
    let tag = format!("containr-race-{}", std::process::id());
    let mounts: Vec<Value> = (0..200)
        .map(|i| {
            json!({"destination": format!("/race/{tag}-{i}"), "type": "tmpfs", "source": "tmpfs",
                         "options": ["size=4k"]})
        })
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let (a, b) = (r.join("race"), r.join("race-link"));
        std::thread::spawn(move || {
            let (a, b) = (
                std::ffi::CString::new(a.to_str().unwrap()).unwrap(),
                std::ffi::CString::new(b.to_str().unwrap()).unwrap(),
            );
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && swaps < 5_000_000 {
                // SAFETY: two NUL-terminated paths that outlive the call.
                let rc = unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                assert_eq!(rc, 0, "renameat2: {}", std::io::Error::last_os_error());
                swaps += 1;
            }
            swaps
        })
    };
    let out = run(
        &r,
        json!({"mounts": mounts, "script": "echo SCRIPT-DONE"}),
        &[],
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    let (o, e) = text(&out);
    assert!(swaps > 0);
    assert_confined(&o, &r);
    for i in 0..200 {
        assert!(
            !Path::new(&format!("/{tag}-{i}")).exists(),
            "/{tag}-{i} was made on the host"
        );
    }
    // The swap can leave "race" a symlink to "/" (inside the root) at any
    // moment, so each mount is at /race/NAME or /NAME of the rootfs; a
    // failure is allowed only as a clean error naming a mount.
    if !out.status.success() {
        assert!(e.contains("ERROR mount /race/"), "{o}\n{e}");
    } else {
        assert_eq!(
            mount_points(&o).iter().filter(|p| p.contains(&tag)).count(),
            200,
            "{o}"
        );
    }
}

#[test]
fn bad_mounts_are_refused_naming_them() {
    let sb = Sandbox::new();
    let cases: [(Value, &str); 5] = [
        (
            json!({"destination": "/x", "type": "bind", "source": "/etc", "options": ["rbind", "frobnicate"]}),
            "mount /x: unknown or unsupported option \"frobnicate\"",
        ),
        (
            json!({"destination": "/x", "type": "bind", "source": "/nonexistent-containr-src"}),
            "mount /x: /nonexistent-containr-src",
        ),
        (
            json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
            "mount /x: unknown or unsupported option \"idmap\"",
        ),
        (
            json!({"destination": "/x", "type": "nosuchfs", "source": "x"}),
            "mount /x: mounting nosuchfs",
        ),
        (
            json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["size=lots"]}),
            "mount /x: mounting tmpfs with size=lots",
        ),
    ];
    for (m, needle) in cases {
        let out = run(
            &sb.rootfs,
            json!({"mounts": [m], "script": "echo SCRIPT-DONE"}),
            &[],
        );
        let (o, e) = text(&out);
        assert!(!out.status.success(), "accepted {m}: {o}");
        assert!(e.contains(needle), "{m}: expected {needle:?} in {e}");
        assert!(!o.contains("SCRIPT-DONE"));
    }
    let out = run(
        &sb.rootfs,
        json!({"mounts": [], "sysctl": {"kernel.panic": "1"}, "script": "echo SCRIPT-DONE"}),
        &[],
    );
    let (_, e) = text(&out);
    assert!(e.contains("sysctl kernel.panic: not namespaced"), "{e}");
    let out = run(
        &sb.rootfs,
        json!({"mounts": [], "propagation": "sideways", "script": "echo SCRIPT-DONE"}),
        &[],
    );
    assert!(text(&out).1.contains("rootfsPropagation \"sideways\""));
}

#[test]
fn no_pivot_moves_and_chroots_with_a_cgroup_namespace() {
    let sb = Sandbox::new();
    let out = ok(
        &sb.rootfs,
        json!({"no_pivot": true, "mounts": runc_mounts(),
               "script": "cat /proc/self/mountinfo; ls /bin/busybox && echo SCRIPT-DONE"}),
        &["--cgroup"],
    );
    assert!(out.contains("/bin/busybox"), "{out}");
    // In a cgroup namespace of its own, each v1 hierarchy is a mount of
    // the hierarchy made there (read-only, as asked).
    let memory = mountinfo(&out, "/sys/fs/cgroup/memory").expect("v1 memory");
    assert!(
        memory.contains(" ro,") && memory.contains(" - cgroup cgroup rw,memory"),
        "{memory}"
    );
    assert!(mountinfo(&out, "/proc").is_some(), "{out}");
}

/// In a user namespace: devices are the host's nodes bound, and sysfs
/// (refused without a network namespace of its own) is the host's bound.
#[test]
fn user_namespace_binds_devices_and_sysfs() {
    let sb = Sandbox::new();
    let out = ok(
        &sb.rootfs,
        // runc's rootless spec: devpts without gid=5 (not mapped here), no
        // cgroup mount.
        json!({"in_userns": true, "mounts": [
                 {"destination": "/proc", "type": "proc", "source": "proc"},
                 {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                  "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                 {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                  "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
                 {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                  "options": ["nosuid", "noexec", "nodev"]},
                 {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                  "options": ["nosuid", "noexec", "nodev", "ro"]}],
               "script": "cat /proc/self/mountinfo; echo NULL $(stat -c '%t:%T' /dev/null); \
                          echo hi > /dev/null && echo NULL-WORKS; echo SCRIPT-DONE"}),
        &["--user", "--map-root-user"],
    );
    assert!(out.contains("NULL 1:3"), "{out}");
    assert!(out.contains("NULL-WORKS"), "{out}");
    assert!(
        mountinfo(&out, "/dev/null").is_some(),
        "/dev/null not a bind: {out}"
    );
    assert!(mountinfo(&out, "/sys").is_some(), "{out}");
}

/// `console`: the pty slave bound at /dev/console.
#[test]
fn console_is_the_pty_slave() {
    let sb = Sandbox::new();
    let out = ok(
        &sb.rootfs,
        json!({"console": true, "mounts": runc_mounts(),
               "script": "echo CONSOLE $(stat -c %t:%T /dev/console); echo SCRIPT-DONE"}),
        &[],
    );
    let host = out
        .lines()
        // The line may follow libtest's "test container ... ".
        .find_map(|l| l.split_once("HOST-PTY ").map(|(_, n)| n))
        .expect("the pty's numbers");
    assert!(out.contains(&format!("CONSOLE {host}")), "{out}");
}

/// `idmap` with the mount's own maps: a file the host owns as root reads as
/// owned by 1000 through the mount.
#[test]
fn idmapped_bind_mount() {
    let sb = Sandbox::new();
    let src = sb.dir.path().join("owned");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), "x").unwrap();
    let out = ok(
        &sb.rootfs,
        json!({"mounts": [
                 {"destination": "/proc", "type": "proc", "source": "proc"},
                 {"destination": "/idm", "type": "bind", "source": src, "options": ["bind", "idmap"],
                  "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                  "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 1}]}],
               "script": "echo OWNER $(stat -c %u:%g /idm/f); echo SCRIPT-DONE"}),
        &[],
    );
    assert!(out.contains("OWNER 1000:2000"), "{out}");
}

/// The entry the tests above run under `unshare`: not a test by itself.
#[test]
#[ignore = "run by the other tests of this file, inside new namespaces"]
fn container() {
    let Ok(s) = std::env::var(ENV) else {
        panic!("run by the other tests, with {ENV} set");
    };
    let s: Value = serde_json::from_str(&s).unwrap();
    let rootfs = PathBuf::from(s["rootfs"].as_str().unwrap());
    let mounts: Vec<oci_spec::runtime::Mount> =
        serde_json::from_value(s["mounts"].clone()).unwrap_or_default();
    let devices: Vec<oci_spec::runtime::LinuxDevice> =
        serde_json::from_value(s["devices"].clone()).unwrap_or_default();
    let strings =
        |k: &str| -> Vec<String> { serde_json::from_value(s[k].clone()).unwrap_or_default() };
    let (masked, readonly) = (strings("masked_paths"), strings("readonly_paths"));
    let sysctl: HashMap<String, String> =
        serde_json::from_value(s["sysctl"].clone()).unwrap_or_default();
    let mut plan = containr::rootfs::oci::Plan {
        rootfs: &rootfs,
        readonly: s["readonly"].as_bool().unwrap_or(false),
        mounts: &mounts,
        devices: &devices,
        masked_paths: &masked,
        readonly_paths: &readonly,
        rootfs_propagation: s["propagation"].as_str(),
        sysctl: &sysctl,
        no_pivot: s["no_pivot"].as_bool().unwrap_or(false),
        in_userns: s["in_userns"].as_bool().unwrap_or(false),
        console: None,
    };
    // A terminal of the host's devpts, as the runtime would hand over.
    let pty = s["console"]
        .as_bool()
        .unwrap_or(false)
        .then(|| nix::pty::openpty(None, None).unwrap());
    let console = pty
        .as_ref()
        .map(|p| nix::unistd::ttyname(std::os::fd::AsFd::as_fd(&p.slave)).unwrap());
    if let Some(c) = &console {
        let st = nix::sys::stat::stat(c).unwrap();
        let dev = st.st_rdev;
        println!("HOST-PTY {:x}:{:x}", libc::major(dev), libc::minor(dev));
    }
    plan.console = console.as_deref();
    let fail = |e: containr::rootfs::Error| -> ! {
        eprintln!("ERROR {e}");
        std::process::exit(3)
    };
    let mount_points = || -> Vec<String> {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .map(|l| l.split(' ').nth(4).unwrap().to_string())
            .collect()
    };
    for p in mount_points() {
        println!("BEFORE {p}");
    }
    let t0 = std::time::Instant::now();
    containr::rootfs::oci::prepare(&plan).unwrap_or_else(|e| fail(e));
    let prepared = t0.elapsed();
    for p in mount_points() {
        println!("MOUNT {p}");
    }
    let t1 = std::time::Instant::now();
    containr::rootfs::oci::finish(&plan).unwrap_or_else(|e| fail(e));
    // For a measurement by hand (see the report of this work).
    eprintln!(
        "TIMING prepare {} us, finish {} us",
        prepared.as_micros(),
        t1.elapsed().as_micros()
    );
    use std::os::unix::process::CommandExt;
    let e = Command::new("/bin/sh")
        .args(["-c", s["script"].as_str().unwrap()])
        .exec();
    panic!("exec /bin/sh: {e}");
}

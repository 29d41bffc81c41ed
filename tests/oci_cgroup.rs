//! The cgroup of an OCI container (`containr::cgroup::oci`), against the
//! real kernel: made from config.json's `linux.resources` and read back from
//! cgroupfs, with real processes placed in it, frozen, signalled and
//! removed. On this host's own hierarchy (v1 controllers on a hybrid host,
//! v2 on a pure one), and on a hybrid host also on the controller-less
//! cgroup2 mount at /sys/fs/cgroup/unified (CONTAINR_CGROUP_V2), where the
//! v2 device filter, freezer and core files are real.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use containr::cgroup::Location;
use containr::cgroup::oci::OciCgroup;
use oci_spec::runtime::LinuxResources;
use serde_json::json;

/// The tests change the environment (CONTAINR_CGROUP_V2) and the host's
/// cgroup tree: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("needs root; skipped");
    }
    root
}

fn resources(j: serde_json::Value) -> LinuxResources {
    serde_json::from_value(j).unwrap()
}

fn id(tag: &str) -> String {
    format!("t-{tag}-{}", std::process::id())
}

/// Whether this host's own hierarchy is v2.
fn host_v2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup").is_ok_and(|s| s.filesystem_type().0 == 0x6367_7270)
}

/// The cgroup directory holding `controller`'s files.
fn dir(cg: &OciCgroup, controller: &str) -> PathBuf {
    match cg.location() {
        Location::V2(d) => d.clone(),
        Location::V1(dirs) => dirs
            .iter()
            .find(|(c, _)| c.split(',').any(|n| n == controller))
            .unwrap_or_else(|| panic!("no {controller} hierarchy in {dirs:?}"))
            .1
            .clone(),
    }
}

fn dirs(cg: &OciCgroup) -> Vec<PathBuf> {
    match cg.location() {
        Location::V2(d) => vec![d.clone()],
        Location::V1(dirs) => dirs.iter().map(|(_, d)| d.clone()).collect(),
    }
}

/// rmdir the `n` levels above `dir` a test made (none in a v1 hierarchy
/// the cgroup never needed).
fn remove_parents(dir: &Path, n: usize) {
    for d in dir.ancestors().skip(1).take(n) {
        if d.exists() {
            std::fs::remove_dir(d).unwrap();
        }
    }
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// A shell that waits for a line on stdin before running `script`, so it
/// can be put in the cgroup first; its output lines are read back.
struct Gated {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Gated {
    fn new(script: &str) -> Gated {
        let mut child = Command::new("sh")
            .args(["-c", &format!("read go; {script}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Gated { child, out }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn go(&mut self) {
        self.child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"go\n")
            .unwrap();
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap();
        l.trim().to_string()
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User + system CPU ticks of `pid`, from /proc/PID/stat.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Freeze stops a busy process (its CPU time stops growing), thaw starts
/// it again.
fn check_freeze(cg: &OciCgroup) {
    let mut busy = Gated::new("while :; do :; done");
    cg.add(busy.pid()).unwrap();
    busy.go();
    std::thread::sleep(Duration::from_millis(100));
    assert!(!cg.is_frozen());
    cg.freeze().unwrap();
    assert!(cg.is_frozen());
    match cg.location() {
        Location::V2(d) => assert_eq!(read(d.join("cgroup.freeze")), "1"),
        Location::V1(_) => assert_eq!(read(dir(cg, "freezer").join("freezer.state")), "FROZEN"),
    }
    let before = cpu_ticks(busy.pid());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(busy.pid()), before, "a frozen process ran");
    cg.thaw().unwrap();
    assert!(!cg.is_frozen());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        cpu_ticks(busy.pid()) > before,
        "a thawed process did not run"
    );
}

/// kill --all reaches every process, including those forked inside.
fn check_signal_all(cg: &OciCgroup, sig: i32) {
    let mut sh = Gated::new("sleep 60 & sleep 60 & echo forked; wait");
    cg.add(sh.pid()).unwrap();
    sh.go();
    assert_eq!(sh.line(), "forked");
    let pids = cg.pids();
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert!(pids.contains(&sh.pid()));
    cg.signal_all(sig).unwrap();
    let status = sh.child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(sig));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cg.pids().is_empty() {
        assert!(Instant::now() < deadline, "left: {:?}", cg.pids());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a process in `cg` may open `dev`.
fn may_open(cg: &OciCgroup, dev: &str) -> bool {
    let mut sh = Gated::new(&format!(
        "(: < {dev}) 2>/dev/null && echo ok || echo denied"
    ));
    cg.add(sh.pid()).unwrap();
    sh.go();
    sh.line() == "ok"
}

#[test]
fn resources_are_written_and_everything_removed() {
    let _s = serial();
    if !root() {
        return;
    }
    let id = id("res");
    let r = resources(json!({
        "memory": {"limit": 67108864, "reservation": 33554432},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 20},
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}
        ]
    }));
    let cg = OciCgroup::create(None, false, &id, Some(&r)).unwrap();
    assert_eq!(cg.path(), format!("/containr-oci/{id}"));
    let mem = dir(&cg, "memory");
    if host_v2() {
        assert_eq!(read(mem.join("memory.max")), "67108864");
        assert_eq!(read(mem.join("memory.low")), "33554432");
        assert_eq!(read(dir(&cg, "cpu").join("cpu.weight")), "59");
        assert_eq!(read(dir(&cg, "cpu").join("cpu.max")), "20000 100000");
    } else {
        assert_eq!(read(mem.join("memory.limit_in_bytes")), "67108864");
        assert_eq!(read(mem.join("memory.soft_limit_in_bytes")), "33554432");
        assert_eq!(read(dir(&cg, "cpu").join("cpu.shares")), "512");
        assert_eq!(read(dir(&cg, "cpu").join("cpu.cfs_quota_us")), "20000");
        assert_eq!(read(dir(&cg, "cpu").join("cpu.cfs_period_us")), "100000");
        let list = read(dir(&cg, "devices").join("devices.list"));
        assert!(list.contains("c 1:3 rw"), "{list}");
        assert!(!list.contains("a *:*"), "{list}");
    }
    assert_eq!(read(dir(&cg, "cpuset").join("cpuset.cpus")), "0");
    assert_eq!(read(dir(&cg, "pids").join("pids.max")), "20");

    // A process placed in it is in it, in every hierarchy, and the device
    // rules bind: /dev/null allowed, /dev/kmsg (1:11) not.
    let mut sleeper = Gated::new("echo in; exec sleep 60");
    cg.add(sleeper.pid()).unwrap();
    sleeper.go();
    assert_eq!(sleeper.line(), "in");
    let own = std::fs::read_to_string(format!("/proc/{}/cgroup", sleeper.pid())).unwrap();
    assert!(own.contains(&format!(":{}\n", cg.path())), "{own}");
    assert!(may_open(&cg, "/dev/null"));
    if Path::new("/dev/kmsg").exists() {
        assert!(!may_open(&cg, "/dev/kmsg"), "/dev/kmsg opened");
    }

    // stats in runc's shape.
    let stats = cg.stats();
    assert!(stats["pids"]["current"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["pids"]["limit"], 20);
    assert_eq!(stats["memory"]["usage"]["limit"], 67108864, "{stats}");
    assert!(
        stats["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{stats}"
    );

    // update: same writes on the live cgroup.
    cg.update(&resources(
        json!({"pids": {"limit": 30}, "memory": {"limit": 134217728}}),
    ))
    .unwrap();
    assert_eq!(read(dir(&cg, "pids").join("pids.max")), "30");
    let limit = if host_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(read(mem.join(limit)), "134217728");

    // A cgroup the container made inside is removed with it.
    let sub = dir(&cg, "pids").join("inner");
    std::fs::create_dir(&sub).unwrap();
    drop(sleeper);
    cg.remove().unwrap();
    for d in dirs(&cg) {
        assert!(!d.exists(), "{} left", d.display());
    }
}

#[test]
fn freeze_thaw_and_kill_all_on_the_host_hierarchy() {
    let _s = serial();
    if !root() {
        return;
    }
    let cg = OciCgroup::create(None, false, &id("freeze"), None).unwrap();
    check_freeze(&cg);
    check_signal_all(&cg, libc::SIGTERM);
    check_signal_all(&cg, libc::SIGKILL);
    cg.remove().unwrap();
    assert!(dirs(&cg).iter().all(|d| !d.exists()));
}

#[test]
fn bad_resources_leave_nothing_behind() {
    let _s = serial();
    if !root() {
        return;
    }
    // Levels this call makes are removed with the leaf.
    let top = format!("containr-oci-test-{}", std::process::id());
    let path = format!("/{top}/a/b");
    let r = resources(json!({"cpu": {"cpus": "0-63"}}));
    let err = OciCgroup::create(Some(&path), false, "x", Some(&r))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("linux.resources.cpu.cpus: writing \"0-63\" to cpuset.cpus"),
        "{err}"
    );
    for base in [
        "/sys/fs/cgroup",
        "/sys/fs/cgroup/cpuset",
        "/sys/fs/cgroup/memory",
    ] {
        assert!(!Path::new(base).join(&top).exists(), "{base}/{top} left");
    }
    // A field the host cannot honour is refused by name.
    let r = if host_v2() {
        resources(json!({"network": {"classID": 1}}))
    } else {
        resources(json!({"unified": {"memory.high": "1"}}))
    };
    let err = OciCgroup::create(Some(&path), false, "x", Some(&r))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("linux.resources."), "{err}");
    assert!(!Path::new("/sys/fs/cgroup/memory").join(&top).exists() || host_v2());
    // A cgroup of that name already there is not taken over.
    let cg = OciCgroup::create(Some(&path), false, "x", None).unwrap();
    let err = OciCgroup::create(Some(&path), false, "x", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("exists already"), "{err}");
    cg.remove().unwrap();
    for d in dirs(&cg) {
        assert!(!d.exists());
        // The levels above it are left, as runc leaves them.
        remove_parents(&d, 2);
    }
}

#[test]
fn systemd_paths_map_onto_cgroupfs() {
    let _s = serial();
    if !root() {
        return;
    }
    let slice = format!("ctest{}", std::process::id());
    let path = format!("{slice}-inner.slice:libpod:abc");
    let cg = OciCgroup::create(Some(&path), true, "x", None).unwrap();
    assert_eq!(
        cg.path(),
        format!("/{slice}.slice/{slice}-inner.slice/libpod-abc.scope")
    );
    let mut sleeper = Gated::new("echo in; exec sleep 60");
    cg.add(sleeper.pid()).unwrap();
    sleeper.go();
    assert_eq!(sleeper.line(), "in");
    let own = std::fs::read_to_string(format!("/proc/{}/cgroup", sleeper.pid())).unwrap();
    assert!(own.contains(cg.path()), "{own}");
    drop(sleeper);
    cg.remove().unwrap();
    for d in dirs(&cg) {
        assert!(!d.exists());
        remove_parents(&d, 2);
    }
}

/// The v2 code paths on the hybrid host's controller-less cgroup2 mount.
#[test]
fn v2_on_the_unified_mount() {
    let _s = serial();
    let unified = Path::new("/sys/fs/cgroup/unified");
    if !root() || host_v2() || !unified.join("cgroup.procs").exists() {
        eprintln!("no separate cgroup2 mount; skipped (the host tests cover v2)");
        return;
    }
    // SAFETY: the tests of this file run one at a time (SERIAL), and
    // nothing else in this process reads the environment meanwhile.
    unsafe { std::env::set_var("CONTAINR_CGROUP_V2", unified) };
    let result = std::panic::catch_unwind(|| {
        // A controller this mount lacks is refused by name, nothing left.
        let id = id("v2");
        let err = OciCgroup::create(
            None,
            false,
            &id,
            Some(&resources(json!({"pids": {"limit": 5}}))),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("linux.resources.pids.limit: needs the pids cgroup controller"),
            "{err}"
        );
        assert!(!unified.join("containr-oci").join(&id).exists());

        // Core files through `unified`, and the device filter.
        let r = resources(json!({
            "unified": {"cgroup.max.descendants": "3"},
            "devices": [{"allow": false, "access": "rwm"}]
        }));
        let cg = OciCgroup::create(None, false, &id, Some(&r)).unwrap();
        let Location::V2(d) = cg.location().clone() else {
            panic!("v2 expected")
        };
        assert_eq!(d, unified.join("containr-oci").join(&id));
        assert_eq!(read(d.join("cgroup.max.descendants")), "3");
        assert!(cg.location().entry().unwrap().target.is_some());
        assert!(may_open(&cg, "/dev/null"), "the default set stays open");
        assert!(!may_open(&cg, "/dev/kmsg"));
        // update replaces the filter: kmsg allowed now.
        cg.update(&resources(json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}
        ]})))
        .unwrap();
        assert!(
            may_open(&cg, "/dev/kmsg"),
            "update did not replace the filter"
        );

        check_freeze(&cg);
        check_signal_all(&cg, libc::SIGTERM);
        check_signal_all(&cg, libc::SIGKILL);
        cg.remove().unwrap();
        assert!(!d.exists());

        // hugetlb, where no v1 hierarchy holds it, is a v2 controller here:
        // enabled down the path and limited.
        let offered = std::fs::read_to_string(unified.join("cgroup.controllers")).unwrap();
        if offered.split_whitespace().any(|c| c == "hugetlb") {
            let r = resources(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}));
            let cg = OciCgroup::create(None, false, &id, Some(&r)).unwrap();
            assert_eq!(read(d.join("hugetlb.2MB.max")), "0");
            cg.remove().unwrap();
        }
    });
    // SAFETY: as above.
    unsafe { std::env::remove_var("CONTAINR_CGROUP_V2") };
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn state_round_trips_through_json() {
    let _s = serial();
    if !root() {
        return;
    }
    let cg = OciCgroup::create(None, false, &id("json"), None).unwrap();
    let saved = serde_json::to_string(&cg).unwrap();
    let reopened: OciCgroup = serde_json::from_str(&saved).unwrap();
    assert_eq!(reopened.path(), cg.path());
    reopened.remove().unwrap();
    assert!(dirs(&cg).iter().all(|d| !d.exists()));
    assert_eq!(containr::cgroup::oci::features()["v2"], true);
}

/// v1 hierarchies only some resources use (cpuset here) are joined when one
/// does: at create if asked then, else by a running container at update.
#[test]
fn update_joins_a_hierarchy_first_needed_then() {
    let _s = serial();
    if !root() || host_v2() {
        return;
    }
    let cg = OciCgroup::create(None, false, &id("late"), None).unwrap();
    let cpuset = dir(&cg, "cpuset");
    assert!(!cpuset.exists(), "cpuset joined with no cpuset resource");
    let mut sleeper = Gated::new("echo in; exec sleep 60");
    cg.add(sleeper.pid()).unwrap();
    sleeper.go();
    assert_eq!(sleeper.line(), "in");
    cg.update(&resources(json!({"cpu": {"cpus": "0"}})))
        .unwrap();
    assert_eq!(read(cpuset.join("cpuset.cpus")), "0");
    let procs = read(cpuset.join("cgroup.procs"));
    assert!(
        procs.lines().any(|l| l == sleeper.pid().to_string()),
        "{procs}"
    );
    let own = std::fs::read_to_string(format!("/proc/{}/cgroup", sleeper.pid())).unwrap();
    assert!(own.contains(&format!(":cpuset:{}\n", cg.path())), "{own}");
    drop(sleeper);
    cg.remove().unwrap();
    assert!(dirs(&cg).iter().all(|d| !d.exists()));
}

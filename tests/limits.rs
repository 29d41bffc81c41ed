//! Resource limits: the container's cgroup, seen from the host and from
//! inside, and limits that really bind.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Sandbox, assert_fails, cgroup_dirs};

fn dir_of<'a>(dirs: &'a [(String, PathBuf)], controller: &str) -> &'a PathBuf {
    &dirs
        .iter()
        .find(|(c, _)| c == "v2" || c.split(',').any(|n| n == controller))
        .unwrap_or_else(|| panic!("no {controller} cgroup in {dirs:?}"))
        .1
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

#[test]
fn limits_are_written_and_the_cgroup_removed() {
    let _serial = serial();
    let sb = Sandbox::new();
    let rootfs = sb.rootfs.to_str().unwrap();
    let mut child = sb
        .cmd(&[
            "run",
            "--rm",
            "--rootfs",
            rootfs,
            "--name",
            "lim",
            "--memory",
            "48m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "40",
            "--cpu-shares",
            "512",
            "sleep",
            "3",
        ])
        .spawn()
        .unwrap();
    let dirs = cgroup_dirs(&sb, "lim");
    let v2 = dirs[0].0 == "v2";
    // The container's processes are placed in it right after the clone.
    let procs = dir_of(&dirs, "memory").join("cgroup.procs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while read(procs.clone()).is_empty() {
        assert!(Instant::now() < deadline, "no process ever in the cgroup");
        std::thread::sleep(Duration::from_millis(20));
    }
    if v2 {
        let d = dir_of(&dirs, "memory");
        assert_eq!(read(d.join("memory.max")), (48u64 << 20).to_string());
        assert_eq!(read(d.join("cpu.max")), "50000 100000");
        assert_eq!(read(d.join("pids.max")), "40");
    } else {
        let mem = dir_of(&dirs, "memory");
        assert_eq!(
            read(mem.join("memory.limit_in_bytes")),
            (48u64 << 20).to_string()
        );
        let cpu = dir_of(&dirs, "cpu");
        assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(cpu.join("cpu.shares")), "512");
        assert_eq!(read(dir_of(&dirs, "pids").join("pids.max")), "40");
    }
    // Its spec says the swap it got: docker's default for --memory alone,
    // as much swap again, where the host accounts swap; else none.
    let mem = dir_of(&dirs, "memory");
    let id = mem.file_name().unwrap().to_str().unwrap();
    let spec = read(sb.data.join(format!("containers/{id}/config.json")));
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let swap = &spec["linux"]["resources"]["memory"]["swap"];
    let (file, got) = if v2 {
        ("memory.swap.max", 48u64 << 20)
    } else {
        ("memory.memsw.limit_in_bytes", 96u64 << 20)
    };
    if mem.join(file).exists() {
        assert_eq!(swap, &serde_json::json!(96u64 << 20), "{spec}");
        assert_eq!(read(mem.join(file)), got.to_string());
    } else {
        assert!(swap.is_null(), "no swap accounting, yet {swap}");
    }
    assert!(child.wait().unwrap().success());
    for (_, d) in &dirs {
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
}

#[test]
fn the_container_sees_its_cgroup_as_root() {
    let _serial = serial();
    let sb = Sandbox::new();
    let own = sb.ok(&["cat", "/proc/self/cgroup"]);
    for line in own.lines() {
        assert!(
            line.ends_with(":/"),
            "cgroup namespace not rooted: {line}\n{own}"
        );
    }
}

/// Inside, the memory controller's files of the container's own cgroup:
/// `memory.max` on v2 (a cgroup2 at /sys/fs/cgroup), `memory.limit_in_bytes`
/// on v1 (the hierarchy at /sys/fs/cgroup/memory).
const MEMORY_LIMIT_FILE: &str = "if [ -e /sys/fs/cgroup/cgroup.controllers ]; \
     then f=/sys/fs/cgroup/memory.max; else f=/sys/fs/cgroup/memory/memory.limit_in_bytes; fi";

#[test]
fn the_container_reads_its_own_cgroup_at_sys_fs_cgroup_read_only() {
    let _serial = serial();
    let sb = Sandbox::new();
    let script = format!(
        "{MEMORY_LIMIT_FILE}; cat $f; \
         {{ echo 1 > $f; }} 2>/dev/null && echo written || echo refused; \
         mkdir /sys/fs/cgroup/x 2>/dev/null && echo made || echo refused; \
         find /sys/fs/cgroup -mindepth 2 -type d | wc -l; \
         grep -c ' /sys/fs/cgroup[ /].* - cgroup' /proc/self/mountinfo; \
         awk '$5 ~ \"^/sys/fs/cgroup\" && $4 != \"/\"' /proc/self/mountinfo; \
         head -n 1 $(dirname $f)/cgroup.procs"
    );
    let out = sb.ok(&["--memory", "48m", "sh", "-c", &script]);
    let lines: Vec<&str> = out.lines().collect();
    // The limit set with --memory, from the container's own files.
    assert_eq!(lines[0], "50331648", "{out}");
    // Read-only: neither a limit nor a new cgroup can be written.
    assert_eq!(lines[1..3], ["refused", "refused"], "{out}");
    // Nothing of the host's hierarchy: the container's cgroup is the root
    // of every cgroup mount (no child cgroup, no mount of a subtree), and
    // its first process is the container's PID 1.
    assert_eq!(lines[3], "0", "{out}");
    assert_ne!(lines[4], "0", "no cgroup mount: {out}");
    assert_eq!(lines[5], "1", "{out}");
    assert_eq!(lines.len(), 6, "a cgroup mount of a subtree: {out}");

    // --privileged: writable, as docker.
    let script = format!("{MEMORY_LIMIT_FILE}; echo 67108864 > $f && cat $f");
    assert_eq!(
        sb.ok(&["--privileged", "--memory", "48m", "sh", "-c", &script]),
        "67108864\n"
    );
}

#[test]
fn a_fork_bomb_is_contained_by_pids_limit() {
    let _serial = serial();
    let sb = Sandbox::new();
    // Try to start 100 sleepers; at most 32 processes may exist at once.
    // The loop runs in a subshell because ash gives up when fork fails;
    // counted with shell builtins only: no fork is left to spare.
    let out = sb.run(&[
        "--pids-limit",
        "32",
        "sh",
        "-c",
        "( i=0; while [ $i -lt 100 ]; do sleep 5 & i=$((i+1)); done ) 2>/dev/null; \
         set -- /proc/[0-9]*; echo $#; kill -9 -1 2>/dev/null; true",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(count <= 32, "{count} processes under --pids-limit 32");
    assert!(count >= 10, "only {count} processes: the loop did not run");
}

#[test]
fn a_memory_hog_is_oom_killed_and_reported() {
    let _serial = serial();
    let sb = Sandbox::new();
    let out = sb.run(&[
        "--memory",
        "32m",
        "sh",
        "-c",
        "x=aaaaaaaaaa; while true; do x=$x$x; done",
    ]);
    assert_eq!(out.status.code(), Some(137));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("OOM killer") && err.contains("32 MiB"),
        "{err}"
    );
    // A command that stays under the limit is not reported (--init: as
    // PID 1 the shell could not kill itself).
    let out = sb.run(&["--init", "--memory", "32m", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(out.status.code(), Some(137));
    assert!(String::from_utf8_lossy(&out.stderr).is_empty());
}

#[test]
fn cpus_half_gives_about_half_a_core() {
    let _serial = serial();
    let sb = Sandbox::new();
    // A busy loop for 2 s of wall time; its CPU time (utime+stime, in
    // clock ticks of 1/100 s) should be about 1 s. Loosely: 0.3 to 0.7.
    let out = sb.ok(&[
        "--cpus",
        "0.5",
        "sh",
        "-c",
        "while :; do :; done & sleep 2; cut -d' ' -f14,15 /proc/$!/stat; kill $!",
    ]);
    let ticks: u64 = out
        .split_whitespace()
        .map(|t| t.parse::<u64>().unwrap())
        .sum();
    let cores = ticks as f64 / 100.0 / 2.0;
    assert!(
        (0.3..=0.7).contains(&cores),
        "used {cores:.2} cores under --cpus 0.5"
    );
}

#[test]
fn stats_reads_a_running_container() {
    let _serial = serial();
    let sb = Sandbox::new();
    let rootfs = sb.rootfs.to_str().unwrap();
    let mut child = sb
        .cmd(&[
            "run", "--rm", "--rootfs", rootfs, "--name", "watched", "--memory", "64m", "sleep", "3",
        ])
        .spawn()
        .unwrap();
    cgroup_dirs(&sb, "watched");
    let text = sb.containr_ok(&["stats", "--no-stream", "watched"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("CONTAINER ID") && lines[0].contains("MEM USAGE / LIMIT"));
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[1].contains("watched") && lines[1].contains("/ 64.00MiB"),
        "{text}"
    );
    let pids: u32 = lines[1].split_whitespace().last().unwrap().parse().unwrap();
    assert_eq!(pids, 1, "sleep, PID 1 of the container: {text}");
    assert_fails(
        &sb.cmd(&["stats", "--no-stream", "nosuch"])
            .output()
            .unwrap(),
        125,
        "No such container: nosuch",
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn bad_limits_are_refused_before_anything_is_made() {
    let _serial = serial();
    let sb = Sandbox::new();
    let before = container_cgroups();
    assert_fails(
        &sb.run(&["--memory", "12qb", "true"]),
        125,
        "invalid size \"12qb\"",
    );
    // The message lists every unit parse_size takes; too large says so.
    assert_fails(
        &sb.run(&["--memory", "12qb", "true"]),
        125,
        "b, k, m, g, t or p",
    );
    assert_fails(
        &sb.run(&["--memory", "99999999t", "true"]),
        125,
        "invalid size \"99999999t\": larger than 16 EiB",
    );
    // docker's floor: under 6 MiB is refused, not OOM-killed at start.
    for small in ["1", "4m", "6291455"] {
        assert_fails(
            &sb.run(&["--memory", small, "true"]),
            125,
            "Minimum memory limit allowed is 6MB",
        );
    }
    assert_fails(&sb.run(&["--cpus", "0", "true"]), 125, "--cpus");
    assert_fails(&sb.run(&["--cpus", "1000", "true"]), 125, "--cpus");
    assert_fails(
        &sb.run(&["--cpuset-cpus", "999", "true"]),
        125,
        "cpuset \"999\" is not available",
    );
    assert_fails(&sb.run(&["--cpu-shares", "1", "true"]), 125, "--cpu-shares");
    assert_fails(
        &sb.run(&["--memory", "64m", "--memory-swap", "32m", "true"]),
        125,
        "--memory-swap",
    );
    // As docker: a memory-plus-swap total needs the memory part.
    assert_fails(
        &sb.run(&["--memory-swap", "100m", "true"]),
        125,
        "--memory-swap \"100m\": needs --memory too",
    );
    assert_fails(&sb.run(&["--pids-limit", "many", "true"]), 125, "many");
    assert_fails(
        &sb.run(&["--device-read-bps", "/nonexistent:1mb", "true"]),
        125,
        "no such device",
    );
    assert_eq!(
        container_cgroups(),
        before,
        "a failed run left a cgroup behind"
    );
}

/// Every container cgroup on the host, in any hierarchy.
fn container_cgroups() -> Vec<String> {
    let out = std::process::Command::new("find")
        .args([
            "/sys/fs/cgroup",
            "-maxdepth",
            "6",
            "-type",
            "d",
            "-path",
            "*/containr/*",
        ])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    // containr/restricted (v1 devices) is the shared parent holding the
    // device rules, made once and kept: not a container's.
    let mut dirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|d| !d.ends_with("/containr/restricted"))
        .map(str::to_string)
        .collect();
    dirs.sort();
    dirs
}

/// The tests of this file run one at a time, so that the host's set of
/// container cgroups is this file's to compare.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The v2 backend, for real, on a hybrid host: its controller-less unified
/// mount still takes cgroups, CLONE_INTO_CGROUP and device programs. (Pure
/// v2 hosts run every other test of this file on v2 already.)
#[test]
fn v2_backend_on_the_unified_mount() {
    let _serial = serial();
    let unified = std::path::Path::new("/sys/fs/cgroup/unified");
    if !unified.join("cgroup.procs").exists() {
        eprintln!("no separate cgroup2 mount: this host is pure v1 or pure v2; skipped");
        return;
    }
    let sb = Sandbox::new();
    let v2 = |args: &[&str]| {
        let mut full = vec!["run", "--rm", "--rootfs", sb.rootfs.to_str().unwrap()];
        full.extend_from_slice(args);
        let mut cmd = sb.cmd(&full);
        cmd.env("CONTAINR_CGROUP_V2", unified);
        cmd.output().unwrap()
    };
    let before = container_cgroups();
    // Started inside its cgroup, which it sees as its root.
    let out = v2(&["--name", "v2", "sh", "-c", "cat /proc/self/cgroup; sleep 1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let own = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(own.lines().any(|l| l == "0::/"), "{own}");
    assert!(own.lines().all(|l| l.ends_with(":/")), "{own}");
    // The device filter: a node for loop-control (10:237) may be made but
    // not opened; /dev/null still works. --privileged lifts it.
    let script = "mknod /dev/lc c 10 237; cat /dev/null && echo null=ok; \
                  (exec 3</dev/lc) 2>/dev/null && echo lc=open || echo lc=denied";
    let out = v2(&["sh", "-c", script]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "null=ok\nlc=denied\n");
    let out = v2(&["--privileged", "sh", "-c", script]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "null=ok\nlc=open\n");
    // Its cgroup is at /sys/fs/cgroup, cgroup2 and read-only, with the
    // init (PID 1) in it.
    let out = v2(&[
        "sh",
        "-c",
        "grep ' /sys/fs/cgroup ' /proc/self/mountinfo | cut -d' ' -f4,6,9; \
         head -n 1 /sys/fs/cgroup/cgroup.procs; mkdir /sys/fs/cgroup/x",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "/ ro,nosuid,nodev,noexec,relatime cgroup2\n1\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only file system"));
    // A limit whose controller this mount lacks is refused, cleanly.
    let out = v2(&["--memory", "32m", "true"]);
    assert_fails(&out, 125, "needs the memory cgroup controller");
    assert_eq!(container_cgroups(), before, "a v2 cgroup was left behind");
}

#[test]
fn device_rates_are_written() {
    let _serial = serial();
    let sb = Sandbox::new();
    // The disk the rootfs lives on: a real block device of this host.
    let out = Command::new("findmnt")
        .args([
            "-n",
            "-o",
            "SOURCE",
            "--target",
            sb.rootfs.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !dev.starts_with("/dev/") {
        eprintln!("rootfs is not on a block device ({dev}); skipped");
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(&dev).unwrap().rdev();
    let (major, minor) = (nix::libc::major(rdev), nix::libc::minor(rdev));
    let rootfs = sb.rootfs.to_str().unwrap();
    let rate = format!("{dev}:1mb");
    let mut child = sb
        .cmd(&[
            "run",
            "--rm",
            "--rootfs",
            rootfs,
            "--name",
            "io",
            "--device-read-bps",
            &rate,
            "--device-write-bps",
            &rate,
            "sleep",
            "2",
        ])
        .spawn()
        .unwrap();
    let dirs = cgroup_dirs(&sb, "io");
    let want = format!("{major}:{minor} {}", 1 << 20);
    if dirs[0].0 == "v2" {
        let io = read(dir_of(&dirs, "io").join("io.max"));
        assert!(
            io.contains(&format!(
                "{major}:{minor} rbps={} wbps={}",
                1 << 20,
                1 << 20
            )),
            "{io}"
        );
    } else {
        let blkio = dir_of(&dirs, "blkio");
        assert_eq!(read(blkio.join("blkio.throttle.read_bps_device")), want);
        assert_eq!(read(blkio.join("blkio.throttle.write_bps_device")), want);
    }
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_killed_runs_cgroup_is_reclaimed_by_the_next_run() {
    let _serial = serial();
    let sb = Sandbox::new();
    let rootfs = sb.rootfs.to_str().unwrap();
    let mut victim = sb
        .cmd(&[
            "run",
            "--rm",
            "--rootfs",
            rootfs,
            "--network",
            "none",
            "--name",
            "victim",
            "sleep",
            "30",
        ])
        .spawn()
        .unwrap();
    let dirs = cgroup_dirs(&sb, "victim");
    let procs = dir_of(&dirs, "memory").join("cgroup.procs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while read(procs.clone()).is_empty() {
        assert!(Instant::now() < deadline, "the victim never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL: containr cannot clean up; its init dies with it (PDEATHSIG).
    victim.kill().unwrap();
    victim.wait().unwrap();
    sb.ok(&["--network", "none", "true"]);
    for (_, d) in &dirs {
        assert!(
            !d.exists(),
            "cgroup {} of the killed run is still there",
            d.display()
        );
    }
    assert!(!sb.data.join("containers/victim.json").exists());
}

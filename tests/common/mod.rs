//! Shared harness for the integration tests: they run the real binary as a
//! user would, as root, and check its effects on the host.
#![allow(dead_code)]

pub mod examples;
pub mod oci;
pub mod pty;
pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_containr");

/// A busybox root filesystem and a data root of one test's own, removed
/// (after checking nothing of the container outlived it) when dropped.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub rootfs: PathBuf,
    pub data: PathBuf,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the integration tests run containers: run them as root"
        );
        let dir = tempfile::Builder::new()
            .prefix("containr-test.")
            .tempdir()
            .expect("temp dir");
        let rootfs = dir.path().join("rootfs");
        let data = dir.path().join("data");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mkrootfs");
        let out = Command::new(&script)
            .arg(&rootfs)
            .output()
            .expect("run scripts/mkrootfs");
        assert!(
            out.status.success(),
            "mkrootfs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Sandbox { dir, rootfs, data }
    }

    /// `containr --root DATA ARGS...`, ready to be run.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(&self.data).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// `containr run --rootfs ROOTFS ARGS...` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut full = vec!["run", "--rm", "--rootfs", self.rootfs.to_str().unwrap()];
        full.extend_from_slice(args);
        self.cmd(&full).output().expect("spawn containr")
    }

    /// Run and expect success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.run(args))
    }

    /// The busybox rootfs as a tarball in the sandbox (`tar`, `tar.gz`).
    pub fn rootfs_tar(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let gzip = if name.ends_with(".gz") {
            "-z"
        } else {
            "--no-auto-compress"
        };
        let out = Command::new("tar")
            .arg("-C")
            .arg(&self.rootfs)
            .args(["--numeric-owner", gzip, "-cf"])
            .arg(&path)
            .arg(".")
            .output()
            .expect("run tar");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    }

    /// `containr --root DATA ARGS...` to completion, expecting success;
    /// returns stdout.
    pub fn containr_ok(&self, args: &[&str]) -> String {
        succeeded(args, self.cmd(args).output().expect("spawn containr"))
    }

    /// Names in a directory of the data root (empty if it does not exist).
    pub fn entries(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.data.join(sub))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The layer snapshots in the data root (without their sums,
    /// `<diff-id>.sum`).
    pub fn snapshots(&self) -> Vec<String> {
        let mut v = self.entries("snapshots");
        v.retain(|n| !n.ends_with(".sum"));
        v
    }

    /// Assert that no mount, state or name of any container is left.
    pub fn assert_clean(&self) {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let here = self.dir.path().to_str().unwrap();
        let stray: Vec<&str> = mounts.lines().filter(|l| l.contains(here)).collect();
        assert!(stray.is_empty(), "mounts left on the host: {stray:?}");
        // rw: containers' writable layers; blobs/tmp: blobs being written.
        for sub in ["containers", "names", "rw", "blobs/tmp"] {
            let d = self.data.join(sub);
            if d.exists() {
                let left: Vec<_> = std::fs::read_dir(&d)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path())
                    .collect();
                assert!(left.is_empty(), "state left in {}: {left:?}", d.display());
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_clean();
        }
    }
}

/// Assert that containr `args` succeeded; its stdout.
fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "containr {args:?} failed with {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Assert a failed run: exit `code`, and one line on stderr containing `needle`.
pub fn assert_fails(out: &Output, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}, got {:?}; stderr: {err}",
        out.status.code()
    );
    assert_eq!(
        err.lines().count(),
        1,
        "expected a one-line error, got: {err:?}"
    );
    assert!(
        err.starts_with("containr: "),
        "error should name containr: {err:?}"
    );
    assert!(
        err.contains(needle),
        "error {err:?} should mention {needle:?}"
    );
}

/// Host processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(marker) {
                found.push(format!("{}: {cmd}", name.to_string_lossy()));
            }
        }
    }
    found
}

/// CPU time used by process `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// The freezer's state file of the cgroup process `pid` is in.
pub fn freezer_state(pid: u32) -> String {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    if let Some(path) = cgroup
        .lines()
        .find_map(|l| l.split_once(":freezer:").map(|(_, p)| p))
    {
        if path != "/" {
            return std::fs::read_to_string(format!("/sys/fs/cgroup/freezer{path}/freezer.state"))
                .unwrap()
                .trim()
                .to_string();
        }
        return "THAWED".into();
    }
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    let v = std::fs::read_to_string(format!("/sys/fs/cgroup{path}/cgroup.freeze")).unwrap();
    if v.trim() == "1" { "FROZEN" } else { "THAWED" }.to_string()
}

/// The directories of a running container's cgroup, from its state file.
pub fn cgroup_dirs(sb: &Sandbox, name: &str) -> Vec<(String, PathBuf)> {
    let path = sb.data.join(format!("containers/{name}.json"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(state) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        {
            let cg = &state["cgroup"];
            if let Some(dir) = cg["V2"].as_str() {
                return vec![("v2".into(), PathBuf::from(dir))];
            }
            if let Some(list) = cg["V1"].as_array() {
                return list
                    .iter()
                    .map(|e| {
                        (
                            e[0].as_str().unwrap().to_string(),
                            PathBuf::from(e[1].as_str().unwrap()),
                        )
                    })
                    .collect();
            }
        }
        assert!(Instant::now() < deadline, "no state for {name}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

//! The cgroup v2 backend on a pure-v2 kernel: the project's hosts are
//! hybrid, so `tests/vm/run` boots a throwaway VM (Debian's qemu and kernel,
//! `cgroup_no_v1=all`, no network device) with this build of containr and
//! runs `tests/vm/scenarios` in it. Without qemu or the kernel package this
//! fails: `scripts/deps test` installs what it needs.
//!
//! A second VM run boots twice on one disk (`tests/vm/reboot`): what
//! containr keeps must outlive a host reboot.

use std::path::Path;
use std::process::{Command, Stdio};

/// Fewer checks than this means the scenarios stopped short: as bad as a
/// failed one.
const AT_LEAST: u32 = 40;

/// One VM at a time: two emulated (TCG) VMs on a 2-core host would each
/// take twice as long, and risk their timeouts.
static ONE_VM: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn cgroup_v2_scenarios_pass_in_a_vm() {
    let passed = run_vm(&[]);
    assert!(
        passed >= AT_LEAST,
        "only {passed} checks ran in the VM (expected at least {AT_LEAST})"
    );
}

#[test]
fn containers_outlive_a_reboot_in_a_vm() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let mkfs = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4"])
        .arg(&disk)
        .output()
        .expect("mke2fs (e2fsprogs)");
    assert!(mkfs.status.success(), "mke2fs: {mkfs:?}");
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/reboot");
    let passed = run_vm(&[
        ("CONTAINR_VM_SCENARIOS", scenarios.as_os_str()),
        ("CONTAINR_VM_DISK", disk.as_os_str()),
        ("CONTAINR_VM_REBOOT", "1".as_ref()),
    ]);
    assert!(passed >= 12, "only {passed} checks ran over the two boots");
}

/// Boot the VM with `env`; the number of checks that passed (all did).
fn run_vm(env: &[(&str, &std::ffi::OsStr)]) -> u32 {
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        nix::unistd::geteuid().is_root(),
        "the VM test builds an initramfs with device nodes: run it as root"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/run");
    let out = Command::new(&script)
        .arg(env!("CARGO_BIN_EXE_containr"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown with --nocapture, and in the failure message below.
    println!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "tests/vm/run failed ({}):\n{stdout}{stderr}",
        out.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    let passed: u32 = last
        .strip_prefix("vm: ")
        .and_then(|l| l.strip_suffix(" passed, 0 failed"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary line from the VM: {last:?}\n{stdout}{stderr}"));
    passed
}

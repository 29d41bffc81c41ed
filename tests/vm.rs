//! The cgroup v2 backend on a pure-v2 kernel: the project's hosts are
//! hybrid, so `tests/vm/run` boots a throwaway VM (Debian's qemu and kernel,
//! `cgroup_no_v1=all`, no network device) with this build of containr and
//! runs `tests/vm/scenarios` in it. Without qemu or the kernel package this
//! fails: `scripts/deps test` installs what it needs.

use std::path::Path;
use std::process::{Command, Stdio};

/// Fewer checks than this means the scenarios stopped short: as bad as a
/// failed one.
const AT_LEAST: u32 = 40;

#[test]
fn cgroup_v2_scenarios_pass_in_a_vm() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the VM test builds an initramfs with device nodes: run it as root"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/run");
    let out = Command::new(&script)
        .arg(env!("CARGO_BIN_EXE_containr"))
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
    assert!(
        passed >= AT_LEAST,
        "only {passed} checks ran in the VM (expected at least {AT_LEAST}):\n{stdout}"
    );
}

//! Confinement: capabilities, no_new_privs, seccomp, masked paths and the
//! devices cgroup, tested by trying to escape and checking that it fails.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use common::{Sandbox, assert_fails};

/// `tests/helpers/probe.c`, built once, statically, with the host's cc.
fn probe() -> &'static Path {
    static BUILT: OnceLock<std::path::PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/probe.c");
        // Under target/, not /tmp: rebuilt by every run, never left behind.
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("probe");
        let status = Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("cc (gcc) is needed to build the syscall probe");
        assert!(status.success(), "building {}", src.display());
        out
    })
}

/// A sandbox whose rootfs has the probe as /bin/probe.
fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    std::fs::copy(probe(), sb.rootfs.join("bin/probe")).unwrap();
    sb
}

/// Run the probe on `calls` with extra run flags; map call -> outcome.
fn probe_in(
    sb: &Sandbox,
    flags: &[&str],
    calls: &[&str],
) -> std::collections::HashMap<String, String> {
    let mut args: Vec<&str> = flags.to_vec();
    args.push("probe");
    args.extend_from_slice(calls);
    sb.ok(&args)
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn status_field(sb: &Sandbox, flags: &[&str], field: &str) -> String {
    let mut args: Vec<&str> = flags.to_vec();
    args.extend_from_slice(&["grep", field, "/proc/self/status"]);
    sb.ok(&args)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// Docker's default 14 capabilities as a mask, the value `docker run`
/// shows in CapEff/CapBnd.
const DOCKER_DEFAULT_CAPS: &str = "00000000a80425fb";

#[test]
fn default_capabilities_are_dockers() {
    let sb = sandbox();
    for field in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(
            status_field(&sb, &[], field),
            DOCKER_DEFAULT_CAPS,
            "{field}"
        );
    }
    assert_eq!(status_field(&sb, &[], "CapInh:"), "0000000000000000");
    assert_eq!(status_field(&sb, &[], "CapAmb:"), "0000000000000000");
    // A non-root user keeps the bounding set but holds nothing.
    assert_eq!(
        status_field(&sb, &["-u", "user"], "CapEff:"),
        "0000000000000000"
    );
    assert_eq!(
        status_field(&sb, &["-u", "user"], "CapBnd:"),
        DOCKER_DEFAULT_CAPS
    );
}

#[test]
fn cap_add_drop_and_privileged() {
    let sb = sandbox();
    // CAP_CHOWN is bit 0, CAP_NET_ADMIN bit 12.
    assert_eq!(
        status_field(&sb, &["--cap-drop", "ALL", "--cap-add", "chown"], "CapEff:"),
        "0000000000000001"
    );
    let with_admin = status_field(&sb, &["--cap-add", "NET_ADMIN"], "CapEff:");
    let mask = u64::from_str_radix(&with_admin, 16).unwrap();
    assert_eq!(mask, 0xa80425fb | (1 << 12));
    let privileged = status_field(&sb, &["--privileged"], "CapEff:");
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_eff = host.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    assert!(
        host_eff.ends_with(&privileged),
        "privileged {privileged} vs host {host_eff}"
    );
    assert_fails(
        &sb.run(&["--cap-add", "CAP_FLY", "true"]),
        125,
        "unknown capability",
    );
}

#[test]
fn no_new_privs_by_default_and_liftable() {
    let sb = sandbox();
    assert_eq!(status_field(&sb, &[], "NoNewPrivs:"), "1");
    assert_eq!(
        status_field(
            &sb,
            &["--security-opt", "no-new-privileges=false"],
            "NoNewPrivs:"
        ),
        "0"
    );
    // A setuid-root program cannot raise a user's privileges under it.
    let suid = sb.rootfs.join("bin/probe-suid");
    std::fs::copy(probe(), &suid).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let out = sb.ok(&["-u", "user", "probe-suid", "euid"]);
    assert_eq!(out, "euid=1000\n");
    let out = sb.ok(&[
        "-u",
        "user",
        "--security-opt",
        "no-new-privileges=false",
        "probe-suid",
        "euid",
    ]);
    assert_eq!(
        out, "euid=0\n",
        "the setuid bit works when no_new_privs is lifted"
    );
}

#[test]
fn default_seccomp_blocks_dangerous_syscalls() {
    let sb = sandbox();
    assert_eq!(status_field(&sb, &[], "Seccomp:"), "2");
    let r = probe_in(
        &sb,
        &[],
        &[
            "unshare",
            "mount",
            "keyctl",
            "kexec_load",
            "bpf",
            "init_module",
            "finit_module",
            "vsock",
            "inet",
            "mkdir",
        ],
    );
    for call in [
        "unshare",
        "mount",
        "keyctl",
        "kexec_load",
        "bpf",
        "init_module",
        "finit_module",
        "vsock",
    ] {
        assert_eq!(r[call], "EPERM", "{call} must be refused: {r:?}");
    }
    // Ordinary programs keep working.
    assert_eq!(r["inet"], "OK");
    assert_eq!(r["mkdir"], "OK");
    sb.ok(&[
        "sh",
        "-c",
        "echo hi | wc -c; ls / >/dev/null; ping -c1 -W2 127.0.0.1 >/dev/null",
    ]);
    // Unconfined: keyctl needs no capability, so it now goes through.
    let r = probe_in(&sb, &["--security-opt", "seccomp=unconfined"], &["keyctl"]);
    assert_eq!(r["keyctl"], "OK");
    assert_eq!(
        status_field(&sb, &["--security-opt", "seccomp=unconfined"], "Seccomp:"),
        "0"
    );
}

#[test]
fn custom_seccomp_profiles() {
    let sb = sandbox();
    let profile = sb.dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let r = probe_in(&sb, &["--security-opt", &opt], &["mkdir", "keyctl"]);
    assert_eq!(r["mkdir"], "EPERM");
    assert_eq!(r["keyctl"], "OK");

    let bad_json = sb.dir.path().join("bad.json");
    std::fs::write(&bad_json, "{ not json").unwrap();
    assert_fails(
        &sb.run(&[
            "--security-opt",
            &format!("seccomp={}", bad_json.display()),
            "true",
        ]),
        125,
        "not a valid profile",
    );
    let unknown = sb.dir.path().join("unknown.json");
    std::fs::write(
        &unknown,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["fly_away"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    assert_fails(
        &sb.run(&[
            "--security-opt",
            &format!("seccomp={}", unknown.display()),
            "true",
        ]),
        125,
        "unknown syscall \"fly_away\"",
    );
    assert_fails(
        &sb.run(&["--security-opt", "apparmor=x", "true"]),
        125,
        "invalid --security-opt",
    );
}

#[test]
fn host_views_are_masked_and_tunables_read_only() {
    let sb = sandbox();
    let out = sb.ok(&[
        "sh",
        "-c",
        "for f in /proc/keys /proc/timer_list /proc/sched_debug; do \
           [ -e $f ] && echo \"$f $(wc -c < $f)\"; done; \
         echo firmware $(ls /sys/firmware | wc -l); \
         echo 1 > /proc/sys/kernel/panic 2>/dev/null && echo WROTE-SYSCTL; \
         echo h > /proc/sysrq-trigger 2>/dev/null && echo WROTE-SYSRQ; \
         mount -t proc proc /mnt 2>/dev/null && echo MOUNTED-PROC; \
         echo done",
    ]);
    for line in out.lines().filter(|l| l.starts_with("/proc/")) {
        assert!(line.ends_with(" 0"), "not masked: {line}");
    }
    assert!(out.contains("firmware 0\n"), "{out}");
    for escape in ["WROTE-SYSCTL", "WROTE-SYSRQ", "MOUNTED-PROC"] {
        assert!(!out.contains(escape), "{escape}: {out}");
    }
    assert!(out.ends_with("done\n"));
    // --privileged lifts the masks.
    let out = sb.ok(&["--privileged", "sh", "-c", "ls /sys/firmware | wc -l"]);
    assert_ne!(out.trim(), "0", "privileged containers see /sys/firmware");
}

#[test]
fn raw_sockets_need_net_raw() {
    let sb = sandbox();
    assert_eq!(probe_in(&sb, &[], &["raw"])["raw"], "OK");
    assert_eq!(
        probe_in(&sb, &["--cap-drop", "NET_RAW"], &["raw"])["raw"],
        "EPERM"
    );
}

#[test]
fn devices_outside_the_default_set_cannot_be_opened() {
    // The devices cgroup (v1) lets a container make any device node but
    // open only docker's default set: not the host's disk.
    if !Path::new("/sys/fs/cgroup/devices").is_dir() {
        eprintln!("no v1 devices controller; the v2 device filter is not built yet");
        return;
    }
    let sb = sandbox();
    // A device the host itself may open (this may be a sandboxed VM that
    // refuses its own disk): the root filesystem's disk, else loop-control.
    let root_dev = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .map(|l| l.split(' ').nth(2).unwrap().to_string())
        .unwrap();
    let (major, minor) = root_dev.split_once(':').unwrap();
    let candidates = [
        ("b", major.to_string(), minor.to_string(), "the host's disk"),
        (
            "c",
            "10".to_string(),
            "237".to_string(),
            "/dev/loop-control",
        ),
    ];
    let host_can_open = |kind: &str, ma: &str, mi: &str| {
        let node = sb.dir.path().join("probe-node");
        let _ = std::fs::remove_file(&node);
        let ok = Command::new("mknod")
            .arg(&node)
            .args([kind, ma, mi])
            .status()
            .is_ok_and(|s| s.success())
            && std::fs::File::open(&node).is_ok();
        let _ = std::fs::remove_file(&node);
        ok
    };
    let Some((kind, major, minor, what)) = candidates
        .iter()
        .find(|(k, ma, mi, _)| host_can_open(k, ma, mi))
    else {
        eprintln!("the host may open none of the candidate devices; skipped");
        return;
    };
    let script = format!("mknod /dev/probe {kind} {major} {minor} && probe open:/dev/probe");
    let out = sb.ok(&["sh", "-c", &script]);
    assert_eq!(
        out, "open:/dev/probe=EPERM\n",
        "{what} in a default container"
    );
    let out = sb.ok(&["--privileged", "sh", "-c", &script]);
    assert_eq!(
        out, "open:/dev/probe=OK\n",
        "{what} in a privileged container"
    );
}

#[test]
fn user_namespace_remaps_root() {
    let sb = sandbox();
    let marker = "4.271828";
    let rootfs = sb.rootfs.to_str().unwrap().to_string();
    let child = sb
        .cmd(&[
            "run",
            "--rm",
            "--rootfs",
            &rootfs,
            "--userns-remap=200000:65536",
            "sh",
            "-c",
            &format!(
                "id -u; cat /proc/self/uid_map; stat -c '%u' /bin/busybox; \
                 touch /made-inside; cat /dev/null && echo devnull; \
                 probe init_module mount; sleep {marker}"
            ),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // From the host, the container's processes run as the remapped uid.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let host_uid = loop {
        // The sleep itself, not containr (whose command line holds the
        // marker too).
        let found = common::processes_with(marker);
        if let Some(line) = found.iter().find(|l| l.contains(": sleep ")) {
            let pid = line.split(':').next().unwrap();
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            if let Some(uid) = status.lines().find(|l| l.starts_with("Uid:")) {
                break uid.split_whitespace().nth(1).unwrap().to_string();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the container never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(host_uid, "200000");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0", "root inside: {text}");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", "200000", "65536"]
    );
    // The idmapped rootfs: host-root files belong to container root...
    assert_eq!(lines[2], "0", "{text}");
    assert!(text.contains("devnull\n"), "{text}");
    // ...and root in the namespace is not root of the host.
    assert!(
        text.contains("init_module=EPERM") && text.contains("mount=EPERM"),
        "{text}"
    );
    // What it wrote is stored as the host's root, not as 200000.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(sb.rootfs.join("made-inside"))
            .unwrap()
            .uid(),
        0
    );
    assert_fails(
        &sb.run(&["--userns-remap=0", "true"]),
        125,
        "invalid --userns-remap",
    );
}

/// CVE-2019-5736: the init's binary (what /proc/1/exe leads to) is on a
/// read-only mount, so even a privileged container, which may follow that
/// link, cannot write the host's containr through it; its rootfs is not
/// read-only, so the probe tells the two apart. (--init: the init stays
/// PID 1 for the container's life.)
#[test]
fn init_binary_is_on_a_read_only_mount() {
    let sb = sandbox();
    let r = probe_in(
        &sb,
        &["--init", "--privileged"],
        &["rdonly:/proc/1/exe", "rdonly:/bin/probe"],
    );
    assert_eq!(r["rdonly:/proc/1/exe"], "yes", "{r:?}");
    assert_eq!(r["rdonly:/bin/probe"], "no", "{r:?}");
}

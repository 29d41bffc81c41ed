//! Real engines driving containr as their OCI runtime: Debian's podman
//! (`--runtime`) and containerd (`ctr run --runc-binary`), each on storage
//! of the test's own, checking what a user of those engines would see.
//!
//! The runtime is `containr-oci` (a symlink to the built containr, made
//! here), or whatever `OCI_RUNTIME` names: `OCI_RUNTIME=/usr/bin/runc`
//! proves the harness itself against the reference runtime.
//!
//! Host facts the harness works around, written down where they are set:
//! - podman's default rlimits for root exceed what this process may grant
//!   (see [`Podman::new`]);
//! - rootful podman's `--userns=auto` needs `containers` in /etc/subuid,
//!   which the tests do not write: they map ids explicitly (`--uidmap`);
//! - published ports go through slirp4netns, so no bridge or firewall rule
//!   is left on the host and the traffic stays on 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Sandbox;
use common::pty::{Term, winsize};

/// Longest any one client command may take.
const TIMEOUT: Duration = Duration::from_secs(60);
/// The image every test runs: the test rootfs, saved by containr.
const IMAGE: &str = "docker.io/library/bb:1";

/// The runtime under test: `OCI_RUNTIME`, or `containr-oci` next to the
/// built binary (made here if missing).
fn runtime() -> PathBuf {
    if let Some(path) = std::env::var_os("OCI_RUNTIME") {
        return PathBuf::from(path);
    }
    let link = Path::new(common::BIN).with_file_name("containr-oci");
    match std::os::unix::fs::symlink("containr", &link) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => panic!("symlink {}: {e}", link.display()),
    }
    link
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Run `cmd` to completion within [`TIMEOUT`], killing it after.
fn output_within(mut cmd: Command) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let (out, err) = (drain(Box::new(out)), drain(Box::new(err)));
    let status = wait_within(&mut child, &what);
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Wait for `child` within [`TIMEOUT`]; kill it and fail the test after.
fn wait_within(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Poll `check` every 50 ms for up to 15 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within 15 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A name of this test's own, for its cgroup parent and containerd
/// namespace: the sandbox directory's.
fn unique(sb: &Sandbox) -> String {
    sb.dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Remove the cgroup `/name` (and its `children` the engine, not the
/// runtime, made) from every hierarchy; the paths that would not go,
/// which means the runtime left a container's cgroup behind.
fn remove_cgroup_parent(name: &str, children: &[&str]) -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut left = Vec::new();
    for line in mounts.lines() {
        let Some((fields, fs)) = line.split_once(" - ") else {
            continue;
        };
        if !matches!(fs.split(' ').next(), Some("cgroup" | "cgroup2")) {
            continue;
        }
        // Relative to the hierarchy's mount: `name` is given as the
        // engine takes it, `/name` (which `join` would take as the whole
        // path, missing every directory and removing nothing).
        let parent =
            Path::new(fields.split(' ').nth(4).unwrap()).join(name.trim_start_matches('/'));
        let dirs = children.iter().map(|c| parent.join(c));
        for dir in dirs.chain([parent.clone()]) {
            match std::fs::remove_dir(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    left.push(format!("{}: {e}", dir.display()))
                }
                _ => {}
            }
        }
    }
    left
}

/// The test rootfs as an image archive written by `containr save`.
fn saved_image(sb: &Sandbox) -> PathBuf {
    let tar = sb.rootfs_tar("rootfs.tar");
    sb.containr_ok(&["import", "-c", r#"CMD ["sh"]"#, p(&tar), "bb:1"]);
    let file = sb.dir.path().join("image.tar");
    sb.containr_ok(&["save", "-o", p(&file), "bb:1"]);
    file
}

/// An unused TCP port on 127.0.0.1.
fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// podman with every file of its own (storage, run dir, events, temp
/// files, network config) under the sandbox, and the image loaded.
struct Podman {
    dir: PathBuf,
    runtime: PathBuf,
    /// The cgroup parent of this test's containers (and conmons).
    cgroup_parent: String,
}

impl Podman {
    fn new(sb: &Sandbox) -> Podman {
        let dir = sb.dir.path().join("podman");
        for d in ["tmp", "net", "root", "run"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        // For root, podman asks for nofile=1048576 and nproc=4194304, and
        // sets its own nproc hard limit to pid_max; the runtime, without
        // CAP_SYS_RESOURCE here (the machine's container drops it), cannot
        // raise a hard limit, so runc fails "error setting rlimit type 7:
        // operation not permitted". Ask for what may be granted.
        let hard = |r| nix::sys::resource::getrlimit(r).unwrap().1;
        let nofile = hard(nix::sys::resource::Resource::RLIMIT_NOFILE);
        let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let nproc = hard(nix::sys::resource::Resource::RLIMIT_NPROC).min(pid_max);
        std::fs::write(
            dir.join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \
                 \"nproc={nproc}:{nproc}\"]\n\
                 [network]\nnetwork_backend = \"cni\"\nnetwork_config_dir = \"{0}/net\"\n\
                 [engine]\ntmp_dir = \"{0}/tmp\"\nevents_logger = \"file\"\n\
                 cgroup_manager = \"cgroupfs\"\n",
                dir.display()
            ),
        )
        .unwrap();
        // vfs: the containers' root filesystems are plain copies, so a
        // failed test leaves no mount behind.
        std::fs::write(
            dir.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\nrunroot = \"{0}/run\"\ngraphroot = \"{0}/root\"\n",
                dir.display()
            ),
        )
        .unwrap();
        let podman = Podman {
            dir,
            runtime: runtime(),
            cgroup_parent: format!("/{}", unique(sb)),
        };
        let image = saved_image(sb);
        let out = podman.ok(&["load", "-q", "-i", p(&image)]);
        assert!(out.contains(IMAGE), "podman load said {out:?}");
        podman
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.arg("--runtime")
            .arg(&self.runtime)
            .args(args)
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .env("TMPDIR", self.dir.join("tmp"));
        c
    }

    fn output(&self, args: &[&str]) -> Output {
        output_within(self.cmd(args))
    }

    /// `podman ARGS`, expecting success; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "podman {args:?} failed with {:?}: {}",
            out.status.code(),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `podman run` with this test's cgroup parent, then `args`.
    fn run_cmd(&self, args: &[&str]) -> Command {
        let mut full = vec!["run", "--cgroup-parent", &self.cgroup_parent];
        full.extend_from_slice(args);
        self.cmd(&full)
    }

    /// `podman run --rm IMAGE sh -c SCRIPT` with `flags` before the image.
    fn sh(&self, flags: &[&str], script: &str) -> Output {
        let mut args = vec!["--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
        output_within(self.run_cmd(&args))
    }

    /// `podman run -d ARGS`, expecting success.
    fn detached(&self, args: &[&str]) {
        let mut full = vec!["-d"];
        full.extend_from_slice(args);
        let out = output_within(self.run_cmd(&full));
        assert!(out.status.success(), "podman run -d {args:?}: {out:?}");
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let out = self.output(&["rm", "--all", "--force", "--time", "0"]);
        let left = self.output(&["ps", "--all", "--quiet"]);
        let cgroups = remove_cgroup_parent(&self.cgroup_parent, &["conmon"]);
        if !std::thread::panicking() {
            assert!(out.status.success(), "podman rm: {}", text(&out.stderr));
            assert_eq!(text(&left.stdout), "", "podman containers left");
            assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
        }
    }
}

/// Assert `out` exited `code` with `stdout`.
fn assert_run(out: &Output, code: i32, stdout: &str) {
    assert_eq!(
        (out.status.code(), text(&out.stdout).as_str()),
        (Some(code), stdout),
        "stderr: {}",
        text(&out.stderr)
    );
}

#[test]
fn podman_run_rm_output_and_exit_codes() {
    let sb = Sandbox::new();
    let podman = Podman::new(&sb);
    let out = podman.sh(&[], "echo hi; echo oops >&2; exit 3");
    assert_run(&out, 3, "hi\n");
    assert!(text(&out.stderr).contains("oops"), "{out:?}");
    // docker's codes: 127 for a command that is not there, 126 for one
    // that cannot be run. podman takes them from the runtime's error text.
    let out = output_within(podman.run_cmd(&["--rm", IMAGE, "nosuch"]));
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    let out = output_within(podman.run_cmd(&["--rm", IMAGE, "/etc/passwd"]));
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    assert_eq!(podman.ok(&["ps", "--all", "--quiet"]), "", "--rm removes");
}

#[test]
fn podman_detached_exec_logs_stop_rm() {
    let sb = Sandbox::new();
    let podman = Podman::new(&sb);
    let script = r#"echo started; trap "echo bye; exit 0" TERM; while :; do sleep 0.1; done"#;
    podman.detached(&["--name", "web", IMAGE, "sh", "-c", script]);
    let out = podman.output(&["exec", "web", "sh", "-c", "echo in $(hostname); exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let hostname = podman.ok(&["inspect", "--format", "{{.Config.Hostname}}", "web"]);
    assert_eq!(text(&out.stdout), format!("in {hostname}"));
    eventually("logs show the start", || {
        podman.ok(&["logs", "web"]) == "started\n"
    });
    podman.ok(&["stop", "--time", "10", "web"]);
    let state = podman.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "web",
    ]);
    assert_eq!(state, "exited 0\n", "the TERM trap ran and exited 0");
    assert_eq!(podman.ok(&["logs", "web"]), "started\nbye\n");
    podman.ok(&["rm", "web"]);
    assert_eq!(podman.ok(&["ps", "--all", "--quiet"]), "");
}

#[test]
fn podman_run_it_on_a_terminal() {
    let sb = Sandbox::new();
    let podman = Podman::new(&sb);
    let mut t = Term::spawn(
        podman.run_cmd(&["--rm", "-it", IMAGE, "sh"]),
        winsize(30, 90),
    );
    t.expect("# ");
    t.send("tty; stty size; echo $((6*7)); exit 7\r");
    let status = t.wait();
    let out = t.text();
    assert!(out.contains("/dev/pts/0\r\n"), "{out:?}");
    assert!(out.contains("30 90\r\n"), "the window size: {out:?}");
    assert!(out.contains("42\r\n"), "{out:?}");
    assert_eq!(status.code(), Some(7), "{out:?}");
}

#[test]
fn podman_init_is_pid_1() {
    let sb = Sandbox::new();
    let podman = Podman::new(&sb);
    let out = podman.sh(&["--init"], "tr '\\0' ' ' < /proc/1/cmdline; echo; exit 4");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let pid1 = text(&out.stdout);
    assert!(pid1.starts_with("/run/podman-init -- sh -c"), "{pid1:?}");
}

#[test]
fn podman_memory_and_pids_limits_reach_the_cgroup() {
    let sb = Sandbox::new();
    let podman = Podman::new(&sb);
    // The container sees its own cgroup (v1: each controller mounted at
    // its cgroup; v2: the unified mount).
    let script = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null \
                  || cat /sys/fs/cgroup/memory.max; \
                  cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max";
    let out = podman.sh(&["--memory", "64m", "--pids-limit", "20"], script);
    assert_run(&out, 0, "67108864\n20\n");
    // The limit is enforced: ash gives up when its fork is refused.
    let script = "i=0; while [ $i -lt 30 ]; do sleep 1 & i=$((i+1)); done; echo made $i";
    let out = podman.sh(&["--pids-limit", "40"], script);
    assert_run(&out, 0, "made 30\n");
    let out = podman.sh(&["--pids-limit", "20"], script);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("can't fork"), "{out:?}");
}

#[test]
fn podman_cap_drop_takes_the_capability() {
    let sb = Sandbox::new();
    let podman = Podman::new(&sb);
    let script = "grep CapEff /proc/self/status; chown 1 /tmp && echo chowned";
    let out = podman.sh(&[], script);
    assert!(text(&out.stdout).ends_with("chowned\n"), "{out:?}");
    let out = podman.sh(&["--cap-drop", "CHOWN"], script);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{out:?}"
    );
    let eff = text(&out.stdout);
    let eff = u64::from_str_radix(eff.trim().trim_start_matches("CapEff:").trim(), 16).unwrap();
    assert_eq!(eff & 1, 0, "CAP_CHOWN (bit 0) still effective: {eff:x}");
}

#[test]
fn podman_publishes_a_port_on_127_0_0_1() {
    let sb = Sandbox::new();
    let podman = Podman::new(&sb);
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let script = "mkdir /www && echo hello from the container > /www/index.html \
                  && exec httpd -f -p 8080 -h /www";
    podman.detached(&[
        "--name",
        "web",
        "--network",
        "slirp4netns",
        "-p",
        &publish,
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    let mut body = String::new();
    eventually("the published port answers", || {
        let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
            return false;
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        body.clear();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok()
            && s.read_to_string(&mut body).is_ok()
            && body.contains("hello from the container")
    });
    assert!(
        body.lines().next().unwrap().ends_with(" 200 OK"),
        "{body:?}"
    );
    podman.ok(&["rm", "--force", "--time", "0", "web"]);
}

#[test]
fn podman_network_none_has_only_loopback() {
    let sb = Sandbox::new();
    let podman = Podman::new(&sb);
    let out = podman.sh(&["--network", "none"], "ls /sys/class/net");
    assert_run(&out, 0, "lo\n");
}

#[test]
fn podman_uidmap_puts_root_in_a_user_namespace() {
    let sb = Sandbox::new();
    let podman = Podman::new(&sb);
    let map = ["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"];
    let out = podman.sh(&map, "cat /proc/self/uid_map /proc/self/gid_map; id -u");
    let stdout = text(&out.stdout);
    let got: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        got,
        [
            vec!["0", "100000", "65536"],
            vec!["0", "100000", "65536"],
            vec!["0"]
        ],
        "{out:?}"
    );
}

/// A containerd of the test's own: config, root, state, socket and the
/// runtime's state under the sandbox; stopped and cleaned when dropped.
struct Containerd {
    dir: PathBuf,
    child: Child,
    runtime: PathBuf,
    /// /run/containerd did not exist before: the shims' socket directory
    /// (fixed at /run/containerd/s in 1.6) is removed again.
    made_run_dir: bool,
    /// The containerd namespace, which is also the containers' cgroup
    /// parent.
    ns: String,
}

impl Containerd {
    fn start(sb: &Sandbox) -> Containerd {
        let dir = sb.dir.path().join("containerd");
        std::fs::create_dir_all(dir.join("fifo")).unwrap();
        let made_run_dir = !Path::new("/run/containerd").exists();
        std::fs::write(
            dir.join("config.toml"),
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\naddress = \"{0}/containerd.sock\"\n\
                 [ttrpc]\naddress = \"{0}/ttrpc.sock\"\n\
                 [debug]\naddress = \"\"\n[metrics]\naddress = \"\"\n",
                dir.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd (scripts/deps test installs it)");
        let ctd = Containerd {
            dir,
            child,
            runtime: runtime(),
            made_run_dir,
            ns: unique(sb),
        };
        eventually("containerd serves its socket", || {
            ctd.ctr(&["version"]).status.success()
        });
        let image = saved_image(sb);
        let out = ctd.ctr_ok(&["image", "import", p(&image)]);
        assert!(out.contains(IMAGE), "ctr image import said {out:?}");
        ctd
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.dir.join("containerd.sock"))
            .arg("--namespace")
            .arg(&self.ns)
            .args(args);
        c
    }

    fn ctr(&self, args: &[&str]) -> Output {
        output_within(self.cmd(args))
    }

    fn ctr_ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?} failed with {:?}: {}",
            out.status.code(),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `ctr run` with the runtime under test, its state and fifos here.
    fn run_cmd(&self, flags: &[&str], id: &str, args: &[&str]) -> Command {
        let root = self.dir.join("runtime-root");
        let fifo = self.dir.join("fifo");
        let mut full = vec![
            "run",
            "--runc-binary",
            p(&self.runtime),
            "--runc-root",
            p(&root),
            "--fifo-dir",
            p(&fifo),
        ];
        full.extend_from_slice(flags);
        full.extend_from_slice(&[IMAGE, id]);
        full.extend_from_slice(args);
        self.cmd(&full)
    }

    fn task_status(&self, id: &str) -> Option<String> {
        let out = self.ctr_ok(&["task", "ls"]);
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2).map(String::from))
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // A failed test's containers: their shims outlive containerd.
        if let Ok(tasks) = std::str::from_utf8(&self.ctr(&["task", "ls", "--quiet"]).stdout) {
            for id in tasks.lines() {
                self.ctr(&["task", "delete", "--force", id]);
            }
        }
        if let Ok(ids) = std::str::from_utf8(&self.ctr(&["container", "ls", "--quiet"]).stdout) {
            for id in ids.lines() {
                self.ctr(&["container", "delete", id]);
            }
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        wait_within(&mut self.child, "containerd");
        // Snapshots of a killed test's containers stay mounted.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let here = p(&self.dir).to_string();
        for m in mounts.lines().rev() {
            if let Some(target) = m.split(' ').nth(4)
                && target.starts_with(&here)
            {
                let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        if self.made_run_dir {
            // Empty unless another containerd uses it meanwhile.
            let _ = std::fs::remove_dir("/run/containerd/s");
            let _ = std::fs::remove_dir("/run/containerd");
        }
        let cgroups = remove_cgroup_parent(&self.ns, &[]);
        if !std::thread::panicking() {
            assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
        }
    }
}

#[test]
fn containerd_ctr_run_exec_kill() {
    let sb = Sandbox::new();
    let ctd = Containerd::start(&sb);
    let out = output_within(ctd.run_cmd(&["--rm"], "once", &["sh", "-c", "echo hi; exit 3"]));
    assert_run(&out, 3, "hi\n");
    let out = output_within(ctd.run_cmd(&["--rm"], "missing", &["nosuch"]));
    assert!(
        !out.status.success(),
        "a missing command must fail: {out:?}"
    );

    // Attached, as `ctr run` is; exec into it and kill it from outside.
    let script = r#"trap "echo got TERM; exit 9" TERM; echo ready; while :; do sleep 0.1; done"#;
    let mut run = ctd.run_cmd(&["--rm"], "long", &["sh", "-c", script]);
    run.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = run.spawn().unwrap();
    eventually("the task runs", || {
        ctd.task_status("long").as_deref() == Some("RUNNING")
    });
    let fifo = ctd.dir.join("fifo");
    let out = ctd.ctr(&[
        "task",
        "exec",
        "--fifo-dir",
        p(&fifo),
        "--exec-id",
        "e1",
        "long",
        "sh",
        "-c",
        "cat /proc/1/cmdline; exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(text(&out.stdout).starts_with("sh\0-c\0trap"), "{out:?}");
    ctd.ctr_ok(&["task", "kill", "--signal", "SIGTERM", "long"]);
    let status = wait_within(&mut child, "ctr run");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(status.code(), Some(9), "{stdout}");
    assert_eq!(stdout, "ready\ngot TERM\n");

    // SIGKILL: 128 + 9.
    let out = output_within(ctd.run_cmd(&["-d"], "bg", &["sleep", "60"]));
    assert!(out.status.success(), "{out:?}");
    ctd.ctr_ok(&["task", "kill", "--signal", "SIGKILL", "bg"]);
    eventually("the task stops", || {
        ctd.task_status("bg").as_deref() == Some("STOPPED")
    });
    let out = ctd.ctr(&["task", "delete", "bg"]);
    assert!(text(&out.stderr).contains("exit code 137"), "{out:?}");
    ctd.ctr_ok(&["container", "delete", "bg"]);
    assert_eq!(ctd.ctr_ok(&["container", "ls", "--quiet"]), "");
}

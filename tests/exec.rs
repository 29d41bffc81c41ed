//! `exec`, `top`, `pause` and `unpause` on containers of an attached
//! `containr run`: each checked from the host, on what the kernel says
//! (namespace links, cgroup membership, /proc status, the freezer).

mod common;

use std::process::{Child, Output};
use std::time::{Duration, Instant};

use common::pty::{Term, winsize};
use common::{Sandbox, assert_fails, cpu_ticks, freezer_state, processes_with};

/// A container running `sleep` (or `cmd`) under an attached `containr
/// run --rm`, killed and waited for when dropped.
struct Running<'a> {
    sb: &'a Sandbox,
    name: &'static str,
    run: Child,
}

impl<'a> Running<'a> {
    fn start(sb: &'a Sandbox, name: &'static str, args: &[&str]) -> Running<'a> {
        let mut full = vec![
            "run",
            "--rm",
            "--rootfs",
            sb.rootfs.to_str().unwrap(),
            "--name",
            name,
        ];
        full.extend_from_slice(args);
        let run = sb.cmd(&full).spawn().expect("spawn containr run");
        let r = Running { sb, name, run };
        // Running once its command runs: exec succeeds.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !r.exec(&["true"]).status.success() {
            assert!(Instant::now() < deadline, "container {name} never ran");
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn exec(&self, args: &[&str]) -> Output {
        self.exec_with(&[], args)
    }

    /// `containr exec FLAGS NAME ARGS...`.
    fn exec_with(&self, flags: &[&str], args: &[&str]) -> Output {
        let mut full = vec!["exec"];
        full.extend_from_slice(flags);
        full.push(self.name);
        full.extend_from_slice(args);
        self.sb.cmd(&full).output().expect("spawn containr exec")
    }

    fn ok(&self, flags: &[&str], args: &[&str]) -> String {
        let out = self.exec_with(flags, args);
        assert!(
            out.status.success(),
            "exec {flags:?} {args:?}: {:?} {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The host pid of the container's init, from `inspect`.
    fn init_pid(&self) -> u32 {
        let out = self.sb.containr_ok(&["inspect", self.name]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v[0]["State"]["Pid"].as_u64().expect("a pid") as u32
    }

    fn inspect(&self) -> serde_json::Value {
        let out = self.sb.containr_ok(&["inspect", self.name]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v[0].clone()
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.sb.cmd(&["rm", "-f", self.name]).output();
        let _ = self.run.wait();
    }
}

/// The host pid of the one process whose command line has `marker`,
/// waited for.
fn host_pid(marker: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = processes_with(marker);
        if let Some(p) = found.iter().find(|p| !p.contains("containr")) {
            return p.split(':').next().unwrap().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no process {marker:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn status_field(pid: u32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

fn ns(pid: u32, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn exec_joins_the_namespaces_cgroup_and_confinement() {
    let sb = Sandbox::new();
    // Sleeps of lengths no other test uses: found on the host by them.
    let c = Running::start(&sb, "joined", &["--cap-drop", "NET_RAW", "sleep", "1100"]);
    let init = c.init_pid();
    let command = host_pid("sleep 1100");
    assert_eq!(c.ok(&["-d"], &["sleep", "1101"]), "");
    let exec = host_pid("sleep 1101");
    for name in ["pid", "net", "mnt", "uts", "ipc", "cgroup"] {
        assert_eq!(ns(exec, name), ns(init, name), "{name} namespace");
        assert_ne!(ns(exec, name), ns(std::process::id(), name), "{name}");
    }
    let cgroup = |pid| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cgroup(exec), cgroup(command));
    // The container's confinement, not the host's.
    for field in ["CapEff", "CapBnd", "NoNewPrivs", "Seccomp"] {
        assert_eq!(
            status_field(exec, field),
            status_field(command, field),
            "{field}"
        );
    }
    assert_eq!(status_field(exec, "Seccomp"), "2");
    let ours = status_field(std::process::id(), "CapEff");
    assert_ne!(status_field(exec, "CapEff"), ours);
    // Seen from inside: PID 1 is the container's init, the exec'd
    // process is one of its processes.
    let ps = c.ok(&[], &["ps", "-o", "pid,args"]);
    assert!(
        ps.contains("sleep 1100") && ps.contains("sleep 1101"),
        "{ps}"
    );
    // --privileged: every capability (ours), no filter.
    let status = c.ok(&["--privileged"], &["cat", "/proc/self/status"]);
    assert!(status.contains("Seccomp:\t0"), "{status}");
    assert!(status.contains(&format!("CapEff:\t{ours}")), "{status}");
}

#[test]
fn exec_takes_the_containers_env_user_and_workdir() {
    let sb = Sandbox::new();
    let c = Running::start(
        &sb,
        "envs",
        &[
            "-e",
            "FOO=bar",
            "-u",
            "1000:1000",
            "-w",
            "/tmp",
            "sleep",
            "1000",
        ],
    );
    let env = c.ok(&[], &["env"]);
    assert!(env.contains("FOO=bar\n") && env.contains("PATH="), "{env}");
    assert_eq!(c.ok(&[], &["id", "-u"]), "1000\n");
    assert_eq!(c.ok(&[], &["pwd"]), "/tmp\n");
    let env_file = sb.dir.path().join("env");
    std::fs::write(&env_file, "FROMFILE=1\nFOO=file\n").unwrap();
    let out = c.ok(
        &[
            "-e",
            "FOO=baz",
            "--env-file",
            env_file.to_str().unwrap(),
            "-u",
            "0",
            "-w",
            "/etc",
        ],
        &["sh", "-c", "echo $FOO $FROMFILE; id -u; pwd"],
    );
    assert_eq!(out, "baz 1\n0\n/etc\n");
    assert_fails(
        &c.exec_with(&["-w", "relative"], &["true"]),
        1,
        "absolute path",
    );
}

#[test]
fn exec_returns_the_status_and_dockers_126_127() {
    let sb = Sandbox::new();
    let c = Running::start(&sb, "statuses", &["sleep", "1000"]);
    assert_eq!(c.exec(&["true"]).status.code(), Some(0));
    assert_eq!(c.exec(&["sh", "-c", "exit 7"]).status.code(), Some(7));
    assert_fails(&c.exec(&["nope"]), 127, "executable file not found");
    assert_fails(&c.exec(&["/etc/passwd"]), 126, "permission denied");
}

#[test]
fn commands_on_an_unknown_container_exit_1_as_docker_s() {
    let sb = Sandbox::new();
    for args in [
        &["exec", "nosuch", "true"][..],
        &["exec", "-it", "nosuch", "sh"],
        &["top", "nosuch"],
        &["pause", "nosuch"],
        &["unpause", "nosuch"],
        &["kill", "nosuch"],
        &["stop", "nosuch"],
        &["restart", "nosuch"],
        &["start", "nosuch"],
        &["start", "-a", "nosuch"],
        &["wait", "nosuch"],
        &["logs", "nosuch"],
        &["attach", "nosuch"],
        &["port", "nosuch"],
        &["rename", "nosuch", "other"],
    ] {
        let out = sb.cmd(args).output().unwrap();
        eprintln!("{args:?}");
        assert_fails(&out, 1, "No such container: nosuch");
    }
}

#[test]
fn exec_into_a_stopped_container_fails_with_status_1() {
    let sb = Sandbox::new();
    let out = sb
        .cmd(&[
            "run",
            "--rootfs",
            sb.rootfs.to_str().unwrap(),
            "--name",
            "done",
            "true",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_fails(
        &sb.cmd(&["exec", "done", "true"]).output().unwrap(),
        1,
        "is not running",
    );
    assert_fails(
        &sb.cmd(&["top", "done"]).output().unwrap(),
        1,
        "is not running",
    );
    assert_fails(
        &sb.cmd(&["pause", "done"]).output().unwrap(),
        1,
        "is not running",
    );
    sb.containr_ok(&["rm", "done"]);
}

#[test]
fn exec_t_runs_on_a_pty() {
    let sb = Sandbox::new();
    let c = Running::start(&sb, "tty", &["sleep", "1000"]);
    let mut term = Term::spawn(sb.cmd(&["exec", "-it", "tty", "sh"]), winsize(30, 100));
    term.send("tty; stty size; echo $TERM; exit 3\n");
    term.expect("/dev/pts/");
    term.expect("30 100");
    term.expect("xterm");
    assert_eq!(term.wait().code(), Some(3));
    // Without -t: no terminal.
    assert_eq!(c.exec(&["tty"]).status.code(), Some(1));
}

#[test]
fn exec_d_returns_at_once_and_leaves_the_process_running() {
    let sb = Sandbox::new();
    let c = Running::start(&sb, "detached", &["sleep", "1000"]);
    let t0 = Instant::now();
    let out = c.exec_with(&["-d"], &["sh", "-c", "echo hi > /tmp/marker; sleep 5"]);
    assert!(out.status.success() && out.stdout.is_empty());
    assert!(t0.elapsed() < Duration::from_secs(4));
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.ok(&[], &["cat", "/tmp/marker"]) != "hi\n" {
        assert!(Instant::now() < deadline, "the detached process never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(c.ok(&[], &["ps"]).contains("sleep 5"));
}

#[test]
fn exec_never_hands_a_host_fd_to_the_process() {
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new();
    let c = Running::start(&sb, "fds", &["sleep", "1000"]);
    // A host directory open on fd 7 of `containr exec`, not close-on-exec:
    // what CVE-2024-21626 leaked.
    let mut cmd = sb.cmd(&["exec", "fds", "ls", "-l", "/proc/self/fd"]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let fd = libc::open(c"/".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
            if fd >= 0 && fd != 7 {
                libc::dup2(fd, 7);
                libc::close(fd);
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fds: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(8))
        .collect();
    // stdio, and ls's own directory handle (3).
    assert_eq!(fds, ["0", "1", "2", "3"], "{text}");
    assert!(!text.contains("7 ->"), "{text}");
    // Its working directory and root are the container's.
    let out = c.ok(
        &[],
        &[
            "sh",
            "-c",
            "ls -d /proc/self/cwd/rootfs /proc/self/cwd/data 2>&1; pwd",
        ],
    );
    assert!(
        out.ends_with("/\n") && out.contains("No such file"),
        "{out}"
    );
}

#[test]
fn top_lists_the_containers_processes_only() {
    let sb = Sandbox::new();
    let c = Running::start(&sb, "topped", &["sleep", "1200"]);
    c.ok(&["-d"], &["sleep", "1202"]);
    host_pid("sleep 1202");
    let out = sb.containr_ok(&["top", "topped"]);
    let mut lines = out.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    let rows: Vec<&str> = lines.collect();
    assert!(rows.iter().any(|r| r.ends_with("sleep 1200")), "{out}");
    assert!(rows.iter().any(|r| r.ends_with("sleep 1202")), "{out}");
    let pid = |r: &&str| r.split_whitespace().nth(1).unwrap().parse::<u32>().unwrap();
    assert!(
        rows.iter()
            .map(pid)
            .all(|p| p != std::process::id() && p != 1)
    );
    assert!(rows.iter().map(pid).any(|p| p == c.init_pid()));
    // ps options pass through.
    let out = sb.containr_ok(&["top", "topped", "-o", "pid,comm"]);
    assert!(out.starts_with("PID") && out.contains("sleep"), "{out}");
}

#[test]
fn pause_stops_every_process_until_unpause() {
    let sb = Sandbox::new();
    let c = Running::start(&sb, "paused", &["sh", "-c", "while :; do :; done"]);
    let busy = host_pid("while :; do :; done");
    assert_eq!(sb.containr_ok(&["pause", "paused"]), "paused\n");
    assert_eq!(freezer_state(busy), "FROZEN");
    let before = cpu_ticks(busy);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(busy), before, "a paused process ran");
    let ps = sb.containr_ok(&["ps"]);
    assert!(ps.contains("(Paused)"), "{ps}");
    let state = &c.inspect()["State"];
    assert_eq!(
        (state["Paused"].as_bool(), state["Status"].as_str()),
        (Some(true), Some("paused"))
    );
    assert_fails(&c.exec(&["true"]), 1, "is paused");
    assert_fails(
        &sb.cmd(&["pause", "paused"]).output().unwrap(),
        1,
        "already paused",
    );

    assert_eq!(sb.containr_ok(&["unpause", "paused"]), "paused\n");
    assert_eq!(freezer_state(busy), "THAWED");
    let deadline = Instant::now() + Duration::from_secs(5);
    while cpu_ticks(busy) == before {
        assert!(Instant::now() < deadline, "the process never ran again");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!c.inspect()["State"]["Paused"].as_bool().unwrap());
    assert_fails(
        &sb.cmd(&["unpause", "paused"]).output().unwrap(),
        1,
        "is not paused",
    );
    // Paused again, then removed by force: SIGKILL reaches it.
    sb.containr_ok(&["pause", "paused"]);
    let t0 = Instant::now();
    sb.containr_ok(&["rm", "-f", "paused"]);
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(processes_with("while :; do :; done").is_empty());
}

#[test]
fn exec_joins_a_user_namespace_too() {
    let sb = Sandbox::new();
    let c = Running::start(
        &sb,
        "remapped",
        &["--userns-remap=200000:65536", "sleep", "1000"],
    );
    let out = c.ok(&[], &["sh", "-c", "cat /proc/self/uid_map; id -u"]);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, ["0", "200000", "65536", "0"], "{out}");
    assert_eq!(c.ok(&["-u", "1000"], &["id", "-u"]), "1000\n");
}

#[test]
fn a_paused_container_whose_run_is_killed_is_settled() {
    let sb = Sandbox::new();
    let mut c = Running::start(
        &sb,
        "orphan",
        &["sh", "-c", "while :; do sleep 0.01; done # orphan"],
    );
    let id = c.inspect()["Id"].as_str().unwrap().to_string();
    sb.containr_ok(&["pause", "orphan"]);
    let busy = host_pid("# orphan");
    assert_eq!(freezer_state(busy), "FROZEN");
    c.run.kill().unwrap();
    c.run.wait().unwrap();
    // The next command settles it: thawed, so the init's pending SIGKILL
    // lands, and its cgroups removed (the freezer's too).
    sb.containr_ok(&["ps", "-a"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_with("# orphan").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the paused container outlived its run"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    if let Some(path) = own
        .lines()
        .find_map(|l| l.split_once(":freezer:").map(|(_, p)| p))
    {
        let dir = format!("/sys/fs/cgroup/freezer{path}/containr/{id}").replace("//", "/");
        assert!(!std::path::Path::new(&dir).exists(), "{dir} left");
    }
}

#[test]
fn exec_forwards_signals_to_the_process() {
    let sb = Sandbox::new();
    let _c = Running::start(&sb, "signals", &["sleep", "1000"]);
    let mut exec = sb
        .cmd(&[
            "exec",
            "signals",
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready > /tmp/ready; while :; do sleep 0.05; done",
        ])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sb
        .cmd(&["exec", "signals", "cat", "/tmp/ready"])
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "the process never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(exec.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(exec.wait().unwrap().code(), Some(42));
}

/// The /etc files are the bundle's (`containers/<id>/`), written once and
/// bound into the container: the container may write its /etc/hosts (even
/// with `--read-only`, as docker's), `exec` sees what it wrote, and so
/// does the file in the bundle. With `--userns-remap` they are container
/// root's (idmapped, like the other binds), and writable by it.
#[test]
fn etc_files_are_the_bundles_shared_with_exec() {
    let sb = Sandbox::new();
    for (name, flags) in [
        ("etc-plain", &["--read-only"][..]),
        ("etc-remap", &["--userns-remap=200000:65536"][..]),
    ] {
        let mut args = flags.to_vec();
        args.extend(["sleep", "1303"]);
        let c = Running::start(&sb, name, &args);
        let id = c.inspect()["Id"].as_str().unwrap().to_string();
        let out = c.ok(
            &[],
            &[
                "sh",
                "-c",
                "stat -c '%u:%g' /etc/hosts; echo '10.4.4.4 written-inside' >> /etc/hosts && echo wrote",
            ],
        );
        assert_eq!(out, "0:0\nwrote\n", "{name}");
        assert!(
            c.ok(&[], &["cat", "/etc/hosts"])
                .ends_with("10.4.4.4 written-inside\n"),
            "{name}: exec does not see the container's /etc/hosts"
        );
        let bundle = sb.data.join("containers").join(&id);
        let hosts = std::fs::read_to_string(bundle.join("hosts")).unwrap();
        assert!(
            hosts.ends_with("10.4.4.4 written-inside\n"),
            "{name}: {hosts}"
        );
        // Written once, there: its hostname file is the container's.
        assert_eq!(
            std::fs::read_to_string(bundle.join("hostname")).unwrap(),
            c.ok(&[], &["cat", "/etc/hostname"]),
        );
        // The rootfs's own /etc/hosts is untouched.
        assert!(
            !std::fs::read_to_string(sb.rootfs.join("etc/hosts"))
                .unwrap_or_default()
                .contains("written-inside")
        );
    }
}

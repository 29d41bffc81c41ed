//! containr-oci's commands on a running container: `exec`, `ps`, `pause`
//! and `resume`, `update`, `events`, checked against the container's
//! cgroup files and its processes on the real kernel.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::oci::{Oci, TIMEOUT, assert_error, read_terminal_until, receive_terminal, stderr};
use serde_json::Value;

/// A process that stays, alone, until killed.
const SLEEPER: &[&str] = &["sleep", "1000"];

/// A shell printing a line every 20 ms: its output stops while frozen.
const TICKER: &[&str] = &["sh", "-c", "while :; do echo tick; sleep 0.02; done"];

fn running(args: &[&str], name: &str) -> (Oci, String) {
    let oci = Oci::new(args);
    let id = oci.id(name);
    oci.create_ok(&id, &[]);
    oci.ok(&["start", &id]);
    oci.wait_status(&id, "running");
    (oci, id)
}

/// The container's cgroup directory of `controller` (v1), or its v2
/// directory.
fn cgroup_dir(oci: &Oci, id: &str, controller: &str) -> PathBuf {
    let dirs = oci.cgroup_dirs(id);
    dirs.iter()
        .find(|d| {
            d.components().any(|c| {
                c.as_os_str()
                    .to_str()
                    .unwrap()
                    .split(',')
                    .any(|n| n == controller)
            })
        })
        .or(if dirs.len() == 1 { dirs.first() } else { None })
        .unwrap_or_else(|| panic!("no {controller} cgroup among {dirs:?}"))
        .clone()
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

#[test]
fn ps_lists_the_cgroups_processes() {
    let (oci, id) = running(&["sh", "-c", "sleep 1000 & sleep 1000"], "ps");
    let procs = cgroup_dir(&oci, &id, "pids").join("cgroup.procs");
    let deadline = Instant::now() + TIMEOUT;
    while read(procs.clone()).lines().count() < 2 {
        assert!(Instant::now() < deadline, "the second process never came");
        std::thread::sleep(Duration::from_millis(10));
    }
    let json: Vec<i64> = serde_json::from_str(&oci.ok(&["ps", "--format", "json", &id])).unwrap();
    let mut want: Vec<i64> = read(procs).lines().map(|l| l.parse().unwrap()).collect();
    want.sort();
    assert_eq!(json, want);
    let pid = oci.state(&id)["pid"].as_i64().unwrap();
    assert!(
        json.contains(&pid),
        "{json:?} lacks the container's pid {pid}"
    );

    // The table: host ps's header, then exactly the container's lines.
    let table = oci.ok(&["ps", &id]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().contains("PID"), "{table}");
    let shown: Vec<i64> = lines
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(shown.len(), json.len(), "{table}");
    assert!(shown.iter().all(|p| json.contains(p)), "{table}");
    // ps options pass on to the host's ps.
    let table = oci.ok(&["ps", &id, "--", "-o", "pid,comm"]);
    assert!(
        table
            .lines()
            .skip(1)
            .all(|l| l.contains("sleep") || l.contains("sh")),
        "{table}"
    );

    oci.ok(&["delete", "--force", &id]);
    assert_error(&oci.out(&["ps", &id]), "does not exist");
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let (oci, id) = running(TICKER, "pause");
    oci.wait_output(&id, "tick");
    oci.ok(&["pause", &id]);
    assert_eq!(oci.status(&id), "paused");
    let freezer = oci
        .cgroup_dirs(&id)
        .into_iter()
        .map(|d| d.join("freezer.state"))
        .find(|f| f.exists());
    match freezer {
        Some(f) => assert_eq!(read(f), "FROZEN"),
        None => assert_eq!(read(cgroup_dir(&oci, &id, "").join("cgroup.freeze")), "1"),
    }
    // Frozen: nothing more is printed.
    let before = oci.output_of(&id).len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(oci.output_of(&id).len(), before, "it ran while paused");
    assert_error(&oci.out(&["pause", &id]), "is paused, not running");

    oci.ok(&["resume", &id]);
    assert_eq!(oci.status(&id), "running");
    let deadline = Instant::now() + TIMEOUT;
    while oci.output_of(&id).len() == before {
        assert!(Instant::now() < deadline, "it never ran again after resume");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_error(&oci.out(&["resume", &id]), "is running, not paused");

    // SIGKILL reaches a paused container (it is thawed after).
    oci.ok(&["pause", &id]);
    oci.ok(&["kill", &id, "KILL"]);
    oci.wait_status(&id, "stopped");
    oci.ok(&["delete", &id]);
}

#[test]
fn a_paused_container_is_deleted_by_force() {
    let (oci, id) = running(SLEEPER, "pausedel");
    oci.ok(&["pause", &id]);
    assert_error(&oci.out(&["delete", &id]), "not stopped");
    oci.ok(&["delete", "--force", &id]);
    assert_error(&oci.out(&["state", &id]), "does not exist");
}

#[test]
fn update_writes_the_cgroup_files() {
    let (oci, id) = running(SLEEPER, "update");
    oci.ok(&["update", "--memory", "48m", "--pids-limit", "20", &id]);
    let memory = cgroup_dir(&oci, &id, "memory");
    let pids = cgroup_dir(&oci, &id, "pids");
    let v2 = memory == pids;
    let (mem_file, pids_file) = if v2 {
        ("memory.max", "pids.max")
    } else {
        ("memory.limit_in_bytes", "pids.max")
    };
    assert_eq!(read(memory.join(mem_file)), (48u64 << 20).to_string());
    assert_eq!(read(pids.join(pids_file)), "20");

    // --resources - reads linux.resources from stdin.
    let mut child = oci
        .cmd(&["update", "--resources", "-", &id])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"pids": {"limit": 7}}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read(pids.join(pids_file)), "7");
    assert_eq!(read(memory.join(mem_file)), (48u64 << 20).to_string());

    // The container's recorded config follows.
    let state: Value =
        serde_json::from_slice(&std::fs::read(oci.root.join(&id).join("state.json")).unwrap())
            .unwrap();
    let recorded = &state["spec"]["linux"]["resources"];
    assert_eq!(recorded["pids"]["limit"], 7, "{recorded}");
    assert_eq!(recorded["memory"]["limit"], 48u64 << 20, "{recorded}");

    assert_error(&oci.out(&["update", "--memory", "lots", &id]), "--memory");
    oci.ok(&["delete", "--force", &id]);
}

#[test]
fn events_stats_match_the_cgroup() {
    let (oci, id) = running(SLEEPER, "events");
    oci.ok(&["update", "--memory", "40m", &id]);
    let line = oci.ok(&["events", "--stats", &id]);
    assert_eq!(line.lines().count(), 1, "{line}");
    let ev: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id.as_str());
    let data = &ev["data"];
    let pids = cgroup_dir(&oci, &id, "pids");
    assert_eq!(
        data["pids"]["current"].as_u64().unwrap().to_string(),
        read(pids.join("pids.current"))
    );
    assert_eq!(data["pids"]["current"], 1);
    let memory = cgroup_dir(&oci, &id, "memory");
    let limit = if memory == pids {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(data["memory"]["usage"]["limit"].as_u64().unwrap(), 40 << 20);
    assert_eq!(read(memory.join(limit)), (40u64 << 20).to_string());
    let usage = data["memory"]["usage"]["usage"].as_u64().unwrap();
    assert!(usage > 0 && usage <= 40 << 20, "usage {usage}");

    // Without --stats, a line per interval until the container stops.
    let mut stream = oci
        .cmd(&["events", "--interval", "100ms", &id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(stream.stdout.take().unwrap()).lines();
    for _ in 0..2 {
        let ev: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(
            (ev["type"].as_str(), ev["id"].as_str()),
            (Some("stats"), Some(id.as_str()))
        );
    }
    oci.ok(&["kill", &id, "KILL"]);
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(s) = stream.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "events did not end with the container"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    assert_error(&oci.out(&["events", "--stats", &id]), "is not running");
    assert_error(
        &oci.out(&["events", "--interval", "soon", &id]),
        "--interval",
    );
    oci.ok(&["delete", &id]);
}

/// The lines of a /proc status file that say how a process is confined.
fn confinement(status: &str) -> Vec<&str> {
    status
        .lines()
        .filter(|l| {
            [
                "CapInh",
                "CapPrm",
                "CapEff",
                "CapBnd",
                "CapAmb",
                "NoNewPrivs",
                "Seccomp",
            ]
            .iter()
            .any(|k| l.starts_with(&format!("{k}:")))
        })
        .collect()
}

#[test]
fn exec_is_confined_and_placed_as_the_containers_process() {
    let (oci, id) = running(SLEEPER, "execconf");
    let pid = oci.state(&id)["pid"].as_u64().unwrap();
    // Capabilities, no_new_privs and seccomp: those of the container's own
    // process, not of the runtime (which has every capability).
    let theirs = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mine = oci.ok(&["exec", &id, "cat", "/proc/self/status"]);
    assert_eq!(confinement(&mine), confinement(&theirs));
    assert_eq!(confinement(&mine).len(), 7, "{mine}");
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_ne!(
        confinement(&mine),
        confinement(&host),
        "the runtime's own confinement"
    );
    // Its cgroup and mounts: the container's PID 1's, as seen inside.
    let out = oci.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/self/cgroup; echo --; cat /proc/1/cgroup; echo --; \
         cat /proc/self/mountinfo; echo --; cat /proc/1/mountinfo",
    ]);
    let parts: Vec<&str> = out.split("--\n").collect();
    assert_eq!(parts.len(), 4, "{out}");
    assert_eq!(parts[0], parts[1]);
    assert_eq!(parts[2], parts[3]);
    // ps (the container's own) sees its PID 1 and not the host's processes.
    let ps = oci.ok(&["exec", &id, "ps", "-o", "pid,comm"]);
    assert!(
        ps.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "sleep"]),
        "{ps}"
    );
    assert!(ps.lines().count() <= 3, "host processes visible: {ps}");
    // Nothing of the host: descriptors (CVE-2024-21626), working directory.
    let spare = std::fs::File::open("/etc/hostname").unwrap();
    let out = oci
        .cmd(&[
            "exec",
            &id,
            "sh",
            "-c",
            "ls /proc/$$/fd; readlink /proc/$$/cwd",
        ])
        .current_dir(oci.sb.dir.path())
        .output()
        .unwrap();
    drop(spare);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "0\n1\n2\n/\n");
    oci.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_exit_statuses_and_a_stopped_container() {
    let (oci, id) = running(SLEEPER, "execstatus");
    assert_eq!(
        oci.out(&["exec", &id, "sh", "-c", "exit 7"]).status.code(),
        Some(7)
    );
    let out = oci.out(&["exec", &id, "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    // --process: the whole process from a process.json.
    let process = oci.sb.dir.path().join("process.json");
    std::fs::write(
        &process,
        r#"{"args": ["sh", "-c", "echo $GREETING; pwd"], "env": ["GREETING=hello"],
            "cwd": "/etc", "user": {"uid": 0, "gid": 0}}"#,
    )
    .unwrap();
    assert_eq!(
        oci.ok(&["exec", "--process", process.to_str().unwrap(), &id]),
        "hello\n/etc\n"
    );
    // A process document that never ends is refused at the bound, not
    // read into memory whole.
    assert_error(
        &oci.out(&["exec", "--process", "/dev/zero", &id]),
        "/dev/zero: larger than 16.00MiB",
    );
    oci.ok(&["kill", &id, "KILL"]);
    oci.wait_status(&id, "stopped");
    assert_error(&oci.out(&["exec", &id, "true"]), "stopped");
    oci.ok(&["delete", &id]);
}

#[test]
fn exec_tty_hands_the_terminal_to_the_console_socket() {
    let (oci, id) = running(SLEEPER, "exectty");
    assert_error(&oci.out(&["exec", "-t", &id, "true"]), "--console-socket");
    let sock = oci.sb.dir.path().join("exec.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let mut exec = oci
        .cmd(&[
            "exec",
            "-t",
            "--console-socket",
            sock.to_str().unwrap(),
            &id,
            "sh",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut term = receive_terminal(&listener);
    term.write_all(b"echo hi-$((6*7)); tty; exit 5\n").unwrap();
    let seen = read_terminal_until(&mut term, "/dev/pts/");
    assert!(seen.contains("hi-42"), "{seen:?}");
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(s) = exec.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "exec -t never ended");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(5));
    oci.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_detached_writes_its_pid_file_first() {
    let (oci, id) = running(SLEEPER, "execdetach");
    let pid_file = oci.sb.dir.path().join("exec.pid");
    let status = oci
        .cmd(&[
            "exec",
            "-d",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
            "sleep",
            "1000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    let json: Vec<i64> = serde_json::from_str(&oci.ok(&["ps", "-f", "json", &id])).unwrap();
    assert!(json.contains(&pid), "{json:?} lacks the exec'd {pid}");
    oci.ok(&["delete", "--force", &id]);
    // delete kills every process of the container, the exec'd one too.
    let deadline = Instant::now() + TIMEOUT;
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            Instant::now() < deadline,
            "the exec'd {pid} outlived delete"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn events_reports_an_oom_kill() {
    let (oci, id) = running(
        &[
            "sh",
            "-c",
            "sleep 0.5; x=$(head -c 100000000 /dev/zero | tr '\\0' a); sleep 1000",
        ],
        "oom",
    );
    oci.ok(&["update", "--memory", "16m", "--memory-swap", "16m", &id]);
    let mut stream = oci
        .cmd(&["events", "--interval", "10s", &id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = stream.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let ev: Value = serde_json::from_str(&line.unwrap()).unwrap();
            let _ = tx.send(ev["type"].as_str().unwrap().to_string());
        }
    });
    let mut kinds = Vec::new();
    while let Ok(kind) = rx.recv_timeout(TIMEOUT) {
        kinds.push(kind);
        if kinds.last().map(String::as_str) == Some("oom") {
            break;
        }
    }
    let _ = stream.kill();
    let _ = stream.wait();
    assert!(kinds.iter().any(|k| k == "oom"), "no oom event: {kinds:?}");
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("stats"),
        "{kinds:?}"
    );
    oci.ok(&["delete", "--force", &id]);
}

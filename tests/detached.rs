//! Containers that live on their own: `run -d` under a monitor that
//! outlives the command line, `logs`, `stop`, `kill`, `wait`, restart
//! policies, and what a killed monitor leaves (nothing).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Sandbox, assert_fails, cgroup_dirs};

/// `containr run -d --rootfs ROOTFS ARGS...`: the id it printed.
fn detach(sb: &Sandbox, args: &[&str]) -> String {
    let mut full = vec!["run", "-d", "--rootfs", sb.rootfs.to_str().unwrap()];
    full.extend_from_slice(args);
    let out = sb.containr_ok(&full);
    let id = out.trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the full id: {out:?}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{out:?}");
    id
}

fn record(sb: &Sandbox, name: &str) -> serde_json::Value {
    let path = sb.data.join(format!("containers/{name}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn inspect(sb: &Sandbox, name: &str) -> serde_json::Value {
    let out = sb.containr_ok(&["inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

/// `ps -a`'s row for `name`.
fn ps_row(sb: &Sandbox, name: &str) -> String {
    sb.containr_ok(&["ps", "-a"])
        .lines()
        .find(|l| l.ends_with(&format!("   {name}")))
        .unwrap_or_else(|| panic!("{name} not in ps -a"))
        .to_string()
}

/// Wait (at most 20 s) until `cond` holds.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
}

fn logs(sb: &Sandbox, args: &[&str]) -> (String, String) {
    let mut full = vec!["logs"];
    full.extend_from_slice(args);
    let out = sb.cmd(&full).output().unwrap();
    assert!(
        out.status.success(),
        "logs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn run_d_returns_while_the_container_runs_under_its_own_monitor() {
    let sb = Sandbox::new();
    let t0 = Instant::now();
    let id = detach(
        &sb,
        // --init: stop's SIGTERM reaches `sleep` (as PID 1 it would not).
        &[
            "--init",
            "--name",
            "bg",
            "sh",
            "-c",
            "echo started; exec sleep 100",
        ],
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(
        ps_row(&sb, "bg").contains("   Up "),
        "{}",
        ps_row(&sb, "bg")
    );
    let state = inspect(&sb, "bg");
    assert_eq!(state["Id"], id.as_str());
    assert_eq!(state["State"]["Status"], "running");
    assert_eq!(state["HostConfig"]["RestartPolicy"]["Name"], "no");
    let init = state["State"]["Pid"].as_u64().unwrap() as u32;
    // The monitor owns the record, is the init's parent, leads a session
    // of its own, has nothing of ours open, and runs one thread.
    let monitor = record(&sb, "bg")["owner_pid"].as_u64().unwrap() as u32;
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    assert!(
        status.contains(&format!("\nPPid:\t{monitor}\n")),
        "{status}"
    );
    let stat = std::fs::read_to_string(format!("/proc/{monitor}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    assert_eq!(fields[3], monitor.to_string(), "session id: {stat}");
    assert_eq!(fields[4], "0", "no controlling terminal: {stat}");
    let tasks = std::fs::read_dir(format!("/proc/{monitor}/task")).unwrap();
    assert_eq!(tasks.count(), 1);
    for fd in 0..3 {
        let target = std::fs::read_link(format!("/proc/{monitor}/fd/{fd}")).unwrap();
        assert_eq!(target.to_str(), Some("/dev/null"));
    }
    eventually("the log", || logs(&sb, &["bg"]).0 == "started\n");
    assert_eq!(
        inspect(&sb, "bg")["LogPath"],
        sb.data
            .join(format!("containers/{id}/{id}-json.log"))
            .to_str()
            .unwrap()
    );

    sb.containr_ok(&["stop", "-t", "5", "bg"]);
    assert!(!alive(init));
    eventually("the monitor to exit", || !alive(monitor));
    assert!(ps_row(&sb, "bg").contains("Exited (143) "));
    let state = inspect(&sb, "bg");
    assert_eq!(state["State"]["Status"], "exited");
    assert_eq!(state["State"]["ExitCode"], 143);
    // Logs outlive the container, until rm.
    assert_eq!(logs(&sb, &["bg"]).0, "started\n");
    assert_eq!(sb.containr_ok(&["rm", "bg"]), "bg\n");
}

#[test]
fn run_d_reports_what_stops_the_container_from_starting() {
    let sb = Sandbox::new();
    let root = sb.rootfs.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut full = vec!["run", "-d", "--rootfs", root];
        full.extend_from_slice(args);
        sb.cmd(&full).output().unwrap()
    };
    assert_fails(&run(&["nonexistent"]), 127, "executable file not found");
    assert_fails(&run(&["/etc/passwd"]), 126, "permission denied");
    assert_fails(
        &run(&["--rm", "--restart", "always", "true"]),
        125,
        "--restart and --rm",
    );
    assert_fails(
        &run(&["--restart", "sometimes", "true"]),
        125,
        "restart policy",
    );
    assert_fails(&run(&["--log-driver", "syslog", "true"]), 125, "log driver");
    assert_fails(
        &run(&["--log-opt", "max-size=x", "true"]),
        125,
        "log option",
    );
    assert_fails(
        &run(&["--stop-signal", "NOPE", "true"]),
        125,
        "invalid signal",
    );
    assert!(sb.containr_ok(&["ps", "-aq"]).is_empty());
}

#[test]
fn a_killed_monitor_takes_its_container_along_and_is_settled_as_137() {
    let sb = Sandbox::new();
    detach(&sb, &["--name", "victim", "sleep", "100"]);
    let init = inspect(&sb, "victim")["State"]["Pid"].as_u64().unwrap() as u32;
    let monitor = record(&sb, "victim")["owner_pid"].as_u64().unwrap() as i32;
    let cgroups = cgroup_dirs(&sb, "victim");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Reaped (by whoever reaps orphans), not only dead: until then the
    // monitor looks alive and a v1 cgroup keeps its zombies.
    eventually("the init to die with its monitor", || {
        !std::path::Path::new(&format!("/proc/{init}")).exists()
            && !std::path::Path::new(&format!("/proc/{monitor}")).exists()
    });
    let row = ps_row(&sb, "victim");
    assert!(row.contains("Exited (137) "), "{row}");
    for (_, d) in &cgroups {
        assert!(!d.exists(), "cgroup {} left", d.display());
    }
    assert!(
        inspect(&sb, "victim")["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("killed")
    );
    sb.containr_ok(&["rm", "victim"]);

    // --rm: nothing at all is left.
    detach(&sb, &["--rm", "--name", "gone", "sleep", "100"]);
    let monitor = record(&sb, "gone")["owner_pid"].as_u64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("the --rm container to be reclaimed", || {
        sb.containr_ok(&["ps", "-aq"]).is_empty()
    });
}

#[test]
fn logs_keep_both_streams_in_order_with_tail_since_until_and_timestamps() {
    let sb = Sandbox::new();
    detach(
        &sb,
        &[
            "--name",
            "talk",
            "sh",
            "-c",
            "echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three; printf partial",
        ],
    );
    assert_eq!(sb.containr_ok(&["wait", "talk"]), "0\n");
    let (out, err) = logs(&sb, &["talk"]);
    assert_eq!(out, "one\nthree\npartial");
    assert_eq!(err, "two\n");
    // The file is docker's json-file, in order across the two streams.
    let id = inspect(&sb, "talk")["Id"].as_str().unwrap().to_string();
    let file =
        std::fs::read_to_string(sb.data.join(format!("containers/{id}/{id}-json.log"))).unwrap();
    let entries: Vec<serde_json::Value> = file
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["log"].as_str().unwrap(), e["stream"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("one\n", "stdout"),
            ("two\n", "stderr"),
            ("three\n", "stdout"),
            ("partial", "stdout")
        ]
    );
    let time = entries[1]["time"].as_str().unwrap().to_string();
    assert_eq!(time.len(), "2024-01-01T00:00:00.123456789Z".len(), "{time}");

    assert_eq!(logs(&sb, &["--tail", "2", "talk"]).0, "three\npartial");
    assert_eq!(logs(&sb, &["-n", "0", "talk"]).0, "");
    let (out, err) = logs(&sb, &["--since", &time, "talk"]);
    assert_eq!((out.as_str(), err.as_str()), ("three\npartial", "two\n"));
    let (out, err) = logs(&sb, &["--until", &time, "talk"]);
    assert_eq!((out.as_str(), err.as_str()), ("one\n", "two\n"));
    assert_eq!(
        logs(&sb, &["--since", "1h", "talk"]).0,
        "one\nthree\npartial"
    );
    assert_eq!(logs(&sb, &["--until", "1h", "talk"]).0, "");
    let (_, err) = logs(&sb, &["-t", "talk"]);
    assert_eq!(err, format!("{time} two\n"));
    let out = sb
        .cmd(&["logs", "--since", "yesterday", "talk"])
        .output()
        .unwrap();
    assert_fails(&out, 1, "--since");
    sb.containr_ok(&["rm", "talk"]);
}

#[test]
fn logs_follow_until_the_container_exits() {
    let sb = Sandbox::new();
    detach(
        &sb,
        &[
            "--name",
            "ticker",
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do echo tick $i; sleep 0.3; done",
        ],
    );
    let t0 = Instant::now();
    let out = sb.cmd(&["logs", "-f", "ticker"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n"
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    sb.containr_ok(&["rm", "ticker"]);
}

#[test]
fn a_fast_writer_loses_nothing_and_rotation_bounds_the_files() {
    let sb = Sandbox::new();
    // 50000 lines as fast as the shell can write them, nobody reading.
    detach(
        &sb,
        &[
            "--name",
            "fast",
            "--log-opt",
            "max-size=2m",
            "--log-opt",
            "max-file=4",
            "sh",
            "-c",
            "i=0; while [ $i -lt 50000 ]; do echo line $i; i=$((i+1)); done",
        ],
    );
    assert_eq!(sb.containr_ok(&["wait", "fast"]), "0\n");
    let out = logs(&sb, &["fast"]).0;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 50000, "every line kept (under the limit)");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("line {i}"));
    }
    let id = inspect(&sb, "fast")["Id"].as_str().unwrap().to_string();
    // Its log files (beside them: its bundle, config.json and /etc files).
    let mut files = sb.entries(&format!("containers/{id}"));
    files.retain(|f| f.starts_with(&id));
    assert!(files.len() >= 2 && files.len() <= 4, "{files:?}");
    for f in &files {
        let size = std::fs::metadata(sb.data.join(format!("containers/{id}/{f}")))
            .unwrap()
            .len();
        assert!(size <= 2 << 20, "{f}: {size}");
    }
    sb.containr_ok(&["rm", "fast"]);

    // A small limit: the newest lines are kept, the oldest rotated away.
    detach(
        &sb,
        &[
            "--name",
            "small",
            "--log-opt",
            "max-size=10k",
            "--log-opt",
            "max-file=2",
            "sh",
            "-c",
            "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done",
        ],
    );
    assert_eq!(sb.containr_ok(&["wait", "small"]), "0\n");
    let out = logs(&sb, &["small"]).0;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.last(), Some(&"line 1999"));
    assert!(lines.len() < 2000 && lines.len() > 100, "{}", lines.len());
    sb.containr_ok(&["rm", "small"]);

    // --log-driver none: nothing written, nothing to read.
    detach(
        &sb,
        &["--name", "mute", "--log-driver", "none", "echo", "hi"],
    );
    assert_eq!(sb.containr_ok(&["wait", "mute"]), "0\n");
    let out = sb.cmd(&["logs", "mute"]).output().unwrap();
    assert_fails(&out, 1, "does not support reading");
    sb.containr_ok(&["rm", "mute"]);
}

#[test]
fn stop_sigkills_a_container_that_ignores_its_stop_signal() {
    let sb = Sandbox::new();
    detach(
        &sb,
        &[
            "--name",
            "stubborn",
            "sh",
            "-c",
            "trap '' TERM; echo ready; while true; do sleep 1; done",
        ],
    );
    eventually("the trap", || logs(&sb, &["stubborn"]).0 == "ready\n");
    let t0 = Instant::now();
    assert_eq!(
        sb.containr_ok(&["stop", "-t", "1", "stubborn"]),
        "stubborn\n"
    );
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert!(ps_row(&sb, "stubborn").contains("Exited (137) "));
    // Stopping a stopped container is fine; killing one is not.
    sb.containr_ok(&["stop", "stubborn"]);
    let out = sb.cmd(&["kill", "stubborn"]).output().unwrap();
    assert_fails(&out, 1, "is not running");
    sb.containr_ok(&["rm", "stubborn"]);

    // --stop-signal and --stop-timeout are the defaults stop uses.
    detach(
        &sb,
        &[
            "--name",
            "usr1",
            "--stop-signal",
            "USR1",
            "--stop-timeout",
            "30",
            "sh",
            "-c",
            "trap 'exit 42' USR1; echo ready; while true; do sleep 0.1; done",
        ],
    );
    eventually("the trap", || logs(&sb, &["usr1"]).0 == "ready\n");
    let t0 = Instant::now();
    sb.containr_ok(&["stop", "usr1"]);
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(sb.containr_ok(&["wait", "usr1"]), "42\n");
    assert_eq!(inspect(&sb, "usr1")["Config"]["StopSignal"], "USR1");
    sb.containr_ok(&["rm", "usr1"]);

    // A paused container is thawed and stopped by its stop signal.
    detach(&sb, &["--init", "--name", "frozen", "sleep", "100"]);
    sb.containr_ok(&["pause", "frozen"]);
    assert!(ps_row(&sb, "frozen").contains("(Paused)"));
    let t0 = Instant::now();
    sb.containr_ok(&["stop", "-t", "5", "frozen"]);
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    assert!(ps_row(&sb, "frozen").contains("Exited (143) "));
    let out = sb.cmd(&["kill", "frozen"]).output().unwrap();
    assert_fails(&out, 1, "is not running");
    sb.containr_ok(&["stop", "frozen"]);
    sb.containr_ok(&["rm", "frozen"]);
}

#[test]
fn kill_signals_and_wait_prints_the_status() {
    let sb = Sandbox::new();
    detach(
        &sb,
        &[
            "--name",
            "k",
            "sh",
            "-c",
            "trap 'exit 3' HUP; echo ready; while true; do sleep 0.1; done",
        ],
    );
    eventually("the trap", || logs(&sb, &["k"]).0 == "ready\n");
    let waiter = sb
        .cmd(&["wait", "k"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(sb.containr_ok(&["kill", "-s", "HUP", "k"]), "k\n");
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "3\n");
    let out = sb.cmd(&["kill", "-s", "NOPE", "k"]).output().unwrap();
    assert_fails(&out, 1, "invalid signal");
    let out = sb.cmd(&["wait", "nothere"]).output().unwrap();
    assert_fails(&out, 1, "No such container");
    sb.containr_ok(&["rm", "k"]);

    detach(&sb, &["--name", "k9", "sleep", "100"]);
    sb.containr_ok(&["kill", "k9"]);
    assert_eq!(sb.containr_ok(&["wait", "k9"]), "137\n");
    sb.containr_ok(&["rm", "k9"]);
}

#[test]
fn stop_works_on_an_attached_run() {
    let sb = Sandbox::new();
    let mut run = sb
        .cmd(&[
            "run",
            "--rootfs",
            sb.rootfs.to_str().unwrap(),
            "--init",
            "--name",
            "fg",
            "sleep",
            "100",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the attached run", || {
        sb.containr_ok(&["ps", "-q"]).lines().count() == 1
    });
    sb.containr_ok(&["stop", "-t", "2", "fg"]);
    assert_eq!(run.wait().unwrap().code(), Some(143));
    assert!(ps_row(&sb, "fg").contains("Exited (143) "));
    let out = sb.cmd(&["logs", "fg"]).output().unwrap();
    assert_fails(&out, 1, "ran attached");
    sb.containr_ok(&["rm", "fg"]);
}

#[test]
fn a_detached_terminal_is_held_by_the_monitor() {
    let sb = Sandbox::new();
    detach(
        &sb,
        &[
            "-t",
            "--name",
            "tty",
            "sh",
            "-c",
            "tty; [ -t 1 ] && echo is-a-tty",
        ],
    );
    assert_eq!(sb.containr_ok(&["wait", "tty"]), "0\n");
    assert_eq!(logs(&sb, &["tty"]).0, "/dev/pts/0\r\nis-a-tty\r\n");
    sb.containr_ok(&["rm", "tty"]);

    // -i -t without a terminal on our side: fine detached.
    detach(
        &sb,
        &["-it", "--name", "itty", "sh", "-c", "echo hi; sleep 100"],
    );
    eventually("the output", || logs(&sb, &["itty"]).0 == "hi\r\n");
    sb.containr_ok(&["rm", "-f", "itty"]);
}

#[test]
fn restart_policies_bring_a_container_back_with_docker_s_rules() {
    let sb = Sandbox::new();
    // on-failure:2: two restarts of a failing command, then it stays down.
    detach(
        &sb,
        &[
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            "sh",
            "-c",
            "echo attempt; exit 3",
        ],
    );
    eventually("three attempts", || {
        let s = inspect(&sb, "flaky");
        s["State"]["Status"] == "exited" && s["RestartCount"] == 2
    });
    assert_eq!(logs(&sb, &["flaky"]).0, "attempt\n".repeat(3));
    let s = inspect(&sb, "flaky");
    assert_eq!(s["State"]["ExitCode"], 3);
    assert_eq!(s["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(s["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    sb.containr_ok(&["rm", "flaky"]);

    // on-failure does not restart a success.
    detach(&sb, &["--name", "fine", "--restart", "on-failure", "true"]);
    assert_eq!(sb.containr_ok(&["wait", "fine"]), "0\n");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(inspect(&sb, "fine")["RestartCount"], 0);
    assert_eq!(inspect(&sb, "fine")["State"]["Status"], "exited");
    sb.containr_ok(&["rm", "fine"]);

    // always: back after every exit (a new init each time), shown
    // Restarting in between; a stop is remembered.
    detach(
        &sb,
        &[
            "--name",
            "phoenix",
            "--restart",
            "always",
            "sh",
            "-c",
            "echo up; sleep 0.3",
        ],
    );
    let mut inits = std::collections::BTreeSet::new();
    eventually("three runs", || {
        let s = inspect(&sb, "phoenix");
        if let Some(pid) = s["State"]["Pid"].as_u64().filter(|p| *p != 0) {
            inits.insert(pid);
        }
        if s["State"]["Restarting"] == true {
            let row = ps_row(&sb, "phoenix");
            assert!(
                row.contains("Restarting (0) ") || row.contains("Up "),
                "{row}"
            );
        }
        s["RestartCount"].as_u64().unwrap() >= 2
    });
    assert!(inits.len() >= 2, "{inits:?}");
    let monitor = record(&sb, "phoenix")["owner_pid"].as_u64().unwrap();
    sb.containr_ok(&["stop", "phoenix"]);
    let s = inspect(&sb, "phoenix");
    assert_eq!(s["State"]["Status"], "exited");
    let count = s["RestartCount"].clone();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&sb, "phoenix")["RestartCount"], count);
    eventually("the monitor to exit", || !alive(monitor as u32));
    sb.containr_ok(&["rm", "phoenix"]);

    // rm refuses a restarting container; rm -f ends it for good.
    detach(
        &sb,
        &[
            "--name",
            "loop",
            "--restart",
            "always",
            "sh",
            "-c",
            "sleep 0.2",
        ],
    );
    let monitor = record(&sb, "loop")["owner_pid"].as_u64().unwrap() as u32;
    eventually("a restart", || inspect(&sb, "loop")["RestartCount"] != 0);
    let out = sb.cmd(&["rm", "loop"]).output().unwrap();
    assert_fails(&out, 1, "stop the container before removing");
    sb.containr_ok(&["rm", "-f", "loop"]);
    eventually("the monitor to exit", || !alive(monitor));
    std::thread::sleep(Duration::from_millis(500));
    assert!(sb.containr_ok(&["ps", "-aq"]).is_empty());

    // The bad ones are refused before anything is made.
    let out = sb
        .cmd(&[
            "run",
            "--rm",
            "--restart",
            "always",
            "--rootfs",
            sb.rootfs.to_str().unwrap(),
            "true",
        ])
        .output()
        .unwrap();
    assert_fails(&out, 125, "both --restart and --rm");
}

#[test]
fn create_start_and_restart_keep_the_container_and_its_writable_layer() {
    let sb = Sandbox::new();
    let out = sb.containr_ok(&[
        "create",
        "--name",
        "later",
        "--rootfs",
        sb.rootfs.to_str().unwrap(),
        "sh",
        "-c",
        "echo run; sleep 100",
    ]);
    let id = out.trim().to_string();
    assert_eq!(id.len(), 64, "{out}");
    let row = ps_row(&sb, "later");
    assert!(row.contains("   Created   "), "{row}");
    assert!(sb.containr_ok(&["ps", "-q"]).is_empty());
    assert_eq!(inspect(&sb, "later")["State"]["Status"], "created");
    assert_eq!(
        sb.containr_ok(&["ps", "-a", "--filter", "status=created", "-q"]),
        format!("{}\n", &id[..12])
    );

    assert_eq!(sb.containr_ok(&["start", "later"]), "later\n");
    eventually("the first run's output", || {
        logs(&sb, &["later"]).0 == "run\n"
    });
    let first = inspect(&sb, "later")["State"]["Pid"].as_u64().unwrap();
    assert!(ps_row(&sb, "later").contains("   Up "));
    // Starting a running container does nothing.
    sb.containr_ok(&["start", "later"]);
    assert_eq!(
        inspect(&sb, "later")["State"]["Pid"].as_u64().unwrap(),
        first
    );

    assert_eq!(sb.containr_ok(&["restart", "-t", "1", "later"]), "later\n");
    let second = inspect(&sb, "later")["State"]["Pid"].as_u64().unwrap();
    assert_ne!(first, second);
    eventually("the second run's output", || {
        logs(&sb, &["later"]).0 == "run\nrun\n"
    });
    assert_eq!(inspect(&sb, "later")["Id"], id.as_str());
    sb.containr_ok(&["stop", "-t", "1", "later"]);

    // start -a: the output, then the status.
    let out = sb
        .cmd(&[
            "create",
            "--name",
            "once",
            "--rootfs",
            sb.rootfs.to_str().unwrap(),
            "sh",
            "-c",
            "echo out; echo err >&2; exit 5",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = sb.cmd(&["start", "-a", "once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");

    // A container that ran attached starts again under a monitor.
    let out = sb
        .cmd(&[
            "run",
            "--name",
            "fg",
            "--rootfs",
            sb.rootfs.to_str().unwrap(),
            "sh",
            "-c",
            "echo ran; exit 2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = sb.cmd(&["start", "-a", "fg"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    assert_eq!(logs(&sb, &["fg"]).0, "ran\n");
    sb.containr_ok(&["rm", "later", "once", "fg"]);
}

#[test]
fn an_image_container_started_again_keeps_what_it_wrote() {
    let sb = Sandbox::new();
    let tarball = sb.rootfs_tar("rootfs.tar");
    sb.containr_ok(&["import", tarball.to_str().unwrap(), "bb:1"]);
    let out = sb.containr_ok(&[
        "run",
        "-d",
        "--name",
        "keeper",
        "bb:1",
        "sh",
        "-c",
        "echo x >> /count; wc -l < /count",
    ]);
    assert_eq!(out.trim().len(), 64);
    assert_eq!(sb.containr_ok(&["wait", "keeper"]), "0\n");
    sb.containr_ok(&["start", "keeper"]);
    assert_eq!(sb.containr_ok(&["wait", "keeper"]), "0\n");
    assert_eq!(logs(&sb, &["keeper"]).0, "1\n2\n");
    // A restart policy's runs share the layer too.
    detach_image(
        &sb,
        &[
            "--name",
            "again",
            "--restart",
            "on-failure:2",
            "bb:1",
            "sh",
            "-c",
            "echo x >> /n; wc -l < /n; exit 1",
        ],
    );
    eventually("three runs", || {
        inspect(&sb, "again")["State"]["Status"] == "exited"
    });
    assert_eq!(logs(&sb, &["again"]).0, "1\n2\n3\n");
    sb.containr_ok(&["rm", "keeper", "again"]);
}

fn detach_image(sb: &Sandbox, args: &[&str]) {
    let mut full = vec!["run", "-d"];
    full.extend_from_slice(args);
    sb.containr_ok(&full);
}

/// `containr attach ARGS...` with a pipe on its stdin and its stdout read
/// by a thread: (child, its stdin, what it printed so far).
fn attach(
    sb: &Sandbox,
    args: &[&str],
) -> (
    std::process::Child,
    std::process::ChildStdin,
    std::sync::Arc<std::sync::Mutex<String>>,
) {
    use std::io::Read;
    let mut full = vec!["attach"];
    full.extend_from_slice(args);
    let mut child = sb
        .cmd(&full)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (child, stdin, seen)
}

#[test]
fn attach_joins_a_detached_container_and_detaches_with_the_keys() {
    use std::io::Write;
    let sb = Sandbox::new();
    // A terminal held by the monitor; our input reaches its shell.
    detach(&sb, &["-it", "--name", "shell", "sh"]);
    let (child, mut stdin, seen) = attach(&sb, &["shell"]);
    eventually("the attached shell to answer", || {
        let _ = stdin.write_all(b"echo mark-$((1+2))\n");
        std::thread::sleep(Duration::from_millis(200));
        seen.lock().unwrap().contains("mark-3")
    });
    // ctrl-p ctrl-q: detached, the container runs on.
    stdin.write_all(&[0x10, 0x11]).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("read escape sequence"));
    assert!(ps_row(&sb, "shell").contains("   Up "));

    // Attached again (other keys): the shell's exit ends the attach with
    // its status.
    let (child, mut stdin, _) = attach(&sb, &["--detach-keys", "ctrl-a,x", "shell"]);
    std::thread::sleep(Duration::from_millis(300));
    stdin.write_all(b"exit 7\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    let out = sb.cmd(&["attach", "shell"]).output().unwrap();
    assert_fails(&out, 1, "not running");
    sb.containr_ok(&["rm", "shell"]);

    // -i without -t: our lines reach its stdin, its output comes back.
    detach(
        &sb,
        &[
            "-i",
            "--name",
            "reader",
            "sh",
            "-c",
            "while read l; do echo got $l; done",
        ],
    );
    let (child, mut stdin, seen) = attach(&sb, &["reader"]);
    eventually("the echo", || {
        let _ = stdin.write_all(b"ping\n");
        std::thread::sleep(Duration::from_millis(200));
        seen.lock().unwrap().contains("got ping")
    });
    sb.containr_ok(&["kill", "reader"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137));
    assert!(logs(&sb, &["reader"]).0.starts_with("got ping\n"));
    sb.containr_ok(&["rm", "reader"]);
}

#[test]
fn the_monitor_outlives_the_session_that_started_it() {
    let sb = Sandbox::new();
    // The session that ran `run -d` ends: everything in its process group
    // is killed outright.
    let script = format!(
        "{} --root {} run -d --name hup --rootfs {} sleep 100 >/dev/null; kill -KILL 0; sleep 5",
        common::BIN,
        sb.data.display(),
        sb.rootfs.display()
    );
    let status = std::process::Command::new("setsid")
        .args(["-w", "sh", "-c", &script])
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), None, "the session's shell was killed");
    assert!(
        ps_row(&sb, "hup").contains("   Up "),
        "{}",
        ps_row(&sb, "hup")
    );
    sb.containr_ok(&["rm", "-f", "hup"]);
}

#[test]
fn boot_starts_again_what_a_reboot_stopped_with_docker_s_rule() {
    let sb = Sandbox::new();
    for (name, policy) in [
        ("always", "always"),
        ("unless", "unless-stopped"),
        ("stopped", "unless-stopped"),
        ("onfail", "on-failure"),
        ("plain", "no"),
    ] {
        detach(&sb, &["--name", name, "--restart", policy, "sleep", "100"]);
    }
    sb.containr_ok(&["stop", "-t", "0", "stopped"]);
    // A reboot, as the records see it: every monitor and container gone
    // without a word.
    let mut pids = Vec::new();
    for name in ["always", "unless", "onfail", "plain"] {
        let init = inspect(&sb, name)["State"]["Pid"].as_u64().unwrap() as u32;
        let monitor = record(&sb, name)["owner_pid"].as_u64().unwrap() as u32;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(monitor as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        pids.extend([init, monitor]);
    }
    eventually("every monitor and init to be gone", || {
        pids.iter()
            .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
    });
    assert_eq!(sb.containr_ok(&["ps", "-q"]), "");
    // docker's rule when its daemon starts: always, and unless-stopped
    // unless the user stopped it.
    let mut started: Vec<String> = (sb.containr_ok(&["boot"]).lines())
        .map(str::to_string)
        .collect();
    started.sort();
    assert_eq!(started, ["always", "unless"]);
    for name in ["always", "unless"] {
        assert!(ps_row(&sb, name).contains(" Up "), "{}", ps_row(&sb, name));
    }
    for name in ["stopped", "onfail", "plain"] {
        assert!(
            ps_row(&sb, name).contains("Exited ("),
            "{}",
            ps_row(&sb, name)
        );
    }
    // Running ones are left alone: a second boot step starts nothing.
    assert_eq!(sb.containr_ok(&["boot"]), "");
    sb.containr_ok(&["rm", "-f", "always", "unless", "stopped", "onfail", "plain"]);
}

/// `inspect`'s `State.Health`.
fn health(sb: &Sandbox, name: &str) -> serde_json::Value {
    inspect(sb, name)["State"]["Health"].clone()
}

#[test]
fn health_goes_from_starting_to_healthy_failures_in_the_start_period_do_not_count() {
    let sb = Sandbox::new();
    detach(
        &sb,
        &[
            "--name",
            "hc",
            "--health-cmd",
            "echo probing; test -e /tmp/ready",
            "--health-interval",
            "200ms",
            "--health-retries",
            "1",
            "--health-start-period",
            "60s",
            "sleep",
            "100",
        ],
    );
    assert!(ps_row(&sb, "hc").contains("(health: starting)"));
    let hc = &inspect(&sb, "hc")["Config"]["Healthcheck"];
    assert_eq!(hc["Test"][1], "echo probing; test -e /tmp/ready");
    assert_eq!(hc["Interval"], 200_000_000);
    // Two failed checks: in the start period, it is still starting.
    eventually("two failed checks", || {
        health(&sb, "hc")["Log"].as_array().unwrap().len() >= 2
    });
    let h = health(&sb, "hc");
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 1, "{h}");
    assert_eq!(h["Log"][0]["Output"], "probing\n", "{h}");
    sb.containr_ok(&["exec", "hc", "touch", "/tmp/ready"]);
    eventually("healthy", || health(&sb, "hc")["Status"] == "healthy");
    let h = health(&sb, "hc");
    assert!(h["Log"].as_array().unwrap().len() <= 5, "{h}");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 0, "{h}");
    assert!(last["Start"].as_str().unwrap() <= last["End"].as_str().unwrap());
    assert!(ps_row(&sb, "hc").contains("(healthy)"));
    sb.containr_ok(&["rm", "-f", "hc"]);
    sb.assert_clean();
}

#[test]
fn a_failing_check_makes_it_unhealthy_after_its_retries_with_its_output() {
    let sb = Sandbox::new();
    detach(
        &sb,
        &[
            "--name",
            "sick",
            "--health-cmd",
            "echo down >&2; exit 3",
            "--health-interval",
            "200ms",
            "--health-retries",
            "3",
            "sleep",
            "100",
        ],
    );
    eventually("unhealthy", || {
        let h = health(&sb, "sick");
        if h["Status"] == "unhealthy" {
            return true;
        }
        // Never unhealthy before its third failure.
        assert!(h["FailingStreak"].as_u64().unwrap() < 3, "{h}");
        false
    });
    let h = health(&sb, "sick");
    assert!(h["FailingStreak"].as_u64().unwrap() >= 3, "{h}");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 3, "{h}");
    assert_eq!(last["Output"], "down\n", "{h}");
    assert!(ps_row(&sb, "sick").contains("(unhealthy)"));
    // It runs on: no --health-on-failure.
    assert_eq!(inspect(&sb, "sick")["State"]["Status"], "running");
    eventually("five results kept", || {
        health(&sb, "sick")["FailingStreak"].as_u64().unwrap() >= 7
    });
    assert_eq!(health(&sb, "sick")["Log"].as_array().unwrap().len(), 5);
    sb.containr_ok(&["rm", "-f", "sick"]);
    sb.assert_clean();
}

/// The check processes `sleep 1717` running on the host.
fn hung_checks() -> Vec<String> {
    common::processes_with("sleep 1717")
        .into_iter()
        .filter(|p| p.contains(": sleep 1717") || p.contains(": /bin/sh -c sleep 1717"))
        .collect()
}

#[test]
fn a_check_that_hangs_is_killed_at_its_timeout() {
    let sb = Sandbox::new();
    detach(
        &sb,
        &[
            "--name",
            "hang",
            "--health-cmd",
            "sleep 1717",
            "--health-interval",
            "200ms",
            "--health-timeout",
            "300ms",
            "--health-retries",
            "2",
            "sleep",
            "100",
        ],
    );
    eventually("unhealthy", || health(&sb, "hang")["Status"] == "unhealthy");
    let h = health(&sb, "hang");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], -1, "{h}");
    assert_eq!(
        last["Output"], "Health check exceeded timeout (300ms)",
        "{h}"
    );
    // Killed, not piling up: at most the one in flight.
    for _ in 0..10 {
        let hung = hung_checks();
        assert!(hung.len() <= 1, "{hung:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    sb.containr_ok(&["rm", "-f", "hang"]);
    assert_eq!(hung_checks(), Vec::<String>::new());
    sb.assert_clean();
}

#[test]
fn no_healthcheck_turns_off_the_image_s_and_bad_durations_are_refused() {
    let sb = Sandbox::new();
    let tarball = sb.rootfs_tar("rootfs.tar");
    sb.containr_ok(&[
        "import",
        "--change",
        "HEALTHCHECK --interval=200ms --retries=1 CMD exit 1",
        tarball.to_str().unwrap(),
        "hc:1",
    ]);
    detach_image(&sb, &["--name", "checked", "hc:1", "sleep", "100"]);
    let hc = &inspect(&sb, "checked")["Config"]["Healthcheck"];
    assert_eq!(hc["Test"], serde_json::json!(["CMD-SHELL", "exit 1"]));
    eventually("the image's check fails", || {
        health(&sb, "checked")["Status"] == "unhealthy"
    });
    detach_image(
        &sb,
        &[
            "--name",
            "unchecked",
            "--no-healthcheck",
            "hc:1",
            "sleep",
            "100",
        ],
    );
    std::thread::sleep(Duration::from_millis(600));
    assert!(health(&sb, "unchecked").is_null());
    assert!(inspect(&sb, "unchecked")["Config"]["Healthcheck"].is_null());
    assert!(!ps_row(&sb, "unchecked").contains("health"));
    for (flag, value) in [
        ("--health-interval", "5"),
        ("--health-timeout", "1x"),
        ("--health-on-failure", "reboot"),
    ] {
        let out = sb
            .cmd(&[
                "run",
                "-d",
                flag,
                value,
                "--health-cmd",
                "true",
                "hc:1",
                "true",
            ])
            .output()
            .unwrap();
        assert_fails(&out, 125, flag);
    }
    sb.containr_ok(&["rm", "-f", "checked", "unchecked"]);
    sb.containr_ok(&["rmi", "hc:1"]);
    sb.assert_clean();
}

#[test]
fn health_on_failure_restart_brings_the_container_back_and_kill_ends_it() {
    let sb = Sandbox::new();
    detach(
        &sb,
        &[
            "--name",
            "phoenix",
            "--tmpfs",
            "/scratch",
            "--health-cmd",
            "test ! -e /scratch/broken",
            "--health-interval",
            "200ms",
            "--health-retries",
            "1",
            "--health-on-failure",
            "restart",
            "sh",
            "-c",
            "trap 'echo stopping; exit 0' TERM; while :; do sleep 0.1; done",
        ],
    );
    eventually("healthy", || health(&sb, "phoenix")["Status"] == "healthy");
    let pid = inspect(&sb, "phoenix")["State"]["Pid"].as_u64().unwrap();
    sb.containr_ok(&["exec", "phoenix", "touch", "/scratch/broken"]);
    // Restarted with a fresh tmpfs, by the health rule alone (--restart no).
    eventually("restarted and healthy", || {
        let i = inspect(&sb, "phoenix");
        i["RestartCount"].as_u64().unwrap() >= 1
            && i["State"]["Status"] == "running"
            && i["State"]["Health"]["Status"] == "healthy"
    });
    assert_ne!(
        inspect(&sb, "phoenix")["State"]["Pid"].as_u64().unwrap(),
        pid
    );
    // Stopped with its stop signal first, as `containr stop` would.
    assert!(logs(&sb, &["phoenix"]).0.contains("stopping\n"));
    sb.containr_ok(&["rm", "-f", "phoenix"]);

    detach(
        &sb,
        &[
            "--name",
            "killed",
            "--health-cmd",
            "exit 1",
            "--health-interval",
            "200ms",
            "--health-retries",
            "1",
            "--health-on-failure",
            "kill",
            "sleep",
            "100",
        ],
    );
    eventually("killed", || {
        inspect(&sb, "killed")["State"]["Status"] == "exited"
    });
    let i = inspect(&sb, "killed");
    assert_eq!(i["State"]["ExitCode"], 137, "{i}");
    assert_eq!(i["RestartCount"], 0, "{i}");
    sb.containr_ok(&["rm", "killed"]);
    sb.assert_clean();
}

/// Wait for `child` at most `secs` seconds (killed then, and the test
/// fails); its output.
fn finish_within(mut child: std::process::Child, secs: u64, what: &str) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn wait_gets_the_real_status_of_an_rm_container() {
    let sb = Sandbox::new();
    // Its monitor removes it as it exits: the status reaches the waiters
    // all the same, two of them here.
    detach(
        &sb,
        &["--rm", "--name", "brief", "sh", "-c", "sleep 1; exit 7"],
    );
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            sb.cmd(&["wait", "brief"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for w in waiters {
        let out = finish_within(w, 20, "wait brief");
        assert_eq!(
            (
                String::from_utf8_lossy(&out.stdout).as_ref(),
                out.status.code()
            ),
            ("7\n", Some(0)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eventually("brief to be removed", || {
        !sb.cmd(&["inspect", "brief"])
            .output()
            .unwrap()
            .status
            .success()
    });
    // An attached run --rm too.
    let run = sb
        .cmd(&[
            "run",
            "--rm",
            "--name",
            "att",
            "--rootfs",
            sb.rootfs.to_str().unwrap(),
            "sh",
            "-c",
            "sleep 1; exit 4",
        ])
        .spawn()
        .unwrap();
    eventually("att to run", || {
        sb.containr_ok(&["ps"]).contains("   att\n")
    });
    assert_eq!(sb.containr_ok(&["wait", "att"]), "4\n");
    assert_eq!(finish_within(run, 20, "run att").status.code(), Some(4));
    // Removed before wait looked: no such container, as docker's.
    detach(&sb, &["--rm", "--name", "gone", "true"]);
    eventually("gone to be removed", || {
        !sb.cmd(&["inspect", "gone"])
            .output()
            .unwrap()
            .status
            .success()
    });
    let out = sb.cmd(&["wait", "gone"]).output().unwrap();
    assert_fails(&out, 1, "No such container: gone");
    // The status was handed over and nothing is left (the sandbox checks
    // the data root when dropped).
}

#[test]
fn start_ai_attaches_stdin_and_its_end_ends_the_container_s() {
    use std::io::Write;
    let sb = Sandbox::new();
    let rootfs = sb.rootfs.to_str().unwrap();
    sb.containr_ok(&["create", "-i", "--name", "cat", "--rootfs", rootfs, "cat"]);
    let mut child = sb
        .cmd(&["start", "-ai", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hi\nthere\n").unwrap();
    drop(stdin);
    let out = finish_within(child, 20, "start -ai cat");
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(0), "hi\nthere\n"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(inspect(&sb, "cat")["State"]["Status"], "exited");
    assert_eq!(logs(&sb, &["cat"]).0, "hi\nthere\n");
    // -a alone: its output from the first byte, and its status; stdin is
    // not its.
    sb.containr_ok(&[
        "create",
        "--name",
        "says",
        "--rootfs",
        rootfs,
        "sh",
        "-c",
        "echo said; echo err >&2; exit 3",
    ]);
    let out = sb.cmd(&["start", "-a", "says"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "said\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    // Started again (an exited container), attached again.
    let out = sb.cmd(&["start", "-a", "says"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "said\n");
    // A running one is attached to.
    detach(
        &sb,
        &["--name", "late", "sh", "-c", "sleep 1; echo late; exit 4"],
    );
    let out = sb.cmd(&["start", "-a", "late"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "late\n");
    sb.containr_ok(&["rm", "cat", "says", "late"]);
}

#[test]
fn an_attached_run_with_a_policy_or_a_health_check_runs_under_a_monitor() {
    let sb = Sandbox::new();
    let rootfs = sb.rootfs.to_str().unwrap();
    // The first run's output and status; the policy goes on behind.
    let out = sb
        .cmd(&[
            "run",
            "--name",
            "retry",
            "--restart",
            "on-failure:2",
            "--rootfs",
            rootfs,
            "sh",
            "-c",
            "echo try; exit 3",
        ])
        .output()
        .unwrap();
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(3), "try\n"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("two restarts", || {
        let s = inspect(&sb, "retry");
        s["State"]["Status"] == "exited" && s["RestartCount"] == 2
    });
    assert_eq!(logs(&sb, &["retry"]).0, "try\n".repeat(3));
    sb.containr_ok(&["rm", "retry"]);
    // Nothing logged, but shown all the same.
    let out = sb
        .cmd(&[
            "run",
            "--name",
            "mute",
            "--log-driver",
            "none",
            "--restart",
            "on-failure:1",
            "--rootfs",
            rootfs,
            "sh",
            "-c",
            "echo shown; exit 2",
        ])
        .output()
        .unwrap();
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(2), "shown\n")
    );
    eventually("a restart", || {
        let s = inspect(&sb, "mute");
        s["State"]["Status"] == "exited" && s["RestartCount"] == 1
    });
    sb.containr_ok(&["rm", "mute"]);

    // A health check: checked while the attached run runs.
    let run = sb
        .cmd(&[
            "run",
            "--name",
            "checked",
            "--health-cmd",
            "true",
            "--health-interval",
            "1s",
            "--rootfs",
            rootfs,
            "sh",
            "-c",
            "echo serving; sleep 5",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("healthy", || {
        sb.containr_ok(&["ps"])
            .lines()
            .any(|l| l.ends_with("   checked") && l.contains("(healthy)"))
    });
    let mut run = run;
    assert!(
        run.try_wait().unwrap().is_none(),
        "the attached run runs on"
    );
    let out = finish_within(run, 20, "run checked");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "serving\n");
    sb.containr_ok(&["rm", "checked"]);

    // -i: our stdin is its, and its end is the container's.
    let mut child = sb
        .cmd(&[
            "run",
            "-i",
            "--rm",
            "--name",
            "icat",
            "--health-cmd",
            "true",
            "--rootfs",
            rootfs,
            "cat",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"piped\n").unwrap();
    }
    let out = finish_within(child, 20, "run -i icat");
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(0), "piped\n")
    );
    eventually("icat to be removed", || {
        !sb.cmd(&["inspect", "icat"])
            .output()
            .unwrap()
            .status
            .success()
    });

    // Without -t, the signals it gets go to the container (docker's
    // --sig-proxy).
    let run = sb
        .cmd(&[
            "run",
            "--name",
            "trapper",
            "--health-cmd",
            "true",
            "--rootfs",
            rootfs,
            "sh",
            "-c",
            "trap 'exit 9' INT; echo ready; while :; do sleep 0.1; done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the trap", || {
        let out = sb.cmd(&["logs", "trapper"]).output().unwrap();
        out.stdout == b"ready\n"
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = finish_within(run, 20, "run trapper");
    assert_eq!(out.status.code(), Some(9));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ready\n");
    sb.containr_ok(&["rm", "trapper"]);
}

#[test]
fn boot_shutdown_stops_every_container_so_the_next_boot_brings_them_back() {
    let sb = Sandbox::new();
    for (name, policy) in [("us", "unless-stopped"), ("al", "always")] {
        // --init: the stop signal reaches sleep (as PID 1 it would not).
        detach(
            &sb,
            &[
                "--init",
                "--name",
                name,
                "--restart",
                policy,
                "sleep",
                "100",
            ],
        );
    }
    let t0 = Instant::now();
    let mut stopped: Vec<String> = (sb.containr_ok(&["boot", "--shutdown"]).lines())
        .map(str::to_string)
        .collect();
    stopped.sort();
    assert_eq!(stopped, ["al", "us"]);
    // Their stop signal did it, not the 10 s timeout's SIGKILL.
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    for name in ["us", "al"] {
        let s = inspect(&sb, name);
        assert_eq!(s["State"]["Status"], "exited", "{name}: no restart");
        assert_ne!(
            s["State"]["ExitCode"], 137,
            "{name}: its stop signal, not SIGKILL"
        );
        assert_eq!(s["RestartCount"], 0);
    }
    let mut started: Vec<String> = (sb.containr_ok(&["boot"]).lines())
        .map(str::to_string)
        .collect();
    started.sort();
    assert_eq!(started, ["al", "us"]);
    for name in ["us", "al"] {
        assert!(ps_row(&sb, name).contains(" Up "), "{}", ps_row(&sb, name));
    }
    // A user's stop still keeps an unless-stopped one down at boot.
    sb.containr_ok(&["stop", "us"]);
    assert_eq!(sb.containr_ok(&["boot", "--shutdown"]), "al\n");
    assert_eq!(sb.containr_ok(&["boot"]), "al\n");
    sb.containr_ok(&["rm", "-f", "us", "al"]);
}

#[test]
fn run_d_explain_shows_the_walkthrough_here_and_not_in_the_logs() {
    let sb = Sandbox::new();
    let out = sb
        .cmd(&[
            "--explain",
            "run",
            "-d",
            "--name",
            "told",
            "--rootfs",
            sb.rootfs.to_str().unwrap(),
            "sh",
            "-c",
            "echo hello; sleep 100",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in ["  fork(", "  setsid()", "  pivot_root(", "  execve("] {
        assert!(stdout.contains(step), "{step} missing: {stdout}");
    }
    let id = stdout.lines().last().unwrap();
    assert_eq!(id.len(), 64, "the id last: {stdout}");
    eventually("the log", || logs(&sb, &["told"]).0 == "hello\n");
    let (out, err) = logs(&sb, &["told"]);
    assert!(!out.contains("] +") && !err.contains("] +"), "{out}{err}");
    sb.containr_ok(&["rm", "-f", "told"]);
}

#[test]
fn an_attached_run_with_a_policy_keeps_its_terminal() {
    use common::pty::{Term, winsize};
    let sb = Sandbox::new();
    let rootfs = sb.rootfs.to_str().unwrap();
    let mut term = Term::spawn(
        sb.cmd(&[
            "run",
            "-it",
            "--name",
            "tty",
            "--restart",
            "on-failure:1",
            "--rootfs",
            rootfs,
            "sh",
        ]),
        winsize(33, 101),
    );
    term.send("tty; stty size; echo $((6*7)); exit 3\n");
    term.expect("/dev/pts/");
    term.expect("33 101");
    term.expect("42");
    assert_eq!(term.wait().code(), Some(3));
    // Its policy ran it again, on a terminal of its own, in the
    // background.
    eventually("a restart", || inspect(&sb, "tty")["RestartCount"] == 1);
    sb.containr_ok(&["rm", "-f", "tty"]);
}

/// A container that shares another's network joins it again, by name, when
/// it is made again: its first start's pid is gone once the other was
/// restarted (and could be any process's by then).
#[test]
fn a_restarted_container_joins_the_network_it_shares_as_it_is_now() {
    let sb = Sandbox::new();
    detach(
        &sb,
        &[
            "--init",
            "--network",
            "none",
            "--name",
            "owner",
            "sleep",
            "100",
        ],
    );
    detach(
        &sb,
        &[
            "--init",
            "--network",
            "container:owner",
            "--name",
            "guest",
            "sleep",
            "100",
        ],
    );
    let netns = |name: &str| {
        let pid = inspect(&sb, name)["State"]["Pid"].as_u64().unwrap();
        std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap()
    };
    assert_eq!(netns("guest"), netns("owner"));
    let before = netns("owner");
    assert_eq!(sb.containr_ok(&["restart", "-t", "1", "owner"]), "owner\n");
    assert_ne!(netns("owner"), before, "owner has a new network namespace");
    assert_eq!(sb.containr_ok(&["restart", "-t", "1", "guest"]), "guest\n");
    assert_eq!(netns("guest"), netns("owner"));
    sb.containr_ok(&["rm", "-f", "guest", "owner"]);
}

//! containr-oci, the runc-compatible runtime, driven directly on a bundle
//! as an engine drives it: each lifecycle transition, each error the
//! runtime spec names, the console socket, the pid file, hooks, and
//! nothing left behind (state, cgroup, process) once a container is gone.

mod common;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::oci::{Oci, assert_error, read_terminal_until, receive_terminal, stderr};
use serde_json::Value;

/// A shell that prints `ready`, exits 3 on SIGTERM, and otherwise waits.
const WAITER: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 3' TERM; echo ready; while :; do sleep 0.05; done",
];

#[test]
fn create_start_kill_delete() {
    let oci = Oci::new(WAITER);
    let id = oci.id("life");
    let pid_file = oci.sb.dir.path().join("pid");
    oci.create_ok(&id, &["--pid-file", pid_file.to_str().unwrap()]);

    // Created: the process exists, waits, and has not run the command.
    let state = oci.state(&id);
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["ociVersion"], "1.2.0");
    assert_eq!(
        state["bundle"].as_str().unwrap(),
        oci.bundle.canonicalize().unwrap().to_str().unwrap()
    );
    let pid = state["pid"].as_u64().unwrap();
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        pid.to_string(),
        "--pid-file holds the container's pid"
    );
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(
        oci.output_of(&id),
        "",
        "the command must not run before start"
    );
    // create left no containr process but the container's own.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with(b"containr-oci\0init\0"), "{cmdline:?}");
    let cgroups = oci.cgroup_dirs(&id);
    for d in &cgroups {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
        assert_eq!(procs.trim(), pid.to_string(), "{}", d.display());
    }

    // Started: the same process execs the command, as the container's PID 1.
    oci.ok(&["start", &id]);
    oci.wait_output(&id, "ready");
    let state = oci.state(&id);
    assert_eq!(state["status"], "running");
    assert_eq!(
        state["pid"].as_u64(),
        Some(pid),
        "the init became the process"
    );
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with(b"sh\0-c\0"), "{cmdline:?}");
    let nspid = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = nspid.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(nspid.ends_with("\t1"), "PID 1 of its namespace: {nspid}");

    // Killed by name: the trap runs, the container stops by itself.
    oci.ok(&["kill", &id, "TERM"]);
    oci.wait_status(&id, "stopped");
    assert_eq!(oci.state(&id)["pid"], 0);

    oci.ok(&["delete", &id]);
    for d in &cgroups {
        assert!(!d.exists(), "cgroup {} outlived delete", d.display());
    }
    assert!(!oci.root.join(&id).exists());
    assert_error(
        &oci.out(&["state", &id]),
        &format!("container \"{id}\" does not exist"),
    );
}

#[test]
fn state_is_stopped_once_the_process_exits_by_itself() {
    let oci = Oci::new(&["true"]);
    let id = oci.id("short");
    oci.create_ok(&id, &[]);
    oci.ok(&["start", &id]);
    oci.wait_status(&id, "stopped");
    assert_eq!(oci.state(&id)["pid"], 0);
    assert_error(
        &oci.out(&["start", &id]),
        "cannot start a container that has stopped",
    );
    assert_error(
        &oci.out(&["kill", &id]),
        &format!("container \"{id}\" is not running"),
    );
    oci.ok(&["delete", &id]);
}

#[test]
fn starting_twice_and_deleting_a_running_container_are_refused() {
    let oci = Oci::new(WAITER);
    let id = oci.id("twice");
    oci.create_ok(&id, &[]);
    oci.ok(&["start", &id]);
    assert_error(
        &oci.out(&["start", &id]),
        "cannot start an already running container",
    );
    assert_error(
        &oci.out(&["delete", &id]),
        &format!("cannot delete container {id} that is not stopped: running"),
    );
    assert_eq!(oci.status(&id), "running");
    let pid = oci.state(&id)["pid"].as_u64().unwrap();
    oci.ok(&["delete", "--force", &id]);
    assert!(
        !Path::new(&format!("/proc/{pid}/cmdline")).exists() || {
            // Reparented to init, which reaps it at once; a zombie at most.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.contains(") Z ")
        }
    );
}

#[test]
fn deleting_a_created_container_kills_its_waiting_process() {
    let oci = Oci::new(WAITER);
    let id = oci.id("unstarted");
    oci.create_ok(&id, &[]);
    let pid = oci.state(&id)["pid"].as_u64().unwrap();
    let cgroups = oci.cgroup_dirs(&id);
    oci.ok(&["delete", &id]);
    let gone = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z "))
        .unwrap_or(true);
    assert!(gone, "the created container's process outlived delete");
    for d in &cgroups {
        assert!(!d.exists(), "{}", d.display());
    }
    assert_eq!(oci.output_of(&id), "", "it never ran the command");
}

#[test]
fn unknown_ids_are_named() {
    let oci = Oci::new(WAITER);
    for cmd in [
        vec!["state", "nope"],
        vec!["start", "nope"],
        vec!["kill", "nope", "KILL"],
        vec!["delete", "nope"],
    ] {
        assert_error(&oci.out(&cmd), "container \"nope\" does not exist");
    }
    // runc: deleting what is not there with --force is no error.
    oci.ok(&["delete", "--force", "nope"]);
    assert_error(&oci.out(&["state", "../x"]), "invalid container id");
}

#[test]
fn a_duplicate_id_is_refused_and_the_first_container_is_untouched() {
    let oci = Oci::new(WAITER);
    let id = oci.id("dup");
    oci.create_ok(&id, &[]);
    let pid = oci.state(&id)["pid"].clone();
    let out = oci.create(&id, &[]);
    assert_error(&out, &format!("container with id \"{id}\" already exists"));
    assert_eq!(oci.state(&id)["pid"], pid);
    assert_eq!(oci.status(&id), "created");
    oci.ok(&["delete", &id]);
}

#[test]
fn bad_configs_are_refused_naming_the_field_and_leave_nothing() {
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|c| c["process"]["colour"] = "blue".into()),
            "unknown field process.colour",
        ),
        (
            Box::new(|c| c["linux"]["intelRdt"] = serde_json::json!({"closID": "x"})),
            "linux.intelRdt is not supported",
        ),
        (
            Box::new(|c| c["ociVersion"] = "2.0.0".into()),
            "ociVersion \"2.0.0\" is not supported",
        ),
        (
            Box::new(|c| c["root"]["path"] = "/nonexistent-rootfs".into()),
            "root.path",
        ),
        (
            Box::new(|c| {
                c["process"]["rlimits"] =
                    serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 64, "soft": 128}])
            }),
            "process.rlimits",
        ),
        (
            Box::new(|c| {
                c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({"destination": "/mnt", "type": "bind", "source": "/nonexistent-src", "options": ["rbind"]}))
            }),
            "/nonexistent-src",
        ),
    ];
    let oci = Oci::new(WAITER);
    let original = std::fs::read(oci.config()).unwrap();
    for (change, needle) in cases {
        std::fs::write(oci.config(), &original).unwrap();
        oci.edit(change);
        let id = oci.id("bad");
        assert_error(&oci.create(&id, &[]), needle);
        assert!(!oci.root.join(&id).exists(), "{needle}: state left");
    }
    std::fs::write(oci.config(), b"{not json").unwrap();
    let id = oci.id("bad");
    assert_error(&oci.create(&id, &[]), "config.json");
}

#[test]
fn a_missing_program_fails_create_and_leaves_nothing() {
    let oci = Oci::new(&["/no/such/program"]);
    let id = oci.id("noprog");
    let out = oci.create(&id, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(127), "{err}");
    assert!(err.contains("/no/such/program"), "{err}");
    assert!(!oci.root.join(&id).exists());
}

#[test]
fn run_is_attached_and_exits_with_the_process_status() {
    let oci = Oci::new(&["sh", "-c", "echo out; echo err >&2; exit 7"]);
    let id = oci.id("run");
    let out = oci.out(&["run", "--bundle", oci.bundle.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(stderr(&out), "err\n");
    assert!(!oci.root.join(&id).exists(), "run deletes the container");
}

#[test]
fn the_console_socket_receives_the_terminal() {
    let oci = Oci::new(&["sh"]);
    oci.edit(|c| c["process"]["terminal"] = true.into());
    let id = oci.id("tty");
    // Without a console socket, create refuses a terminal (as runc).
    assert_error(&oci.create(&id, &[]), "--console-socket");

    let sock = oci.sb.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let create = {
        let sock = sock.clone();
        let id = id.clone();
        let oci_bin = oci.bin.clone();
        let root = oci.root.clone();
        let bundle = oci.bundle.clone();
        std::thread::spawn(move || {
            Command::new(oci_bin)
                .arg("--root")
                .arg(root)
                .args(["create", "--console-socket", sock.to_str().unwrap()])
                .arg("--bundle")
                .arg(bundle)
                .arg(&id)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .unwrap()
        })
    };
    let master = receive_terminal(&listener);
    let out = create.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(oci.status(&id), "created");
    oci.ok(&["start", &id]);

    let mut term = master;
    term.write_all(b"echo hi-$((6*7)); tty; exit 5\n").unwrap();
    let seen = read_terminal_until(&mut term, "/dev/pts/0");
    assert!(seen.contains("hi-42"), "{seen:?}");
    assert!(seen.contains("/dev/pts/0"), "the shell's tty: {seen:?}");
    oci.wait_status(&id, "stopped");
    oci.ok(&["delete", &id]);
}

#[test]
fn preserved_descriptors_pass_and_no_other_does() {
    let oci = Oci::new(&[
        "sh",
        "-c",
        "cat <&3; for fd in 3 4 5; do [ -e /proc/self/fd/$fd ] && echo has$fd; done; true",
    ]);
    let id = oci.id("fds");
    let file = oci.sb.dir.path().join("passed");
    std::fs::write(&file, "through fd 3\n").unwrap();
    let passed = std::fs::File::open(&file).unwrap();
    let leaked = std::fs::File::open(&file).unwrap();
    let (p, l) = (passed.as_raw_fd(), leaked.as_raw_fd());
    let mut cmd = oci.cmd(&[
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        oci.bundle.to_str().unwrap(),
        &id,
    ]);
    // SAFETY: dup2 only, between fork and exec: async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            // fd 3 is the one to pass; fd 4 an inheritable one that must not.
            // Copies above both first: dup2 onto itself would keep
            // close-on-exec, and one could overwrite the other.
            let (p, l) = (
                libc::fcntl(p, libc::F_DUPFD, 10),
                libc::fcntl(l, libc::F_DUPFD, 10),
            );
            if p < 0 || l < 0 || libc::dup2(p, 3) < 0 || libc::dup2(l, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // fd 4 (open in the runtime, not listed) and the runtime's own (5...)
    // do not reach the container.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through fd 3\nhas3\n");
}

#[test]
fn hooks_get_the_state_on_stdin() {
    let oci = Oci::new(&["true"]);
    let dir = oci.sb.dir.path().to_path_buf();
    let hook = |kind: &str| {
        serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}/{kind}.json", dir.display())],
            "timeout": 10
        })
    };
    oci.edit(|c| {
        c["hooks"] = serde_json::json!({
            "createRuntime": [hook("createRuntime")],
            "createContainer": [hook("createContainer")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        })
    });
    let id = oci.id("hooks");
    oci.create_ok(&id, &[]);
    let pid = oci.state(&id)["pid"].clone();
    let read = |kind: &str| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join(format!("{kind}.json"))).unwrap())
            .unwrap_or_else(|e| panic!("{kind}: {e}"))
    };
    for kind in ["createRuntime", "createContainer"] {
        let s = read(kind);
        assert_eq!(s["id"], id.as_str(), "{kind}: {s}");
        assert_eq!(s["status"], "creating", "{kind}: {s}");
        assert_eq!(s["pid"], pid, "{kind}: {s}");
    }
    oci.ok(&["start", &id]);
    assert_eq!(read("poststart")["status"], "running");
    oci.wait_status(&id, "stopped");
    oci.ok(&["delete", &id]);
    assert_eq!(read("poststop")["status"], "stopped");
}

#[test]
fn a_failing_hook_fails_create_and_leaves_nothing() {
    let oci = Oci::new(&["true"]);
    oci.edit(|c| {
        c["hooks"] = serde_json::json!({
            "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 9"]}],
        })
    });
    let id = oci.id("badhook");
    assert_error(&oci.create(&id, &[]), "createRuntime hook /bin/sh");
    assert!(!oci.root.join(&id).exists());
}

#[test]
fn a_failing_poststart_hook_is_a_warning_on_stderr_and_in_the_log() {
    let oci = Oci::new(&["true"]);
    oci.edit(|c| {
        c["hooks"] = serde_json::json!({
            "poststart": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 7"]}],
        })
    });
    let id = oci.id("warnhook");
    oci.create_ok(&id, &[]);
    let log = oci.sb.dir.path().join("log.json");
    let out = oci.out(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "start",
        &id,
    ]);
    // The spec: a poststart failure is logged and the lifecycle goes on.
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("containr-oci: warning: poststart hook /bin/sh"),
        "{err}"
    );
    let line: Value = serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(line["level"], "warning");
    assert!(
        line["msg"].as_str().unwrap().contains("poststart hook"),
        "{line}"
    );
    oci.wait_status(&id, "stopped");
    oci.ok(&["delete", &id]);
}

#[test]
fn list_spec_features_and_version() {
    let oci = Oci::new(WAITER);
    let id = oci.id("listed");
    oci.create_ok(&id, &[]);
    let table = oci.ok(&["list"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("ID "), "{table}");
    let row = lines.next().unwrap();
    assert!(row.starts_with(&id) && row.contains(" created "), "{row}");
    assert_eq!(oci.ok(&["list", "-q"]), format!("{id}\n"));
    let json: Value = serde_json::from_str(&oci.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json[0]["id"], id.as_str());
    oci.ok(&["delete", &id]);

    // spec writes runc's default config.json, once.
    let out = oci.run_in(&oci.bundle, &["spec"]);
    assert_error(&out, "config.json exists");
    let fresh = oci.sb.dir.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    let out = oci.run_in(&fresh, &["spec"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let spec: Value =
        serde_json::from_slice(&std::fs::read(fresh.join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["process"]["args"], serde_json::json!(["sh"]));
    assert_eq!(spec["process"]["terminal"], true);
    assert_eq!(spec["root"]["path"], "rootfs");

    let features: Value = serde_json::from_str(&oci.ok(&["features"])).unwrap();
    assert_eq!(features["ociVersionMin"], "1.0.0");
    assert!(features["linux"]["namespaces"].as_array().unwrap().len() >= 6);
    assert!(
        features["hooks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "poststop")
    );

    let version = oci.ok(&["--version"]);
    assert!(version.starts_with("containr-oci version "), "{version}");
    assert!(version.contains("\nspec: 1.2.0\n"), "{version}");
}

#[test]
fn errors_also_go_to_the_log_file_in_json() {
    let oci = Oci::new(WAITER);
    let log = oci.sb.dir.path().join("log.json");
    let out = oci.out(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "nope",
    ]);
    assert_error(&out, "does not exist");
    let line: Value = serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(line["level"], "error");
    assert_eq!(line["msg"], "container \"nope\" does not exist");
}

#[test]
fn exec_runs_a_process_in_the_running_container() {
    let oci = Oci::new(WAITER);
    let id = oci.id("exec");
    oci.create_ok(&id, &[]);
    assert_error(
        &oci.out(&["exec", &id, "true"]),
        &format!("cannot exec in a created container \"{id}\""),
    );
    oci.ok(&["start", &id]);
    oci.wait_output(&id, "ready");
    let pid = oci.state(&id)["pid"].as_u64().unwrap();
    // In the container's namespaces: its hostname, its PID namespace
    // (the container's process is PID 1 there), its root.
    let out = oci.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "hostname; cat /proc/1/cmdline; echo; ls /",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("containr"));
    assert!(lines.next().unwrap().starts_with("sh\0-c\0trap"), "{out}");
    assert!(out.contains("\nproc\n"), "{out}");
    for ns in ["mnt", "pid", "uts", "ipc", "net"] {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        let out = oci.ok(&["exec", &id, "readlink", &format!("/proc/self/ns/{ns}")]);
        assert_eq!(out.trim(), theirs.to_str().unwrap(), "{ns}");
    }
    // Status, --env, --cwd, --user pass through; a missing program is 127.
    let out = oci.out(&["exec", &id, "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4));
    let out = oci.ok(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1000",
        &id,
        "sh",
        "-c",
        "echo $FOO; pwd; id -u",
    ]);
    assert_eq!(out, "bar\n/tmp\n1000\n");
    let out = oci.out(&["exec", &id, "nosuch"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    // Detached, with a pid file: the process runs in the container's cgroup.
    let pid_file = oci.sb.dir.path().join("exec.pid");
    // Its stdio is not a pipe of ours: that would stay open as long as it runs.
    let status = oci
        .cmd(&[
            "exec",
            "-d",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
            "sleep",
            "30",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let exec_pid = std::fs::read_to_string(&pid_file).unwrap();
    for d in oci.cgroup_dirs(&id) {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l == exec_pid),
            "{}: {procs:?} lacks {exec_pid:?}",
            d.display()
        );
    }
    oci.ok(&["delete", "--force", &id]);
    assert_error(&oci.out(&["exec", &id, "true"]), "does not exist");
}

#[test]
fn pause_resume_ps_and_update_act_on_the_cgroup() {
    let oci = Oci::new(WAITER);
    let id = oci.id("pause");
    oci.create_ok(&id, &[]);
    oci.ok(&["start", &id]);
    oci.wait_output(&id, "ready");
    let pid = oci.state(&id)["pid"].as_u64().unwrap();
    oci.ok(&["pause", &id]);
    assert_eq!(oci.status(&id), "paused");
    assert_error(
        &oci.out(&["pause", &id]),
        &format!("container \"{id}\" is paused, not running"),
    );
    oci.ok(&["resume", &id]);
    assert_eq!(oci.status(&id), "running");
    let pids: Vec<u64> = serde_json::from_str(&oci.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(pids.contains(&pid), "{pids:?} lacks {pid}");

    let limits = oci.sb.dir.path().join("resources.json");
    std::fs::write(&limits, r#"{"pids": {"limit": 50}}"#).unwrap();
    oci.ok(&["update", "--resources", limits.to_str().unwrap(), &id]);
    let pids_max: Vec<String> = oci
        .cgroup_dirs(&id)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("pids.max")).ok())
        .collect();
    assert_eq!(pids_max, ["50\n"]);
    oci.ok(&["delete", "--force", &id]);
}

/// `containr run`'s bundle is a real OCI bundle: the config.json `containr
/// create` writes for a `--rootfs` container (many of run's flags) runs
/// under containr-oci and under runc (Debian's) with the same output, and
/// nothing of either is left.
#[test]
fn a_run_containers_bundle_runs_alike_under_containr_oci_and_runc() {
    let oci = Oci::new(&["true"]);
    let sb = &oci.sb;
    let shared = sb.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("hello"), "from the host\n").unwrap();
    let script = "hostname; cat /etc/hostname; id; pwd; \
        grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status; \
        cat /proc/self/oom_score_adj; ulimit -n; cat /proc/sys/kernel/msgmax; \
        cat /data/hello; touch /data/x 2>/dev/null || echo data-ro; \
        touch /x 2>/dev/null || echo root-ro; \
        grep -q ' /scratch tmpfs ' /proc/mounts && echo scratch-tmpfs; \
        env | grep -v '^HOME=' | sort; ls /dev; \
        grep -q ' /proc/keys ' /proc/self/mountinfo && echo keys-masked; \
        echo 1 > /proc/sys/kernel/msgmax 2>/dev/null || echo sys-ro";
    let volume = format!("{}:/data:ro", shared.display());
    let id = sb.containr_ok(&[
        "create",
        "--network",
        "none",
        "--rootfs",
        sb.rootfs.to_str().unwrap(),
        "--hostname",
        "spec-test",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "--cap-drop",
        "NET_RAW",
        "--cap-add",
        "SYS_TIME",
        "--ulimit",
        "nofile=512:512",
        "--read-only",
        "--tmpfs",
        "/scratch",
        "-v",
        &volume,
        "--oom-score-adj",
        "100",
        "--sysctl",
        "kernel.msgmax=4096",
        "--pids-limit",
        "50",
        "sh",
        "-c",
        script,
    ]);
    let id = id.trim();
    let written = sb.data.join("containers").join(id).join("config.json");
    let spec: Value = serde_json::from_slice(&std::fs::read(&written).unwrap()).unwrap();
    assert_eq!(spec["hostname"], "spec-test");
    assert_eq!(spec["process"]["user"]["uid"], 1000);
    std::fs::copy(&written, oci.config()).unwrap();

    let ours = oci.id("bundle");
    let ours = oci
        .cmd(&["run", "--bundle", oci.bundle.to_str().unwrap(), &ours])
        .output()
        .unwrap();
    let runc_root = sb.dir.path().join("runc");
    let theirs = Command::new("runc")
        .arg("--root")
        .arg(&runc_root)
        // The container's directory itself is the bundle.
        .args([
            "run",
            "--bundle",
            written.parent().unwrap().to_str().unwrap(),
        ])
        .arg(format!("runc-{}", std::process::id()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(ours.status.success(), "containr-oci: {}", stderr(&ours));
    assert!(theirs.status.success(), "runc: {}", stderr(&theirs));
    let out = text(&ours);
    for line in [
        "spec-test\nspec-test\n",
        "uid=1000(user) gid=1000(user)",
        "\n/tmp\n",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
        "\n100\n512\n4096\nfrom the host\ndata-ro\nroot-ro\nscratch-tmpfs\n",
        "FOO=bar",
        "\nkeys-masked\nsys-ro",
    ] {
        assert!(out.contains(line), "{line:?} in:\n{out}");
    }
    assert_eq!(out, text(&theirs), "containr-oci and runc differ");

    sb.containr_ok(&["rm", id]);
    let left = common::oci::find_dirs(Path::new("/sys/fs/cgroup"), id, 8);
    assert!(left.is_empty(), "cgroups left: {left:?}");
}

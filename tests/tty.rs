//! `-t` and `-it` on a real pseudo-terminal: the test plays the terminal
//! emulator, containr runs as the session leader of that terminal, and
//! everything is checked from the master side, as a user would see it.

mod common;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Sandbox;
use common::pty::{TIMEOUT, Term, set_size, winsize};
use nix::pty::Winsize;
use nix::sys::termios::{InputFlags, LocalFlags, OutputFlags, Termios};

/// `containr run --rm --rootfs ROOTFS ARGS...` on a terminal of `size`.
fn spawn(sb: &Sandbox, size: Winsize, args: &[&str]) -> Term {
    let mut full = vec!["run", "--rm", "--rootfs", sb.rootfs.to_str().unwrap()];
    full.extend_from_slice(args);
    Term::spawn(sb.cmd(&full), size)
}

#[test]
fn interactive_shell_runs_on_the_containers_own_tty() {
    let sb = Sandbox::new();
    let mut t = spawn(&sb, winsize(24, 80), &["-it", "sh"]);
    t.expect("# ");
    t.send("tty; echo $TERM; exit 5\r");
    let status = t.wait();
    let out = t.text();
    assert!(
        out.contains("\n/dev/pts/0\r\n"),
        "the shell's tty should be the first pty of the container's devpts: {out:?}"
    );
    assert!(out.contains("\nxterm\r\n"), "TERM should be xterm: {out:?}");
    assert_eq!(status.code(), Some(5), "output: {out:?}");
}

#[test]
fn initial_window_size_reaches_the_container() {
    for mode in ["-it", "-t"] {
        let sb = Sandbox::new();
        let mut t = spawn(&sb, winsize(33, 101), &[mode, "sh", "-c", "stty size"]);
        let status = t.wait();
        let out = t.text();
        assert!(out.contains("33 101"), "{mode}: stty size said {out:?}");
        assert_eq!(status.code(), Some(0), "{mode}: output: {out:?}");
    }
}

#[test]
fn window_size_changes_reach_the_container() {
    let sb = Sandbox::new();
    let script = r#"trap "stty size" WINCH; echo ready; i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done"#;
    let mut t = spawn(&sb, winsize(24, 80), &["-it", "sh", "-c", script]);
    t.expect("ready");
    // containr leads the terminal's session, so the kernel sends it the
    // SIGWINCH; only containr can pass the size on to the container's pty.
    set_size(&t.master, winsize(45, 120));
    t.expect("45 120");
    t.send("\x03");
    let status = t.wait();
    assert_eq!(status.code(), Some(130), "output: {:?}", t.text());
}

#[test]
fn ctrl_c_interrupts_the_foreground_process() {
    let sb = Sandbox::new();
    // Under --init: as PID 1 (docker's default too), `sleep` would be
    // shielded from a SIGINT it has no handler for.
    let mut t = spawn(
        &sb,
        winsize(24, 80),
        &["-it", "--init", "sh", "-c", "echo ready; exec sleep 30"],
    );
    // Keys typed before containr has put the terminal in raw mode would be
    // the host's Ctrl-C, not the container's.
    t.expect("ready");
    t.send("\x03");
    // wait() gives up after TIMEOUT, long before sleep 30 would end by itself.
    let status = t.wait();
    assert_eq!(status.code(), Some(130), "output: {:?}", t.text());
}

#[test]
fn ctrl_c_reaches_the_whole_foreground_process_group() {
    let sb = Sandbox::new();
    // The inner shell is not the command but the command's child: only the
    // container's line discipline signals it, a SIGINT forwarded by
    // containr reaches the outer shell alone, which would then wait out the
    // sleep. The inner shell says ready itself, so that the key cannot
    // arrive between the outer shell's fork and the exec: a child there
    // still has the outer shell's trap, which the exec would then drop.
    let script = r#"trap "echo trapped" INT; sh -c 'echo ready; exec sleep 30'; echo slept-$?"#;
    let mut t = spawn(&sb, winsize(24, 80), &["-it", "sh", "-c", script]);
    t.expect("ready");
    t.send("\x03");
    t.expect("slept-130");
    let status = t.wait();
    let out = t.text();
    assert!(
        out.contains("trapped"),
        "the shell should see the SIGINT too: {out:?}"
    );
    assert_eq!(status.code(), Some(0), "output: {out:?}");
}

/// The settings raw mode changes, which a shell left behind would inherit.
fn modes(t: &Termios) -> (InputFlags, OutputFlags, LocalFlags, Vec<u8>) {
    (
        t.input_flags,
        t.output_flags,
        t.local_flags,
        t.control_chars.to_vec(),
    )
}

#[test]
fn host_terminal_is_restored_on_exit() {
    let sb = Sandbox::new();
    let mut t = spawn(
        &sb,
        winsize(24, 80),
        &["-it", "sh", "-c", "echo ready; read line; exit 3"],
    );
    let before = t.termios();
    assert!(
        before
            .local_flags
            .contains(LocalFlags::ECHO | LocalFlags::ICANON),
        "a new pty starts in cooked mode: {before:?}"
    );
    t.expect("ready");
    // Otherwise the restore below would prove nothing.
    let during = t.termios();
    assert!(
        !during
            .local_flags
            .intersects(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG),
        "the host terminal should be raw while the container runs: {during:?}"
    );
    t.send("x\r");
    let status = t.wait();
    assert_eq!(status.code(), Some(3), "output: {:?}", t.text());
    assert_eq!(modes(&t.termios()), modes(&before), "after a normal exit");
}

#[test]
fn host_terminal_is_restored_when_the_command_fails() {
    let sb = Sandbox::new();
    let mut t = spawn(&sb, winsize(24, 80), &["-it", "no-such-command"]);
    let before = t.termios();
    let status = t.wait();
    let out = t.text();
    assert_eq!(status.code(), Some(127), "output: {out:?}");
    assert!(
        out.contains("no-such-command"),
        "the error should name it: {out:?}"
    );
    assert_eq!(modes(&t.termios()), modes(&before), "after a failed start");
}

#[test]
fn interactive_tty_needs_a_terminal_on_stdin() {
    let sb = Sandbox::new();
    let out = sb.run(&["-it", "sh"]);
    common::assert_fails(&out, 125, "not a TTY");

    let rootfs = sb.rootfs.to_str().unwrap();
    let out = sb
        .cmd(&["run", "--rm", "--rootfs", rootfs, "-it", "sh"])
        .stdin(Stdio::piped())
        .output()
        .expect("spawn containr");
    common::assert_fails(&out, 125, "not a TTY");
}

#[test]
fn output_written_just_before_exit_is_not_lost() {
    let script = "i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done";
    for mode in ["-t", "-it"] {
        let sb = Sandbox::new();
        let mut t = spawn(&sb, winsize(24, 80), &[mode, "sh", "-c", script]);
        let status = t.wait();
        let out = t.text();
        assert_eq!(
            status.code(),
            Some(0),
            "{mode}: output ends with {:?}",
            tail(&out)
        );
        let lines: HashSet<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
        let missing: Vec<String> = (0..2000)
            .map(|i| format!("line{i}"))
            .filter(|l| !lines.contains(l.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{mode}: {} lines lost, first {:?}; output ends with {:?}",
            missing.len(),
            missing.first(),
            tail(&out)
        );
    }
}

/// The pid of a zombie child of `parent`, if there is one.
fn zombie_child(parent: u32) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name may contain anything, but not after its last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let parent_pid = fields.next().and_then(|p| p.parse::<u32>().ok());
        if state == Some("Z") && parent_pid == Some(parent) {
            return Some(pid);
        }
    }
    None
}

#[test]
fn output_left_in_the_pty_when_the_container_ends_is_not_lost() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    // About 11 KiB: more than one read of the master, and little enough for
    // the pty to hold it all, so the command can end with nobody reading.
    let script = "echo ready; sleep 1; seq 1 2000";
    for mode in ["-t", "-it"] {
        let sb = Sandbox::new();
        let mut t = spawn(&sb, winsize(24, 80), &[mode, "sh", "-c", script]);
        t.expect("ready");
        // containr, stopped, stands for one that is slow to get to the
        // output: the container ends with all of its output still in the
        // pty, and containr learns of the end before it has read any.
        let containr = Pid::from_raw(t.child.id().try_into().expect("a pid"));
        kill(containr, Signal::SIGSTOP).expect("stop containr");
        let deadline = Instant::now() + TIMEOUT;
        while zombie_child(t.child.id()).is_none() {
            assert!(
                Instant::now() < deadline,
                "{mode}: the container did not end within {TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        kill(containr, Signal::SIGCONT).expect("continue containr");
        let status = t.wait();
        let out = t.text();
        assert_eq!(
            status.code(),
            Some(0),
            "{mode}: output ends with {:?}",
            tail(&out)
        );
        let numbers: Vec<&str> = out
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .skip_while(|l| *l != "ready")
            .skip(1)
            .collect();
        let expected: Vec<String> = (1..=2000).map(|i| i.to_string()).collect();
        assert!(
            numbers == expected,
            "{mode}: {} of 2000 lines arrived; output ends with {:?}",
            numbers.len(),
            tail(&out)
        );
    }
}

fn tail(s: &str) -> &str {
    let mut start = s.len().saturating_sub(200);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

#[test]
fn login_asks_for_the_user_and_reads_the_password_without_echo() {
    use common::registry::{Proxy, ProxyConfig, Registry};
    let sb = Sandbox::new();
    let reg = Registry::start();
    let proxy = Proxy::start(
        &reg.host,
        ProxyConfig {
            basic_auth: Some(("carol".into(), "hunter2".into())),
            ..Default::default()
        },
    );
    let docker_config = sb.dir.path().join("docker-config");
    let login = |stdin_lines: Option<&str>| {
        let mut c = sb.cmd(&["login", &proxy.host]);
        c.env("DOCKER_CONFIG", &docker_config);
        c.stdin(Stdio::piped());
        (c, stdin_lines.map(str::to_string))
    };
    // On a terminal: `Username: ` echoes what is typed, `Password: ` not.
    let (cmd, _) = login(None);
    let mut t = Term::spawn(cmd, winsize(24, 80));
    t.expect("Username: ");
    t.send("carol\r");
    t.expect("Password: ");
    assert!(
        t.text().contains("carol"),
        "the user name is echoed: {:?}",
        t.text()
    );
    t.send("hunter2\r");
    t.expect("Login Succeeded");
    assert!(t.wait().success(), "{:?}", t.text());
    assert!(
        !t.text().contains("hunter2"),
        "the password was echoed: {:?}",
        t.text()
    );
    assert!(
        t.termios().local_flags.contains(LocalFlags::ECHO),
        "echo is back on"
    );
    let saved = std::fs::read_to_string(docker_config.join("config.json")).unwrap();
    // base64("carol:hunter2")
    assert!(saved.contains("Y2Fyb2w6aHVudGVyMg=="), "{saved}");
    std::fs::remove_file(docker_config.join("config.json")).unwrap();

    // Not a terminal: the two lines are read from stdin.
    let (mut cmd, lines) = login(Some("carol\nhunter2\n"));
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), lines.unwrap().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Username: Password: Login Succeeded\n"
    );
    let saved = std::fs::read_to_string(docker_config.join("config.json")).unwrap();
    assert!(saved.contains("Y2Fyb2w6aHVudGVyMg=="), "{saved}");
    // A wrong password read the same way is refused as with -p.
    let (mut cmd, _) = login(None);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"carol\nwrong\n").unwrap();
    let out = child.wait_with_output().unwrap();
    common::assert_fails(&out, 125, "wrong user or password");
}

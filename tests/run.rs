//! `containr run --rootfs`: the process, its namespaces and mounts, its
//! environment, exit codes, and what is left on the host afterwards.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{BIN, Sandbox, assert_fails, processes_with};

#[test]
fn runs_the_command_and_returns_its_status() {
    let sb = Sandbox::new();
    assert_eq!(sb.ok(&["echo", "hello", "world"]), "hello world\n");
    assert_eq!(sb.run(&["sh", "-c", "exit 3"]).status.code(), Some(3));
    // `--` ends containr's options; what follows is the command's.
    assert_eq!(sb.ok(&["--", "echo", "--rootfs"]), "--rootfs\n");
}

#[test]
fn death_by_signal_is_128_plus_n() {
    let sb = Sandbox::new();
    // Under --init the shell is PID 2, an ordinary process to the kernel.
    assert_eq!(
        sb.run(&["--init", "sh", "-c", "kill -TERM $$"])
            .status
            .code(),
        Some(143)
    );
    assert_eq!(
        sb.run(&["--init", "sh", "-c", "kill -KILL $$"])
            .status
            .code(),
        Some(137)
    );
    // Without it the shell is PID 1, which the kernel shields from every
    // signal it has no handler for, even its own SIGKILL (docker does the
    // same: the reason for --init).
    let out = sb.run(&["sh", "-c", "kill -TERM $$; kill -KILL $$; echo alive"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alive\n");
}

#[test]
fn gets_its_own_namespaces() {
    let sb = Sandbox::new();
    let inside = sb.ok(&[
        "sh",
        "-c",
        "for n in uts pid mnt ipc net cgroup; do echo $n $(readlink /proc/self/ns/$n); done",
    ]);
    for line in inside.lines() {
        let (name, ns) = line.split_once(' ').unwrap();
        let host = std::fs::read_link(format!("/proc/self/ns/{name}")).unwrap();
        assert_ne!(ns, host.to_str().unwrap(), "{name} namespace is the host's");
    }
    assert_eq!(inside.lines().count(), 6);
    // PID namespace: the command is PID 1, nothing of containr's is left
    // in the container; with --init, PID 2 under containr's minimal init.
    assert_eq!(sb.ok(&["sh", "-c", "echo $$"]), "1\n");
    assert_eq!(sb.ok(&["cat", "/proc/1/cmdline"]), "cat\0/proc/1/cmdline\0");
    assert_eq!(sb.ok(&["sh", "-c", "exec ls -d /proc/[0-9]*"]), "/proc/1\n");
    assert_eq!(sb.ok(&["--init", "sh", "-c", "echo $$"]), "2\n");
    let init = sb.ok(&["--init", "cat", "/proc/1/cmdline"]);
    assert!(init.starts_with("containr\0init"), "PID 1 is {init:?}");
    // Network namespace: with --network none, loopback only, and up.
    let links = sb.ok(&["--network", "none", "ip", "-o", "link"]);
    assert_eq!(links.lines().count(), 1, "links: {links}");
    assert!(
        links.contains("lo:") && links.contains("UP"),
        "links: {links}"
    );
    sb.ok(&[
        "--network",
        "none",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "127.0.0.1",
    ]);
}

#[test]
fn hostname_defaults_to_the_short_id_or_is_set() {
    let sb = Sandbox::new();
    let h = sb.ok(&["hostname"]);
    let h = h.trim();
    assert_eq!(h.len(), 12);
    assert!(h.bytes().all(|b| b.is_ascii_hexdigit()), "{h}");
    assert_eq!(
        sb.ok(&["--hostname", "box1", "cat", "/etc/hostname"]),
        "box1\n"
    );
    assert_eq!(sb.ok(&["-h", "box2", "hostname"]), "box2\n");
    // The host's own hostname is untouched.
    assert_ne!(nix::unistd::gethostname().unwrap(), "box1");
}

#[test]
fn root_is_the_rootfs_after_pivot_root() {
    let sb = Sandbox::new();
    std::fs::write(sb.rootfs.join("marker"), "in rootfs").unwrap();
    assert_eq!(sb.ok(&["cat", "/marker"]), "in rootfs");
    // Nothing of the host's tree is reachable: no mount but the container's.
    let mounts = sb.ok(&["cat", "/proc/self/mountinfo"]);
    let targets: Vec<&str> = mounts
        .lines()
        .map(|l| l.split(' ').nth(4).unwrap())
        .collect();
    let expected = [
        "/",
        "/proc",
        "/sys",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/etc/hostname",
        "/etc/hosts",
        "/etc/resolv.conf",
    ];
    // Beyond these, only the masks over parts of /proc and /sys (see
    // tests/security.rs), all below the container's own /proc and /sys.
    let mut core: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|t| !t.starts_with("/proc/") && !t.starts_with("/sys/"))
        .collect();
    core.sort();
    let mut want = expected.to_vec();
    want.sort();
    assert_eq!(core, want, "mountinfo: {mounts}");
    // The rootfs, bind-mounted, is what / is.
    let root_line = mounts
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap();
    let rootfs = sb.rootfs.canonicalize().unwrap();
    assert_eq!(
        root_line.split(' ').nth(3).unwrap(),
        rootfs.to_str().unwrap()
    );
    // pivot_root leaves no put_old directory behind in the rootfs.
    let top: Vec<_> = std::fs::read_dir(&sb.rootfs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        !top.iter().any(|n| n.to_string_lossy().contains("old")),
        "{top:?}"
    );
}

#[test]
fn special_filesystems_and_devices() {
    let sb = Sandbox::new();
    let mounts = sb.ok(&["cat", "/proc/mounts"]);
    let opts = |target: &str| -> (String, String) {
        let l = mounts
            .lines()
            .find(|l| l.split(' ').nth(1) == Some(target))
            .unwrap_or_else(|| panic!("{target} not mounted: {mounts}"));
        let f: Vec<&str> = l.split(' ').collect();
        (f[2].to_string(), f[3].to_string())
    };
    assert_eq!(opts("/proc").0, "proc");
    let (fs, o) = opts("/sys");
    assert_eq!(fs, "sysfs");
    assert!(o.starts_with("ro,"), "/sys must be read-only: {o}");
    assert_eq!(opts("/dev").0, "tmpfs");
    let (fs, o) = opts("/dev/pts");
    assert_eq!(fs, "devpts");
    assert!(o.contains("ptmxmode=666"), "{o}");
    assert_eq!(opts("/dev/shm").0, "tmpfs");
    assert_eq!(opts("/dev/mqueue").0, "mqueue");
    // /sys is read-only for real.
    let out = sb.run(&["sh", "-c", "echo 1 > /sys/kernel/uevent_helper"]);
    assert!(!out.status.success());

    let devs = sb.ok(&[
        "sh",
        "-c",
        "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done",
    ]);
    let want = [
        "/dev/null character special file 1:3 666",
        "/dev/zero character special file 1:5 666",
        "/dev/full character special file 1:7 666",
        "/dev/random character special file 1:8 666",
        "/dev/urandom character special file 1:9 666",
        "/dev/tty character special file 5:0 666",
    ];
    assert_eq!(devs.lines().collect::<Vec<_>>(), want);
    let links = sb.ok(&[
        "sh",
        "-c",
        "for l in ptmx fd stdin stdout stderr; do echo $l $(readlink /dev/$l); done",
    ]);
    assert_eq!(
        links,
        "ptmx pts/ptmx\nfd /proc/self/fd\nstdin /proc/self/fd/0\nstdout /proc/self/fd/1\nstderr /proc/self/fd/2\n"
    );
    // The devices work: 16 bytes of /dev/urandom, /dev/full refuses writes.
    assert_eq!(
        sb.ok(&["sh", "-c", "head -c 16 /dev/urandom | wc -c"])
            .trim(),
        "16"
    );
    assert!(!sb.run(&["sh", "-c", "echo x > /dev/full"]).status.success());
}

#[test]
fn etc_files_are_provided_without_touching_the_rootfs() {
    let sb = Sandbox::new();
    std::fs::write(sb.rootfs.join("etc/hosts"), "10.9.9.9 rootfs-own\n").unwrap();
    let out = sb.ok(&[
        "--hostname",
        "web",
        "sh",
        "-c",
        "cat /etc/hostname; cat /etc/hosts; cat /etc/resolv.conf",
    ]);
    assert!(out.starts_with("web\n127.0.0.1\tlocalhost\n"), "{out}");
    assert!(!out.contains("rootfs-own"));
    for line in out.lines().filter(|l| l.starts_with("nameserver")) {
        let addr = line.split_whitespace().nth(1).unwrap();
        assert!(
            !addr.starts_with("127.") && addr != "::1",
            "loopback resolver kept: {line}"
        );
    }
    assert!(out.lines().any(|l| l.starts_with("nameserver")), "{out}");
    assert_eq!(
        std::fs::read_to_string(sb.rootfs.join("etc/hosts")).unwrap(),
        "10.9.9.9 rootfs-own\n"
    );
    // A rootfs without /etc/hostname gets an empty mount point for it; what
    // the container saw came from containr's copy.
    assert_eq!(std::fs::read(sb.rootfs.join("etc/hostname")).unwrap(), b"");
}

#[test]
fn environment() {
    let sb = Sandbox::new();
    let env_file = sb.dir.path().join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=1\nBOTH=file\n").unwrap();
    let mut cmd = sb.cmd(&[
        "run",
        "--rm",
        "--rootfs",
        sb.rootfs.to_str().unwrap(),
        "--hostname",
        "envbox",
        "--env-file",
        env_file.to_str().unwrap(),
        "-e",
        "BOTH=flag",
        "-e",
        "EMPTY=",
        "-e",
        "PASSED_THROUGH",
        "env",
    ]);
    cmd.env("PASSED_THROUGH", "from host")
        .env("NOT_PASSED", "secret");
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = String::from_utf8(out.stdout).unwrap();
    let mut lines: Vec<&str> = env.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "BOTH=flag",
            "EMPTY=",
            "FROM_FILE=1",
            "HOME=/root",
            "HOSTNAME=envbox",
            "PASSED_THROUGH=from host",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]
    );
}

#[test]
fn bad_environment_is_refused() {
    let sb = Sandbox::new();
    assert_fails(
        &sb.run(&["-e", "=x", "true"]),
        125,
        "invalid environment variable",
    );
    assert_fails(
        &sb.run(&["-e", "CONTAINR_SURELY_UNSET_VAR", "true"]),
        125,
        "has no '='",
    );
    let missing = sb.dir.path().join("nope.env");
    assert_fails(
        &sb.run(&["--env-file", missing.to_str().unwrap(), "true"]),
        125,
        "--env-file",
    );
}

#[test]
fn working_directory() {
    let sb = Sandbox::new();
    assert_eq!(sb.ok(&["pwd"]), "/\n");
    assert_eq!(sb.ok(&["-w", "/tmp", "pwd"]), "/tmp\n");
    // Created when missing, as docker does.
    assert_eq!(sb.ok(&["-w", "/new/dir", "pwd"]), "/new/dir\n");
    assert!(sb.rootfs.join("new/dir").is_dir());
    assert_fails(&sb.run(&["-w", "relative", "pwd"]), 125, "absolute path");
}

#[test]
fn user_switching() {
    let sb = Sandbox::new();
    assert_eq!(sb.ok(&["id"]), "uid=0(root) gid=0(root) groups=0(root)\n");
    assert_eq!(
        sb.ok(&["-u", "user", "id"]),
        "uid=1000(user) gid=1000(user) groups=10(wheel),100(users),1000(user)\n"
    );
    assert_eq!(
        sb.ok(&["-u", "1000:100", "sh", "-c", "id -u; id -g; echo $HOME"]),
        "1000\n100\n/home/user\n"
    );
    // A uid without a passwd entry works, with gid 0, as with docker.
    assert_eq!(
        sb.ok(&["-u", "4321", "sh", "-c", "id -u; id -g"]),
        "4321\n0\n"
    );
    assert_eq!(sb.ok(&["-u", "user:wheel", "id", "-g"]), "10\n");
    // The switch is real: an unprivileged user cannot write to /root.
    assert!(!sb.run(&["-u", "user", "touch", "/root/x"]).status.success());
}

#[test]
fn bad_users_are_refused() {
    let sb = Sandbox::new();
    assert_fails(
        &sb.run(&["-u", "nosuchuser", "id"]),
        125,
        "unable to find user nosuchuser",
    );
    assert_fails(
        &sb.run(&["-u", "user:nogroup2", "id"]),
        125,
        "unable to find group nogroup2",
    );
    assert_fails(&sb.run(&["-u", "a:b:c", "id"]), 125, "invalid user");
    assert_fails(&sb.run(&["-u", "", "id"]), 125, "invalid user");
}

#[test]
fn read_only_root() {
    let sb = Sandbox::new();
    let out = sb.run(&["--read-only", "touch", "/x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only file system"));
    assert!(!sb.rootfs.join("x").exists());
    // The container's own filesystems stay writable.
    sb.ok(&[
        "--read-only",
        "sh",
        "-c",
        "echo ok > /dev/shm/f && cat /dev/shm/f",
    ]);
    // Without the flag the root is writable.
    sb.ok(&["touch", "/y"]);
    assert!(sb.rootfs.join("y").exists());
}

#[test]
fn names_are_unique_while_the_container_lives() {
    let sb = Sandbox::new();
    let mut first = sb
        .cmd(&[
            "run",
            "--rm",
            "--rootfs",
            sb.rootfs.to_str().unwrap(),
            "--name",
            "web",
            "sleep",
            "3.141",
        ])
        .spawn()
        .unwrap();
    // Wait until the first container has claimed its name.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sb.data.join("containers/web.json").exists() {
        assert!(Instant::now() < deadline, "first container never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_fails(&sb.run(&["--name", "web", "true"]), 125, "already in use");
    assert_fails(
        &sb.run(&["--name", "bad/name", "true"]),
        125,
        "invalid container name",
    );
    assert!(first.wait().unwrap().success());
    // Released when the first one ended.
    sb.ok(&["--name", "web", "true"]);
}

#[test]
fn stdin_is_passed_only_with_i() {
    let sb = Sandbox::new();
    let mut child = sb
        .cmd(&[
            "run",
            "--rm",
            "--rootfs",
            sb.rootfs.to_str().unwrap(),
            "-i",
            "cat",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hi through a pipe\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "hi through a pipe\n"
    );
    // Without -i the command reads /dev/null, whatever stdin is.
    let mut child = sb
        .cmd(&[
            "run",
            "--rm",
            "--rootfs",
            sb.rootfs.to_str().unwrap(),
            "cat",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"must not arrive\n").unwrap();
    let out = child.wait_with_output().unwrap();
    drop(input);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"");
}

#[test]
fn signals_are_forwarded_to_the_command() {
    let sb = Sandbox::new();
    // To the command as PID 1 by containr, or by containr's init with
    // --init.
    for (sig, name, init) in [
        (nix::sys::signal::Signal::SIGTERM, "TERM", "--init"),
        (nix::sys::signal::Signal::SIGINT, "INT", "--init"),
        (nix::sys::signal::Signal::SIGHUP, "HUP", "--init"),
        (nix::sys::signal::Signal::SIGTERM, "TERM", ""),
        (nix::sys::signal::Signal::SIGINT, "INT", ""),
    ] {
        let script = format!(
            "trap 'echo got {name}; exit 7' {name}; echo ready; i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done"
        );
        let mut args = vec!["run", "--rm", "--rootfs", sb.rootfs.to_str().unwrap()];
        args.extend([init].iter().filter(|f| !f.is_empty()));
        args.extend(["sh", "-c", &script]);
        let mut child = sb.cmd(&args).stdout(Stdio::piped()).spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut buf = [0u8; 6];
        use std::io::Read;
        stdout.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ready\n");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(rest, format!("got {name}\n"));
        assert_eq!(status.code(), Some(7), "after SIG{name} ({init})");
    }
}

#[test]
fn init_reaps_orphans() {
    let sb = Sandbox::new();
    // The inner shell exits at once; its `sleep` is re-parented to PID 1
    // and must be reaped there when it ends, not left a zombie.
    let out = sb.ok(&[
        "--init",
        "sh",
        "-c",
        "sh -c 'sleep 0.2 & exit 0'; sleep 0.6; cat /proc/[0-9]*/stat | cut -d' ' -f1-3",
    ]);
    let zombies: Vec<&str> = out.lines().filter(|l| l.ends_with(" Z")).collect();
    assert!(
        zombies.is_empty(),
        "zombies in the container: {zombies:?}\n{out}"
    );
    // The issue's own example ends, with the status of the exec'd command.
    let out = sb.run(&[
        "--init",
        "sh",
        "-c",
        "sleep 0.2 & exec sh -c 'sleep 0.4; exit 4'",
    ]);
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn command_errors_use_docker_exit_codes() {
    let sb = Sandbox::new();
    assert_fails(
        &sb.run(&["no-such-command"]),
        127,
        "executable file not found in $PATH",
    );
    assert_fails(&sb.run(&["/bin/no-such"]), 127, "no such file or directory");
    std::fs::write(sb.rootfs.join("bin/script"), "#!/bin/sh\necho hi\n").unwrap();
    assert_fails(&sb.run(&["/bin/script"]), 126, "permission denied");
    assert_fails(&sb.run(&["/etc"]), 126, "is a directory");
    // Exec format errors are 126 too: an executable file that is no program.
    std::fs::write(sb.rootfs.join("bin/garbage"), "\x7fELFnot really").unwrap();
    std::fs::set_permissions(
        sb.rootfs.join("bin/garbage"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    assert_fails(&sb.run(&["/bin/garbage"]), 126, "exec format error");
}

#[test]
fn bad_invocations_are_one_line_errors() {
    let sb = Sandbox::new();
    let missing = sb.dir.path().join("missing");
    assert_fails(
        &sb.cmd(&["run", "--rootfs", missing.to_str().unwrap(), "true"])
            .output()
            .unwrap(),
        125,
        "no such directory",
    );
    let file = sb.dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    assert_fails(
        &sb.cmd(&["run", "--rootfs", file.to_str().unwrap(), "true"])
            .output()
            .unwrap(),
        125,
        "not a directory",
    );
    assert_fails(
        &sb.cmd(&[
            "run",
            "--rm",
            "--rootfs",
            sb.rootfs.to_str().unwrap(),
            "--bogus",
            "true",
        ])
        .output()
        .unwrap(),
        125,
        "--bogus",
    );
    assert_fails(&sb.run(&[]), 125, "no command given");
    assert_fails(
        &sb.run(&["--network", "container:x", "true"]),
        125,
        "no such running container",
    );
    assert_fails(
        &sb.run(&["--network", "wifi", "true"]),
        125,
        "unknown network mode",
    );
    assert_fails(&sb.cmd(&["run"]).output().unwrap(), 125, "--rootfs");
    // Without --rootfs, the first word is an image (never pulled here:
    // the tests reach no registry but their own on loopback).
    assert_fails(
        &sb.cmd(&["run", "--pull", "never", "true"])
            .output()
            .unwrap(),
        125,
        "No such image: true",
    );
}

#[test]
fn refuses_to_run_unprivileged() {
    let sb = Sandbox::new();
    // setpriv (util-linux) drops to nobody for the one command.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .arg("--root")
        .arg(&sb.data)
        .args(["run", "--rootfs", sb.rootfs.to_str().unwrap(), "true"])
        .output()
        .expect("setpriv");
    assert_fails(&out, 125, "must be run as root");
}

#[test]
fn help_reads_like_docker() {
    let out = std::process::Command::new(BIN)
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "-e, --env",
        "-w, --workdir",
        "-u, --user",
        "-i, --interactive",
        "-t, --tty",
        "-h, --hostname",
        "--read-only",
        "--name",
        "--rm",
    ] {
        assert!(help.contains(flag), "run --help lacks {flag}:\n{help}");
    }
}

#[test]
fn host_binary_cannot_be_overwritten_from_inside() {
    // CVE-2019-5736: a container that can reach containr's binary through
    // /proc/<pid>/exe could replace it for the next root run. Run a copy of
    // the binary so that a failure of this test cannot damage the build.
    let sb = Sandbox::new();
    let copy = sb.dir.path().join("containr-copy");
    std::fs::copy(BIN, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let attack = "for f in /proc/[0-9]*/exe; do \
                    if printf 'PWNED' > $f 2>/dev/null; then echo WROTE $f; fi; \
                    if printf 'PWNED' >> $f 2>/dev/null; then echo APPENDED $f; fi; \
                  done; \
                  readlink /proc/1/exe; echo done";
    // Default and --privileged (every capability, no seccomp, so it can
    // also try to remount the binary's mount read-write and to reopen an
    // fd of it for writing).
    let privileged_attack = format!(
        "exec 3</proc/1/exe; printf PWNED >> /proc/self/fd/3 2>/dev/null && echo WROTE fd; \\
         mount -o remount,rw /proc/1/exe 2>/dev/null && echo REMOUNTED; {attack}"
    );
    // Under --init, containr's init stays PID 1 for the container's life:
    // the target. (Without it, nothing of containr's is left inside.)
    for (flags, script) in [
        (vec!["--init"], attack.to_string()),
        (vec!["--init", "--privileged"], privileged_attack),
    ] {
        let out = std::process::Command::new(&copy)
            .arg("--root")
            .arg(&sb.data)
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                "--rootfs",
                sb.rootfs.to_str().unwrap(),
            ])
            .args(&flags)
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.ends_with("done\n"),
            "attack script did not run ({flags:?}): {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for sign in ["WROTE", "APPENDED", "REMOUNTED"] {
            assert!(!stdout.contains(sign), "{flags:?}: {stdout}");
        }
        assert!(
            std::fs::read(&copy).unwrap() == before,
            "the host binary was modified ({flags:?})"
        );
    }
}

#[test]
fn no_host_descriptor_reaches_the_container() {
    // CVE-2024-21626: an fd of the host (here, a directory fd of the host's
    // /, deliberately left inheritable) must not be open in the container.
    let sb = Sandbox::new();
    let host_root = std::fs::File::open("/").unwrap();
    let raw = host_root.as_raw_fd();
    let mut cmd = sb.cmd(&[
        "run",
        "--rm",
        "--rootfs",
        sb.rootfs.to_str().unwrap(),
        "sh",
        "-c",
        "ls -l /proc/self/fd/",
    ]);
    // SAFETY: dup2 and fcntl are async-signal-safe; they only give the
    // child an inheritable copy at fd 9.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::dup2(raw, 9)?;
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    // `ls -l` lines end in `FD -> TARGET`, or in `FD` alone where the link
    // vanished before ls read it: 0-2 are stdio, 3 is the directory ls
    // itself is reading.
    let fds: Vec<(u32, Option<&str>)> = listing
        .lines()
        .skip(1)
        .map(|l| {
            let (left, target) = match l.split_once(" -> ") {
                Some((left, t)) => (left, Some(t)),
                None => (l, None),
            };
            (left.rsplit(' ').next().unwrap().parse().unwrap(), target)
        })
        .collect();
    let numbers: Vec<u32> = fds.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, vec![0, 1, 2, 3], "{listing}");
    assert!(
        fds[3]
            .1
            .is_none_or(|t| t.starts_with("/proc/") && t.ends_with("/fd")),
        "{listing}"
    );
    drop(host_root);
}

#[test]
fn explain_walks_through_every_primitive() {
    let sb = Sandbox::new();
    let out = sb
        .cmd(&[
            "--explain",
            "run",
            "--rm",
            "--rootfs",
            sb.rootfs.to_str().unwrap(),
            "--hostname",
            "teach",
            "echo",
            "hi",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    // The walkthrough is output the user asked for: on stdout, around the
    // command's own, with nothing on stderr.
    assert_eq!(out.stderr, b"", "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8(out.stdout).unwrap();
    let (steps, own): (Vec<&str>, Vec<&str>) = err.lines().partition(|l| l.starts_with('['));
    assert_eq!(own, ["hi"], "{err}");
    // Numbered 1..N without gaps or repeats, across the three processes.
    for (i, line) in steps.iter().enumerate() {
        let n: usize = line[1..line.find(']').unwrap()].trim().parse().unwrap();
        assert_eq!(n, i + 1, "step numbering broken at {line:?}\n{err}");
    }
    for primitive in [
        "read-only bind mount",
        "clone(CLONE_NEWUTS|CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWIPC|CLONE_NEWNET",
        "sethostname(\"teach\")",
        "SIOCSIFFLAGS",
        "MS_PRIVATE",
        "pivot_root",
        "MNT_DETACH",
        "mount(proc, ",
        "mount(sysfs, ",
        "mount(devpts, /dev/pts",
        "mknod",
        "/etc/resolv.conf",
        "PID 1 execs the command in its own place",
        "setuid(0)",
        "execve(\"/bin/echo\"",
        "waitpid(init) -> 0",
    ] {
        assert!(
            err.contains(primitive),
            "--explain lacks {primitive:?}:\n{err}"
        );
    }
    // One spelling of flags everywhere: `A|B`, never `MsFlags(A | B)`.
    assert!(!err.contains("Flags("), "{err}");
    assert!(!err.contains(" | "), "{err}");
}

#[test]
fn explain_leaves_a_tar_on_stdout_alone() {
    let sb = Sandbox::new();
    // From an image, export mounts the container's overlay: steps to show.
    let tarball = sb.rootfs_tar("rootfs.tar");
    sb.containr_ok(&["import", tarball.to_str().unwrap(), "bb"]);
    sb.containr_ok(&["run", "--name", "tarred", "bb", "true"]);
    let out = sb.cmd(&["--explain", "export", "tarred"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("fsmount"),
        "the walkthrough goes to stderr: {err}"
    );
    let names: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .expect("a tar on stdout")
        .map(|e| {
            e.expect("a whole tar")
                .path()
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("bin/busybox")),
        "{names:?}"
    );
    sb.containr_ok(&["rm", "tarred"]);
}

#[test]
fn explain_names_man_pages_and_labs_and_speaks_json() {
    let sb = Sandbox::new();
    let rootfs = sb.rootfs.to_str().unwrap();
    let run = |explain: &str| {
        sb.containr_ok(&[
            explain,
            "run",
            "--rm",
            "--network",
            "none",
            "--rootfs",
            rootfs,
            "echo",
            "hi",
        ])
    };
    let text = run("--explain");
    let pivot = text
        .lines()
        .find(|l| l.contains("pivot_root(\".\", \".\")"))
        .unwrap_or_else(|| panic!("no pivot_root step:\n{text}"));
    assert!(pivot.ends_with("  [pivot_root(2), lab 2]"), "{pivot}");
    for line in text.lines().filter(|l| l.contains("  mount(")) {
        assert!(line.ends_with("  [mount(2), lab 2]"), "{line}");
    }

    let json = run("--explain=json");
    let (steps, own): (Vec<&str>, Vec<&str>) = json.lines().partition(|l| l.starts_with('{'));
    assert_eq!(own, ["hi"], "{json}");
    let steps: Vec<serde_json::Value> = steps
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(
        steps.len(),
        text.lines().filter(|l| l.starts_with('[')).count()
    );
    for (i, step) in steps.iter().enumerate() {
        assert_eq!(step["step"], i as u64 + 1, "{step}");
        assert!(step["time_ms"].as_f64().unwrap() >= 0.0, "{step}");
        assert!(step["text"].is_string(), "{step}");
    }
    let by_call = |name: &str| {
        steps
            .iter()
            .find(|s| s["syscall"] == name && s["arguments"].is_string())
            .unwrap_or_else(|| panic!("no {name} step: {json}"))
    };
    let pivot = by_call("pivot_root");
    assert_eq!(pivot["arguments"], "\".\", \".\"");
    assert_eq!(pivot["man"], "pivot_root(2)");
    assert_eq!(pivot["lab"], 2);
    assert!(
        pivot["why"]
            .as_str()
            .unwrap()
            .starts_with("the rootfs becomes /"),
        "{pivot}"
    );
    assert_eq!(
        by_call("execve")["arguments"],
        "\"/bin/echo\", [\"echo\", \"hi\"]"
    );
    assert_eq!(by_call("sethostname")["lab"], 1);

    let bad = sb
        .cmd(&["--explain=yaml", "run", "--rm", "--rootfs", rootfs, "true"])
        .output()
        .unwrap();
    assert_fails(&bad, 125, "yaml");
}

#[test]
fn missing_arguments_are_named_with_the_commands_help() {
    for (args, named, help) in [
        // (`load` needs no argument: without -i it reads stdin, as docker's.)
        (&["tag", "bb"][..], "<TARGET>", "containr tag --help"),
        (&["rm"][..], "<CONTAINER>", "containr rm --help"),
        (
            &["import", "bb.tar"][..],
            "<NAME>",
            "containr import --help",
        ),
        (
            &["image", "inspect"][..],
            "<IMAGE>",
            "containr image inspect --help",
        ),
        (
            &["run", "--no-such-flag"][..],
            "--no-such-flag",
            "containr run --help",
        ),
    ] {
        let out = std::process::Command::new(BIN).args(args).output().unwrap();
        assert_fails(&out, 125, named);
        assert_fails(&out, 125, &format!("(see '{help}')"));
    }
}

#[test]
fn nothing_is_left_running_after_exit() {
    let sb = Sandbox::new();
    let marker = "7.31415926";
    // Background processes of the container die with it.
    sb.ok(&[
        "sh",
        "-c",
        &format!("sleep {marker} & sleep {marker} & echo started"),
    ]);
    assert!(
        processes_with(marker).is_empty(),
        "{:?}",
        processes_with(marker)
    );
    sb.assert_clean();
}

#[test]
fn missing_mount_points_are_made_0755_and_files_0644() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let r = &sb.rootfs;
    for gone in [
        "proc",
        "sys",
        "etc/hostname",
        "etc/hosts",
        "etc/resolv.conf",
    ] {
        let p = r.join(gone);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else if p.exists() {
            std::fs::remove_file(&p).unwrap();
        }
    }
    sb.ok(&["-w", "/made/here", "true"]);
    for (path, mode) in [
        ("proc", 0o755),
        ("sys", 0o755),
        ("made", 0o755),
        ("made/here", 0o755),
        ("etc/hostname", 0o644),
        ("etc/hosts", 0o644),
        ("etc/resolv.conf", 0o644),
    ] {
        let m = std::fs::symlink_metadata(r.join(path)).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, mode, "{path}");
    }
}

#[test]
fn a_rootfs_whose_dev_is_a_symlink_is_a_one_line_error() {
    let sb = Sandbox::new();
    let dev = sb.rootfs.join("dev");
    std::fs::remove_dir_all(&dev).unwrap();
    std::os::unix::fs::symlink("/tmp", &dev).unwrap();
    assert_fails(
        &sb.run(&["true"]),
        125,
        "the rootfs's /dev is a symlink to /tmp, not a directory",
    );
    // Nothing was mounted over the symlink's target either.
    assert_eq!(std::fs::read_dir(sb.rootfs.join("tmp")).unwrap().count(), 0);
}

//! The harness of the containr-oci tests: a bundle on the sandbox's
//! busybox rootfs, a state root of its own, and `containr-oci` (a symlink
//! to the binary) to drive them; nothing of any container left at the end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{BIN, Sandbox};

pub const TIMEOUT: Duration = Duration::from_secs(15);

/// A bundle on the sandbox's busybox rootfs, a state root of its own, and
/// `containr-oci` (a symlink to the binary) to drive them.
pub struct Oci {
    pub sb: Sandbox,
    pub bin: PathBuf,
    pub root: PathBuf,
    pub bundle: PathBuf,
    /// Container ids made by this test (and so to check for leftovers).
    pub ids: std::cell::RefCell<Vec<String>>,
}

impl Oci {
    /// A bundle whose process runs `args`, without a terminal.
    pub fn new(args: &[&str]) -> Oci {
        let sb = Sandbox::new();
        let bin = sb.dir.path().join("containr-oci");
        std::os::unix::fs::symlink(BIN, &bin).unwrap();
        let root = sb.dir.path().join("state");
        let bundle = sb.dir.path().join("bundle");
        std::fs::create_dir(&bundle).unwrap();
        let oci = Oci {
            sb,
            bin,
            root,
            bundle,
            ids: Default::default(),
        };
        let out = oci.run_in(&oci.bundle, &["spec"]);
        assert!(out.status.success(), "{}", stderr(&out));
        oci.edit(|c| {
            c["root"]["path"] = oci.sb.rootfs.to_str().unwrap().into();
            c["process"]["terminal"] = false.into();
            c["process"]["args"] = args.into();
        });
        oci
    }

    pub fn config(&self) -> PathBuf {
        self.bundle.join("config.json")
    }

    /// Change the bundle's config.json.
    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut c: Value = serde_json::from_slice(&std::fs::read(self.config()).unwrap()).unwrap();
        f(&mut c);
        std::fs::write(self.config(), serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }

    /// A fresh container id (ids name cgroups host-wide: tests run in parallel).
    pub fn id(&self, name: &str) -> String {
        let id = format!("{name}-{}-{}", std::process::id(), self.ids.borrow().len());
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// `containr-oci --root ROOT ARGS...`, with stdin closed.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null());
        c
    }

    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.cmd(args).current_dir(dir).output().unwrap()
    }

    /// Run a command that exits at once; its output.
    pub fn out(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Run and expect success; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.out(args);
        assert!(
            out.status.success(),
            "containr-oci {args:?} failed ({:?}): {}",
            out.status.code(),
            stderr(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `create`, its stdio (and so the container's) going to files in the
    /// sandbox: a pipe would stay open as long as the container lives.
    pub fn create(&self, id: &str, extra: &[&str]) -> Output {
        let logs = self.sb.dir.path();
        let mut args = vec!["create", "--bundle", self.bundle.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(id);
        let status = self
            .cmd(&args)
            .stdout(std::fs::File::create(logs.join(format!("{id}.out"))).unwrap())
            .stderr(std::fs::File::create(logs.join(format!("{id}.err"))).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: vec![],
            stderr: std::fs::read(logs.join(format!("{id}.err"))).unwrap(),
        }
    }

    pub fn create_ok(&self, id: &str, extra: &[&str]) {
        let out = self.create(id, extra);
        assert!(out.status.success(), "create {id}: {}", stderr(&out));
    }

    /// What the container wrote to its stdout.
    pub fn output_of(&self, id: &str) -> String {
        std::fs::read_to_string(self.sb.dir.path().join(format!("{id}.out"))).unwrap()
    }

    /// Wait until the container's stdout holds `needle`.
    pub fn wait_output(&self, id: &str, needle: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while !self.output_of(id).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "{id} never printed {needle:?}: {:?}",
                self.output_of(id)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state prints JSON")
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// Wait for the container to reach `status`.
    pub fn wait_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while self.status(id) != status {
            assert!(Instant::now() < deadline, "{id} never became {status}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The directories of the container's cgroup, from its recorded state
    /// (on v1, those made: a hierarchy no resource needs is not joined).
    pub fn cgroup_dirs(&self, id: &str) -> Vec<PathBuf> {
        let state: Value =
            serde_json::from_slice(&std::fs::read(self.root.join(id).join("state.json")).unwrap())
                .unwrap();
        match &state["cgroup"]["location"] {
            Value::Object(o) if o.contains_key("V2") => vec![o["V2"].as_str().unwrap().into()],
            Value::Object(o) => o["V1"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| PathBuf::from(e[1].as_str().unwrap()))
                .filter(|d| d.is_dir())
                .collect(),
            v => panic!("no cgroup in the state: {v}"),
        }
    }
}

impl Drop for Oci {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for id in self.ids.borrow().iter() {
                let _ = self.out(&["delete", "--force", id]);
            }
            return;
        }
        // Nothing of any container is left: state, cgroup (named by its id).
        let left: Vec<_> = std::fs::read_dir(&self.root)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "state left in {}: {left:?}",
            self.root.display()
        );
        for id in self.ids.borrow().iter() {
            let cgroups = find_dirs(Path::new("/sys/fs/cgroup"), id, 8);
            assert!(cgroups.is_empty(), "cgroups of {id} left: {cgroups:?}");
        }
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Directories named `name` under `dir`, at most `depth` levels down.
pub fn find_dirs(dir: &Path, name: &str, depth: usize) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if depth == 0 {
        return found;
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if e.file_name() == name {
                found.push(e.path());
            }
            found.extend(find_dirs(&e.path(), name, depth - 1));
        }
    }
    found
}

/// Assert a runtime error: status 1 (runc's) and one line naming `needle`.
pub fn assert_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.starts_with("containr-oci: "), "{err:?}");
    assert!(err.contains(needle), "{err:?} should contain {needle:?}");
}

/// Accept one connection on a `--console-socket` listener and take the
/// terminal's master the runtime sends over it.
pub fn receive_terminal(listener: &std::os::unix::net::UnixListener) -> std::fs::File {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 64];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .unwrap();
    let mut master = None;
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just gave us this descriptor.
            master = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    std::fs::File::from(master.expect("a descriptor came with the message"))
}

/// What the terminal's master reads until `needle` shows (or the terminal
/// closes), within [`TIMEOUT`].
pub fn read_terminal_until(term: &mut std::fs::File, needle: &str) -> String {
    use std::io::Read;
    let mut seen = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            String::from_utf8_lossy(&seen)
        );
        match term.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

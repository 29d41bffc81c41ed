//! Runs the examples of a Markdown document as written and checks their
//! documented output: the README's (tests/readme.rs), and the lab book's.
//!
//! The convention, for whoever writes a document:
//!
//! - A fenced block whose info string is `console` is an example; no other
//!   block is run. Its `$ COMMAND` lines are commands, run in order by
//!   `bash -c`; the lines up to the next `$ ` are the output it must print
//!   (stdout and stderr together, as a terminal shows them). A command must
//!   exit 0 (`$ cmd; echo $?` shows a status instead).
//! - `$ COMMAND &` runs in the background until the block ends, when it gets
//!   SIGTERM; the command after it is retried for up to 10 s until its
//!   output matches (a server takes a moment to listen).
//! - A command with `-it` runs on a pseudo-terminal; its output is the
//!   session, in which a line starting with the prompt `/ # ` (busybox sh
//!   as root) is typed once that prompt shows.
//! - In an expected output, a line `...` stands for any number of lines,
//!   a run of spaces matches any run of spaces (tables realign), and blank
//!   lines at the start or the end do not count.
//! - `<!-- example vary="REGEX" -->` on the line before a block: what REGEX
//!   matches (in both the document's output and the real one) compares
//!   equal: ids, addresses, times. `vary="..."` may be repeated.
//!
//! What the runner substitutes, so that examples read as a user types them
//! after `scripts/quickstart`: a `sudo ` at the start of a command or after
//! `| ` is dropped (tests run as root); `/srv/busybox` is a busybox rootfs
//! of the test's own; `containr` is the binary under test; the data root is
//! a throwaway one for the whole document (`$CONTAINR_ROOT`); commands start
//! in a directory of the test's own where `docs/` is the checkout's (a lab
//! runs `docs/labs/mini-container.sh` as from the checkout). In the real
//! output, the test's rootfs and data root read `/srv/busybox` and
//! `/var/lib/containr` again.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use regex::Regex;

use super::Sandbox;
use super::pty::{Term, winsize};

/// The rootfs path the documents use, made by `scripts/quickstart`.
pub const ROOTFS: &str = "/srv/busybox";
/// The prompt of an interactive busybox shell as root.
pub const PROMPT: &str = "/ # ";
/// Longest a command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a command after a background one is retried.
const RETRY_FOR: Duration = Duration::from_secs(10);

/// One `console` block.
#[derive(Debug)]
pub struct Block {
    /// 1-based line of the opening fence.
    pub line: usize,
    pub vary: Vec<String>,
    pub steps: Vec<Step>,
}

#[derive(Debug)]
pub struct Step {
    pub command: String,
    pub expected: Vec<String>,
}

impl Step {
    /// The command of a `$ COMMAND &` step.
    pub fn background(&self) -> Option<&str> {
        self.command.strip_suffix(" &")
    }

    pub fn interactive(&self) -> bool {
        self.command
            .split_whitespace()
            .any(|w| w == "-it" || w == "-ti")
    }
}

impl Block {
    /// The block's `vary` patterns; `at` names it when one is no regex.
    pub fn vary_patterns(&self, at: &str) -> Vec<Regex> {
        self.vary
            .iter()
            .map(|v| Regex::new(v).unwrap_or_else(|e| panic!("{at}: vary={v:?}: {e}")))
            .collect()
    }
}

/// A command as the tests run it, as root: without the `sudo ` a reader
/// types.
pub fn as_root(line: &str) -> String {
    let sudo = Regex::new(r"(^|\|\s*)sudo ").unwrap();
    sudo.replace_all(line, "$1").into_owned()
}

/// The example blocks of a Markdown document.
pub fn parse(markdown: &str) -> Vec<Block> {
    let marker = Regex::new(r#"^<!--\s*example\b(.*)-->\s*$"#).unwrap();
    let vary = Regex::new(r#"vary="([^"]*)""#).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    let mut in_other_fence = false;
    let mut before = "";
    for (i, line) in markdown.lines().enumerate() {
        if let Some(block) = current.as_mut() {
            if line.trim_end() == "```" {
                blocks.push(current.take().unwrap());
            } else if let Some(cmd) = line.strip_prefix("$ ") {
                block.steps.push(Step {
                    command: cmd.trim_end().to_string(),
                    expected: Vec::new(),
                });
            } else if let Some(step) = block.steps.last_mut() {
                step.expected.push(line.to_string());
            } else {
                panic!("line {}: a console block must start with `$ `", i + 1);
            }
            continue;
        }
        if let Some(info) = line.trim_start().strip_prefix("```") {
            if in_other_fence {
                in_other_fence = false;
            } else if info.trim() == "console" {
                let vary = marker
                    .captures(before.trim())
                    .map(|c| {
                        vary.captures_iter(&c[1])
                            .map(|v| v[1].to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                current = Some(Block {
                    line: i + 1,
                    vary,
                    steps: Vec::new(),
                });
            } else {
                in_other_fence = true;
            }
        }
        if !line.trim().is_empty() {
            before = line;
        }
    }
    assert!(current.is_none(), "a console block is not closed");
    blocks
}

/// Run every example of the document at `path`; panics naming the first
/// that fails, with what it printed.
pub fn run_document(path: &Path) {
    let text = std::fs::read_to_string(path).expect("read the document");
    let blocks = parse(&text);
    assert!(!blocks.is_empty(), "{} has no examples", path.display());
    let sb = Sandbox::new();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    std::os::unix::fs::symlink(docs, sb.dir.path().join("docs")).expect("link docs/");
    let ctx = Context::new(&sb);
    for block in &blocks {
        ctx.run_block(&format!("{}:{}", path.display(), block.line), block);
    }
}

struct Context<'a> {
    sb: &'a Sandbox,
    rootfs: String,
    data: String,
    path: String,
}

/// A background command, stopped however the block ends.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl<'a> Context<'a> {
    fn new(sb: &'a Sandbox) -> Context<'a> {
        let bin_dir = Path::new(super::BIN).parent().unwrap();
        // containr-oci, as scripts/install makes it: a link to the binary.
        let links = sb.dir.path().join("oci-bin");
        std::fs::create_dir(&links).expect("mkdir oci-bin");
        std::os::unix::fs::symlink(super::BIN, links.join("containr-oci"))
            .expect("link containr-oci");
        Context {
            sb,
            rootfs: sb.rootfs.to_str().unwrap().to_string(),
            data: sb.data.to_str().unwrap().to_string(),
            path: format!(
                "{}:{}:{}",
                links.display(),
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        }
    }

    /// The command as the test runs it; with `exec`, bash becomes it, so
    /// that a signal or a terminal session reaches it.
    fn command(&self, line: &str, exec: bool) -> Command {
        let line = as_root(line).replace(ROOTFS, &self.rootfs);
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(if exec { format!("exec {line}") } else { line })
            .env("PATH", &self.path)
            .env("CONTAINR_ROOT", &self.sb.data)
            .env("CONTAINR_OCI_ROOT", self.sb.dir.path().join("oci-state"))
            .current_dir(self.sb.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    /// Real output, with the test's own paths read back as the document's.
    fn unsubstitute(&self, out: &str) -> String {
        out.replace(&self.rootfs, ROOTFS)
            .replace(&self.data, "/var/lib/containr")
    }

    fn run_block(&self, at: &str, block: &Block) {
        let vary = block.vary_patterns(at);
        let mut background = Vec::new();
        let mut retry = false;
        for step in &block.steps {
            let ctx = format!("{at}: `$ {}`", step.command);
            if let Some(cmd) = step.background() {
                let mut c = self.command(cmd, true);
                c.stdout(Stdio::null()).stderr(Stdio::null());
                background.push(Background(c.spawn().expect("spawn bash")));
                retry = true;
                continue;
            }
            let deadline = Instant::now() + if retry { RETRY_FOR } else { Duration::ZERO };
            loop {
                let (ok, actual) = if step.interactive() {
                    self.run_interactive(&ctx, step)
                } else {
                    self.run_plain(&ctx, &step.command)
                };
                let matched = ok && matches(&step.expected, &actual, &vary);
                if matched {
                    break;
                }
                if Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
                panic!(
                    "{ctx} {}:\n--- expected\n{}\n--- got\n{}",
                    if ok {
                        "printed something else"
                    } else {
                        "failed"
                    },
                    step.expected.join("\n"),
                    actual.join("\n")
                );
            }
            retry = false;
        }
        drop(background);
    }

    /// Run to completion; whether it exited 0, and its output lines.
    fn run_plain(&self, ctx: &str, line: &str) -> (bool, Vec<String>) {
        let (mut reader, writer) = std::io::pipe().expect("pipe");
        let mut cmd = self.command(line, false);
        cmd.stdout(writer.try_clone().unwrap()).stderr(writer);
        let mut child = cmd.spawn().expect("spawn bash");
        drop(cmd);
        let reading = std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = reader.read_to_end(&mut out);
            out
        });
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{ctx} did not end within {COMMAND_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let out = String::from_utf8_lossy(&reading.join().unwrap()).into_owned();
        (status.success(), lines(&self.unsubstitute(&out)))
    }

    /// Run on a terminal, typing the session's input lines at its prompts.
    fn run_interactive(&self, ctx: &str, step: &Step) -> (bool, Vec<String>) {
        let mut term = Term::spawn(self.command(&step.command, true), winsize(24, 80));
        let mut prompts = 0;
        for line in &step.expected {
            let Some(input) = line.strip_prefix(PROMPT) else {
                continue;
            };
            prompts += 1;
            let deadline = Instant::now() + COMMAND_TIMEOUT;
            while clean_terminal(&term.text()).matches(PROMPT).count() < prompts {
                assert!(
                    Instant::now() < deadline,
                    "{ctx}: no prompt {prompts}; the terminal shows {:?}",
                    term.text()
                );
                term.pump(Duration::from_millis(100));
            }
            term.send(&format!("{input}\r"));
        }
        let status = term.wait();
        let out = clean_terminal(&term.text());
        (status.success(), lines(&self.unsubstitute(&out)))
    }
}

/// What a terminal shows as plain text: no carriage returns or escape
/// sequences.
fn clean_terminal(s: &str) -> String {
    let csi = Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]").unwrap();
    csi.replace_all(s, "").replace('\r', "")
}

/// The lines of `s`, without blank ones at the start or the end.
pub fn lines(s: &str) -> Vec<String> {
    let all: Vec<&str> = s.lines().collect();
    let first = all.iter().position(|l| !l.trim().is_empty());
    let last = all.iter().rposition(|l| !l.trim().is_empty());
    match (first, last) {
        (Some(a), Some(b)) => all[a..=b].iter().map(|l| l.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Whether `actual` is what `expected` documents (see the module's doc).
pub fn matches(expected: &[String], actual: &[String], vary: &[Regex]) -> bool {
    let norm = |l: &str| {
        let l = vary.iter().fold(l.to_string(), |l, v| {
            v.replace_all(&l, "\u{1}").into_owned()
        });
        l.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let exp: Vec<String> = lines(&expected.join("\n"))
        .iter()
        .map(|l| norm(l))
        .collect();
    let act: Vec<String> = actual.iter().map(|l| norm(l)).collect();
    // ok[i][j]: exp[i..] matches act[j..].
    let mut ok = vec![vec![false; act.len() + 1]; exp.len() + 1];
    ok[exp.len()][act.len()] = true;
    for i in (0..exp.len()).rev() {
        for j in (0..=act.len()).rev() {
            ok[i][j] = if exp[i] == "..." {
                ok[i + 1][j] || (j < act.len() && ok[i][j + 1])
            } else {
                j < act.len() && exp[i] == act[j] && ok[i + 1][j + 1]
            };
        }
    }
    ok[0][0]
}

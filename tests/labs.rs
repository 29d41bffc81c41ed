//! The lab book (docs/labs/) runs as written: every `console` block of
//! every lab, with the output it shows. The convention is
//! `common::examples`'s; relative paths start where `docs/` is the
//! checkout's, so lab 8 runs `docs/labs/mini-container.sh` as a student in
//! the checkout does.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use common::examples::{self, Block};

/// The labs, in order; each has a test below.
const LABS: [&str; 8] = [
    "01-namespaces.md",
    "02-rootfs.md",
    "03-cgroups.md",
    "04-images.md",
    "05-networking.md",
    "06-confinement.md",
    "07-attacks.md",
    "08-build-your-own.md",
];

/// The labs the pure cgroup v2 VM runs (`labs_hold_on_pure_cgroup_v2`):
/// those whose outputs depend on the cgroup version. Not lab 4 (it pulls
/// from a registry) nor lab 5 (it wires the host's network): the VM has no
/// network device and no nf_tables. Not labs 6 and 7: nothing in them
/// depends on the cgroup version, they need python3 and gcc, which the VM
/// lacks, and each lab costs the VM suite time under TCG.
const IN_VM: [&str; 4] = [LABS[0], LABS[1], LABS[2], LABS[7]];

/// One lab at a time: they measure CPU time and count processes and
/// forks, which other labs running at once would disturb.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/labs")
}

fn run(lab: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let path = dir().join(lab);
    clean_up_first(&path);
    common::examples::run_document(&path);
}

/// Run the lab's own "Clean up" block once before it, ignoring failures:
/// a lab interrupted half-way (a failed run) leaves its files, links and
/// tables behind, and the next run would trip on them.
fn clean_up_first(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let (_, tail) = text
        .split_once("\n## Clean up\n")
        .unwrap_or_else(|| panic!("{} has no Clean up section", path.display()));
    // Never the host's /var/lib/containr: a data root of its own.
    let data = tempfile::tempdir().expect("temp dir");
    let bin_dir = Path::new(common::BIN).parent().unwrap().to_owned();
    let path_var = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for block in common::examples::parse(tail) {
        for step in block.steps {
            let _ = Command::new("bash")
                .arg("-c")
                .arg(&step.command)
                .env("PATH", &path_var)
                .env("CONTAINR_ROOT", data.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[test]
fn lab1_namespaces() {
    run(LABS[0]);
}

#[test]
fn lab2_rootfs() {
    run(LABS[1]);
}

#[test]
fn lab3_cgroups() {
    run(LABS[2]);
}

#[test]
fn lab4_images() {
    run(LABS[3]);
}

#[test]
fn lab5_networking() {
    run(LABS[4]);
}

#[test]
fn lab6_confinement() {
    run(LABS[5]);
}

#[test]
fn lab7_attacks() {
    run(LABS[6]);
}

#[test]
fn lab8_build_your_own() {
    run(LABS[7]);
}

#[test]
fn every_lab_is_tested_and_in_the_index() {
    let index = std::fs::read_to_string(dir().join("README.md")).unwrap();
    let mut found: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md") && n != "README.md")
        .collect();
    found.sort();
    assert_eq!(found, LABS, "docs/labs/ and the tests' list differ");
    for lab in LABS {
        assert!(
            index.contains(&format!("]({lab})")),
            "docs/labs/README.md does not link {lab}"
        );
    }
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(
        readme.contains("](docs/labs/README.md)"),
        "README.md does not link the lab book"
    );
}

#[test]
fn lab8_shows_the_script_it_runs() {
    // The script is shown in a `sh` block and run from its file: they
    // must be the same text.
    let lab = std::fs::read_to_string(dir().join(LABS[7])).unwrap();
    let script = std::fs::read_to_string(dir().join("mini-container.sh")).unwrap();
    let shown = lab
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```\n"))
        .map(|(block, _)| block)
        .expect("lab 8 shows its script in a sh block");
    assert_eq!(shown, script);
}

/// A student on a pure cgroup v2 host (Debian 12's default) sees what the
/// labs show: `tests/vm/run` boots the VM (`cgroup_no_v1=all`) with
/// `tests/vm/labs` and the commands of the labs in `IN_VM` (the blocks
/// `runs_containr_or_reads_cgroups` picks), parsed here
/// with the host runner's parser; the VM prints what each printed, and
/// this compares it with the lab with the host runner's matching. The
/// programs the commands name are copied in from this host, as a Debian
/// student has them (busybox's differ: `ps`, `ipcs`, `findmnt`, ...).
#[test]
fn labs_hold_on_pure_cgroup_v2() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut script = std::fs::read_to_string(repo.join("tests/vm/labs")).unwrap();
    // The files the labs run (mini-container.sh), where they find them.
    for entry in std::fs::read_dir(dir()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".md") {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            script += &heredoc(&format!("file docs/labs/{name}"), &text);
        }
    }
    let texts: Vec<(String, String)> = IN_VM
        .iter()
        .map(|lab| {
            let text = std::fs::read_to_string(dir().join(lab)).unwrap();
            (format!("docs/labs/{lab}"), text)
        })
        .collect();
    let all = std::env::var_os("CONTAINR_VM_LABS_ALL").is_some();
    let mut blocks: Vec<(String, Block)> = Vec::new();
    for (name, text) in &texts {
        for block in examples::parse(text) {
            if !(all || runs_containr_or_reads_cgroups(&block)) {
                continue;
            }
            // A terminal session needs a pseudo-terminal the VM script has
            // not got: none of these labs has one yet.
            assert!(
                !block.steps.iter().any(|s| s.interactive()),
                "{name}:{}: an -it step cannot run in the VM",
                block.line
            );
            blocks.push((format!("{name}:{}", block.line), block));
        }
    }
    let mut tools = BTreeSet::from(["bash".to_string()]);
    let mut sent = 0;
    for (b, (_, block)) in blocks.iter().enumerate() {
        let mut after_background = false;
        for (s, step) in block.steps.iter().enumerate() {
            let (kind, command) = match step.background() {
                Some(cmd) => ("background", cmd),
                None if after_background => ("retry", step.command.as_str()),
                None => ("plain", step.command.as_str()),
            };
            after_background = kind == "background";
            let command = examples::as_root(command);
            tools.extend(host_programs(&command));
            script += &heredoc(&format!("step {b} {s} {kind}"), &command);
            sent += 1;
        }
        script += "endblock\n";
    }
    script += "finish\n";

    let tmp = tempfile::tempdir().unwrap();
    let scenarios = tmp.path().join("labs");
    let console = tmp.path().join("console");
    std::fs::write(&scenarios, script).unwrap();
    let tools: Vec<String> = tools.into_iter().collect();
    let out = Command::new(repo.join("tests/vm/run"))
        .arg(common::BIN)
        .env("CONTAINR_VM_SCENARIOS", &scenarios)
        .env("CONTAINR_VM_TOOLS", tools.join(" "))
        .env("CONTAINR_VM_CONSOLE", &console)
        .stdin(Stdio::null())
        .output()
        .expect("run tests/vm/run");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    let console = std::fs::read_to_string(&console).unwrap_or_default();
    assert!(
        out.status.success() && report.contains(&format!("vm: {sent} passed, 0 failed")),
        "the VM did not run the labs' {sent} commands ({}):\n{report}",
        out.status
    );

    let ran = attempts(&console);
    let mut failed = Vec::new();
    let mut compared = 0;
    // Where the VM's time goes, for whoever has to make it shorter.
    let mut secs: std::collections::BTreeMap<&str, f64> = Default::default();
    for (b, (at, block)) in blocks.iter().enumerate() {
        let vary = block.vary_patterns(at);
        for (s, step) in block.steps.iter().enumerate() {
            if step.background().is_some() {
                continue;
            }
            compared += 1;
            let tries = ran.get(&(b, s)).map(Vec::as_slice).unwrap_or_default();
            let ok = tries
                .iter()
                .any(|a| a.status == 0 && examples::matches(&step.expected, &a.output, &vary));
            let lab = at.split(':').next().unwrap_or_default();
            *secs.entry(lab).or_default() += tries.iter().map(|a| a.secs).sum::<f64>();
            if !ok {
                let got = tries
                    .last()
                    .map(|a| format!("{}\n(exit {})", a.output.join("\n"), a.status))
                    .unwrap_or_else(|| "(it never ran)".into());
                failed.push(format!(
                    "{at}: `$ {}`:\n--- expected\n{}\n--- got on pure cgroup v2\n{got}",
                    step.command,
                    step.expected.join("\n")
                ));
            }
        }
    }
    for (lab, s) in &secs {
        println!("# {lab}: {s:.1} s of commands in the VM");
    }
    assert!(compared > 0, "no command of the labs was compared");
    assert!(
        failed.is_empty(),
        "{} of {compared} commands print something else on pure cgroup v2:\n\n{}",
        failed.len(),
        failed.join("\n\n")
    );
}

/// Whether a block's output can depend on the cgroup version: it runs
/// containr or reads `/sys/fs/cgroup`. The VM runs only those (unless
/// `CONTAINR_VM_LABS_ALL` is set): under TCG each command costs seconds,
/// and the others (`unshare`, `chroot`, the shell script of lab 8) never
/// touch a cgroup; the host runs them all.
fn runs_containr_or_reads_cgroups(block: &Block) -> bool {
    block
        .steps
        .iter()
        .any(|s| s.command.contains("containr ") || s.command.contains("/sys/fs/cgroup"))
}

/// A call of a `tests/vm/labs` function with `text` on its stdin.
fn heredoc(call: &str, text: &str) -> String {
    const END: &str = "@@EOF";
    assert!(
        !text.lines().any(|l| l == END),
        "a line of {call} reads {END}"
    );
    let nl = if text.ends_with('\n') { "" } else { "\n" };
    format!("{call} <<'{END}'\n{text}{nl}{END}\n")
}

/// The words of `command` that name a program on this host's PATH (a few
/// extra, like `echo`, cost nothing); never containr, the binary under test.
fn host_programs(command: &str) -> Vec<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    command
        .split(|c: char| !(c.is_ascii_alphanumeric() || "_.-".contains(c)))
        .filter(|w| !w.is_empty() && !w.starts_with(['-', '.']) && *w != "containr")
        .filter(|w| {
            dirs.iter().any(|d| {
                std::fs::metadata(d.join(w))
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
        })
        .map(str::to_string)
        .collect()
}

/// One run of a command in the VM.
struct Attempt {
    status: i32,
    secs: f64,
    output: Vec<String>,
}

/// What `tests/vm/labs` printed: per (block, step), each attempt.
fn attempts(console: &str) -> HashMap<(usize, usize), Vec<Attempt>> {
    let mut ran: HashMap<(usize, usize), Vec<Attempt>> = HashMap::new();
    let mut output: Option<String> = None;
    let number = |w: Option<&str>| w.and_then(|w| w.parse::<i64>().ok()).unwrap_or(-1);
    for line in console.lines() {
        if line.starts_with("@@out ") {
            output = Some(String::new());
        } else if let Some(l) = line.strip_prefix("@@| ") {
            if let Some(o) = output.as_mut() {
                o.push_str(l);
                o.push('\n');
            }
        } else if line == "@@|" {
            if let Some(o) = output.as_mut() {
                o.push('\n');
            }
        } else if let Some(rest) = line.strip_prefix("@@rc ") {
            let mut w = rest.split_whitespace();
            let (b, s) = (number(w.next()), number(w.next()));
            let _attempt = w.next();
            let status = number(w.next()) as i32;
            let secs: f64 = w.next().and_then(|t| t.parse().ok()).unwrap_or(0.0);
            if let Some(o) = output.take() {
                ran.entry((b as usize, s as usize))
                    .or_default()
                    .push(Attempt {
                        status,
                        secs,
                        output: examples::lines(&o),
                    });
            }
        }
    }
    ran
}

#[test]
fn the_vm_protocol_is_read_back_as_printed() {
    // Kernel and VM lines between the markers are not output; an empty
    // line is; the second try of a retried command is kept.
    let console = "\
vm: no usable KVM here
@@out 0 1 1
@@| first
@@|
@@| last
[   12.3] random: crng init done

@@rc 0 1 1 0 2.5
@@out 3 0 1
@@rc 3 0 1 1 0.4
@@out 3 0 2
@@| up
@@rc 3 0 2 0 0.3
@@out 4 0 1
@@| cut short by a timeout
";
    let ran = attempts(console);
    let one = &ran[&(0, 1)];
    assert_eq!(one.len(), 1);
    assert_eq!((one[0].status, one[0].secs), (0, 2.5));
    assert_eq!(one[0].output, ["first", "", "last"]);
    let retried = &ran[&(3, 0)];
    assert_eq!(
        retried
            .iter()
            .map(|a| (a.status, a.output.join("|")))
            .collect::<Vec<_>>(),
        [(1, String::new()), (0, "up".to_string())]
    );
    assert!(!ran.contains_key(&(4, 0)), "a command that never ended");
    assert_eq!(ran.len(), 2);
}

#[test]
fn the_vm_gets_the_host_programs_a_command_names() {
    let found = host_programs("unshare --pid --fork ps -ef | grep -c x; no-such-program-here");
    for p in ["unshare", "ps", "grep"] {
        assert!(found.iter().any(|f| f == p), "{p} not in {found:?}");
    }
    assert!(
        !found
            .iter()
            .any(|f| f.starts_with('-') || f.starts_with("no-such"))
    );
    assert!(
        host_programs("containr run x")
            .iter()
            .all(|f| f != "containr")
    );
}

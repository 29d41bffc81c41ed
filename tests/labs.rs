//! The lab book (docs/labs/) runs as written: every `console` block of
//! every lab, with the output it shows. The convention is
//! `common::examples`'s; relative paths start where `docs/` is the
//! checkout's, so lab 8 runs `docs/labs/mini-container.sh` as a student in
//! the checkout does.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

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

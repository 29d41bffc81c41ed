//! `scripts/install` and the helpers every script builds and elevates with
//! (`scripts/lib.sh`), run as a user would run them.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::BIN;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed with {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("containr-install.")
        .tempdir()
        .unwrap();
    // Others (nobody, below) may look inside.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn install_puts_the_binary_its_man_pages_and_completions_under_prefix() {
    let prefix = tempdir();
    let p = prefix.path();
    let said = ok(Command::new(repo().join("scripts/install"))
        .arg(BIN)
        .env("PREFIX", p)
        .output()
        .unwrap());
    assert!(said.contains("installed"), "{said}");
    let version = ok(Command::new(p.join("bin/containr"))
        .arg("--version")
        .output()
        .unwrap());
    assert!(version.starts_with("containr "), "{version}");
    // The OCI runtime is the same binary under another name.
    let oci = ok(Command::new(p.join("bin/containr-oci"))
        .arg("--version")
        .output()
        .unwrap());
    assert!(oci.starts_with("containr-oci version "), "{oci}");
    assert!(oci.contains("\nspec: "), "{oci}");
    // A page for containr and for each command, generated from the binary.
    let man = p.join("share/man/man1");
    for (page, title) in [
        ("containr.1", ".TH containr 1"),
        ("containr-run.1", ".TH containr-run 1"),
        ("containr-image-inspect.1", ".TH containr-image-inspect 1"),
    ] {
        let text = std::fs::read_to_string(man.join(page)).unwrap();
        assert!(text.contains(title), "{page}: {text:.200}");
    }
    let run = std::fs::read_to_string(man.join("containr-run.1")).unwrap();
    assert!(
        run.contains("userns\\-remap"),
        "run's page lacks its options"
    );
    assert!(
        !man.join("containr-init.1").exists(),
        "hidden commands get no page"
    );
    // bash loads the completion and binds it to containr.
    let bash = p.join("share/bash-completion/completions/containr");
    let bound = ok(Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p containr", bash.display()))
        .output()
        .unwrap());
    assert!(bound.contains("-F _containr containr"), "{bound}");
    let zsh = std::fs::read_to_string(p.join("share/zsh/site-functions/_containr")).unwrap();
    assert!(zsh.starts_with("#compdef containr"), "{zsh:.40}");
    let fish =
        std::fs::read_to_string(p.join("share/fish/vendor_completions.d/containr.fish")).unwrap();
    assert!(fish.contains("complete -c containr"), "{fish:.80}");
}

/// `as_user cargo ARGS` from scripts/lib.sh, with a cargo of the test's
/// own that says who runs it.
fn as_user_cargo(env: &[(&str, &str)], cargo_home: &Path) -> String {
    let bin = cargo_home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let cargo = bin.join("cargo");
    std::fs::write(&cargo, "#!/bin/sh\necho \"$(id -un) $*\"\n").unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(". scripts/lib.sh && as_user cargo build --release")
        .current_dir(repo())
        .env_remove("SUDO_USER")
        .env("CARGO_HOME", cargo_home);
    for (k, v) in env {
        c.env(k, v);
    }
    ok(c.output().unwrap())
}

#[test]
fn through_sudo_the_invoking_user_builds_with_their_cargo() {
    assert!(nix::unistd::geteuid().is_root(), "run as root");
    let home = tempdir();
    // What sudo leaves: root, SUDO_USER, and a PATH without ~/.cargo/bin.
    let said = as_user_cargo(
        &[
            ("SUDO_USER", "nobody"),
            ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        ],
        home.path(),
    );
    assert_eq!(said, "nobody build --release\n");
    // As root itself, root builds.
    let said = as_user_cargo(&[("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")], home.path());
    assert_eq!(said, "root build --release\n");
}

#[test]
fn without_root_or_sudo_the_scripts_say_what_to_do() {
    // A user on a machine without sudo: PATH holds only what lib.sh uses.
    let dir = tempdir();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink("/usr/bin/id", bin.join("id")).unwrap();
    let out = Command::new("/usr/bin/setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/bin/bash",
            "-c",
        ])
        .arg(". scripts/lib.sh && as_root true")
        .current_dir(repo())
        .env("PATH", &bin)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("'true' needs root, and there is no sudo"),
        "{err}"
    );
}

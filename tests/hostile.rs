//! Pulling from a registry that misbehaves on purpose
//! (tests/helpers/hostile_registry.py on 127.0.0.1): whatever it sends, a
//! pull ends in bounded time and space, with a one-line error, status 125,
//! and a store `verify` finds clean; what it left is listed as leftovers.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::registry::{Compression, Hostile, Layout, Registry, host_arch, tar_dir, tar_of};
use common::{Sandbox, assert_fails};
use serde_json::json;

/// The small image's only layer (tests/helpers/hostile_registry.py).
const LAYER_SIZE: u64 = 266240;

/// `containr verify` exits 0 and finds no problem; its output.
fn verified(sb: &Sandbox) -> String {
    let out = sb.containr_ok(&["verify"]);
    assert!(out.ends_with("no problems\n"), "{out}");
    out
}

/// A pull of `name` with `args` before it, timed.
fn timed_pull(sb: &Sandbox, args: &[&str], env: &[(&str, &str)], name: &str) -> (Output, Duration) {
    let mut full = args.to_vec();
    full.extend(["pull", "-q", name]);
    let mut cmd = sb.cmd(&full);
    cmd.envs(env.iter().copied());
    let t0 = Instant::now();
    let out = cmd.output().unwrap();
    (out, t0.elapsed())
}

fn blob_requests(reg: &Hostile) -> Vec<String> {
    reg.requests()
        .into_iter()
        .filter(|r| r.contains("/blobs/"))
        .collect()
}

struct Case {
    case: &'static str,
    needle: &'static str,
    /// Refused from what was declared: no blob is asked for.
    before_blobs: bool,
    /// What arrived may be the blob's start: kept to resume, and listed by
    /// verify as a leftover.
    keeps_partial: bool,
}

#[test]
fn every_refusal_is_one_line_status_125_bounded_and_verify_clean() {
    let sb = Sandbox::new();
    let reg = Hostile::start();
    let layer_is_declared = "the registry sent more than its declared 266240 bytes";
    let cases = [
        Case {
            case: "huge",
            needle: ":1: 931.3 GiB to download do not fit: the data root has",
            before_blobs: true,
            keeps_partial: false,
        },
        Case {
            case: "layers",
            needle: ":1: 10000 layers, more than the 125 an image may have (docker's limit)",
            before_blobs: true,
            keeps_partial: false,
        },
        Case {
            case: "bigconfig",
            needle: "is 200 MiB, more than the 8 MiB a pull accepts",
            before_blobs: true,
            keeps_partial: false,
        },
        Case {
            case: "bigmanifest",
            needle: "hostile/bigmanifest:1 is 200 MiB, more than the 4 MiB a pull accepts",
            before_blobs: true,
            keeps_partial: false,
        },
        Case {
            case: "streammanifest",
            needle: "hostile/streammanifest:1 goes on past the 4 MiB a pull accepts",
            before_blobs: true,
            keeps_partial: false,
        },
        Case {
            case: "bigindex",
            needle: "is 953.7 MiB, more than the 4 MiB a pull accepts",
            before_blobs: true,
            keeps_partial: false,
        },
        Case {
            case: "notjson",
            needle: "hostile/notjson:1: the manifest is not JSON",
            before_blobs: true,
            keeps_partial: false,
        },
        Case {
            case: "endless",
            needle: layer_is_declared,
            before_blobs: false,
            keeps_partial: false,
        },
        Case {
            case: "longer",
            needle: layer_is_declared,
            before_blobs: false,
            keeps_partial: false,
        },
        Case {
            case: "digest",
            needle: "digest mismatch",
            before_blobs: false,
            keeps_partial: false,
        },
        Case {
            case: "short",
            needle: "size mismatch",
            before_blobs: false,
            keeps_partial: false,
        },
        Case {
            case: "redirect",
            needle: "too many redirects",
            before_blobs: false,
            keeps_partial: false,
        },
        Case {
            case: "truncated",
            needle: "(run the pull again to resume)",
            before_blobs: false,
            keeps_partial: true,
        },
    ];
    for c in &cases {
        reg.clear();
        let (out, took) = timed_pull(&sb, &[], &[], &reg.name(c.case));
        assert_fails(&out, 125, c.needle);
        assert!(took < Duration::from_secs(15), "{}: took {took:?}", c.case);
        if c.before_blobs {
            assert_eq!(blob_requests(&reg), Vec::<String>::new(), "{}", c.case);
            // Nor, for the index, the manifest it names.
            let manifests = reg
                .requests()
                .iter()
                .filter(|r| r.contains("/manifests/"))
                .count();
            assert_eq!(manifests, 1, "{}: {:?}", c.case, reg.requests());
        }
        assert_nothing_stored(&sb, c.case, c.keeps_partial);
    }
    // A stalled or trickling download fails once the window has passed
    // under the minimum rate, set by flags or by the environment.
    for (case, args, env, needle) in [
        (
            "stall",
            &["--min-rate", "1k", "--rate-window", "2"][..],
            &[][..],
            "0 B/s over the last 2s, under the minimum of 1 KiB/s (--min-rate, --rate-window)",
        ),
        (
            "trickle",
            &[][..],
            &[("CONTAINR_MIN_RATE", "1k"), ("CONTAINR_RATE_WINDOW", "2")][..],
            " B/s over the last 2s, under the minimum of 1 KiB/s",
        ),
    ] {
        let (out, took) = timed_pull(&sb, args, env, &reg.name(case));
        assert_fails(&out, 125, needle);
        // The blob is named.
        assert_fails(&out, 125, "downloading sha256:");
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(8),
            "{case}: took {took:?}"
        );
        assert_nothing_stored(&sb, case, case == "trickle");
    }
    // A registry that takes the request and answers nothing: the same
    // window bounds the wait.
    let (out, took) = timed_pull(&sb, &["--rate-window", "2"], &[], &reg.name("silent"));
    assert_fails(&out, 125, "timed out (receive response)");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "silent: took {took:?}"
    );
    assert_nothing_stored(&sb, "silent", false);
}

/// No blob, snapshot or name; no temporary file; `verify` clean, and a
/// partial download only where one may be resumed, listed as a leftover
/// (then swept, for the next case).
fn assert_nothing_stored(sb: &Sandbox, case: &str, keeps_partial: bool) {
    assert_eq!(sb.entries("blobs/sha256"), Vec::<String>::new(), "{case}");
    assert_eq!(sb.entries("blobs/tmp"), Vec::<String>::new(), "{case}");
    assert!(sb.snapshots().is_empty(), "{case}");
    assert_eq!(sb.containr_ok(&["images", "-q"]), "", "{case}");
    let out = verified(sb);
    let partials = sb.entries("blobs/partial");
    if keeps_partial {
        assert_eq!(partials.len(), 1, "{case}");
        assert!(
            out.contains(&format!(
                "leftover: {} (left by an interrupted command, not corruption",
                sb.data.join("blobs/partial").join(&partials[0]).display()
            )),
            "{case}: {out}"
        );
        sb.containr_ok(&["gc"]);
    } else {
        assert!(partials.is_empty(), "{case}: {partials:?}");
        assert!(!out.contains("leftover"), "{case}: {out}");
    }
}

#[test]
fn a_resumed_download_that_does_not_verify_is_done_again_from_zero() {
    let sb = Sandbox::new();
    let reg = Hostile::start();
    // Garbage where a partial download of the layer would be, as another
    // registry could have left it.
    let (out, _) = timed_pull(&sb, &[], &[], &reg.name("truncated"));
    assert_fails(&out, 125, "(run the pull again to resume)");
    let partial = sb
        .data
        .join("blobs/partial")
        .join(&sb.entries("blobs/partial")[0]);
    std::fs::write(&partial, vec![0x5a; 5000]).unwrap();
    reg.clear();
    let (out, took) = timed_pull(&sb, &[], &[], &reg.name("good"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let hex = partial.file_name().unwrap().to_str().unwrap().to_string();
    let layer: Vec<String> = blob_requests(&reg)
        .into_iter()
        .filter(|r| r.contains(&hex))
        .collect();
    // Resumed at byte 5000, which did not verify; then the whole blob.
    assert_eq!(layer.len(), 2, "{layer:?}");
    assert!(layer[0].ends_with(" bytes=5000-"), "{layer:?}");
    assert!(!layer[1].contains("bytes="), "{layer:?}");
    assert!(sb.entries("blobs/partial").is_empty());
    assert_eq!(
        std::fs::metadata(sb.data.join("blobs/sha256").join(&hex))
            .unwrap()
            .len(),
        LAYER_SIZE
    );
    assert!(!verified(&sb).contains("leftover"));
}

/// A tmpfs on the sandbox's data root, unmounted when dropped.
struct SmallDisk<'a>(&'a Sandbox);

impl<'a> SmallDisk<'a> {
    fn mount(sb: &'a Sandbox, size: &str) -> SmallDisk<'a> {
        std::fs::create_dir_all(&sb.data).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&sb.data)
            .status()
            .unwrap();
        assert!(ok.success());
        SmallDisk(sb)
    }
}

impl Drop for SmallDisk<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0.data).status();
    }
}

#[test]
fn a_download_stops_when_free_space_falls_under_the_reserve() {
    let sb = Sandbox::new();
    let reg = Hostile::start();
    let disk = SmallDisk::mount(&sb, "48m");
    // The 12 MiB layer fits above the reserve when the pull starts; then
    // the disk fills while it is under way (at ~2 MiB/s).
    let mut child = sb
        .cmd(&["--disk-reserve", "24m", "pull", "-q", &reg.name("slow")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let partial_size = || {
        sb.entries("blobs/partial")
            .iter()
            .filter_map(|p| std::fs::metadata(sb.data.join("blobs/partial").join(p)).ok())
            .map(|m| m.len())
            .max()
            .unwrap_or(0)
    };
    while partial_size() < 2 << 20 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the download never got going"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull ended too soon"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let filler = sb.data.join("filler");
    std::fs::write(&filler, vec![1u8; 26 << 20]).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert_fails(
        &out,
        125,
        "free, under the reserve of 24 MiB (--disk-reserve)",
    );
    // What was written is gone with the space it took.
    assert!(sb.entries("blobs/partial").is_empty());
    std::fs::remove_file(&filler).unwrap();
    assert_nothing_stored(&sb, "slow", false);
    // With room again, the same pull goes through.
    let (out, _) = timed_pull(&sb, &["--disk-reserve", "24m"], &[], &reg.name("slow"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    verified(&sb);
    drop(disk);
}

#[test]
fn a_killed_run_rm_leaves_its_writable_layer_to_the_next_ps_pull_or_run() {
    let sb = Sandbox::new();
    let reg = Hostile::start();
    let tar = sb.rootfs_tar("rootfs.tar");
    sb.containr_ok(&["import", tar.to_str().unwrap(), "killed:1"]);
    // The next command after each kill: ps, pull, then run.
    for next in [
        &["ps"][..],
        &["pull", "-q", &reg.name("good")][..],
        &["run", "--rm", "killed:1", "true"][..],
    ] {
        let mut run = sb
            .cmd(&["run", "--rm", "killed:1", "sleep", "100"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while sb.entries("rw").is_empty() {
            assert!(t0.elapsed() < Duration::from_secs(10), "no writable layer");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Its init is under way: give it the time to mount its overlay.
        std::thread::sleep(Duration::from_millis(300));
        run.kill().unwrap();
        run.wait().unwrap();
        let rw = sb.entries("rw");
        assert_eq!(rw.len(), 1, "{rw:?}");
        let out = verified(&sb);
        assert!(
            out.contains(&format!(
                "leftover: {} (left by an interrupted command",
                sb.data.join("rw").join(&rw[0]).display()
            )),
            "{out}"
        );
        sb.containr_ok(next);
        assert!(
            sb.entries("rw").is_empty(),
            "{next:?} left {:?}",
            sb.entries("rw")
        );
        assert!(!verified(&sb).contains("leftover"));
    }
}

#[test]
fn the_deepest_image_a_pull_accepts_runs_with_and_without_a_user_namespace() {
    let sb = Sandbox::new();
    let reg = Registry::start();
    let mut layout = Layout::new(&sb.dir.path().join("oci"));
    // 125 layers: more than one page of mount options or one fsconfig
    // value can name.
    let mut layers = vec![(tar_dir(&sb.rootfs), Compression::Gzip)];
    for i in 1..125 {
        let name = format!("l/{i}");
        layers.push((
            tar_of(&[("l", None), (&name, Some(b"x"))]),
            Compression::None,
        ));
    }
    let m = layout.image(
        &layers,
        json!({"Cmd": ["sh", "-c", "ls /l | wc -l"]}),
        host_arch(),
    );
    layout.tag("1", &m);
    reg.push(&layout.dir, "1", "test/deep:1", false);
    let name = format!("{}/test/deep:1", reg.host);
    sb.containr_ok(&["pull", "-q", &name]);
    assert_eq!(sb.snapshots().len(), 125);
    assert_eq!(sb.containr_ok(&["run", "--rm", &name]), "124\n");
    assert_eq!(
        sb.containr_ok(&["run", "--rm", "--userns-remap", &name]),
        "124\n"
    );
    verified(&sb);
}

/// A gzip of a few hundred KiB: a tar of one file of 256 MiB of zeros.
fn decompression_bomb() -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(256 << 20);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    b.append_data(
        &mut h,
        "zeros",
        std::io::Read::take(std::io::repeat(0), 256 << 20),
    )
    .unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

/// The same bomb as the only layer of a docker-archive.
fn bomb_archive(layer: &[u8]) -> Vec<u8> {
    let config = json!({
        "architecture": host_arch(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", "0".repeat(64))]},
    })
    .to_string();
    let manifest = json!([{
        "Config": "config.json", "RepoTags": ["bomb:latest"], "Layers": ["layer.tar"],
    }])
    .to_string();
    tar_of(&[
        ("config.json", Some(config.as_bytes())),
        ("layer.tar", Some(layer)),
        ("manifest.json", Some(manifest.as_bytes())),
    ])
}

#[test]
fn unpacking_a_decompression_bomb_stops_at_the_reserve() {
    let sb = Sandbox::new();
    let layer = decompression_bomb();
    assert!(layer.len() < 2 << 20, "{}", layer.len());
    let files = tempfile::tempdir().unwrap();
    let bomb = files.path().join("bomb.tar.gz");
    std::fs::write(&bomb, &layer).unwrap();
    let archive = files.path().join("bomb-archive.tar");
    std::fs::write(&archive, bomb_archive(&layer)).unwrap();
    let disk = SmallDisk::mount(&sb, "48m");
    let bomb = bomb.to_str().unwrap();
    let archive = archive.to_str().unwrap();
    for args in [
        vec!["--disk-reserve", "16m", "import", bomb, "bomb"],
        vec!["--disk-reserve", "16m", "load", "-i", archive],
    ] {
        let t0 = Instant::now();
        let out = sb.cmd(&args).output().unwrap();
        let took = t0.elapsed();
        assert_fails(&out, 125, ": unpacking stopped: the data root has ");
        assert_fails(
            &out,
            125,
            "free, under the reserve of 16 MiB (--disk-reserve)",
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("layer "), "{args:?}: {err}");
        assert!(took < Duration::from_secs(30), "{args:?}: took {took:?}");
        // The half-made snapshot went with the blob that made it.
        assert_eq!(sb.entries("snapshots"), Vec::<String>::new(), "{args:?}");
        assert_nothing_stored(&sb, args[2], false);
        let free = nix::sys::statvfs::statvfs(&sb.data).unwrap();
        assert!(
            free.blocks_available() as u64 * free.fragment_size() as u64 > 40 << 20,
            "{args:?}: the disk was left full"
        );
    }
    drop(disk);
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// An OCI layout of one image named `big:latest`: a config of
/// `config_pad` extra bytes, a manifest of `layers` (one small layer
/// repeated) padded by `manifest_pad` bytes of annotation.
fn oci_archive(config_pad: usize, layers: usize, manifest_pad: usize) -> Vec<u8> {
    let layer = tar_of(&[("hello", Some(b"hi\n".as_slice()))]);
    let layer_hex = sha256_hex(&layer);
    let config = json!({
        "architecture": host_arch(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": vec![format!("sha256:{layer_hex}"); layers]},
        "comment": "x".repeat(config_pad),
    })
    .to_string();
    let config_hex = sha256_hex(config.as_bytes());
    let desc = json!({
        "mediaType": "application/vnd.oci.image.layer.v1.tar",
        "digest": format!("sha256:{layer_hex}"), "size": layer.len(),
    });
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": format!("sha256:{config_hex}"), "size": config.len()},
        "layers": vec![desc; layers],
        "annotations": {"pad": "x".repeat(manifest_pad)},
    })
    .to_string();
    let manifest_hex = sha256_hex(manifest.as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": format!("sha256:{manifest_hex}"), "size": manifest.len(),
                       "annotations": {"io.containerd.image.name": "docker.io/library/big:latest"}}],
    })
    .to_string();
    let paths = [
        format!("blobs/sha256/{layer_hex}"),
        format!("blobs/sha256/{config_hex}"),
        format!("blobs/sha256/{manifest_hex}"),
    ];
    tar_of(&[
        (
            "oci-layout",
            Some(br#"{"imageLayoutVersion":"1.0.0"}"#.as_slice()),
        ),
        (&paths[0], Some(&layer)),
        (&paths[1], Some(config.as_bytes())),
        (&paths[2], Some(manifest.as_bytes())),
        ("index.json", Some(index.as_bytes())),
    ])
}

#[test]
fn load_applies_the_limits_of_a_pull() {
    let sb = Sandbox::new();
    let files = tempfile::tempdir().unwrap();
    let cases = [
        (
            "126 layers",
            oci_archive(0, 126, 0),
            "126 layers, more than the 125 an image may have (docker's limit)",
        ),
        (
            "a 9 MiB config",
            oci_archive(9 << 20, 1, 0),
            "MiB, more than the 8 MiB a pull or load accepts",
        ),
        (
            "a 5 MiB manifest",
            oci_archive(0, 1, 5 << 20),
            "MiB, more than the 4 MiB a pull or load accepts",
        ),
    ];
    for (case, archive, needle) in cases {
        let path = files.path().join("image.tar");
        std::fs::write(&path, archive).unwrap();
        let t0 = Instant::now();
        let out = sb
            .cmd(&["load", "-i", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_fails(&out, 125, needle);
        assert!(t0.elapsed() < Duration::from_secs(30), "{case}");
        assert_eq!(sb.entries("snapshots"), Vec::<String>::new(), "{case}");
        assert_nothing_stored(&sb, case, false);
    }
    // The deepest image a pull accepts loads.
    let path = files.path().join("image.tar");
    std::fs::write(&path, oci_archive(0, 125, 0)).unwrap();
    assert_eq!(
        sb.containr_ok(&["load", "-i", path.to_str().unwrap()]),
        "Loaded image: docker.io/library/big:latest\n"
    );
}

//! Seccomp: docker's JSON profile format, compiled with libseccomp into a
//! BPF program on the host side, loaded by the command right before exec.
//!
//! The default profile is data the project owns (`seccomp_default.json`,
//! equal in effect to docker's default). Compiling on the host means a bad
//! profile is reported before any container exists, and the container's
//! side only makes one `seccomp(2)` call.

use std::collections::HashMap;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use serde::Deserialize;

use super::Error;
use super::caps;

/// The default profile.
const DEFAULT_PROFILE: &str = include_str!("seccomp_default.json");

/// Which profile.
#[derive(Debug, Clone)]
pub enum Choice {
    Default,
    Unconfined,
    /// A profile file in docker's format.
    File(String),
}

/// Docker's seccomp profile format (the parts that matter on Linux).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u16>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u16>,
    #[serde(default)]
    args: Vec<Arg>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// Docker's short architecture names for the native libseccomp one.
fn docker_arch(arch: ScmpArch) -> &'static [&'static str] {
    match arch {
        ScmpArch::X8664 => &["amd64", "x86_64"],
        ScmpArch::X86 => &["x86", "386"],
        ScmpArch::X32 => &["x32"],
        ScmpArch::Aarch64 => &["arm64", "aarch64"],
        ScmpArch::Arm => &["arm"],
        _ => &[],
    }
}

/// The running kernel's (major, minor).
fn kernel_version() -> (u32, u32) {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    parse_version(&release).unwrap_or((0, 0))
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn action(name: &str, errno: Option<u16>, default_errno: u16) -> Result<ScmpAction, String> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(errno.unwrap_or(default_errno) as i32),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_TRACE" => ScmpAction::Trace(errno.unwrap_or(default_errno)),
        other => return Err(format!("unknown action {other:?}")),
    })
}

fn compare(arg: &Arg) -> Result<ScmpArgCompare, String> {
    let op: ScmpCompareOp = arg
        .op
        .parse()
        .map_err(|_| format!("unknown operator {:?}", arg.op))?;
    Ok(match op {
        // docker: for MASKED_EQ, value is the mask and valueTwo the result.
        ScmpCompareOp::MaskedEqual(_) => ScmpArgCompare::new(
            arg.index,
            ScmpCompareOp::MaskedEqual(arg.value),
            arg.value_two,
        ),
        op => ScmpArgCompare::new(arg.index, op, arg.value),
    })
}

/// [`compile`], remembered in `cache_dir`: libseccomp takes 15-20 ms for
/// the default profile, which would double a container's start-up. The key
/// covers everything the program depends on: the profile's text, the
/// capabilities, the kernel and libseccomp versions, and containr's own.
pub fn compile_cached(
    choice: &Choice,
    caps: &[u8],
    cache_dir: &std::path::Path,
) -> Result<Vec<u8>, Error> {
    use std::hash::{Hash, Hasher};
    let text = profile_text(choice)?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        &text,
        caps,
        kernel_version(),
        format!("{:?}", libseccomp::ScmpVersion::current().ok()),
        env!("CARGO_PKG_VERSION"),
        "tree", // the program's shape: entries made before it are not reused
        format!("{:?}", ScmpArch::native()),
    )
        .hash(&mut h);
    let path = cache_dir.join(format!("seccomp-{:016x}.bpf", h.finish()));
    if let Ok(bpf) = std::fs::read(&path)
        && !bpf.is_empty()
        && bpf.len() % 8 == 0
    {
        return Ok(bpf);
    }
    let bpf = compile_text(choice, &text, caps)?;
    // Best effort: a cache that cannot be written only costs time.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::create_dir_all(cache_dir).is_ok() && std::fs::write(&tmp, &bpf).is_ok() {
        let _ = std::fs::rename(&tmp, &path);
    }
    Ok(bpf)
}

fn profile_text(choice: &Choice) -> Result<String, Error> {
    match choice {
        Choice::Default => Ok(DEFAULT_PROFILE.to_string()),
        Choice::File(path) => std::fs::read_to_string(path).map_err(|e| Error::Profile {
            path: path.clone(),
            why: e.to_string(),
        }),
        Choice::Unconfined => unreachable!("unconfined compiles to nothing"),
    }
}

/// Compile the chosen profile for a container holding `caps`.
pub fn compile(choice: &Choice, caps: &[u8]) -> Result<Vec<u8>, Error> {
    compile_text(choice, &profile_text(choice)?, caps)
}

fn compile_text(choice: &Choice, text: &str, caps: &[u8]) -> Result<Vec<u8>, Error> {
    let (path, strict) = match choice {
        Choice::File(path) => (path.clone(), true),
        _ => ("(default)".to_string(), false),
    };
    let err = |why: String| Error::Profile {
        path: path.clone(),
        why,
    };
    let profile: Profile =
        serde_json::from_str(text).map_err(|e| err(format!("not a valid profile: {e}")))?;
    build(&profile, caps, strict).map_err(err)
}

/// `strict`: a syscall name this libseccomp does not know on any of the
/// profile's architectures is an error (a user's typo), rather than a name
/// newer than the library (skipped, as docker does, for the default).
fn build(profile: &Profile, caps: &[u8], strict: bool) -> Result<Vec<u8>, String> {
    let default_errno = profile.default_errno_ret.unwrap_or(libc::EPERM as u16);
    let default = action(&profile.default_action, None, default_errno)?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| e.to_string())?;
    // containr sets no_new_privs itself, or deliberately not.
    ctx.set_ctl_nnp(false).map_err(|e| e.to_string())?;
    // A binary tree of syscall numbers instead of a list: when the filter
    // is installed the kernel runs it for every syscall of every arch to
    // find the always-allowed ones, and that walk was 1.7 ms of each start
    // with the list (983 instructions). Where this libseccomp cannot, the
    // list still works.
    let _ = ctx.set_ctl_optimize(2);

    let native = ScmpArch::native();
    let mut arches = vec![native];
    for m in &profile.arch_map {
        let arch: Result<ScmpArch, _> = m.architecture.parse();
        if arch.is_ok_and(|a| a == native) {
            for sub in m.sub_architectures.iter().flatten() {
                let a: ScmpArch = sub
                    .parse()
                    .map_err(|_| format!("unknown architecture {sub:?}"))?;
                arches.push(a);
            }
        }
    }
    for a in &profile.architectures {
        let a: ScmpArch = a
            .parse()
            .map_err(|_| format!("unknown architecture {a:?}"))?;
        if !arches.contains(&a) {
            arches.push(a);
        }
    }
    for a in &arches[1..] {
        ctx.add_arch(*a)
            .map_err(|e| format!("architecture {a:?}: {e}"))?;
    }

    let have: Vec<String> = caps::names(caps);
    let kernel = kernel_version();
    let native_docker = docker_arch(native);
    let applies = |f: &Filter, include: bool| -> bool {
        let caps_ok = f.caps.iter().all(|c| have.iter().any(|h| h == c));
        let arch_ok = f.arches.iter().any(|a| native_docker.contains(&a.as_str()));
        let kernel_ok = f
            .min_kernel
            .as_deref()
            .and_then(parse_version)
            .is_none_or(|min| kernel >= min);
        if include {
            (f.caps.is_empty() || caps_ok) && (f.arches.is_empty() || arch_ok) && kernel_ok
        } else {
            // An exclude applies if any of its conditions holds.
            (!f.caps.is_empty() && caps_ok) || (!f.arches.is_empty() && arch_ok)
        }
    };

    for rule in &profile.syscalls {
        if !applies(&rule.includes, true) || applies(&rule.excludes, false) {
            continue;
        }
        let act = action(&rule.action, rule.errno_ret, default_errno)?;
        if act == default {
            continue; // libseccomp refuses a rule that changes nothing
        }
        let compares = rule
            .args
            .iter()
            .map(compare)
            .collect::<Result<Vec<_>, _>>()?;
        // Conditions on distinct arguments must all hold (one rule);
        // several on the same argument are alternatives (one rule each).
        let mut seen = HashMap::new();
        let distinct = rule.args.iter().all(|a| seen.insert(a.index, ()).is_none());
        let groups: Vec<Vec<ScmpArgCompare>> = if distinct {
            vec![compares]
        } else {
            compares.into_iter().map(|c| vec![c]).collect()
        };
        for name in rule.names.iter().chain(rule.name.iter()) {
            let known = arches
                .iter()
                .any(|a| ScmpSyscall::from_name_by_arch(name, *a).is_ok());
            if !known {
                if strict {
                    return Err(format!("unknown syscall {name:?}"));
                }
                continue;
            }
            let syscall = ScmpSyscall::from_name(name).or_else(|_| {
                arches
                    .iter()
                    .find_map(|a| ScmpSyscall::from_name_by_arch(name, *a).ok())
                    .ok_or(())
            });
            let Ok(syscall) = syscall else { continue };
            for conds in &groups {
                ctx.add_rule_conditional(act, syscall, conds)
                    .map_err(|e| format!("rule for {name}: {e}"))?;
            }
        }
    }
    // libseccomp 2.5 exports only to a descriptor: an in-memory file.
    let mut out = std::fs::File::from(
        nix::sys::memfd::memfd_create(
            c"seccomp-bpf",
            nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
        )
        .map_err(|e| e.to_string())?,
    );
    ctx.export_bpf(&out).map_err(|e| e.to_string())?;
    use std::io::{Read, Seek};
    let mut bpf = Vec::new();
    out.rewind()
        .and_then(|_| out.read_to_end(&mut bpf))
        .map_err(|e| e.to_string())?;
    Ok(bpf)
}

/// Install a compiled filter on the calling thread (and its future
/// children). Without `no_new_privs` the kernel requires CAP_SYS_ADMIN.
pub fn load(bpf: &[u8]) -> Result<(), Error> {
    let prog = libc::sock_fprog {
        len: (bpf.len() / std::mem::size_of::<libc::sock_filter>()) as u16,
        filter: bpf.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prog points at `bpf`, a whole number of sock_filter
    // structures that outlives the call; the kernel copies it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(Error::Apply {
            what: "the seccomp filter",
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_caps() -> Vec<u8> {
        caps::resolve(&[], &[]).unwrap()
    }

    #[test]
    fn default_profile_compiles() {
        let bpf = compile(&Choice::Default, &default_caps()).unwrap();
        assert!(bpf.len() > 8 * 100, "suspiciously short filter");
        assert_eq!(bpf.len() % 8, 0);
    }

    #[test]
    fn capabilities_widen_the_filter() {
        let plain = compile(&Choice::Default, &default_caps()).unwrap();
        let admin = caps::resolve(&["SYS_ADMIN".into()], &[]).unwrap();
        let wide = compile(&Choice::Default, &admin).unwrap();
        assert_ne!(plain, wide);
    }

    fn profile(json: &str) -> Result<Vec<u8>, String> {
        let p: Profile = serde_json::from_str(json).map_err(|e| e.to_string())?;
        build(&p, &default_caps(), true)
    }

    #[test]
    fn user_profiles_are_checked() {
        assert!(profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#).is_ok());
        let e = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["no_such_call"],"action":"SCMP_ACT_ERRNO"}]}"#).unwrap_err();
        assert_eq!(e, "unknown syscall \"no_such_call\"");
        let e = profile(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).unwrap_err();
        assert!(e.contains("unknown action"), "{e}");
        let e = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["socket"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_WHAT"}]}]}"#).unwrap_err();
        assert!(e.contains("unknown operator"), "{e}");
    }

    #[test]
    fn cached_program_is_the_compiled_one() {
        let dir =
            std::env::temp_dir().join(format!("containr-seccomp-cache-{}", std::process::id()));
        let caps = default_caps();
        let first = compile_cached(&Choice::Default, &caps, &dir).unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(files.len(), 1, "one cache entry");
        let second = compile_cached(&Choice::Default, &caps, &dir).unwrap();
        assert_eq!(first, second);
        assert_eq!(first, compile(&Choice::Default, &caps).unwrap());
        // Other capabilities are another entry, not a stale hit.
        let admin = caps::resolve(&["SYS_ADMIN".into()], &[]).unwrap();
        assert_ne!(
            compile_cached(&Choice::Default, &admin, &dir).unwrap(),
            first
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("6.18.44-fc-v782"), Some((6, 18)));
        assert_eq!(parse_version("4.8"), Some((4, 8)));
        assert_eq!(parse_version("x"), None);
    }
}

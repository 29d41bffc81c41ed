//! Seccomp: docker's JSON profile format, compiled into a BPF program on
//! the host side (libseccomp's syscall tables, `bpf`'s range search),
//! loaded by the command right before exec.
//!
//! The default profile is data the project owns (`seccomp_default.json`,
//! equal in effect to docker's default). Compiling on the host means a bad
//! profile is reported before any container exists, and the container's
//! side only makes one `seccomp(2)` call.

use std::collections::HashMap;

use libseccomp::{ScmpArch, ScmpSyscall};
use serde::Deserialize;

use super::Error;
use super::{bpf, caps};

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
        ScmpArch::Riscv64 => &["riscv64"],
        ScmpArch::Ppc64Le => &["ppc64le"],
        ScmpArch::Ppc64 => &["ppc64"],
        ScmpArch::S390X => &["s390x"],
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

/// `errno`: the data an ERRNO or TRACE action returns (EPERM unless given).
fn action(name: &str, errno: Option<u16>) -> Result<bpf::Action, String> {
    let errno = errno.unwrap_or(libc::EPERM as u16) as u32;
    Ok(match name {
        "SCMP_ACT_ALLOW" => bpf::RET_ALLOW,
        "SCMP_ACT_ERRNO" => bpf::RET_ERRNO | errno,
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => bpf::RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => bpf::RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => bpf::RET_TRAP,
        "SCMP_ACT_LOG" => bpf::RET_LOG,
        "SCMP_ACT_TRACE" => bpf::RET_TRACE | errno,
        "SCMP_ACT_NOTIFY" => {
            return Err("SCMP_ACT_NOTIFY (a seccomp listener) is not supported".to_string());
        }
        other => return Err(format!("unknown action {other:?}")),
    })
}

fn compare(arg: &Arg) -> Result<bpf::Cond, String> {
    let index = u8::try_from(arg.index)
        .ok()
        .filter(|i| *i < 6)
        .ok_or_else(|| format!("argument index {} out of range 0-5", arg.index))?;
    let (op, value) = match arg.op.as_str() {
        "SCMP_CMP_EQ" => (bpf::Op::Eq, arg.value),
        "SCMP_CMP_NE" => (bpf::Op::Ne, arg.value),
        "SCMP_CMP_LT" => (bpf::Op::Lt, arg.value),
        "SCMP_CMP_LE" => (bpf::Op::Le, arg.value),
        "SCMP_CMP_GT" => (bpf::Op::Gt, arg.value),
        "SCMP_CMP_GE" => (bpf::Op::Ge, arg.value),
        // docker's format: `value` is the mask, `valueTwo` the datum.
        "SCMP_CMP_MASKED_EQ" => (bpf::Op::MaskedEq { mask: arg.value }, arg.value_two),
        other => return Err(format!("unknown operator {other:?}")),
    };
    Ok(bpf::Cond { index, op, value })
}

/// The audit arch a libseccomp architecture's syscalls arrive with, and
/// whether they are x32's (numbers with [`bpf::X32_SYSCALL_BIT`]).
fn audit_arch(arch: ScmpArch) -> Result<(u32, bool, bool), String> {
    // (token, x32, 32-bit arguments)
    Ok(match arch {
        ScmpArch::X8664 => (bpf::AUDIT_ARCH_X86_64, false, false),
        ScmpArch::X32 => (bpf::AUDIT_ARCH_X86_64, true, true),
        ScmpArch::X86 => (bpf::AUDIT_ARCH_I386, false, true),
        ScmpArch::Aarch64 => (bpf::AUDIT_ARCH_AARCH64, false, false),
        ScmpArch::Arm => (bpf::AUDIT_ARCH_ARM, false, true),
        ScmpArch::Riscv64 => (bpf::AUDIT_ARCH_RISCV64, false, false),
        ScmpArch::Ppc64Le => (bpf::AUDIT_ARCH_PPC64LE, false, false),
        ScmpArch::Ppc64 => (bpf::AUDIT_ARCH_PPC64, false, false),
        ScmpArch::S390X => (bpf::AUDIT_ARCH_S390X, false, false),
        other => return Err(format!("architecture {other:?} is not supported")),
    })
}

/// [`compile`], remembered in `cache_dir`: resolving the default profile's
/// names through libseccomp costs about 2 ms, a seventh of a start-up. The key
/// covers everything the program depends on: the profile's text, the
/// capabilities, the kernel and libseccomp versions, and containr's own.
pub fn compile_cached(
    choice: &Choice,
    caps: &[u8],
    cache_dir: &std::path::Path,
) -> Result<Vec<u8>, Error> {
    let text = profile_text(choice)?;
    let path = cache_dir.join(format!("seccomp-{:016x}.bpf", cache_key(&text, caps)));
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

/// What a compiled program (or the OCI form) depends on, hashed: the
/// profile's text, the capabilities, the kernel and libseccomp versions,
/// and containr's own.
fn cache_key(text: &str, caps: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        text,
        caps,
        kernel_version(),
        format!("{:?}", libseccomp::ScmpVersion::current().ok()),
        env!("CARGO_PKG_VERSION"),
        "ranges", // the program's shape: entries made before it are not reused
        format!("{:?}", ScmpArch::native()),
    )
        .hash(&mut h);
    h.finish()
}

/// [`to_oci`], remembered in `cache_dir` as [`compile_cached`] remembers
/// the program: building the OCI form from the profile (parsing it, judging
/// its conditions) cost about 0.4 ms of every start. It comes back as the
/// cache's JSON text, only checked to be JSON, for the spec to hold as it
/// is: parsing it and serializing it again cost 0.6 M instructions of
/// every start (it is most of `config.json`).
pub fn to_oci_cached(
    choice: &Choice,
    caps: &[u8],
    cache_dir: &std::path::Path,
) -> Result<Box<serde_json::value::RawValue>, Error> {
    use serde_json::value::RawValue;
    let key = cache_key(&profile_text(choice)?, caps);
    let path = cache_dir.join(format!("seccomp-{key:016x}.oci.json"));
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(oci) = RawValue::from_string(text)
    {
        return Ok(oci);
    }
    let oci = to_oci(choice, caps)?;
    // Best effort, as the program's cache.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let text = serde_json::to_string(&oci).expect("a profile serialises");
    if std::fs::create_dir_all(cache_dir).is_ok() && std::fs::write(&tmp, &text).is_ok() {
        let _ = std::fs::rename(&tmp, &path);
    }
    Ok(RawValue::from_string(text).expect("serialised JSON"))
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

/// Compile OCI's `linux.seccomp`. Docker's profile format is a superset of
/// it (the same field names, plus conditional rules and an arch map), so
/// it goes through the same parser and compiler; only `flags` and the
/// listener fields are not the profile's, and the caller handles them.
/// A syscall name libseccomp does not know on any of the filter's
/// architectures is skipped, not refused: runc does the same, so a
/// profile written for a newer kernel still runs here.
pub fn compile_oci(seccomp: &oci_spec::runtime::LinuxSeccomp) -> Result<Vec<u8>, String> {
    build(&from_oci(seccomp)?, &[], false)
}

fn from_oci(seccomp: &oci_spec::runtime::LinuxSeccomp) -> Result<Profile, String> {
    let value = serde_json::to_value(seccomp).map_err(|e| e.to_string())?;
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// The architectures a profile's filter covers: the native one first, its
/// sub-architectures from `archMap`, then those `architectures` names.
fn architectures(profile: &Profile) -> Result<Vec<ScmpArch>, String> {
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
        // SCMP_ARCH_NATIVE is the first already.
        if a != ScmpArch::Native && !arches.contains(&a) {
            arches.push(a);
        }
    }
    Ok(arches)
}

/// What docker's conditional rules (`includes`, `excludes`) are judged
/// on: the container's capabilities, this kernel, this architecture.
struct Conditions {
    have: Vec<String>,
    kernel: (u32, u32),
    native_docker: &'static [&'static str],
}

impl Conditions {
    fn of(caps: &[u8]) -> Conditions {
        Conditions {
            have: caps::names(caps),
            kernel: kernel_version(),
            native_docker: docker_arch(ScmpArch::native()),
        }
    }

    fn applies(&self, f: &Filter, include: bool) -> bool {
        let caps_ok = f.caps.iter().all(|c| self.have.iter().any(|h| h == c));
        let arch_ok = f
            .arches
            .iter()
            .any(|a| self.native_docker.contains(&a.as_str()));
        let kernel_ok = f
            .min_kernel
            .as_deref()
            .and_then(parse_version)
            .is_none_or(|min| self.kernel >= min);
        if include {
            (f.caps.is_empty() || caps_ok) && (f.arches.is_empty() || arch_ok) && kernel_ok
        } else {
            // An exclude applies if any of its conditions holds.
            (!f.caps.is_empty() && caps_ok) || (!f.arches.is_empty() && arch_ok)
        }
    }

    /// Whether `rule` is part of this container's filter.
    fn admit(&self, rule: &Rule) -> bool {
        self.applies(&rule.includes, true) && !self.applies(&rule.excludes, false)
    }
}

/// libseccomp's name of an architecture, as OCI's `architectures` lists it.
fn arch_name(arch: ScmpArch) -> Option<&'static str> {
    Some(match arch {
        ScmpArch::X8664 => "SCMP_ARCH_X86_64",
        ScmpArch::X86 => "SCMP_ARCH_X86",
        ScmpArch::X32 => "SCMP_ARCH_X32",
        ScmpArch::Aarch64 => "SCMP_ARCH_AARCH64",
        ScmpArch::Arm => "SCMP_ARCH_ARM",
        ScmpArch::Riscv64 => "SCMP_ARCH_RISCV64",
        ScmpArch::Ppc64Le => "SCMP_ARCH_PPC64LE",
        ScmpArch::Ppc64 => "SCMP_ARCH_PPC64",
        ScmpArch::S390X => "SCMP_ARCH_S390X",
        _ => return None,
    })
}

/// The chosen profile in OCI's `linux.seccomp` form, for a container
/// holding `caps`: docker's conditions (`includes`, `excludes`, `archMap`)
/// evaluated here, so what is left is plain OCI that any runtime (runc,
/// `containr-oci`) compiles to the program [`compile`] makes. Unconfined
/// has no form: the caller leaves `linux.seccomp` out.
pub fn to_oci(choice: &Choice, caps: &[u8]) -> Result<oci_spec::runtime::LinuxSeccomp, Error> {
    let path = match choice {
        Choice::File(path) => path.clone(),
        _ => "(default)".to_string(),
    };
    let err = |why: String| Error::Profile {
        path: path.clone(),
        why,
    };
    // Its names, actions and operators were checked when it was compiled
    // (resolving names again would cost what the compile cache saves).
    let profile: Profile = serde_json::from_str(&profile_text(choice)?)
        .map_err(|e| err(format!("not a valid profile: {e}")))?;
    let arches: Vec<&str> = (architectures(&profile).map_err(err)?.into_iter())
        .filter_map(arch_name)
        .collect();
    let conditions = Conditions::of(caps);
    let syscalls: Vec<serde_json::Value> = (profile.syscalls.iter())
        .filter(|rule| conditions.admit(rule))
        .map(|rule| {
            let names: Vec<&String> = rule.names.iter().chain(rule.name.iter()).collect();
            let args: Vec<serde_json::Value> = (rule.args.iter())
                .map(|a| {
                    serde_json::json!({
                        "index": a.index, "value": a.value, "valueTwo": a.value_two, "op": a.op
                    })
                })
                .collect();
            let mut r = serde_json::json!({"names": names, "action": rule.action});
            if let Some(errno) = rule.errno_ret {
                r["errnoRet"] = errno.into();
            }
            if !args.is_empty() {
                r["args"] = args.into();
            }
            r
        })
        .collect();
    let mut oci = serde_json::json!({
        "defaultAction": profile.default_action,
        "architectures": arches,
        "syscalls": syscalls,
    });
    if let Some(errno) = profile.default_errno_ret {
        oci["defaultErrnoRet"] = errno.into();
    }
    serde_json::from_value(oci).map_err(|e| err(format!("not expressible in OCI's form: {e}")))
}

/// A profile with its conditions evaluated for one container: which
/// architectures, and for each rule that applies the names and the
/// condition groups (any group matching fires the rule).
struct Resolved {
    default: bpf::Action,
    arches: Vec<ScmpArch>,
    rules: Vec<(String, bpf::Action, Vec<Vec<bpf::Cond>>)>,
}

/// `strict`: a syscall name this libseccomp does not know on any of the
/// profile's architectures is an error (a user's typo), rather than a name
/// newer than the library (skipped, as docker does, for the default).
fn resolve(profile: &Profile, caps: &[u8], strict: bool) -> Result<Resolved, String> {
    // defaultErrnoRet is the default action's alone; a rule's ERRNO
    // without errnoRet is EPERM (runc and the OCI spec).
    let default = action(&profile.default_action, profile.default_errno_ret)?;

    let arches = architectures(profile)?;
    let conditions = Conditions::of(caps);
    let mut rules = Vec::new();
    for rule in &profile.syscalls {
        if !conditions.admit(rule) {
            continue;
        }
        let act = action(&rule.action, rule.errno_ret)?;
        if act == default {
            continue; // changes nothing (and libseccomp refuses it)
        }
        let conds = rule
            .args
            .iter()
            .map(compare)
            .collect::<Result<Vec<_>, _>>()?;
        // Conditions on distinct arguments must all hold (one group);
        // several on the same argument are alternatives (one group each).
        let mut seen = HashMap::new();
        let distinct = rule.args.iter().all(|a| seen.insert(a.index, ()).is_none());
        let groups: Vec<Vec<bpf::Cond>> = if distinct {
            vec![conds]
        } else {
            conds.into_iter().map(|c| vec![c]).collect()
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
            rules.push((name.clone(), act, groups.clone()));
        }
    }
    Ok(Resolved {
        default,
        arches,
        rules,
    })
}

/// Compile a resolved profile with [`bpf`]: syscall names become numbers
/// per architecture (libseccomp's tables), rules keep their order.
fn build(profile: &Profile, caps: &[u8], strict: bool) -> Result<Vec<u8>, String> {
    let r = resolve(profile, caps, strict)?;
    let mut filter = bpf::Filter {
        default: r.default,
        // libseccomp's default for an architecture the filter lacks.
        bad_arch: bpf::RET_KILL_THREAD,
        arches: Default::default(),
    };
    for &arch in &r.arches {
        let (token, x32, bits32) = audit_arch(arch)?;
        let mut table = bpf::ArchRules {
            bits32,
            syscalls: Default::default(),
        };
        let mut direct: Option<HashMap<String, u32>> = None;
        for (name, act, groups) in &r.rules {
            let Ok(nr) = ScmpSyscall::from_name_by_arch(name, arch).map(i32::from) else {
                continue;
            };
            // (syscall, replacement for argument 0's conditions)
            let mut targets: Vec<(u32, Option<bpf::Cond>)> = Vec::new();
            if let Ok(nr) = u32::try_from(nr) {
                targets.push((nr, None));
            } else if let Ok(mux) = ScmpSyscall::from_name_by_arch_rewrite(name, arch)
                .map(i32::from)
                .map(u32::try_from)
            {
                // A negative number is libseccomp's for a call that is
                // multiplexed on this arch (i386's socketcall and ipc, as
                // -100 - call and -200 - call); what it does, this does:
                // the multiplexer with argument 0 the call number (the
                // rule's own argument 0 cannot be seen there), and the
                // call's own syscall where the arch also has one.
                let Ok(mux) = mux else { continue };
                let call = bpf::Cond {
                    index: 0,
                    op: bpf::Op::Eq,
                    value: (-nr % 100) as u64,
                };
                targets.push((mux, Some(call)));
                let direct = direct.get_or_insert_with(|| direct_numbers(arch));
                if let Some(&d) = direct.get(name) {
                    targets.push((d, None));
                }
            }
            for (nr, arg0) in targets {
                let list = table.syscalls.entry(nr).or_default();
                for conds in groups {
                    let mut conds = conds.clone();
                    if let Some(arg0) = arg0 {
                        conds.retain(|c| c.index != 0);
                        conds.insert(0, arg0);
                    }
                    list.push(bpf::Rule {
                        conds,
                        action: *act,
                    });
                }
            }
        }
        let slot = filter.arches.entry(token).or_default();
        if x32 {
            slot.1 = Some(table);
        } else {
            slot.0 = Some(table);
        }
    }
    let program = bpf::compile(&filter);
    let n = program.len() / 8;
    if n > bpf::MAX_INSNS {
        return Err(format!(
            "compiles to {n} BPF instructions, more than the kernel's {}",
            bpf::MAX_INSNS
        ));
    }
    Ok(program)
}

/// Names of `arch`'s syscalls by number, where libseccomp resolves the
/// name itself to a multiplexed pseudo-number.
fn direct_numbers(arch: ScmpArch) -> HashMap<String, u32> {
    (0..1024u32)
        .filter_map(|nr| {
            let name = ScmpSyscall::from(nr as i32).get_name_by_arch(arch).ok()?;
            Some((name, nr))
        })
        .collect()
}

/// Install a compiled filter on the calling thread (and its future
/// children), with `SECCOMP_FILTER_FLAG_*` bits `flags`. Without
/// `no_new_privs` the kernel requires CAP_SYS_ADMIN.
pub fn load(bpf: &[u8], flags: u32) -> Result<(), Error> {
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
            flags,
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

    /// The OCI form of a profile is the same filter: compiled as
    /// `containr-oci` compiles a bundle's, it gives the very program.
    #[test]
    fn oci_form_compiles_to_the_same_program() {
        let admin = caps::resolve(&["SYS_ADMIN".into()], &[]).unwrap();
        for caps in [default_caps(), admin, caps::all()] {
            let oci = to_oci(&Choice::Default, &caps).unwrap();
            let json = serde_json::to_value(&oci).unwrap();
            assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
            assert!(json.get("archMap").is_none() && json.get("comment").is_none());
            assert_eq!(
                compile_oci(&oci).unwrap(),
                compile(&Choice::Default, &caps).unwrap(),
                "{} capabilities",
                caps.len()
            );
        }
    }

    #[test]
    fn the_oci_form_is_cached_whole() {
        let dir = std::env::temp_dir().join(format!("containr-oci-cache-{}", std::process::id()));
        let made = to_oci_cached(&Choice::Default, &default_caps(), &dir).unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let again = to_oci_cached(&Choice::Default, &default_caps(), &dir).unwrap();
        assert_eq!(again.get(), made.get());
        let typed: oci_spec::runtime::LinuxSeccomp = serde_json::from_str(again.get()).unwrap();
        assert_eq!(typed, to_oci(&Choice::Default, &default_caps()).unwrap());
        // A damaged cache is made again, not written into a spec.
        let file = files[0].path();
        std::fs::write(&file, "{\"defaultAction\": ").unwrap();
        let mended = to_oci_cached(&Choice::Default, &default_caps(), &dir).unwrap();
        assert_eq!(mended.get(), made.get());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), made.get());
        std::fs::remove_dir_all(&dir).unwrap();
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
        // Longer than the kernel takes: refused here, not at a start.
        let args: Vec<String> = (0..1500)
            .map(|i| format!(r#"{{"index":1,"value":{i},"op":"SCMP_CMP_EQ"}}"#))
            .collect();
        let e = profile(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["ioctl"],"action":"SCMP_ACT_ERRNO","args":[{}]}}]}}"#,
            args.join(",")
        ))
        .unwrap_err();
        assert!(e.contains("more than the kernel's 4096"), "{e}");
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

    /// libseccomp's program for the same resolved profile: the reference
    /// [`bpf`]'s output must agree with.
    fn reference(r: &Resolved) -> Vec<u8> {
        use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
        let act = |a: bpf::Action| match a & 0xffff_0000 {
            bpf::RET_ALLOW => ScmpAction::Allow,
            bpf::RET_ERRNO => ScmpAction::Errno((a & 0xffff) as i32),
            bpf::RET_KILL_THREAD => ScmpAction::KillThread,
            bpf::RET_KILL_PROCESS => ScmpAction::KillProcess,
            bpf::RET_TRAP => ScmpAction::Trap,
            bpf::RET_LOG => ScmpAction::Log,
            _ => ScmpAction::Trace((a & 0xffff) as u16),
        };
        let mut ctx = ScmpFilterContext::new(act(r.default)).unwrap();
        ctx.set_ctl_nnp(false).unwrap();
        for a in &r.arches[1..] {
            ctx.add_arch(*a).unwrap();
        }
        for (name, a, groups) in &r.rules {
            let syscall = ScmpSyscall::from_name(name)
                .ok()
                .or_else(|| {
                    r.arches
                        .iter()
                        .find_map(|a| ScmpSyscall::from_name_by_arch(name, *a).ok())
                })
                .unwrap();
            for g in groups {
                let conds: Vec<ScmpArgCompare> = g
                    .iter()
                    .map(|c| {
                        let op = match c.op {
                            bpf::Op::Eq => ScmpCompareOp::Equal,
                            bpf::Op::Ne => ScmpCompareOp::NotEqual,
                            bpf::Op::Lt => ScmpCompareOp::Less,
                            bpf::Op::Le => ScmpCompareOp::LessOrEqual,
                            bpf::Op::Gt => ScmpCompareOp::Greater,
                            bpf::Op::Ge => ScmpCompareOp::GreaterEqual,
                            bpf::Op::MaskedEq { mask } => ScmpCompareOp::MaskedEqual(mask),
                        };
                        ScmpArgCompare::new(c.index as u32, op, c.value)
                    })
                    .collect();
                ctx.add_rule_conditional(act(*a), syscall, &conds).unwrap();
            }
        }
        let mut out = std::fs::File::from(
            nix::sys::memfd::memfd_create(c"ref", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
                .unwrap(),
        );
        ctx.export_bpf(&out).unwrap();
        use std::io::{Read, Seek};
        let mut bpf = Vec::new();
        out.rewind().unwrap();
        out.read_to_end(&mut bpf).unwrap();
        bpf
    }

    /// Run ours and libseccomp's program over every syscall number of
    /// interest on every architecture, with argument values around each
    /// constant the profile compares with; they must decide alike.
    fn assert_same_as_libseccomp(p: &Profile, caps: &[u8]) -> usize {
        let r = resolve(p, caps, false).unwrap();
        let ours = build(p, caps, false).unwrap();
        let theirs = reference(&r);
        let (a_prog, b_prog) = (bpf::decode(&ours), bpf::decode(&theirs));
        // 0..=25 covers i386's socketcall and ipc call numbers.
        let mut values: Vec<u64> = (0..=25).collect();
        values.extend([u64::MAX, 1 << 32, u32::MAX as u64]);
        for (_, _, groups) in &r.rules {
            for c in groups.iter().flatten() {
                for v in [c.value, c.value ^ (1 << 40)] {
                    values.extend([v, v.wrapping_add(1), v.wrapping_sub(1)]);
                }
                if let bpf::Op::MaskedEq { mask } = c.op {
                    values.extend([mask, !mask, c.value | !mask, 0x1000_0000]);
                }
            }
        }
        values.sort();
        values.dedup();
        let arches = [
            bpf::AUDIT_ARCH_X86_64,
            bpf::AUDIT_ARCH_I386,
            bpf::AUDIT_ARCH_AARCH64,
            0,
        ];
        // Every syscall of the supported arches is below 1024.
        let mut nrs: Vec<u32> = (0..1024).collect();
        nrs.extend((0..1024).map(|n| n | bpf::X32_SYSCALL_BIT));
        nrs.extend([0x3fff_ffff, u32::MAX, 0x8000_0000]);
        for arch in arches {
            for &nr in &nrs {
                for (i, &v) in values.iter().enumerate() {
                    // Vary the argument index compared, and the others.
                    let w = values[(i * 7 + 3) % values.len()];
                    let args = [v, w, v, w, v, w];
                    let (a, b) = (
                        bpf::run(&a_prog, nr, arch, args),
                        bpf::run(&b_prog, nr, arch, args),
                    );
                    assert_eq!(
                        a, b,
                        "arch {arch:#x} nr {nr:#x} args {args:x?}: ours {a:#x}, libseccomp {b:#x}"
                    );
                }
            }
        }
        ours.len() / 8
    }

    #[test]
    fn default_profile_decides_as_libseccomp_would() {
        let p: Profile = serde_json::from_str(DEFAULT_PROFILE).unwrap();
        let n = assert_same_as_libseccomp(&p, &default_caps());
        // The point of ranges: a fraction of libseccomp's 1227.
        assert!(n < 600, "{n} instructions");
        let admin = caps::resolve(&["SYS_ADMIN".into(), "SYS_PTRACE".into()], &[]).unwrap();
        assert_same_as_libseccomp(&p, &admin);
    }

    #[test]
    fn every_comparison_decides_as_libseccomp_would() {
        let p: Profile = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":1,
                "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]}],
                "syscalls":[
                  {"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":5,"args":[{"index":0,"value":3,"op":"SCMP_CMP_LT"}]},
                  {"names":["write"],"action":"SCMP_ACT_ERRNO","args":[{"index":2,"value":4294967300,"op":"SCMP_CMP_GT"}]},
                  {"names":["openat"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":4294967296,"op":"SCMP_CMP_LE"},{"index":3,"value":7,"op":"SCMP_CMP_GE"}]},
                  {"names":["mmap"],"action":"SCMP_ACT_KILL_PROCESS","args":[{"index":2,"value":18446744069414584324,"valueTwo":4,"op":"SCMP_CMP_MASKED_EQ"}]},
                  {"names":["ioctl"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":21505,"op":"SCMP_CMP_EQ"},{"index":1,"value":21506,"op":"SCMP_CMP_EQ"}]},
                  {"names":["kill","tkill","tgkill"],"action":"SCMP_ACT_TRAP"},
                  {"names":["getpid"],"action":"SCMP_ACT_LOG"},
                  {"names":["socket"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":16,"op":"SCMP_CMP_NE"}]}
                ]}"#,
        )
        .unwrap();
        assert_same_as_libseccomp(&p, &default_caps());
    }

    #[test]
    fn oci_seccomp_decides_as_libseccomp_would() {
        let oci: oci_spec::runtime::LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,
                "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
                "flags":["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls":[
                  {"names":["read","write","exit_group","no_such_call"],"action":"SCMP_ACT_ALLOW"},
                  {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"},
                  {"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
                  {"names":["umask"],"action":"SCMP_ACT_KILL_PROCESS","args":[{"index":0,"value":448,"valueTwo":64,"op":"SCMP_CMP_MASKED_EQ"}]}
                ]}"#,
        )
        .unwrap();
        let p = from_oci(&oci).unwrap();
        assert_same_as_libseccomp(&p, &[]);
        // defaultErrnoRet is the default's; a rule without errnoRet is EPERM.
        let r = resolve(&p, &[], false).unwrap();
        assert_eq!(r.default, bpf::RET_ERRNO | 38);
        assert!(
            r.rules
                .iter()
                .any(|(n, a, _)| n == "mkdir" && *a == bpf::RET_ERRNO | 1)
        );
        assert!(!r.rules.iter().any(|(n, _, _)| n == "no_such_call"));
        assert_eq!(compile_oci(&oci).unwrap(), build(&p, &[], false).unwrap());
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("6.18.44-fc-v782"), Some((6, 18)));
        assert_eq!(parse_version("4.8"), Some((4, 8)));
        assert_eq!(parse_version("x"), None);
    }
}

//! What confines the container's process beyond its namespaces:
//! capabilities, `no_new_privs` and a seccomp filter (masked and read-only
//! paths are mounts, see `rootfs`).
//!
//! Everything is decided and checked on the host side before anything is
//! made: capability names resolved, the seccomp profile parsed and compiled
//! to a BPF program. The command's process then only applies the result,
//! right before `execve`, in this order: bounding set, user switch (keeping
//! the permitted set across it), effective/permitted/inheritable sets,
//! `no_new_privs`, seccomp last, so the filter never has to allow
//! containr's own setup. (With `no-new-privileges=false` the filter must go
//! in before the user switch instead: see
//! [`oci::ProcessConfinement::apply_early`].)
//!
//! Two front ends resolve a confinement: [`Flags`] into [`Confinement`]
//! (docker-like flags), and [`oci::ProcessConfinement::from_spec`] (an OCI
//! `config.json`). One applies it: [`oci::ProcessConfinement`], which
//! `containr run`'s command gets from its spec's `process` and its
//! compiled program (`with_program`).

mod bpf;
pub mod caps;
pub mod oci;
pub mod seccomp;

use serde::{Deserialize, Serialize};

use crate::step;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown capability {0:?} (e.g. NET_ADMIN, CAP_SYS_TIME, ALL)")]
    UnknownCapability(String),
    #[error(
        "invalid --security-opt {0:?} (seccomp=PROFILE.json|unconfined, no-new-privileges[=true|false])"
    )]
    BadOption(String),
    #[error("seccomp profile {path}: {why}")]
    Profile { path: String, why: String },
    #[error("applying {what}: {source}")]
    Apply {
        what: &'static str,
        source: std::io::Error,
    },
    /// A field of an OCI config.json that is wrong or cannot be had here.
    #[error("config.json {field}: {why}")]
    Spec { field: String, why: String },
    /// Applying a field of an OCI config.json failed.
    #[error("applying config.json {field}: {source}")]
    ApplySpec {
        field: String,
        source: std::io::Error,
    },
}

/// The walkthrough's lines for `no_new_privs` and the seccomp filter
/// (`filter`: what loading it does, or none for unconfined).
fn explain_filter(no_new_privs: bool, filter: Option<String>) {
    if no_new_privs {
        step!(
            "prctl(PR_SET_NO_NEW_PRIVS, 1): no setuid binary or file capability can raise privileges"
        );
    }
    match filter {
        Some(what) => step!("{what}"),
        None => step!("seccomp: unconfined"),
    }
}

/// `PR_SET_NO_NEW_PRIVS`: from here on no setuid binary or file capability
/// raises privileges; seccomp can then be loaded without CAP_SYS_ADMIN.
fn set_no_new_privs() -> Result<(), Error> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Error::Apply {
            what: "no_new_privs",
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// The confinement flags as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub security_opt: Vec<String>,
}

/// The confinement to apply, resolved; travels to the init in its config.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Confinement {
    /// Capability numbers the command keeps (bounding, effective,
    /// permitted; inheritable and ambient stay empty, as docker's).
    pub caps: Vec<u8>,
    pub no_new_privs: bool,
    /// A compiled BPF program (`struct sock_filter` array), or none.
    #[serde(with = "crate::util::hex_bytes", default)]
    pub seccomp: Option<Vec<u8>>,
    /// `--privileged`: no masked or read-only paths, `/sys` writable.
    pub privileged: bool,
}

impl Flags {
    /// Resolve the flags: capability names, `--security-opt`s, and the
    /// seccomp profile (read, parsed and compiled here, so a bad one fails
    /// before any container exists).
    /// `cache_dir` keeps compiled seccomp programs between runs.
    pub fn resolve(&self, cache_dir: &std::path::Path) -> Result<Confinement, Error> {
        let (no_new_privs, profile) = self.options()?;
        let caps = self.caps()?;
        let seccomp = match self.profile(profile) {
            Some(choice) => Some(seccomp::compile_cached(&choice, &caps, cache_dir)?),
            None => None,
        };
        Ok(Confinement {
            caps,
            no_new_privs,
            seccomp,
            privileged: self.privileged,
        })
    }

    /// The seccomp profile [`Flags::resolve`] compiles, in OCI's
    /// `linux.seccomp` form as JSON text (none when unconfined), for a
    /// container holding `caps`; remembered in `cache_dir`. Call it after `resolve`,
    /// which checks the profile.
    pub fn oci_seccomp(
        &self,
        caps: &[u8],
        cache_dir: &std::path::Path,
    ) -> Result<Option<Box<serde_json::value::RawValue>>, Error> {
        let (_, profile) = self.options()?;
        self.profile(profile)
            .map(|choice| seccomp::to_oci_cached(&choice, caps, cache_dir))
            .transpose()
    }

    /// `--security-opt`: (no_new_privs, the seccomp profile named).
    fn options(&self) -> Result<(bool, seccomp::Choice), Error> {
        let mut no_new_privs = true;
        let mut profile = seccomp::Choice::Default;
        for opt in &self.security_opt {
            let (key, value) = opt.split_once(['=', ':']).unwrap_or((opt.as_str(), ""));
            match (key, value) {
                ("no-new-privileges", "" | "true") => no_new_privs = true,
                ("no-new-privileges", "false") => no_new_privs = false,
                ("seccomp", "unconfined") => profile = seccomp::Choice::Unconfined,
                ("seccomp", path) if !path.is_empty() => {
                    profile = seccomp::Choice::File(path.to_string())
                }
                _ => return Err(Error::BadOption(opt.clone())),
            }
        }
        Ok((no_new_privs, profile))
    }

    fn caps(&self) -> Result<Vec<u8>, Error> {
        if self.privileged {
            Ok(caps::all())
        } else {
            caps::resolve(&self.cap_add, &self.cap_drop)
        }
    }

    /// The profile to apply; none for unconfined.
    fn profile(&self, named: seccomp::Choice) -> Option<seccomp::Choice> {
        match (self.privileged, named) {
            // docker: --privileged runs unconfined unless a profile is named.
            (true, seccomp::Choice::Default) | (_, seccomp::Choice::Unconfined) => None,
            (_, choice) => Some(choice),
        }
    }
}

impl Confinement {
    /// Describe, for the walkthrough, what applying it will do (the
    /// `oci::ProcessConfinement` made from it applies it).
    pub fn explain(&self) {
        step!(
            "capabilities: bounding/effective/permitted = {} of {}{}",
            self.caps.len(),
            caps::all().len(),
            if self.privileged {
                " (--privileged)"
            } else {
                ""
            }
        );
        explain_filter(
            self.no_new_privs,
            self.seccomp.as_ref().map(|bpf| {
                format!(
                    "seccomp(SECCOMP_SET_MODE_FILTER): {} BPF instructions, EPERM for syscalls not allowed",
                    bpf.len() / 8
                )
            }),
        );
    }
}

/// The first half of entering the confinement, still root with every
/// capability: the bounding set, and keeping the permitted set across the
/// user switch. Without no_new_privs the kernel wants CAP_SYS_ADMIN to
/// install a filter (`(program, SECCOMP_FILTER_FLAG_* bits)`): it goes in
/// here, as runc does; it then also covers the rest of the setup.
fn enter_early(
    bounding: &[u8],
    no_new_privs: bool,
    filter: Option<(&[u8], u32)>,
) -> Result<(), Error> {
    caps::drop_bounding(bounding)?;
    if let (false, Some((bpf, flags))) = (no_new_privs, filter) {
        seccomp::load(bpf, flags)?;
    }
    caps::keep_across_setuid(true)
}

/// The second half, after the user switch and right before `execve`: the
/// process's capability sets, no_new_privs, and the filter last, so it
/// never has to allow the runtime's own setup.
fn enter_late(
    sets: &caps::Sets,
    no_new_privs: bool,
    filter: Option<(&[u8], u32)>,
) -> Result<(), Error> {
    caps::keep_across_setuid(false)?;
    caps::set_sets(sets)?;
    if no_new_privs {
        set_no_new_privs()?;
        if let Some((bpf, flags)) = filter {
            seccomp::load(bpf, flags)?;
        }
    }
    Ok(())
}

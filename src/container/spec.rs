//! A `containr run` container as an OCI runtime spec: the `config.json`
//! its flags and its image make, written once, on `create`, as the
//! container's bundle (`containers/<id>/config.json` under the data root,
//! beside the `/etc` files it binds), as containerd keeps one per task.
//!
//! The spec is the contract any OCI runtime reads (`containr-oci`, runc):
//! what it cannot say, containr's own extras, goes beside it in
//! [`RunExtras`], typed: the image's overlay (mounted on `root.path` by the
//! init), `eth0`'s address, the volumes to fill from the image, `--init`,
//! and the user as given (a name is resolved in the container's
//! `/etc/passwd`, which also gives the groups and `HOME`; the spec holds
//! the numeric ids a runtime without the extras uses).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxResources, Process, Spec};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::Config;
use super::user::UserSpec;
use crate::network::Mode;
use crate::rootfs::CgroupFs;

/// What `create` resolved beside the container's [`Config`], for its spec.
pub struct Inputs<'a> {
    pub config: &'a Config,
    /// From the cgroup flags (`cgroup::oci::resources_of`).
    pub resources: LinuxResources,
    /// Where its cgroup is (`cgroup::oci::cgroups_path`).
    pub cgroups_path: Option<String>,
    /// `containers/<id>/`: the `/etc` files are bound from there.
    pub dir: &'a Path,
}

/// What a `containr run` container needs that the spec cannot say.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunExtras {
    /// An image's overlay, mounted on `root.path` first.
    pub overlay: Option<crate::rootfs::overlay::Overlay>,
    /// `--userns-remap`: the root and the binds are idmapped views the
    /// host side makes and hands the init.
    pub idmapped: bool,
    /// With `--network bridge`: what the init configures on `eth0`.
    pub interface: Option<crate::network::Interface>,
    /// (new volume's directory, destination): the image's content copied
    /// into the volume first.
    pub copy_up: Vec<(PathBuf, PathBuf)>,
    /// `--init`: the init stays as PID 1 and forks the process.
    pub init: bool,
    /// The user as given (`0` by default), resolved in the container:
    /// its ids, groups and `HOME`.
    pub user: UserSpec,
    /// `-i`: stdin stays open.
    pub interactive: bool,
    /// Which cgroup hierarchies the container sees at `/sys/fs/cgroup`.
    pub cgroupfs: CgroupFs,
}

/// The file of the container's directory that a containr-provided `/etc`
/// file (`/etc/hosts`...) is bound from.
pub fn etc_source(dir: &Path, target: &str) -> PathBuf {
    dir.join(Path::new(target).file_name().unwrap_or(target.as_ref()))
}

/// The spec of the container `inputs` describes, and its extras. Pure:
/// nothing is read or made. Its `linux.seccomp` is left out: the profile's
/// OCI form is added, as the cache's text, by [`write`](fn@write).
pub fn build(inputs: Inputs<'_>) -> (Spec, RunExtras) {
    let c = inputs.config;
    let privileged = c.confinement.privileged;
    let ro = |mut opts: Vec<&'static str>| {
        if !privileged {
            opts.push("ro");
        }
        opts
    };
    // As `rootfs` mounts it: in KiB when whole (docker's default reads
    // `size=65536k`), bytes otherwise.
    let shm = match c.shm_size.unwrap_or(64 << 20) {
        n if n % 1024 == 0 => format!("size={}k", n / 1024),
        n => format!("size={n}"),
    };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", vec!["nosuid", "noexec", "nodev"]),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            ro(vec!["nosuid", "noexec", "nodev"]),
        ),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            vec!["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            vec![
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", shm]}),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            vec!["nosuid", "noexec", "nodev"],
        ),
    ];
    let cgroup = match c.cgroupfs {
        CgroupFs::None => None,
        CgroupFs::V2 => Some("cgroup2"),
        CgroupFs::V1(_) => Some("cgroup"),
    };
    if let Some(fs) = cgroup {
        mounts.push(mount(
            "/sys/fs/cgroup",
            fs,
            fs,
            ro(vec!["nosuid", "noexec", "nodev", "relatime"]),
        ));
    }
    mounts.extend(c.mounts.iter().map(to_value));
    for (target, _) in &c.etc_files {
        mounts.push(json!({
            "destination": target, "type": "bind",
            "source": etc_source(inputs.dir, target),
            "options": ["rbind", "rprivate", "nosuid", "nodev", "noexec"],
        }));
    }

    let user = user(c);
    let mut namespaces: Vec<Value> = ["pid", "ipc", "uts", "mount", "cgroup"]
        .iter()
        .map(|t| json!({"type": t}))
        .collect();
    match (c.network, c.join_netns) {
        (Mode::Host, _) => {}
        (Mode::Container, Some(pid)) => {
            namespaces.push(json!({"type": "network", "path": format!("/proc/{pid}/ns/net")}))
        }
        _ => namespaces.push(json!({"type": "network"})),
    }
    let mut linux = json!({"namespaces": namespaces});
    // rprivate: nothing mounted in the container propagates back to the
    // host, nor the host's mounts into it. Applied again to the new root,
    // it would undo a volume's shared or slave propagation: then none,
    // runc's (and docker's) rslave.
    let own_propagation = c.mounts.iter().any(|m| {
        (m.options().iter().flatten())
            .any(|o| matches!(o.as_str(), "shared" | "rshared" | "slave" | "rslave"))
    });
    if !own_propagation {
        linux["rootfsPropagation"] = "rprivate".into();
    }
    if let Some(map) = c.userns {
        linux["namespaces"]
            .as_array_mut()
            .expect("a list")
            .push(json!({"type": "user"}));
        let ids = json!([{"containerID": 0, "hostID": map.host, "size": map.count}]);
        linux["uidMappings"] = ids.clone();
        linux["gidMappings"] = ids;
    }
    if let Some(path) = &inputs.cgroups_path {
        linux["cgroupsPath"] = path.clone().into();
    }
    if !c.devices.is_empty() {
        linux["devices"] = to_value(&c.devices);
    }
    if !c.sysctl.is_empty() {
        linux["sysctl"] = to_value(&c.sysctl);
    }
    if !privileged {
        linux["maskedPaths"] = to_value(&crate::rootfs::MASKED);
        linux["readonlyPaths"] = to_value(&crate::rootfs::READ_ONLY);
    }

    let spec = json!({
        "ociVersion": super::oci::SPEC_VERSION,
        "root": {"path": c.rootfs, "readonly": c.readonly},
        "hostname": c.hostname,
        "mounts": mounts,
        "process": process_json(c, &user),
        "linux": linux,
    });
    let mut spec: Spec = serde_json::from_value(spec).expect("the fields of a runtime spec");
    // Typed already: set as it is, not through JSON again.
    if let Some(linux) = spec.linux_mut() {
        linux.set_resources(Some(inputs.resources));
    }
    let extras = RunExtras {
        overlay: c.overlay.clone(),
        idmapped: c.userns.is_some(),
        interface: c.interface,
        copy_up: c.copy_up.clone(),
        init: c.init,
        user,
        interactive: c.interactive,
        cgroupfs: c.cgroupfs.clone(),
    };
    (spec, extras)
}

/// The spec's `process` for `config`: its user's numeric ids where `-u`
/// gave numbers (a name is resolved in the container: see [`RunExtras`]).
pub fn process(config: &Config) -> Process {
    serde_json::from_value(process_json(config, &user(config))).expect("the fields of a process")
}

/// The user `config`'s process runs as: `-u`'s, or uid 0, resolved like
/// any other so that root's groups and home come from the image (docker).
pub fn user(config: &Config) -> UserSpec {
    config.user.clone().unwrap_or(UserSpec {
        user: "0".into(),
        group: None,
    })
}

fn process_json(c: &Config, user: &UserSpec) -> Value {
    let uid = user.user.parse::<u32>().unwrap_or(0);
    let gid = (user.group.as_deref())
        .and_then(|g| g.parse::<u32>().ok())
        .unwrap_or(0);
    let caps = crate::security::caps::names(&c.confinement.caps);
    let mut process = json!({
        "terminal": c.tty,
        "user": {"uid": uid, "gid": gid},
        "args": c.args,
        "env": c.env,
        "cwd": c.workdir,
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
            "inheritable": [], "ambient": [],
        },
        "noNewPrivileges": c.confinement.no_new_privs,
    });
    if !c.rlimits.is_empty() {
        process["rlimits"] = to_value(&c.rlimits);
    }
    if let Some(adj) = c.oom_score_adj {
        process["oomScoreAdj"] = adj.into();
    }
    process
}

fn mount(dest: &str, typ: &str, source: &str, options: Vec<&str>) -> Value {
    json!({"destination": dest, "type": typ, "source": source, "options": options})
}

fn to_value(v: &impl Serialize) -> Value {
    serde_json::to_value(v).expect("plain data")
}

/// Write the container's bundle into its directory `dir`: the `/etc` files
/// its spec binds (`(target, contents)`), then `config.json` (0600: it
/// holds the environment). Not synced: it is made again from the record.
pub fn write(
    dir: &Path,
    spec: &mut Spec,
    seccomp: Option<&RawValue>,
    etc_files: &[(String, String)],
) -> std::io::Result<()> {
    write_etc_files(dir, etc_files)?;
    write_file(&dir.join("config.json"), &to_json(spec, seccomp), 0o600)
}

/// `spec` as JSON with `seccomp` (OCI's `linux.seccomp`, as JSON text) in
/// its `linux`, copied as it is: the profile is most of the spec, and
/// parsing it to serialize it again cost more than the rest of the spec.
/// (`spec`'s `linux` is taken out meanwhile, and put back.)
pub fn to_json(spec: &mut Spec, seccomp: Option<&RawValue>) -> Vec<u8> {
    #[derive(Serialize)]
    struct WithSeccomp<'a> {
        #[serde(flatten)]
        linux: &'a oci_spec::runtime::Linux,
        seccomp: &'a RawValue,
    }
    #[derive(Serialize)]
    struct Whole<'a> {
        #[serde(flatten)]
        spec: &'a Spec,
        linux: WithSeccomp<'a>,
    }
    let linux = spec.linux_mut().take();
    let bytes = match (&linux, seccomp) {
        (Some(linux_), Some(seccomp)) => {
            debug_assert!(linux_.seccomp().is_none(), "one linux.seccomp");
            let bytes = serde_json::to_vec(&Whole {
                spec,
                linux: WithSeccomp {
                    linux: linux_,
                    seccomp,
                },
            });
            spec.set_linux(linux);
            bytes
        }
        _ => {
            spec.set_linux(linux);
            serde_json::to_vec(&*spec)
        }
    };
    bytes.expect("a spec serialises")
}

/// Write (again: a restart gets a new address) the `/etc` files.
pub fn write_etc_files(dir: &Path, etc_files: &[(String, String)]) -> std::io::Result<()> {
    for (target, contents) in etc_files {
        write_file(&etc_source(dir, target), contents.as_bytes(), 0o644)?;
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?
        .write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::Confinement;

    fn config() -> Config {
        Config {
            id: "abc".into(),
            hostname: "web".into(),
            rootfs: "/srv/rootfs".into(),
            overlay: None,
            args: vec!["sh".into(), "-c".into(), "true".into()],
            env: vec!["PATH=/bin".into(), "HOSTNAME=web".into()],
            workdir: "/work".into(),
            user: Some(UserSpec {
                user: "1000".into(),
                group: Some("100".into()),
            }),
            tty: false,
            interactive: false,
            readonly: true,
            network: Mode::None,
            interface: None,
            join_netns: None,
            etc_files: vec![
                ("/etc/hostname".into(), "web\n".into()),
                ("/etc/hosts".into(), "127.0.0.1 localhost\n".into()),
            ],
            mounts: serde_json::from_value(json!([
                {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"]}
            ]))
            .unwrap(),
            copy_up: vec![],
            rlimits: serde_json::from_value(json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512}]))
                .unwrap(),
            sysctl: [("kernel.msgmax".to_string(), "4096".to_string())].into(),
            shm_size: Some(32 << 20),
            oom_score_adj: Some(100),
            devices: vec![],
            init: true,
            cgroupfs: CgroupFs::V2,
            confinement: Confinement {
                caps: crate::security::caps::resolve(&[], &["NET_RAW".into()]).unwrap(),
                no_new_privs: true,
                seccomp: None,
                privileged: false,
            },
            userns: None,
            reporting: Default::default(),
            next_step: 0,
        }
    }

    fn inputs(c: &Config) -> Inputs<'_> {
        Inputs {
            config: c,
            resources: LinuxResources::default(),
            cgroups_path: Some("/containr/abc".into()),
            dir: Path::new("/var/lib/containr/containers/abc"),
        }
    }

    fn spec_json(c: &Config) -> (Value, RunExtras) {
        let (spec, extras) = build(inputs(c));
        (serde_json::to_value(spec).unwrap(), extras)
    }

    #[test]
    fn the_process_is_the_run_flags() {
        let (s, extras) = spec_json(&config());
        let p = &s["process"];
        assert_eq!(p["args"], json!(["sh", "-c", "true"]));
        assert_eq!(p["env"], json!(["PATH=/bin", "HOSTNAME=web"]));
        assert_eq!(p["cwd"], "/work");
        assert_eq!(p["user"], json!({"uid": 1000, "gid": 100}));
        assert_eq!(p["terminal"], false);
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(p["oomScoreAdj"], 100);
        assert_eq!(p["rlimits"][0]["type"], "RLIMIT_NOFILE");
        // A set each (oci-spec keeps them in a HashSet: any order).
        let set = |k: &str| {
            let mut v: Vec<String> = (p["capabilities"][k].as_array().unwrap().iter())
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            v.sort();
            v
        };
        let caps = set("bounding");
        assert_eq!(caps.len(), 13, "docker's 14 less NET_RAW: {caps:?}");
        assert!(caps.contains(&"CAP_CHOWN".to_string()));
        assert!(!caps.contains(&"CAP_NET_RAW".to_string()));
        assert_eq!(set("effective"), caps);
        assert_eq!(set("permitted"), caps);
        assert_eq!(p["capabilities"]["inheritable"], json!([]));
        assert_eq!(s["hostname"], "web");
        assert_eq!(s["root"], json!({"path": "/srv/rootfs", "readonly": true}));
        assert!(extras.init && extras.overlay.is_none());
        assert_eq!(extras.user.user, "1000");
    }

    /// The profile's text lands in `linux.seccomp` as it is, beside the
    /// rest of `linux`; the whole reads back as one spec.
    #[test]
    fn seccomp_is_written_as_the_cache_holds_it() {
        let text = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#;
        let raw = RawValue::from_string(text.into()).unwrap();
        let (spec, _) = build(inputs(&config()));
        let plain = to_json(&mut spec.clone(), None);
        assert_eq!(plain, serde_json::to_vec(&spec).unwrap());
        let bytes = to_json(&mut spec.clone(), Some(&raw));
        let json = String::from_utf8(bytes.clone()).unwrap();
        assert!(json.contains(&format!(r#""seccomp":{text}"#)), "{json}");
        let back: Spec = serde_json::from_slice(&bytes).unwrap();
        let linux = back.linux().as_ref().unwrap();
        assert_eq!(
            linux
                .seccomp()
                .as_ref()
                .unwrap()
                .syscalls()
                .as_ref()
                .unwrap()[0]
                .names(),
            &["read".to_string()]
        );
        // The rest is the spec's own.
        let mut without = back.clone();
        without.linux_mut().as_mut().unwrap().set_seccomp(None);
        assert_eq!(without, spec);
    }

    #[test]
    fn a_user_name_is_left_to_the_extras() {
        let mut c = config();
        c.user = Some(UserSpec {
            user: "nobody".into(),
            group: None,
        });
        let (s, extras) = spec_json(&c);
        assert_eq!(s["process"]["user"], json!({"uid": 0, "gid": 0}));
        assert_eq!(extras.user.user, "nobody");
        c.user = None;
        assert_eq!(spec_json(&c).1.user.user, "0");
    }

    #[test]
    fn mounts_are_the_kernel_filesystems_then_storage_then_etc_files() {
        let (s, _) = spec_json(&config());
        let dests: Vec<&str> = (s["mounts"].as_array().unwrap().iter())
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/sys",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys/fs/cgroup",
                "/data",
                "/etc/hostname",
                "/etc/hosts"
            ]
        );
        let m = &s["mounts"];
        assert_eq!(m[1]["options"], json!(["nosuid", "noexec", "nodev", "ro"]));
        assert!(
            m[4]["options"]
                .as_array()
                .unwrap()
                .contains(&json!("size=32768k"))
        );
        assert_eq!(m[7]["source"], "/srv/data");
        assert_eq!(m[9]["source"], "/var/lib/containr/containers/abc/hosts");
        assert_eq!(m[9]["type"], "bind");
    }

    #[test]
    fn linux_has_the_namespaces_limits_and_masks() {
        let (s, _) = spec_json(&config());
        let l = &s["linux"];
        let types: Vec<&str> = (l["namespaces"].as_array().unwrap().iter())
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["pid", "ipc", "uts", "mount", "cgroup", "network"]);
        assert_eq!(l["cgroupsPath"], "/containr/abc");
        assert_eq!(l["sysctl"]["kernel.msgmax"], "4096");
        assert!(l.get("seccomp").is_none());
        assert!(l.get("uidMappings").is_none());
        assert_eq!(
            l["maskedPaths"].as_array().unwrap().len(),
            crate::rootfs::MASKED.len()
        );
        assert_eq!(l["readonlyPaths"][3], "/proc/sys");
    }

    #[test]
    fn network_modes_and_user_namespaces() {
        let mut c = config();
        c.network = Mode::Host;
        let (s, _) = spec_json(&c);
        let has_net =
            (s["linux"]["namespaces"].as_array().unwrap().iter()).any(|n| n["type"] == "network");
        assert!(!has_net, "--network host shares the host's");
        c.network = Mode::Container;
        c.join_netns = Some(4242);
        let (s, _) = spec_json(&c);
        assert_eq!(
            s["linux"]["namespaces"][5],
            json!({"type": "network", "path": "/proc/4242/ns/net"})
        );
        c.userns = Some(crate::namespace::userns::DEFAULT);
        c.confinement.privileged = true;
        let (s, extras) = spec_json(&c);
        assert_eq!(s["linux"]["namespaces"][6]["type"], "user");
        assert_eq!(
            s["linux"]["uidMappings"],
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}])
        );
        assert!(extras.idmapped);
        // --privileged: nothing masked, /sys and the cgroup writable.
        assert!(s["linux"].get("maskedPaths").is_none());
        assert_eq!(
            s["mounts"][1]["options"],
            json!(["nosuid", "noexec", "nodev"])
        );
    }

    /// The root is rprivate (nothing propagates either way), unless a
    /// volume asks for a propagation of its own, which a recursive
    /// rprivate applied again to the new root would undo.
    #[test]
    fn the_root_is_private_unless_a_volume_shares() {
        let mut c = config();
        let (s, _) = spec_json(&c);
        assert_eq!(s["linux"]["rootfsPropagation"], "rprivate");
        c.mounts = serde_json::from_value(json!([
            {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "rshared"]}
        ]))
        .unwrap();
        let (s, _) = spec_json(&c);
        assert!(s["linux"].get("rootfsPropagation").is_none(), "{s}");
    }

    /// The init is cloned with the spec's new namespaces, as
    /// `containr-oci`'s is: the network's as the mode says, the user's
    /// with `--userns-remap`, never the cgroup's (unshared once placed).
    #[test]
    fn the_clone_flags_are_the_specs_new_namespaces() {
        use nix::sched::CloneFlags as F;
        let flags = |c: &Config| super::super::oci::parts::clone_flags(&build(inputs(c)).0);
        let base = F::CLONE_NEWNS | F::CLONE_NEWUTS | F::CLONE_NEWIPC | F::CLONE_NEWPID;
        let mut c = config();
        assert_eq!(flags(&c), base | F::CLONE_NEWNET);
        c.network = Mode::Host;
        assert_eq!(flags(&c), base);
        c.network = Mode::Container;
        c.join_netns = Some(4242);
        assert_eq!(flags(&c), base, "joined by path, not made");
        c.userns = Some(crate::namespace::userns::DEFAULT);
        assert_eq!(flags(&c), base | F::CLONE_NEWUSER);
    }

    #[test]
    fn the_spec_passes_the_oci_runtimes_own_checks() {
        let c = config();
        let (spec, _) = build(inputs(&c));
        let bytes = serde_json::to_vec(&spec).unwrap();
        // What containr-oci checks of a bundle's config.json.
        let again = super::super::oci::bundle::parse(&bytes).unwrap();
        // (Compared typed: the capability sets are HashSets, in any order.)
        assert_eq!(again, spec);
    }
}

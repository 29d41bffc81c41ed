//! The cgroup v2 backend: one directory in the unified hierarchy.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{Cgroup, Error, Hierarchy, Limits, Location, Stats, io_err, keyed, read_u64, write};
use crate::step;

/// `statfs` magic of cgroup2.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The unified hierarchy mounted at `root`.
pub struct V2 {
    root: PathBuf,
}

impl V2 {
    pub fn new(root: PathBuf) -> V2 {
        V2 { root }
    }

    /// Whether `root` is a cgroup2 mount.
    pub fn is_v2(root: &Path) -> bool {
        nix::sys::statfs::statfs(root).is_ok_and(|s| s.filesystem_type().0 == CGROUP2_SUPER_MAGIC)
    }

    /// Its mountpoint.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn available(&self) -> Vec<String> {
        fs::read_to_string(self.root.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

/// docker's `--cpu-shares` (2..262144, default 1024) on v2's `cpu.weight`
/// scale (1..10000, default 100), as runc converts it since 1.3.2
/// (opencontainers/cgroups' `ConvertCPUSharesToCgroupV2Value`): a
/// quadratic in log2(shares) through the ends and the defaults, so 1024 is
/// 100, where the old straight line made it 39, well below a process
/// outside any container.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

impl Hierarchy for V2 {
    fn name(&self) -> &'static str {
        "v2"
    }

    fn empty(&self) -> Vec<(Location, std::time::Duration)> {
        super::container_dirs(&self.root.join("containr"))
            .into_iter()
            .filter_map(|(_, dir)| Some((Location::V2(dir.clone()), super::empty_since(&dir)?)))
            .collect()
    }

    fn create(
        &self,
        id: &str,
        limits: &Limits,
        parent: Option<&super::Parent>,
    ) -> Result<(Cgroup, LinuxResources), Error> {
        let available = self.available();
        // Every controller the host offers is enabled for containers, as
        // docker does, so `stats` can read memory, cpu and pids usage.
        let enable: Vec<String> = ["cpuset", "cpu", "io", "memory", "pids"]
            .iter()
            .filter(|c| available.iter().any(|a| a == *c))
            .map(|c| format!("+{c}"))
            .collect();
        let dir = match parent {
            Some(p) => {
                let dir = self.root.join(p.place.below_v2_root()).join(id);
                step!("mkdir -p {} (cgroup v2, --cgroup-parent)", dir.display());
                super::oci::make_v2_levels(&self.root, &dir, &p.raw, &mut Vec::new())?;
                dir
            }
            None => {
                let parent = self.root.join("containr");
                if !enable.is_empty() {
                    write(&self.root.join("cgroup.subtree_control"), &enable.join(" "))?;
                }
                match fs::create_dir(&parent) {
                    Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                        return Err(io_err(&parent)(e).into());
                    }
                    _ => {}
                }
                if !enable.is_empty() {
                    write(&parent.join("cgroup.subtree_control"), &enable.join(" "))?;
                }
                let dir = parent.join(id);
                step!("mkdir {} (cgroup v2)", dir.display());
                fs::create_dir(&dir).map_err(io_err(&dir))?;
                dir
            }
        };
        // From here on, dropping the Cgroup removes the directory.
        let cgroup = Cgroup::new(Location::V2(dir.clone()), limits.memory);
        if let Some(cpus) = &limits.cpuset_cpus {
            let effective =
                fs::read_to_string(dir.with_file_name("cpuset.cpus.effective")).unwrap_or_default();
            super::check_cpuset(cpus, &effective)?;
        }
        let resources = super::oci::resources_of(limits, cgroup.location().accounts_swap());
        super::oci::write_limits(cgroup.location(), &resources, false)?;
        Ok((cgroup, resources))
    }
}

pub(super) fn oom_kills(dir: &Path) -> u64 {
    keyed(&dir.join("memory.events"), "oom_kill").unwrap_or(0)
}

pub(super) fn stats(dir: &Path) -> Stats {
    Stats {
        memory_usage: read_u64(&dir.join("memory.current")).unwrap_or(0),
        memory_limit: read_u64(&dir.join("memory.max")),
        cpu_usage_ns: keyed(&dir.join("cpu.stat"), "usage_usec").unwrap_or(0) * 1000,
        pids: read_u64(&dir.join("pids.current")).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_match_runc() {
        assert_eq!(shares_to_weight(2), 1);
        // docker's default is v2's default.
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(512), 59);
        // runc 1.4.0-rc.1's figure (opencontainers/runc#4896).
        assert_eq!(shares_to_weight(2000), 170);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1 << 30), 10_000);
    }

    /// Against the real unified hierarchy where the host has one (on a
    /// hybrid host, /sys/fs/cgroup/unified, which has no controllers): the
    /// directory is made, a process can be placed in it, a limit whose
    /// controller is missing is refused, and nothing is left behind.
    #[test]
    fn real_v2_mount() {
        let root = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            .iter()
            .map(Path::new)
            .find(|p| V2::is_v2(p));
        let Some(root) = root else {
            eprintln!("no cgroup2 mount on this host; skipped");
            return;
        };
        if !nix::unistd::geteuid().is_root() {
            eprintln!("not root; skipped");
            return;
        }
        let v2 = V2::new(root.to_path_buf());
        let id = format!("unit-test-{}", std::process::id());
        let (cg, _) = v2.create(&id, &Limits::default(), None).unwrap();
        let Location::V2(dir) = cg.location().clone() else {
            panic!("v2 location expected")
        };
        assert!(dir.is_dir());
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        cg.add(child.id() as i32).unwrap();
        let own = fs::read_to_string(format!("/proc/{}/cgroup", child.id())).unwrap();
        assert!(own.contains(&format!("0::/containr/{id}")), "{own}");
        child.kill().unwrap();
        child.wait().unwrap();
        drop(cg);
        assert!(!dir.exists(), "cgroup not removed");

        let missing = ["memory", "pids"]
            .into_iter()
            .find(|c| !v2.available().iter().any(|a| a == c));
        if let Some(controller) = missing {
            let limits = if controller == "memory" {
                Limits {
                    memory: Some(1 << 20),
                    ..Limits::default()
                }
            } else {
                Limits {
                    pids_limit: Some(5),
                    ..Limits::default()
                }
            };
            let err = v2.create(&id, &limits, None).unwrap_err();
            assert!(matches!(err, Error::NoController { .. }), "{err}");
            assert!(!dir.exists());
        }
    }
}

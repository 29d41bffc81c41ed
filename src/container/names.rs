//! Names for containers run without `--name`, as docker gives them: an
//! adjective and a noun. Here the nouns are the primitives a container is
//! made of, which suits a runtime meant for teaching.

const ADJECTIVES: &[&str] = &[
    "agile", "bold", "bright", "brisk", "calm", "cheerful", "clever", "cosy", "crisp", "curious",
    "daring", "dapper", "deft", "eager", "earnest", "fair", "fearless", "frank", "gentle", "glad",
    "happy", "humble", "jolly", "keen", "kind", "lively", "loyal", "lucid", "mellow", "merry",
    "modest", "neat", "nimble", "noble", "patient", "plucky", "polite", "proud", "quick", "quiet",
    "ready", "robust", "serene", "sharp", "shy", "sleepy", "smart", "snug", "steady", "stoic",
    "sturdy", "sunny", "swift", "tidy", "tranquil", "trusty", "upbeat", "valiant", "vivid", "warm",
    "wise", "witty", "zealous", "zesty",
];

const NOUNS: &[&str] = &[
    "bridge",
    "capability",
    "cgroup",
    "chroot",
    "clone",
    "daemon",
    "dentry",
    "devpts",
    "digest",
    "epoll",
    "eventfd",
    "exec",
    "fanotify",
    "fork",
    "futex",
    "init",
    "inode",
    "inotify",
    "ioctl",
    "kernel",
    "layer",
    "manifest",
    "memfd",
    "mmap",
    "mount",
    "mqueue",
    "namespace",
    "netlink",
    "orphan",
    "overlay",
    "pidfd",
    "pipe",
    "pivot",
    "procfs",
    "reaper",
    "registry",
    "rlimit",
    "scheduler",
    "seccomp",
    "semaphore",
    "setns",
    "shell",
    "signal",
    "signalfd",
    "snapshot",
    "socket",
    "syscall",
    "sysfs",
    "tarball",
    "thread",
    "timerfd",
    "tmpfs",
    "umask",
    "unshare",
    "vdso",
    "veth",
    "whiteout",
    "xattr",
    "zombie",
    "rcu",
    "slab",
    "ptrace",
    "uevent",
    "blob",
];

/// Names to try, in order, for the container with id `id` (hex): drawn
/// from the id's own random bytes, so two at once rarely meet; the caller
/// falls back to the short id when all are taken.
pub fn candidates(id: &str) -> impl Iterator<Item = String> + use<> {
    let bytes: Vec<usize> = (0..id.len() / 2)
        .filter_map(|i| usize::from_str_radix(&id[2 * i..2 * i + 2], 16).ok())
        .collect();
    (0..8).filter_map(move |k| {
        let (a, n) = (bytes.get(2 * k)?, bytes.get(2 * k + 1)?);
        Some(format!(
            "{}_{}",
            ADJECTIVES[a % ADJECTIVES.len()],
            NOUNS[n % NOUNS.len()]
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_come_from_the_id() {
        let id = "00ff10203040506070808090a0b0c0d0e0f0e1e2e3e4e5e6e7e8e9eaebecedee";
        let names: Vec<String> = candidates(id).collect();
        assert_eq!(names.len(), 8);
        assert_eq!(names[0], format!("agile_{}", NOUNS[255 % NOUNS.len()]));
        for n in &names {
            super::super::state::validate_name(n).unwrap();
        }
        // Another id, other names; the same id, the same names.
        assert_ne!(names, candidates(&id.replace('0', "1")).collect::<Vec<_>>());
        assert_eq!(names, candidates(id).collect::<Vec<_>>());
        // Every word is a valid part of a name, and none repeats.
        for list in [ADJECTIVES, NOUNS] {
            let mut sorted = list.to_vec();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), list.len());
        }
    }
}

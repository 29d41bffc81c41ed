//! Which device nodes a container may use: docker's default set, enforced
//! by the v1 `devices` controller or, on cgroup v2, by an eBPF program of
//! type `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the container's cgroup.
//!
//! The rules are data ([`DEFAULT`]); [`Rule::v1`] renders one for
//! `devices.allow`, [`program`] compiles them all into BPF instructions.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::{Error, io_err};
use crate::step;

/// One allow or deny rule. `None` matches any value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Allow (the default set has only these) or deny.
    pub allow: bool,
    /// `b`lock or `c`haracter device.
    pub kind: Option<char>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Any of `r`ead, `w`rite, `m`knod.
    pub access: &'static str,
}

const fn rule(kind: char, major: Option<u32>, minor: Option<u32>, access: &'static str) -> Rule {
    Rule {
        allow: true,
        kind: Some(kind),
        major,
        minor,
        access,
    }
}

/// Docker's default: any device node may be created (mknod), but only
/// null, zero, full, random, urandom, tty, console, ptmx, the ptys and tun
/// may be opened.
pub const DEFAULT: [Rule; 12] = [
    rule('c', None, None, "m"),
    rule('b', None, None, "m"),
    rule('c', Some(1), Some(3), "rwm"),
    rule('c', Some(1), Some(5), "rwm"),
    rule('c', Some(1), Some(7), "rwm"),
    rule('c', Some(1), Some(8), "rwm"),
    rule('c', Some(1), Some(9), "rwm"),
    rule('c', Some(5), Some(0), "rwm"),
    rule('c', Some(5), Some(1), "rwm"),
    rule('c', Some(5), Some(2), "rwm"),
    rule('c', Some(136), None, "rwm"),
    rule('c', Some(10), Some(200), "rwm"),
];

impl Rule {
    /// The rule as `devices.allow` takes it: `c 1:3 rwm`, `c 136:* rwm`.
    pub fn v1(&self) -> String {
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind.unwrap_or('a'),
            n(self.major),
            n(self.minor),
            self.access
        )
    }

    /// A line of v1's `devices.list` (`c 1:3 rwm`, `a *:* rwm`) as the
    /// allow rule it lists; `None` if it is not one.
    pub fn from_v1_list(line: &str) -> Option<Rule> {
        let mut words = line.split_whitespace();
        let kind = match words.next()? {
            "a" => None,
            "b" => Some('b'),
            "c" => Some('c'),
            _ => return None,
        };
        let (major, minor) = words.next()?.split_once(':')?;
        let number = |n: &str| match n {
            "*" => Some(None),
            n => n.parse().ok().map(Some),
        };
        let access = access(words.next()?).filter(|a| !a.is_empty())?;
        if words.next().is_some() {
            return None;
        }
        Some(Rule {
            allow: true,
            kind,
            major: number(major)?,
            minor: number(minor)?,
            access,
        })
    }

    /// The rule as the v1 file it goes to takes it: (`devices.allow` or
    /// `devices.deny`, the line).
    pub fn v1_write(&self) -> (&'static str, String) {
        let file = if self.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        (file, self.v1())
    }

    /// `BPF_DEVCG_ACC_*` bits of the access string.
    fn access_mask(&self) -> i32 {
        self.access.chars().fold(0, |m, c| {
            m | match c {
                'm' => 1,
                'r' => 2,
                'w' => 4,
                _ => 0,
            }
        })
    }
}

/// `struct bpf_insn`, as the kernel reads it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // dst &= imm
const ALU32_RSH_K: u8 = 0x74; // dst >>= imm
const ALU32_MOV_X: u8 = 0xbc; // dst = src
const ALU64_MOV_K: u8 = 0xb7; // dst = imm
const JNE_K: u8 = 0x55; // if dst != imm goto +off
const JNE_X: u8 = 0x5d; // if dst != src goto +off
const JEQ_K: u8 = 0x15; // if dst == imm goto +off
const EXIT: u8 = 0x95;

/// The access string `s` (any of r, w, m) in canonical order, as a static
/// string a [`Rule`] can hold; `None` if it has anything else.
pub fn access(s: &str) -> Option<&'static str> {
    const ALL: [&str; 8] = ["", "r", "w", "rw", "m", "rm", "wm", "rwm"];
    let mut bits = 0;
    for c in s.chars() {
        bits |= match c {
            'r' => 1,
            'w' => 2,
            'm' => 4,
            _ => return None,
        };
    }
    Some(ALL[bits])
}

/// Compile `rules` into a device program: r2 = device type, r3 = requested
/// access, r4 = major, r5 = minor (from `struct bpf_cgroup_dev_ctx`, which
/// r1 points to). As in the v1 lists, a later rule overrides an earlier one,
/// so the rules are checked last first: each is a block of checks that
/// jumps past itself on the first mismatch and returns its verdict (1 allow,
/// 0 deny) if all match. An allow rule matches a request for accesses it
/// all grants; a deny rule, one for any access it names. Nothing matched:
/// `default_allow`.
pub fn program(rules: &[Rule], default_allow: bool) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        let mut checks: Vec<Vec<Insn>> = Vec::new();
        if let Some(kind) = r.kind {
            let t = if kind == 'b' { 1 } else { 2 };
            checks.push(vec![insn(JNE_K, 2, 0, 0, t)]);
        }
        let mask = r.access_mask();
        if mask != 7 && r.allow {
            // Allowed only if every requested bit is among the rule's.
            checks.push(vec![
                insn(ALU32_MOV_X, 1, 3, 0, 0),
                insn(ALU32_AND_K, 1, 0, 0, mask),
                insn(JNE_X, 1, 3, 0, 0),
            ]);
        } else if mask != 7 {
            // Denied if any requested bit is among the rule's.
            checks.push(vec![
                insn(ALU32_MOV_X, 1, 3, 0, 0),
                insn(ALU32_AND_K, 1, 0, 0, mask),
                insn(JEQ_K, 1, 0, 0, 0),
            ]);
        }
        if let Some(major) = r.major {
            checks.push(vec![insn(JNE_K, 4, 0, 0, major as i32)]);
        }
        if let Some(minor) = r.minor {
            checks.push(vec![insn(JNE_K, 5, 0, 0, minor as i32)]);
        }
        let matches_all = checks.is_empty();
        let mut block: Vec<Insn> = checks.into_iter().flatten().collect();
        block.push(insn(ALU64_MOV_K, 0, 0, 0, r.allow as i32));
        block.push(insn(EXIT, 0, 0, 0, 0));
        // Each jump skips to the end of its block.
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if matches!(ins.code, JNE_K | JNE_X | JEQ_K) {
                ins.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
        if matches_all {
            // Nothing after it could run, and the verifier refuses
            // unreachable instructions.
            return p;
        }
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, default_allow as i32));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The head of `union bpf_attr` for BPF_PROG_LOAD; the kernel takes a
/// shorter attr than its own and treats the rest as zero.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// The head of `union bpf_attr` for BPF_PROG_ATTACH.
#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// The head of `union bpf_attr` for BPF_PROG_QUERY.
#[repr(C)]
#[derive(Default)]
struct ProgQuery {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
}

/// The head of `union bpf_attr` for BPF_PROG_GET_FD_BY_ID.
#[repr(C)]
#[derive(Default)]
struct ProgId {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(2) with one of the attr heads above.
///
/// # Safety
/// `attr` must be the head `cmd` takes, and any pointer in it valid for the
/// call.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> libc::c_long {
    // SAFETY: the caller's contract; the kernel reads (and for some
    // commands writes) size_of::<T>() bytes.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) }
}

/// Replace the device programs attached to the cgroup `dir` by one for
/// `rules`: the new one is attached before the old ones are detached, so no
/// moment is without a filter.
pub fn replace(dir: &Path, rules: &[Rule], default_allow: bool) -> Result<(), Error> {
    let cgroup = std::fs::File::open(dir).map_err(io_err(dir))?;
    let mut ids = [0u32; 64];
    let mut query = ProgQuery {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..ProgQuery::default()
    };
    // SAFETY: a BPF_PROG_QUERY head whose prog_ids points at prog_cnt u32s
    // that outlive the call.
    if unsafe { bpf(BPF_PROG_QUERY, &mut query) } < 0 {
        return Err(bpf_err(dir, "listing the device filters"));
    }
    // The kernel wrote the count back into the attr.
    let count = query.prog_cnt as usize;
    attach(dir, rules, default_allow)?;
    for &id in &ids[..count.min(ids.len())] {
        let mut by_id = ProgId {
            prog_id: id,
            ..ProgId::default()
        };
        // SAFETY: a BPF_PROG_GET_FD_BY_ID head; no pointers.
        let fd = unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut by_id) };
        if fd < 0 {
            return Err(bpf_err(dir, "opening an old device filter"));
        }
        // SAFETY: the kernel just returned this descriptor; nothing else owns it.
        let prog = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut detach = ProgAttach {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_bpf_fd: prog.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: 0,
        };
        // SAFETY: a BPF_PROG_DETACH head with open descriptors.
        if unsafe { bpf(BPF_PROG_DETACH, &mut detach) } < 0 {
            return Err(bpf_err(dir, "detaching an old device filter"));
        }
    }
    Ok(())
}

fn bpf_err(dir: &Path, what: &str) -> Error {
    let e = std::io::Error::last_os_error();
    io_err(dir)(std::io::Error::new(e.kind(), format!("{what}: {e}"))).into()
}

/// Load the program for `rules` (see [`program`]) and attach it to the
/// cgroup `dir` (v2). The attachment lives as long as the cgroup.
pub fn attach(dir: &Path, rules: &[Rule], default_allow: bool) -> Result<(), Error> {
    step!(
        "bpf(BPF_PROG_LOAD, CGROUP_DEVICE) + BPF_PROG_ATTACH to {}: only the allowed devices open",
        dir.display()
    );
    let insns = program(rules, default_allow);
    let license = c"Apache-2.0";
    let load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..ProgLoad::default()
    };
    // SAFETY: `load` is a valid prefix of bpf_attr whose pointers (insns,
    // license) outlive the call; the kernel copies what it needs.
    let prog = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &load as *const ProgLoad,
            std::mem::size_of::<ProgLoad>(),
        )
    };
    if prog < 0 {
        return Err(bpf_err(dir, "loading the device filter"));
    }
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    let prog = unsafe { OwnedFd::from_raw_fd(prog as i32) };
    let cgroup = std::fs::File::open(dir).map_err(io_err(dir))?;
    let attach = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: as above, a valid bpf_attr prefix with open descriptors.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attach as *const ProgAttach,
            std::mem::size_of::<ProgAttach>(),
        )
    };
    if rc < 0 {
        return Err(bpf_err(dir, "attaching the device filter"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_lists_read_back() {
        for rule in DEFAULT {
            assert_eq!(Rule::from_v1_list(&rule.v1()), Some(rule));
        }
        let all = Rule::from_v1_list("a *:* rwm").unwrap();
        assert_eq!((all.kind, all.major, all.access), (None, None, "rwm"));
        for bad in [
            "",
            "x 1:3 rwm",
            "c 1 rwm",
            "c 1:3",
            "c 1:3 rx",
            "c 1:3 rwm z",
            "c a:3 r",
        ] {
            assert_eq!(Rule::from_v1_list(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn v1_syntax() {
        assert_eq!(DEFAULT[0].v1(), "c *:* m");
        assert_eq!(DEFAULT[2].v1(), "c 1:3 rwm");
        assert_eq!(DEFAULT[10].v1(), "c 136:* rwm");
    }

    /// Run the program the way the kernel would, on one request.
    fn run(p: &[Insn], kind: u32, access: u32, major: u32, minor: u32) -> i64 {
        let ctx = [(access << 16) | kind, major, minor];
        let mut r = [0i64; 11];
        let mut pc = 0;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = ctx[i.off as usize / 4] as i64,
                ALU32_AND_K => r[dst] = ((r[dst] as u32) & i.imm as u32) as i64,
                ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as i64,
                ALU32_MOV_X => r[dst] = r[src] as u32 as i64,
                ALU64_MOV_K => r[dst] = i.imm as i64,
                JNE_K if r[dst] != i.imm as i64 => pc += i.off as usize,
                JNE_X if r[dst] != r[src] => pc += i.off as usize,
                JEQ_K if r[dst] == i.imm as i64 => pc += i.off as usize,
                JNE_K | JNE_X | JEQ_K => {}
                EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn default_program_allows_exactly_the_default_set() {
        let p = program(&DEFAULT, false);
        const CHAR: u32 = 2;
        const BLOCK: u32 = 1;
        const MKNOD: u32 = 1;
        const READ: u32 = 2;
        const WRITE: u32 = 4;
        assert_eq!(run(&p, CHAR, READ | WRITE, 1, 3), 1, "/dev/null");
        assert_eq!(run(&p, CHAR, READ, 136, 7), 1, "a pty");
        assert_eq!(run(&p, CHAR, READ, 1, 1), 0, "/dev/mem");
        assert_eq!(run(&p, BLOCK, READ, 8, 0), 0, "a disk");
        assert_eq!(run(&p, BLOCK, MKNOD, 8, 0), 1, "mknod is allowed");
        assert_eq!(
            run(&p, CHAR, MKNOD | READ, 10, 237),
            0,
            "mknod+read of loop-control"
        );
        assert_eq!(run(&p, CHAR, WRITE, 10, 200), 1, "tun");
    }

    /// OCI lists: later rules override earlier ones; a deny names accesses.
    #[test]
    fn later_rules_override_earlier_ones() {
        let deny_all = Rule {
            allow: false,
            kind: None,
            major: None,
            minor: None,
            access: "rwm",
        };
        let allow_null = rule('c', Some(1), Some(3), "rw");
        let deny_null_write = Rule {
            allow: false,
            ..rule('c', Some(1), Some(3), "w")
        };
        let p = program(&[deny_all, allow_null, deny_null_write], true);
        assert_eq!(run(&p, 2, 2, 1, 3), 1, "read /dev/null: allowed");
        assert_eq!(run(&p, 2, 2 | 4, 1, 3), 0, "read+write /dev/null: denied");
        assert_eq!(run(&p, 2, 2, 1, 5), 0, "/dev/zero: deny all");
        // Nothing matched: the default.
        assert_eq!(run(&program(&[allow_null], true), 1, 2, 8, 0), 1);
        assert_eq!(run(&program(&[allow_null], false), 1, 2, 8, 0), 0);
        assert_eq!(access("mwr"), Some("rwm"));
        assert_eq!(access("x"), None);
        assert_eq!(
            deny_null_write.v1_write(),
            ("devices.deny", "c 1:3 w".into())
        );
    }

    /// Against the real kernel: the program loads, attaches to a v2
    /// cgroup (on a hybrid host, under the controller-less unified mount,
    /// where device programs still apply), and decides what a process in
    /// it may open.
    #[test]
    fn real_filter_denies_and_allows() {
        let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .iter()
            .map(Path::new)
            .find(|p| super::super::V2::is_v2(p));
        let (Some(root), true) = (root, nix::unistd::geteuid().is_root()) else {
            eprintln!("needs root and a cgroup2 mount; skipped");
            return;
        };
        let dir = root.join(format!("containr-devices-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        attach(&dir, &DEFAULT, false).unwrap();
        // A child joins the cgroup, then tries /dev/null and /dev/loop-control.
        let script = format!(
            "echo $$ > {}/cgroup.procs && \
             (cat /dev/null && echo null=ok); \
             (exec 3</dev/loop-control) 2>/dev/null && echo loop=ok || echo loop=denied",
            dir.display()
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        eprintln!("in the filtered cgroup: {text}");
        std::fs::remove_dir(&dir).unwrap();
        assert!(text.contains("null=ok"), "{text}");
        if Path::new("/dev/loop-control").exists()
            && std::fs::File::open("/dev/loop-control").is_ok()
        {
            assert!(text.contains("loop=denied"), "{text}");
        }
    }
}

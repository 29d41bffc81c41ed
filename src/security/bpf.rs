//! A seccomp filter as classic BPF, generated from resolved rules.
//!
//! Why not libseccomp's own output: the kernel translates and JIT-compiles
//! a filter when it is installed, in time proportional to its length, on
//! every container's start-up path. libseccomp tests syscall numbers one
//! at a time (a list, or a binary tree of single numbers): 1227
//! instructions for docker's default profile on x86_64 with its i386 and
//! x32 sub-architectures, 0.65 ms of CPU to install. An allow-list is
//! mostly long runs of consecutive numbers, so this generator searches
//! *ranges* of numbers that share an outcome: the same profile is a few
//! hundred instructions. libseccomp still resolves syscall names per
//! architecture, and the unit tests check, by running both programs, that
//! the two filters decide every syscall alike.
//!
//! Semantics, per architecture: a syscall's rules are tried in profile
//! order and the first whose argument conditions all hold decides; no rule
//! matching means the default action. An architecture the filter does not
//! name gets the bad-architecture action (killing the thread, as
//! libseccomp's default).

use std::collections::BTreeMap;

/// `SECCOMP_RET_*` (linux/seccomp.h): the action a filter returns.
pub type Action = u32;
pub const RET_KILL_PROCESS: Action = 0x8000_0000;
pub const RET_KILL_THREAD: Action = 0;
pub const RET_TRAP: Action = 0x0003_0000;
pub const RET_ERRNO: Action = 0x0005_0000;
pub const RET_TRACE: Action = 0x7ff0_0000;
pub const RET_LOG: Action = 0x7ffc_0000;
pub const RET_ALLOW: Action = 0x7fff_0000;

/// `AUDIT_ARCH_*` (linux/audit.h) of the architectures supported.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
pub const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
pub const AUDIT_ARCH_RISCV64: u32 = 0xc000_00f3;
pub const AUDIT_ARCH_PPC64LE: u32 = 0xc000_0015;
pub const AUDIT_ARCH_PPC64: u32 = 0x8000_0015;
pub const AUDIT_ARCH_S390X: u32 = 0x8000_0016;
/// x32 shares x86_64's audit arch; its syscall numbers have this bit.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Comparison of one syscall argument with a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `(arg & mask) == value`.
    MaskedEq {
        mask: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cond {
    pub index: u8,
    pub op: Op,
    pub value: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// All must hold.
    pub conds: Vec<Cond>,
    pub action: Action,
}

/// The rules of one architecture (or of x32, within x86_64's audit arch).
#[derive(Debug, Clone, Default)]
pub struct ArchRules {
    /// Arguments are 32 bits wide: only their low words are compared.
    pub bits32: bool,
    pub syscalls: BTreeMap<u32, Vec<Rule>>,
}

/// What the filter covers, keyed by audit arch: the rules for numbers
/// below [`X32_SYSCALL_BIT`] and, for x86_64, those for x32 above it.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub default: Action,
    pub bad_arch: Action,
    pub arches: BTreeMap<u32, (Option<ArchRules>, Option<ArchRules>)>,
}

// Classic BPF opcodes (linux/bpf_common.h, linux/filter.h).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JGT_K: u16 = 0x05 | 0x20;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
const BPF_ALU_AND_K: u16 = 0x04 | 0x50;
const BPF_RET_K: u16 = 0x06;

/// The kernel's limit on a filter's length (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
/// An argument's words are in the machine's byte order.
const LO_FIRST: bool = cfg!(target_endian = "little");
fn arg_lo(i: u8) -> u32 {
    16 + 8 * i as u32 + if LO_FIRST { 0 } else { 4 }
}
fn arg_hi(i: u8) -> u32 {
    16 + 8 * i as u32 + if LO_FIRST { 4 } else { 0 }
}

/// An instruction's position, counted from the end of the program: code is
/// emitted backwards, so every jump target already has one, and the
/// distance to it is known when the jump is written.
type Label = usize;

/// Builds a program back to front.
struct Emitter {
    rev: Vec<libc::sock_filter>,
    rets: BTreeMap<Action, Label>,
}

impl Emitter {
    fn next(&self) -> Label {
        self.rev.len()
    }

    fn push(&mut self, code: u16, jt: u8, jf: u8, k: u32) -> Label {
        self.rev.push(libc::sock_filter { code, jt, jf, k });
        self.rev.len() - 1
    }

    /// A return of `action`, shared by every path that ends in it.
    fn ret(&mut self, action: Action) -> Label {
        if let Some(&l) = self.rets.get(&action) {
            return l;
        }
        let l = self.push(BPF_RET_K, 0, 0, action);
        self.rets.insert(action, l);
        l
    }

    /// Jump offset from the instruction about to be emitted to `target`,
    /// or a trampoline (`ja`) to it when that is beyond a conditional
    /// jump's 8 bits.
    fn reach(&mut self, target: Label) -> Label {
        if self.next() - target - 1 <= u8::MAX as usize {
            return target;
        }
        let off = self.next() - target - 1;
        self.push(BPF_JMP_JA, 0, 0, off as u32)
    }

    /// `if (A op k) goto yes else goto no`.
    fn jump(&mut self, code: u16, k: u32, yes: Label, no: Label) -> Label {
        let no = self.reach(no);
        let yes = self.reach(yes);
        let at = self.next();
        let off = |t: Label| (at - t - 1) as u8;
        self.push(code, off(yes), off(no), k)
    }

    fn load(&mut self, offset: u32) -> Label {
        self.push(BPF_LD_W_ABS, 0, 0, offset)
    }

    fn finish(mut self) -> Vec<u8> {
        self.rev.reverse();
        self.rev
            .iter()
            .flat_map(|i| {
                let mut b = Vec::with_capacity(8);
                b.extend_from_slice(&i.code.to_ne_bytes());
                b.push(i.jt);
                b.push(i.jf);
                b.extend_from_slice(&i.k.to_ne_bytes());
                b
            })
            .collect()
    }
}

/// Compile `filter` to a program for `seccomp(SECCOMP_SET_MODE_FILTER)`.
pub fn compile(filter: &Filter) -> Vec<u8> {
    let mut e = Emitter {
        rev: Vec::new(),
        rets: BTreeMap::new(),
    };
    let bad_arch = e.ret(filter.bad_arch);
    let default = e.ret(filter.default);
    let mut blocks = Vec::new();
    for (&token, (native, x32)) in &filter.arches {
        let tree = |e: &mut Emitter, rules: &Option<ArchRules>| match rules {
            Some(r) => numbers(e, r, default),
            None => bad_arch,
        };
        let low = tree(&mut e, native);
        if token == AUDIT_ARCH_X86_64 {
            let high = tree(&mut e, x32);
            e.jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, high, low);
        }
        blocks.push((token, e.load(NR)));
    }
    // The architecture tests, first in the program, so emitted last.
    let mut otherwise = bad_arch;
    for &(token, entry) in blocks.iter().rev() {
        otherwise = e.jump(BPF_JMP_JEQ_K, token, entry, otherwise);
    }
    e.load(ARCH);
    e.finish()
}

/// A search over syscall numbers (in A) for `rules`; returns its entry.
fn numbers(e: &mut Emitter, rules: &ArchRules, default: Label) -> Label {
    // Each syscall's outcome, as a label: a shared return, or the code
    // testing its arguments.
    let outcomes: Vec<(u32, Label)> = rules
        .syscalls
        .iter()
        .map(|(&nr, list)| (nr, syscall_rules(e, list, rules.bits32, default)))
        .collect();
    // Segments [start, next start) of equal outcome, covering all numbers.
    let mut segments: Vec<(u32, Label)> = vec![(0, default)];
    let mut set = |start: u32, l: Label| {
        match segments.last_mut() {
            Some(last) if last.0 == start => last.1 = l,
            _ => segments.push((start, l)),
        }
        let n = segments.len();
        if n >= 2 && segments[n - 2].1 == segments[n - 1].1 {
            segments.pop();
        }
    };
    for (nr, l) in outcomes {
        set(nr, l);
        if nr < u32::MAX {
            set(nr + 1, default);
        }
    }
    search(e, &segments)
}

/// Binary search over `segments` (sorted starts, each with its outcome).
fn search(e: &mut Emitter, segments: &[(u32, Label)]) -> Label {
    if segments.len() == 1 {
        return segments[0].1;
    }
    let mid = segments.len() / 2;
    let upper = search(e, &segments[mid..]);
    let lower = search(e, &segments[..mid]);
    e.jump(BPF_JMP_JGE_K, segments[mid].0, upper, lower)
}

/// The code deciding one syscall: its rules in order, then `default`.
fn syscall_rules(e: &mut Emitter, rules: &[Rule], bits32: bool, default: Label) -> Label {
    let mut next = default;
    for rule in rules.iter().rev() {
        let act = e.ret(rule.action);
        let mut ok = act;
        for c in rule.conds.iter().rev() {
            ok = cond(e, c, bits32, ok, next);
        }
        next = ok;
    }
    next
}

/// Test one argument condition; `yes`/`no` are where to go.
fn cond(e: &mut Emitter, c: &Cond, bits32: bool, yes: Label, no: Label) -> Label {
    let (hi, lo) = ((c.value >> 32) as u32, c.value as u32);
    let i = c.index;
    // For 64-bit arguments the high word decides unless it is equal.
    match c.op {
        Op::Eq | Op::Ne => {
            let (t, f) = if c.op == Op::Eq { (yes, no) } else { (no, yes) };
            e.jump(BPF_JMP_JEQ_K, lo, t, f);
            let low = e.load(arg_lo(i));
            if bits32 {
                return low;
            }
            e.jump(BPF_JMP_JEQ_K, hi, low, f);
            e.load(arg_hi(i))
        }
        Op::MaskedEq { mask } => {
            let (mhi, mlo) = ((mask >> 32) as u32, mask as u32);
            e.jump(BPF_JMP_JEQ_K, lo & mlo, yes, no);
            e.push(BPF_ALU_AND_K, 0, 0, mlo);
            let low = e.load(arg_lo(i));
            if bits32 {
                return low;
            }
            e.jump(BPF_JMP_JEQ_K, hi & mhi, low, no);
            e.push(BPF_ALU_AND_K, 0, 0, mhi);
            e.load(arg_hi(i))
        }
        Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            // A > k is JGT; A >= k is JGE; < and <= are their negations.
            let (code, t, f) = match c.op {
                Op::Gt => (BPF_JMP_JGT_K, yes, no),
                Op::Ge => (BPF_JMP_JGE_K, yes, no),
                Op::Lt => (BPF_JMP_JGE_K, no, yes),
                _ => (BPF_JMP_JGT_K, no, yes),
            };
            e.jump(code, lo, t, f);
            let low = e.load(arg_lo(i));
            if bits32 {
                return low;
            }
            // High words: greater decides "above", equal compares the low
            // words, smaller decides "below".
            let (above, below) = match c.op {
                Op::Gt | Op::Ge => (yes, no),
                _ => (no, yes),
            };
            let eq = e.jump(BPF_JMP_JEQ_K, hi, low, below);
            e.jump(BPF_JMP_JGT_K, hi, above, eq);
            e.load(arg_hi(i))
        }
    }
}

/// A program decoded for [`run`].
#[cfg(test)]
pub fn decode(prog: &[u8]) -> Vec<(u16, u8, u8, u32)> {
    prog.chunks(8)
        .map(|c| {
            (
                u16::from_ne_bytes([c[0], c[1]]),
                c[2],
                c[3],
                u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect()
}

/// Run a decoded program over one `seccomp_data`, as the kernel would: for
/// tests, which compare this generator's programs with libseccomp's.
#[cfg(test)]
pub fn run(insns: &[(u16, u8, u8, u32)], nr: u32, arch: u32, args: [u64; 6]) -> Action {
    let word = |o: u32| -> u32 {
        match o {
            NR => nr,
            ARCH => arch,
            o if (16..64).contains(&o) => {
                let a = args[(o as usize - 16) / 8];
                if (o % 8 == 0) == LO_FIRST {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            o => panic!("load of offset {o}"),
        }
    };
    let (mut a, mut pc) = (0u32, 0usize);
    loop {
        let (code, jt, jf, k) = insns[pc];
        pc += 1;
        match code {
            BPF_LD_W_ABS => a = word(k),
            BPF_ALU_AND_K => a &= k,
            BPF_JMP_JA => pc += k as usize,
            BPF_RET_K => return k,
            _ => {
                let taken = match code {
                    BPF_JMP_JEQ_K => a == k,
                    BPF_JMP_JGT_K => a > k,
                    BPF_JMP_JGE_K => a >= k,
                    other => panic!("instruction {other:#x} not interpreted"),
                };
                pc += if taken { jt } else { jf } as usize;
            }
        }
    }
}

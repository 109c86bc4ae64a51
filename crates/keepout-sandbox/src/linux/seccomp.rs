//! The seccomp deny list: the system calls of threat-model classes A7 (privilege) and A8
//! (kernel attack surface), and the terminal-injection ioctls of A5.
//!
//! Guarantees of the installed filter: a denied call fails with EPERM (`clone3` with ENOSYS,
//! so libc falls back to `clone`, whose flags the filter can see); a call made through another
//! architecture's ABI (i386 `int 0x80`) kills the process; an x32-ABI call fails with ENOSYS.
//! Everything else is allowed: this is a deny list on top of namespaces and Landlock, not the
//! only wall.

use std::collections::BTreeMap;

use seccompiler::{sock_filter, BpfProgram};

use crate::policy::Mode;

/// A denied system call and why, for `--print-policy` and `keepout doctor`.
pub struct Denied {
    pub name: &'static str,
    pub nr: i64,
    pub why: &'static str,
}

macro_rules! denied {
    ($($name:ident => $why:expr),* $(,)?) => {
        vec![$(Denied { name: stringify!($name), nr: libc::$name, why: $why }),*]
    };
}

/// The system calls denied outright (whatever their arguments).
pub fn denied_syscalls() -> Vec<Denied> {
    #[allow(unused_mut)]
    let mut list = denied![
        SYS_mount => "A7 mount",
        SYS_umount2 => "A7 mount",
        SYS_pivot_root => "A7 mount",
        SYS_chroot => "A7 mount",
        SYS_move_mount => "A7 mount",
        SYS_open_tree => "A7 mount",
        SYS_fsopen => "A7 mount",
        SYS_fsconfig => "A7 mount",
        SYS_fsmount => "A7 mount",
        SYS_fspick => "A7 mount",
        SYS_mount_setattr => "A7 mount",
        SYS_unshare => "A7 new namespaces",
        SYS_setns => "A7 enter namespaces",
        SYS_open_by_handle_at => "A7 escape by file handle",
        SYS_keyctl => "A8 kernel keyring",
        SYS_add_key => "A8 kernel keyring",
        SYS_request_key => "A8 kernel keyring",
        SYS_bpf => "A8 eBPF",
        SYS_perf_event_open => "A8 perf events",
        SYS_userfaultfd => "A8 userfaultfd (exploit primitive)",
        SYS_io_uring_setup => "A8 io_uring",
        SYS_io_uring_enter => "A8 io_uring",
        SYS_io_uring_register => "A8 io_uring",
        SYS_kexec_load => "A8 kexec",
        SYS_kexec_file_load => "A8 kexec",
        SYS_init_module => "A8 kernel modules",
        SYS_finit_module => "A8 kernel modules",
        SYS_delete_module => "A8 kernel modules",
        SYS_acct => "A8 process accounting",
        SYS_swapon => "A8 swap",
        SYS_swapoff => "A8 swap",
        SYS_reboot => "A8 reboot",
        SYS_syslog => "A8 kernel log",
        SYS_quotactl => "A8 quotas",
        SYS_vhangup => "A5 terminal hangup",
    ];
    #[cfg(target_arch = "x86_64")]
    list.extend(denied![
        SYS_iopl => "A8 port I/O",
        SYS_ioperm => "A8 port I/O",
        SYS_uselib => "A8 legacy loader",
        SYS_ustat => "A8 legacy",
        SYS_sysfs => "A8 legacy",
    ]);
    list
}

/// A system call that takes a file mode: its number, the index of the mode argument, and, for
/// the open calls, the index of the flags argument (the mode means something only when the
/// flags create a file; otherwise the register holds whatever was there, and must not decide).
pub struct ModeArg {
    pub name: &'static str,
    nr: i64,
    pub mode: u8,
    pub open_flags: Option<u8>,
}

/// The calls that take a file mode, where a setuid or setgid bit is refused (A7); public for
/// the container backend's profile, which refuses the same.
pub fn set_id_mode_args() -> Vec<ModeArg> {
    macro_rules! arg {
        ($nr:ident, $mode:expr, $flags:expr) => {
            ModeArg {
                name: stringify!($nr).trim_start_matches("SYS_"),
                nr: libc::$nr,
                mode: $mode,
                open_flags: $flags,
            }
        };
    }
    #[allow(unused_mut)]
    let mut list = vec![
        arg!(SYS_fchmod, 1, None),
        arg!(SYS_fchmodat, 2, None),
        arg!(SYS_fchmodat2, 2, None),
        arg!(SYS_openat, 3, Some(2)),
        arg!(SYS_mknodat, 2, None),
    ];
    #[cfg(target_arch = "x86_64")]
    list.extend([
        arg!(SYS_chmod, 1, None),
        arg!(SYS_open, 2, Some(1)),
        arg!(SYS_creat, 1, None),
        arg!(SYS_mknod, 1, None),
    ]);
    list
}

/// The open flags that create a file, and so give the mode argument a meaning: O_CREAT, and
/// O_TMPFILE's own bit.
pub const CREATING_OPEN_FLAGS: &[u64] = &[libc::O_CREAT as u64, 0o20000000];

/// The setuid and setgid bits of a mode.
pub const SET_ID_BITS: &[u64] = &[libc::S_ISUID as u64, libc::S_ISGID as u64];

const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;
/// Namespace flags that `clone` may not use.
pub const CLONE_NS_FLAGS: &[u64] = &[
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
    0x80, // CLONE_NEWTIME
];
/// `personality` values that do not weaken anything (query, PER_LINUX, PER_LINUX32 and their
/// UNAME26-free forms), as in Docker's default profile.
const PERSONALITY_ALLOWED: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// What must hold of one argument (its low 32 bits) for the call to be refused.
#[derive(Debug, Clone)]
enum Test {
    /// Any bit of the mask is set.
    AnyBit(u32),
    /// It is one of these values.
    OneOf(Vec<u32>),
    /// It is none of these values.
    NoneOf(Vec<u32>),
}

/// A condition on the low 32 bits of argument `arg`. Every argument the deny list looks at is
/// 32 bits wide, or (clone's flags) has the kernel read only its low half.
#[derive(Debug, Clone)]
struct ArgTest {
    arg: u8,
    test: Test,
}

/// The deny list as data: for each system call number, the conditions that must all hold for
/// the call to fail with EPERM (none: always).
fn deny_rules(mode: Mode, network_allowed: bool) -> BTreeMap<i64, Vec<ArgTest>> {
    let mut rules: BTreeMap<i64, Vec<ArgTest>> = BTreeMap::new();
    for d in denied_syscalls() {
        rules.insert(d.nr, vec![]);
    }
    let on = |arg, test| vec![ArgTest { arg, test }];
    rules.insert(
        libc::SYS_ioctl,
        on(1, Test::OneOf(vec![TIOCSTI as u32, TIOCLINUX as u32])),
    );
    let namespaces = CLONE_NS_FLAGS.iter().fold(0, |all, &f| all | f as u32);
    rules.insert(libc::SYS_clone, on(0, Test::AnyBit(namespaces)));
    rules.insert(
        libc::SYS_personality,
        on(
            0,
            Test::NoneOf(PERSONALITY_ALLOWED.iter().map(|&v| v as u32).collect()),
        ),
    );
    // A7: no setuid or setgid files. The project is the host's; a setuid copy of a shell left
    // there would give any local account (or, for a root caller, anyone) the owner's identity.
    let set_id = libc::S_ISUID | libc::S_ISGID;
    let creating = CREATING_OPEN_FLAGS.iter().fold(0, |all, &f| all | f as u32);
    for m in set_id_mode_args() {
        let mut tests = Vec::new();
        if let Some(flags) = m.open_flags {
            tests.push(ArgTest {
                arg: flags,
                test: Test::AnyBit(creating),
            });
        }
        tests.push(ArgTest {
            arg: m.mode,
            test: Test::AnyBit(set_id),
        });
        rules.insert(m.nr, tests);
    }
    if mode == Mode::Landlock {
        // Without a mount namespace, host unix sockets (ssh-agent, gpg-agent, D-Bus) are
        // reachable by path, and Landlock on this kernel may not restrict connecting to them.
        let mut families = vec![libc::AF_UNIX as u32];
        if !network_allowed {
            families.extend([
                libc::AF_INET as u32,
                libc::AF_INET6 as u32,
                libc::AF_PACKET as u32,
            ]);
        }
        rules.insert(libc::SYS_socket, on(0, Test::OneOf(families)));
    }
    rules
}

/// The audit architecture of the system calls this binary makes.
fn audit_arch() -> u32 {
    #[cfg(target_arch = "x86_64")]
    return 0xC000_003E; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    return 0xC000_00B7; // AUDIT_ARCH_AARCH64
    #[cfg(target_arch = "riscv64")]
    return 0xC000_00F3; // AUDIT_ARCH_RISCV64
}

/// Build the filters to install, in order (one program). `mode` adds the rules that stand in
/// for namespaces when there are none (no new AF_UNIX sockets, no IP sockets without a network).
///
/// The program is written here rather than by seccompiler because what it costs is its length:
/// the kernel converts and JIT-compiles every instruction at install, and then runs the filter
/// for every system call number to find the ones it always allows (its cache), so install time
/// grows with the length times the number of comparisons on the way to "allow" (measured:
/// 0.1 ms for 15 instructions, 0.7 ms for 485). seccompiler compares every argument as two
/// 32-bit halves, one rule per flag, in a list searched from the top; here a test of several
/// bits is one `jset`, and the call numbers are found by binary search. Its tests check it
/// decides every call as the rules say, against seccompiler's program of the same rules.
pub fn build_filters(mode: Mode, network_allowed: bool) -> Result<Vec<BpfProgram>, String> {
    let rules = deny_rules(mode, network_allowed);
    let mut p = Assembler::default();
    let (allow, deny, enosys, kill) = (p.label(), p.label(), p.label(), p.label());
    p.load(Field::Arch);
    p.jump(Cond::Eq(audit_arch()), Next, kill);
    p.load(Field::Nr);
    // x32 calls use the x86_64 audit arch with bit 30 set in the number: a list keyed on x86_64
    // numbers would not see them.
    #[cfg(target_arch = "x86_64")]
    p.jump(Cond::Ge(0x4000_0000), enosys, Next);
    // Calls whose arguments sit behind a pointer the filter cannot read: ENOSYS, so libc falls
    // back to the older call that the filter can check (clone, openat).
    for nr in [libc::SYS_clone3, libc::SYS_openat2] {
        p.jump(Cond::Eq(nr as u32), enosys, Next);
    }
    let entries: Vec<(u32, Label)> = rules
        .iter()
        .map(|(&nr, tests)| {
            let to = if tests.is_empty() { deny } else { p.label() };
            (nr as u32, to)
        })
        .collect();
    p.search(&entries, allow);
    for ((_, tests), &(_, block)) in rules.iter().zip(&entries) {
        if tests.is_empty() {
            continue;
        }
        p.place(block);
        for t in tests {
            let holds = p.label();
            p.load(Field::ArgLow(t.arg));
            match &t.test {
                Test::AnyBit(mask) => p.jump(Cond::AnyBit(*mask), holds, allow),
                Test::OneOf(values) => {
                    for &v in values {
                        p.jump(Cond::Eq(v), holds, Next);
                    }
                    p.goto(allow);
                }
                Test::NoneOf(values) => {
                    for &v in values {
                        p.jump(Cond::Eq(v), allow, Next);
                    }
                }
            }
            p.place(holds);
        }
        p.ret(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    }
    p.place(allow);
    p.ret(libc::SECCOMP_RET_ALLOW);
    p.place(deny);
    p.ret(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    p.place(enosys);
    p.ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
    p.place(kill);
    p.ret(libc::SECCOMP_RET_KILL_PROCESS);
    Ok(vec![p.finish()?])
}

// Classic BPF opcodes (linux/bpf_common.h): the loads, jumps and returns the program uses.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_JMP_JGE_K: u16 = 0x35;
const BPF_JMP_JSET_K: u16 = 0x45;
const BPF_RET_K: u16 = 0x06;

/// A field of `struct seccomp_data` to load into the accumulator.
#[derive(Clone, Copy)]
enum Field {
    Nr,
    Arch,
    /// The low 32 bits of argument n (the architectures keepout runs on are little-endian).
    ArgLow(u8),
}

impl Field {
    fn offset(self) -> u32 {
        match self {
            Field::Nr => 0,
            Field::Arch => 4,
            Field::ArgLow(n) => 16 + 8 * u32::from(n),
        }
    }
}

/// A comparison of the accumulator with a constant.
#[derive(Clone, Copy)]
enum Cond {
    Eq(u32),
    Ge(u32),
    AnyBit(u32),
}

/// A place in the program, known before it is placed; every jump goes forward, to a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Label(usize);

/// Where a conditional jump goes: a label, or on to the next instruction.
#[derive(Clone, Copy)]
enum Target {
    To(Label),
    Next,
}
use Target::Next;

impl From<Label> for Target {
    fn from(l: Label) -> Target {
        Target::To(l)
    }
}

enum Insn {
    Plain(sock_filter),
    Jump {
        code: u16,
        k: u32,
        yes: Target,
        no: Target,
    },
    Goto(Label),
}

/// A classic BPF program written with labels, resolved to offsets by [`Assembler::finish`],
/// which refuses a backward jump or one farther than an instruction can say.
#[derive(Default)]
struct Assembler {
    insns: Vec<Insn>,
    /// Each label's instruction index, once placed.
    places: Vec<Option<usize>>,
}

impl Assembler {
    fn label(&mut self) -> Label {
        self.places.push(None);
        Label(self.places.len() - 1)
    }

    fn place(&mut self, l: Label) {
        debug_assert!(self.places[l.0].is_none(), "label placed twice");
        self.places[l.0] = Some(self.insns.len());
    }

    fn plain(&mut self, code: u16, k: u32) {
        self.insns.push(Insn::Plain(sock_filter {
            code,
            jt: 0,
            jf: 0,
            k,
        }));
    }

    fn load(&mut self, field: Field) {
        self.plain(BPF_LD_W_ABS, field.offset());
    }

    fn ret(&mut self, action: u32) {
        self.plain(BPF_RET_K, action);
    }

    fn jump(&mut self, cond: Cond, yes: impl Into<Target>, no: impl Into<Target>) {
        let (code, k) = match cond {
            Cond::Eq(k) => (BPF_JMP_JEQ_K, k),
            Cond::Ge(k) => (BPF_JMP_JGE_K, k),
            Cond::AnyBit(k) => (BPF_JMP_JSET_K, k),
        };
        self.insns.push(Insn::Jump {
            code,
            k,
            yes: yes.into(),
            no: no.into(),
        });
    }

    fn goto(&mut self, l: Label) {
        self.insns.push(Insn::Goto(l));
    }

    /// Jump to the label of the accumulator's value among `entries` (sorted by value), or to
    /// `otherwise`: a binary search, down to runs of a few comparisons.
    fn search(&mut self, entries: &[(u32, Label)], otherwise: Label) {
        if entries.len() <= 4 {
            for &(value, to) in entries {
                self.jump(Cond::Eq(value), to, Next);
            }
            self.goto(otherwise);
            return;
        }
        let (low, high) = entries.split_at(entries.len() / 2);
        let upper = self.label();
        self.jump(Cond::Ge(high[0].0), upper, Next);
        self.search(low, otherwise);
        self.place(upper);
        self.search(high, otherwise);
    }

    fn finish(self) -> Result<BpfProgram, String> {
        let at =
            |l: Label| self.places[l.0].ok_or_else(|| format!("seccomp: label {l:?} unplaced"));
        let offset = |from: usize, to: usize| -> Result<u32, String> {
            to.checked_sub(from + 1)
                .and_then(|d| u32::try_from(d).ok())
                .ok_or_else(|| format!("seccomp: a jump backwards at instruction {from}"))
        };
        let short = |from: usize, t: Target| -> Result<u8, String> {
            match t {
                Target::Next => Ok(0),
                Target::To(l) => u8::try_from(offset(from, at(l)?)?)
                    .map_err(|_| format!("seccomp: a jump too far at instruction {from}")),
            }
        };
        let mut prog = Vec::with_capacity(self.insns.len());
        for (i, insn) in self.insns.iter().enumerate() {
            prog.push(match *insn {
                Insn::Plain(ref f) => f.clone(),
                Insn::Jump { code, k, yes, no } => sock_filter {
                    code,
                    jt: short(i, yes)?,
                    jf: short(i, no)?,
                    k,
                },
                Insn::Goto(l) => sock_filter {
                    code: BPF_JMP_JA,
                    jt: 0,
                    jf: 0,
                    k: offset(i, at(l)?)?,
                },
            });
        }
        Ok(prog)
    }
}

/// The deny filter with every "fail with EPERM" turned into "ask keepout"
/// (SECCOMP_RET_USER_NOTIF): keepout answers EPERM all the same, and records what was tried.
/// Allowed calls never leave the kernel, so they pay nothing.
pub fn notifying(prog: &BpfProgram) -> BpfProgram {
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    prog.iter()
        .map(|insn| {
            if insn.code == BPF_RET_K && insn.k == eperm {
                sock_filter {
                    k: libc::SECCOMP_RET_USER_NOTIF,
                    ..insn.clone()
                }
            } else {
                insn.clone()
            }
        })
        .collect()
}

/// A refused call in words, for the run's report: `keyctl`, `ioctl TIOCSTI`, `clone (new
/// namespace)`, `chmod (setuid/setgid)`.
pub fn describe(nr: i64, args: &[u64; 6]) -> String {
    if let Some(d) = denied_syscalls().iter().find(|d| d.nr == nr) {
        return d.name.trim_start_matches("SYS_").to_string();
    }
    match nr {
        libc::SYS_ioctl if args[1] as u32 as u64 == TIOCSTI => "ioctl TIOCSTI".into(),
        libc::SYS_ioctl if args[1] as u32 as u64 == TIOCLINUX => "ioctl TIOCLINUX".into(),
        libc::SYS_ioctl => "ioctl".into(),
        libc::SYS_clone => "clone (new namespace)".into(),
        libc::SYS_personality => "personality".into(),
        libc::SYS_socket => "socket".into(),
        other if set_id_mode_args().iter().any(|m| m.nr == other) => {
            "a setuid/setgid mode (chmod, open or mknod)".into()
        }
        other => format!("system call {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The deny list's rules written with seccompiler, as before keepout wrote its own program:
    /// the reference the program is checked against (without the architecture, x32 and ENOSYS
    /// checks in front, which [`reference_action`] adds).
    mod reference {
        use super::super::*;
        use seccompiler::{
            SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
            SeccompRule, TargetArch,
        };

        fn cond(arg: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64) -> SeccompCondition {
            SeccompCondition::new(arg, len, op, value).expect("valid seccomp condition")
        }

        fn target_arch() -> TargetArch {
            #[cfg(target_arch = "x86_64")]
            return TargetArch::x86_64;
            #[cfg(target_arch = "aarch64")]
            return TargetArch::aarch64;
            #[cfg(target_arch = "riscv64")]
            return TargetArch::riscv64;
        }

        /// Build the filters to install, in order. `mode` adds the rules that stand in for namespaces
        /// when there are none (no new AF_UNIX sockets, no IP sockets without a network).
        pub fn program(mode: Mode, network_allowed: bool) -> Result<BpfProgram, String> {
            let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
            for d in denied_syscalls() {
                rules.insert(d.nr, vec![]);
            }
            let rule =
                |conds: Vec<SeccompCondition>| SeccompRule::new(conds).expect("valid seccomp rule");
            rules.insert(
                libc::SYS_ioctl,
                [TIOCSTI, TIOCLINUX]
                    .iter()
                    .map(|&req| {
                        rule(vec![cond(
                            1,
                            SeccompCmpArgLen::Dword,
                            SeccompCmpOp::Eq,
                            req,
                        )])
                    })
                    .collect(),
            );
            rules.insert(
                libc::SYS_clone,
                CLONE_NS_FLAGS
                    .iter()
                    .map(|&f| {
                        rule(vec![cond(
                            0,
                            SeccompCmpArgLen::Qword,
                            SeccompCmpOp::MaskedEq(f),
                            f,
                        )])
                    })
                    .collect(),
            );
            rules.insert(
                libc::SYS_personality,
                vec![rule(
                    PERSONALITY_ALLOWED
                        .iter()
                        .map(|&v| cond(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, v))
                        .collect(),
                )],
            );
            // A7: no setuid or setgid files. The project is the host's; a setuid copy of a shell left
            // there would give any local account (or, for a root caller, anyone) the owner's identity.
            for m in set_id_mode_args() {
                let mut any = Vec::new();
                for bit in [libc::S_ISUID as u64, libc::S_ISGID as u64] {
                    let set_id = cond(
                        m.mode,
                        SeccompCmpArgLen::Dword,
                        SeccompCmpOp::MaskedEq(bit),
                        bit,
                    );
                    match m.open_flags {
                        None => any.push(rule(vec![set_id])),
                        Some(flags) => {
                            for &create in CREATING_OPEN_FLAGS {
                                any.push(rule(vec![
                                    cond(
                                        flags,
                                        SeccompCmpArgLen::Dword,
                                        SeccompCmpOp::MaskedEq(create),
                                        create,
                                    ),
                                    set_id.clone(),
                                ]));
                            }
                        }
                    }
                }
                rules.insert(m.nr, any);
            }
            if mode == Mode::Landlock {
                // Without a mount namespace, host unix sockets (ssh-agent, gpg-agent, D-Bus) are
                // reachable by path, and Landlock on this kernel may not restrict connecting to them.
                let mut families = vec![libc::AF_UNIX as u64];
                if !network_allowed {
                    families.extend([
                        libc::AF_INET as u64,
                        libc::AF_INET6 as u64,
                        libc::AF_PACKET as u64,
                    ]);
                }
                rules.insert(
                    libc::SYS_socket,
                    families
                        .iter()
                        .map(|&f| rule(vec![cond(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, f)]))
                        .collect(),
                );
            }
            let arch = target_arch();
            let deny = SeccompFilter::new(
                rules,
                SeccompAction::Allow,
                SeccompAction::Errno(libc::EPERM as u32),
                arch,
            )
            .map_err(|e| e.to_string())?;
            let deny: BpfProgram = deny
                .try_into()
                .map_err(|e: seccompiler::BackendError| e.to_string())?;

            Ok(deny)
        }
    }

    /// `struct seccomp_data` as the filter reads it.
    struct Data {
        nr: u32,
        arch: u32,
        args: [u64; 6],
    }

    impl Data {
        fn word(&self, offset: u32) -> u32 {
            match offset {
                0 => self.nr,
                4 => self.arch,
                16..=63 if offset.is_multiple_of(4) => {
                    let arg = self.args[(offset as usize - 16) / 8];
                    if offset.is_multiple_of(8) {
                        arg as u32
                    } else {
                        (arg >> 32) as u32
                    }
                }
                _ => panic!("load at offset {offset}"),
            }
        }
    }

    /// A classic BPF interpreter for the instructions seccompiler and [`Assembler`] emit; it
    /// panics on any other, and on a jump out of the program.
    fn run(prog: &[sock_filter], data: &Data) -> u32 {
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = &prog[pc];
            pc += 1;
            let jump = |taken: bool| usize::from(if taken { i.jt } else { i.jf });
            match i.code {
                BPF_LD_W_ABS => acc = data.word(i.k),
                0x54 => acc &= i.k, // BPF_ALU | BPF_AND | BPF_K
                BPF_JMP_JA => pc += i.k as usize,
                BPF_JMP_JEQ_K => pc += jump(acc == i.k),
                BPF_JMP_JGE_K => pc += jump(acc >= i.k),
                0x25 => pc += jump(acc > i.k), // BPF_JMP | BPF_JGT | BPF_K
                BPF_JMP_JSET_K => pc += jump(acc & i.k != 0),
                BPF_RET_K => return i.k,
                other => panic!("opcode {other:#x} at {}", pc - 1),
            }
        }
    }

    const AUDIT_ARCH_I386: u32 = 0x4000_0003;

    /// What the filter must do with `data`: seccompiler's program of the same rules, behind the
    /// checks in front of it.
    fn reference_action(reference: &[sock_filter], data: &Data) -> u32 {
        if data.arch != audit_arch() {
            return libc::SECCOMP_RET_KILL_PROCESS;
        }
        let x32 = cfg!(target_arch = "x86_64") && data.nr >= 0x4000_0000;
        if x32 || [libc::SYS_clone3, libc::SYS_openat2].contains(&i64::from(data.nr)) {
            return libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        }
        run(reference, data)
    }

    /// Argument values that the rules tell apart: each flag and mode bit they test, the values
    /// they list, their neighbours, and the same with high bits set.
    fn argument_values() -> Vec<u64> {
        let mut values: Vec<u64> = vec![0, 1, 2, 10, 17, 0o755, 0o4755, 0o2755, 0o6000];
        values.extend([TIOCSTI, TIOCLINUX, TIOCSTI + 1, 0x5411]);
        values.extend(PERSONALITY_ALLOWED.iter().flat_map(|&v| [v, v ^ 0x40_0000]));
        values.extend(CLONE_NS_FLAGS.iter().map(|&f| f | libc::SIGCHLD as u64));
        values.extend(
            CREATING_OPEN_FLAGS
                .iter()
                .map(|&f| f | libc::O_WRONLY as u64),
        );
        values.extend([libc::O_DIRECTORY as u64, libc::CLONE_VM as u64 | 0x11]);
        let high: Vec<u64> = values.iter().map(|v| v | 1 << 40).collect();
        values.extend(high);
        values.push(u64::MAX);
        values
    }

    #[test]
    fn the_program_decides_every_call_as_seccompilers_program_of_the_same_rules() {
        for (mode, network) in [
            (Mode::Namespaces, false),
            (Mode::Landlock, false),
            (Mode::Landlock, true),
        ] {
            let program = &build_filters(mode, network).unwrap()[0];
            let reference = reference::program(mode, network).unwrap();
            let ruled: Vec<u32> = deny_rules(mode, network)
                .iter()
                .filter(|(_, tests)| !tests.is_empty())
                .map(|(&nr, _)| nr as u32)
                .collect();
            let mut nrs: Vec<u32> = (0..=480).collect();
            nrs.extend([0x4000_0000, 0x4000_0000 | libc::SYS_mount as u32, u32::MAX]);
            let values = argument_values();
            let mut checked = 0;
            for arch in [audit_arch(), AUDIT_ARCH_I386] {
                for &nr in &nrs {
                    let mut cases = vec![[0u64; 6]];
                    if ruled.contains(&nr) {
                        // Every pair of values in every pair of the first four arguments.
                        for (a, b) in (0..4).flat_map(|a| (a..4).map(move |b| (a, b))) {
                            for &x in &values {
                                for &y in &values {
                                    let mut args = [0u64; 6];
                                    args[a] = x;
                                    args[b] = y;
                                    cases.push(args);
                                }
                            }
                        }
                    }
                    for args in cases {
                        let data = Data { nr, arch, args };
                        assert_eq!(
                            run(program, &data),
                            reference_action(&reference, &data),
                            "{mode:?} nr {nr} arch {arch:#x} args {args:x?}"
                        );
                        checked += 1;
                    }
                }
            }
            assert!(checked > 100_000, "{checked} cases");
        }
    }

    #[test]
    fn the_program_is_short() {
        // Install time grows with the length (see build_filters); seccompiler's program of the
        // same rules was 487 instructions.
        for mode in [Mode::Namespaces, Mode::Landlock] {
            let len = build_filters(mode, false).unwrap()[0].len();
            assert!(len < 160, "{mode:?}: {len} instructions");
        }
    }

    #[test]
    fn the_assembler_refuses_a_jump_too_far() {
        let mut p = Assembler::default();
        let end = p.label();
        p.jump(Cond::Eq(1), end, Next);
        for _ in 0..300 {
            p.load(Field::Nr);
        }
        p.place(end);
        p.ret(libc::SECCOMP_RET_ALLOW);
        assert!(p.finish().unwrap_err().contains("too far"));
    }

    #[test]
    fn filters_build_for_both_modes() {
        for mode in [Mode::Namespaces, Mode::Landlock] {
            let f = build_filters(mode, false).unwrap();
            assert_eq!(f.len(), 1, "one program to install");
            assert!(f[0].len() > denied_syscalls().len());
        }
    }

    #[test]
    fn the_threat_model_syscalls_are_denied() {
        let names: Vec<&str> = denied_syscalls().iter().map(|d| d.name).collect();
        for n in [
            "SYS_keyctl",
            "SYS_bpf",
            "SYS_io_uring_setup",
            "SYS_unshare",
            "SYS_mount",
            "SYS_userfaultfd",
        ] {
            assert!(names.contains(&n), "{n} missing");
        }
    }
}

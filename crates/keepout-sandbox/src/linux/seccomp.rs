//! The seccomp deny list: the system calls of threat-model classes A7 (privilege) and A8
//! (kernel attack surface), and the terminal-injection ioctls of A5.
//!
//! Guarantees of the installed filter: a denied call fails with EPERM (`clone3` with ENOSYS,
//! so libc falls back to `clone`, whose flags the filter can see); a call made through another
//! architecture's ABI (i386 `int 0x80`) kills the process; an x32-ABI call fails with ENOSYS.
//! Everything else is allowed: this is a deny list on top of namespaces and Landlock, not the
//! only wall.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

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
struct ModeArg {
    nr: i64,
    mode: u8,
    open_flags: Option<u8>,
}

fn set_id_mode_args() -> Vec<ModeArg> {
    let arg = |nr, mode, open_flags| ModeArg {
        nr,
        mode,
        open_flags,
    };
    #[allow(unused_mut)]
    let mut list = vec![
        arg(libc::SYS_fchmod, 1, None),
        arg(libc::SYS_fchmodat, 2, None),
        arg(libc::SYS_fchmodat2, 2, None),
        arg(libc::SYS_openat, 3, Some(2)),
        arg(libc::SYS_mknodat, 2, None),
    ];
    #[cfg(target_arch = "x86_64")]
    list.extend([
        arg(libc::SYS_chmod, 1, None),
        arg(libc::SYS_open, 2, Some(1)),
        arg(libc::SYS_creat, 1, None),
        arg(libc::SYS_mknod, 1, None),
    ]);
    list
}

/// The open flags that create a file, and so give the mode argument a meaning: O_CREAT, and
/// O_TMPFILE's own bit.
const CREATING_OPEN_FLAGS: &[u64] = &[libc::O_CREAT as u64, 0o20000000];

const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;
/// Namespace flags that `clone` may not use.
const CLONE_NS_FLAGS: &[u64] = &[
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
pub fn build_filters(mode: Mode, network_allowed: bool) -> Result<Vec<BpfProgram>, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for d in denied_syscalls() {
        rules.insert(d.nr, vec![]);
    }
    let rule = |conds: Vec<SeccompCondition>| SeccompRule::new(conds).expect("valid seccomp rule");
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
    let mut deny: BpfProgram = deny
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;

    // Calls whose arguments sit behind a pointer the filter cannot read: ENOSYS, so libc falls
    // back to the older call that the filter can check (clone, openat). In the same program
    // (one filter to install: each costs the kernel a conversion and a JIT compile).
    return_enosys_for(&mut deny, &[libc::SYS_clone3, libc::SYS_openat2]);
    #[cfg(target_arch = "x86_64")]
    reject_x32(&mut deny);
    Ok(vec![deny])
}

// Classic BPF opcodes the patches below use: BPF_LD | BPF_W | BPF_ABS, BPF_JMP | BPF_JEQ |
// BPF_K, BPF_JMP | BPF_JGE | BPF_K, BPF_RET | BPF_K.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only reject_x32
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
const BPF_RET_K: u16 = 0x06;

/// `ret ERRNO(errno)`.
fn return_errno(errno: i32) -> sock_filter {
    sock_filter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ERRNO | errno as u32,
    }
}

/// `A = seccomp_data.nr`.
fn load_nr() -> sock_filter {
    sock_filter {
        code: BPF_LD_W_ABS,
        jt: 0,
        jf: 0,
        k: 0,
    }
}

/// Put `insns` right after seccompiler's program's 3-instruction architecture check (whose
/// jumps land on the instruction after it, so on the first of these).
fn insert_after_arch_check(prog: &mut BpfProgram, insns: Vec<sock_filter>) {
    prog.splice(3..3, insns);
}

/// Insert, right after seccompiler's architecture check, "if nr is one of `nrs` return ENOSYS"
/// ([`reject_x32`] then puts its own check in front of this one).
fn return_enosys_for(prog: &mut BpfProgram, nrs: &[i64]) {
    let n = nrs.len();
    let mut insns = vec![load_nr()];
    for (i, &nr) in nrs.iter().enumerate() {
        insns.push(sock_filter {
            code: BPF_JMP_JEQ_K,
            // To the `ret ENOSYS` after the last comparison; past it from the last one.
            jt: (n - 1 - i) as u8,
            jf: u8::from(i == n - 1),
            k: nr as u32,
        });
    }
    insns.push(return_errno(libc::ENOSYS));
    insert_after_arch_check(prog, insns);
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

/// x32 system calls use the x86_64 audit arch with bit 30 set in the number; a deny list keyed
/// on x86_64 numbers would not see them. Insert, right after seccompiler's architecture check,
/// "if nr >= 0x40000000 return ENOSYS".
#[cfg(target_arch = "x86_64")]
fn reject_x32(prog: &mut BpfProgram) {
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let insns = vec![
        load_nr(),
        sock_filter {
            code: BPF_JMP_JGE_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        return_errno(libc::ENOSYS),
    ];
    insert_after_arch_check(prog, insns);
}

#[cfg(test)]
mod tests {
    use super::*;

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

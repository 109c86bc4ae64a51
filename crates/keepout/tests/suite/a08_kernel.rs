//! A8: kernel attack surface. Raw system calls through python3 ctypes `syscall()` (x86_64
//! numbers). Outside each call reaches the kernel: it succeeds or fails with an errno other than
//! EPERM/ENOSYS (the arguments are chosen to be harmless, e.g. NULL pointers give EFAULT).
//! Inside each must fail with EPERM, which is the seccomp filter's answer; clone3 answers ENOSYS
//! (so libc falls back to clone, whose flags the filter can inspect).

use super::harness::*;

const SYSCALL_PY: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
name, nr, args = sys.argv[1], int(sys.argv[2]), [int(a, 0) for a in sys.argv[3:]]
ctypes.set_errno(0)
ret = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
err = ctypes.get_errno() if ret < 0 else 0
print(f"{name} ret={ret} errno={err} ({os.strerror(err) if err else 'ok'})")
"#;

const EPERM: i64 = 1;
const ENOSYS: i64 = 38;

fn parse(out: &Output, name: &str) -> Option<(i64, i64)> {
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{name} ret=")))?;
    let mut ret = None;
    let mut errno = None;
    for w in line.split_whitespace() {
        if let Some(v) = w.strip_prefix("ret=") {
            ret = v.parse().ok();
        }
        if let Some(v) = w.strip_prefix("errno=") {
            errno = v.parse().ok();
        }
    }
    Some((ret?, errno?))
}

/// The call reaches the kernel outside; inside it fails with `inside_errno`.
fn check_syscall(name: &str, nr: u32, args: &[&str], inside_errno: i64) {
    for r in runners() {
        let fx = Fixture::new(&r);
        let py = fx.script("syscall.py", SYSCALL_PY);
        let script = format!("{PYTHON} {py} {name} {nr} {}", args.join(" "));

        let out = fx.outside(&script);
        let (ret, errno) = parse(&out, name)
            .unwrap_or_else(|| panic!("[{r}] outside: no result for {name}:{out}"));
        assert!(
            ret >= 0 || (errno != EPERM && errno != ENOSYS),
            "[{r}] outside: {name} must reach the kernel (>= 0 or an errno other than EPERM/ENOSYS):{out}"
        );

        let inn = fx.inside(&[], &script);
        let (ret, errno) =
            parse(&inn, name).unwrap_or_else(|| panic!("[{r}] inside: no result for {name}:{inn}"));
        assert!(
            ret == -1 && errno == inside_errno,
            "[{r}] inside: {name} must return -1 with errno {inside_errno}:{inn}"
        );
    }
}

/// keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0).
#[test]
fn keyctl_denied() {
    check_syscall("keyctl", 250, &["0", "-3", "0"], EPERM);
}

/// add_key(NULL, NULL, NULL, 0, KEY_SPEC_SESSION_KEYRING): EFAULT outside.
#[test]
fn add_key_denied() {
    check_syscall("add_key", 248, &["0", "0", "0", "0", "-3"], EPERM);
}

/// bpf(999, NULL, 0): an unknown command, EINVAL outside (a command every user may issue).
#[test]
fn bpf_denied() {
    check_syscall("bpf", 321, &["999", "0", "0"], EPERM);
}

/// perf_event_open(NULL, 0, -1, -1, 0): EFAULT outside.
#[test]
fn perf_event_open_denied() {
    check_syscall("perf_event_open", 298, &["0", "0", "-1", "-1", "0"], EPERM);
}

/// userfaultfd(UFFD_USER_MODE_ONLY | O_CLOEXEC): a descriptor outside (user-mode-only faults
/// are allowed to every user whatever vm.unprivileged_userfaultfd says).
#[test]
fn userfaultfd_denied() {
    check_syscall("userfaultfd", 323, &["0x80001"], EPERM);
}

/// io_uring_setup(1, NULL): EFAULT outside.
#[test]
fn io_uring_setup_denied() {
    check_syscall("io_uring_setup", 425, &["1", "0"], EPERM);
}

/// personality(ADDR_NO_RANDOMIZE): succeeds outside (turns ASLR off for the process).
#[test]
fn personality_denied() {
    check_syscall("personality", 135, &["0x0040000"], EPERM);
}

/// clone3(NULL, 0): EINVAL outside; inside ENOSYS.
#[test]
fn clone3_is_enosys() {
    check_syscall("clone3", 435, &["0", "0"], ENOSYS);
}

/// openat2(AT_FDCWD, NULL, NULL, 0): EFAULT or EINVAL outside; inside ENOSYS, so that libc
/// falls back to openat, whose flags and mode the filter can see (a setuid file by openat2's
/// `struct open_how` would otherwise pass). Both answers come from the one deny program, as
/// clone3's does.
#[test]
fn openat2_is_enosys() {
    check_syscall("openat2", 437, &["-100", "0", "0", "0"], ENOSYS);
}

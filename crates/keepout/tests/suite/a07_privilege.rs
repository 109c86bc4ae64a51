//! A7: privilege: root inside, capabilities, new user namespaces, setuid(0), mount, setuid
//! binaries. Outside, a user namespace (`unshare -U`) is the everyday way for any user to become
//! "root" with a full capability set; that is the attack shown to work outside.

use super::harness::*;

fn status_field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(str::to_string)
}

/// Inside: not uid 0, CapEff/CapPrm/CapBnd all zero, NoNewPrivs 1. Outside, a user namespace
/// hands out a full capability set (and root has one anyway).
#[test]
fn no_root_no_capabilities_no_new_privs() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let script = "id -u; cat /proc/self/status";

        let out = fx.outside("unshare -Ur sh -c 'id -u; cat /proc/self/status'");
        assert!(
            out.success()
                && out.stdout.lines().next() == Some("0")
                && status_field(&out.stdout, "CapEff:").is_some_and(|c| c != "0000000000000000"),
            "[{r}] outside: `unshare -Ur` gives uid 0 with capabilities (proves the attack):{out}"
        );

        let inn = fx.inside(&[], script);
        assert!(inn.success(), "[{r}] inside ran:{inn}");
        let uid = inn.stdout.lines().next().unwrap_or("");
        assert!(
            uid != "0" && !uid.is_empty(),
            "[{r}] inside: uid must not be 0:{inn}"
        );
        for key in ["CapEff:", "CapPrm:", "CapBnd:", "CapAmb:", "CapInh:"] {
            assert_eq!(
                status_field(&inn.stdout, key).as_deref(),
                Some("0000000000000000"),
                "[{r}] inside: {key} must be zero:{inn}"
            );
        }
        assert_eq!(
            status_field(&inn.stdout, "NoNewPrivs:").as_deref(),
            Some("1"),
            "[{r}] inside: NoNewPrivs must be 1:{inn}"
        );
    }
}

/// `unshare -U true` (and `unshare -Ur`): works outside, fails inside.
#[test]
fn new_user_namespaces_refused() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let script = "unshare -U true; echo \"U=$?\"; unshare -Urm true; echo \"Urm=$?\"; \
                      unshare -n true; echo \"n=$?\"";

        let out = fx.outside(script);
        assert!(
            out.stdout.contains("U=0") && out.stdout.contains("Urm=0"),
            "[{r}] outside: unshare -U works (proves the attack):{out}"
        );

        let inn = fx.inside(&[], script);
        for bad in ["U=0", "Urm=0", "n=0"] {
            assert!(
                !inn.stdout.contains(bad) && inn.stdout.contains(&bad[..bad.len() - 1]),
                "[{r}] inside: {bad} must not happen (no new namespaces):{inn}"
            );
        }
    }
}

const SETUID_PY: &str = r#"
import os
try:
    os.setuid(0)
    os.setgid(0)
    print("SETUID ok uid", os.getuid())
except OSError as e:
    print("SETUID errno", e.errno, e.strerror)
"#;

/// setuid(0): outside, in a user namespace, it works (and root is root); inside it fails:
/// EPERM (no CAP_SETUID) or EINVAL (uid 0 is not even mapped in the sandbox's user namespace).
#[test]
fn setuid_zero_refused() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let py = fx.script("setuid0.py", SETUID_PY);

        let out = fx.outside(&format!("unshare -Ur {PYTHON} {py}"));
        assert!(
            out.stdout.contains("SETUID ok uid 0"),
            "[{r}] outside: setuid(0) works in a user namespace (proves the attack):{out}"
        );

        let inn = fx.inside(&[], &format!("{PYTHON} {py}; unshare -Ur {PYTHON} {py}"));
        assert!(
            (inn.stdout.contains("SETUID errno 1 ") || inn.stdout.contains("SETUID errno 22 "))
                && !inn.stdout.contains("SETUID ok"),
            "[{r}] inside: setuid(0) must fail with EPERM or EINVAL:{inn}"
        );
    }
}

const MOUNT_PY: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
target = sys.argv[1].encode()
if libc.mount(b"none", target, b"tmpfs", 0, None) == 0:
    print("MOUNT ok")
    libc.umount2(target, 2)
else:
    e = ctypes.get_errno()
    print(f"MOUNT errno {e} {os.strerror(e)}")
"#;

/// mount(2) through ctypes: works outside in a user+mount namespace (and as root); inside it
/// fails with EPERM.
#[test]
fn mount_refused() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let py = fx.script("mount.py", MOUNT_PY);
        let target = fx.mkdir("project/mnt");
        let target = target.display().to_string();

        let out = fx.outside(&format!("unshare -Urm {PYTHON} {py} {}", q(&target)));
        assert!(
            out.stdout.contains("MOUNT ok"),
            "[{r}] outside: mount works in a user+mount namespace (proves the attack):{out}"
        );

        let inn = fx.inside(&[], &format!("{PYTHON} {py} {}", q(&target)));
        assert!(
            inn.stdout.contains("MOUNT errno 1 "),
            "[{r}] inside: mount must fail with EPERM:{inn}"
        );
    }
}

const SETUID_BINARY_PY: &str = r#"
# Start the setuid-root /usr/bin/passwd, wait until it talks (its credentials are final then),
# and read its effective uid from /proc; then let it go (EOF on stdin).
import subprocess
p = subprocess.Popen(["/usr/bin/passwd"], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
first = p.stdout.read(1)
euid = "unknown"
try:
    with open(f"/proc/{p.pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                euid = line.split()[2]
except OSError as e:
    euid = f"unreadable-{e.errno}"
p.stdin.close()
rest = p.stdout.read()
p.wait()
print(f"PASSWD euid={euid} rc={p.returncode} said={(first + rest)[:200]!r}")
"#;

/// A setuid-root binary (/usr/bin/passwd): outside it runs with euid 0 (also for the
/// unprivileged runner); inside it does not gain euid 0. `su` cannot become root inside either.
#[test]
fn setuid_binaries_do_not_grant_root() {
    assert!(
        std::path::Path::new("/usr/bin/passwd").exists(),
        "/usr/bin/passwd not found: install passwd (a setuid-root binary for this test)"
    );
    for r in runners() {
        let fx = Fixture::new(&r);
        let py = fx.script("setuid_binary.py", SETUID_BINARY_PY);
        let script = format!("{PYTHON} {py}");

        let out = fx.outside(&script);
        assert!(
            out.stdout.contains("PASSWD euid=0 "),
            "[{r}] outside: the setuid binary runs with euid 0 (proves the attack):{out}"
        );

        let inn = fx.inside(&[], &script);
        assert!(
            inn.stdout.contains("PASSWD euid=") && !inn.stdout.contains("PASSWD euid=0 "),
            "[{r}] inside: the setuid binary must not run with euid 0:{inn}"
        );

        if have("su") {
            let inn = fx.inside(&[], "su -c 'id -u' root </dev/null; echo \"su=$?\"; id -u");
            assert!(
                inn.stdout.contains("su=")
                    && !inn.stdout.contains("su=0")
                    && !inn.stdout.lines().any(|l| l.trim() == "0"),
                "[{r}] inside: su must not give root:{inn}"
            );
        }
    }
}

const CLONE_NEWUSER_PY: &str = r#"
# The raw clone(2) system call with CLONE_NEWUSER (what `unshare` does through unshare(2)).
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
CLONE_NEWUSER, SIGCHLD = 0x10000000, 17
pid = libc.syscall(ctypes.c_long(56), ctypes.c_ulong(CLONE_NEWUSER | SIGCHLD),
                   ctypes.c_void_p(0), ctypes.c_void_p(0), ctypes.c_void_p(0), ctypes.c_ulong(0))
if pid == 0:
    os._exit(0)
if pid > 0:
    os.waitpid(pid, 0)
    print("CLONE ok")
else:
    e = ctypes.get_errno()
    print(f"CLONE errno {e} {os.strerror(e)}")
"#;

/// clone(CLONE_NEWUSER): works outside; inside the seccomp rule on clone's flags refuses it.
#[test]
fn clone_into_new_user_namespace_refused() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let py = fx.script("clone_newuser.py", CLONE_NEWUSER_PY);
        let script = format!("{PYTHON} {py}");

        let out = fx.outside(&script);
        assert!(
            out.stdout.contains("CLONE ok"),
            "[{r}] outside: clone(CLONE_NEWUSER) works (proves the attack):{out}"
        );

        let inn = fx.inside(&[], &script);
        assert!(
            inn.stdout.contains("CLONE errno 1 "),
            "[{r}] inside: clone(CLONE_NEWUSER) must fail with EPERM:{inn}"
        );
    }
}

/// A setuid copy of a shell left in the project would give any local account the maintainer's
/// identity (for a root caller, root). Outside, the owner may set the bit; inside, every call
/// that sets S_ISUID or S_ISGID is refused, and nothing setuid is left on the host.
#[test]
fn no_setuid_or_setgid_files_left_in_the_project() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let out = fx.outside(
            "cp /bin/true ./suid-outside && chmod 4755 ./suid-outside && stat -c %a ./suid-outside",
        );
        assert!(
            out.success() && out.stdout.trim() == "4755",
            "[{r}] outside: the owner can make a setuid file (proves the attack):{out}"
        );
        let script =
            "cp /bin/true ./suid-inside; chmod 4755 ./suid-inside; chmod 2755 ./suid-inside; \
            python3 -c 'import os; os.open(\"suid-open\", os.O_CREAT|os.O_WRONLY, 0o4755)'; \
            python3 -c 'import os; os.mknod(\"suid-mknod\", 0o104755)'; true";
        let inn = fx.inside(&[], script);
        assert!(
            inn.has("Operation not permitted"),
            "[{r}] inside: setting the bits is refused:{inn}"
        );
        for name in ["suid-inside", "suid-open", "suid-mknod"] {
            if let Ok(meta) = std::fs::metadata(fx.project.join(name)) {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(
                    meta.permissions().mode() & 0o6000,
                    0,
                    "[{r}] {name} on the host must not be setuid or setgid"
                );
            }
        }
    }
}

/// The mode argument of open/openat means something only when the flags create a file; an
/// ordinary open must never be refused for whatever that unused register happens to hold
/// (here: 0o6755, set deliberately through a raw openat). Creating with those bits still is.
#[test]
fn an_open_that_creates_nothing_is_never_refused_for_its_mode_register() {
    const OPENAT_PY: &str = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
AT_FDCWD = -100
for name, flags in (("read", os.O_RDONLY), ("create", os.O_CREAT | os.O_WRONLY)):
    ctypes.set_errno(0)
    fd = libc.syscall(ctypes.c_long(257), ctypes.c_long(AT_FDCWD), ctypes.c_char_p(b"README.md" if name == "read" else b"made-here"),
                      ctypes.c_long(flags), ctypes.c_long(0o6755))
    print(name, "ok" if fd >= 0 else f"errno {ctypes.get_errno()}")
"#;
    for r in runners() {
        let fx = Fixture::new(&r);
        let py = fx.script("openat_mode.py", OPENAT_PY);
        let out = fx.outside(&format!("{PYTHON} {py}"));
        assert!(out.stdout.contains("read ok"), "[{r}] outside:{out}");
        let inn = fx.inside(&[], &format!("{PYTHON} {py}"));
        assert!(
            inn.stdout.contains("read ok"),
            "[{r}] inside: an open without O_CREAT is not refused:{inn}"
        );
        assert!(
            inn.stdout.contains("create errno 1"),
            "[{r}] inside: creating with setuid/setgid bits still is:{inn}"
        );
    }
}

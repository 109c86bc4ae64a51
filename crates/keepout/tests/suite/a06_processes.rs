//! A6: the maintainer's other processes: listing them, signalling them, reading their
//! environment, ptrace-ing them.

use super::harness::*;

const PTRACE_PY: &str = r#"
import ctypes, os, sys
pid = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_ATTACH, PTRACE_DETACH = 16, 17
if libc.ptrace(PTRACE_ATTACH, pid, None, None) != 0:
    e = ctypes.get_errno()
    print(f"ATTACH errno {e} {os.strerror(e)}")
else:
    os.waitpid(pid, 0x40000000)  # __WALL: wait for the attach stop
    libc.ptrace(PTRACE_DETACH, pid, None, None)
    print("ATTACH ok")
"#;

/// Numeric entries of an `ls /proc` listing.
fn pids_listed(text: &str) -> Vec<u32> {
    text.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// A decoy `sleep 300` of the victim (with the victim's tokens in its environment): outside it
/// can be signalled, listed and its environ read; inside it does not exist.
#[test]
fn host_processes_invisible_and_unreachable() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let decoy = fx.background(&["/bin/sleep", "300"]);
        let token = fx.secret("GITHUB_TOKEN");
        let script = format!(
            "kill -0 {decoy}; echo \"kill=$?\"
ls -d /proc/{decoy}; echo \"procdir=$?\"
tr '\\0' '\\n' < /proc/{decoy}/environ; echo \"environ=$?\"
echo LISTING; ls /proc; echo END"
        );
        // Wait until the decoy is the sleep itself (the runner switch execs in place).
        assert!(
            poll(std::time::Duration::from_secs(20), || {
                std::fs::read_to_string(format!("/proc/{decoy}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep")
            }),
            "[{r}] the decoy sleep did not start"
        );

        let out = fx.outside(&script);
        assert!(
            out.stdout.contains("kill=0")
                && out.stdout.contains("procdir=0")
                && out.stdout.contains("environ=0")
                && out.stdout.contains(&token)
                && pids_listed(&out.stdout).contains(&decoy),
            "[{r}] outside: the decoy is visible, signallable and its environ readable (proves the attack):{out}"
        );

        let inn = fx.inside(&[], &script);
        assert!(
            inn.stdout.contains("END"),
            "[{r}] inside: the script ran:{inn}"
        );
        for bad in ["kill=0", "procdir=0", "environ=0"] {
            assert!(
                !inn.stdout.contains(bad),
                "[{r}] inside: {bad} must not happen:{inn}"
            );
        }
        assert!(
            !inn.has(&token),
            "[{r}] inside: the decoy's token leaked:{inn}"
        );
        assert!(
            inn.stderr.contains("No such process"),
            "[{r}] inside: kill says no such process:{inn}"
        );
        let listing = inn.stdout.split("LISTING").nth(1).unwrap_or("");
        let pids = pids_listed(listing);
        assert!(
            !pids.contains(&decoy)
                && !pids.is_empty()
                && pids.len() <= 5
                && pids.iter().all(|p| *p < 50),
            "[{r}] inside: /proc lists only the sandbox's few processes, got {pids:?}:{inn}"
        );
        assert!(
            pids.contains(&1),
            "[{r}] inside: the sandbox's init is pid 1:{inn}"
        );

        if have("ps") {
            let ps = fx.inside(&[], "ps -e -o pid=,comm=");
            let lines: Vec<&str> = ps.stdout.lines().collect();
            assert!(
                ps.success() && lines.len() <= 4 && !ps.stdout.contains("sleep"),
                "[{r}] inside: ps shows only the sandbox's processes:{ps}"
            );
        }

        assert!(
            signal(decoy, "0"),
            "[{r}] the decoy is still alive after the inside attempts"
        );
    }
}

/// ptrace(PTRACE_ATTACH) on the decoy: works outside (same user, or root); inside the pid
/// does not exist.
#[test]
fn host_processes_cannot_be_ptraced() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let decoy = fx.background(&["/bin/sleep", "300"]);
        assert!(
            poll(std::time::Duration::from_secs(20), || {
                std::fs::read_to_string(format!("/proc/{decoy}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep")
            }),
            "[{r}] the decoy sleep did not start"
        );
        let py = fx.script("ptrace.py", PTRACE_PY);
        let script = format!("{PYTHON} {py} {decoy}");

        let yama = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "0".into());
        let out = fx.outside(&script);
        if yama != "0" && !r.is_root() {
            note(&format!(
                "[{r}] kernel.yama.ptrace_scope={yama}: attaching to a non-child is refused \
                 outside too; only the inside half of host_processes_cannot_be_ptraced applies"
            ));
        } else {
            assert!(
                out.stdout.contains("ATTACH ok"),
                "[{r}] outside: ptrace attach to the decoy works (proves the attack):{out}"
            );
        }

        let inn = fx.inside(&[], &script);
        assert!(
            inn.stdout.contains("ATTACH errno 3 ") || inn.stdout.contains("ATTACH errno 1 "),
            "[{r}] inside: ptrace attach must fail (ESRCH: no such process, or EPERM):{inn}"
        );
        assert!(signal(decoy, "0"), "[{r}] the decoy is still alive");
    }
}

//! A5: terminal injection: TIOCSTI pushes keystrokes into the input of the terminal the
//! maintainer's shell reads; TIOCLINUX does the same on a virtual console. The commands run
//! under a real pseudo-terminal made by `script` (util-linux), so stdin is a tty.

use super::harness::*;

const TIOCTL_PY: &str = r#"
import fcntl, os, sys, termios
which = sys.argv[1]
print("isatty", os.isatty(0))
req = {"TIOCSTI": termios.TIOCSTI, "TIOCLINUX": 0x541C}[which]
arg = b"x" if which == "TIOCSTI" else bytes([11])
def attempt(label, fd):
    try:
        fcntl.ioctl(fd, req, arg)
        print(f"{label}: ok")
    except OSError as e:
        print(f"{label}: errno {e.errno} {e.strerror}")
attempt(which + " stdin", 0)
try:
    fd = os.open("/dev/tty", os.O_RDWR)
except OSError as e:
    print(f"{which} /dev/tty: open errno {e.errno} {e.strerror}")
else:
    attempt(which + " /dev/tty", fd)
"#;

fn under_pty(fx: &Fixture, cmd: &str) -> Output {
    assert!(have("script"), "`script` not found: install bsdutils");
    fx.outside(&format!("script -qec {} /dev/null", q(cmd)))
}

fn legacy_tiocsti() -> Option<String> {
    std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti")
        .ok()
        .map(|s| s.trim().to_string())
}

/// TIOCSTI on the controlling terminal (stdin and a fresh /dev/tty): works outside, fails
/// inside, in both modes (EPERM from seccomp / no controlling terminal in the new session, or
/// EIO).
#[test]
fn tiocsti_blocked() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let py = fx.script("tioctl.py", TIOCTL_PY);
        let cmd = format!("{PYTHON} {py} TIOCSTI");

        let out = under_pty(&fx, &cmd);
        assert!(
            out.stdout.contains("isatty True"),
            "[{r}] outside: stdin is a tty:{out}"
        );
        if legacy_tiocsti().as_deref() == Some("0") && !r.is_root() {
            // With dev.tty.legacy_tiocsti=0 the kernel refuses TIOCSTI (EIO) to anyone without
            // CAP_SYS_ADMIN: the attack cannot be shown outside for this runner.
            note(&format!(
                "[{r}] dev.tty.legacy_tiocsti=0: TIOCSTI cannot work outside"
            ));
        } else {
            assert!(
                out.stdout.contains("TIOCSTI stdin: ok")
                    && out.stdout.contains("TIOCSTI /dev/tty: ok"),
                "[{r}] outside: TIOCSTI injects into the terminal (proves the attack):{out}"
            );
        }

        for mode in ["namespaces", "landlock"] {
            let inn = under_pty(
                &fx,
                &format!("{} run --mode {mode} -- {cmd}", keepout_bin()),
            );
            assert!(
                inn.stdout.contains("isatty True"),
                "[{r}] inside ({mode}): stdin is still a tty:{inn}"
            );
            let line = inn
                .stdout
                .lines()
                .find(|l| l.starts_with("TIOCSTI stdin:"))
                .unwrap_or_else(|| panic!("[{r}] inside ({mode}): no TIOCSTI result:{inn}"));
            assert!(
                line.contains("errno 1 ") || line.contains("errno 5 "),
                "[{r}] inside ({mode}): TIOCSTI on stdin must fail with EPERM or EIO:{inn}"
            );
            assert!(
                !inn.stdout.contains(": ok"),
                "[{r}] inside ({mode}): no TIOCSTI may succeed (stdin or /dev/tty):{inn}"
            );
        }
    }
}

/// TIOCLINUX. Outside, on a pseudo-terminal, it fails with ENOTTY (25): it only acts on
/// virtual consoles, so the attack cannot be shown to *work* outside here. What the test does
/// show: outside the kernel answers ENOTTY; inside, the same call answers EPERM, which only the
/// sandbox's seccomp rule for ioctl(TIOCLINUX) produces. On a real console (where TIOCLINUX
/// would inject), that rule is what stops it.
#[test]
fn tioclinux_blocked_by_seccomp() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let py = fx.script("tioctl.py", TIOCTL_PY);
        let cmd = format!("{PYTHON} {py} TIOCLINUX");

        let out = under_pty(&fx, &cmd);
        assert!(
            out.stdout.contains("TIOCLINUX stdin: errno 25 "),
            "[{r}] outside: TIOCLINUX on a pty reaches the kernel and fails with ENOTTY:{out}"
        );

        let inn = under_pty(&fx, &format!("{} run -- {cmd}", keepout_bin()));
        assert!(
            inn.stdout.contains("isatty True") && inn.stdout.contains("TIOCLINUX stdin: errno 1 "),
            "[{r}] inside: TIOCLINUX must fail with EPERM (the seccomp rule):{inn}"
        );
    }
}

/// Without TIOCSTI the maintainer's terminal is still a target: a command holding it can turn
/// off echo (and read what is typed at the prompt after keepout went to the background, where
/// job control does not stop a process of another session). Outside, a background job's
/// `stty -echo` on the terminal changes it; inside, the command only has a terminal of its own.
#[test]
fn the_maintainers_terminal_modes_cannot_be_changed() {
    for r in runners() {
        let fx = Fixture::new(&r);
        // Both run in the background of a shell on a real pty, then the shell looks at its own
        // terminal's modes.
        let attack = "stty -echo <&1 2>/dev/null; stty -echo <&2 2>/dev/null; true";
        let look = "sleep 1; stty -a </dev/tty | tr ' ' '\\n' | grep -x -- '-\\?echo'";

        let out = under_pty(&fx, &format!("sh -c {} & {look}", q(attack)));
        assert!(
            out.stdout.lines().any(|l| l.trim() == "-echo"),
            "[{r}] outside: a background job turns echo off (proves the attack):{out}"
        );

        let inside = format!("{} run -- sh -c {} & {look}", keepout_bin(), q(attack));
        let inn = under_pty(&fx, &inside);
        assert!(
            inn.stdout.lines().any(|l| l.trim() == "echo"),
            "[{r}] inside: the maintainer's terminal keeps echo on:{inn}"
        );
    }
}

//! A real pseudo-terminal for tests that need one (Python's `pty` module): run a command on it
//! as the runner, wait for each expected text, then type the answer; the whole transcript and
//! the exit status come back.

use super::harness::*;

/// argv[1]: the steps as JSON `[[expect, send], ...]` (`send` null: type Ctrl-D, end of
/// input); argv[2..]: the command. Prints the transcript; exits with the command's status, or
/// 99 when an expected text did not come within 40 s.
const DRIVER_PY: &str = r#"
import json, os, pty, select, sys, time
steps = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
seen, pending = b"", b""
def more(deadline):
    global pending
    r, _, _ = select.select([fd], [], [], max(0, min(0.2, deadline - time.time())))
    if not r:
        return True
    try:
        data = os.read(fd, 65536)
    except OSError:
        return False
    if not data:
        return False
    pending += data
    return True
for expect, send in steps:
    want = expect.encode()
    deadline = time.time() + 40
    while want not in pending:
        if time.time() > deadline or not more(deadline):
            sys.stdout.write((seen + pending).decode(errors="replace"))
            sys.stdout.write("\nPTY-DRIVER: never saw %r\n" % expect)
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            sys.exit(99)
    cut = pending.index(want) + len(want)
    seen, pending = seen + pending[:cut], pending[cut:]
    os.write(fd, b"\x04" if send is None else send.encode())
deadline = time.time() + 40
while time.time() < deadline and more(deadline):
    pass
sys.stdout.write((seen + pending).decode(errors="replace"))
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"#;

/// Run `argv` (as the runner, in the project, with the fixture's environment) on a new
/// pseudo-terminal, answering each `(expect, send)` step in turn (`None`: end of input).
pub fn on_pty(fx: &Fixture, steps: &[(&str, Option<&str>)], argv: &[&str]) -> Output {
    let driver = fx.root.join("pty-driver.py");
    if !driver.exists() {
        write_file(&driver, DRIVER_PY, 0o755);
    }
    let steps = serde_json::to_string(steps).unwrap();
    let mut full = vec![PYTHON, driver.to_str().unwrap(), steps.as_str()];
    full.extend_from_slice(argv);
    let what = format!("[{}] on a pty: {}", fx.runner, argv.join(" "));
    run(fx.command(&full), what)
}

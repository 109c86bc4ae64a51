//! The command line as a shell user meets it: a listing piped into `head` ends quietly.

use super::harness::*;

/// Run `keepout ARGS` with its standard output a pipe whose reader is already gone (what
/// `| head -1` becomes once head has its line), as the fixture's runner. Returns (the exit
/// status as Python's subprocess gives it: negative for a signal, stderr).
fn with_closed_stdout(fx: &Fixture, args: &[&str]) -> (i32, String) {
    let script = format!(
        "{PYTHON} -c 'import os, subprocess, sys
r, w = os.pipe()
os.close(r)
p = subprocess.run(sys.argv[1:], stdout=w, stderr=subprocess.PIPE)
print(p.returncode)
sys.stdout.write(p.stderr.decode(errors=\"replace\"))' {} {}",
        keepout_bin(),
        args.join(" ")
    );
    let out = fx.outside(&script);
    assert!(out.success(), "the pipe helper ran:{out}");
    let (code, stderr) = out.stdout.split_once('\n').unwrap_or((&out.stdout, ""));
    (code.trim().parse().expect("a status"), stderr.to_string())
}

/// `keepout workspace list | head -1`, `keepout completions bash | head -1`, `keepout doctor |
/// head`, `keepout audit | head`: each stops at the closed pipe without a panic (SIGPIPE, as
/// `ls | head` does, or a clean exit), also with output larger than a pipe holds.
#[test]
fn listings_end_quietly_on_a_closed_pipe() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let home = fx.home.display().to_string();
        for args in [
            &["completions", "bash"][..],
            &["workspace", "list"],
            &["doctor"],
            &["audit", "--home", &home],
        ] {
            let (code, stderr) = with_closed_stdout(&fx, args);
            assert!(
                !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
                "[{r}] keepout {} into a closed pipe: status {code}, stderr:\n{stderr}",
                args.join(" ")
            );
            assert!(
                code == 0 || code == -13 || (args[0] == "audit" && code == 1),
                "[{r}] keepout {} into a closed pipe ends by SIGPIPE or cleanly, not {code}:\n{stderr}",
                args.join(" ")
            );
        }
    }
}

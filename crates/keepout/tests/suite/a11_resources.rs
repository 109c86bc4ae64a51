//! A11: resource exhaustion: a fork bomb, filling /tmp, and the run outliving the command or
//! keepout itself (`--die-with-parent` semantics).

use std::time::Duration;

use super::harness::*;

const FORK_PY: &str = r#"
import os, sys
n = int(sys.argv[1])
r, w = os.pipe()
pids, err = [], None
for _ in range(n):
    try:
        pid = os.fork()
    except OSError as e:
        err = e
        break
    if pid == 0:
        os.close(w)
        os.read(r, 1)  # park until the parent closes the pipe
        os._exit(0)
    pids.append(pid)
os.close(w)
for p in pids:
    os.waitpid(p, 0)
print(f"FORKED {len(pids)} ERROR {type(err).__name__ if err else None} {err.errno if err else 0}")
"#;

fn forked(out: &Output) -> Option<(usize, String)> {
    let line = out.stdout.lines().find(|l| l.starts_with("FORKED "))?;
    let w: Vec<&str> = line.split_whitespace().collect();
    Some((w.get(1)?.parse().ok()?, w[2..].join(" ")))
}

/// A fork bomb: outside, 100 forks all succeed; inside with --max-procs 64, 500 forks stop
/// early with EAGAIN (BlockingIOError).
#[test]
fn fork_bomb_is_bounded() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let py = fx.script("forks.py", FORK_PY);

        let out = fx.outside(&format!("{PYTHON} {py} 100"));
        assert!(
            forked(&out).is_some_and(|(n, _)| n == 100),
            "[{r}] outside: 100 forks succeed (proves forking works):{out}"
        );

        let inn = fx.inside(&["--max-procs", "64"], &format!("{PYTHON} {py} 500"));
        let (n, err) = forked(&inn).unwrap_or_else(|| panic!("[{r}] inside: no result:{inn}"));
        assert!(
            n <= 64 && err == "ERROR BlockingIOError 11",
            "[{r}] inside --max-procs 64: forking must stop with EAGAIN well before 500 (got {n}, {err}):{inn}"
        );
    }
}

/// Filling /tmp: inside with --tmp-size 16, writing 64 MiB fails with ENOSPC. Outside, writing
/// 20 MiB into the fixture works (kept small to be kind to the host).
#[test]
fn tmp_is_bounded() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let big = fx.root.join("big");
        let out = fx.outside(&format!(
            "dd if=/dev/zero of={} bs=1M count=20 2>&1; echo \"rc=$?\"",
            q(big.display().to_string())
        ));
        assert!(
            out.stdout.contains("rc=0")
                && std::fs::metadata(&big).map(|m| m.len()).ok() == Some(20 << 20),
            "[{r}] outside: writing 20 MiB works:{out}"
        );
        std::fs::remove_file(&big).unwrap();

        let inn = fx.inside(
            &["--tmp-size", "16"],
            "dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1; echo \"rc=$?\"; \
             echo \"size=$(wc -c < /tmp/fill)\"",
        );
        assert!(
            inn.stdout.contains("No space left on device") && !inn.stdout.contains("rc=0"),
            "[{r}] inside --tmp-size 16: writing 64 MiB to /tmp must fail with ENOSPC:{inn}"
        );
        let size: u64 = inn
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("size="))
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(u64::MAX);
        assert!(
            size <= 16 << 20,
            "[{r}] inside: /tmp holds at most 16 MiB (got {size}):{inn}"
        );
    }
}

/// A background process that waits until its marked child really runs, then exits.
fn leave_behind(py_marker: &str) -> String {
    format!(
        "{PYTHON} -c 'import time; time.sleep(300)' {m} </dev/null >/dev/null 2>&1 &
pid=$!
i=0
while ! tr '\\0' '\\n' < /proc/$pid/cmdline 2>/dev/null | grep -qx {m}; do
  i=$((i+1)); [ $i -gt 1000 ] && break; sleep 0.01
done
echo \"started $pid\"",
        m = q(py_marker)
    )
}

/// The command starts a background process and exits: outside the process lives on; after
/// `keepout run` returns, no process of the run is left on the host.
#[test]
fn background_processes_do_not_outlive_the_run() {
    for r in runners() {
        let fx = Fixture::new(&r);

        let m_out = fx.marker("outside-bg");
        let out = fx.outside(&leave_behind(&m_out));
        assert!(
            out.stdout.contains("started"),
            "[{r}] outside: the script ran:{out}"
        );
        let left = pids_with_arg(&m_out);
        assert!(
            !left.is_empty(),
            "[{r}] outside: the background process outlives its shell (proves the attack):{out}"
        );
        for pid in left {
            signal(pid, "KILL");
        }

        let m_in = fx.marker("inside-bg");
        let inn = fx.inside(&[], &leave_behind(&m_in));
        assert!(
            inn.success() && inn.stdout.contains("started"),
            "[{r}] inside: the script ran:{inn}"
        );
        let left = pids_with_arg(&m_in);
        assert!(
            left.is_empty(),
            "[{r}] inside: after keepout returns, no process of the run may be alive (found {left:?}):{inn}"
        );
    }
}

/// keepout itself is killed with SIGKILL while the sandbox runs a marked process: outside,
/// killing the parent shell leaves its child running; the sandbox must die with keepout (poll
/// up to 5 s).
#[test]
fn sandbox_dies_with_keepout() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let job = |m: &str| {
            format!(
                "{PYTHON} -c 'import time; time.sleep(300)' {} </dev/null >/dev/null 2>&1 & wait",
                q(m)
            )
        };

        let m_out = fx.marker("outside-parent");
        let parent = fx.spawn_outside(&job(&m_out));
        assert!(
            poll(Duration::from_secs(20), || !pids_with_arg(&m_out)
                .is_empty()),
            "[{r}] outside: the marked process did not start"
        );
        assert!(
            signal(parent.pid(), "KILL"),
            "[{r}] outside: kill -9 the parent shell"
        );
        let parent_out = parent.wait();
        assert_eq!(
            parent_out.signal,
            Some(9),
            "[{r}] outside: the parent died of SIGKILL:{parent_out}"
        );
        let left = pids_with_arg(&m_out);
        assert!(
            !left.is_empty(),
            "[{r}] outside: the child outlives its killed parent (proves the attack)"
        );
        for pid in left {
            signal(pid, "KILL");
        }

        let m_in = fx.marker("inside-keepout");
        let keepout = fx.spawn_inside(&[], &job(&m_in));
        assert!(
            poll(Duration::from_secs(20), || !pids_with_arg(&m_in).is_empty()),
            "[{r}] inside: the marked process did not start"
        );
        assert!(
            signal(keepout.pid(), "KILL"),
            "[{r}] inside: kill -9 keepout"
        );
        let keepout_out = keepout.wait();
        assert_eq!(
            keepout_out.signal,
            Some(9),
            "[{r}] keepout died of SIGKILL:{keepout_out}"
        );
        let gone = poll(Duration::from_secs(5), || pids_with_arg(&m_in).is_empty());
        let left = pids_with_arg(&m_in);
        assert!(
            gone,
            "[{r}] inside: the sandbox must die with keepout, but pids {left:?} still run 5 s after \
             keepout was killed:{keepout_out}"
        );
    }
}

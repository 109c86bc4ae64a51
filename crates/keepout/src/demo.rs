//! `keepout demo`: a malicious test suite (examples/evil-test-suite/evil.py, built into the
//! binary) against a planted fake home, first without keepout and then inside `keepout run`,
//! side by side.
//!
//! Everything it touches lives in one temporary directory: fake credentials, a throwaway git
//! project, a decoy `sleep` process, a decoy TCP service on 127.0.0.1, a decoy ssh-agent and a
//! decoy abstract unix socket. Nothing of the real home is read or written.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::cli::DemoArgs;

const EVIL_PY: &str = include_str!("../../../examples/evil-test-suite/evil.py");

#[derive(Deserialize, Debug)]
struct Attempt {
    id: String,
    attack: String,
    outcome: String,
    #[serde(default)]
    detail: String,
}

/// The decoys of one run; dropping it stops them.
struct Decoys {
    sleep: Child,
    agent: Option<Child>,
    port: u16,
    agent_sock: PathBuf,
    abstract_name: String,
}

impl Drop for Decoys {
    fn drop(&mut self) {
        let _ = self.sleep.kill();
        let _ = self.sleep.wait();
        if let Some(a) = &mut self.agent {
            let _ = a.kill();
            let _ = a.wait();
        }
    }
}

/// Fake credentials, written where the real ones would be.
const PLANTED: &[(&str, &str)] = &[
    (".ssh/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nFAKE-DEMO-KEY-b3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"),
    (".ssh/id_rsa", "-----BEGIN RSA PRIVATE KEY-----\nFAKE-DEMO-KEY\n-----END RSA PRIVATE KEY-----\n"),
    (".netrc", "machine github.com login alice password ghp_FAKEdemo0000000000000000000000000000\n"),
    (".git-credentials", "https://alice:ghp_FAKEdemo0000000000000000000000000000@github.com\n"),
    (".pypirc", "[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmcFAKEDEMO\n"),
    (".config/gh/hosts.yml", "github.com:\n    oauth_token: gho_FAKEdemo000000000000000000000000000\n    user: alice\n"),
    (".cargo/credentials.toml", "[registry]\ntoken = \"cioFAKEdemo0000000000000000000000\"\n"),
    (".npmrc", "//registry.npmjs.org/:_authToken=npm_FAKEdemo000000000000000000000000000\n"),
    (".aws/credentials", "[default]\naws_access_key_id = AKIAFAKEDEMO00000000\naws_secret_access_key = FAKEdemo/secret\n"),
    (".docker/config.json", "{\"auths\": {\"https://index.docker.io/v1/\": {\"auth\": \"YWxpY2U6RkFLRQ==\"}}}\n"),
    (".bashrc", "# alice's bashrc\n"),
    (".profile", "# alice's profile\n"),
];

fn plant(root: &Path) -> Result<(PathBuf, PathBuf)> {
    let home = root.join("home/alice");
    let project = root.join("src/their-repro");
    for (rel, content) in PLANTED {
        let p = home.join(rel);
        std::fs::create_dir_all(p.parent().expect("has parent"))?;
        std::fs::write(&p, content)?;
    }
    std::fs::set_permissions(
        home.join(".ssh/id_ed25519"),
        std::fs::Permissions::from_mode(0o600),
    )?;
    std::fs::create_dir_all(&project)?;
    std::fs::write(project.join("evil.py"), EVIL_PY)?;
    let git = Command::new("git")
        .args(["init", "-q", "."])
        .current_dir(&project)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !git.map(|s| s.success()).unwrap_or(false) {
        std::fs::create_dir_all(project.join(".git/hooks"))?;
        std::fs::write(
            project.join(".git/config"),
            "[core]\n\trepositoryformatversion = 0\n",
        )?;
    }
    Ok((home, project))
}

fn start_decoys(home: &Path, label: &str) -> Result<Decoys> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let _ = s.write_all(b"220 maintainer-internal-service ready\r\n");
        }
    });
    let agent_sock = home.join(".ssh/agent.sock");
    let agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&agent_sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok();
    if agent.is_some() {
        for _ in 0..100 {
            if agent_sock.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    } else {
        // No OpenSSH here: a stand-in that answers "no identities" like a real agent would.
        let l = UnixListener::bind(&agent_sock)?;
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                let mut buf = [0u8; 5];
                if s.read_exact(&mut buf).is_ok() {
                    let _ = s.write_all(&[0, 0, 0, 5, 12, 0, 0, 0, 0]);
                }
            }
        });
    }
    let abstract_name = format!("keepout-demo-{}-{label}", std::process::id());
    let addr =
        <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
            abstract_name.as_bytes(),
        )?;
    let abs = UnixListener::bind_addr(&addr)?;
    std::thread::spawn(move || {
        for mut s in abs.incoming().flatten() {
            let _ = s.write_all(b"session bus of the maintainer\n");
        }
    });
    // Last, so that an error above leaves no process behind.
    let sleep = Command::new("sleep")
        .arg("300")
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start the decoy `sleep`")?;
    Ok(Decoys {
        sleep,
        agent,
        port,
        agent_sock,
        abstract_name,
    })
}

/// Run the evil suite once, directly or through `keepout run`, and parse its JSON report.
fn run_suite(root: &Path, sandboxed: bool) -> Result<Vec<Attempt>> {
    std::fs::create_dir_all(root)?;
    let (home, project) = plant(root)?;
    let decoys = start_decoys(&home, if sandboxed { "with" } else { "without" })?;
    let mut suite_args: Vec<String> = vec![
        "python3".into(),
        "evil.py".into(),
        "--json".into(),
        "--victim-home".into(),
        home.display().to_string(),
        "--project".into(),
        project.display().to_string(),
        "--agent-sock".into(),
        decoys.agent_sock.display().to_string(),
        "--host-pid".into(),
        decoys.sleep.id().to_string(),
        "--host-port".into(),
        decoys.port.to_string(),
        "--abstract-sock".into(),
        decoys.abstract_name.clone(),
        "--json-out".into(),
        "report.json".into(),
    ];
    if sandboxed {
        let keepout = std::env::current_exe()?.display().to_string();
        let report = root.join("keepout-report.json").display().to_string();
        suite_args.splice(
            0..0,
            [
                keepout,
                "run".into(),
                "--report".into(),
                report,
                "--".into(),
            ],
        );
    }
    // With `script` (util-linux) the suite gets a terminal of its own, so terminal injection
    // (A5) is tried for real, on that throwaway terminal and never on yours.
    let mut cmd = if which("script") {
        let line = suite_args
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        let mut c = Command::new("script");
        c.args(["-qec", &line, "/dev/null"]);
        c
    } else {
        let mut c = Command::new(suite_args.remove(0));
        c.args(&suite_args);
        c
    };
    cmd.current_dir(&project)
        .env("HOME", &home)
        .env("GITHUB_TOKEN", "ghp_FAKEdemo0000000000000000000000000000")
        .env("PYPI_TOKEN", "pypi-AgEIcHlwaS5vcmcFAKEDEMO")
        .env("SSH_AUTH_SOCK", &decoys.agent_sock)
        .env("KEEPOUT_DEMO_ABSTRACT", &decoys.abstract_name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let status = cmd
        .status()
        .context("cannot run python3: the demo's test suite is written in Python")?;
    drop(decoys);
    let text = match std::fs::read_to_string(project.join("report.json")) {
        Ok(text) => text,
        Err(_) if sandboxed && status.code() == Some(crate::EXIT_KEEPOUT_ERROR as i32) => {
            bail!("keepout could not start the sandbox (see the error above)")
        }
        Err(e) => bail!(
            "the test suite wrote no report (exit {:?}): {e}",
            status.code()
        ),
    };
    let mut attempts: Vec<Attempt> =
        serde_json::from_str(&text).context("the test suite's report is not valid JSON")?;
    judge_persistence(&mut attempts, &home, &project);
    Ok(attempts)
}

/// The suite cannot tell a write to the real home from a write to the sandbox's throwaway home
/// at the same path; what counts is whether the host's file changed. Look, and say so.
fn judge_persistence(attempts: &mut [Attempt], home: &Path, project: &Path) {
    let planted = |rel: &str| {
        PLANTED
            .iter()
            .find(|(r, _)| *r == rel)
            .map(|(_, c)| *c)
            .unwrap_or("")
    };
    let changed = |p: PathBuf, original: &str| {
        std::fs::read_to_string(p)
            .map(|c| c != original)
            .unwrap_or(false)
    };
    let exists = |p: PathBuf| std::fs::symlink_metadata(p).is_ok();
    for a in attempts.iter_mut().filter(|a| a.id == "A4") {
        let on_host = match a.attack.as_str() {
            "append ~/.bashrc" => changed(home.join(".bashrc"), planted(".bashrc")),
            "append ~/.profile" => changed(home.join(".profile"), planted(".profile")),
            "create ~/.config/autostart/evil.desktop" => {
                exists(home.join(".config/autostart/evil.desktop"))
            }
            "write .git/hooks/pre-commit" => exists(project.join(".git/hooks/pre-commit")),
            "append fsmonitor to .git/config" => {
                std::fs::read_to_string(project.join(".git/config"))
                    .map(|c| c.contains("fsmonitor"))
                    .unwrap_or(false)
            }
            "create/append .envrc" => exists(project.join(".envrc")),
            _ => continue,
        };
        if a.outcome == "got" && !on_host {
            a.outcome = "blocked".into();
            a.detail = "the host's file is unchanged (the write, if any, went to the sandbox's throwaway copy)".into();
        }
    }
}

pub fn demo(args: DemoArgs) -> Result<i32> {
    let dir = tempfile::Builder::new().prefix("keepout-demo-").tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    println!(
        "A malicious test suite (examples/evil-test-suite/evil.py) tries the attacks of keepout's"
    );
    println!(
        "threat model against a planted fake home ({}),",
        dir.path().display()
    );
    println!("first run as you, then inside `keepout run`. Running…\n");
    let without = run_suite(&dir.path().join("without"), false)?;
    let with = run_suite(&dir.path().join("with"), true)?;

    fn show(o: &str) -> &str {
        if o == "got" {
            "GOT"
        } else {
            o
        }
    }
    println!(
        "{:<4} {:<42} {:<16} inside keepout",
        "", "attack", "without keepout"
    );
    let mut leaked = Vec::new();
    for a in &without {
        let inside = with.iter().find(|b| b.id == a.id && b.attack == a.attack);
        let inside_outcome = inside.map(|b| b.outcome.as_str()).unwrap_or("-");
        if inside_outcome == "got" {
            leaked.push(inside.expect("found"));
        }
        println!(
            "{:<4} {:<42} {:<16} {}",
            a.id,
            truncate(&a.attack, 42),
            show(&a.outcome),
            show(inside_outcome)
        );
    }
    let count = |v: &[Attempt]| v.iter().filter(|a| a.outcome == "got").count();
    let tried = |v: &[Attempt]| {
        v.iter()
            .filter(|a| a.outcome == "got" || a.outcome == "blocked")
            .count()
    };
    println!(
        "\nwithout keepout: {} of {} attacks succeeded\ninside keepout:  {} of {} attacks succeeded",
        count(&without),
        tried(&without),
        count(&with),
        tried(&with)
    );
    for a in &leaked {
        println!("  leaked inside: {} {}: {}", a.id, a.attack, a.detail);
    }
    print_run_report(&dir.path().join("with/keepout-report.json"));
    if args.keep {
        let kept = dir.keep();
        println!("kept {}", kept.display());
    }
    let _ = std::io::stdout().lock().flush();
    Ok(if leaked.is_empty() { 0 } else { 1 })
}

/// What `keepout run --report` recorded of the suite's run inside: the system calls it was
/// refused (the line `keepout run` prints on stderr, which the demo's throwaway terminal hides).
fn print_run_report(path: &Path) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return;
    };
    let syscalls: Vec<&str> = json["syscalls"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    if !syscalls.is_empty() {
        println!(
            "\nkeepout's report of the run inside (--report): refused {} system calls: {}",
            syscalls.len(),
            syscalls.join(" · ")
        );
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

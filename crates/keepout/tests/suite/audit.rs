//! `keepout audit` from the command line: the report, --json, --fail-on and exit statuses. (Each
//! check has its fixture tests in crates/keepout-audit/tests/fixtures.rs.)

use std::process::Command;

use super::harness::keepout_bin;

fn audit(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(keepout_bin())
        .arg("audit")
        .arg("--home")
        .arg(home)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .output()
        .unwrap()
}

#[test]
fn audit_report_json_and_exit_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    // Clean: exit 0 (as root, "running as root" is reported: fail only above critical there).
    let root = super::harness::euid() == 0;
    let out = audit(home, &["--fail-on", "critical"]);
    assert_eq!(
        out.status.code(),
        Some(i32::from(root)),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    std::fs::write(home.join(".pgpass"), "db:5432:*:u:hunter2\n").unwrap();
    let out = audit(home, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a high finding fails by default: {text}"
    );
    assert!(
        text.contains("HIGH") && text.contains("~/.pgpass") && text.contains("fix:"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "never the secret");

    let out = audit(home, &["--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["version"], 1);
    let f = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["location"] == "~/.pgpass")
        .expect("the finding");
    for field in ["check", "severity", "title", "location", "why", "fix"] {
        assert!(f[field].is_string(), "{field} in {f}");
    }
    assert_eq!(f["severity"], "high");

    if !root {
        let out = audit(home, &["--fail-on", "critical"]);
        assert_eq!(out.status.code(), Some(0), "below --fail-on: exit 0");
    }
    let out = audit(&home.join("missing"), &[]);
    assert_eq!(out.status.code(), Some(2), "a keepout error is 2");
}

/// `keepout git setup` with real git: fetch URLs become HTTPS, push URLs SSH, for both kinds of
/// remote; running it twice changes nothing; --undo restores the config; the audit's git-setup
/// finding goes away.
#[test]
fn git_setup_rewrites_fetch_to_https_and_push_to_ssh() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let run = |program: &str, args: &[&str], cwd: &std::path::Path| {
        let out = Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &home)
            .current_dir(cwd)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    };
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    run("git", &["init", "-q"], &repo);
    run(
        "git",
        &["remote", "add", "ssh", "git@github.com:a/b.git"],
        &repo,
    );
    run(
        "git",
        &["remote", "add", "https", "https://github.com/a/c.git"],
        &repo,
    );
    let urls = || {
        [
            run("git", &["remote", "get-url", "ssh"], &repo).1,
            run("git", &["remote", "get-url", "--push", "ssh"], &repo).1,
            run("git", &["remote", "get-url", "https"], &repo).1,
            run("git", &["remote", "get-url", "--push", "https"], &repo).1,
        ]
    };
    let before = urls();
    assert_eq!(
        before[0], "git@github.com:a/b.git",
        "without setup, fetch uses ssh"
    );

    // The audit notices, for a user with an SSH key.
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "pass", "-f"])
        .arg(home.join(".ssh/id_ed25519"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let (_, report) = run(
        keepout_bin(),
        &["audit", "--home", home.to_str().unwrap(), "--json"],
        &repo,
    );
    assert!(report.contains("\"git-setup\""), "{report}");

    let (code, _) = run(keepout_bin(), &["git", "setup"], &repo);
    assert_eq!(code, Some(0));
    assert_eq!(
        urls(),
        [
            "https://github.com/a/b.git",
            "git@github.com:a/b.git",
            "https://github.com/a/c.git",
            "git@github.com:a/c.git"
        ],
        "fetch over HTTPS, push over SSH"
    );
    let config = std::fs::read_to_string(home.join(".gitconfig")).unwrap();
    run(keepout_bin(), &["git", "setup"], &repo);
    assert_eq!(
        std::fs::read_to_string(home.join(".gitconfig")).unwrap(),
        config,
        "idempotent"
    );
    let (_, report) = run(
        keepout_bin(),
        &["audit", "--home", home.to_str().unwrap(), "--json"],
        &repo,
    );
    assert!(!report.contains("\"git-setup\""), "{report}");

    run(keepout_bin(), &["git", "setup", "--undo"], &repo);
    assert_eq!(urls(), before, "--undo restores");
}

/// `keepout audit --fix` end to end: netrc, git-credentials (and credential.helper = store), an
/// unencrypted SSH key and git setup are fixed after a yes each; the audit is then clean of them,
/// and git still gets its password (now from the vault) and sees the key through keepout.
#[test]
fn audit_fix_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::create_dir_all(d.join("bin")).unwrap();
    std::fs::create_dir_all(d.join("run")).unwrap();
    std::os::unix::fs::symlink(keepout_bin(), d.join("bin/keepout")).unwrap();
    std::fs::write(
        home.join(".netrc"),
        "machine example.org login alice password netrc-PW-1\n",
    )
    .unwrap();
    std::fs::write(
        home.join(".git-credentials"),
        "https://bob:store-PW-2@git.example.com\n",
    )
    .unwrap();
    std::fs::write(home.join(".gitconfig"), "[credential]\n\thelper = store\n").unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(home.join(".ssh/id_ed25519"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let ask = d.join("askpass");
    std::fs::write(
        &ask,
        "#!/bin/sh\ncase \"$1\" in *assphrase*) echo 'correct horse';; esac\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&ask, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = |program: &str, args: &[&str], input: &str| {
        let mut c = Command::new(program);
        c.args(args)
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", d.join("bin").display()))
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", d.join("run"))
            .env("KEEPOUT_VAULT", d.join("vault.age"))
            .env("KEEPOUT_CONFIG", d.join("config.toml"))
            .env("KEEPOUT_ASKPASS", &ask)
            .env("KEEPOUT_SCRYPT_WORK_FACTOR", "4")
            .env("KEEPOUT_NO_CACHE", "1")
            .current_dir(d);
        super::harness::with_input(c, input)
    };
    let out = run(keepout_bin(), &["audit", "--fix"], "");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for gone in [".netrc", ".git-credentials", ".ssh/id_ed25519"] {
        assert!(!home.join(gone).exists(), "{gone} removed: {text}");
    }
    let out = run(
        keepout_bin(),
        &["audit", "--home", home.to_str().unwrap(), "--json"],
        "",
    );
    let report = String::from_utf8_lossy(&out.stdout);
    for check in [
        "plaintext-credentials",
        "ssh-key-unencrypted",
        "git-credential-store",
        "git-setup",
    ] {
        assert!(
            !report.contains(&format!("\"{check}\"")),
            "{check} fixed: {report}\n{text}"
        );
    }
    // git still works: its password now comes from the vault, through keepout.
    let out = run(
        "git",
        &["credential", "fill"],
        "protocol=https\nhost=git.example.com\nusername=bob\n\n",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("password=store-PW-2"),
        "git credential fill: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(keepout_bin(), &["ssh", "list"], "");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("id_ed25519"),
        "the key is in the vault"
    );
}

/// Issue 14: looking makes nothing. `keepout audit` only asks where the agent's socket would
/// be; it made the socket directory (`~/.local/state/keepout/run` with no XDG_RUNTIME_DIR) in
/// whatever HOME it ran with, which is how the suite's runs left one in the real home.
#[test]
fn the_audit_makes_nothing_in_the_home() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let out = Command::new(keepout_bin())
        .args(["audit", "--home"])
        .arg(home)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .current_dir("/")
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: Vec<_> = std::fs::read_dir(home)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(made.is_empty(), "the audit made {made:?} in the home");
}

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

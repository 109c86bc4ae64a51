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

//! `keepout audit --repo` from the command line, on real `git init`ed copies of keepout-audit's
//! fixture repositories (crates/keepout-audit/tests/fixtures/repos/, where each check has its
//! exact tests): the text report, `--json`'s fields, `--fail-on`, exit statuses 0/1/2, the
//! errors outside a repository and for `--zizmor` without zizmor, and this project's own
//! repository.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::harness::keepout_bin;

/// keepout-audit's fixture repository `name`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../keepout-audit/tests/fixtures/repos")
        .join(name)
}

/// A `git init`ed copy of fixture `name` in a new temporary directory, with `origin` on
/// github.com; (the directory, the repository).
pub fn git_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join(name);
    let ok = Command::new("cp")
        .arg("-r")
        .arg(fixture(name))
        .arg(&repo)
        .status()
        .unwrap()
        .success();
    assert!(ok, "copy {name}");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("HOME", dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q"]);
    git(&[
        "remote",
        "add",
        "origin",
        &format!("git@github.com:example/{name}.git"),
    ]);
    (dir, repo)
}

/// `keepout audit ARGS` in `cwd`, with only `PATH` (no zizmor on it) and `HOME`.
fn keepout_audit(cwd: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    keepout_audit_with_path(cwd, args, "/usr/bin:/bin")
}

/// [`keepout_audit`] with `PATH` set to `path`.
fn keepout_audit_with_path(cwd: &Path, args: &[&str], path: &str) -> (Option<i32>, String, String) {
    let out = Command::new(keepout_bin())
        .arg("audit")
        .args(args)
        .env_clear()
        .env("PATH", path)
        .env("HOME", "/nonexistent")
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_text_report_lists_the_release_path_then_the_findings_and_fails_on_high() {
    let (_dir, repo) = git_copy("long-token");
    // From a subdirectory, without DIR: the repository the current directory is in.
    let sub = repo.join(".github/workflows");
    let (code, text, err) = keepout_audit(&sub, &["--repo"]);
    assert_eq!(code, Some(1), "two high findings: {text}{err}");
    let head = format!(
        "keepout audit --repo: {} (github.com/example/long-token), 2 workflow files\n\nRelease path: 2 jobs publish\n",
        repo.display()
    );
    assert!(text.starts_with(&head), "{text}");
    assert!(
        text.contains(
            "  .github/workflows/release.yml:12  job `publish`\n      publishes:     crates.io (cargo publish)\n      started by:    a push of tags v* (anyone who can push)\n      authenticates: a long-lived token from the repository's secrets (CARGO_REGISTRY_TOKEN)\n      gated by:      environment `crates-io` (its reviewers: GitHub's settings, below)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("HIGH      job `publish` publishes with the long-lived secret CARGO_REGISTRY_TOKEN\n          at:  .github/workflows/release.yml:22\n"),
        "{text}"
    );
    assert!(
        text.contains("at:  github.com/example/long-token"),
        "{text}"
    );

    let (code, ..) = keepout_audit(&sub, &["--repo", "--fail-on", "critical"]);
    assert_eq!(code, Some(0), "nothing critical");
}

#[test]
fn the_json_has_the_release_path_and_findings_with_stable_fields() {
    let (_dir, repo) = git_copy("trusted-protected");
    let (code, out, err) = keepout_audit(
        Path::new("/"),
        &["--repo", repo.to_str().unwrap(), "--json"],
    );
    assert_eq!(code, Some(0), "clean: info only: {out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["repository"], repo.to_str().unwrap());
    assert_eq!(doc["remote"], "example/trusted-protected");
    assert_eq!(doc["workflows"], 1);
    assert_eq!(doc["zizmor"], false);
    let r = &doc["release_path"][0];
    assert_eq!(r["location"], ".github/workflows/release.yml:29");
    assert_eq!(r["job"], "publish-to-pypi");
    assert_eq!(r["auth"], "trusted-publishing");
    assert_eq!(r["environment"], "pypi");
    assert_eq!(r["needs"], serde_json::json!(["build"]));
    let findings = doc["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 3);
    for f in findings {
        assert_eq!(f["severity"], "info", "{f}");
        assert!(
            f["title"]
                .as_str()
                .unwrap()
                .contains("unknown: needs a token"),
            "{f}"
        );
        let location = f["location"].as_str().unwrap();
        assert!(
            location.starts_with("github.com/example/trusted-protected"),
            "{f}"
        );
    }
    let (code, ..) = keepout_audit(
        Path::new("/"),
        &["--repo", repo.to_str().unwrap(), "--fail-on", "info"],
    );
    assert_eq!(code, Some(1), "--fail-on info fails on the info findings");
}

#[test]
fn medium_findings_fail_only_at_fail_on_medium() {
    let (_dir, repo) = git_copy("unpinned");
    let dir = repo.to_str().unwrap();
    assert_eq!(keepout_audit(Path::new("/"), &["--repo", dir]).0, Some(0));
    let (code, text, _) = keepout_audit(Path::new("/"), &["--repo", dir, "--fail-on", "medium"]);
    assert_eq!(code, Some(1));
    assert!(text.contains("MEDIUM    job `release` publishes and uses `pypa/gh-action-pypi-publish@release/v1`, not pinned to a commit\n          at:  .github/workflows/release.yml:21\n"), "{text}");
}

#[test]
fn outside_a_git_repository_is_exit_2_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = keepout_audit(dir.path(), &["--repo"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.is_empty());
    assert_eq!(
        err,
        format!(
            "keepout: audit: {} is not in a git repository: run it inside one, or give its directory (keepout audit --repo DIR)\n",
            dir.path().display()
        )
    );
    let (code, _, err) = keepout_audit(Path::new("/"), &["--repo", "/nonexistent/repo"]);
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with("keepout: audit: cannot read /nonexistent/repo: "),
        "{err}"
    );
}

#[test]
fn zizmor_missing_is_exit_2_saying_how_to_install_it() {
    let (_dir, repo) = git_copy("ordinary-ci");
    let (code, out, err) = keepout_audit(&repo, &["--repo", "--zizmor"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.is_empty(), "no report that looks complete: {out}");
    assert!(err.contains("zizmor is not installed"), "{err}");
    assert!(
        err.contains("pipx install zizmor") && err.contains("cargo install zizmor"),
        "{err}"
    );
}

#[test]
fn repo_conflicts_with_home_and_fix() {
    for other in [["--home", "/tmp"].as_slice(), &["--fix"]] {
        let mut args = vec!["--repo"];
        args.extend(other);
        let (code, _, err) = keepout_audit(Path::new("/"), &args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(err.contains("cannot be used with"), "{err}");
    }
}

/// This project's own repository (the worktree this test was built in): no workflow publishes,
/// and the report says so.
#[test]
fn this_repository_has_a_sensible_report() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap();
    let (code, text, err) = keepout_audit(&root.join("crates"), &["--repo"]);
    assert!(matches!(code, Some(0 | 1)), "{text}{err}");
    assert!(
        text.starts_with(&format!("keepout audit --repo: {}", root.display())),
        "{text}"
    );
    let workflows = root.join(".github/workflows");
    if !workflows.exists() {
        assert!(text.contains(", 0 workflow files\n"), "{text}");
        assert!(text.contains("Release path: no job publishes"), "{text}");
    }
    // Offline, GitHub's settings are unknown (this checkout may have no github.com remote).
    assert!(
        text.contains("unknown: needs a token")
            || text.contains("unknown: the repository has no github.com remote"),
        "{text}"
    );
}

/// A FAKE GitHub (GitHub's API cannot be reached here): a server on 127.0.0.1 answering each
/// path with the shape of GitHub's documented response (or 403 "Resource not accessible by
/// personal access token" to everything, a token lacking the permissions); it records the
/// Authorization header it got. Its address for `KEEPOUT_GITHUB_API`.
fn fake_github(forbidden: bool) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let base = "/repos/example/trusted-protected";
    let routes: Vec<(String, &str)> = vec![
        (
            base.into(),
            r#"{"id":1,"name":"trusted-protected","full_name":"example/trusted-protected","private":false,"default_branch":"main"}"#,
        ),
        (
            format!("{base}/environments/pypi"),
            r#"{"id":2,"name":"pypi","protection_rules":[{"id":3,"type":"required_reviewers","prevent_self_review":true,"reviewers":[{"type":"User","reviewer":{"login":"octocat","id":1}}]}],"deployment_branch_policy":{"protected_branches":true,"custom_branch_policies":false}}"#,
        ),
        (
            format!("{base}/rules/branches/main"),
            r#"[{"type":"pull_request","parameters":{"required_approving_review_count":1,"dismiss_stale_reviews_on_push":true,"require_code_owner_review":true,"require_last_push_approval":true,"required_review_thread_resolution":false},"ruleset_source_type":"Repository","ruleset_source":"example/trusted-protected","ruleset_id":42}]"#,
        ),
        (
            format!("{base}/rulesets?includes_parents=true&per_page=100"),
            r#"[{"id":43,"name":"release tags","target":"tag","source_type":"Repository","source":"example/trusted-protected","enforcement":"active"}]"#,
        ),
        (
            format!("{base}/rulesets/43?includes_parents=true"),
            r#"{"id":43,"name":"release tags","target":"tag","enforcement":"active","bypass_actors":[],"conditions":{"ref_name":{"include":["refs/tags/v*"],"exclude":[]}},"rules":[{"type":"creation"},{"type":"update"},{"type":"deletion"}]}"#,
        ),
    ];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if header.to_ascii_lowercase().starts_with("authorization:") {
                    log.lock().unwrap().push(header.trim().to_string());
                }
            }
            let (status, body) = match routes.iter().find(|(p, _)| *p == path) {
                _ if forbidden => (
                    "403 Forbidden",
                    r#"{"message":"Resource not accessible by personal access token","status":"403"}"#,
                ),
                Some((_, body)) => ("200 OK", *body),
                None => ("404 Not Found", r#"{"message":"Not Found","status":"404"}"#),
            };
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://{addr}"), seen)
}

/// `--token gh` (a FAKE `gh` on PATH, a script printing a token: gh cannot log in here) against
/// the fake GitHub: the settings are read, nothing is "unknown", the token went in the
/// Authorization header and appears nowhere in the report; a token lacking the permissions
/// gives "unknown: the token cannot read ..." (never a guess); a bad SOURCE is an error that
/// says what to give; `--token` needs `--repo`.
#[test]
fn token_reads_githubs_settings_and_is_never_shown() {
    const TOKEN: &str = "github_pat_KEEPOUTSUITEFAKE0123456789";
    let (_dir, repo) = git_copy("trusted-protected");
    let bin = tempfile::tempdir().unwrap();
    let gh = bin.path().join("gh");
    std::fs::write(
        &gh,
        format!("#!/bin/sh\n[ \"$*\" = 'auth token' ] && echo {TOKEN}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&gh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let audit = |api: &str, args: &[&str]| {
        let out = Command::new(keepout_bin())
            .arg("audit")
            .args(args)
            .env_clear()
            .env("PATH", &path)
            .env("HOME", "/nonexistent")
            .env("KEEPOUT_GITHUB_API", api)
            .current_dir(&repo)
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (api, seen) = fake_github(false);
    let (code, out, err) = audit(&api, &["--repo", "--token", "gh"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(!out.contains("unknown:"), "everything was read:\n{out}");
    assert!(
        out.contains("octocat") || out.contains("reviewer"),
        "the reviewers:\n{out}"
    );
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .all(|h| h == &format!("authorization: Bearer {TOKEN}")
            || h == &format!("Authorization: Bearer {TOKEN}")));
    assert!(!seen.lock().unwrap().is_empty(), "the API was asked");
    let (_, json, _) = audit(&api, &["--repo", "--token", "gh", "--json"]);
    for text in [&out, &err, &json] {
        assert!(!text.contains(TOKEN), "the token is never shown:\n{text}");
    }

    let (api, _) = fake_github(true);
    let (code, out, err) = audit(&api, &["--repo", "--token", "gh"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("unknown: the token cannot read"), "{out}");
    assert!(!out.contains(TOKEN) && !err.contains(TOKEN));

    let (code, _, err) = audit(&api, &["--repo", "--token", "github"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("keepout:NAME") && err.contains("gh"), "{err}");
    let (code, _, err) = audit(&api, &["--token", "gh"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--repo"), "{err}");
}

/// `--zizmor` with a FAKE zizmor on PATH (a shell script written here, not zizmor): it checks
/// the arguments keepout gives it (`--format json --offline REPO`) and answers in the shape of
/// zizmor's documented JSON output, exiting 14 as zizmor does when it finds something. Its
/// finding is in the report, at the path relative to the repository, and the report says
/// zizmor was run.
#[test]
fn zizmors_findings_are_added_and_the_report_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, repo) = git_copy("ordinary-ci");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let script = r#"#!/bin/sh
[ "$1 $2 $3" = "--format json --offline" ] || { echo "unexpected arguments: $*" >&2; exit 2; }
cat <<JSON
[{"ident": "artipacked", "desc": "credential persistence through GitHub Actions artifacts",
  "url": "https://docs.zizmor.sh/audits/#artipacked",
  "determinations": {"confidence": "Low", "severity": "Medium", "persona": "Regular"},
  "locations": [{"symbolic": {"key": {"Local": {"prefix": "$4", "given_path": "$4/.github/workflows/ci.yml"}},
    "annotation": "does not set persist-credentials: false", "route": {"route": []}, "kind": "Primary"},
    "concrete": {"location": {"start_point": {"row": 13, "column": 8}, "end_point": {"row": 13, "column": 30}}}}],
  "ignored": false}]
JSON
exit 14
"#;
    let fake = bin.join("zizmor");
    std::fs::write(&fake, script).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let args = ["--repo", "--zizmor", "--fail-on", "medium"];
    let (code, text, err) = keepout_audit_with_path(&repo, &args, &path);
    assert_eq!(
        code,
        Some(1),
        "zizmor's medium finding fails at medium: {text}{err}"
    );
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with(", with zizmor's findings"),
        "{text}"
    );
    assert!(
        text.contains("MEDIUM    zizmor: artipacked: credential persistence through GitHub Actions artifacts\n          at:  .github/workflows/ci.yml:14\n          why: does not set persist-credentials: false\n"),
        "{text}"
    );
    let (_, out, _) = keepout_audit_with_path(&repo, &["--repo", "--zizmor", "--json"], &path);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["zizmor"], true);
    assert!(doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["check"] == "zizmor"));
}

//! `keepout audit --repo` on the fixture repositories of tests/fixtures/repos/ (workflows
//! written for these tests, modeled on real projects' release workflows: pypa/sampleproject's
//! trusted publishing, a cargo release with CARGO_REGISTRY_TOKEN, npm publish with
//! NODE_AUTH_TOKEN, and the ways an attacker gets in): the release path and each finding, by
//! severity, check and `file:line`.

use std::path::PathBuf;

use keepout_audit::repo::{Auth, ReleaseJob};
use keepout_audit::{RepoAudit, Severity};

fn audit(name: &str) -> RepoAudit {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/repos")
        .join(name);
    RepoAudit::of_root(root, None).unwrap()
}

/// GitHub's settings (repo::github's checks): offline, each question is an Info finding,
/// "unknown" without a token (the default branch, the release tags, each environment named).
fn settings(check: &str) -> bool {
    check.starts_with("github-")
}

/// The findings as `severity check location`, without the ones about GitHub's settings.
fn findings(a: &RepoAudit) -> Vec<String> {
    let online: Vec<_> = a.findings.iter().filter(|f| settings(f.check)).collect();
    assert!(
        online.len() >= 2
            && online
                .iter()
                .all(|f| f.severity == Severity::Info && f.title.starts_with("unknown: ")),
        "offline, each of GitHub's settings is an Info finding: {online:?}"
    );
    a.findings
        .iter()
        .filter(|f| !settings(f.check))
        .map(|f| format!("{} {} {}", f.severity.as_str(), f.check, f.location))
        .collect()
}

fn one_job(a: &RepoAudit) -> &ReleaseJob {
    assert_eq!(a.release_path.len(), 1, "{:#?}", a.release_path);
    &a.release_path[0]
}

#[test]
fn trusted_publishing_in_a_protected_environment_is_clean_but_its_release_path_is_listed() {
    let a = audit("trusted-protected");
    assert_eq!(findings(&a), Vec::<String>::new());
    let r = one_job(&a);
    assert_eq!(r.location, ".github/workflows/release.yml:29");
    assert_eq!(r.job, "publish-to-pypi");
    assert_eq!(r.publishes, ["PyPI (pypa/gh-action-pypi-publish)"]);
    assert_eq!(
        r.triggers,
        ["a release published (anyone who can create one)"]
    );
    assert_eq!(r.auth, Auth::TrustedPublishing);
    assert!(r.secrets.is_empty());
    assert_eq!(r.environment.as_deref(), Some("pypi"));
    assert_eq!(r.needs, ["build"]);
    let text = a.text();
    assert!(text.contains("Release path: 1 job publishes\n"), "{text}");
    assert!(
        text.contains("unknown: the repository has no github.com remote: whether environment pypi exists and requires reviewers"),
        "{text}"
    );
    assert_eq!(a.exit_status(Severity::Low), 0, "info only");
}

#[test]
fn a_long_lived_token_is_high_at_the_line_that_names_it() {
    let a = audit("long-token");
    assert_eq!(
        findings(&a),
        [
            "high publish-token .github/workflows/npm.yml:22",
            "high publish-token .github/workflows/release.yml:22",
            "medium codeowners .github/",
        ]
    );
    let secrets: Vec<(&str, Auth, &[String])> = a
        .release_path
        .iter()
        .map(|r| (r.job.as_str(), r.auth, r.secrets.as_slice()))
        .collect();
    assert_eq!(
        secrets,
        [
            ("npm", Auth::Token, &["NPM_TOKEN".to_string()][..]),
            (
                "publish",
                Auth::Token,
                &["CARGO_REGISTRY_TOKEN".to_string()][..]
            ),
        ]
    );
    assert!(a.findings[0].title.contains("NPM_TOKEN"));
    assert_eq!(a.exit_status(Severity::High), 1);
}

#[test]
fn trusted_publishing_with_no_environment_is_ungated_whatever_its_if_says() {
    let a = audit("trusted-no-env");
    assert_eq!(
        findings(&a),
        [
            "high publish-ungated .github/workflows/publish.yml:6",
            "medium codeowners .github/",
        ]
    );
    let r = one_job(&a);
    assert_eq!(r.auth, Auth::TrustedPublishing);
    assert_eq!(r.environment, None);
    assert_eq!(
        r.condition.as_deref(),
        Some("startsWith(github.ref, 'refs/tags/')")
    );
    assert!(a.findings[0].title.contains("is a condition, not a gate"));
    assert!(a.text().contains("gated by:      nothing (no environment)"));
}

#[test]
fn pull_request_target_checking_out_the_head_is_high() {
    let a = audit("pr-target-checkout");
    assert_eq!(
        findings(&a),
        [
            "high untrusted-checkout .github/workflows/preview.yml:13",
            "medium codeowners .github/",
        ],
        "pull-requests: write for a preview comment is not a release permission"
    );
    assert!(a.release_path.is_empty());
    assert!(a.text().contains("Release path: no job publishes"));
}

#[test]
fn attacker_controlled_context_in_run_is_high_and_through_env_is_not() {
    let a = audit("template-injection");
    assert_eq!(
        findings(&a),
        [
            "high template-injection .github/workflows/triage.yml:16",
            "high template-injection .github/workflows/triage.yml:23",
            "medium codeowners .github/",
        ]
    );
    assert!(a.findings[0].title.contains("github.event.issue.title"));
    assert!(a.findings[1].title.contains("github.event.comment.body"));
}

#[test]
fn unpinned_third_party_actions_caches_and_persisted_credentials_in_a_publish_job_are_medium() {
    let a = audit("unpinned");
    assert_eq!(
        findings(&a),
        [
            "medium codeowners .github/",
            "medium persist-credentials .github/workflows/release.yml:15",
            "medium release-cache .github/workflows/release.yml:16",
            "medium unpinned-action .github/workflows/release.yml:21",
            "medium unpinned-action .github/workflows/release.yml:22",
        ],
        "actions/checkout@v4 and actions/setup-python@v5 are first-party: not unpinned findings"
    );
    assert_eq!(
        one_job(&a).publishes,
        [
            "PyPI (pypa/gh-action-pypi-publish)",
            "a GitHub release (softprops/action-gh-release)"
        ]
    );
    assert_eq!(a.exit_status(Severity::High), 0);
    assert_eq!(a.exit_status(Severity::Medium), 1);
}

#[test]
fn workflow_wide_id_token_reaching_a_job_that_runs_pr_code_is_high() {
    let a = audit("id-token-everywhere");
    assert_eq!(
        findings(&a),
        [
            "high id-token-write .github/workflows/ci.yml:6",
            "high untrusted-checkout .github/workflows/ci.yml:13",
            "medium codeowners .github/",
            "medium excess-permissions .github/workflows/ci.yml:6",
            "medium persist-credentials .github/workflows/ci.yml:13",
        ]
    );
    assert_eq!(
        a.findings[0].title,
        "workflow-wide `id-token: write` reaches `test`"
    );
    let r = one_job(&a);
    assert_eq!(
        (r.job.as_str(), r.auth),
        ("publish", Auth::TrustedPublishing)
    );
}

#[test]
fn an_ordinary_ci_publishes_nothing_and_is_clean() {
    let a = audit("ordinary-ci");
    assert_eq!(
        findings(&a),
        Vec::<String>::new(),
        "a dry run does not publish"
    );
    assert!(a.release_path.is_empty());
    assert_eq!(a.workflows, 1);
}

#[test]
fn a_reusable_workflow_that_publishes_counts_for_its_caller() {
    let a = audit("reusable");
    assert_eq!(
        findings(&a),
        [
            "high publish-token .github/workflows/publish.yml:18",
            "medium codeowners .github/",
        ]
    );
    let r = one_job(&a);
    assert_eq!(r.location, ".github/workflows/publish.yml:7");
    assert_eq!(
        r.called_from,
        [".github/workflows/release.yml:11 (job publish)"]
    );
    assert_eq!(
        r.triggers,
        [
            "a push of tags v* (anyone who can push)",
            "workflow_dispatch (anyone with write access, or a token of theirs)"
        ],
        "the caller's triggers, not workflow_call"
    );
    assert_eq!(r.secrets, ["PYPI_TOKEN"]);
}

#[test]
fn workflow_run_using_the_triggering_runs_artifacts_and_branch_name_is_high() {
    let a = audit("workflow-run");
    assert_eq!(
        findings(&a),
        [
            "high template-injection .github/workflows/report.yml:19",
            "high untrusted-checkout .github/workflows/report.yml:14",
            "medium codeowners .github/",
        ]
    );
}

#[test]
fn a_malformed_workflow_is_a_finding_and_a_yaml_extension_is_read() {
    let a = audit("malformed");
    assert_eq!(
        findings(&a),
        [
            "high publish-token .github/workflows/release.yaml:16",
            "high publish-ungated .github/workflows/release.yaml:8",
            "medium codeowners .github/",
            "medium workflow-unreadable .github/workflows/broken.yml:7",
            "medium workflow-unreadable .github/workflows/not-a-workflow.yml:1",
        ]
    );
    assert_eq!(a.workflows, 3);
    assert_eq!(one_job(&a).publishes, ["RubyGems (gem push)"]);
    let broken = a
        .findings
        .iter()
        .find(|f| f.location.ends_with("broken.yml:7"))
        .unwrap();
    assert!(broken.why.contains("line 7"), "{}", broken.why);
}

#[test]
fn a_repository_without_workflows_says_no_job_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let a = RepoAudit::of_root(dir.path().to_path_buf(), None).unwrap();
    assert_eq!(a.workflows, 0);
    assert_eq!(findings(&a), ["medium codeowners .github/"]);
    assert!(a.text().contains("Release path: no job publishes"));
}

#[test]
fn the_json_has_the_release_path_and_the_findings_with_stable_fields() {
    let a = audit("trusted-no-env");
    let doc: serde_json::Value = serde_json::from_str(&a.json().unwrap()).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["workflows"], 1);
    assert_eq!(doc["zizmor"], false);
    assert!(doc["remote"].is_null());
    let r = &doc["release_path"][0];
    for (field, value) in [
        ("location", ".github/workflows/publish.yml:6"),
        ("workflow", ".github/workflows/publish.yml"),
        ("job", "pypi"),
        ("auth", "trusted-publishing"),
    ] {
        assert_eq!(r[field], value, "{field}");
    }
    assert!(r["environment"].is_null());
    for field in ["publishes", "triggers", "secrets", "needs", "called_from"] {
        assert!(r[field].is_array(), "{field}");
    }
    let f = &doc["findings"][0];
    assert_eq!(f["check"], "publish-ungated");
    assert_eq!(f["severity"], "high");
    for field in ["title", "location", "why", "fix"] {
        assert!(f[field].is_string(), "{field}");
    }
}

#[test]
fn a_cache_in_a_job_the_publisher_needs_and_a_registry_login_token_are_found() {
    let a = audit("needs-cache-docker");
    assert_eq!(
        findings(&a),
        [
            "high publish-token .github/workflows/image.yml:29",
            "medium codeowners .github/",
            "medium release-cache .github/workflows/image.yml:16",
            "info remote-workflow .github/workflows/image.yml:34",
        ]
    );
    let r = one_job(&a);
    assert_eq!(r.job, "push");
    assert_eq!(
        r.publishes,
        ["a container image (docker/build-push-action)"]
    );
    assert_eq!(
        (r.auth, r.secrets.as_slice()),
        (Auth::Token, &["DOCKERHUB_TOKEN".to_string()][..])
    );
    assert_eq!(r.needs, ["build"]);
}

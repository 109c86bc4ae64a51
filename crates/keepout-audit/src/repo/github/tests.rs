//! The online check against a FAKE GitHub: GitHub's API cannot run here, so a local HTTP server
//! on 127.0.0.1 answers with the shapes of GitHub's documented REST responses (the fixtures
//! below, written from the docs' examples) and records every request it gets.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use super::*;

/// A token no answer, finding or error may ever contain.
const TOKEN: &str = "github_pat_KEEPOUTFAKETOKEN0123456789abcdefghijklmnopqrstuvwxyz";

/// One request the fake received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    headers: HashMap<String, String>,
}

/// The fake GitHub: `path (with query) → (status, body)`; anything else is a 404.
struct FakeGithub {
    base: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl FakeGithub {
    fn start(routes: &[(&str, u16, &str)]) -> FakeGithub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: HashMap<String, (u16, String)> = routes
            .iter()
            .map(|(path, status, body)| (path.to_string(), (*status, body.to_string())))
            .collect();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                answer(stream, &routes, &log);
            }
        });
        FakeGithub { base, received }
    }

    fn api(&self) -> Api {
        Api {
            base: self.base.clone(),
            token: SecretString::from(TOKEN),
        }
    }

    fn paths(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.path.clone())
            .collect()
    }
}

/// Read one request (headers only: GETs have no body), record it, answer and close.
fn answer(stream: TcpStream, routes: &HashMap<String, (u16, String)>, log: &Mutex<Vec<Received>>) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    log.lock().unwrap().push(Received {
        method,
        path: path.clone(),
        headers,
    });
    let (status, body) = routes.get(&path).cloned().unwrap_or((
        404,
        r#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest","status":"404"}"#
            .to_string(),
    ));
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

// Fixtures: the shapes of GitHub's documented responses (fields trimmed to a realistic few).

const REPOSITORY: &str = r#"{"id":1296269,"node_id":"MDEwOlJlcG9zaXRvcnkxMjk2MjY5","name":"widget","full_name":"octo/widget","private":false,"default_branch":"main","visibility":"public"}"#;

const ENVIRONMENT_PROTECTED: &str = r#"{"id":161088068,"node_id":"MDExOkVudmlyb25tZW50MTYxMDg4MDY4","name":"pypi","url":"https://api.github.com/repos/octo/widget/environments/pypi","html_url":"https://github.com/octo/widget/deployments/activity_log?environments_filter=pypi","created_at":"2020-11-23T22:00:40Z","updated_at":"2020-11-23T22:00:40Z","can_admins_bypass":true,"protection_rules":[{"id":3736,"node_id":"MDQ6R2F0ZTM3MzY=","type":"wait_timer","wait_timer":30},{"id":3755,"node_id":"MDQ6R2F0ZTM3NTU=","prevent_self_review":true,"type":"required_reviewers","reviewers":[{"type":"User","reviewer":{"login":"octocat","id":1,"type":"User"}},{"type":"Team","reviewer":{"id":1,"name":"Maintainers","slug":"maintainers"}}]},{"id":3756,"node_id":"MDQ6R2F0ZTM3NTY=","type":"branch_policy"}],"deployment_branch_policy":{"protected_branches":true,"custom_branch_policies":false}}"#;

const ENVIRONMENT_WITHOUT_REVIEWERS: &str = r#"{"id":161088069,"node_id":"MDExOkVudmlyb25tZW50MTYxMDg4MDY5","name":"pypi","url":"https://api.github.com/repos/octo/widget/environments/pypi","html_url":"https://github.com/octo/widget/deployments/activity_log?environments_filter=pypi","created_at":"2020-11-23T22:00:40Z","updated_at":"2020-11-23T22:00:40Z","can_admins_bypass":true,"protection_rules":[],"deployment_branch_policy":null}"#;

const ENVIRONMENT_SELF_REVIEW: &str = r#"{"id":161088070,"node_id":"MDExOkVudmlyb25tZW50MTYxMDg4MDcw","name":"pypi","created_at":"2020-11-23T22:00:40Z","updated_at":"2020-11-23T22:00:40Z","protection_rules":[{"id":3755,"node_id":"MDQ6R2F0ZTM3NTU=","prevent_self_review":false,"type":"required_reviewers","reviewers":[{"type":"User","reviewer":{"login":"octocat","id":1,"type":"User"}}]}],"deployment_branch_policy":{"protected_branches":false,"custom_branch_policies":true}}"#;

const BRANCH_POLICIES: &str = r#"{"total_count":2,"branch_policies":[{"id":361471,"node_id":"MDE2OkdhdGVCcmFuY2hQb2xpY3kzNjE0NzE=","name":"release/*","type":"branch"},{"id":361472,"node_id":"MDE2OkdhdGVCcmFuY2hQb2xpY3kzNjE0NzI=","name":"v*","type":"tag"}]}"#;

const NO_RULES: &str = "[]";

const RULES_WITH_PULL_REQUEST: &str = r#"[{"type":"deletion","ruleset_source_type":"Repository","ruleset_source":"octo/widget","ruleset_id":42},{"type":"pull_request","parameters":{"dismiss_stale_reviews_on_push":true,"require_code_owner_review":true,"require_last_push_approval":true,"required_approving_review_count":1,"required_review_thread_resolution":false},"ruleset_source_type":"Repository","ruleset_source":"octo/widget","ruleset_id":42}]"#;

const BRANCH_PROTECTION: &str = r#"{"url":"https://api.github.com/repos/octo/widget/branches/main/protection","required_status_checks":{"strict":true,"contexts":["continuous-integration/travis-ci"]},"enforce_admins":{"url":"https://api.github.com/repos/octo/widget/branches/main/protection/enforce_admins","enabled":true},"required_pull_request_reviews":{"dismiss_stale_reviews":true,"require_code_owner_reviews":true,"required_approving_review_count":2,"require_last_push_approval":true},"required_linear_history":{"enabled":true},"allow_force_pushes":{"enabled":false},"allow_deletions":{"enabled":false}}"#;

const BRANCH_NOT_PROTECTED: &str = r#"{"message":"Branch not protected","documentation_url":"https://docs.github.com/rest/branches/branch-protection#get-branch-protection","status":"404"}"#;

const RULESETS: &str = r#"[{"id":42,"name":"main needs a PR","target":"branch","source_type":"Repository","source":"octo/widget","enforcement":"active","node_id":"RRS_lACkVXNlcgQB","created_at":"2023-07-15T08:43:03Z","updated_at":"2023-08-23T16:29:47Z"},{"id":43,"name":"release tags","target":"tag","source_type":"Repository","source":"octo/widget","enforcement":"active","node_id":"RRS_lACkVXNlcgQC","created_at":"2023-07-15T08:43:03Z","updated_at":"2023-08-23T16:29:47Z"}]"#;

const TAG_RULESET: &str = r#"{"id":43,"name":"release tags","target":"tag","source_type":"Repository","source":"octo/widget","enforcement":"active","bypass_actors":[],"conditions":{"ref_name":{"include":["refs/tags/v*"],"exclude":[]}},"rules":[{"type":"creation"},{"type":"update"},{"type":"deletion"}],"node_id":"RRS_lACkVXNlcgQC","current_user_can_bypass":"never"}"#;

const FORBIDDEN: &str = r#"{"message":"Resource not accessible by personal access token","documentation_url":"https://docs.github.com/rest/branches/branch-protection#get-branch-protection","status":"403"}"#;

const BAD_CREDENTIALS: &str = r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}"#;

const REPO: &str = "/repos/octo/widget";
const ENV_PYPI: &str = "/repos/octo/widget/environments/pypi";
const POLICIES_PYPI: &str =
    "/repos/octo/widget/environments/pypi/deployment-branch-policies?per_page=100";
const RULES_MAIN: &str = "/repos/octo/widget/rules/branches/main";
const PROTECTION_MAIN: &str = "/repos/octo/widget/branches/main/protection";
const RULESETS_PATH: &str = "/repos/octo/widget/rulesets?includes_parents=true&per_page=100";
const TAG_RULESET_PATH: &str = "/repos/octo/widget/rulesets/43?includes_parents=true";

fn remote() -> Remote {
    Remote {
        owner: "octo".into(),
        name: "widget".into(),
    }
}

fn pypi() -> Vec<String> {
    vec!["pypi".to_string()]
}

/// Every route of a well-protected repository, with `replace`'s answers instead.
fn protected_with(replace: &[(&str, u16, &str)]) -> FakeGithub {
    let mut routes: Vec<(&str, u16, &str)> = vec![
        (REPO, 200, REPOSITORY),
        (ENV_PYPI, 200, ENVIRONMENT_PROTECTED),
        (RULES_MAIN, 200, NO_RULES),
        (PROTECTION_MAIN, 200, BRANCH_PROTECTION),
        (RULESETS_PATH, 200, RULESETS),
        (TAG_RULESET_PATH, 200, TAG_RULESET),
    ];
    for (path, status, body) in replace {
        routes.retain(|(p, _, _)| p != path);
        routes.push((path, *status, body));
    }
    FakeGithub::start(&routes)
}

fn findings_against(fake: &FakeGithub) -> Vec<Finding> {
    let findings = settings_findings(Some(&fake.api()), Some(&remote()), &pypi());
    assert_token_absent(&findings);
    findings
}

fn assert_token_absent(findings: &[Finding]) {
    let shown = format!("{findings:?}");
    assert!(
        !shown.contains(TOKEN) && !shown.contains("KEEPOUTFAKETOKEN"),
        "{shown}"
    );
    let json = serde_json::to_string(findings).unwrap();
    assert!(!json.contains("KEEPOUTFAKETOKEN"), "{json}");
}

/// The findings against a well-protected repository with `replace`'s answers, none above Info.
fn only_info_against(replace: &[(&str, u16, &str)]) -> (FakeGithub, Vec<Finding>) {
    let fake = protected_with(replace);
    let findings = findings_against(&fake);
    assert_eq!(worst(&findings), Severity::Info, "{findings:#?}");
    (fake, findings)
}

fn worst(findings: &[Finding]) -> Severity {
    findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Info)
}

#[test]
fn all_protected_gives_no_finding_above_info_and_asks_the_documented_paths() {
    let (fake, findings) = only_info_against(&[]);
    assert!(findings
        .iter()
        .any(|f| f.title.contains("requires approval by one of 2 reviewers")));
    assert!(findings
        .iter()
        .any(|f| f.title.contains("deploys from protected branches only")));
    assert!(findings.iter().any(|f| f
        .title
        .contains("requires a pull request (branch protection)")));
    assert!(findings.iter().any(|f| f
        .title
        .contains("ruleset 'release tags' (refs/tags/v*: creation, update, deletion)")));
    assert_eq!(
        fake.paths(),
        [
            REPO,
            ENV_PYPI,
            RULES_MAIN,
            PROTECTION_MAIN,
            RULESETS_PATH,
            TAG_RULESET_PATH
        ]
    );
    for request in fake.received.lock().unwrap().iter() {
        assert_eq!(request.method, "GET");
        assert_eq!(request.headers["authorization"], format!("Bearer {TOKEN}"));
        assert_eq!(request.headers["accept"], "application/vnd.github+json");
        assert_eq!(request.headers["x-github-api-version"], "2022-11-28");
        assert!(request.headers["user-agent"].starts_with("keepout-audit/"));
    }
}

/// The findings of `check` against a well-protected repository with `replace`'s answers.
fn check_against(replace: &[(&str, u16, &str)], check: &str) -> Vec<Finding> {
    let fake = protected_with(replace);
    findings_against(&fake)
        .into_iter()
        .filter(|finding| finding.check == check)
        .collect()
}

fn assert_says(finding: &Finding, severity: Severity, says: &str) {
    assert_eq!(finding.severity, severity, "{finding:#?}");
    assert!(finding.title.contains(says), "{says}: {finding:#?}");
}

/// Against a well-protected repository with `replace`'s answers, `check` gives exactly these
/// findings: (severity, words in the title).
fn expect_findings(replace: &[(&str, u16, &str)], check: &str, expected: &[(Severity, &str)]) {
    let findings = check_against(replace, check);
    assert_eq!(findings.len(), expected.len(), "{findings:#?}");
    for (finding, (severity, says)) in findings.iter().zip(expected) {
        assert_says(finding, *severity, says);
    }
}

#[test]
fn a_missing_environment_is_high() {
    let not_found = r#"{"message":"Not Found","status":"404"}"#;
    expect_findings(
        &[(ENV_PYPI, 404, not_found)],
        "github-environment",
        &[(
            Severity::High,
            "names environment pypi, which does not exist, so nothing gates it",
        )],
    );
}

#[test]
fn an_environment_without_reviewers_or_branch_policy() {
    expect_findings(
        &[(ENV_PYPI, 200, ENVIRONMENT_WITHOUT_REVIEWERS)],
        "github-environment",
        &[
            (Severity::High, "saved without its reviewers"),
            (Severity::Medium, "deployed from any branch"),
        ],
    );
}

#[test]
fn self_review_allowed_is_medium_and_selected_branches_are_named() {
    expect_findings(
        &[
            (ENV_PYPI, 200, ENVIRONMENT_SELF_REVIEW),
            (POLICIES_PYPI, 200, BRANCH_POLICIES),
        ],
        "github-environment",
        &[
            (Severity::Medium, "approve their own run"),
            (
                Severity::Info,
                "selected branches and tags: release/* (branch), v* (tag)",
            ),
        ],
    );
}

#[test]
fn a_branch_policy_of_every_branch_is_medium() {
    let every_branch = BRANCH_POLICIES.replace(r#""name":"release/*""#, r#""name":"*""#);
    expect_findings(
        &[
            (ENV_PYPI, 200, ENVIRONMENT_SELF_REVIEW),
            (POLICIES_PYPI, 200, &every_branch),
        ],
        "github-environment",
        &[
            (Severity::Medium, "approve their own run"),
            (
                Severity::Medium,
                "can be deployed from any branch (its policy allows branch '*')",
            ),
        ],
    );
}

#[test]
fn an_unprotected_default_branch_is_high() {
    expect_findings(
        &[(PROTECTION_MAIN, 404, BRANCH_NOT_PROTECTED)],
        "github-default-branch",
        &[(
            Severity::High,
            "a push to main needs no pull request: a terminal with your credentials can change the release workflow itself",
        )],
    );
}

#[test]
fn a_branch_protected_by_rulesets_only_is_fine_and_classic_protection_is_not_asked() {
    let (fake, findings) = only_info_against(&[
        (RULES_MAIN, 200, RULES_WITH_PULL_REQUEST),
        (PROTECTION_MAIN, 404, BRANCH_NOT_PROTECTED),
    ]);
    assert!(findings
        .iter()
        .any(|f| f.title.contains("requires a pull request (ruleset)")));
    assert!(!fake.paths().iter().any(|p| p == PROTECTION_MAIN));
}

#[test]
fn administrators_bypassing_branch_protection_is_medium() {
    let bypass = BRANCH_PROTECTION.replace(
        r#"protection/enforce_admins","enabled":true"#,
        r#"protection/enforce_admins","enabled":false"#,
    );
    expect_findings(
        &[(PROTECTION_MAIN, 200, &bypass)],
        "github-default-branch",
        &[
            (
                Severity::Info,
                "requires a pull request (branch protection)",
            ),
            (Severity::Medium, "administrators can push to main"),
        ],
    );
}

#[test]
fn unprotected_tags_are_medium_for_a_tag_triggered_publish_and_low_otherwise() {
    let only_branch_rulesets = r#"[{"id":42,"name":"main needs a PR","target":"branch","source_type":"Repository","source":"octo/widget","enforcement":"active"}]"#;
    let fake = protected_with(&[(RULESETS_PATH, 200, only_branch_rulesets)]);
    let findings = findings_against(&fake);
    let tags: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.check == "github-release-tags")
        .collect();
    assert_eq!(tags.len(), 1);
    assert_says(
        tags[0],
        Severity::Medium,
        "no ruleset restricts creating release tags",
    );
    assert!(!fake
        .paths()
        .iter()
        .any(|p| p.starts_with("/repos/octo/widget/rulesets/42")));

    let environments = pypi();
    let not_on_tags = release_path_findings(
        Some(&fake.api()),
        Some(&remote()),
        ReleasePath {
            environments: &environments,
            tag_triggered: false,
        },
    );
    let tags = not_on_tags
        .iter()
        .find(|f| f.check == "github-release-tags")
        .unwrap();
    assert_says(
        tags,
        Severity::Low,
        "no ruleset restricts creating release tags",
    );
}

#[test]
fn a_tag_ruleset_that_only_guards_updates_does_not_count() {
    let updates_only = TAG_RULESET.replace(r#"{"type":"creation"},"#, "");
    expect_findings(
        &[(TAG_RULESET_PATH, 200, &updates_only)],
        "github-release-tags",
        &[(
            Severity::Medium,
            "guards refs/tags/v* but not their creation",
        )],
    );
}

#[test]
fn a_token_lacking_a_permission_gives_unknown_never_a_guess() {
    let (_, findings) = only_info_against(&[
        (PROTECTION_MAIN, 403, FORBIDDEN),
        (ENV_PYPI, 403, FORBIDDEN),
    ]);
    let of = |check: &str| findings.iter().find(|f| f.check == check).unwrap();
    let branch = of("github-default-branch");
    assert_says(
        branch,
        Severity::Info,
        "unknown: the token cannot read the branch protection",
    );
    assert_says(branch, Severity::Info, "Administration: read");
    let environment = of("github-environment");
    assert_says(
        environment,
        Severity::Info,
        "cannot read the repository's environments",
    );
    assert_says(environment, Severity::Info, "Actions: read");
}

#[test]
fn a_refused_token_says_so_once() {
    let fake = FakeGithub::start(&[(REPO, 401, BAD_CREDENTIALS)]);
    let findings = findings_against(&fake);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].check, "github-settings");
    assert_says(
        &findings[0],
        Severity::Info,
        "unknown: the token was refused (expired or revoked?): whether environment pypi exists",
    );
    assert_eq!(findings[0].location, "github.com/octo/widget/settings");
    assert_eq!(fake.paths(), [REPO]);
}

#[test]
fn a_repository_the_token_cannot_see_is_one_unknown() {
    let fake = FakeGithub::start(&[]);
    let findings = findings_against(&fake);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_says(
        &findings[0],
        Severity::Info,
        "unknown: github.com/octo/widget was not found, or the token cannot see it",
    );
}

#[test]
fn a_used_up_rate_limit_is_said_not_taken_for_a_missing_permission() {
    let rate_limited = r#"{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api","status":"403"}"#;
    expect_findings(
        &[(RULESETS_PATH, 403, rate_limited)],
        "github-release-tags",
        &[(
            Severity::Info,
            "unknown: GitHub's rate limit for this token is used up",
        )],
    );
}

#[test]
fn a_server_echoing_the_token_does_not_get_it_into_a_finding() {
    let echo = format!(r#"{{"message":"Not Found for Bearer {TOKEN}","status":"404"}}"#);
    expect_findings(
        &[(PROTECTION_MAIN, 404, &echo)],
        "github-default-branch",
        &[(Severity::Info, "Not Found for Bearer [token]")],
    );
}

#[test]
fn a_server_that_is_down_is_unreachable_not_a_guess() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        token: SecretString::from(TOKEN),
    };
    let findings = settings_findings(Some(&api), Some(&remote()), &pypi());
    assert_token_absent(&findings);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_says(
        &findings[0],
        Severity::Info,
        &format!("unknown: GitHub's API at http://127.0.0.1:{port} was unreachable"),
    );
}

#[test]
fn without_a_token_or_a_remote_every_question_is_unknown() {
    let environments = ["pypi", "crates-io", "pypi"].map(String::from);
    let findings = settings_findings(None, Some(&remote()), &environments);
    assert_eq!(findings.len(), 4);
    assert!(findings
        .iter()
        .all(|f| f.severity == Severity::Info && f.title.starts_with("unknown: needs a token")));
    assert!(findings[1].title.contains("environment crates-io"));
    let no_remote = settings_findings(None, None, &environments);
    assert!(no_remote
        .iter()
        .all(|f| f.title.contains("no github.com remote")));
}

#[test]
fn the_api_base_and_its_token_not_shown() {
    let token = || SecretString::from(TOKEN);
    let api = Api::with_base(token(), None);
    assert_eq!(api.base, DEFAULT_API_BASE);
    assert!(!format!("{api:?}").contains("KEEPOUTFAKETOKEN"));
    assert_eq!(
        Api::with_base(token(), Some(String::new())).base,
        DEFAULT_API_BASE
    );
    let fake = Api::with_base(token(), Some("http://127.0.0.1:8080/".into()));
    assert_eq!(fake.base, "http://127.0.0.1:8080");
}

#[test]
fn environment_names_are_encoded_in_the_path() {
    let fake = protected_with(&[]);
    let names = vec!["release / pypi".to_string()];
    settings_findings(Some(&fake.api()), Some(&remote()), &names);
    assert!(fake
        .paths()
        .iter()
        .any(|p| p == "/repos/octo/widget/environments/release%20%2F%20pypi"));
}

#[test]
fn remotes_from_git_urls() {
    let widget = Some(remote());
    assert_eq!(
        Remote::from_url("https://github.com/octo/widget.git"),
        widget
    );
    assert_eq!(Remote::from_url("git@github.com:octo/widget.git"), widget);
    assert_eq!(Remote::from_url("ssh://git@github.com/octo/widget"), widget);
    assert_eq!(
        Remote::from_url("https://x-access-token@github.com/octo/widget/"),
        widget
    );
    assert_eq!(Remote::from_url("https://gitlab.com/octo/widget.git"), None);
    assert_eq!(Remote::from_url("https://github.com/octo"), None);
}

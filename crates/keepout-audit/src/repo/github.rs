//! GitHub's settings for a repository's release path, read online with a read-only token: whether
//! the environments the publish jobs name exist and gate them (required reviewers, no self-review,
//! a deployment branch policy), whether the default branch requires pull requests (rulesets or
//! classic branch protection), and whether tags are protected by a ruleset.
//!
//! What this module guarantees:
//! - Every answer comes from a documented REST API response; where the API does not answer (no
//!   token, a token without the permission, a refused token, the API unreachable) the finding is
//!   an Info "unknown: ...", never a guess.
//! - The token is sent only in the `Authorization` header to [`Api::base`] (never on a
//!   redirect); it is never put in a finding, an error or a `Debug` output ([`Api`]'s token is a
//!   [`SecretString`], and error texts are scrubbed of it).
//! - Requests are `GET`s only, with a timeout; nothing is changed on GitHub.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::finding;
use crate::{Finding, Severity};

/// GitHub's API, unless [`API_BASE_VARIABLE`] says otherwise.
pub const DEFAULT_API_BASE: &str = "https://api.github.com";
/// The environment variable that points the online check at another API base (tests' fakes).
pub const API_BASE_VARIABLE: &str = "KEEPOUT_GITHUB_API";
/// How long one request may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// GitHub's answers read here are small; anything bigger is not what the docs describe.
const MAX_BODY: u64 = 4 << 20;

/// owner/name of a github.com repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub owner: String,
    pub name: String,
}

impl Remote {
    /// The github.com repository of a git remote URL: `https://github.com/o/r(.git)`,
    /// `git@github.com:o/r.git`, `ssh://git@github.com/o/r`. `None` for other hosts.
    pub fn from_url(url: &str) -> Option<Remote> {
        let url = url.trim();
        let path = [
            "https://github.com/",
            "http://github.com/",
            "ssh://git@github.com/",
            "git://github.com/",
        ]
        .iter()
        .find_map(|prefix| url.strip_prefix(prefix))
        .or_else(|| url.strip_prefix("git@github.com:"))
        .or_else(|| {
            // https://user@github.com/o/r: credentials in the URL are skipped, not kept.
            let rest = url.strip_prefix("https://")?;
            let (_, after) = rest.split_once('@')?;
            after.strip_prefix("github.com/")
        })?;
        let path = path.trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        let (owner, name) = path.split_once('/')?;
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        (valid(owner) && valid(name)).then(|| Remote {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// What the online check needs: the API base URL (https://api.github.com, or the
/// KEEPOUT_GITHUB_API environment variable for tests) and the token. Never printed.
pub struct Api {
    pub base: String,
    pub token: SecretString,
}

impl Api {
    /// The token with the base from [`API_BASE_VARIABLE`] if set, else [`DEFAULT_API_BASE`].
    pub fn new(token: SecretString) -> Api {
        Api::with_base(token, std::env::var(API_BASE_VARIABLE).ok())
    }

    /// The token with this base (`None` or empty: [`DEFAULT_API_BASE`]), without a final `/`.
    pub fn with_base(token: SecretString, base: Option<String>) -> Api {
        let base = base
            .filter(|base| !base.is_empty())
            .unwrap_or_else(|| DEFAULT_API_BASE.to_string());
        Api {
            base: base.trim_end_matches('/').to_string(),
            token,
        }
    }
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// What can go wrong asking GitHub. The texts never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GithubError {
    #[error("the token was refused (expired or revoked?)")]
    TokenRefused,
    #[error("the token cannot read {what} (a fine-grained token needs {permission} on this repository; a classic token needs the repo scope)")]
    NotPermitted {
        what: &'static str,
        permission: &'static str,
    },
    #[error("GitHub's rate limit for this token is used up; try again later")]
    RateLimited,
    #[error("{path} was not found ({message})")]
    NotFound { path: String, message: String },
    #[error("GitHub's API at {base} was unreachable ({reason})")]
    Unreachable { base: String, reason: String },
    #[error("GitHub answered {status} to {path}")]
    Status { status: u16, path: String },
    #[error("GitHub's answer to {path} is not the documented shape ({reason})")]
    Unexpected { path: String, reason: String },
}

/// What the caller knows about the release path, beyond the environments' names.
#[derive(Debug, Clone, Copy)]
pub struct ReleasePath<'a> {
    /// The environments the publish jobs name.
    pub environments: &'a [String],
    /// A publish job runs on a tag push: then unprotected tags are Medium, else Low.
    pub tag_triggered: bool,
}

/// The findings about GitHub's settings for these publish jobs' environments and the default
/// branch. `api: None` (no token) gives one Info finding per question, "unknown: needs a token".
pub fn settings_findings(
    api: Option<&Api>,
    remote: Option<&Remote>,
    environments: &[String],
) -> Vec<Finding> {
    release_path_findings(
        api,
        remote,
        ReleasePath {
            environments,
            tag_triggered: true,
        },
    )
}

/// [`settings_findings`], told whether a publish job runs on a tag push.
pub fn release_path_findings(
    api: Option<&Api>,
    remote: Option<&Remote>,
    release: ReleasePath<'_>,
) -> Vec<Finding> {
    // Several publish jobs often name the same environment: it is asked about once.
    let mut environments: Vec<String> = Vec::new();
    for environment in release.environments {
        if !environments.contains(environment) {
            environments.push(environment.clone());
        }
    }
    let release = ReleasePath {
        environments: &environments,
        ..release
    };
    let questions = Questions { remote, release };
    let Some(remote) = remote else {
        return questions.all_unknown(
            "the repository has no github.com remote",
            "Add the GitHub remote (`git remote add origin https://github.com/OWNER/NAME`) and run the audit again.",
        );
    };
    let Some(api) = api else {
        return questions.all_unknown(
            "needs a token",
            "Run with a read-only token (`--token keepout:github/audit`, or `gh auth token`): a fine-grained token with Metadata, Actions and Administration read on this repository is enough.",
        );
    };
    let client = Client::new(api, remote);
    let repository: Repository = match client.get(&client.repo_path(""), "the repository", METADATA)
    {
        Ok(repository) => repository,
        Err(GithubError::NotFound { .. }) => {
            return questions.none_asked(
                &format!("github.com/{remote} was not found, or the token cannot see it"),
                "Check the remote, and that the token was given this repository.",
            )
        }
        Err(error) => return questions.none_asked(&error.to_string(), fix_for(&error)),
    };
    let mut findings = Vec::new();
    for environment in release.environments {
        findings.extend(environment_findings(&client, environment));
    }
    findings.extend(default_branch_findings(&client, &repository.default_branch));
    findings.push(tag_findings(&client, release.tag_triggered));
    findings
}

/// The questions asked, for the findings that say their answer is unknown.
struct Questions<'a> {
    remote: Option<&'a Remote>,
    release: ReleasePath<'a>,
}

impl Questions<'_> {
    /// (check, question, settings page) of each question.
    fn asked(&self) -> Vec<(&'static str, String, &'static str)> {
        let mut asked: Vec<_> = self
            .release
            .environments
            .iter()
            .map(|environment| {
                (
                    "github-environment",
                    format!("whether environment {environment} exists and requires reviewers"),
                    "environments",
                )
            })
            .collect();
        asked.push((
            "github-default-branch",
            "whether the default branch requires pull requests".to_string(),
            "branches",
        ));
        asked.push((
            "github-release-tags",
            "whether release tags are protected".to_string(),
            "rules",
        ));
        asked
    }

    /// One Info finding per question: its answer is unknown for `reason`.
    fn all_unknown(&self, reason: &str, fix: &str) -> Vec<Finding> {
        self.asked()
            .into_iter()
            .map(|(check, question, page)| {
                unknown(
                    check,
                    &question,
                    reason,
                    settings_page(self.remote, page),
                    fix,
                )
            })
            .collect()
    }

    /// One Info finding for all the questions: GitHub could not be asked at all (`reason`).
    fn none_asked(&self, reason: &str, fix: &str) -> Vec<Finding> {
        let questions: Vec<String> = self
            .asked()
            .into_iter()
            .map(|(_, question, _)| question)
            .collect();
        vec![unknown(
            "github-settings",
            &questions.join("; "),
            reason,
            settings_page(self.remote, ""),
            fix,
        )]
    }
}

/// `github.com/o/r/settings/PAGE`, where the setting is changed.
fn settings_page(remote: Option<&Remote>, page: &str) -> String {
    match remote {
        Some(remote) => format!("github.com/{remote}/settings/{page}")
            .trim_end_matches('/')
            .to_string(),
        None => "GitHub settings".to_string(),
    }
}

fn unknown(
    check: &'static str,
    question: &str,
    reason: &str,
    location: String,
    fix: &str,
) -> Finding {
    Finding {
        check,
        severity: Severity::Info,
        title: format!("unknown: {reason}: {question}"),
        location,
        why: "Only GitHub's settings answer this; without an answer the audit does not guess."
            .into(),
        fix: fix.into(),
        fix_command: None,
    }
}

fn fix_for(error: &GithubError) -> &'static str {
    match error {
        GithubError::TokenRefused => {
            "Give a valid token (`gh auth token`, or a new fine-grained read-only token)."
        }
        GithubError::NotPermitted { .. } => {
            "Give the token that read permission, or use one that has it."
        }
        GithubError::Unreachable { .. } => {
            "Check the network (or KEEPOUT_GITHUB_API) and run the audit again."
        }
        _ => "Run the audit again; if it persists, check the setting on GitHub by hand.",
    }
}

// The fine-grained permissions GitHub's REST docs list for each endpoint read here.
const METADATA: &str = "Metadata: read";
const ACTIONS: &str = "Actions: read";
const ADMINISTRATION: &str = "Administration: read";

/// `GET /repos/{owner}/{repo}`, the fields read.
#[derive(Deserialize)]
struct Repository {
    default_branch: String,
}

/// `GET /repos/{owner}/{repo}/environments/{name}`, the fields read.
#[derive(Deserialize)]
struct Environment {
    #[serde(default)]
    protection_rules: Vec<ProtectionRule>,
    deployment_branch_policy: Option<DeploymentBranchPolicy>,
}

#[derive(Deserialize)]
struct ProtectionRule {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    reviewers: Vec<serde_json::Value>,
    prevent_self_review: Option<bool>,
}

#[derive(Deserialize)]
struct DeploymentBranchPolicy {
    #[serde(default)]
    protected_branches: bool,
    #[serde(default)]
    custom_branch_policies: bool,
}

/// `GET /repos/{owner}/{repo}/environments/{name}/deployment-branch-policies`.
#[derive(Deserialize)]
struct BranchPolicies {
    #[serde(default)]
    branch_policies: Vec<BranchPolicy>,
}

#[derive(Deserialize)]
struct BranchPolicy {
    /// A pattern: `release/*`, `v*`.
    name: String,
    /// `branch` or `tag` (absent: branch).
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// A rule: one of `GET /repos/{owner}/{repo}/rules/branches/{branch}` (active rules only), or
/// of a ruleset's `rules` (`pull_request`, `creation`, `update`, `deletion`, ...).
#[derive(Deserialize)]
struct Rule {
    #[serde(rename = "type")]
    kind: String,
}

/// `GET /repos/{owner}/{repo}/branches/{branch}/protection`, the fields read.
#[derive(Deserialize)]
struct BranchProtection {
    required_pull_request_reviews: Option<serde_json::Value>,
    enforce_admins: Option<Enabled>,
}

#[derive(Deserialize)]
struct Enabled {
    enabled: bool,
}

/// One of `GET /repos/{owner}/{repo}/rulesets`, and `GET .../rulesets/{id}` with the details.
#[derive(Deserialize)]
struct Ruleset {
    id: u64,
    name: String,
    /// `branch`, `tag` or `push`; absent from some list answers (then the details say).
    target: Option<String>,
    /// `active`, `evaluate` or `disabled`.
    #[serde(default)]
    enforcement: String,
    conditions: Option<RulesetConditions>,
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct RulesetConditions {
    ref_name: Option<RefNameCondition>,
}

#[derive(Deserialize)]
struct RefNameCondition {
    #[serde(default)]
    include: Vec<String>,
}

/// The HTTP side: one agent, the token in one header, errors in words.
struct Client<'a> {
    api: &'a Api,
    remote: &'a Remote,
    agent: ureq::Agent,
}

impl<'a> Client<'a> {
    fn new(api: &'a Api, remote: &'a Remote) -> Client<'a> {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .http_status_as_error(false)
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
            .user_agent(concat!("keepout-audit/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client { api, remote, agent }
    }

    /// `/repos/{owner}/{repo}{rest}`.
    fn repo_path(&self, rest: &str) -> String {
        format!(
            "/repos/{}/{}{rest}",
            encode_segment(&self.remote.owner),
            encode_segment(&self.remote.name)
        )
    }

    /// `GET path` as `T`; `what` and `permission` name what a 403 could not read.
    fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &'static str,
        permission: &'static str,
    ) -> Result<T, GithubError> {
        let url = format!("{}{path}", self.api.base);
        let response = self
            .agent
            .get(&url)
            .header(
                "Authorization",
                format!("Bearer {}", self.api.token.expose_secret()),
            )
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .call();
        let mut response = response.map_err(|error| GithubError::Unreachable {
            base: self.api.base.clone(),
            reason: self.scrub(&error.to_string()),
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|error| GithubError::Unreachable {
                base: self.api.base.clone(),
                reason: self.scrub(&error.to_string()),
            })?;
        let message = || {
            serde_json::from_str::<ErrorBody>(&body)
                .map(|b| self.scrub(&b.message))
                .unwrap_or_default()
        };
        match status {
            200..=299 => serde_json::from_str(&body).map_err(|error| GithubError::Unexpected {
                path: path.to_string(),
                reason: error.to_string(),
            }),
            401 => Err(GithubError::TokenRefused),
            403 | 429 if message().to_ascii_lowercase().contains("rate limit") => {
                Err(GithubError::RateLimited)
            }
            403 => Err(GithubError::NotPermitted { what, permission }),
            404 => Err(GithubError::NotFound {
                path: path.to_string(),
                message: message(),
            }),
            _ => Err(GithubError::Status {
                status,
                path: path.to_string(),
            }),
        }
    }

    /// `text` with the token cut out, should any text ever echo it.
    fn scrub(&self, text: &str) -> String {
        let token = self.api.token.expose_secret();
        if token.is_empty() {
            text.to_string()
        } else {
            text.replace(token, "[token]")
        }
    }
}

/// GitHub's error body: `{"message": "...", "documentation_url": "..."}`.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
}

/// A path segment, percent-encoded (an environment's name may hold spaces or slashes).
fn encode_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Why an environment's deployment branch policy matters, either way.
const ONLY_SELECTED_BRANCHES: &str = "A branch pushed from a terminal cannot run the publish job in this environment unless the policy selects it.";
const ANY_BRANCH: &str = "A pushed branch can run the publish job, with a workflow edited on that branch: the workflow on the default branch (and its review) is bypassed.";

fn environment_findings(client: &Client<'_>, name: &str) -> Vec<Finding> {
    const CHECK: &str = "github-environment";
    let location = settings_page(Some(client.remote), "environments");
    let path = client.repo_path(&format!("/environments/{}", encode_segment(name)));
    let environment: Environment = match client.get(&path, "the repository's environments", ACTIONS) {
        Ok(environment) => environment,
        Err(GithubError::NotFound { .. }) => {
            return vec![finding(
                CHECK,
                Severity::High,
                format!("the job names environment {name}, which does not exist, so nothing gates it"),
                location,
                "GitHub creates a missing environment on the job's first run, with no protection rules: the publish job runs without anyone's approval.",
                &format!("Create environment {name} in the repository's settings with required reviewers (Settings → Environments → New environment)."),
            )]
        }
        Err(error) => {
            return vec![unknown(
                CHECK,
                &format!("whether environment {name} exists and requires reviewers"),
                &error.to_string(),
                location,
                fix_for(&error),
            )]
        }
    };
    let mut findings = Vec::new();
    let reviewers = environment
        .protection_rules
        .iter()
        .find(|rule| rule.kind == "required_reviewers" && !rule.reviewers.is_empty());
    match reviewers {
        None => findings.push(finding(
            CHECK,
            Severity::High,
            format!("environment {name} is saved without its reviewers: nothing asks for approval before the publish job runs"),
            location.clone(),
            "Anyone who can start the workflow (a terminal with your credentials pushing a tag or a branch) publishes without a second person or a second device approving it.",
            &format!("Add required reviewers to environment {name} (Settings → Environments → {name} → Required reviewers) and tick 'Prevent self-review'."),
        )),
        Some(rule) => {
            let count = rule.reviewers.len();
            let plural = if count == 1 { "" } else { "s" };
            if rule.prevent_self_review == Some(true) {
                findings.push(finding(
                    CHECK,
                    Severity::Info,
                    format!("environment {name} requires approval by one of {count} reviewer{plural}, not the one who started the run"),
                    location.clone(),
                    "The publish job waits for a reviewer's approval on GitHub.",
                    "Nothing to do.",
                ));
            } else {
                findings.push(finding(
                    CHECK,
                    Severity::Medium,
                    format!("environment {name} lets the reviewer approve their own run ({count} reviewer{plural}, self-review allowed)"),
                    location.clone(),
                    "Whoever starts the publish run can approve it: with your credentials (and a session of yours on github.com), a compromised terminal can approve its own release.",
                    &format!("Tick 'Prevent self-review' in environment {name}'s settings, with a second reviewer."),
                ));
            }
        }
    }
    match environment.deployment_branch_policy {
        None => findings.push(finding(
            CHECK,
            Severity::Medium,
            format!("environment {name} can be deployed from any branch"),
            location,
            ANY_BRANCH,
            &format!("Limit environment {name} to protected branches, or to selected branches and tags (Deployment branches and tags)."),
        )),
        Some(policy) if !policy.protected_branches && policy.custom_branch_policies => {
            findings.push(custom_branch_policy_finding(client, name, location));
        }
        Some(policy) => {
            let from = if policy.protected_branches {
                "protected branches only"
            } else {
                "branches its policy selects"
            };
            findings.push(finding(
                CHECK,
                Severity::Info,
                format!("environment {name} deploys from {from}"),
                location,
                ONLY_SELECTED_BRANCHES,
                "Nothing to do.",
            ));
        }
    }
    findings
}

/// An environment deployed from selected branches and tags: which ones
/// (`GET .../environments/{name}/deployment-branch-policies`); a branch pattern matching every
/// branch is no policy at all.
fn custom_branch_policy_finding(client: &Client<'_>, name: &str, location: String) -> Finding {
    const CHECK: &str = "github-environment";
    let path = client.repo_path(&format!(
        "/environments/{}/deployment-branch-policies?per_page=100",
        encode_segment(name)
    ));
    let policies: BranchPolicies = match client.get(
        &path,
        "the environment's deployment branch policies",
        ACTIONS,
    ) {
        Ok(policies) => policies,
        Err(error) => {
            return unknown(
                CHECK,
                &format!("which branches and tags may deploy to environment {name}"),
                &error.to_string(),
                location,
                fix_for(&error),
            )
        }
    };
    let every_branch = policies.branch_policies.iter().find(|policy| {
        policy.kind.as_deref() != Some("tag") && matches!(policy.name.as_str(), "*" | "**")
    });
    if let Some(policy) = every_branch {
        return finding(
            CHECK,
            Severity::Medium,
            format!("environment {name} can be deployed from any branch (its policy allows branch '{}')", policy.name),
            location,
            ANY_BRANCH,
            &format!("Replace the '{}' pattern of environment {name} with the release branches or tags only.", policy.name),
        );
    }
    let selected: Vec<String> = policies
        .branch_policies
        .iter()
        .map(|policy| {
            format!(
                "{} ({})",
                policy.name,
                policy.kind.as_deref().unwrap_or("branch")
            )
        })
        .collect();
    finding(
        CHECK,
        Severity::Info,
        format!(
            "environment {name} deploys from selected branches and tags: {}",
            selected.join(", ")
        ),
        location,
        ONLY_SELECTED_BRANCHES,
        "Nothing to do.",
    )
}

fn default_branch_findings(client: &Client<'_>, branch: &str) -> Vec<Finding> {
    const CHECK: &str = "github-default-branch";
    let location = settings_page(Some(client.remote), "branches");
    let question = format!("whether the default branch {branch} requires pull requests");
    let branch_path = branch
        .split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/");
    let rules: Result<Vec<Rule>, GithubError> = client.get(
        &client.repo_path(&format!("/rules/branches/{branch_path}")),
        "the branch's rules",
        METADATA,
    );
    if let Ok(rules) = &rules {
        if rules.iter().any(|rule| rule.kind == "pull_request") {
            return vec![finding(
                CHECK,
                Severity::Info,
                format!("the default branch {branch} requires a pull request (ruleset)"),
                location,
                "A push to the default branch from a terminal is refused; changes, the release workflow's included, go through a pull request.",
                "Nothing to do.",
            )];
        }
    }
    let protection: Result<BranchProtection, GithubError> = client.get(
        &client.repo_path(&format!("/branches/{branch_path}/protection")),
        "the branch protection",
        ADMINISTRATION,
    );
    let classic_unprotected = match protection {
        Ok(protection) if protection.required_pull_request_reviews.is_some() => {
            let mut findings = vec![finding(
                CHECK,
                Severity::Info,
                format!("the default branch {branch} requires a pull request (branch protection)"),
                location.clone(),
                "A push to the default branch from a terminal is refused; changes go through a pull request.",
                "Nothing to do.",
            )];
            if protection
                .enforce_admins
                .is_some_and(|admins| !admins.enabled)
            {
                findings.push(finding(
                    CHECK,
                    Severity::Medium,
                    format!("administrators can push to {branch} without a pull request"),
                    location,
                    "The branch protection does not apply to administrators: a terminal with a maintainer's credentials can still change the release workflow itself.",
                    &format!("Tick 'Do not allow bypassing the above settings' in {branch}'s branch protection, or use a ruleset with no bypass."),
                ));
            }
            return findings;
        }
        Ok(_) => Ok(()),
        Err(GithubError::NotFound { message, .. }) if message == "Branch not protected" => Ok(()),
        Err(error) => Err(error),
    };
    match (rules, classic_unprotected) {
        (Ok(_), Ok(())) => vec![finding(
            CHECK,
            Severity::High,
            format!("a push to {branch} needs no pull request: a terminal with your credentials can change the release workflow itself"),
            location,
            "Neither a ruleset nor branch protection requires a pull request on the default branch: whoever holds your credentials can push a changed publish workflow and run it.",
            &format!("Add a ruleset for {branch} with 'Require a pull request before merging' (Settings → Rules → Rulesets), with no bypass for your own account."),
        )],
        (Err(error), _) | (_, Err(error)) => vec![unknown(
            CHECK,
            &question,
            &error.to_string(),
            location,
            fix_for(&error),
        )],
    }
}

fn tag_findings(client: &Client<'_>, tag_triggered: bool) -> Finding {
    const CHECK: &str = "github-release-tags";
    let location = settings_page(Some(client.remote), "rules");
    let question = "whether release tags are protected";
    let rulesets = match tag_rulesets(client) {
        Ok(rulesets) => rulesets,
        Err(error) => {
            return unknown(
                CHECK,
                question,
                &error.to_string(),
                location,
                fix_for(&error),
            )
        }
    };
    let creation_guarded = rulesets.iter().find(|ruleset| {
        includes_some_ref(ruleset) && ruleset.rules.iter().any(|rule| rule.kind == "creation")
    });
    if let Some(ruleset) = creation_guarded {
        let kinds: Vec<&str> = ruleset
            .rules
            .iter()
            .map(|rule| rule.kind.as_str())
            .collect();
        return finding(
            CHECK,
            Severity::Info,
            format!(
                "tags are protected by ruleset '{}' ({}: {})",
                ruleset.name,
                included_refs(ruleset),
                kinds.join(", ")
            ),
            location,
            "Creating a matching tag is restricted, so a push from a terminal cannot start a tag-triggered release.",
            "Nothing to do.",
        );
    }
    let severity = if tag_triggered {
        Severity::Medium
    } else {
        Severity::Low
    };
    let partly = rulesets
        .first()
        .map(|ruleset| {
            format!(
                " (ruleset '{}' guards {} but not their creation)",
                ruleset.name,
                included_refs(ruleset)
            )
        })
        .unwrap_or_default();
    finding(
        CHECK,
        severity,
        format!("no ruleset restricts creating release tags{partly}"),
        location,
        "Anyone who can push (a terminal with your credentials) can push a new tag, and a publish job triggered by tags runs for it.",
        "Add a tag ruleset (Settings → Rules → Rulesets → New tag ruleset) targeting the release tags (e.g. v*) with 'Restrict creations', 'Restrict updates' and 'Restrict deletions'.",
    )
}

/// The active tag rulesets with their rules and conditions.
fn tag_rulesets(client: &Client<'_>) -> Result<Vec<Ruleset>, GithubError> {
    const WHAT: &str = "the repository's rulesets";
    let listed: Vec<Ruleset> = client.get(
        &client.repo_path("/rulesets?includes_parents=true&per_page=100"),
        WHAT,
        METADATA,
    )?;
    let mut rulesets = Vec::new();
    for summary in listed {
        if summary
            .target
            .as_deref()
            .is_some_and(|target| target != "tag")
        {
            continue;
        }
        let ruleset: Ruleset = client.get(
            &client.repo_path(&format!("/rulesets/{}?includes_parents=true", summary.id)),
            WHAT,
            METADATA,
        )?;
        if ruleset.target.as_deref() == Some("tag") && ruleset.enforcement == "active" {
            rulesets.push(ruleset);
        }
    }
    Ok(rulesets)
}

/// The ruleset's conditions include at least one ref pattern.
fn includes_some_ref(ruleset: &Ruleset) -> bool {
    ruleset
        .conditions
        .as_ref()
        .and_then(|conditions| conditions.ref_name.as_ref())
        .is_some_and(|ref_name| !ref_name.include.is_empty())
}

/// `refs/tags/v*` or `all tags` (`~ALL`), as a ruleset's conditions say.
fn included_refs(ruleset: &Ruleset) -> String {
    let include: Vec<&str> = ruleset
        .conditions
        .iter()
        .filter_map(|conditions| conditions.ref_name.as_ref())
        .flat_map(|ref_name| ref_name.include.iter())
        .map(|pattern| {
            if pattern == "~ALL" {
                "all tags"
            } else {
                pattern.as_str()
            }
        })
        .collect();
    if include.is_empty() {
        "no tags".to_string()
    } else {
        include.join(", ")
    }
}

#[cfg(test)]
mod tests;

//! (stub) GitHub's settings for the release path: replaced by the online implementation.
use crate::{Finding, Severity};

/// owner/name of a github.com repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub owner: String,
    pub name: String,
}

/// What the online check needs: the API base URL (https://api.github.com, or the
/// KEEPOUT_GITHUB_API environment variable for tests) and the token. Never printed.
pub struct Api {
    pub base: String,
    pub token: secrecy::SecretString,
}

/// The findings about GitHub's settings for these publish jobs' environments and the default
/// branch. `api: None` (no token) gives one Info finding per question, "unknown: needs a token".
pub fn settings_findings(
    api: Option<&Api>,
    remote: Option<&Remote>,
    environments: &[String],
) -> Vec<Finding> {
    let _ = api;
    let location = match remote {
        Some(r) => format!("github.com/{}/{}", r.owner, r.name),
        None => "GitHub's settings".to_string(),
    };
    let envs = match environments {
        [] => "the publish jobs' environments exist and require".to_string(),
        [one] => format!("the environment `{one}` exists and requires"),
        more => format!(
            "the environments {} exist and require",
            more.iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let unknown = |check: &'static str, title: String, why: &str| Finding {
        check,
        severity: Severity::Info,
        title,
        location: location.clone(),
        why: why.into(),
        fix: "Give a read-only token (--token) to check it, or look in the repository's settings."
            .into(),
        fix_command: None,
    };
    vec![
        unknown(
            "environment-reviewers",
            format!("whether {envs} reviewers: unknown: needs a token"),
            "An environment gates a publish job only if it requires a reviewer; one saved without reviewers asks no one.",
        ),
        unknown(
            "branch-protection",
            "whether the default branch requires pull requests: unknown: needs a token".into(),
            "Without a rule, a push from a compromised laptop changes the workflows and the code that is released.",
        ),
        unknown(
            "tag-protection",
            "whether release tags are protected: unknown: needs a token".into(),
            "A tag push starts most release workflows: whoever can push a tag can start a release.",
        ),
    ]
}

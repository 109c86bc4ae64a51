//! The release path and the offline checks of `keepout audit --repo`, from the workflows read
//! by `workflow` and the CODEOWNERS file: pure functions of those, so every rule is tested on
//! fixture text.
//!
//! Guarantees: every publishing job is in the release path, also when nothing is wrong with it,
//! with the jobs of reusable workflows counted for the workflows that call them; each finding
//! names its `file:line`; the severities are issue 17's (high: a long-lived publish token, a
//! publish job nothing gates, code from a pull request or an issue run with the workflow's
//! token; medium: unpinned third-party actions in publish jobs, write permissions beyond what a
//! job needs, caches in release jobs, `persist-credentials`, no CODEOWNERS over the workflows;
//! info: what cannot be known offline).

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::finding;
use super::lines::SourceLines;
use super::workflow::{secrets_in, Job, Perms, Step, Workflow};
use crate::{Finding, Severity};

/// How a publishing job authenticates to where it publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Auth {
    /// OIDC (`id-token: write`), no long-lived secret.
    TrustedPublishing,
    /// A long-lived token from the repository's secrets.
    Token,
    /// The run's own `GITHUB_TOKEN` (GitHub releases, ghcr.io).
    GithubToken,
    /// Nothing the workflow shows.
    Unknown,
}

impl Auth {
    pub fn describe(self) -> &'static str {
        match self {
            Auth::TrustedPublishing => "trusted publishing (OIDC, id-token: write)",
            Auth::Token => "a long-lived token from the repository's secrets",
            Auth::GithubToken => "the run's own GITHUB_TOKEN",
            Auth::Unknown => "nothing the workflow shows",
        }
    }
}

/// One job that publishes, as `--json`'s `release_path` gives it (docs/audit.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseJob {
    /// `.github/workflows/release.yml:23`: the job's key.
    pub location: String,
    pub workflow: String,
    pub job: String,
    /// Where it publishes to: `PyPI (pypa/gh-action-pypi-publish)`.
    pub publishes: Vec<String>,
    /// Who can start it, one line per trigger (the callers' for a reusable workflow).
    pub triggers: Vec<String>,
    pub auth: Auth,
    /// The secrets it is given (never their values: offline there are none to see).
    pub secrets: Vec<String>,
    /// The `environment:` it runs in, where required reviewers may gate it.
    pub environment: Option<String>,
    /// Its `if:` (a condition, not a gate: whoever can push a matching ref meets it).
    pub condition: Option<String>,
    /// The jobs it needs (they run first and feed it).
    pub needs: Vec<String>,
    /// The jobs that call its workflow, for a reusable workflow.
    pub called_from: Vec<String>,
}

/// Contexts that whoever opens an issue, a pull request or a comment writes.
static ATTACKER_CONTEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"github\.event\.(?:issue\.(?:title|body)|pull_request\.(?:title|body|head\.ref|head\.label)|comment\.body|review\.body|review_comment\.body|pages\S*?\.page_name|commits\S*?\.(?:message|author\.(?:email|name))|head_commit\.(?:message|author\.\w+)|workflow_run\.(?:head_branch|head_commit\.[\w.]+)|discussion\.(?:title|body))|github\.head_ref",
    )
    .expect("a valid pattern")
});

static EXPRESSION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{\{(.*?)\}\}").expect("a valid pattern"));

/// Refs that are a pull request's code, in `actions/checkout`'s `ref:` or a `run:`.
static PR_HEAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"github\.event\.pull_request\.head\.(?:sha|ref)|github\.head_ref|refs/pull/|github\.event\.workflow_run\.head_(?:sha|branch|commit)|gh\s+pr\s+checkout|git\s+fetch\s+\S+\s+pull/",
    )
    .expect("a valid pattern")
});

/// The token scopes that can change what is released: write to them and a job can push
/// code, move tags, edit releases and packages or start other workflows (`issues: write` or
/// `pull-requests: write` for a triage bot cannot).
const RELEASE_SCOPES: &[&str] = &[
    "write-all",
    "contents",
    "packages",
    "actions",
    "deployments",
];

fn release_writes(perms: &Perms) -> Vec<String> {
    perms
        .writes()
        .into_iter()
        .filter(|w| RELEASE_SCOPES.contains(&w.as_str()))
        .collect()
}

/// The secrets a publishing job gives its publishing (its publish steps' inputs and
/// environment, its registry logins, the job's and the workflow's `env:`).
fn publish_secrets(wf: &Workflow, job: &Job) -> Vec<String> {
    let mut text = String::new();
    for (_, v) in wf.env.iter().chain(&job.env) {
        text.push_str(v);
        text.push('\n');
    }
    let login = |s: &Step| s.uses_slug("docker/login-action");
    for s in job
        .steps
        .iter()
        .filter(|s| s.publishes.is_some() || login(s))
    {
        for (_, v) in s.with.iter().chain(&s.env) {
            text.push_str(v);
            text.push('\n');
        }
        if let Some(run) = &s.run {
            text.push_str(run);
        }
    }
    let mut secrets = secrets_in(&text);
    secrets.extend(
        job.passes_secrets
            .iter()
            .filter(|s| *s != "inherit")
            .cloned(),
    );
    secrets.dedup();
    secrets
}

fn auth_of(wf: &Workflow, job: &Job, secrets: &[String]) -> Auth {
    if !secrets.is_empty() {
        Auth::Token
    } else if wf.effective(job).id_token() {
        Auth::TrustedPublishing
    } else if job
        .publishes()
        .iter()
        .all(|p| p.starts_with("a GitHub release") || p.starts_with("a container image"))
    {
        Auth::GithubToken
    } else {
        Auth::Unknown
    }
}

/// `./.github/workflows/x.yml` as a path in the repository, for a local reusable workflow.
fn local_workflow(calls: &str) -> Option<&str> {
    calls
        .strip_prefix("./")
        .filter(|p| p.starts_with(".github/workflows/"))
}

/// Each job that publishes, in the order of the workflows and their jobs.
pub fn release_path(workflows: &[Workflow]) -> Vec<ReleaseJob> {
    let mut path = Vec::new();
    for wf in workflows {
        for job in wf.jobs.iter().filter(|j| !j.publishes().is_empty()) {
            let secrets = publish_secrets(wf, job);
            let mut triggers = Vec::new();
            let mut called_from = Vec::new();
            for caller in workflows {
                for cj in caller.jobs.iter() {
                    if cj.calls.as_deref().and_then(local_workflow) == Some(wf.path.as_str()) {
                        called_from.push(format!("{} (job {})", caller.at(cj.line), cj.key));
                        triggers.extend(caller.triggers.described.iter().cloned());
                    }
                }
            }
            if !wf.triggers.only_called || called_from.is_empty() {
                triggers.extend(wf.triggers.described.iter().cloned());
            }
            triggers.dedup();
            path.push(ReleaseJob {
                location: wf.at(job.line),
                workflow: wf.path.clone(),
                job: job.key.clone(),
                publishes: job.publishes(),
                triggers,
                auth: auth_of(wf, job, &secrets),
                secrets,
                environment: job.environment.clone(),
                condition: job.condition.clone(),
                needs: job.needs.clone(),
                called_from,
            });
        }
    }
    path
}

/// The jobs of `wf` a release depends on: those that publish and those they need, at any depth.
fn release_jobs(wf: &Workflow) -> Vec<&str> {
    let mut jobs: Vec<&str> = wf
        .jobs
        .iter()
        .filter(|j| !j.publishes().is_empty())
        .map(|j| j.key.as_str())
        .collect();
    let mut i = 0;
    while i < jobs.len() {
        if let Some(job) = wf.job(jobs[i]) {
            for need in &job.needs {
                if !jobs.contains(&need.as_str()) {
                    jobs.push(need);
                }
            }
        }
        i += 1;
    }
    jobs
}

/// The offline findings about the workflows and the release path.
pub fn workflow_findings(workflows: &[Workflow], release: &[ReleaseJob]) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in release {
        let Some(wf) = workflows.iter().find(|w| w.path == r.workflow) else {
            continue;
        };
        let src = SourceLines::new(&wf.text);
        let Some(job) = wf.job(&r.job) else {
            continue;
        };
        let job_end = src.block_end(job.line);
        for secret in &r.secrets {
            let line = src
                .containing(job.line, job_end, secret)
                .or_else(|| src.containing(1, src.end(), secret))
                .unwrap_or(job.line);
            out.push(finding(
                "publish-token",
                Severity::High,
                format!("job `{}` publishes with the long-lived secret {secret}", r.job),
                wf.at(line),
                "A long-lived token works from anywhere, not only from this workflow: whoever can run a workflow in this repository (a pushed branch, a tag, a dispatch from a laptop's token) or read it once can publish with it, until it is revoked.",
                "Use trusted publishing (PyPI, crates.io, npm and RubyGems take OIDC: `id-token: write` and no token), then delete the secret and revoke the token.",
            ));
        }
        if r.environment.is_none() {
            let cond = r
                .condition
                .as_ref()
                .map(|c| format!(" (its `if: {c}` is a condition, not a gate)"))
                .unwrap_or_default();
            out.push(finding(
                "publish-ungated",
                Severity::High,
                format!("job `{}` publishes and nothing gates it{cond}", r.job),
                r.location.clone(),
                "Without an `environment:` no one is asked before it publishes: whoever can start it (a tag pushed from a compromised laptop, a dispatch with its token) publishes a release.",
                "Run it in an environment (`environment: release`) that requires a reviewer other than the pusher, and allow only that environment in the registry's trusted publisher.",
            ));
        }
    }
    for wf in workflows {
        if let Some((why, line)) = &wf.error {
            out.push(finding(
                "workflow-unreadable",
                Severity::Medium,
                "a workflow could not be read: the release path may be incomplete".into(),
                wf.at(*line),
                &format!("It does not parse as a GitHub Actions workflow ({why}); what it would do is not in this report."),
                "Fix the file (GitHub refuses to run it as it is), or remove it.",
            ));
            continue;
        }
        check_workflow(wf, &mut out);
    }
    out
}

/// The checks of one workflow that do not depend on the others.
fn check_workflow(wf: &Workflow, out: &mut Vec<Finding>) {
    let src = SourceLines::new(&wf.text);
    let release = release_jobs(wf);
    let mut pr_code_jobs: Vec<&str> = Vec::new();
    for job in &wf.jobs {
        if let Some(calls) = job.calls.as_deref().filter(|c| local_workflow(c).is_none()) {
            out.push(finding(
                "remote-workflow",
                Severity::Info,
                format!("job `{}` calls `{calls}`, a workflow of another repository", job.key),
                wf.at(job.line),
                "What it does (and whether it publishes, with the secrets passed to it) is in that repository, not in this report.",
                "Audit that repository too, and pin the call to a commit (`@<sha>`).",
            ));
        }
        let before = out.len();
        for step in &job.steps {
            out.extend(untrusted_checkout(wf, job, step));
            template_injections(wf, &src, job, step, out);
        }
        if out.len() > before {
            pr_code_jobs.push(&job.key);
        }
        let in_release = release.contains(&job.key.as_str());
        for step in &job.steps {
            action_findings(wf, job, step, in_release, out);
        }
    }
    check_permissions(wf, &pr_code_jobs, out);
}

/// `untrusted-checkout`: a `pull_request_target` or `workflow_run` step that checks out or
/// fetches the pull request's code, or takes the triggering run's artifacts.
fn untrusted_checkout(wf: &Workflow, job: &Job, step: &Step) -> Option<Finding> {
    if !(wf.triggers.pull_request_target || wf.triggers.workflow_run) {
        return None;
    }
    let checkout = step.uses_slug("actions/checkout");
    let head = step
        .with_value("ref")
        .filter(|r| checkout && PR_HEAD.is_match(r))
        .or_else(|| {
            let run = step.run.as_deref()?;
            run.lines()
                .find(|l| PR_HEAD.is_match(l) && (l.contains("git ") || l.contains("gh pr")))
        });
    let artifact = wf.triggers.workflow_run
        && (step.uses_slug("dawidd6/action-download-artifact")
            || (step.uses_slug("actions/download-artifact")
                && step.with_value("run-id").is_some()));
    if head.is_none() && !artifact {
        return None;
    }
    let what = if artifact {
        "uses the artifacts of the run that triggered it"
    } else {
        "checks out the pull request's code"
    };
    let event = if wf.triggers.pull_request_target {
        "pull_request_target"
    } else {
        "workflow_run"
    };
    Some(finding(
        "untrusted-checkout",
        Severity::High,
        format!("job `{}` {what} in a {event} workflow", job.key),
        wf.at(step.line),
        &format!("A {event} workflow runs with the repository's secrets and a token that can write, for a pull request anyone can open: its code (a build script, a test, a changed action, an artifact it made) then runs with them."),
        "Run the pull request's code in a `pull_request` workflow (no secrets, a read-only token); keep pull_request_target and workflow_run jobs to labelling and commenting, without checking out or running what the pull request brought.",
    ))
}

/// `template-injection`: each `${{ }}` of a `run:` that expands text an outsider writes.
fn template_injections(
    wf: &Workflow,
    src: &SourceLines,
    job: &Job,
    step: &Step,
    out: &mut Vec<Finding>,
) {
    let Some(run) = &step.run else {
        return;
    };
    // A fork's pull request runs a `pull_request` workflow without secrets and with a
    // read-only token: still its text, but not with credentials.
    let severity = if wf.triggers.only_pull_request {
        Severity::Medium
    } else {
        Severity::High
    };
    for expr in EXPRESSION.captures_iter(run) {
        let inner = expr.get(1).map_or("", |m| m.as_str());
        let Some(ctx) = ATTACKER_CONTEXT.find(inner) else {
            continue;
        };
        let line = src
            .containing(step.start, step.end, inner)
            .unwrap_or(step.line);
        out.push(finding(
            "template-injection",
            severity,
            format!("job `{}` expands `{}` into a shell script", job.key, ctx.as_str()),
            wf.at(line),
            "Whoever writes that text (an issue's or a pull request's title, a branch name, a comment) writes shell commands: `${{ }}` is pasted into the script before it runs, with the job's token and secrets.",
            "Pass it through an environment variable (`env: TITLE: ${{ ... }}`, then \"$TITLE\" in the script), never `${{ }}` inside `run:`.",
        ));
    }
}

/// The findings about the action a step uses: `unpinned-action` in a publishing job,
/// `release-cache` on the release path (`in_release`), `persist-credentials` where the token
/// can publish or write.
fn action_findings(
    wf: &Workflow,
    job: &Job,
    step: &Step,
    in_release: bool,
    out: &mut Vec<Finding>,
) {
    let Some(action) = &step.action else {
        return;
    };
    let publishes = !job.publishes().is_empty();
    if publishes && !action.first_party() && !action.pinned() {
        out.push(finding(
            "unpinned-action",
            Severity::Medium,
            format!("job `{}` publishes and uses `{}`, not pinned to a commit", job.key, action.raw),
            wf.at(step.line),
            "A tag or branch can be moved by whoever controls that action's repository: the next release runs their code with this job's publishing credentials.",
            "Pin it to the full 40-character commit SHA (`uses: owner/action@<sha> # v1.2.3`), and let Dependabot or Renovate update it.",
        ));
    }
    let cache = action.slug == "actions/cache"
        || action.slug == "swatinem/rust-cache"
        || (action.slug.starts_with("actions/setup-")
            && step
                .with_value("cache")
                .is_some_and(|c| !c.is_empty() && c != "false"));
    if cache && in_release {
        out.push(finding(
            "release-cache",
            Severity::Medium,
            format!("job `{}` restores a cache on the release path (`{}`)", job.key, action.raw),
            wf.at(step.line),
            "Caches are shared with other workflows of the repository, pull requests' included: a poisoned cache becomes part of the release.",
            "Build releases without caches (remove it, or `cache: false` / `lookup-only` in release jobs).",
        ));
    }
    let writes = !release_writes(&wf.effective(job)).is_empty();
    if step.uses_slug("actions/checkout")
        && (publishes || writes)
        && step.with_value("persist-credentials") != Some("false")
    {
        out.push(finding(
            "persist-credentials",
            Severity::Medium,
            format!("job `{}` checks out with its token left in .git/config", job.key),
            wf.at(step.line),
            "actions/checkout writes the job's token into .git/config by default: every later step (a build script, a dependency's install hook) can read it and push with it.",
            "Add `with: persist-credentials: false` to actions/checkout.",
        ));
    }
}

/// Workflow-wide permissions that reach jobs which do not need them.
fn check_permissions(wf: &Workflow, pr_code_jobs: &[&str], out: &mut Vec<Finding>) {
    let at = wf.at(wf.permissions_line.unwrap_or(1));
    let inheriting: Vec<&Job> = wf
        .jobs
        .iter()
        .filter(|j| j.permissions == Perms::Unset && j.calls.is_none())
        .collect();
    let names = |jobs: &[&Job]| {
        jobs.iter()
            .map(|j| format!("`{}`", j.key))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let non_publishing: Vec<&Job> = inheriting
        .iter()
        .copied()
        .filter(|j| j.publishes().is_empty())
        .collect();
    if wf.permissions.id_token() && !non_publishing.is_empty() {
        let pr: Vec<&Job> = non_publishing
            .iter()
            .copied()
            .filter(|j| pr_code_jobs.contains(&j.key.as_str()))
            .collect();
        let (severity, jobs, why) = if pr.is_empty() {
            (Severity::Medium, &non_publishing, "An OIDC token is what trusted publishing accepts: every job that can mint one can publish, if the registry's trusted publisher does not also name the environment.")
        } else {
            (Severity::High, &pr, "These jobs run code from a pull request or an issue, and can mint an OIDC token with it: that token is what trusted publishing accepts.")
        };
        out.push(finding(
            "id-token-write",
            severity,
            format!("workflow-wide `id-token: write` reaches {}", names(jobs)),
            at.clone(),
            why,
            "Grant `id-token: write` on the publishing job only (job-level `permissions:`), and `permissions: {}` or `contents: read` at the top of the workflow.",
        ));
    }
    let writes = release_writes(&wf.permissions);
    if !writes.is_empty() && !non_publishing.is_empty() {
        out.push(finding(
            "excess-permissions",
            Severity::Medium,
            format!(
                "workflow-wide write permissions ({}) reach {}, which do not publish",
                writes.join(", "),
                names(&non_publishing)
            ),
            at,
            "Every step of those jobs (tests, linters, their dependencies) gets a token that can write to the repository: push a commit, move a tag, edit a release.",
            "Set `permissions: contents: read` at the top of the workflow and grant writes on the jobs that need them.",
        ));
    }
    for job in &wf.jobs {
        if job.permissions == Perms::WriteAll && job.publishes().is_empty() {
            out.push(finding(
                "excess-permissions",
                Severity::Medium,
                format!("job `{}` has `permissions: write-all` and does not publish", job.key),
                wf.at(job.line),
                "Every step of the job gets a token that can write everything the repository's token can.",
                "Grant only the scopes it uses (`contents: read`, `pull-requests: write`, ...).",
            ));
        }
    }
    if wf.permissions == Perms::Unset && !inheriting.is_empty() {
        out.push(finding(
            "permissions-default",
            Severity::Info,
            format!(
                "{} {} with the repository's default token permissions (unknown offline)",
                names(&inheriting),
                if inheriting.len() == 1 { "runs" } else { "run" }
            ),
            wf.at(1),
            "Without `permissions:`, the token's scopes are the repository's setting, which may be read and write for everything (the default of older repositories).",
            "Write `permissions: contents: read` at the top of the workflow, and grant more per job.",
        ));
    }
}

/// Whether the CODEOWNERS text gives `.github/workflows/` owners (the last matching pattern
/// decides, as on GitHub; a pattern with no owner takes ownership away).
pub fn codeowners_cover_workflows(text: &str) -> bool {
    let mut covered = false;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        let Some(pattern) = words.next() else {
            continue;
        };
        let has_owner = words.next().is_some();
        let p = pattern.trim_start_matches('/');
        let matches = matches!(
            p,
            "*" | "**"
                | "**/*"
                | ".github"
                | ".github/"
                | ".github/**"
                | ".github/workflows"
                | ".github/workflows/"
                | ".github/workflows/*"
                | ".github/workflows/**"
        );
        if matches {
            covered = has_owner;
        }
    }
    covered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codeowners_cover_the_workflows_by_the_last_matching_pattern() {
        assert!(codeowners_cover_workflows("* @alice\n"));
        assert!(codeowners_cover_workflows(
            "/.github/workflows/ @org/release\n"
        ));
        assert!(!codeowners_cover_workflows("*.rs @alice\n/docs/ @bob\n"));
        assert!(
            !codeowners_cover_workflows("* @alice\n/.github/\n"),
            "unowned again"
        );
        assert!(!codeowners_cover_workflows("# * @alice\n"));
        assert!(
            !codeowners_cover_workflows(".github/* @alice\n"),
            "only files directly in .github"
        );
    }

    /// The findings of one workflow as `severity check line`.
    fn checked(text: &str) -> Vec<String> {
        let wf = Workflow::parse(".github/workflows/w.yml", text);
        let mut out = Vec::new();
        check_workflow(&wf, &mut out);
        out.iter()
            .map(|f| format!("{} {} {}", f.severity.as_str(), f.check, f.location))
            .collect()
    }

    #[test]
    fn injection_in_a_pull_request_only_workflow_is_medium_and_high_elsewhere() {
        let run = "permissions:\n  contents: read\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo \"${{ github.head_ref }}\"\n";
        assert_eq!(
            checked(&format!("on: pull_request\n{run}")),
            ["medium template-injection .github/workflows/w.yml:8"],
            "a fork's pull request gets no secrets and a read-only token"
        );
        assert_eq!(
            checked(&format!("on: [pull_request, pull_request_target]\n{run}")),
            ["high template-injection .github/workflows/w.yml:8"]
        );
        assert_eq!(
            checked(&format!(
                "on: push\n{}",
                run.replace("github.head_ref", "github.event.head_commit.message")
            )),
            ["high template-injection .github/workflows/w.yml:8"],
            "a merged pull request's commit message, on a push with secrets"
        );
    }

    #[test]
    fn without_permissions_the_default_is_info_and_write_all_on_a_job_is_medium() {
        let jobs = "jobs:\n  a:\n    runs-on: x\n    steps:\n      - run: make\n  b:\n    runs-on: x\n    permissions: write-all\n    steps:\n      - run: make\n";
        assert_eq!(
            checked(&format!("on: push\n{jobs}")),
            [
                "medium excess-permissions .github/workflows/w.yml:7",
                "info permissions-default .github/workflows/w.yml:1",
            ]
        );
        let wf = Workflow::parse("w.yml", &format!("on: push\n{jobs}"));
        let mut out = Vec::new();
        check_workflow(&wf, &mut out);
        assert_eq!(
            out[1].title,
            "`a` runs with the repository's default token permissions (unknown offline)"
        );
    }

    #[test]
    fn attacker_contexts_are_the_ones_whoever_opens_an_issue_writes() {
        for yes in [
            "github.event.issue.title",
            "github.event.pull_request.head.ref",
            "github.event.comment.body",
            "github.event.pages[0].page_name",
            "github.event.commits[0].author.email",
            "github.event.head_commit.message",
            "github.head_ref",
            "github.event.workflow_run.head_commit.author.name",
        ] {
            assert!(ATTACKER_CONTEXT.is_match(yes), "{yes}");
        }
        for no in [
            "github.event.pull_request.number",
            "inputs.version",
            "github.ref_name",
            "github.sha",
        ] {
            assert!(!ATTACKER_CONTEXT.is_match(no), "{no}");
        }
    }
}

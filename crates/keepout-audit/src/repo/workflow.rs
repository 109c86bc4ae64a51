//! One workflow file, read: parsed by github-actions-models into its schema, then described as
//! what the release-path checks need — who can start it, each job's permissions, environment,
//! `needs:` and steps, and for each step what it publishes and which secrets it is given — each
//! with its `file:line`.
//!
//! Guarantees: a file that does not parse is kept as [`Workflow::error`] with the line the parser
//! names (never a panic, never silently dropped); nothing here decides severities (that is
//! `checks`); a step is said to publish only by the actions and commands listed in [`PUBLISH_ACTIONS`]
//! and [`PUBLISH_COMMANDS`], so a new registry is one line there.

use std::sync::LazyLock;

use github_actions_models::common::expr::LoE;
use github_actions_models::common::{BasePermission, Env, If, Permission, Permissions, Uses};
use github_actions_models::workflow::event::{BranchFilters, OptionalBody, TagFilters};
use github_actions_models::workflow::job::{NormalJob, Step as ModelStep};
use github_actions_models::workflow::{self as model, Job as ModelJob};
use regex::Regex;

use super::lines::SourceLines;

/// Actions that publish: `owner/repo` (lower-case), and what they publish to.
pub const PUBLISH_ACTIONS: &[(&str, &str)] = &[
    ("pypa/gh-action-pypi-publish", "PyPI"),
    ("rust-lang/crates-io-auth-action", "crates.io"),
    ("softprops/action-gh-release", "a GitHub release"),
    ("ncipollo/release-action", "a GitHub release"),
    ("goreleaser/goreleaser-action", "releases (goreleaser)"),
    ("js-devtools/npm-publish", "npm"),
];

/// Commands in `run:` that publish, and to where (matched as words, not in `--dry-run` lines).
pub const PUBLISH_COMMANDS: &[(&str, &str)] = &[
    (r"\btwine\s+upload\b", "PyPI (twine upload)"),
    (r"\bcargo\s+publish\b", "crates.io (cargo publish)"),
    (r"\b(yarn\s+npm|pnpm|npm)\s+publish\b", "npm (npm publish)"),
    (r"\bgem\s+push\b", "RubyGems (gem push)"),
    (
        r"\bgh\s+release\s+(upload|create)\b",
        "a GitHub release (gh release)",
    ),
    (r"\bdocker\s+push\b", "a container image (docker push)"),
    (r"\bpoetry\s+publish\b", "PyPI (poetry publish)"),
    (r"\buv\s+publish\b", "PyPI (uv publish)"),
    (r"\bhatch\s+publish\b", "PyPI (hatch publish)"),
    (r"\bflit\s+publish\b", "PyPI (flit publish)"),
    (r"\bmaturin\s+(publish|upload)\b", "PyPI (maturin)"),
    (r"\bgoreleaser\s+release\b", "releases (goreleaser)"),
];

static PUBLISH_REGEXES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    PUBLISH_COMMANDS
        .iter()
        .map(|(re, what)| (Regex::new(re).expect("a valid pattern"), *what))
        .collect()
});

/// `secrets.NAME` (also `secrets['NAME']`) inside an expression.
static SECRET_REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"secrets\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*\])"#,
    )
    .expect("a valid pattern")
});

/// The secrets `text` names, in order, each once (`GITHUB_TOKEN` is the run's own token).
pub fn secrets_in(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for c in SECRET_REF.captures_iter(text) {
        let name = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
        if !name.eq_ignore_ascii_case("GITHUB_TOKEN") && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// The token permissions of a workflow or job as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Perms {
    /// No `permissions:`: the repository's default (unknown offline), or the workflow's.
    Unset,
    ReadAll,
    WriteAll,
    /// `scope: read|write|none`, as written.
    Explicit(Vec<(String, bool)>),
}

impl Perms {
    fn of(p: &Permissions) -> Perms {
        match p {
            Permissions::Base(BasePermission::Default) => Perms::Unset,
            Permissions::Base(BasePermission::ReadAll) => Perms::ReadAll,
            Permissions::Base(BasePermission::WriteAll) => Perms::WriteAll,
            Permissions::Explicit(map) => Perms::Explicit(
                map.iter()
                    .map(|(k, v)| (k.clone(), *v == Permission::Write))
                    .collect(),
            ),
        }
    }

    /// The scopes it grants write to (`write-all` is `["write-all"]`).
    pub fn writes(&self) -> Vec<String> {
        match self {
            Perms::WriteAll => vec!["write-all".into()],
            Perms::Explicit(scopes) => scopes
                .iter()
                .filter(|(_, w)| *w)
                .map(|(k, _)| k.clone())
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn id_token(&self) -> bool {
        match self {
            Perms::WriteAll => true,
            Perms::Explicit(scopes) => scopes.iter().any(|(k, w)| k == "id-token" && *w),
            _ => false,
        }
    }
}

/// What starts a workflow.
#[derive(Debug, Clone, Default)]
pub struct Triggers {
    /// One line each: `push of tags v*`, `workflow_dispatch (anyone with write access)`.
    pub described: Vec<String>,
    pub pull_request_target: bool,
    pub workflow_run: bool,
    pub workflow_call: bool,
    /// Only `workflow_call`: it runs when another workflow calls it.
    pub only_called: bool,
    /// Only `pull_request`: a fork's pull request runs it without secrets and with a
    /// read-only token.
    pub only_pull_request: bool,
}

/// An action a step uses.
#[derive(Debug, Clone)]
pub struct Action {
    /// As written: `pypa/gh-action-pypi-publish@release/v1`, `./.github/workflows/x.yml`.
    pub raw: String,
    /// `owner/repo`, lower-case; empty for local and docker actions.
    pub slug: String,
    pub owner: String,
    /// The `@ref`; the digest (`sha256:…`) for a docker image, empty when there is none.
    pub git_ref: String,
    pub local: bool,
    pub docker: bool,
}

impl Action {
    fn of(uses: &Uses) -> Action {
        let mut action = Action {
            raw: uses.raw().to_string(),
            slug: String::new(),
            owner: String::new(),
            git_ref: String::new(),
            local: false,
            docker: false,
        };
        match uses {
            Uses::Repository(r) => {
                action.slug = r.slug().to_ascii_lowercase();
                action.owner = r.owner().to_ascii_lowercase();
                action.git_ref = r.git_ref().to_string();
            }
            Uses::Local(_) => action.local = true,
            Uses::Docker(d) => {
                action.docker = true;
                action.git_ref = d.hash().unwrap_or("").to_string();
            }
        }
        action
    }

    /// `actions/` and `github/` are GitHub's own; everything else is a third party's.
    pub fn first_party(&self) -> bool {
        self.local || self.owner == "actions" || self.owner == "github"
    }

    /// Pinned to a full 40-hex commit (or, for an image, a digest).
    pub fn pinned(&self) -> bool {
        if self.docker {
            return !self.git_ref.is_empty();
        }
        self.local
            || (self.git_ref.len() == 40 && self.git_ref.bytes().all(|b| b.is_ascii_hexdigit()))
    }
}

/// One step of a job.
#[derive(Debug, Clone)]
pub struct Step {
    /// The line of its `uses:` or `run:` (else its first line).
    pub line: usize,
    /// Its lines, `[start, end)`.
    pub start: usize,
    pub end: usize,
    pub action: Option<Action>,
    pub run: Option<String>,
    /// `with:` as text values.
    pub with: Vec<(String, String)>,
    /// `env:` as text values.
    pub env: Vec<(String, String)>,
    /// Where it publishes to, when it does.
    pub publishes: Option<String>,
}

impl Step {
    pub fn with_value(&self, key: &str) -> Option<&str> {
        self.with
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn uses_slug(&self, slug: &str) -> bool {
        self.action.as_ref().is_some_and(|a| a.slug == slug)
    }
}

/// One job of a workflow.
#[derive(Debug, Clone)]
pub struct Job {
    pub key: String,
    /// The line of its key under `jobs:`.
    pub line: usize,
    /// Its permissions as written on the job (`Unset`: the workflow's apply).
    pub permissions: Perms,
    pub environment: Option<String>,
    /// Its `if:`, when it has one.
    pub condition: Option<String>,
    pub needs: Vec<String>,
    pub env: Vec<(String, String)>,
    pub steps: Vec<Step>,
    /// A reusable workflow it calls (`uses:` at job level), as written.
    pub calls: Option<String>,
    /// The secrets it passes to the workflow it calls (`inherit` is `["inherit"]`).
    pub passes_secrets: Vec<String>,
}

impl Job {
    /// Where it publishes to: each distinct target of its steps.
    pub fn publishes(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for what in self.steps.iter().filter_map(|s| s.publishes.clone()) {
            if !all.contains(&what) {
                all.push(what);
            }
        }
        all
    }
}

/// One workflow file.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// Relative to the repository: `.github/workflows/release.yml`.
    pub path: String,
    pub triggers: Triggers,
    pub permissions: Perms,
    /// The line of the top-level `permissions:`, when there is one.
    pub permissions_line: Option<usize>,
    pub env: Vec<(String, String)>,
    pub jobs: Vec<Job>,
    /// Why it could not be read, and the line the parser names.
    pub error: Option<(String, usize)>,
    /// Its text, for finding lines.
    pub text: String,
}

impl Workflow {
    pub fn job(&self, key: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.key == key)
    }

    /// `path:line`.
    pub fn at(&self, line: usize) -> String {
        format!("{}:{line}", self.path)
    }

    /// The permissions `job` runs with: its own, else the workflow's.
    pub fn effective(&self, job: &Job) -> Perms {
        match job.permissions {
            Perms::Unset => self.permissions.clone(),
            ref own => own.clone(),
        }
    }

    /// Read a workflow from its text (`path` is how it is shown).
    pub fn parse(path: &str, text: &str) -> Workflow {
        let mut wf = Workflow {
            path: path.to_string(),
            triggers: Triggers::default(),
            permissions: Perms::Unset,
            permissions_line: None,
            env: Vec::new(),
            jobs: Vec::new(),
            error: None,
            text: text.to_string(),
        };
        let parsed: model::Workflow = match yaml_serde::from_str(text) {
            Ok(w) => w,
            Err(e) => {
                let line = e.location().map_or(1, |l| l.line().max(1));
                wf.error = Some((e.to_string(), line));
                return wf;
            }
        };
        let src = SourceLines::new(text);
        wf.triggers = triggers(&parsed.on.events);
        wf.permissions = Perms::of(&parsed.permissions);
        wf.permissions_line = src.top_key("permissions");
        wf.env = env_text(&parsed.env);
        for (key, job) in &parsed.jobs {
            let line = src.job(key).unwrap_or(1);
            wf.jobs.push(match job {
                ModelJob::NormalJob(j) => normal_job(key, line, j, &src),
                ModelJob::ReusableWorkflowCallJob(j) => Job {
                    key: key.clone(),
                    line,
                    permissions: Perms::of(&j.permissions),
                    environment: None,
                    condition: j.r#if.as_ref().map(if_text),
                    needs: j.needs.clone(),
                    env: Vec::new(),
                    steps: Vec::new(),
                    calls: Some(j.uses.raw().to_string()),
                    passes_secrets: match &j.secrets {
                        None => Vec::new(),
                        Some(model::job::Secrets::Inherit) => vec!["inherit".into()],
                        Some(model::job::Secrets::Env(env)) => env
                            .values()
                            .flat_map(|v| secrets_in(&v.to_string()))
                            .collect(),
                    },
                },
            });
        }
        wf
    }
}

fn if_text(c: &If) -> String {
    match c {
        If::Bool(b) => b.to_string(),
        If::Expr(e) => e.clone(),
    }
}

fn env_text(env: &LoE<Env>) -> Vec<(String, String)> {
    match env {
        LoE::Literal(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
        LoE::Expr(e) => vec![(String::new(), e.as_curly().to_string())],
    }
}

fn normal_job(key: &str, line: usize, j: &NormalJob, src: &SourceLines) -> Job {
    let starts = src.steps(line);
    let job_end = src.block_end(line);
    let mut steps = Vec::new();
    for (i, step) in j.steps.iter().enumerate() {
        let start = starts.get(i).copied().unwrap_or(line);
        let end = starts.get(i + 1).copied().unwrap_or(job_end);
        let (action, run, with, env) = match step {
            ModelStep::Uses(u) => (
                Some(Action::of(&u.uses)),
                None,
                env_text(&u.with),
                env_text(&u.shared.env),
            ),
            ModelStep::Run(r) => (
                None,
                Some(r.run.clone()),
                Vec::new(),
                env_text(&r.shared.env),
            ),
            _ => (None, None, Vec::new(), Vec::new()),
        };
        let key_line = if action.is_some() { "uses" } else { "run" };
        let mut step = Step {
            line: src.key_line(start, end, key_line).unwrap_or(start),
            start,
            end,
            action,
            run,
            with,
            env,
            publishes: None,
        };
        step.publishes = publish_target(&step);
        steps.push(step);
    }
    Job {
        key: key.to_string(),
        line,
        permissions: Perms::of(&j.permissions),
        environment: j.environment.as_ref().map(|e| match e {
            model::job::DeploymentEnvironment::Name(n) => n.clone(),
            model::job::DeploymentEnvironment::NameURL { name, .. } => name.clone(),
        }),
        condition: j.r#if.as_ref().map(if_text),
        needs: j.needs.clone(),
        env: env_text(&j.env),
        steps,
        calls: None,
        passes_secrets: Vec::new(),
    }
}

/// Where `step` publishes to, if it does.
fn publish_target(step: &Step) -> Option<String> {
    if let Some(action) = &step.action {
        if let Some((slug, what)) = PUBLISH_ACTIONS.iter().find(|(s, _)| *s == action.slug) {
            return Some(format!("{what} ({slug})"));
        }
        if action.slug == "docker/build-push-action" {
            let push = step.with_value("push").unwrap_or("false");
            return (push != "false")
                .then(|| "a container image (docker/build-push-action)".into());
        }
        return None;
    }
    let run = step.run.as_deref()?;
    run.lines()
        .filter(|l| !l.contains("--dry-run") && !l.trim_start().starts_with('#'))
        .find_map(|l| {
            PUBLISH_REGEXES
                .iter()
                .find(|(re, _)| re.is_match(l))
                .map(|(_, what)| what.to_string())
        })
}

/// Who can start a workflow, one line per trigger.
fn triggers(events: &model::event::Events) -> Triggers {
    let mut t = Triggers::default();
    let mut say = |s: String| t.described.push(s);
    let filters = |tags: &Option<TagFilters>, branches: &Option<BranchFilters>| {
        let mut parts = Vec::new();
        match tags {
            Some(TagFilters::Tags(v)) => parts.push(format!("tags {}", v.join(", "))),
            Some(TagFilters::TagsIgnore(v)) => parts.push(format!("tags but {}", v.join(", "))),
            None => {}
        }
        match branches {
            Some(BranchFilters::Branches(v)) => parts.push(format!("branches {}", v.join(", "))),
            Some(BranchFilters::BranchesIgnore(v)) => {
                parts.push(format!("branches but {}", v.join(", ")))
            }
            None => {}
        }
        parts
    };
    match &events.push {
        OptionalBody::Missing => {}
        OptionalBody::Default => say("a push to any branch or tag (anyone who can push)".into()),
        OptionalBody::Body(p) => {
            let parts = filters(&p.tag_filters, &p.branch_filters);
            let parts = if parts.is_empty() {
                "any branch or tag".to_string()
            } else {
                parts.join("; ")
            };
            say(format!("a push of {parts} (anyone who can push)"));
        }
    }
    let types = |v: &[String]| {
        if v.is_empty() {
            String::new()
        } else {
            format!(" {}", v.join(", "))
        }
    };
    match &events.release {
        OptionalBody::Missing => {}
        OptionalBody::Default => say("a release (anyone who can create one)".into()),
        OptionalBody::Body(b) => say(format!(
            "a release{} (anyone who can create one)",
            types(&b.types)
        )),
    }
    if events.workflow_dispatch.is_present() {
        say("workflow_dispatch (anyone with write access, or a token of theirs)".into());
    }
    if events.repository_dispatch.is_present() {
        say("repository_dispatch (any token with write access to the repository)".into());
    }
    if let OptionalBody::Body(crons) = &events.schedule {
        let crons: Vec<&str> = crons.iter().map(|c| c.cron.as_str()).collect();
        say(format!("schedule {}", crons.join(", ")));
    }
    if events.pull_request_target.is_present() {
        t.pull_request_target = true;
        say(
            "pull_request_target (anyone who opens a pull request, with the base's secrets)".into(),
        );
    }
    if events.pull_request.is_present() {
        say("pull_request".into());
    }
    if events.workflow_run.is_present() {
        t.workflow_run = true;
        let after = match &events.workflow_run {
            OptionalBody::Body(r) => format!(" after {}", r.workflows.join(", ")),
            _ => String::new(),
        };
        say(format!(
            "workflow_run{after} (can follow a pull request's run)"
        ));
    }
    for (present, name) in [
        (events.issues.is_present(), "issues"),
        (events.issue_comment.is_present(), "issue_comment"),
        (
            events.pull_request_review.is_present(),
            "pull_request_review",
        ),
        (
            events.pull_request_review_comment.is_present(),
            "pull_request_review_comment",
        ),
        (events.discussion.is_present(), "discussion"),
        (events.discussion_comment.is_present(), "discussion_comment"),
        (events.create.is_present(), "create"),
        (events.merge_group.is_present(), "merge_group"),
    ] {
        if present {
            say(name.into());
        }
    }
    if events.workflow_call.is_present() {
        t.workflow_call = true;
        say("workflow_call (another workflow calls it)".into());
    }
    t.only_called = t.workflow_call && events.count() == 1;
    t.only_pull_request = events.pull_request.is_present() && events.count() == 1;
    if t.described.is_empty() {
        t.described.push("other events".into());
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_named_once_without_the_runs_own_token() {
        assert_eq!(
            secrets_in("${{ secrets.PYPI_TOKEN }} ${{ secrets['NPM'] }} ${{ secrets.GITHUB_TOKEN }} ${{secrets.PYPI_TOKEN}}"),
            ["PYPI_TOKEN", "NPM"]
        );
    }

    #[test]
    fn publishing_commands_are_found_but_not_dry_runs_or_comments() {
        let step = |run: &str| Step {
            line: 1,
            start: 1,
            end: 2,
            action: None,
            run: Some(run.into()),
            with: Vec::new(),
            env: Vec::new(),
            publishes: None,
        };
        for (run, what) in [
            ("python -m twine upload dist/*", Some("PyPI (twine upload)")),
            ("cargo publish --dry-run", None),
            ("# cargo publish", None),
            (
                "cargo build\ncargo publish -p foo",
                Some("crates.io (cargo publish)"),
            ),
            ("pnpm publish --access public", Some("npm (npm publish)")),
            (
                "gh release create v1 dist/*",
                Some("a GitHub release (gh release)"),
            ),
            ("uv publish", Some("PyPI (uv publish)")),
            ("maturin upload target/wheels/*", Some("PyPI (maturin)")),
            ("npm test", None),
        ] {
            assert_eq!(publish_target(&step(run)).as_deref(), what, "{run}");
        }
    }

    #[test]
    fn pinned_means_a_full_commit() {
        let wf = Workflow::parse(
            "w.yml",
            "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: a/b@v1\n      - uses: a/b@0123456789abcdef0123456789abcdef01234567\n      - uses: actions/checkout@v4\n",
        );
        let steps = &wf.jobs[0].steps;
        let a = |i: usize| steps[i].action.as_ref().unwrap();
        assert!(!a(0).pinned() && !a(0).first_party());
        assert!(a(1).pinned());
        assert!(a(2).first_party());
        assert_eq!(steps.iter().map(|s| s.line).collect::<Vec<_>>(), [6, 7, 8]);
    }
}

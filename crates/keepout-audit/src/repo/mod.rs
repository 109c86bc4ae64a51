//! `keepout audit --repo [DIR]`: can someone with my laptop's credentials publish a release?
//! The repository's release path (each job that publishes, what starts it, how it
//! authenticates, what gates it) and the findings about it, from `.github/workflows/*.y*ml`,
//! CODEOWNERS and the repository's git config, offline; GitHub's settings (environments'
//! reviewers, branch and tag rules) come from [`github`], which offline says "unknown: needs a
//! token"; `--zizmor` adds zizmor's findings.
//!
//! Guarantees: the release path is always reported, also when nothing is wrong, and "no job
//! publishes" when none does; a directory outside any git repository is
//! [`RepoError::NotARepository`] (exit status 2), never an empty report; a workflow that does
//! not parse is a finding, never a panic or a silent gap; nothing here uses the network or
//! runs anything but `git config` (and zizmor when asked).

mod checks;
pub mod github;
mod lines;
mod workflow;
mod zizmor;

use std::fmt::Write;
use std::path::{Path, PathBuf};

pub use checks::{codeowners_cover_workflows, Auth, ReleaseJob};
pub use github::Remote;

use crate::{Finding, Severity};

/// A finding of the repository audit (none has a command `--fix` could run).
fn finding(
    check: &'static str,
    severity: Severity,
    title: String,
    location: String,
    why: &str,
    fix: &str,
) -> Finding {
    Finding {
        check,
        severity,
        title,
        location,
        why: why.into(),
        fix: fix.into(),
        fix_command: None,
    }
}

/// Why the repository cannot be audited.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{} is not in a git repository: run it inside one, or give its directory (keepout audit --repo DIR)", .0.display())]
    NotARepository(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--zizmor: zizmor is not installed (not on PATH): install it with `pipx install zizmor` or `cargo install zizmor`, or leave out --zizmor")]
    ZizmorMissing,
    #[error("--zizmor: zizmor failed: {0}")]
    ZizmorRun(String),
    #[error("zizmor's output is not the JSON keepout reads ({0}); is it zizmor 1.0 or later?")]
    ZizmorOutput(String),
    #[error("--token {0}: give keepout:NAME (a secret in keepout's vault, e.g. keepout:github/audit) or gh (what `gh auth token` prints)")]
    TokenSource(String),
    #[error("--token gh: `gh auth token` gave no token ({0}); log in with `gh auth login`, or store a read-only token in the vault and give --token keepout:NAME")]
    GhToken(String),
}

/// Where `--token SOURCE` takes the GitHub token from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `keepout:NAME`: the secret NAME in keepout's vault (the caller reads it).
    Vault(String),
    /// `gh`: what `gh auth token` prints.
    Gh,
}

impl TokenSource {
    pub fn parse(source: &str) -> Result<TokenSource, RepoError> {
        match source.strip_prefix("keepout:") {
            Some(name) if !name.is_empty() => Ok(TokenSource::Vault(name.to_string())),
            None if source == "gh" => Ok(TokenSource::Gh),
            _ => Err(RepoError::TokenSource(source.to_string())),
        }
    }
}

/// The token `gh auth token` prints (gh's own login), never shown.
pub fn gh_token() -> Result<secrecy::SecretString, RepoError> {
    let out = std::process::Command::new("gh")
        .args(["auth", "token"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| RepoError::GhToken(e.to_string()))?;
    let token = String::from_utf8(out.stdout).unwrap_or_default();
    let token = token.trim();
    if !out.status.success() || token.is_empty() {
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(RepoError::GhToken(if said.is_empty() {
            format!("exit status {}", out.status)
        } else {
            said
        }));
    }
    Ok(secrecy::SecretString::from(token.to_string()))
}

/// What `keepout audit --repo` was asked for.
#[derive(Debug, Default)]
pub struct RepoOptions {
    /// Run zizmor and add its findings.
    pub zizmor: bool,
    /// The GitHub token for the online checks (`--token SOURCE`, resolved by the caller: see
    /// [`TokenSource`]); never printed.
    pub token: Option<secrecy::SecretString>,
}

/// One audit of one repository.
#[derive(Debug, Clone)]
pub struct RepoAudit {
    /// The top of the repository (the directory holding `.git`).
    pub root: PathBuf,
    /// `origin` on github.com, when it is there.
    pub remote: Option<Remote>,
    /// How many workflow files were read.
    pub workflows: usize,
    pub release_path: Vec<ReleaseJob>,
    /// Worst first.
    pub findings: Vec<Finding>,
    /// zizmor's findings were added.
    pub zizmor: bool,
}

/// The top of the git repository `dir` is in: the nearest directory at or above it with `.git`.
pub fn repository_root(dir: &Path) -> Result<PathBuf, RepoError> {
    let dir = std::path::absolute(dir).map_err(|source| RepoError::Unreadable {
        path: dir.to_path_buf(),
        source,
    })?;
    if let Err(source) = std::fs::read_dir(&dir) {
        return Err(RepoError::Unreadable { path: dir, source });
    }
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
        .ok_or(RepoError::NotARepository(dir))
}

/// owner/name from a github.com remote URL (`https://github.com/o/n(.git)`,
/// `git@github.com:o/n(.git)`, `ssh://git@github.com/o/n`).
pub fn parse_remote(url: &str) -> Option<Remote> {
    let url = url.trim();
    let rest = ["https://", "http://", "ssh://", "git://"]
        .iter()
        .find_map(|p| url.strip_prefix(p))
        .map(|r| {
            let r = r.rsplit_once('@').map_or(r, |(_, host)| host);
            r.strip_prefix("github.com/")
                .or_else(|| r.strip_prefix("github.com:22/"))
        })
        .unwrap_or_else(|| url.strip_prefix("git@github.com:"))?;
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    let (owner, name) = rest.split_once('/')?;
    (!owner.is_empty() && !name.is_empty() && !name.contains('/')).then(|| Remote {
        owner: owner.to_string(),
        name: name.to_string(),
    })
}

/// `origin`'s URL, by `git config` (which knows worktrees and includes); none without git.
fn origin_url(root: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["config", "--get", "remote.origin.url"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The workflow files, sorted by name.
fn read_workflows(root: &Path) -> Result<Vec<workflow::Workflow>, RepoError> {
    let dir = root.join(".github/workflows");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(RepoError::Unreadable { path: dir, source }),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|name| {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path)
                .map_err(|source| RepoError::Unreadable { path, source })?;
            Ok(workflow::Workflow::parse(
                &format!(".github/workflows/{name}"),
                &text,
            ))
        })
        .collect()
}

/// The CODEOWNERS finding: none, or one that does not cover `.github/workflows/`.
fn codeowners_finding(root: &Path) -> Option<Finding> {
    let found = ["CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS"]
        .iter()
        .find_map(|rel| crate::read_small(&root.join(rel)).map(|text| (*rel, text)));
    let (location, title) = match &found {
        Some((rel, text)) if !codeowners_cover_workflows(text) => (
            rel.to_string(),
            format!("{rel} gives .github/workflows/ no owner"),
        ),
        Some(_) => return None,
        None => (
            ".github/".to_string(),
            "no CODEOWNERS file: no one must review changes to the workflows".to_string(),
        ),
    };
    Some(finding(
        "codeowners",
        Severity::Medium,
        title,
        location,
        "A change to a workflow changes what publishes and with which credentials; with code owners and a branch rule requiring their review, it cannot go in from one compromised account.",
        "Add `/.github/workflows/ @you-or-your-release-team` to .github/CODEOWNERS and require code owners' review on the default branch.",
    ))
}

impl RepoAudit {
    /// Audit the repository `dir` is in (the current directory when `None`).
    pub fn of(dir: Option<&Path>, options: &RepoOptions) -> Result<RepoAudit, RepoError> {
        let start = match dir {
            Some(d) => d.to_path_buf(),
            None => std::env::current_dir().map_err(|source| RepoError::Unreadable {
                path: PathBuf::from("."),
                source,
            })?,
        };
        let root = repository_root(&start)?;
        let remote = origin_url(&root).as_deref().and_then(parse_remote);
        let api = options.token.clone().map(github::Api::new);
        let mut audit = RepoAudit::of_root_with(root, remote, api.as_ref())?;
        if options.zizmor {
            audit.findings.extend(zizmor::run(&audit.root)?);
            audit.zizmor = true;
            crate::sort_worst_first(&mut audit.findings);
        }
        Ok(audit)
    }

    /// Audit the repository at `root`, offline, with `remote` as its origin.
    pub fn of_root(root: PathBuf, remote: Option<Remote>) -> Result<RepoAudit, RepoError> {
        RepoAudit::of_root_with(root, remote, None)
    }

    /// [`RepoAudit::of_root`], with GitHub's settings read through `api` when given.
    pub fn of_root_with(
        root: PathBuf,
        remote: Option<Remote>,
        api: Option<&github::Api>,
    ) -> Result<RepoAudit, RepoError> {
        let workflows = read_workflows(&root)?;
        let release_path = checks::release_path(&workflows);
        let mut findings = checks::workflow_findings(&workflows, &release_path);
        findings.extend(codeowners_finding(&root));
        let mut environments: Vec<String> = release_path
            .iter()
            .filter_map(|r| r.environment.clone())
            .collect();
        environments.dedup();
        // A release is made from a tag: either starts the job when a tag is pushed.
        let tag_triggered = release_path.iter().any(|job| {
            job.triggers
                .iter()
                .any(|t| t.contains("tag") || t.contains("release"))
        });
        findings.extend(github::release_path_findings(
            api,
            remote.as_ref(),
            github::ReleasePath {
                environments: &environments,
                tag_triggered,
            },
        ));
        crate::sort_worst_first(&mut findings);
        Ok(RepoAudit {
            root,
            remote,
            workflows: workflows.len(),
            release_path,
            findings,
            zizmor: false,
        })
    }

    /// 1 when a finding is at least `fail_on`, else 0.
    pub fn exit_status(&self, fail_on: Severity) -> i32 {
        i32::from(self.findings.iter().any(|f| f.severity >= fail_on))
    }

    /// What `keepout audit --repo` prints: the JSON (with a final newline) or the text.
    pub fn printed(&self, json: bool) -> serde_json::Result<String> {
        crate::report::printed(json, || self.json(), || self.text())
    }

    /// The report for people: the release path, then the findings worst first.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let remote = self
            .remote
            .as_ref()
            .map(|r| format!(" (github.com/{}/{})", r.owner, r.name))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "keepout audit --repo: {}{remote}, {} workflow file{}{}\n",
            self.root.display(),
            self.workflows,
            if self.workflows == 1 { "" } else { "s" },
            if self.zizmor {
                ", with zizmor's findings"
            } else {
                ""
            }
        );
        if self.release_path.is_empty() {
            let _ = writeln!(
                out,
                "Release path: no job publishes (nothing in .github/workflows uploads to a registry or makes a release).\n"
            );
        } else {
            let n = self.release_path.len();
            let _ = writeln!(
                out,
                "Release path: {n} job{} publish{}\n",
                if n == 1 { "" } else { "s" },
                if n == 1 { "es" } else { "" }
            );
        }
        for r in &self.release_path {
            let _ = writeln!(out, "  {}  job `{}`", r.location, r.job);
            let _ = writeln!(out, "      publishes:     {}", r.publishes.join("; "));
            let _ = writeln!(out, "      started by:    {}", r.triggers.join("; "));
            for caller in &r.called_from {
                let _ = writeln!(out, "      called from:   {caller}");
            }
            let secrets = if r.secrets.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.secrets.join(", "))
            };
            let _ = writeln!(out, "      authenticates: {}{secrets}", r.auth.describe());
            let gate = match &r.environment {
                Some(env) => {
                    format!("environment `{env}` (its reviewers: GitHub's settings, below)")
                }
                None => "nothing (no environment)".to_string(),
            };
            let _ = writeln!(out, "      gated by:      {gate}");
            if let Some(c) = &r.condition {
                let _ = writeln!(out, "      if:            {c}");
            }
            if !r.needs.is_empty() {
                let _ = writeln!(out, "      after:         {}", r.needs.join(", "));
            }
            let _ = writeln!(out);
        }
        crate::report::write_findings(&mut out, &self.findings, &self.root.display().to_string());
        out
    }

    /// The report for scripts (`--json`, docs/audit.md), without the final newline.
    pub fn json(&self) -> serde_json::Result<String> {
        #[derive(serde::Serialize)]
        struct Report<'a> {
            version: u32,
            repository: &'a Path,
            remote: Option<String>,
            workflows: usize,
            zizmor: bool,
            release_path: &'a [ReleaseJob],
            findings: &'a [Finding],
        }
        serde_json::to_string_pretty(&Report {
            version: 1,
            repository: &self.root,
            remote: self
                .remote
                .as_ref()
                .map(|r| format!("{}/{}", r.owner, r.name)),
            workflows: self.workflows,
            zizmor: self.zizmor,
            release_path: &self.release_path,
            findings: &self.findings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes_on_github_are_owner_and_name() {
        let r = |o: &str, n: &str| {
            Some(Remote {
                owner: o.into(),
                name: n.into(),
            })
        };
        assert_eq!(
            parse_remote("https://github.com/pypa/sampleproject.git"),
            r("pypa", "sampleproject")
        );
        assert_eq!(
            parse_remote("https://github.com/pypa/sampleproject"),
            r("pypa", "sampleproject")
        );
        assert_eq!(
            parse_remote("git@github.com:rust-lang/cargo.git"),
            r("rust-lang", "cargo")
        );
        assert_eq!(parse_remote("ssh://git@github.com/o/n"), r("o", "n"));
        assert_eq!(
            parse_remote("https://x-access-token@github.com/o/n/"),
            r("o", "n")
        );
        assert_eq!(parse_remote("https://gitlab.com/o/n.git"), None);
        assert_eq!(parse_remote("git@github.com:o"), None);
        assert_eq!(parse_remote("/srv/git/n.git"), None);
    }

    #[test]
    fn the_root_is_the_nearest_directory_with_git_and_outside_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        let err = repository_root(&deep).unwrap_err();
        // (a tempdir under a repository would find it; /tmp is under none here)
        if let RepoError::NotARepository(d) = &err {
            assert_eq!(d, &deep);
            assert!(
                err.to_string().contains("keepout audit --repo DIR"),
                "{err}"
            );
        }
        std::fs::create_dir(dir.path().join("a/.git")).unwrap();
        assert_eq!(repository_root(&deep).unwrap(), dir.path().join("a"));
        assert!(matches!(
            repository_root(&dir.path().join("missing")),
            Err(RepoError::Unreadable { .. })
        ));
    }
}

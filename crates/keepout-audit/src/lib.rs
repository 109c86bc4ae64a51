//! keepout audit: what any program run by the user could steal or hijack today, and the fix.
//!
//! The audit reads known places and small dotfiles under one home (and the current project),
//! never the whole disk, so it is fast on any home. It never reports a secret's value: a token is
//! shown by its first four characters and a short SHA-256 fingerprint.
//!
//! Everything it looks at comes from a [`Context`], so tests point it at a fixture home and a
//! fixture environment; the probes that run programs (`sudo -n true`, `ssh-add -l`) run only when
//! [`Context::probe`] is set.
//!
//! [`HomeAudit`] is `keepout audit` whole: the inputs, the findings, the two reports, the exit
//! status and the fixes it may run.
//!
//! [`RepoAudit`] is `keepout audit --repo` whole: the repository's release path and its
//! findings ([`repo`]).
//!
//! [`git_setup`] is what `keepout git setup` writes into the global git config, the fix of the
//! `git-setup` finding.

mod files;
mod git;
pub mod git_setup;
mod machine;
mod privilege;
pub mod repo;
mod report;
mod ssh;
mod system;
mod token_scope;
mod tokens;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use machine::InputsError;
pub use repo::{gh_token, RepoAudit, RepoError, RepoOptions, TokenSource};
pub use report::{fixes, report_json, report_text, Fix, FixError, FixProgram, HomeAudit};

/// How bad a finding is. Ordered: `Critical` is the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn parse(text: &str) -> Option<Severity> {
        Some(match text {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One thing found. Field names are stable (they are `keepout audit --json`'s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which check: `plaintext-credentials`, `ssh-key-unencrypted`, `ssh-key-permissions`,
    /// `ssh-agent-unconfirmed`, `ssh-forward-agent`, `token`, `privilege`, `path-writable`,
    /// `git-global-hook`, `git-credential-store`, `git-setup`, `system-credentials`; the
    /// repository audit's (`--repo`, docs/audit.md): `publish-token`, `publish-ungated`,
    /// `untrusted-checkout`, `template-injection`, `id-token-write`, `unpinned-action`,
    /// `excess-permissions`, `release-cache`, `persist-credentials`, `codeowners`,
    /// `workflow-unreadable`, `permissions-default`, `remote-workflow`, `zizmor`, and GitHub's
    /// settings: `github-environment`, `github-default-branch`, `github-release-tags`,
    /// `github-settings`.
    pub check: &'static str,
    pub severity: Severity,
    /// One line: what was found.
    pub title: String,
    /// Where: a path (with `:LINE` where there is one), `environment`, or `groups`.
    pub location: String,
    /// Why it matters.
    pub why: String,
    /// What to do.
    pub fix: String,
    /// The command that fixes it, where there is one (`keepout audit --fix` runs these).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix_command: Option<String>,
}

/// What the audit looks at.
#[derive(Debug, Clone)]
pub struct Context {
    pub home: PathBuf,
    /// The current project (for `.env` files and `.git/config`), if any.
    pub project: Option<PathBuf>,
    /// The environment to scan for tokens and to read `PATH` and `SSH_AUTH_SOCK` from.
    pub env: Vec<(String, String)>,
    pub uid: u32,
    pub user: String,
    /// The names of the user's groups.
    pub groups: Vec<String>,
    /// Run probes (`sudo -n true`, `ssh-add -l`); off for fixture audits.
    pub probe: bool,
    /// keepout's own agent socket, which is not reported as an unconfirming agent.
    pub keepout_agent_socket: Option<PathBuf>,
    /// sudoers files to read for NOPASSWD rules (those readable: usually only root can).
    pub sudoers: Vec<PathBuf>,
    /// Where the system's files are (`/`), for the system-wide credential files of
    /// `keepout_credentials::system::CATALOGUE`; a fixture root in tests; `None`: not looked at
    /// (an audit of another home). The catalogue's places inside toolchains are looked for under
    /// [`Context::home`] either way.
    pub system_root: Option<PathBuf>,
}

/// `/etc/sudoers` and the files of `/etc/sudoers.d`.
pub fn system_sudoers() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("/etc/sudoers")];
    if let Ok(entries) = std::fs::read_dir("/etc/sudoers.d") {
        let mut more: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    files
}

impl Context {
    /// A context for auditing a fixture home in tests: that home alone, `PATH=/usr/bin:/bin`, a
    /// made-up user `alice` (uid 4242), no project, no probes, no sudoers, no system files.
    pub fn fixture(home: &Path) -> Context {
        Context {
            home: home.to_path_buf(),
            project: None,
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            uid: 4242,
            user: "alice".into(),
            groups: vec!["alice".into()],
            probe: false,
            keepout_agent_socket: None,
            sudoers: Vec::new(),
            system_root: None,
        }
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `~/REL` as a display string.
    fn show(&self, path: &Path) -> String {
        match path.strip_prefix(&self.home) {
            Ok(rest) => format!("~/{}", rest.display()),
            Err(_) => path.display().to_string(),
        }
    }
}

/// Run every check; the worst findings first.
pub fn audit(ctx: &Context) -> Vec<Finding> {
    let mut all = Vec::new();
    files::check(ctx, &mut all);
    ssh::check(ctx, &mut all);
    tokens::check(ctx, &mut all);
    privilege::check(ctx, &mut all);
    git::check(ctx, &mut all);
    system::check(ctx, &mut all);
    sort_worst_first(&mut all);
    all
}

/// Worst first, then by check, then by place: file, then line as a number (`:9` before `:10`).
fn sort_worst_first(findings: &mut [Finding]) {
    let place = |f: &Finding| match f.location.rsplit_once(':') {
        Some((file, line)) if line.parse::<usize>().is_ok() => {
            (file.to_string(), line.parse().unwrap_or(0))
        }
        _ => (f.location.clone(), 0usize),
    };
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.check.cmp(b.check))
            .then_with(|| place(a).cmp(&place(b)))
    });
}

/// A file's text, if it is a small regular file (dotfiles, not data).
fn read_small(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > 4 << 20 {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// One `key = value` of the user's global git config files.
struct GitConfigEntry {
    path: PathBuf,
    /// 1-based.
    line: usize,
    /// `core`, `credential`, `url "https://github.com/"` (section name lower-cased, the
    /// subsection as written).
    section: String,
    /// Lower-cased.
    key: String,
    value: String,
}

/// The entries of `~/.gitconfig` and `~/.config/git/config`.
fn global_git_config(ctx: &Context) -> Vec<GitConfigEntry> {
    let mut entries = Vec::new();
    for rel in [".gitconfig", ".config/git/config"] {
        let path = ctx.home.join(rel);
        let Some(text) = read_small(&path) else {
            continue;
        };
        let mut section = String::new();
        for (n, line) in text.lines().enumerate() {
            let l = line.trim();
            if let Some(header) = l.strip_prefix('[') {
                let header = header.trim_end_matches(']').trim();
                section = match header.split_once(char::is_whitespace) {
                    Some((name, sub)) => format!("{} {}", name.to_ascii_lowercase(), sub.trim()),
                    None => header.to_ascii_lowercase(),
                };
                continue;
            }
            let Some((key, value)) = l.split_once('=') else {
                continue;
            };
            entries.push(GitConfigEntry {
                path: path.clone(),
                line: n + 1,
                section: section.clone(),
                key: key.trim().to_ascii_lowercase(),
                value: value.trim().trim_matches('"').to_string(),
            });
        }
    }
    entries
}

//! Tokens by their published shapes, in the environment, shell rc files, shell history and git
//! config. A token is reported by kind, place and a redaction (first 4 characters and a short
//! SHA-256 fingerprint), never by value.

use std::sync::OnceLock;

use regex::Regex;
use sha2::{Digest, Sha256};

use crate::{read_small, Context, Finding, Severity};

/// (kind, pattern). Each pattern's match is the secret.
const PATTERNS: &[(&str, &str)] = &[
    (
        "GitHub token",
        r"\b(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{36}\b",
    ),
    (
        "GitHub fine-grained token",
        r"\bgithub_pat_[A-Za-z0-9_]{40,}\b",
    ),
    ("PyPI token", r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{20,}"),
    ("npm token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("crates.io token", r"\bcio[A-Za-z0-9]{32}\b"),
    ("GitLab token", r"\bglpat-[A-Za-z0-9_-]{20,}\b"),
    ("AWS access key id", r"\bAKIA[0-9A-Z]{16}\b"),
    ("Slack token", r"\bxox[bp]-[0-9A-Za-z-]{10,}"),
    ("private key block", r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
];

fn patterns() -> &'static [(&'static str, Regex)] {
    static COMPILED: OnceLock<Vec<(&'static str, Regex)>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        PATTERNS
            .iter()
            .map(|(kind, re)| (*kind, Regex::new(re).expect("valid pattern")))
            .collect()
    })
}

/// `ghp_…(sha256:1a2b3c4d)`: enough to recognise a token you know, useless to anyone else.
pub fn redact(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let head: String = secret.chars().take(4).collect();
    format!("{head}…(sha256:{hex})")
}

/// Every (kind, redacted) token in `text`, with its line number (1-based).
pub fn find(text: &str) -> Vec<(usize, &'static str, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for (kind, re) in patterns() {
            for m in re.find_iter(line) {
                let shown = if *kind == "private key block" {
                    "-----BEGIN … PRIVATE KEY-----".to_string()
                } else {
                    redact(m.as_str())
                };
                found.push((n + 1, *kind, shown));
            }
        }
    }
    found
}

const RC_FILES: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".profile",
    ".zshrc",
    ".zshenv",
    ".zprofile",
    ".config/fish/config.fish",
];
const HISTORY_FILES: &[&str] = &[
    ".bash_history",
    ".zsh_history",
    ".local/share/fish/fish_history",
    ".python_history",
    ".psql_history",
    ".mysql_history",
];
const GIT_CONFIGS: &[&str] = &[".gitconfig", ".config/git/config"];

pub fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for (name, value) in &ctx.env {
        for (_, kind, shown) in find(value) {
            out.push(Finding {
                check: "token",
                severity: Severity::High,
                title: format!("{kind} in the environment variable {name} ({shown})"),
                location: "environment".into(),
                why: "Every program started from this shell inherits it (test suites, build scripts, editors' plugins) and can send it anywhere.".into(),
                fix: format!("Unset {name}; keep the token in the vault and give it to the one command that needs it (`keepout exec`, or `kvars` for a while)."),
                fix_command: None,
            });
        }
    }
    let files = RC_FILES
        .iter()
        .map(|f| (f, "a shell startup file", "Move it into the vault; `keepout exec` or `kvars` gives it to the commands of one directory's scope."))
        .chain(HISTORY_FILES.iter().map(|f| (f, "shell history", "Delete those lines from the history, and revoke the token: it has been on disk in plain text.")))
        .chain(GIT_CONFIGS.iter().map(|f| (f, "git configuration", "Remove it from the git config; use keepout as git's credential helper.")));
    for (rel, what, fix) in files {
        let path = ctx.home.join(rel);
        let Some(text) = read_small(&path) else {
            continue;
        };
        for (line, kind, shown) in find(&text) {
            out.push(Finding {
                check: "token",
                severity: Severity::High,
                title: format!("{kind} in {what} ({shown})"),
                location: format!("{}:{line}", ctx.show(&path)),
                why: "Any program you run can read this file.".into(),
                fix: fix.into(),
                fix_command: None,
            });
        }
    }
    if let Some(project) = &ctx.project {
        let path = project.join(".git/config");
        if let Some(text) = read_small(&path) {
            for (line, kind, shown) in find(&text) {
                out.push(Finding {
                    check: "token",
                    severity: Severity::High,
                    title: format!("{kind} in the project's git configuration ({shown})"),
                    location: format!("{}:{line}", path.display()),
                    why: "Often a token in a remote URL (https://TOKEN@github.com/...): every tool run in the project can read it.".into(),
                    fix: "Remove the token from the remote URL (git remote set-url) and use keepout as git's credential helper.".into(),
                    fix_command: None,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_redaction() {
        let gh = format!("ghp_{}", "a1B2".repeat(9));
        let text =
            format!("export GITHUB_TOKEN={gh}\nnothing here ghp_short\nAKIAIOSFODNN7EXAMPLE\n");
        let found = find(&text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].0, found[0].1), (1, "GitHub token"));
        assert!(found[0].2.starts_with("ghp_…(sha256:") && !found[0].2.contains("a1B2"));
        assert_eq!((found[1].0, found[1].1), (3, "AWS access key id"));
        assert!(find("ciocio is a word; cio123").is_empty());
    }
}

//! Tokens by their published shapes (`keepout_credentials::tokens`, shared with the sandbox), in
//! the environment, shell rc files, shell history and git config. A token is reported by kind,
//! place, what it can do where the token itself says (a PyPI token's caveats, a GitHub token's
//! prefix: [`token_scope`]) and a fingerprint (first 4 characters and a short SHA-256 digest),
//! never by value.

use keepout_credentials::tokens::{find_secrets, FoundToken};

use crate::{read_small, token_scope, Context, Finding, Severity};

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
        for token in find_secrets(value) {
            out.push(token_finding(
                &token,
                &format!("the environment variable {name}"),
                "environment".into(),
                "Every program started from this shell inherits it (test suites, build scripts, editors' plugins) and can send it anywhere.",
                &format!("Unset {name}; keep the token in the vault and give it to the one command that needs it (`keepout exec`, or `kvars` for a while)."),
            ));
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
        for token in find_secrets(&text) {
            out.push(token_finding(
                &token,
                what,
                format!("{}:{}", ctx.show(&path), token.line),
                "Any program you run can read this file.",
                fix,
            ));
        }
    }
    if let Some(project) = &ctx.project {
        let path = project.join(".git/config");
        if let Some(text) = read_small(&path) {
            for token in find_secrets(&text) {
                out.push(token_finding(
                    &token,
                    "the project's git configuration",
                    format!("{}:{}", path.display(), token.line),
                    "Often a token in a remote URL (https://TOKEN@github.com/...): every tool run in the project can read it.",
                    "Remove the token from the remote URL (git remote set-url) and use keepout as git's credential helper.",
                ));
            }
        }
    }
}

/// The finding for one token found `place`: by its kind and what it can do
/// ([`token_scope::describe`]), and its fingerprint, never its value.
fn token_finding(
    token: &FoundToken<'_>,
    place: &str,
    location: String,
    why: &str,
    fix: &str,
) -> Finding {
    let scope = token_scope::describe(token.kind, token.secret);
    let (why, fix) = scope.amend(why, fix);
    Finding {
        check: "token",
        severity: Severity::High,
        title: format!("{} in {place} ({})", scope.label, token.shown()),
        location,
        why,
        fix,
        fix_command: None,
    }
}

//! Tokens by their published shapes (`keepout_credentials::tokens`, shared with the sandbox), in
//! the environment, shell rc files, shell history and git config. A token is reported by kind,
//! place and a fingerprint (first 4 characters and a short SHA-256 digest), never by value.

use keepout_credentials::tokens::find;

use crate::{read_small, Context, Finding, Severity};

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

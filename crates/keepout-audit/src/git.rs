//! Whether git fetches over HTTPS and pushes over SSH (`keepout git setup`), for a user who has
//! SSH keys: otherwise any `git fetch` run by untrusted code can use the key.

use crate::{Context, Finding, Severity};

/// The hosts `keepout git setup` configures by default; one of them is enough to check.
const HOST: &str = "github.com";

pub fn check(ctx: &Context, out: &mut Vec<Finding>) {
    let has_keys = ctx.var("SSH_AUTH_SOCK").is_some()
        || std::fs::read_dir(ctx.home.join(".ssh")).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                crate::read_small(&e.path()).is_some_and(|t| crate::ssh::unencrypted(&t).is_some())
            })
        });
    if !has_keys {
        return;
    }
    let entries = crate::global_git_config(ctx);
    let has = |section: String, key: &str, value: String| {
        entries
            .iter()
            .any(|e| e.section == section && e.key == key && e.value == value)
    };
    let https = format!("https://{HOST}/");
    let scp = format!("git@{HOST}:");
    let fetch_https = has(format!("url \"{https}\""), "insteadof", scp.clone());
    let push_ssh = has(format!("url \"{scp}\""), "pushinsteadof", https.clone());
    if fetch_https && push_ssh {
        return;
    }
    out.push(Finding {
        check: "git-setup",
        severity: Severity::Low,
        title: format!("git fetches from {HOST} can use your SSH key"),
        location: "~/.gitconfig".into(),
        why: "A test suite or build script that runs `git fetch` or `git clone` over SSH uses your key without you knowing; only pushes need it.".into(),
        fix: "Fetch and clone over HTTPS and push over SSH, through an agent that asks (keepout agent).".into(),
        fix_command: Some("keepout git setup".into()),
    });
}

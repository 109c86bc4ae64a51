//! `keepout git setup`: fetch and clone over HTTPS, push over SSH.
//!
//! Untrusted code that runs `git fetch` (a test suite, a build script) should not be able to use
//! your SSH key; pushes should, but only through an agent that asks (`keepout agent`). Git's URL
//! rewriting does exactly this, in your global git config:
//!
//! ```ini
//! [url "https://github.com/"]
//!     insteadOf = git@github.com:
//!     insteadOf = ssh://git@github.com/
//! [url "git@github.com:"]
//!     pushInsteadOf = https://github.com/
//!     pushInsteadOf = ssh://git@github.com/
//!     pushInsteadOf = git@github.com:
//! ```
//!
//! (The last line keeps pushes of `git@` remotes on SSH: without it the HTTPS `insteadOf` would
//! apply to pushes too.) Every change goes through `git config --global`, is idempotent, and
//! `--undo` removes exactly these values.

use anyhow::{bail, Context, Result};

use crate::cli::GitSetupArgs;

/// The hosts set up when none are named.
pub const DEFAULT_HOSTS: &[&str] = &["github.com", "gitlab.com", "codeberg.org"];

/// (key, value) pairs of the global git config for `host`.
pub fn rewrites(host: &str) -> Vec<(String, String)> {
    let https = format!("https://{host}/");
    let scp = format!("git@{host}:");
    let ssh = format!("ssh://git@{host}/");
    vec![
        (format!("url.{https}.insteadOf"), scp.clone()),
        (format!("url.{https}.insteadOf"), ssh.clone()),
        (format!("url.{scp}.pushInsteadOf"), https),
        (format!("url.{scp}.pushInsteadOf"), ssh),
        (format!("url.{scp}.pushInsteadOf"), scp.clone()),
    ]
}

fn git(args: &[&str]) -> Result<std::process::Output> {
    std::process::Command::new("git")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot run git (is it installed?)")
}

fn has(key: &str, value: &str) -> Result<bool> {
    let out = git(&["config", "--global", "--get-all", key])?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l == value))
}

pub fn git_setup(args: GitSetupArgs) -> Result<i32> {
    let hosts: Vec<String> = if args.host.is_empty() {
        DEFAULT_HOSTS.iter().map(|h| h.to_string()).collect()
    } else {
        args.host.clone()
    };
    for h in &hosts {
        if h.is_empty() || h.contains(['/', ':', '@', ' ']) {
            bail!("{h:?} is not a host name (e.g. github.com)");
        }
    }
    let mut changed = 0;
    for host in &hosts {
        for (key, value) in rewrites(host) {
            let present = has(&key, &value)?;
            let run = match (args.undo, present) {
                (false, false) => Some(vec!["config", "--global", "--add", &key, &value]),
                (true, true) => Some(vec![
                    "config",
                    "--global",
                    "--fixed-value",
                    "--unset-all",
                    &key,
                    &value,
                ]),
                _ => None,
            };
            let Some(cmd) = run else { continue };
            if args.dry_run {
                println!("git {}", cmd.join(" "));
                continue;
            }
            let out = git(&cmd)?;
            if !out.status.success() {
                bail!(
                    "git {} failed: {}",
                    cmd.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            changed += 1;
        }
    }
    let what = if args.dry_run {
        "would change"
    } else {
        "changed"
    };
    if args.undo {
        eprintln!(
            "keepout: git setup undone for {} ({what} {changed} values)",
            hosts.join(", ")
        );
    } else {
        eprintln!(
            "keepout: for {}: fetch and clone over HTTPS, push over SSH ({what} {changed} values in your global git config).\n\
             keepout: pushes now need your SSH key; with `keepout agent`, each one is asked for.",
            hosts.join(", ")
        );
    }
    Ok(0)
}

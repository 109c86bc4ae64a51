//! `keepout git setup`: fetch and clone over HTTPS, push over SSH. What the global git config
//! should hold, and whether it holds it, is [`keepout_audit::git_setup`]'s; this runs `git` for
//! it and says what changed.

use anyhow::{bail, Context, Result};
use keepout_audit::git_setup::{self, Change};

use crate::cli::GitSetupArgs;

fn git(args: &[&str]) -> Result<std::process::Output> {
    std::process::Command::new("git")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot run git (is it installed?)")
}

fn has(key: &str, value: &str) -> Result<bool> {
    let out = git(&["config", "--global", "--get-all", key])?;
    Ok(git_setup::holds(
        &String::from_utf8_lossy(&out.stdout),
        value,
    ))
}

pub fn git_setup(args: GitSetupArgs) -> Result<i32> {
    let hosts = git_setup::hosts(&args.host)?;
    let mut changed = 0;
    for host in &hosts {
        for rewrite in git_setup::rewrites(host) {
            let present = has(&rewrite.key, &rewrite.value)?;
            let Some(change) = Change::needed(&rewrite, args.undo, present) else {
                continue;
            };
            let cmd = change.git_args();
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

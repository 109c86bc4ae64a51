//! `keepout git setup`: fetch and clone over HTTPS, push over SSH. What the global git config
//! should hold, and the `git` commands that make it so, are [`keepout_audit::git_setup`]'s; this
//! prints the commands of a dry run and what changed.

use anyhow::Result;

use crate::cli::GitSetupArgs;

pub fn git_setup(args: GitSetupArgs) -> Result<i32> {
    let done = keepout_audit::git_setup::set_up(&args.host, args.undo, args.dry_run, |command| {
        println!("git {}", command.join(" "))
    })?;
    eprintln!("{}", done.summary());
    Ok(0)
}

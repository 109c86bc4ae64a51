//! `keepout exec`: one named command gets the secrets of the current directory's scope.
//!
//! The values go into that command's environment only: never into keepout's own environment,
//! an argument list or a file. Without `--mask` keepout replaces itself with the command (exec),
//! so nothing of keepout stays around holding them.

use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::{bail, Context, Result};
use keepout_vault::{resolve_env, Config};

use crate::cli::ExecArgs;

/// A scope's variables, resolved: name, value, and whether the value is a secret (not a literal).
pub struct ScopeValues {
    pub scope: String,
    /// The directory (the cwd or a parent) whose match chose the scope; the cwd for `--scope`.
    pub root: std::path::PathBuf,
    pub values: Vec<keepout_vault::Resolved>,
}

/// Find the scope (by name, or for the current directory), ask for approval if it wants it,
/// and resolve its references, unlocking the vault only if one is `keepout:`.
pub fn scope_values(scope_name: Option<&str>, for_command: &str) -> Result<ScopeValues> {
    let config = Config::load(&Config::default_path())?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let (scope, root) = match scope_name {
        Some(name) => (config.scope(name)?, cwd.clone()),
        None => config.scope_and_root_for(&cwd)?,
    };
    if scope.confirm {
        let what = format!(
            "Release the secrets of scope {:?} to {for_command}?",
            scope.name
        );
        if !keepout_prompt::confirm(&what)? {
            bail!("not approved: no secret was released");
        }
    }
    let vault = crate::secret::vault();
    let values = resolve_env(&scope.env, || crate::secret::read_document(&vault))?;
    Ok(ScopeValues {
        scope: scope.name.clone(),
        root,
        values,
    })
}

pub fn exec(args: ExecArgs) -> Result<i32> {
    let resolved = scope_values(
        args.scope.as_deref(),
        &format!("`{}`", args.command.join(" ")),
    )?;
    let mut cmd = Command::new(&args.command[0]);
    cmd.args(&args.command[1..]);
    let mut secret_values = Vec::new();
    for v in &resolved.values {
        cmd.env(&v.name, v.value.as_str());
        if v.secret {
            secret_values.push(v.value.as_bytes().to_vec());
        }
    }
    if args.mask {
        return crate::mask::run_masked(cmd, secret_values);
    }
    let err = cmd.exec();
    let code = if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    eprintln!("keepout: {}: {err}", args.command[0]);
    Ok(code)
}

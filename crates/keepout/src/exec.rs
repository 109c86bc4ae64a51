//! `keepout exec`: one named command gets the secrets of the current directory's scope.
//!
//! The values go into that command's environment only: never into keepout's own environment,
//! an argument list or a file. Without `--mask` keepout replaces itself with the command (exec),
//! so nothing of keepout stays around holding them.
//!
//! The command is looked up on PATH first ([`keepout_vault::program`]), before any secret is
//! resolved ([`keepout_vault::release::scope_values`]): a typo costs no passphrase, and is said
//! like a shell says it (`NAME: command not found (PATH=...)`, exit 127; a file that is not
//! executable, 126). The configuration is read once, for the scope and the vault's key.

use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::{Context, Result};
use keepout_vault::program::find_program;
use keepout_vault::release::{self, ScopeValues};
use keepout_vault::Config;

use crate::cli::ExecArgs;

/// The scope's values (by name, or for the current directory) for `for_command`.
pub fn scope_values(scope_name: Option<&str>, for_command: &str) -> Result<ScopeValues> {
    let config = Config::load(&Config::default_path())?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let session = crate::secret::session().with_config(&config);
    let vault = crate::secret::vault();
    let values = release::scope_values(&session, &vault, &config, scope_name, &cwd, for_command)?;
    Ok(values)
}

pub fn exec(args: ExecArgs) -> Result<i32> {
    let path = std::env::var("PATH").unwrap_or_default();
    // main.rs says it (`keepout: ERROR; no secret was released`) with the error's exit status.
    let program = find_program(&args.command[0], &path).map_err(|e| {
        let said = format!("{e}; no secret was released");
        anyhow::Error::new(e).context(said)
    })?;
    let resolved = scope_values(
        args.scope.as_deref(),
        &format!("`{}`", args.command.join(" ")),
    )?;
    let mut cmd = Command::new(&program);
    cmd.arg0(&args.command[0]).args(&args.command[1..]);
    for v in &resolved.values {
        cmd.env(&v.name, v.value.as_str());
    }
    if args.mask {
        return crate::mask::run_masked(cmd, resolved.secret_values());
    }
    let err = cmd.exec();
    eprintln!("keepout: {}: {err}", program.display());
    Ok(keepout_vault::program::exec_failure_status(&err))
}

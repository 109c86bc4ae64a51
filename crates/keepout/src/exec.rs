//! `keepout exec`: one named command gets the secrets of the current directory's scope.
//!
//! The values go into that command's environment only: never into keepout's own environment,
//! an argument list or a file. Without `--mask` keepout replaces itself with the command (exec),
//! so nothing of keepout stays around holding them.

use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::{bail, Context, Result};
use keepout_vault::{resolve_env, Config, SecretRef};

use crate::cli::ExecArgs;

pub fn exec(args: ExecArgs) -> Result<i32> {
    let config = Config::load(&Config::default_path())?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let scope = match &args.scope {
        Some(name) => config.scope(name)?,
        None => config.scope_for(&cwd)?,
    };
    if scope.confirm {
        let what = format!(
            "Release the secrets of scope {:?} to `{}`?",
            scope.name,
            args.command.join(" ")
        );
        if !keepout_prompt::confirm(&what)? {
            bail!("not approved: no secret was released");
        }
    }
    let refs: Vec<(String, SecretRef)> = scope
        .env
        .iter()
        .map(|(k, v)| Ok((k.clone(), SecretRef::parse(v)?)))
        .collect::<Result<_>>()?;
    let doc = if refs.iter().any(|(_, r)| r.needs_vault()) {
        let vault = crate::secret::vault();
        let pass = crate::secret::passphrase(&vault, false)?;
        Some(vault.read(&pass)?)
    } else {
        None
    };
    let values = resolve_env(&scope.env, || Ok(doc.expect("read above when needed")))?;

    let mut cmd = Command::new(&args.command[0]);
    cmd.args(&args.command[1..]);
    let mut secret_values = Vec::new();
    for ((name, value), (_, reference)) in values.iter().zip(&refs) {
        cmd.env(name, value.as_str());
        if reference.is_secret() {
            secret_values.push(value.as_bytes().to_vec());
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

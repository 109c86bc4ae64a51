//! `keepout hook bash|zsh|fish` and `keepout hook-env`: the command line of
//! [`keepout_vault::hook`] (`kvars [DURATION]` / `unkvars`). `hook-env` prints the scope's
//! values only into a pipe (for `kvars` to `eval`), never on a terminal.

use std::io::IsTerminal;
use std::time::SystemTime;

use anyhow::Result;
use keepout_vault::{hook, VaultError};

use crate::cli::{HookEnvArgs, Shell};

fn shell(shell: Shell) -> hook::Shell {
    match shell {
        Shell::Bash => hook::Shell::Bash,
        Shell::Zsh => hook::Shell::Zsh,
        Shell::Fish => hook::Shell::Fish,
    }
}

pub fn hook(of: Shell) -> Result<i32> {
    print!("{}", hook::script(shell(of)));
    Ok(0)
}

/// `keepout hook-env`: the shell code that sets the scope's variables (used by `kvars`).
pub fn hook_env(args: HookEnvArgs) -> Result<i32> {
    if std::io::stdout().is_terminal() {
        return Err(VaultError::HookEnvOnTerminal.into());
    }
    let ttl = hook::ttl(args.ttl.as_deref())?;
    let resolved = crate::exec::scope_values(args.scope.as_deref(), "this shell (kvars)")?;
    let (code, said) = hook::env(shell(args.shell), &resolved, ttl, SystemTime::now())?;
    print!("{}", *code);
    eprintln!("{said}");
    Ok(0)
}

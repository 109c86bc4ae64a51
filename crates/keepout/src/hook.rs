//! `keepout hook bash|zsh|fish` and `keepout hook-env`: the command line of
//! [`keepout_vault::hook`] (`kvars [DURATION]` / `unkvars`). `hook-env` prints the scope's
//! values only into a pipe (for `kvars` to `eval`), never on a terminal.

use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};
use keepout_vault::hook;

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

/// `30s`, `10m`, `1h`: a number and its unit (a bare number is an error that says so).
pub fn parse_duration(text: &str) -> Result<Duration> {
    keepout_vault::parse_duration(text).map_err(|e| anyhow::anyhow!(e))
}

/// `keepout hook-env`: the shell code that sets the scope's variables (used by `kvars`).
pub fn hook_env(args: HookEnvArgs) -> Result<i32> {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        bail!("`keepout hook-env` prints secrets for the kvars function to evaluate; it will not print them on a terminal (use kvars, from `keepout hook SHELL`)");
    }
    let ttl = parse_duration(args.ttl.as_deref().unwrap_or("10m"))?;
    let resolved = crate::exec::scope_values(args.scope.as_deref(), "this shell (kvars)")?;
    let expires = hook::expires_at(SystemTime::now(), ttl)?;
    print!("{}", *hook::exports(shell(args.shell), &resolved, expires));
    eprintln!(
        "keepout: {} set for {} (scope {}); `unkvars` removes them",
        resolved.names().join(", "),
        keepout_vault::format_duration(ttl),
        resolved.scope
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap().as_secs(), 30);
        assert_eq!(parse_duration("10m").unwrap().as_secs(), 600);
        assert_eq!(parse_duration("2h").unwrap().as_secs(), 7200);
        assert!(
            parse_duration("5").is_err()
                && parse_duration("0m").is_err()
                && parse_duration("x").is_err()
                && parse_duration("5d").is_err()
        );
    }
}

//! `keepout exec`: one named command gets the secrets of the current directory's scope.
//!
//! The values go into that command's environment only: never into keepout's own environment,
//! an argument list or a file. Without `--mask` keepout replaces itself with the command (exec),
//! so nothing of keepout stays around holding them.
//!
//! The command is looked up on PATH first, before any secret is resolved: a typo costs no
//! passphrase, and is said like a shell says it (`NAME: command not found (PATH=...)`, exit
//! 127; a file that is not executable, 126).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
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
    let values = resolve_env(&scope.env, || {
        crate::secret::session().read_document(&vault)
    })?;
    Ok(ScopeValues {
        scope: scope.name.clone(),
        root,
        values,
    })
}

/// Why a command cannot be started: its message and the shell's exit status for it.
struct NotRunnable {
    message: String,
    code: i32,
}

fn is_executable_file(path: &Path) -> bool {
    path.is_file() && rustix::fs::access(path, rustix::fs::Access::EXEC_OK).is_ok()
}

/// Find `program` as `execvp` would: a name with a `/` is taken as it is, any other the first
/// executable file of that name in a directory of PATH.
fn find_program(program: &str) -> Result<PathBuf, NotRunnable> {
    let not_executable = |path: &Path| NotRunnable {
        message: if path.is_dir() {
            format!("{}: is a directory, not a command", path.display())
        } else {
            format!(
                "{}: permission denied: the file is not executable (chmod +x it, or name its interpreter, e.g. `sh {}`)",
                path.display(),
                path.display()
            )
        },
        code: 126,
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        if is_executable_file(&path) {
            return Ok(path);
        }
        if path.exists() {
            return Err(not_executable(&path));
        }
        return Err(NotRunnable {
            message: format!("{program}: no such file"),
            code: 127,
        });
    }
    let path_var = std::env::var("PATH").unwrap_or_default();
    let mut found_unexecutable = None;
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(program);
        if is_executable_file(&candidate) {
            return Ok(candidate);
        }
        if candidate.is_file() && found_unexecutable.is_none() {
            found_unexecutable = Some(candidate);
        }
    }
    match found_unexecutable {
        Some(path) => Err(not_executable(&path)),
        None => Err(NotRunnable {
            message: format!("{program}: command not found (PATH={path_var})"),
            code: 127,
        }),
    }
}

pub fn exec(args: ExecArgs) -> Result<i32> {
    let program = match find_program(&args.command[0]) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("keepout: {}; no secret was released", e.message);
            return Ok(e.code);
        }
    };
    let resolved = scope_values(
        args.scope.as_deref(),
        &format!("`{}`", args.command.join(" ")),
    )?;
    let mut cmd = Command::new(&program);
    cmd.arg0(&args.command[0]).args(&args.command[1..]);
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
    eprintln!("keepout: {}: {err}", program.display());
    Ok(code)
}

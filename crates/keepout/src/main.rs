//! keepout: run other people's code without handing it your credentials.
//!
//! This binary is thin: it parses the command line, builds a request for the library crates,
//! and renders their results and errors. Exit codes: the command's own code (128+N when killed
//! by signal N); 125 when keepout itself fails; 126 when the command cannot be executed; 127 when
//! it is not found inside the sandbox.

mod audit;
mod cargo_credential;
mod cli;
mod complete;
mod demo;
mod doctor;
mod exec;
mod git_credential;
mod git_setup;
mod hook;
mod import;
mod man;
mod mask;
mod review;
mod run;
mod secret;
mod shown;
mod ssh;
mod workspace;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};

/// Exit code for keepout's own errors (as with podman and docker: 125 = the runner failed).
pub const EXIT_KEEPOUT_ERROR: u8 = keepout_sandbox::EXIT_KEEPOUT;

/// What `keepout --version` prints, as clap would (`Cli::command().render_version()`; a test
/// checks they are the same), for the fast path in `main`.
fn version_line() -> String {
    format!("keepout {}\n", env!("CARGO_PKG_VERSION"))
}

/// Whether the command line is `keepout --version` or `keepout -V`, nothing more: answered
/// without building the command line's definition, which costs more than the answer.
fn only_version(mut args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    let _program = args.next();
    matches!(args.next(), Some(a) if a == "--version" || a == "-V") && args.next().is_none()
}

fn main() -> ExitCode {
    // A completion request from the shell (`keepout completions SHELL` set it up): answered from
    // the command line's definition and this machine's workspaces, then keepout exits.
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(complete::COMPLETE_VAR)
        .complete();
    if only_version(std::env::args_os()) {
        print!("{}", version_line());
        return ExitCode::SUCCESS;
    }
    // cargo runs a credential provider as `PROGRAM --cargo-plugin` and passes the rest of the
    // configured command (`cargo-credential`) inside the protocol's JSON.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "--cargo-plugin")
    {
        let _ = cargo_credential::cargo_credential();
        return ExitCode::SUCCESS;
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match cli::Cli::run_only(&args)
        .map(Command::Run)
        .map(|command| Cli { command })
    {
        Some(cli) => Ok(cli),
        None => Cli::try_parse_from(&args),
    };
    let cli = match cli {
        Ok(cli) => cli,
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidUtf8 => {
            eprintln!(
                "keepout: {}",
                keepout_launch::shown::not_utf8_arguments(std::env::args_os())
            );
            return ExitCode::from(EXIT_KEEPOUT_ERROR);
        }
        Err(e) => e.exit(),
    };
    if cli.command.only_prints() {
        // A listing piped into `head` ends when the reader has had enough, quietly, as Unix
        // tools do (Rust ignores SIGPIPE, so a print would otherwise panic on the closed pipe).
        sigpipe::reset();
    }
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Review(args) => review::review(args),
        Command::Try(args) => workspace::try_source(args),
        Command::Shell(args) => workspace::shell(args),
        Command::Workspace { action } => workspace::workspace(action),
        Command::Secret { action } => secret::secret(action),
        Command::Exec(args) => exec::exec(args),
        Command::GitCredential { action } => git_credential::git_credential(action),
        Command::Hook { shell } => hook::hook(shell),
        Command::Ssh { action } => ssh::ssh(action),
        Command::Audit(args) => Ok(audit::audit(args)),
        Command::Git {
            action: cli::GitAction::Setup(args),
        } => git_setup::git_setup(args),
        Command::Agent(args) => ssh::agent(args),
        Command::Lock => {
            if keepout_vault::cache::lock() {
                eprintln!("keepout: the vault is locked (the unlock cache forgot it)");
            } else {
                eprintln!("keepout: nothing to lock (no unlock cache is running)");
            }
            Ok(0)
        }
        Command::CacheDaemon => {
            // Its output goes nowhere: `keepout_vault::Unlock` says what is wrong with the value.
            let (idle, _) = keepout_vault::cache::idle_from_env();
            keepout_vault::cache::serve(idle)
                .map(|()| 0)
                .map_err(anyhow::Error::from)
        }
        Command::Import {
            kind,
            file,
            yes,
            keep,
            replace,
        } => import::import(kind, file, yes, keep, replace),
        Command::CargoCredential { .. } => cargo_credential::cargo_credential(),
        Command::HookEnv(args) => hook::hook_env(args),
        Command::Doctor(args) => doctor::doctor(args),
        Command::Demo(args) => demo::demo(args),
        Command::Completions { shell } => {
            complete::registration(shell.name(), &mut std::io::stdout())
                .map(|()| 0)
                .map_err(anyhow::Error::from)
        }
        Command::Man { subcommand } => man::page(&subcommand, &mut std::io::stdout()).map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => {
            report(&err);
            ExitCode::from(exit_status(&err))
        }
    }
}

/// The exit status for an error that ended a command: the library error's own
/// (`exit_code()`), or [`EXIT_KEEPOUT_ERROR`] for any other.
fn exit_status(err: &anyhow::Error) -> u8 {
    if let Some(e) = err.downcast_ref::<keepout_vault::VaultError>() {
        return e.exit_code();
    }
    if let Some(e) = err.downcast_ref::<keepout_vault::program::NotRunnable>() {
        return e.exit_code() as u8;
    }
    if let Some(e) = err.downcast_ref::<keepout_container::Error>() {
        return e.exit_code();
    }
    err.downcast_ref::<keepout_sandbox::Error>()
        .map_or(EXIT_KEEPOUT_ERROR, keepout_sandbox::Error::exit_code)
}

/// The one place that renders errors: the error, its causes, and a hint where there is one.
fn report(err: &anyhow::Error) {
    // A workspace error says its fix in its own words (keepout-workspace keeps it apart).
    let text_of = |e: &(dyn std::error::Error + 'static)| match e
        .downcast_ref::<keepout_workspace::Error>()
    {
        Some(e) => e.text(),
        None => e.to_string(),
    };
    let mut said = text_of(err.as_ref());
    eprintln!("keepout: {said}");
    for cause in err.chain().skip(1) {
        // A cause its error already quotes (an I/O error's reason) is not said twice.
        let text = text_of(cause);
        if !said.contains(&text) {
            eprintln!("  because: {text}");
        }
        said = text;
    }
    let hint = err
        .chain()
        .find_map(|e| e.downcast_ref::<keepout_sandbox::Error>())
        .and_then(|e| e.hint())
        .or_else(|| {
            err.chain()
                .find_map(|e| e.downcast_ref::<keepout_vault::VaultError>())
                .and_then(|e| e.hint())
        })
        .or_else(|| {
            err.chain()
                .find_map(|e| e.downcast_ref::<keepout_container::Error>())
                .and_then(|e| e.hint())
        });
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::{only_version, version_line};

    /// The fast path prints exactly what clap prints for `--version`.
    #[test]
    fn the_version_line_is_clap_s() {
        assert_eq!(version_line(), super::Cli::command().render_version());
    }

    #[test]
    fn only_a_lone_version_flag_takes_the_fast_path() {
        let args = |words: &[&str]| {
            words
                .iter()
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
        };
        assert!(only_version(args(&["keepout", "--version"]).into_iter()));
        assert!(only_version(args(&["keepout", "-V"]).into_iter()));
        for other in [
            &["keepout"][..],
            &["keepout", "--version", "run"],
            &["keepout", "run", "--version"],
            &["keepout", "--versio"],
            &["keepout", "-Vh"],
        ] {
            assert!(!only_version(args(other).into_iter()), "{other:?}");
        }
    }
}

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
pub const EXIT_KEEPOUT_ERROR: u8 = 125;

fn main() -> ExitCode {
    // A completion request from the shell (`keepout completions SHELL` set it up): answered from
    // the command line's definition and this machine's workspaces, then keepout exits.
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(complete::COMPLETE_VAR)
        .complete();
    // cargo runs a credential provider as `PROGRAM --cargo-plugin` and passes the rest of the
    // configured command (`cargo-credential`) inside the protocol's JSON.
    if std::env::args().nth(1).as_deref() == Some("--cargo-plugin") {
        let _ = cargo_credential::cargo_credential();
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse();
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
            // Its output goes nowhere: `secret::remember` says what is wrong with the value.
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
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => {
            report(&err);
            if let Some(e) = err.downcast_ref::<keepout_vault::VaultError>() {
                return ExitCode::from(e.exit_code());
            }
            let code = err
                .downcast_ref::<keepout_sandbox::Error>()
                .map(|e| match e {
                    keepout_sandbox::Error::Exec {
                        not_found: true, ..
                    } => 127,
                    keepout_sandbox::Error::Exec { .. } => 126,
                    _ => EXIT_KEEPOUT_ERROR,
                })
                .unwrap_or(EXIT_KEEPOUT_ERROR);
            ExitCode::from(code)
        }
    }
}

/// The one place that renders errors: the error, its causes, and a hint where there is one.
fn report(err: &anyhow::Error) {
    eprintln!("keepout: {err}");
    let mut said = err.to_string();
    for cause in err.chain().skip(1) {
        // A cause its error already quotes (an I/O error's reason) is not said twice.
        let text = cause.to_string();
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
        });
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
}

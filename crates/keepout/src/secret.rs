//! `keepout secret set | list | rm`: the vault from the command line
//! ([`Unlock::set_secret`], [`Unlock::remove_secret`]), and the terminal that
//! [`keepout_vault::Unlock`] asks on for every command ([`session`]).
//!
//! Guarantees: while scrypt runs a one-line status is shown on standard error only when that is
//! a terminal; the unlock session's questions and lines go to the terminal unchanged.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use keepout_vault::{format_time, Unlock, VaultFile, Zeroizing};

use crate::cli::SecretAction;

/// The vault at its usual place ([`VaultFile::usual`]).
pub fn vault() -> VaultFile {
    VaultFile::usual()
}

/// A one-line status on standard error while a slow step (scrypt) runs, shown only when standard
/// error is a terminal, and erased when dropped. Nothing at all on a pipe or file.
pub struct Status {
    shown: bool,
}

impl Status {
    pub fn new(what: &str) -> Status {
        let shown = std::io::stderr().is_terminal();
        if shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "keepout: {what}\u{2026}");
            let _ = err.flush();
        }
        Status { shown }
    }
}

impl Drop for Status {
    fn drop(&mut self) {
        if self.shown {
            // Back to the line's start and erase it: the next message takes its place.
            eprint!("\r\x1b[K");
        }
    }
}

/// The unlock session's questions and lines, on this process's terminal (keepout-prompt), and
/// the scrypt status line.
pub struct Terminal;

impl keepout_vault::Prompt for Terminal {
    type Busy = Status;

    fn secret(&self, prompt: &str) -> Result<Zeroizing<String>, keepout_prompt::PromptError> {
        keepout_prompt::secret(prompt)
    }

    fn confirm(&self, question: &str) -> Result<bool, keepout_prompt::PromptError> {
        keepout_prompt::confirm(question)
    }

    fn say(&self, line: &str) {
        eprintln!("{line}");
    }

    /// What the status line says while scrypt runs for `what` ("unlocking the vault").
    fn busy(&self, what: &str) -> Status {
        Status::new(&format!("{what} (scrypt, a few seconds)"))
    }
}

/// The unlock cache's daemon: this binary's `cache-daemon`, in a process group of its own.
fn cache_daemon() -> Option<std::process::Command> {
    let exe = std::env::current_exe().ok()?;
    let mut daemon = std::process::Command::new(exe);
    daemon.arg("cache-daemon");
    std::os::unix::process::CommandExt::process_group(&mut daemon, 0);
    Some(daemon)
}

/// How every command gets the vault's key: asked on the terminal, kept by the unlock cache.
pub fn session() -> Unlock<Terminal> {
    Unlock::new(Terminal).with_cache_daemon(cache_daemon)
}

pub fn secret(action: SecretAction) -> Result<i32> {
    let (vault, session) = (vault(), session());
    match action {
        SecretAction::Set { name, note } => {
            // On a terminal the value is asked for (after the passphrase), else read from stdin.
            let stdin = std::io::stdin();
            let piped = (!stdin.is_terminal()).then(|| stdin.lock());
            session.set_secret(&vault, &name, note, piped)?;
        }
        SecretAction::List { json } => {
            let list = session.read_document(&vault)?.list();
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                eprintln!("keepout: the vault is empty");
            } else {
                println!("{:<40} {:<20} note", "name", "updated");
                for s in list {
                    let updated = format_time(s.updated);
                    let note = s.note.unwrap_or_default();
                    println!("{:<40} {updated:<20} {note}", s.name);
                }
            }
        }
        SecretAction::Rm { name } => session.remove_secret(&vault, &name)?,
    }
    Ok(0)
}

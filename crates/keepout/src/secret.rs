//! `keepout secret set | list | rm`: the vault from the command line, and the terminal that
//! [`keepout_vault::Unlock`] asks on for every command ([`session`]).
//!
//! Guarantees: a value read before the passphrase stays in memory across the passphrase's
//! tries; while scrypt runs a one-line status is shown on standard error only when that is a
//! terminal; the unlock session's questions and lines go to the terminal unchanged.

use std::io::{IsTerminal, Read};

use anyhow::{bail, Context, Result};
use keepout_vault::{check_name, Unlock, VaultFile, Zeroizing};

use crate::cli::SecretAction;

/// The vault at its usual place. `KEEPOUT_SCRYPT_WORK_FACTOR` (log2 N, at most
/// [`keepout_vault::MAX_WORK_FACTOR`]) overrides age's calibrated scrypt cost for new writes;
/// the tests use it to stay fast.
pub fn vault() -> VaultFile {
    let v = VaultFile::at(VaultFile::default_path());
    match std::env::var("KEEPOUT_SCRYPT_WORK_FACTOR")
        .ok()
        .and_then(|s| s.parse::<u8>().ok())
    {
        // At most keepout's maximum, which it reads back (`with_work_factor` lowers a larger one).
        Some(n) => v.with_work_factor(n),
        None => v,
    }
}

fn ask(prompt: &str) -> Result<Zeroizing<String>> {
    Ok(keepout_prompt::secret(prompt)?)
}

/// A one-line status on standard error while a slow step (scrypt) runs, shown only when standard
/// error is a terminal, and erased when dropped. Nothing at all on a pipe or file.
pub struct Status {
    shown: bool,
}

impl Status {
    pub fn new(what: &str) -> Status {
        use std::io::Write;
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

/// The value: standard input when it is not a terminal (one trailing newline dropped), else
/// asked for without echo.
fn read_value(name: &str) -> Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    let value = if stdin.is_terminal() {
        ask(&format!("Value for {name}: "))?
    } else {
        let mut v = Zeroizing::new(String::new());
        stdin
            .lock()
            .read_to_string(&mut v)
            .context("cannot read the value from standard input")?;
        if v.ends_with('\n') {
            v.pop();
            if v.ends_with('\r') {
                v.pop();
            }
        }
        v
    };
    if value.is_empty() {
        bail!("the value for {name} is empty; nothing was stored");
    }
    Ok(value)
}

pub fn secret(action: SecretAction) -> Result<i32> {
    let vault = vault();
    let session = session();
    match action {
        SecretAction::Set { name, note } => {
            check_name(&name)?;
            // On a terminal, the passphrase first, then the value: a passphrase that does not
            // work costs no typing of the value. From a pipe the value is read first and kept
            // in memory while the passphrase is asked (again).
            let (value, opened) = if std::io::stdin().is_terminal() {
                let opened = session.for_writing_with_document(&vault)?;
                (read_value(&name)?, opened)
            } else {
                let value = read_value(&name)?;
                (value, session.for_writing_with_document(&vault)?)
            };
            let (replaced, _) =
                session.update(&vault, opened, |doc| doc.set(&name, value, note))?;
            eprintln!(
                "keepout: {} {name}",
                if replaced { "replaced" } else { "stored" }
            );
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
                    println!(
                        "{:<40} {:<20} {}",
                        s.name,
                        format_time(s.updated),
                        s.note.unwrap_or_default()
                    );
                }
            }
        }
        SecretAction::Rm { name } => {
            if !vault.exists() {
                return Err(vault.missing().into());
            }
            let opened = session.for_writing_with_document(&vault)?;
            session.update(&vault, opened, |doc| doc.remove(&name))?;
            eprintln!("keepout: removed {name}");
        }
    }
    Ok(0)
}

/// Seconds since 1970 as `YYYY-MM-DD HH:MM` UTC.
fn format_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_shown_as_utc_dates() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00");
        assert_eq!(super::format_time(1_795_576_075), "2026-11-25 03:07");
    }
}

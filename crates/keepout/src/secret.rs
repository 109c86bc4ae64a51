//! `keepout secret set | list | rm`: the vault from the command line, and how every command
//! gets the vault's key.
//!
//! Guarantees: a new passphrase is asked twice and again (up to three times) when the two
//! differ, a weak one ([`weakness`]) is used only after a yes; a wrong passphrase gets three
//! tries; a value read before the passphrase stays in memory across those tries; while scrypt
//! runs a one-line status is shown on standard error only when that is a terminal.

use std::io::{IsTerminal, Read};

use anyhow::{bail, Context, Result};
use keepout_vault::{check_name, Document, Key, SecretString, VaultFile, Version, Zeroizing};

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

/// How many times a passphrase is asked for before giving up, as sudo does: a wrong passphrase
/// of an existing vault, or two new ones that differ.
const PASSPHRASE_TRIES: usize = 3;

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

/// What the status line says while scrypt runs for `what` ("unlocking the vault").
fn scrypt_status(what: &str) -> Status {
    Status::new(&format!("{what} (scrypt, a few seconds)"))
}

/// Read the vault with a passphrase, the status line shown meanwhile.
fn read_with(vault: &VaultFile, pass: &SecretString) -> Result<(Document, Version)> {
    let _status = scrypt_status("unlocking the vault");
    Ok(vault.read_versioned(&Key::Passphrase(pass.clone()))?)
}

/// Ask for the passphrase of the existing vault until it opens it: up to [`PASSPHRASE_TRIES`]
/// times ("Sorry, try again." between), then the wrong-passphrase error. Any other failure
/// (damage, no way to ask) ends at once.
fn ask_until_it_opens(vault: &VaultFile) -> Result<(SecretString, (Document, Version))> {
    let mut tries = 0;
    loop {
        tries += 1;
        let pass = passphrase(vault, false)?;
        match read_with(vault, &pass) {
            Ok(doc) => return Ok((pass, doc)),
            Err(e)
                if tries < PASSPHRASE_TRIES
                    && matches!(
                        e.downcast_ref::<keepout_vault::VaultError>(),
                        Some(keepout_vault::VaultError::WrongPassphrase(_))
                    ) =>
            {
                eprintln!("Sorry, try again.");
            }
            Err(e) => return Err(e),
        }
    }
}

/// Why a new passphrase is weak, if it is: the rule is at least 12 characters, of at least two
/// kinds among lower-case letters, upper-case letters, digits and everything else (a space, a
/// sign). `correct horse battery` passes; `password`, `123456789012` and `Secret1` do not.
pub fn weakness(pass: &str) -> Option<String> {
    let kinds = [
        pass.chars().any(|c| c.is_lowercase()),
        pass.chars().any(|c| c.is_uppercase()),
        pass.chars().any(|c| c.is_ascii_digit()),
        pass.chars()
            .any(|c| !c.is_lowercase() && !c.is_uppercase() && !c.is_ascii_digit()),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    let chars = pass.chars().count();
    if chars < 12 {
        Some(format!(
            "it has {chars} characters; 12 or more are much harder to guess"
        ))
    } else if kinds < 2 {
        Some("its characters are all of one kind (e.g. only lower-case letters, or only digits); mix in another kind, or spaces between words".into())
    } else {
        None
    }
}

fn cache_enabled() -> bool {
    std::env::var_os("KEEPOUT_NO_CACHE").is_none_or(|v| v.is_empty())
}

/// Give a verified passphrase to the unlock cache (starting it if needed).
fn remember(vault: &VaultFile, pass: &SecretString) {
    if !cache_enabled() {
        return;
    }
    // The daemon's own output goes nowhere: a bad idle time is said here.
    if let (_, Some(message)) = keepout_vault::cache::idle_from_env() {
        eprintln!("keepout: {message}");
    }
    if let Ok(exe) = std::env::current_exe() {
        let mut daemon = std::process::Command::new(exe);
        daemon.arg("cache-daemon");
        std::os::unix::process::CommandExt::process_group(&mut daemon, 0);
        keepout_vault::cache::remember(vault.path(), pass, daemon);
    }
}

/// The key of a vault configured with `[vault] recipients/identities`, if it is.
fn configured_key() -> Result<Option<Key>> {
    Ok(
        keepout_vault::Config::load(&keepout_vault::Config::default_path())?
            .vault
            .key(),
    )
}

/// The key of the existing vault: configured identities, or the passphrase from the unlock
/// cache, or asked for and checked (then cached).
pub fn unlocked(vault: &VaultFile) -> Result<Key> {
    if let Some(key) = configured_key()? {
        return Ok(key);
    }
    if cache_enabled() {
        if let Some(p) = keepout_vault::cache::cached_passphrase(vault.path()) {
            return Ok(Key::Passphrase(p));
        }
    }
    let (pass, _) = ask_until_it_opens(vault)?;
    remember(vault, &pass);
    Ok(Key::Passphrase(pass))
}

/// The passphrase for a write: a new one (asked twice, the vault created) when there is no
/// vault yet, else [`unlocked`].
/// (Every caller here uses [`for_writing_with_document`], which saves a scrypt run; this stays for
/// code on other branches that calls it.)
#[allow(dead_code)]
pub fn for_writing(vault: &VaultFile) -> Result<Key> {
    Ok(for_writing_with_document(vault)?.key)
}

/// The key for a write, and the vault's content as it was when the key was checked: hand it
/// back to [`update`], which then needs no second decryption when nothing wrote meanwhile.
pub struct Opened {
    pub key: Key,
    /// The content, and the version of the file it was read from (`None`: it came from the
    /// unlock cache and `update` reads the file again).
    pub content: (Document, Option<Version>),
}

impl Opened {
    pub fn document(&self) -> &Document {
        &self.content.0
    }

    fn earlier(self) -> (Key, Option<(Document, Version)>) {
        let (doc, version) = self.content;
        (self.key, version.map(|v| (doc, v)))
    }
}

/// [`for_writing`], and the vault's content as it is now (read once: the passphrase's check
/// is that read).
pub fn for_writing_with_document(vault: &VaultFile) -> Result<Opened> {
    if vault.exists() {
        if let Some(key) = configured_key()? {
            let (doc, version) = vault.read_versioned(&key)?;
            return Ok(Opened {
                key,
                content: (doc, Some(version)),
            });
        }
        if cache_enabled() {
            if let Some(p) = keepout_vault::cache::cached_passphrase(vault.path()) {
                let key = Key::Passphrase(p);
                let content = match keepout_vault::cache::cached_document(vault.path()) {
                    Some(doc) => (doc, None),
                    None => {
                        let _status = scrypt_status("reading the vault");
                        let (doc, version) = vault.read_versioned(&key)?;
                        (doc, Some(version))
                    }
                };
                return Ok(Opened { key, content });
            }
        }
        let (pass, (doc, version)) = ask_until_it_opens(vault)?;
        remember(vault, &pass);
        return Ok(Opened {
            key: Key::Passphrase(pass),
            content: (doc, Some(version)),
        });
    }
    // A missing vault with its backup there is recovered, never replaced: said before any
    // passphrase is asked (`create` refuses too).
    if vault.backup_path().exists() {
        return Err(vault.missing().into());
    }
    if let Some(key) = configured_key()? {
        let version = vault.create(&key)?;
        eprintln!(
            "keepout: created the vault {} (for the configured recipients)",
            vault.path().display()
        );
        return Ok(Opened {
            key,
            content: (Document::new(), Some(version)),
        });
    }
    let pass = passphrase(vault, true)?;
    let version = {
        let _status = scrypt_status("creating the vault");
        vault.create(&Key::Passphrase(pass.clone()))?
    };
    eprintln!("keepout: created the vault {}", vault.path().display());
    remember(vault, &pass);
    Ok(Opened {
        key: Key::Passphrase(pass),
        content: (Document::new(), Some(version)),
    })
}

/// Change the vault opened by [`for_writing_with_document`], the status line shown meanwhile:
/// starting from the content read then when the file has not changed since (one scrypt run,
/// the write), else reading it again under the lock.
pub fn update<T>(
    vault: &VaultFile,
    opened: Opened,
    change: impl FnOnce(&mut Document) -> Result<T, keepout_vault::VaultError>,
) -> Result<(T, Key)> {
    let (key, earlier) = opened.earlier();
    let _status = matches!(key, Key::Passphrase(_)).then(|| scrypt_status("writing the vault"));
    let out = vault.update_from(&key, earlier, change)?;
    Ok((out, key))
}

/// `vault.read`, the status line shown meanwhile.
pub fn read(vault: &VaultFile, key: &Key) -> Result<Document> {
    let _status = matches!(key, Key::Passphrase(_)).then(|| scrypt_status("reading the vault"));
    Ok(vault.read(key)?)
}

/// The decrypted vault, from the unlock cache or by asking for the passphrase (then cached).
pub fn read_document(vault: &VaultFile) -> Result<Document> {
    if !vault.exists() {
        return Err(vault.missing().into());
    }
    if let Some(key) = configured_key()? {
        return Ok(vault.read(&key)?);
    }
    if cache_enabled() {
        if let Some(doc) = keepout_vault::cache::cached_document(vault.path()) {
            return Ok(doc);
        }
    }
    let (pass, (doc, _)) = ask_until_it_opens(vault)?;
    remember(vault, &pass);
    Ok(doc)
}

/// The passphrase of an existing vault (asked once; [`ask_until_it_opens`] asks again), or a
/// new one for a vault to be created: asked twice, again (up to [`PASSPHRASE_TRIES`] times)
/// when the two differ or it is empty, and a weak one ([`weakness`]) only after a yes.
pub fn passphrase(vault: &VaultFile, new: bool) -> Result<SecretString> {
    if !new {
        let p = ask(&format!("Passphrase for {}: ", vault.path().display()))?;
        return Ok(SecretString::from(p.to_string()));
    }
    for attempt in 1..=PASSPHRASE_TRIES {
        let last = attempt == PASSPHRASE_TRIES;
        let p = ask(&format!(
            "New passphrase for the vault {}: ",
            vault.path().display()
        ))?;
        if p.is_empty() {
            if last {
                bail!("the passphrase cannot be empty; nothing was created");
            }
            eprintln!("keepout: the passphrase cannot be empty; try again.");
            continue;
        }
        if let Some(why) = weakness(&p) {
            eprintln!("keepout: this passphrase is weak: {why}.");
            if !keepout_prompt::confirm("The new passphrase is weak. Use this passphrase anyway?")?
            {
                if last {
                    bail!("no passphrase chosen; nothing was created (a passphrase of 12 or more characters of two kinds, e.g. a few words with spaces, is not asked about)");
                }
                eprintln!("keepout: choose another passphrase.");
                continue;
            }
        }
        let again = ask("The same passphrase again: ")?;
        if *p == *again {
            return Ok(SecretString::from(p.to_string()));
        }
        if last {
            bail!("the two passphrases differed {PASSPHRASE_TRIES} times; nothing was created");
        }
        eprintln!("keepout: the two passphrases differ; try again.");
    }
    unreachable!("the last attempt returns or fails")
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
    match action {
        SecretAction::Set { name, note } => {
            check_name(&name)?;
            // On a terminal, the passphrase first, then the value: a passphrase that does not
            // work costs no typing of the value. From a pipe the value is read first and kept
            // in memory while the passphrase is asked (again).
            let (value, opened) = if std::io::stdin().is_terminal() {
                let opened = for_writing_with_document(&vault)?;
                (read_value(&name)?, opened)
            } else {
                let value = read_value(&name)?;
                (value, for_writing_with_document(&vault)?)
            };
            let (replaced, _) = update(&vault, opened, |doc| doc.set(&name, value, note))?;
            eprintln!(
                "keepout: {} {name}",
                if replaced { "replaced" } else { "stored" }
            );
        }
        SecretAction::List { json } => {
            let list = read_document(&vault)?.list();
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
            let opened = for_writing_with_document(&vault)?;
            update(&vault, opened, |doc| doc.remove(&name))?;
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
    fn weak_passphrases_are_named() {
        for weak in [
            "",
            "Secret1",
            "password",
            "abcdefghijklmnop",
            "123456789012",
        ] {
            assert!(super::weakness(weak).is_some(), "{weak:?}");
        }
        for fine in ["correct horse", "correct horse battery", "Tr0ub4dour&3x"] {
            assert_eq!(super::weakness(fine), None, "{fine:?}");
        }
    }

    #[test]
    fn times_are_shown_as_utc_dates() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00");
        assert_eq!(super::format_time(1_795_576_075), "2026-11-25 03:07");
    }
}

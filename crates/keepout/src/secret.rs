//! `keepout secret set | list | rm`: the vault from the command line.

use std::io::{IsTerminal, Read};

use anyhow::{bail, Context, Result};
use keepout_vault::{check_name, Key, SecretString, VaultFile, Zeroizing};

use crate::cli::SecretAction;

/// The vault at its usual place. `KEEPOUT_SCRYPT_WORK_FACTOR` (log2 N) overrides age's
/// calibrated scrypt cost for new writes; the tests use it to stay fast.
pub fn vault() -> VaultFile {
    let v = VaultFile::at(VaultFile::default_path());
    match std::env::var("KEEPOUT_SCRYPT_WORK_FACTOR")
        .ok()
        .and_then(|s| s.parse::<u8>().ok())
    {
        Some(n) => v.with_work_factor(n.clamp(1, 30)),
        None => v,
    }
}

fn ask(prompt: &str) -> Result<Zeroizing<String>> {
    Ok(keepout_prompt::secret(prompt)?)
}

fn cache_enabled() -> bool {
    std::env::var_os("KEEPOUT_NO_CACHE").is_none_or(|v| v.is_empty())
}

/// Give a verified passphrase to the unlock cache (starting it if needed).
fn remember(vault: &VaultFile, pass: &SecretString) {
    if !cache_enabled() {
        return;
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
    let pass = passphrase(vault, false)?;
    vault.read(&Key::Passphrase(pass.clone()))?;
    remember(vault, &pass);
    Ok(Key::Passphrase(pass))
}

/// The passphrase for a write: a new one (asked twice, the vault created) when there is no
/// vault yet, else [`unlocked`].
pub fn for_writing(vault: &VaultFile) -> Result<Key> {
    if vault.exists() {
        return unlocked(vault);
    }
    if let Some(key) = configured_key()? {
        vault.create(&key)?;
        eprintln!(
            "keepout: created the vault {} (for the configured recipients)",
            vault.path().display()
        );
        return Ok(key);
    }
    let pass = passphrase(vault, true)?;
    vault.create(&Key::Passphrase(pass.clone()))?;
    eprintln!("keepout: created the vault {}", vault.path().display());
    remember(vault, &pass);
    Ok(Key::Passphrase(pass))
}

/// The decrypted vault, from the unlock cache or by asking for the passphrase (then cached).
pub fn read_document(vault: &VaultFile) -> Result<keepout_vault::Document> {
    if !vault.exists() {
        return Err(keepout_vault::VaultError::NoVault(vault.path().to_path_buf()).into());
    }
    if let Some(key) = configured_key()? {
        return Ok(vault.read(&key)?);
    }
    if cache_enabled() {
        if let Some(doc) = keepout_vault::cache::cached_document(vault.path()) {
            return Ok(doc);
        }
    }
    let pass = passphrase(vault, false)?;
    let doc = vault.read(&Key::Passphrase(pass.clone()))?;
    remember(vault, &pass);
    Ok(doc)
}

/// The passphrase of an existing vault, or a new one (asked twice) for a vault to be created.
pub fn passphrase(vault: &VaultFile, new: bool) -> Result<SecretString> {
    if !new {
        let p = ask(&format!("Passphrase for {}: ", vault.path().display()))?;
        return Ok(SecretString::from(p.to_string()));
    }
    let p = ask(&format!(
        "New passphrase for the vault {}: ",
        vault.path().display()
    ))?;
    if p.is_empty() {
        bail!("the passphrase cannot be empty");
    }
    let again = ask("The same passphrase again: ")?;
    if *p != *again {
        bail!("the two passphrases differ; nothing was created");
    }
    Ok(SecretString::from(p.to_string()))
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
            let value = read_value(&name)?;
            let pass = for_writing(&vault)?;
            let replaced = vault.update(&pass, |doc| doc.set(&name, value, note))?;
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
            let pass = unlocked(&vault)?;
            vault.update(&pass, |doc| doc.remove(&name))?;
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

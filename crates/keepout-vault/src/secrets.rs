//! `keepout secret set | rm`: one secret stored or removed through the unlock session, and how
//! `secret list` shows a time.
//!
//! Guarantees: a value asked for (on a terminal) is asked after the vault is open, so a
//! passphrase that does not work costs no typing of the value; a value read from a pipe is read
//! first and kept in memory that is zeroed on drop while the passphrase is asked (again); an
//! empty value is never stored; a missing vault is never created by a removal.

use std::io::Read;

use zeroize::Zeroizing;

use crate::{check_name, Prompt, Unlock, VaultError, VaultFile};

/// The value read from `input`, one trailing newline (`\n` or `\r\n`) dropped.
fn read_piped(mut input: impl Read) -> Result<Zeroizing<String>, VaultError> {
    let mut v = Zeroizing::new(String::new());
    input
        .read_to_string(&mut v)
        .map_err(VaultError::ReadValue)?;
    if v.ends_with('\n') {
        v.pop();
        if v.ends_with('\r') {
            v.pop();
        }
    }
    Ok(v)
}

impl<P: Prompt> Unlock<P> {
    /// Store `name` (with `note`) in `vault`, creating it if needed: the value read from
    /// `piped`, else asked for through the prompt (`Value for NAME: `). Says "stored" or
    /// "replaced" through the prompt.
    pub fn set_secret(
        &self,
        vault: &VaultFile,
        name: &str,
        note: Option<String>,
        piped: Option<impl Read>,
    ) -> Result<(), VaultError> {
        check_name(name)?;
        let nonempty = |value: Zeroizing<String>| {
            if value.is_empty() {
                return Err(VaultError::EmptyValue(name.to_string()));
            }
            Ok(value)
        };
        let (value, opened) = match piped {
            Some(input) => {
                let value = nonempty(read_piped(input)?)?;
                (value, self.for_writing_with_document(vault)?)
            }
            None => {
                let opened = self.for_writing_with_document(vault)?;
                let asked = self.prompt().secret(&format!("Value for {name}: "))?;
                (nonempty(asked)?, opened)
            }
        };
        let (replaced, _) = self.update(vault, opened, |doc| doc.set(name, value, note))?;
        let done = if replaced { "replaced" } else { "stored" };
        self.prompt().say(&format!("keepout: {done} {name}"));
        Ok(())
    }

    /// Remove `name` from the existing `vault`; says so through the prompt.
    pub fn remove_secret(&self, vault: &VaultFile, name: &str) -> Result<(), VaultError> {
        if !vault.exists() {
            return Err(vault.missing());
        }
        let opened = self.for_writing_with_document(vault)?;
        self.update(vault, opened, |doc| doc.remove(name))?;
        self.prompt().say(&format!("keepout: removed {name}"));
        Ok(())
    }
}

/// Seconds since 1970 as `YYYY-MM-DD HH:MM` UTC.
pub fn format_time(secs: u64) -> String {
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
    use super::*;
    use crate::testing::{self, Scripted};

    #[test]
    fn times_are_shown_as_utc_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00");
        assert_eq!(format_time(1_795_576_075), "2026-11-25 03:07");
    }

    #[test]
    fn a_piped_value_loses_one_newline_and_an_asked_one_comes_after_the_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let (p, vault) = (Scripted::default(), testing::vault(dir.path()));
        let session = testing::session(&p);
        session
            .set_secret(&vault, "a", None, Some(&b"one\r\n\n"[..]))
            .unwrap();
        p.secrets.borrow_mut().push("two");
        session
            .set_secret(&vault, "a", Some("n".into()), None::<&[u8]>)
            .unwrap();
        let asked = p.asked.borrow().clone();
        assert!(
            asked[..asked.len() - 1]
                .iter()
                .all(|q| q.contains("assphrase")),
            "{asked:?}"
        );
        assert_eq!(asked.last().unwrap(), "Value for a: ");
        let said = p.said();
        assert_eq!(
            said[said.len() - 2..],
            ["keepout: stored a", "keepout: replaced a"]
        );
        let doc = vault.read(&testing::key()).unwrap();
        assert_eq!(
            (
                doc.get("a").unwrap().value.as_str(),
                doc.list()[0].note.as_deref()
            ),
            ("two", Some("n"))
        );
        assert_eq!(read_piped(&b"one\r\n\n"[..]).unwrap().as_str(), "one\r\n");
    }

    #[test]
    fn empty_values_and_missing_vaults_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (p, vault) = (Scripted::default(), testing::vault(dir.path()));
        let session = testing::session(&p);
        let e = session
            .set_secret(&vault, "a", None, Some(&b"\n"[..]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the value for a is empty; nothing was stored"
        );
        assert!(p.asked.borrow().is_empty() && !vault.exists());
        let e = session.remove_secret(&vault, "a").unwrap_err();
        assert!(matches!(e, VaultError::NoVault(_)), "{e}");
        let e = session
            .set_secret(&vault, "A", None, Some(&b"x"[..]))
            .unwrap_err();
        assert!(matches!(e, VaultError::BadName(_)), "{e}");
    }
}

//! The whole import of one credential file (`keepout import KIND`): what is asked, moved, said,
//! and done with the file, through the caller's [`Prompt`].
//!
//! Guarantees: a stored secret is never lost (a name holding a different value keeps it unless
//! the user answers otherwise on a terminal, or gives `--replace`); the file is removed or
//! rewritten only after the move-in flow stored and verified everything, and after a yes (or
//! `--yes`); it is left as it is with `--keep`, or when the user kept a stored value over one
//! of the file's (the file is then its only copy).

use std::path::PathBuf;

use super::{Choice, FileImport, Format, Placed, Rewrite};
use crate::{Prompt, Unlock, VaultError, VaultFile};

/// What the user allowed an import.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Remove or rewrite the file without asking.
    pub yes: bool,
    /// Leave the file as it is.
    pub keep: bool,
    /// Replace a stored value that differs, without asking.
    pub replace: bool,
    /// Ask about a stored value that differs (the user is at a terminal and gave no `--yes`).
    pub interactive: bool,
}

/// The question for a name that holds a different value: keep both (the new one under a new
/// name), replace, or keep the old one only. A question that cannot be asked keeps both.
fn ask(prompt: &impl Prompt, base: &str, new_name: &str) -> Choice {
    let both = format!(
        "{base} is already in the vault with a different value. Keep both, storing the new one as {new_name}?"
    );
    match prompt.confirm(&both) {
        Ok(true) => return Choice::NewName,
        Ok(false) => {}
        Err(_) => return Choice::NewName,
    }
    let replace = format!(
        "Replace the stored value of {base} with the new one (the old value is then gone)?"
    );
    match prompt.confirm(&replace) {
        Ok(true) => Choice::Replace,
        Ok(false) => Choice::Keep,
        Err(_) => Choice::NewName,
    }
}

/// The line that says where one value went.
fn placed_line(placed: &Placed, note: &str, backup: &str) -> String {
    match placed {
        Placed::Stored(n) => format!("keepout: stored {n} ({note})"),
        Placed::Already(n) => format!("keepout: {n} already stored (the same value; {note})"),
        Placed::Renamed { name, taken } => format!(
            "keepout: {taken} already holds a different value, kept; the new one is stored as {name} ({note}). \
             `--replace` replaces instead; `keepout secret list` shows both"
        ),
        Placed::Replaced(n) => format!("keepout: replaced {n} ({note})"),
        Placed::Kept(n) => format!(
            "keepout: {n} kept as it was; the new value was not stored on its own (it is in {backup})"
        ),
    }
}

impl<P: Prompt> Unlock<P> {
    /// Import `file` (by default the tool's own) of `format` into `vault`: every credential
    /// and the whole file (`backup/KIND`, `backup/KIND-2`, ...: the same content once), then,
    /// after a yes, the file removed or rewritten without its secrets.
    pub fn import_file(
        &self,
        vault: &VaultFile,
        format: Format,
        file: Option<PathBuf>,
        options: ImportOptions,
    ) -> Result<(), VaultError> {
        let say = |line: String| self.prompt().say(&line);
        let plan = format.read(file)?;
        let shown = plan.file.display();
        if plan.entries.is_empty() {
            say(format!("keepout: no credentials found in {shown}"));
            return Ok(());
        }
        // The questions are asked while deciding, with no lock held; the flow writes under it.
        let choose = |base: &str, new_name: &str| {
            if options.replace {
                Choice::Replace
            } else if options.interactive {
                ask(self.prompt(), base, new_name)
            } else {
                Choice::NewName
            }
        };
        let mut moving = FileImport::new(&plan, format, choose)?;
        let imported = self.move_in(vault, &mut moving)?;
        let backup_name = imported.backup_name();
        for (e, p) in plan.entries.iter().zip(&imported.entries) {
            say(placed_line(p, &e.note, backup_name));
        }
        say(match &imported.backup {
            Placed::Already(n) => format!(
                "keepout: the whole file was already kept in the vault as {n} (the same content)"
            ),
            _ => format!("keepout: the whole file is kept in the vault as {backup_name}"),
        });
        let kept_old = imported
            .entries
            .iter()
            .any(|p| matches!(p, Placed::Kept(_)));
        if options.keep {
            say(format!("keepout: {shown} left as it is (--keep)"));
        } else if kept_old {
            // Some of the file's values are not in the vault on their own (the old ones were
            // kept): the file stays the only working copy of those, so it is not touched.
            say(format!(
                "keepout: {shown} left as it is: some of its values were not stored on their own (you kept \
                 the vault's); import it again with --replace to store them, or remove it yourself"
            ));
        } else {
            let question = match &plan.rewrite {
                Rewrite::Remove => {
                    format!("Remove {shown} now that its credentials are in the vault?")
                }
                Rewrite::Replace(_) => format!("Rewrite {shown} without its secrets?"),
            };
            if options.yes || self.prompt().confirm(&question)? {
                plan.rewrite.carry_out(&plan.file)?;
                say(format!("keepout: done: {shown}"));
            } else {
                say(format!("keepout: {shown} left as it is"));
            }
        }
        say(format!("keepout: {}", plan.advice));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, Scripted};

    fn netrc(dir: &std::path::Path, password: &str) -> PathBuf {
        let file = dir.join(".netrc");
        std::fs::write(
            &file,
            format!("machine h.org login alice password {password}\n"),
        )
        .unwrap();
        file
    }

    #[test]
    fn a_file_is_moved_in_and_removed_after_a_yes() {
        let dir = tempfile::tempdir().unwrap();
        let (p, vault) = (Scripted::answering(&[true]), testing::vault(dir.path()));
        let file = netrc(dir.path(), "one");
        let options = ImportOptions::default();
        testing::session(&p)
            .import_file(&vault, Format::Netrc, Some(file.clone()), options)
            .unwrap();
        assert!(!file.exists());
        let said = p.said();
        let shown = file.display();
        assert_eq!(
            said[1..said.len() - 1],
            [
                "keepout: stored git/h.org/alice (from ~/.netrc (login alice))".to_string(),
                "keepout: the whole file is kept in the vault as backup/netrc".into(),
                format!("keepout: done: {shown}"),
            ]
        );
        assert_eq!(
            p.asked.borrow().last().unwrap(),
            &format!("Remove {shown} now that its credentials are in the vault?")
        );
        let doc = vault.read(&testing::key()).unwrap();
        assert_eq!(*doc.get("git/h.org/alice").unwrap().value, "one");
    }

    #[test]
    fn a_stored_value_kept_on_a_terminal_leaves_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let vault = testing::vault(dir.path());
        let session_of = |p| testing::session(p);
        let p = Scripted::default();
        let keep = ImportOptions {
            keep: true,
            ..ImportOptions::default()
        };
        let file = netrc(dir.path(), "one");
        session_of(&p)
            .import_file(&vault, Format::Netrc, Some(file.clone()), keep)
            .unwrap();
        assert!(file.exists(), "--keep");
        // Not at a terminal: the new value goes under a new name.
        netrc(dir.path(), "two");
        session_of(&p)
            .import_file(&vault, Format::Netrc, Some(file.clone()), keep)
            .unwrap();
        assert!(p.said().iter().any(|l| l.contains(
            "git/h.org/alice already holds a different value, kept; the new one is stored as \
             git/h.org/alice-2"
        )));
        // At a terminal: no to both, no to replacing: the old value is kept, the file too.
        netrc(dir.path(), "three");
        let p = Scripted::answering(&[false, false]);
        let asking = ImportOptions {
            interactive: true,
            ..ImportOptions::default()
        };
        session_of(&p)
            .import_file(&vault, Format::Netrc, Some(file.clone()), asking)
            .unwrap();
        let said = p.said();
        assert!(
            said.contains(
                &"keepout: git/h.org/alice kept as it was; the new value was not \
             stored on its own (it is in backup/netrc-3)"
                    .to_string()
            ),
            "{said:?}"
        );
        assert!(said
            .iter()
            .any(|l| l.contains("left as it is: some of its values")));
        assert!(file.exists());
        let doc = vault.read(&testing::key()).unwrap();
        assert_eq!(*doc.get("git/h.org/alice").unwrap().value, "one");
        assert_eq!(*doc.get("git/h.org/alice-2").unwrap().value, "two");
    }
}

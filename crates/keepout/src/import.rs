//! `keepout import netrc | git-credentials | pypirc | cargo | npmrc | gh`: plaintext credential
//! files into the vault, through [`keepout_vault::import`] (parsing, the conflict rules, the
//! store-verify-backup flow); here are the questions on the terminal and what is said.
//!
//! Guarantees: the file is removed or rewritten only after the library stored and verified
//! everything, and after a yes (or `--yes`); it is left as it is with `--keep`, or when the user
//! kept a stored value over one of the file's (the file is then its only copy).

use std::path::PathBuf;

use anyhow::Result;
use keepout_vault::import::{Choice, FileImport, Format, Placed, Rewrite};

use crate::cli::ImportKind;

/// The question for a name that holds a different value, on the terminal: keep both (the new
/// one under a new name), replace, or keep the old one only.
fn ask_on_terminal(base: &str, new_name: &str) -> Choice {
    let both = format!(
        "{base} is already in the vault with a different value. Keep both, storing the new one as {new_name}?"
    );
    match keepout_prompt::confirm(&both) {
        Ok(true) => return Choice::NewName,
        Ok(false) => {}
        Err(_) => return Choice::NewName,
    }
    let replace = format!(
        "Replace the stored value of {base} with the new one (the old value is then gone)?"
    );
    match keepout_prompt::confirm(&replace) {
        Ok(true) => Choice::Replace,
        Ok(false) => Choice::Keep,
        Err(_) => Choice::NewName,
    }
}

/// What `--replace`, `--yes` and a terminal make of a name that holds a different value.
fn conflict_policy(replace: bool, yes: bool) -> impl FnMut(&str, &str) -> Choice {
    use std::io::IsTerminal;
    let interactive = !yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    move |base, new_name| {
        if replace {
            Choice::Replace
        } else if interactive {
            ask_on_terminal(base, new_name)
        } else {
            Choice::NewName
        }
    }
}

fn report(placed: &Placed, note: &str, backup: &str) {
    match placed {
        Placed::Stored(n) => eprintln!("keepout: stored {n} ({note})"),
        Placed::Already(n) => eprintln!("keepout: {n} already stored (the same value; {note})"),
        Placed::Renamed { name, taken } => eprintln!(
            "keepout: {taken} already holds a different value, kept; the new one is stored as {name} ({note}). \
             `--replace` replaces instead; `keepout secret list` shows both"
        ),
        Placed::Replaced(n) => eprintln!("keepout: replaced {n} ({note})"),
        Placed::Kept(n) => eprintln!(
            "keepout: {n} kept as it was; the new value was not stored on its own (it is in {backup})"
        ),
    }
}

/// `keepout import KIND`. A stored secret is never lost: a name that holds the same value is
/// left alone, one that holds a different value keeps it (the new value goes under a new name,
/// `NAME-2`), unless the user answers otherwise on a terminal or gives `--replace`; each
/// import's whole file is kept as `backup/KIND`, `backup/KIND-2`, ... (the same content once).
pub fn import(
    kind: ImportKind,
    file: Option<PathBuf>,
    yes: bool,
    keep: bool,
    replace: bool,
) -> Result<i32> {
    let format = match kind {
        ImportKind::Netrc => Format::Netrc,
        ImportKind::GitCredentials => Format::GitCredentials,
        ImportKind::Pypirc => Format::Pypirc,
        ImportKind::Cargo => Format::Cargo,
        ImportKind::Npmrc => Format::Npmrc,
        ImportKind::Gh => Format::Gh,
    };
    let plan = format.read(file)?;
    if plan.entries.is_empty() {
        eprintln!("keepout: no credentials found in {}", plan.file.display());
        return Ok(0);
    }
    // The questions are asked while deciding, with no lock held; the library writes under it.
    let mut moving = FileImport::new(&plan, format, conflict_policy(replace, yes))?;
    let vault = crate::secret::vault();
    let imported = crate::secret::session().move_in(&vault, &mut moving)?;
    let backup_name = imported.backup_name();
    for (e, p) in plan.entries.iter().zip(&imported.entries) {
        report(p, &e.note, backup_name);
    }
    match &imported.backup {
        Placed::Already(n) => {
            eprintln!(
                "keepout: the whole file was already kept in the vault as {n} (the same content)"
            )
        }
        _ => eprintln!("keepout: the whole file is kept in the vault as {backup_name}"),
    }
    let kept_old = imported
        .entries
        .iter()
        .any(|p| matches!(p, Placed::Kept(_)));
    if keep {
        eprintln!("keepout: {} left as it is (--keep)", plan.file.display());
    } else if kept_old {
        // Some of the file's values are not in the vault on their own (the old ones were kept):
        // the file stays the only working copy of those, so it is not touched.
        eprintln!(
            "keepout: {} left as it is: some of its values were not stored on their own (you kept \
             the vault's); import it again with --replace to store them, or remove it yourself",
            plan.file.display()
        );
    } else {
        let action = match &plan.rewrite {
            Rewrite::Remove => format!(
                "Remove {} now that its credentials are in the vault?",
                plan.file.display()
            ),
            Rewrite::Replace(_) => format!("Rewrite {} without its secrets?", plan.file.display()),
        };
        if yes || keepout_prompt::confirm(&action)? {
            plan.rewrite.carry_out(&plan.file)?;
            eprintln!("keepout: done: {}", plan.file.display());
        } else {
            eprintln!("keepout: {} left as it is", plan.file.display());
        }
    }
    eprintln!("keepout: {}", plan.advice);
    Ok(0)
}

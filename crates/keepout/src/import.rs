//! `keepout import netrc | git-credentials | pypirc | cargo | npmrc | gh`: plaintext credential
//! files into the vault, through [`keepout_vault::Unlock::import_file`] (parsing, the conflict
//! rules, the store-verify-backup flow, the questions and lines on the terminal).
//!
//! Guarantees: the file is removed or rewritten only after the library stored and verified
//! everything, and after a yes (or `--yes`); stored values that differ are asked about only
//! when standard input and error are a terminal and `--yes` is not given.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use keepout_vault::import::{Format, ImportOptions};

use crate::cli::ImportKind;

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
    let interactive = !yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let options = ImportOptions {
        yes,
        keep,
        replace,
        interactive,
    };
    crate::secret::session().import_file(&crate::secret::vault(), format, file, options)?;
    Ok(0)
}

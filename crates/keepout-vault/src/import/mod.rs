//! `keepout import`: plaintext credential files into the vault.
//!
//! For each format ([`Format`]): read and parse the file into a [`Plan`], store every credential,
//! read the vault back to verify the round trip, keep the whole original file in the vault
//! (`backup/KIND`), all through the one move-into-vault flow ([`crate::Unlock::move_in`], which SSH key
//! imports use too). The caller then, after a yes, removes the file or rewrites it without the
//! secrets ([`Rewrite::carry_out`]); [`crate::Unlock::import_file`] is that whole import, with
//! its questions and lines through the session's prompt. Nothing is removed unless everything was
//! stored.
//!
//! A stored secret is never lost ([`conflict`]): a name holding the same value is left alone; a
//! name holding a different value keeps it, and the new value goes under the next free name
//! (`NAME-2`), unless the caller's choice says otherwise. Each import's whole file is kept as
//! `backup/KIND`, `backup/KIND-2`, ... (the same content once), whatever was chosen. This module
//! never asks anything itself: the choice is the caller's callback, or its [`crate::Prompt`].

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::{check_name, Document, VaultError};

mod cargo;
pub mod conflict;
mod file;
mod flow;
mod gh;
mod git_credentials;
mod netrc;
mod npmrc;
mod plan;
mod pypirc;

pub use conflict::{Choice, Placed};
pub use file::ImportOptions;
pub use flow::{MoveIn, Step};
pub use plan::{Entry, Plan, Rewrite};

/// The credential files keepout imports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Netrc,
    GitCredentials,
    Pypirc,
    Cargo,
    Npmrc,
    Gh,
}

impl Format {
    /// The name of its backup in the vault (`backup/LABEL`).
    pub fn label(self) -> &'static str {
        match self {
            Format::Netrc => "netrc",
            Format::GitCredentials => "git-credentials",
            Format::Pypirc => "pypirc",
            Format::Cargo => "cargo",
            Format::Npmrc => "npmrc",
            Format::Gh => "gh",
        }
    }

    /// Where the tool keeps the file under `home`.
    pub fn default_file(self, home: &Path) -> PathBuf {
        home.join(match self {
            Format::Netrc => ".netrc",
            Format::GitCredentials => ".git-credentials",
            Format::Pypirc => ".pypirc",
            Format::Cargo => ".cargo/credentials.toml",
            Format::Npmrc => ".npmrc",
            Format::Gh => ".config/gh/hosts.yml",
        })
    }

    /// The plan for `text`, the content of `file`.
    pub fn plan(self, text: &str, file: PathBuf) -> Result<Plan, VaultError> {
        Ok(match self {
            Format::Netrc => netrc::plan(text, file),
            Format::GitCredentials => git_credentials::plan(text, file),
            Format::Pypirc => pypirc::plan(text, file),
            Format::Cargo => cargo::plan(text, file)?,
            Format::Npmrc => npmrc::plan(text, file),
            Format::Gh => gh::plan(text, file),
        })
    }

    /// Read `file` (by default the tool's own, under `$HOME`) and plan its import.
    pub fn read(self, file: Option<PathBuf>) -> Result<Plan, VaultError> {
        let file = file.unwrap_or_else(|| self.default_file(&crate::scope::home()));
        let text = Zeroizing::new(std::fs::read_to_string(&file).map_err(|source| {
            VaultError::CannotRead {
                path: file.clone(),
                source,
            }
        })?);
        self.plan(&text, file)
    }
}

/// Where one file's values and its backup went.
pub struct Imported {
    /// One for each of the plan's entries, in order.
    pub entries: Vec<Placed>,
    /// The whole file's.
    pub backup: Placed,
    backup_base: String,
}

impl Imported {
    /// The name the whole file is kept under.
    pub fn backup_name(&self) -> &str {
        self.backup.holder().unwrap_or(&self.backup_base)
    }
}

/// The move of one planned file into the vault ([`MoveIn`]): its entries, each placed by
/// [`conflict::decide`] with `choose` asked where a name holds a different value, and the whole
/// file as `backup/LABEL` (never replaced: a different file goes under the next free name).
pub struct FileImport<'p, C> {
    plan: &'p Plan,
    original: Zeroizing<String>,
    backup_base: String,
    backup_note: String,
    choose: C,
}

impl<'p, C: FnMut(&str, &str) -> Choice> FileImport<'p, C> {
    /// Check that every entry's name is a secret name, and read the whole file for its backup.
    pub fn new(plan: &'p Plan, format: Format, choose: C) -> Result<Self, VaultError> {
        for e in &plan.entries {
            check_name(&e.name).map_err(|source| VaultError::Unnamable {
                what: e.note.clone(),
                source: Box::new(source),
            })?;
        }
        let original =
            Zeroizing::new(std::fs::read_to_string(&plan.file).map_err(VaultError::File)?);
        Ok(FileImport {
            plan,
            original,
            backup_base: format!("backup/{}", format.label()),
            backup_note: format!("the whole of {}", plan.file.display()),
            choose,
        })
    }
}

impl<C: FnMut(&str, &str) -> Choice> MoveIn for FileImport<'_, C> {
    type Decision = (Vec<Placed>, Placed);
    type Placed = Imported;
    type Error = VaultError;

    fn decide(&mut self, doc: &Document) -> Result<Step<Self::Decision, Imported>, VaultError> {
        let entries = self
            .plan
            .entries
            .iter()
            .map(|e| conflict::decide(doc, &e.name, &e.value, &mut self.choose))
            .collect();
        let backup = conflict::decide(&Document::new(), &self.backup_base, "", &mut |_, _| {
            Choice::NewName
        });
        Ok(Step::Write((entries, backup)))
    }

    fn apply(
        &self,
        doc: &mut Document,
        (decided, backup_decided): Self::Decision,
    ) -> Result<Imported, VaultError> {
        let mut entries = Vec::new();
        for (e, d) in self.plan.entries.iter().zip(&decided) {
            entries.push(conflict::apply(doc, &e.name, &e.value, &e.note, d)?);
        }
        let backup = conflict::apply(
            doc,
            &self.backup_base,
            &self.original,
            &self.backup_note,
            &backup_decided,
        )?;
        Ok(Imported {
            entries,
            backup,
            backup_base: self.backup_base.clone(),
        })
    }

    fn verify(&self, doc: &Document, placed: &Imported) -> Result<(), VaultError> {
        let check = |name: &str, value: &str| -> Result<(), VaultError> {
            if *doc.get(name)?.value != *value {
                return Err(VaultError::NotReadBack {
                    name: name.to_string(),
                    file: self.plan.file.clone(),
                });
            }
            Ok(())
        };
        for (e, p) in self.plan.entries.iter().zip(&placed.entries) {
            if let Some(name) = p.holder() {
                check(name, &e.value)?;
            }
        }
        check(placed.backup_name(), &self.original)
    }
}

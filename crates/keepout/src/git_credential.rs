//! `keepout git-credential get | store | erase`: git's credential-helper protocol, served from the
//! vault.
//!
//! Secrets are named `git/HOST/USERNAME` (the value is the password or token; a port is written
//! `HOST-PORT`); `git/HOST` alone is a token for any user name ([`keepout_vault::helper`]).
//! `get` answers only for the protocols https and http; with no matching secret it answers
//! nothing, so git goes on to its next helper or asks.
//!
//! Set up with `git config --global credential.helper '!keepout git-credential'` (the `!` makes
//! git run the command as given).

use std::io::Write;

use anyhow::{bail, Result};
use keepout_vault::helper::{git_lookup, git_secret_name, GitRequest};
use keepout_vault::Zeroizing;

use crate::cli::GitCredentialAction;

pub fn git_credential(action: GitCredentialAction) -> Result<i32> {
    let request = GitRequest::read(std::io::stdin().lock())?;
    let Some(host) = request.host() else {
        return Ok(0); // not https or http, or a host keepout cannot name a secret after
    };
    let vault = crate::secret::vault();
    match action {
        GitCredentialAction::Get => {
            if !vault.exists() {
                // git then asks as if there were no helper; say why, where git shows it.
                if vault.backup_path().exists() {
                    eprintln!(
                        "keepout git-credential: the vault {} is missing but its backup {} is \
                         there; `keepout secret list` says how to restore it",
                        vault.path().display(),
                        vault.backup_path().display()
                    );
                }
                return Ok(0);
            }
            let doc = crate::secret::session().read_document(&vault)?;
            if let Some((name, user)) = git_lookup(&doc, &host, request.get("username")) {
                let value = &doc.get(&name)?.value;
                let mut out = std::io::stdout().lock();
                writeln!(out, "username={user}")?;
                writeln!(out, "password={}", value.as_str())?;
            }
        }
        GitCredentialAction::Store => {
            let (Some(user), Some(password)) = (request.get("username"), request.get("password"))
            else {
                return Ok(0);
            };
            let name = git_secret_name(&host, user);
            if keepout_vault::check_name(&name).is_err() {
                bail!("cannot store a credential for user {user:?} (names are lower-case)");
            }
            let session = crate::secret::session();
            let opened = session.for_writing_with_document(&vault)?;
            let value = Zeroizing::new(password.to_string());
            session.update(&vault, opened, |doc| {
                let unchanged = doc.get(&name).is_ok_and(|s| *s.value == *value);
                if !unchanged {
                    doc.set(&name, value, Some("stored by git".into()))?;
                }
                Ok(())
            })?;
        }
        GitCredentialAction::Erase => {
            if !vault.exists() {
                return Ok(0);
            }
            let Some(user) = request.get("username") else {
                return Ok(0);
            };
            let name = git_secret_name(&host, user);
            let session = crate::secret::session();
            let opened = session.for_writing_with_document(&vault)?;
            session.update(&vault, opened, |doc| {
                let _ = doc.remove(&name);
                Ok(())
            })?;
        }
    }
    Ok(0)
}

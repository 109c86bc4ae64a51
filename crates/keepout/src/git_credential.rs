//! `keepout git-credential get | store | erase`: git's credential-helper protocol, served from the
//! vault.
//!
//! Secrets are named `git/HOST/USERNAME` (the value is the password or token; a port is written
//! `HOST-PORT`); `git/HOST` alone is a token for any user name. `get` answers only for the protocols https and http; with no
//! matching secret it answers nothing, so git goes on to its next helper or asks.
//!
//! Set up with `git config --global credential.helper '!keepout git-credential'` (the `!` makes
//! git run the command as given).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use anyhow::{bail, Result};
use keepout_vault::{Document, Zeroizing};

use crate::cli::GitCredentialAction;

/// Read git's `key=value` lines up to a blank line or the end.
fn read_request() -> Result<BTreeMap<String, Zeroizing<String>>> {
    let mut request = BTreeMap::new();
    for line in std::io::stdin().lock().lines() {
        let line = Zeroizing::new(line?);
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once('=') {
            request.insert(k.to_string(), Zeroizing::new(v.to_string()));
        }
    }
    Ok(request)
}

/// The vault names to look at for a request, most specific first.
fn candidates(doc: &Document, host: &str, user: Option<&str>) -> Option<(String, String)> {
    if let Some(user) = user {
        let name = format!("git/{host}/{user}");
        if doc.get(&name).is_ok() {
            return Some((name, user.to_string()));
        }
    }
    let prefix = format!("git/{host}/");
    if user.is_none() {
        if let Some(info) = doc.list().into_iter().find(|s| s.name.starts_with(&prefix)) {
            let user = info.name[prefix.len()..].to_string();
            return Some((info.name, user));
        }
    }
    let name = format!("git/{host}");
    doc.get(&name)
        .is_ok()
        .then(|| (name, user.unwrap_or("git").to_string()))
}

pub fn git_credential(action: GitCredentialAction) -> Result<i32> {
    let request = read_request()?;
    let get = |k: &str| request.get(k).map(|v| v.as_str().to_string());
    let protocol = get("protocol").unwrap_or_default();
    let Some(host) = get("host") else {
        return Ok(0);
    };
    // Host names are case-insensitive; a port becomes `-PORT` (git/127.0.0.1-8080/USER).
    let host = host.to_ascii_lowercase().replace(':', "-");
    if protocol != "https" && protocol != "http" {
        return Ok(0);
    }
    if keepout_vault::check_name(&format!("git/{host}")).is_err() {
        return Ok(0); // a host name keepout cannot name a secret after: not ours
    }
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
            if let Some((name, user)) = candidates(&doc, &host, get("username").as_deref()) {
                let value = &doc.get(&name)?.value;
                let mut out = std::io::stdout().lock();
                writeln!(out, "username={user}")?;
                writeln!(out, "password={}", value.as_str())?;
            }
        }
        GitCredentialAction::Store => {
            let (Some(user), Some(password)) = (get("username"), request.get("password")) else {
                return Ok(0);
            };
            let name = format!("git/{host}/{user}");
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
            let Some(user) = get("username") else {
                return Ok(0);
            };
            let name = format!("git/{host}/{user}");
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

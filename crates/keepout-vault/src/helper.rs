//! The secrets the credential helpers serve (`keepout git-credential`, `keepout
//! cargo-credential`): their names, git's helper protocol ([`git`]) over any reader and
//! writer, and cargo's ([`CargoProvider`]).
//!
//! Guarantees: git's secrets are `git/HOST/USERNAME` (a port written `HOST-PORT`, the host in
//! lower case), `git/HOST` alone a token for any user name; git is answered only for `https`
//! and `http`, and only for a host keepout can name a secret after; a registry's token is
//! `cargo/REGISTRY` (`cargo/crates-io` for crates.io). Request values are held in memory that is
//! zeroed on drop. `get` with no matching secret answers nothing (git goes on to its next helper
//! or asks); with no vault too, and when the vault is missing beside its backup that is said
//! through the session's prompt; `store` writes only a value that changed.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use zeroize::Zeroizing;

use crate::{check_name, name_part, Document, Prompt, Unlock, VaultError, VaultFile};

mod cargo;

pub use cargo::{serve_cargo, CargoProvider};

/// What git asks of its credential helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitAction {
    /// Answer with a user name and password, if there is one.
    Get,
    /// Keep the user name and password that worked.
    Store,
    /// Forget the user's password, which did not work.
    Erase,
}

/// One exchange of git's credential-helper protocol: read the request from `input`, and for
/// [`GitAction::Get`] write the answer (`username=`, `password=` lines) to `output`.
pub fn git<P: Prompt>(
    session: &Unlock<P>,
    vault: &VaultFile,
    action: GitAction,
    input: impl BufRead,
    mut output: impl Write,
) -> Result<(), VaultError> {
    let request = GitRequest::read(input).map_err(VaultError::Protocol)?;
    let Some(host) = request.host() else {
        return Ok(()); // not https or http, or a host keepout cannot name a secret after
    };
    match action {
        GitAction::Get => {
            if !vault.exists() {
                // git then asks as if there were no helper; say why, where git shows it.
                if vault.backup_path().exists() {
                    session.prompt().say(&format!(
                        "keepout git-credential: the vault {} is missing but its backup {} is \
                         there; `keepout secret list` says how to restore it",
                        vault.path().display(),
                        vault.backup_path().display()
                    ));
                }
                return Ok(());
            }
            let doc = session.read_document(vault)?;
            if let Some((name, user)) = git_lookup(&doc, &host, request.get("username")) {
                let value = &doc.get(&name)?.value;
                writeln!(output, "username={user}")
                    .and_then(|()| writeln!(output, "password={}", value.as_str()))
                    .map_err(VaultError::Protocol)?;
            }
        }
        GitAction::Store => {
            let (Some(user), Some(password)) = (request.get("username"), request.get("password"))
            else {
                return Ok(());
            };
            let name = git_secret_name(&host, user);
            if check_name(&name).is_err() {
                return Err(VaultError::UnstorableUser(user.to_string()));
            }
            let opened = session.for_writing_with_document(vault)?;
            let value = Zeroizing::new(password.to_string());
            session.update(vault, opened, |doc| {
                let unchanged = doc.get(&name).is_ok_and(|s| *s.value == *value);
                if !unchanged {
                    doc.set(&name, value, Some("stored by git".into()))?;
                }
                Ok(())
            })?;
        }
        GitAction::Erase => {
            if !vault.exists() {
                return Ok(());
            }
            let Some(user) = request.get("username") else {
                return Ok(());
            };
            let name = git_secret_name(&host, user);
            let opened = session.for_writing_with_document(vault)?;
            session.update(vault, opened, |doc| {
                let _ = doc.remove(&name);
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// One request of git's credential-helper protocol: its `key=value` lines.
pub struct GitRequest {
    fields: BTreeMap<String, Zeroizing<String>>,
}

impl GitRequest {
    /// Read git's `key=value` lines up to a blank line or the end.
    pub fn read(input: impl BufRead) -> std::io::Result<GitRequest> {
        let mut fields = BTreeMap::new();
        for line in input.lines() {
            let line = Zeroizing::new(line?);
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once('=') {
                fields.insert(k.to_string(), Zeroizing::new(v.to_string()));
            }
        }
        Ok(GitRequest { fields })
    }

    /// The value of `key`, if the request has one.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(|v| v.as_str())
    }

    /// The host as secret names hold it (lower case, a port as `-PORT`: `127.0.0.1-8080`), when
    /// the request is one keepout answers: `https` or `http`, for a host it can name a secret
    /// after.
    pub fn host(&self) -> Option<String> {
        // Host names are case-insensitive; a port becomes `-PORT` (git/127.0.0.1-8080/USER).
        let host = self.get("host")?.to_ascii_lowercase().replace(':', "-");
        let protocol = self.get("protocol").unwrap_or_default();
        if protocol != "https" && protocol != "http" {
            return None;
        }
        // A host name keepout cannot name a secret after: not ours.
        check_name(&format!("git/{host}")).ok()?;
        Some(host)
    }
}

/// The secret of `user` at `host` (as [`GitRequest::host`] gives it).
pub fn git_secret_name(host: &str, user: &str) -> String {
    format!("git/{host}/{user}")
}

/// The secret that answers a request for `host` and `user`, and the user name to answer with:
/// `git/HOST/USER` first; without a user, the first `git/HOST/...`; then `git/HOST` (for the
/// user asked, else `git`).
pub fn git_lookup(doc: &Document, host: &str, user: Option<&str>) -> Option<(String, String)> {
    if let Some(user) = user {
        let name = git_secret_name(host, user);
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

/// The secret of a cargo registry: by its configured `name`, else its index URL made into a
/// name.
pub fn cargo_secret_name(name: Option<&str>, index_url: &str) -> String {
    let base = name.map(str::to_string).unwrap_or_else(|| {
        index_url
            .trim_start_matches("sparse+")
            .split("://")
            .last()
            .unwrap_or("")
            .to_string()
    });
    let cleaned = name_part(&base);
    format!("cargo/{}", cleaned.trim_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, Scripted};

    /// `action` with `request`, on the vault in `dir`: what it answered.
    fn ask_git(
        prompt: &Scripted,
        dir: &std::path::Path,
        action: GitAction,
        request: &str,
    ) -> String {
        let mut out = Vec::new();
        git(
            &testing::session(prompt),
            &testing::vault(dir),
            action,
            request.as_bytes(),
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn git_gets_what_it_stored_and_nothing_once_erased() {
        let dir = tempfile::tempdir().unwrap();
        let p = Scripted::default();
        let asked = "protocol=https\nhost=GitHub.com\nusername=alice\n";
        assert_eq!(
            ask_git(&p, dir.path(), GitAction::Get, asked),
            "",
            "no vault: no answer"
        );
        let stored = format!("{asked}password=tok=en\n\n");
        assert_eq!(ask_git(&p, dir.path(), GitAction::Store, &stored), "");
        let doc = testing::vault(dir.path()).read(&testing::key()).unwrap();
        assert_eq!(doc.list()[0].note.as_deref(), Some("stored by git"));
        assert_eq!(
            ask_git(&p, dir.path(), GitAction::Get, asked),
            "username=alice\npassword=tok=en\n"
        );
        assert_eq!(
            ask_git(
                &p,
                dir.path(),
                GitAction::Get,
                "protocol=ssh\nhost=github.com\n"
            ),
            "",
            "only https and http"
        );
        ask_git(&p, dir.path(), GitAction::Erase, asked);
        assert_eq!(ask_git(&p, dir.path(), GitAction::Get, asked), "");
        assert!(p
            .said()
            .iter()
            .any(|l| l.starts_with("keepout: created the vault")));
    }

    #[test]
    fn git_is_told_why_when_only_the_backup_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let vault = testing::vault(dir.path());
        std::fs::write(vault.backup_path(), "").unwrap();
        let p = Scripted::default();
        assert_eq!(
            ask_git(
                &p,
                dir.path(),
                GitAction::Get,
                "protocol=https\nhost=h.org\n"
            ),
            ""
        );
        assert_eq!(
            p.said(),
            [format!(
                "keepout git-credential: the vault {} is missing but its backup {} is there; \
                 `keepout secret list` says how to restore it",
                vault.path().display(),
                vault.backup_path().display()
            )]
        );
        assert!(p.asked.borrow().is_empty(), "no passphrase asked");
    }

    #[test]
    fn git_cannot_store_for_a_user_no_name_holds() {
        let dir = tempfile::tempdir().unwrap();
        let p = Scripted::default();
        let e = git(
            &testing::session(&p),
            &testing::vault(dir.path()),
            GitAction::Store,
            &b"protocol=https\nhost=h.org\nusername=Alice\npassword=x\n"[..],
            Vec::new(),
        )
        .unwrap_err();
        assert_eq!(
            (e.to_string(), e.exit_code()),
            (
                "cannot store a credential for user \"Alice\" (names are lower-case)".into(),
                125
            )
        );
    }

    fn request(text: &str) -> GitRequest {
        GitRequest::read(text.as_bytes()).unwrap()
    }

    #[test]
    fn requests_are_read_up_to_a_blank_line() {
        let r = request("protocol=https\nhost=example.org\npassword=a=b\n\nusername=late\n");
        assert_eq!(r.get("protocol"), Some("https"));
        assert_eq!(r.get("password"), Some("a=b"));
        assert_eq!(r.get("username"), None);
    }

    #[test]
    fn hosts_are_lower_case_with_the_port_as_a_suffix() {
        assert_eq!(
            request("protocol=https\nhost=GitHub.com\n")
                .host()
                .as_deref(),
            Some("github.com")
        );
        assert_eq!(
            request("protocol=http\nhost=127.0.0.1:8080\n")
                .host()
                .as_deref(),
            Some("127.0.0.1-8080")
        );
        assert_eq!(request("protocol=ssh\nhost=github.com\n").host(), None);
        assert_eq!(request("protocol=https\n").host(), None);
        assert_eq!(request("protocol=https\nhost=a b\n").host(), None);
        assert_eq!(
            git_secret_name("github.com", "alice"),
            "git/github.com/alice"
        );
    }

    #[test]
    fn the_most_specific_secret_answers() {
        let mut doc = Document::new();
        let value = || Zeroizing::new("t".to_string());
        assert_eq!(git_lookup(&doc, "h.org", Some("alice")), None);
        doc.set("git/h.org", value(), None).unwrap();
        assert_eq!(
            git_lookup(&doc, "h.org", None),
            Some(("git/h.org".into(), "git".into()))
        );
        assert_eq!(
            git_lookup(&doc, "h.org", Some("alice")),
            Some(("git/h.org".into(), "alice".into()))
        );
        doc.set("git/h.org/bob", value(), None).unwrap();
        assert_eq!(
            git_lookup(&doc, "h.org", None),
            Some(("git/h.org/bob".into(), "bob".into()))
        );
        assert_eq!(
            git_lookup(&doc, "h.org", Some("bob")),
            Some(("git/h.org/bob".into(), "bob".into()))
        );
        assert_eq!(
            git_lookup(&doc, "h.org", Some("alice")),
            Some(("git/h.org".into(), "alice".into()))
        );
    }

    #[test]
    fn registry_names() {
        assert_eq!(
            cargo_secret_name(Some("crates-io"), "https://x"),
            "cargo/crates-io"
        );
        assert_eq!(
            cargo_secret_name(None, "sparse+https://Reg.Example/index/"),
            "cargo/reg.example-index"
        );
    }
}

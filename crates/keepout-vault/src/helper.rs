//! The secrets the credential helpers serve (`keepout git-credential`, `keepout
//! cargo-credential`): their names, and git's helper protocol read as text.
//!
//! Guarantees: git's secrets are `git/HOST/USERNAME` (a port written `HOST-PORT`, the host in
//! lower case), `git/HOST` alone a token for any user name; git is answered only for `https`
//! and `http`, and only for a host keepout can name a secret after; a registry's token is
//! `cargo/REGISTRY` (`cargo/crates-io` for crates.io). Request values are held in memory that is
//! zeroed on drop.

use std::collections::BTreeMap;
use std::io::BufRead;

use zeroize::Zeroizing;

use crate::{check_name, name_part, Document};

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

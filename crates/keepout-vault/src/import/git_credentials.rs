//! `~/.git-credentials` (git's `credential.helper=store`): each `https://USER:PASS@HOST` line
//! becomes `git/HOST/USER`, user and password `%`-decoded as git writes them; the file is
//! removed afterwards.

use std::path::PathBuf;

use zeroize::Zeroizing;

use super::plan::{Entry, Plan, Rewrite};
use crate::name_part;

/// `%XX` decoding, as git-credential-store writes user names and passwords.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn plan(text: &str, file: PathBuf) -> Plan {
    let mut entries = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((_, rest)) = line.split_once("://") else {
            continue;
        };
        let Some((userinfo, hostpath)) = rest.rsplit_once('@') else {
            continue;
        };
        let Some((user, pass)) = userinfo.split_once(':') else {
            continue;
        };
        let host = hostpath.split('/').next().unwrap_or("");
        entries.push(Entry {
            name: format!(
                "git/{}/{}",
                name_part(host),
                name_part(&percent_decode(user))
            ),
            value: Zeroizing::new(percent_decode(pass)),
            note: "from ~/.git-credentials".into(),
        });
    }
    Plan {
        file,
        entries,
        rewrite: Rewrite::Remove,
        advice: "Use `git config --global credential.helper '!keepout git-credential'` instead of \
                 credential.helper=store."
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_credentials_are_percent_decoded() {
        let p = plan("https://alice:p%40ss%2Fw@github.com\n", "g".into());
        assert_eq!(p.entries[0].name, "git/github.com/alice");
        assert_eq!(*p.entries[0].value, "p@ss/w");
    }

    #[test]
    fn lines_without_a_password_are_skipped() {
        let p = plan(
            "https://github.com\nnot a url\nhttps://bob@host\n\nhttps://b%zz:x@h.org/p\n",
            "g".into(),
        );
        let got: Vec<(&str, &str)> = p
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(got, [("git/h.org/b-zz", "x")]);
        assert!(matches!(p.rewrite, Rewrite::Remove));
    }
}

//! `~/.netrc` (curl, pip, git's libcurl): every `machine` (and `default`) with a password
//! becomes `git/HOST/LOGIN`; the file is removed afterwards, since all it holds is logins.
//! `macdef` macros are skipped to the next `machine`.

use std::path::PathBuf;

use zeroize::Zeroizing;

use super::plan::{Entry, Plan, Rewrite};
use crate::name_part;

pub(super) fn plan(text: &str, file: PathBuf) -> Plan {
    let mut entries = Vec::new();
    let mut tokens = text.split_whitespace().peekable();
    let (mut host, mut login, mut password): (Option<String>, Option<String>, Option<String>) =
        (None, None, None);
    let mut flush =
        |host: &mut Option<String>, login: &mut Option<String>, password: &mut Option<String>| {
            if let (Some(h), Some(p)) = (host.take(), password.take()) {
                let user = login.take().unwrap_or_else(|| "default".into());
                entries.push(Entry {
                    name: format!("git/{}/{}", name_part(&h), name_part(&user)),
                    value: Zeroizing::new(p),
                    note: format!("from ~/.netrc (login {user})"),
                });
            }
            *login = None;
        };
    while let Some(t) = tokens.next() {
        match t {
            "machine" => {
                flush(&mut host, &mut login, &mut password);
                host = tokens.next().map(str::to_string);
            }
            "default" => {
                flush(&mut host, &mut login, &mut password);
                host = Some("default".into());
            }
            "login" => login = tokens.next().map(str::to_string),
            "password" => password = tokens.next().map(str::to_string),
            "account" => {
                tokens.next();
            }
            "macdef" => {
                // A macro runs to the next blank line; whitespace splitting cannot see that, so
                // macros are skipped to the next `machine`.
                while tokens
                    .peek()
                    .is_some_and(|t| *t != "machine" && *t != "default")
                {
                    tokens.next();
                }
            }
            _ => {}
        }
    }
    flush(&mut host, &mut login, &mut password);
    let advice = netrc_advice(entries.first().map(|e| e.name.as_str()));
    Plan {
        file,
        entries,
        rewrite: Rewrite::Remove,
        advice,
    }
}

/// How to keep git, curl and pip working once ~/.netrc is gone, for the secret `git/HOST/USER`
/// (the first login of the file).
fn netrc_advice(first: Option<&str>) -> String {
    let (host, user) = first
        .and_then(|n| n.strip_prefix("git/"))
        .and_then(|n| n.split_once('/'))
        .unwrap_or(("HOST", "USER"));
    let secret = format!("git/{host}/{user}");
    format!(
        "curl and pip read ~/.netrc: without it they no longer log in by themselves. \
         git gets these logins through `git config --global credential.helper '!keepout git-credential'`. \
         For curl and pip, give the password to the one command that needs it, through a scope \
         (~/.config/keepout/config.toml, see docs/vault.md):\n\
         \x20   [[scope]]\n\
         \x20   name = \"{host}\"\n\
         \x20   dirs = [\"~/src/*\"]\n\
         \x20   env = {{ NETRC_PASSWORD = \"keepout:{secret}\" }}\n\
         \x20 curl: keepout exec -- sh -c 'printf \"machine {host} login {user} password %s\\n\" \"$NETRC_PASSWORD\" | curl --netrc-file /dev/stdin https://{host}/...'\n\
         \x20 pip:  keepout exec -- sh -c 'PIP_INDEX_URL=\"https://{user}:$NETRC_PASSWORD@{host}/simple\" pip install PACKAGE'\n\
         (the password goes through a pipe or the environment, never an argument list; in a URL, \
         %-encode a password with `@`, `:` or `/`)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netrc_entries() {
        let p = plan(
            "machine github.com login alice password ghp_1\nmachine pypi.org\n  login __token__\n  password pypi-2\nmacdef init\ncd /\n\ndefault login anon password x3\n",
            "n".into(),
        );
        let got: Vec<(String, String)> = p
            .entries
            .iter()
            .map(|e| (e.name.clone(), e.value.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("git/github.com/alice".into(), "ghp_1".into()),
                ("git/pypi.org/__token__".into(), "pypi-2".into()),
                ("git/default/anon".into(), "x3".into())
            ]
        );
    }
}

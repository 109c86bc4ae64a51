//! What `keepout git setup` puts in the global git config: fetch and clone over HTTPS, push over
//! SSH.
//!
//! Untrusted code that runs `git fetch` (a test suite, a build script) should not be able to use
//! your SSH key; pushes should, but only through an agent that asks (`keepout agent`). Git's URL
//! rewriting does exactly this, in your global git config:
//!
//! ```ini
//! [url "https://github.com/"]
//!     insteadOf = git@github.com:
//!     insteadOf = ssh://git@github.com/
//! [url "git@github.com:"]
//!     pushInsteadOf = https://github.com/
//!     pushInsteadOf = ssh://git@github.com/
//!     pushInsteadOf = git@github.com:
//! ```
//!
//! (The last line keeps pushes of `git@` remotes on SSH: without it the HTTPS `insteadOf` would
//! apply to pushes too.) Guarantees: every change is one `git config --global` command
//! ([`Change::git_args`]); a value already there is not added again and `--undo` removes
//! exactly these values (by fixed value, never a pattern), so setting up and undoing are
//! idempotent; only plain host names are accepted.

/// The hosts set up when none are named.
pub const DEFAULT_HOSTS: &[&str] = &["github.com", "gitlab.com", "codeberg.org"];

/// A name given as a host that is none (it holds a `/`, `:`, `@` or space, or is empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a host name (e.g. github.com)")]
pub struct NotAHost(pub String);

/// The hosts to set up: those `given`, else [`DEFAULT_HOSTS`]; each a plain host name.
pub fn hosts(given: &[String]) -> Result<Vec<String>, NotAHost> {
    let hosts: Vec<String> = if given.is_empty() {
        DEFAULT_HOSTS.iter().map(|h| h.to_string()).collect()
    } else {
        given.to_vec()
    };
    for h in &hosts {
        if h.is_empty() || h.contains(['/', ':', '@', ' ']) {
            return Err(NotAHost(h.clone()));
        }
    }
    Ok(hosts)
}

/// One value of the global git config: `key` (`url.BASE.insteadOf`) holds `value` among its
/// values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub key: String,
    pub value: String,
}

/// The values of the global git config for `host`.
pub fn rewrites(host: &str) -> Vec<Rewrite> {
    let https = format!("https://{host}/");
    let scp = format!("git@{host}:");
    let ssh = format!("ssh://git@{host}/");
    let rewrite = |key: String, value: String| Rewrite { key, value };
    vec![
        rewrite(format!("url.{https}.insteadOf"), scp.clone()),
        rewrite(format!("url.{https}.insteadOf"), ssh.clone()),
        rewrite(format!("url.{scp}.pushInsteadOf"), https),
        rewrite(format!("url.{scp}.pushInsteadOf"), ssh),
        rewrite(format!("url.{scp}.pushInsteadOf"), scp.clone()),
    ]
}

/// Whether `value` is one of the values `git config --global --get-all KEY` printed (`listed`).
pub fn holds(listed: &str, value: &str) -> bool {
    listed.lines().any(|l| l == value)
}

/// One change of the global git config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<'r> {
    Add(&'r Rewrite),
    Remove(&'r Rewrite),
}

impl<'r> Change<'r> {
    /// The change `rewrite` needs, set up or (`undo`) undone, when it is `present` or not.
    pub fn needed(rewrite: &'r Rewrite, undo: bool, present: bool) -> Option<Change<'r>> {
        match (undo, present) {
            (false, false) => Some(Change::Add(rewrite)),
            (true, true) => Some(Change::Remove(rewrite)),
            _ => None,
        }
    }

    /// The arguments of the `git` command that makes it.
    pub fn git_args(&self) -> Vec<&'r str> {
        match self {
            Change::Add(r) => vec!["config", "--global", "--add", &r.key, &r.value],
            Change::Remove(r) => vec![
                "config",
                "--global",
                "--fixed-value",
                "--unset-all",
                &r.key,
                &r.value,
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetches_go_over_https_and_pushes_over_ssh() {
        let pairs: Vec<(String, String)> = rewrites("example.org")
            .into_iter()
            .map(|r| (r.key, r.value))
            .collect();
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            pairs,
            [
                pair("url.https://example.org/.insteadOf", "git@example.org:"),
                pair(
                    "url.https://example.org/.insteadOf",
                    "ssh://git@example.org/"
                ),
                pair("url.git@example.org:.pushInsteadOf", "https://example.org/"),
                pair(
                    "url.git@example.org:.pushInsteadOf",
                    "ssh://git@example.org/"
                ),
                pair("url.git@example.org:.pushInsteadOf", "git@example.org:"),
            ]
        );
    }

    #[test]
    fn only_plain_host_names_are_set_up() {
        assert_eq!(hosts(&[]).unwrap(), DEFAULT_HOSTS);
        assert_eq!(hosts(&["git.example".into()]).unwrap(), ["git.example"]);
        for bad in ["", "a/b", "host:22", "git@host", "a b"] {
            let e = hosts(&["ok.example".into(), bad.into()]).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("{bad:?} is not a host name (e.g. github.com)")
            );
        }
    }

    #[test]
    fn a_value_is_held_only_as_a_whole_line() {
        let listed = "git@github.com:\nssh://git@github.com/\n";
        assert!(holds(listed, "git@github.com:"));
        assert!(!holds(listed, "git@github.com"));
        assert!(!holds("", "git@github.com:"));
    }

    #[test]
    fn setting_up_and_undoing_change_only_what_is_needed() {
        let r = &rewrites("github.com")[0];
        assert_eq!(Change::needed(r, false, true), None);
        assert_eq!(Change::needed(r, true, false), None);
        assert_eq!(
            Change::needed(r, false, false).unwrap().git_args(),
            [
                "config",
                "--global",
                "--add",
                "url.https://github.com/.insteadOf",
                "git@github.com:"
            ]
        );
        assert_eq!(
            Change::needed(r, true, true).unwrap().git_args(),
            [
                "config",
                "--global",
                "--fixed-value",
                "--unset-all",
                "url.https://github.com/.insteadOf",
                "git@github.com:"
            ]
        );
    }
}

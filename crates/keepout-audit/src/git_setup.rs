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
//! idempotent; only plain host names are accepted. [`set_up`] makes the changes with the
//! user's `git`, one value at a time (a host named twice is set up once), and stops at the
//! first `git` that fails.

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

/// Why `keepout git setup` stopped.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    NotAHost(#[from] NotAHost),
    #[error("cannot run git (is it installed?)")]
    CannotRunGit(#[source] std::io::Error),
    /// A change `git` refused: its arguments and what it said.
    #[error("git {} failed: {stderr}", command.join(" "))]
    GitFailed {
        command: Vec<String>,
        stderr: String,
    },
}

/// What [`set_up`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetUp {
    pub hosts: Vec<String>,
    /// How many values were changed (or, in a dry run, would be).
    pub changed: usize,
    pub undo: bool,
    pub dry_run: bool,
}

impl SetUp {
    /// What `keepout git setup` says when it is done.
    pub fn summary(&self) -> String {
        let what = if self.dry_run {
            "would change"
        } else {
            "changed"
        };
        let (hosts, changed) = (self.hosts.join(", "), self.changed);
        if self.undo {
            format!("keepout: git setup undone for {hosts} ({what} {changed} values)")
        } else {
            format!(
                "keepout: for {hosts}: fetch and clone over HTTPS, push over SSH ({what} {changed} \
                 values in your global git config).\n\
                 keepout: pushes now need your SSH key; with `keepout agent`, each one is asked for."
            )
        }
    }
}

fn git(args: &[&str]) -> Result<std::process::Output, SetupError> {
    std::process::Command::new("git")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(SetupError::CannotRunGit)
}

/// Set up (or `undo`) the hosts `given` (see [`hosts`]) in the global git config with `git`:
/// each value is looked up, then changed if it needs to be. In a `dry_run` nothing is changed:
/// each change's `git` arguments are given to `dry` instead.
pub fn set_up(
    given: &[String],
    undo: bool,
    dry_run: bool,
    mut dry: impl FnMut(&[&str]),
) -> Result<SetUp, SetupError> {
    let hosts = hosts(given)?;
    let mut changed = 0;
    for host in &hosts {
        for rewrite in rewrites(host) {
            let listed = git(&["config", "--global", "--get-all", &rewrite.key])?;
            let present = holds(&String::from_utf8_lossy(&listed.stdout), &rewrite.value);
            let Some(change) = Change::needed(&rewrite, undo, present) else {
                continue;
            };
            let command = change.git_args();
            if dry_run {
                dry(&command);
                continue;
            }
            let out = git(&command)?;
            if !out.status.success() {
                return Err(SetupError::GitFailed {
                    command: command.iter().map(|a| a.to_string()).collect(),
                    stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
            changed += 1;
        }
    }
    Ok(SetUp {
        hosts,
        changed,
        undo,
        dry_run,
    })
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
    fn the_summary_says_what_changed_or_would() {
        let done = SetUp {
            hosts: vec!["github.com".into(), "gitlab.com".into()],
            changed: 10,
            undo: false,
            dry_run: false,
        };
        assert_eq!(
            done.summary(),
            "keepout: for github.com, gitlab.com: fetch and clone over HTTPS, push over SSH \
             (changed 10 values in your global git config).\n\
             keepout: pushes now need your SSH key; with `keepout agent`, each one is asked for."
        );
        let undone = SetUp {
            undo: true,
            dry_run: true,
            changed: 0,
            ..done
        };
        assert_eq!(
            undone.summary(),
            "keepout: git setup undone for github.com, gitlab.com (would change 0 values)"
        );
    }

    #[test]
    fn a_failed_git_is_named_with_what_it_said() {
        let e = SetupError::GitFailed {
            command: vec!["config".into(), "--global".into()],
            stderr: "error: could not lock config file".into(),
        };
        assert_eq!(
            e.to_string(),
            "git config --global failed: error: could not lock config file"
        );
        let e = set_up(&["a/b".into()], false, true, |_| {}).unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"a/b\" is not a host name (e.g. github.com)"
        );
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

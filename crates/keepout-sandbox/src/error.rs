//! The sandbox's one error type. Every variant says what failed; [`Error::hint`] says what to do.
//!
//! Guarantee: every fallible function of the crate's public API returns this type (plain data:
//! it can be cloned, compared and kept in a report), and its `Display` is the whole message;
//! [`Error::exit_code`] is keepout's exit status for it (126/127 as a shell says them for a
//! command that cannot be run, [`EXIT_KEEPOUT`] for every failure of the sandbox itself).

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit status for keepout's own failures (as with podman and docker: 125 = the runner failed).
pub const EXIT_KEEPOUT: u8 = 125;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request cannot be turned into a policy (a missing path, a bad flag value).
    #[error("{0}")]
    Usage(String),
    /// A host file could not be read while building the policy.
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    /// The kernel refused to create a user namespace.
    #[error("this system does not let an unprivileged user create a user namespace ({0})")]
    UserNamespacesRefused(String),
    /// A step of setting up the sandbox failed.
    #[error("setting up the sandbox failed: {step}: {message}")]
    Setup { step: String, message: String },
    /// A resource limit cannot be kept (no memory cgroup for `--memory`, a disk already below
    /// its reserve): nothing ran.
    #[error("{message}")]
    Resources { message: String, hint: String },
    /// A value given to keepout or read from disk cannot be understood: a size, a disk
    /// reserve, an `--env` argument, a git index.
    #[error("{0}")]
    Invalid(String),
    /// Undoing what the command left in the project failed: moving a file aside, clearing
    /// git's index flags, removing bytecode.
    #[error("{0}")]
    AfterRun(String),
    /// The command could not be started inside the sandbox.
    #[error("{program}: {message}")]
    Exec {
        program: String,
        message: String,
        not_found: bool,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, e: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            message: describe_io(&e),
        }
    }

    /// A line telling the user what to do about the error, where there is something to do.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::UserNamespacesRefused(_) => Some(
                "On Ubuntu 23.10 and later AppArmor restricts unprivileged user namespaces; allow them for keepout with an AppArmor profile \
                 (`abi <abi/4.0>, profile keepout /usr/local/bin/keepout flags=(unconfined) { userns, }` in /etc/apparmor.d/keepout, then \
                 `sudo apparmor_parser -r /etc/apparmor.d/keepout`), or set `sysctl kernel.apparmor_restrict_unprivileged_userns=0`. \
                 Elsewhere check `sysctl user.max_user_namespaces` (must be > 0) and `kernel.unprivileged_userns_clone` (must be 1). \
                 Without user namespaces, `keepout run --mode landlock` still runs with Landlock, seccomp and a clean environment; \
                 `keepout doctor` shows what this kernel supports."
                    .into(),
            ),
            Error::Exec { not_found: true, .. } => Some(
                "The sandbox sees only the system directories, the project, your toolchains (rustup, pyenv, uv, nvm, \
                 asdf, mise, sdkman, Go: `--print-policy` lists them) and what you pass with --ro/--rw: \
                 another program under your home (~/.local/bin) needs `--ro DIR`."
                    .into(),
            ),
            Error::Resources { hint, .. } => Some(hint.clone()),
            Error::Setup { .. } => Some("`keepout doctor` shows what this kernel supports.".into()),
            _ => None,
        }
    }

    /// keepout's exit status for this error: 127 the command is not found inside the sandbox,
    /// 126 it cannot be executed, [`EXIT_KEEPOUT`] (125) for every other failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Exec {
                not_found: true, ..
            } => 127,
            Error::Exec { .. } => 126,
            _ => EXIT_KEEPOUT,
        }
    }
}

/// An io::Error as a short sentence without Rust's "(os error N)" noise.
pub(crate) fn describe_io(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod exit_code_tests {
    use super::{Error, EXIT_KEEPOUT};

    #[test]
    fn a_command_that_cannot_run_exits_as_a_shell_says_it() {
        let exec = |not_found| Error::Exec {
            program: "x".into(),
            message: "m".into(),
            not_found,
        };
        assert_eq!(exec(true).exit_code(), 127);
        assert_eq!(exec(false).exit_code(), 126);
    }

    #[test]
    fn every_other_failure_is_keepout_s_own() {
        for e in [
            Error::Usage("u".into()),
            Error::Invalid("i".into()),
            Error::AfterRun("a".into()),
            Error::UserNamespacesRefused("r".into()),
            Error::Setup {
                step: "s".into(),
                message: "m".into(),
            },
        ] {
            assert_eq!(e.exit_code(), EXIT_KEEPOUT, "{e:?}");
        }
    }
}

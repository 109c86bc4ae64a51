//! The sandbox's one error type. Every variant says what failed; [`Error::hint`] says what to do.
//!
//! Guarantee: every fallible function of the crate's public API returns this type (plain data:
//! it can be cloned, compared and kept in a report), and its `Display` is the whole message.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

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
}

/// An io::Error as a short sentence without Rust's "(os error N)" noise.
pub(crate) fn describe_io(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

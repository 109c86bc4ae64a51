//! The vault's one error type. Each variant says what happened; [`VaultError::hint`] says what to
//! do; [`VaultError::exit_code`] is the documented exit status of `keepout` for it.

use std::path::PathBuf;

/// keepout's exit status for a failure of its own (as podman's and docker's 125: the runner
/// failed, not the command or the vault).
pub const EXIT_KEEPOUT: u8 = 125;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("wrong passphrase for {0} (or its passphrase stanza is damaged)")]
    WrongPassphrase(PathBuf),
    #[error("none of the identities in [vault] identities opens {0}")]
    WrongIdentity(PathBuf),
    #[error("the age plugin did not open {path}: {message}")]
    Plugin { path: PathBuf, message: String },
    #[error("{0}")]
    Corrupted(String),
    #[error("the vault was written by a newer keepout (format {found}; this one reads up to {supported})")]
    NewerFormat { found: u32, supported: u32 },
    #[error("there is no vault at {0} yet")]
    NoVault(PathBuf),
    /// The vault is missing but its backup is there: a state to recover from, never to
    /// overwrite (a new vault would replace the backup, the only copy left).
    #[error("the vault {} is missing, but its backup {} is there (the secrets as of the write before the last one); nothing was changed", vault.display(), backup.display())]
    OnlyBackup { vault: PathBuf, backup: PathBuf },
    #[error("no secret named {0:?}")]
    NoSuchSecret(String),
    #[error("{0:?} is not a secret name: use lower-case letters, digits, '.', '_', '-', and '/' between parts")]
    BadName(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The new content could not be written beside the vault (a full disk, a quota, an I/O
    /// error): the vault itself was not touched.
    #[error("cannot write the vault's new content in {}: {source}", dir.display())]
    WriteFailed {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("encrypting the vault failed: {0}")]
    Encrypt(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("{wanted}; the scopes are: {}", if known.is_empty() { "(none configured)".to_string() } else { known.join(", ") })]
    NoScope { wanted: String, known: Vec<String> },
    #[error("bad secret reference {0}")]
    BadReference(String),
    #[error("{reference}: {message}")]
    Provider {
        tool: &'static str,
        reference: String,
        message: String,
    },
    /// The unlock session's question could not be asked or answered.
    #[error(transparent)]
    Prompt(#[from] keepout_prompt::PromptError),
    #[error("the passphrase cannot be empty; nothing was created")]
    EmptyPassphrase,
    #[error("no passphrase chosen; nothing was created (a passphrase of 12 or more characters of two kinds, e.g. a few words with spaces, is not asked about)")]
    WeakPassphraseRefused,
    #[error("the two passphrases differed {0} times; nothing was created")]
    PassphrasesDiffered(usize),
    /// A credential file to import could not be read.
    #[error("cannot read {}", path.display())]
    CannotRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is not valid TOML")]
    NotToml {
        what: &'static str,
        #[source]
        source: toml::de::Error,
    },
    /// An imported credential would get a name that is no secret name (`source` says why).
    #[error("cannot name a secret for {what}")]
    Unnamable {
        what: String,
        #[source]
        source: Box<VaultError>,
    },
    /// Reading, removing or rewriting an imported file failed.
    #[error(transparent)]
    File(std::io::Error),
    #[error(transparent)]
    Persist(Box<tempfile::PersistError>),
    /// The vault, read back after an import, does not hold what was stored: the plaintext is
    /// left as it is.
    #[error("{name} did not read back as stored; {} was left as it is", file.display())]
    NotReadBack { name: String, file: PathBuf },
    /// A credential helper's request could not be read, or its answer not written.
    #[error(transparent)]
    Protocol(std::io::Error),
    /// git asked to store a credential for a user name no secret name can hold.
    #[error("cannot store a credential for user {0:?} (names are lower-case)")]
    UnstorableUser(String),
    /// The value of `secret set` could not be read from standard input.
    #[error("cannot read the value from standard input")]
    ReadValue(#[source] std::io::Error),
    #[error("the value for {0} is empty; nothing was stored")]
    EmptyValue(String),
    /// The user said no to releasing a scope's secrets.
    #[error("not approved: no secret was released")]
    NotApproved,
    /// `hook-env` would print the values on a terminal.
    #[error("`keepout hook-env` prints secrets for the kvars function to evaluate; it will not print them on a terminal (use kvars, from `keepout hook SHELL`)")]
    HookEnvOnTerminal,
    #[error("{0}")]
    BadDuration(String),
    /// The time a hook's values expire cannot be written (the clock is before 1970).
    #[error(transparent)]
    Clock(#[from] std::time::SystemTimeError),
}

impl VaultError {
    pub(crate) fn io(
        what: &'static str,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> VaultError {
        VaultError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }

    /// What the user can do about it, where there is something.
    pub fn hint(&self) -> Option<String> {
        match self {
            VaultError::OnlyBackup { vault, backup } => Some(format!(
                "If you moved the vault away, move it back. Else restore the backup with \
                 `cp -p {} {}` (check it first with `age -d {}`) and run the command again. To start a new, empty vault instead, move the backup away first \
                 (`mv {} {}.old`): keepout never creates a vault over a backup.",
                backup.display(),
                vault.display(),
                backup.display(),
                backup.display(),
                backup.display()
            )),
            VaultError::WrongPassphrase(_) => Some("Nothing was changed. Try again; the vault is a standard age file (`age -d`).".into()),
            VaultError::Corrupted(_) => Some(
                "Nothing was overwritten. vault.age.bak is the version before the last write, so it \
                 is older: it lacks that last write (a secret set, replaced or removed then). Keep \
                 the damaged file (`mv vault.age vault.age.damaged`) before copying vault.age.bak \
                 over vault.age, and check the backup first with `age -d vault.age.bak`."
                    .into(),
            ),
            VaultError::NewerFormat { .. } => Some("Nothing was changed. Update keepout to read this vault.".into()),
            VaultError::NoVault(_) => Some("`keepout secret set NAME` creates it.".into()),
            VaultError::WriteFailed { .. } => Some(
                "The vault is unchanged and nothing was left beside it. Make room on that disk \
                 (or fix the error above), then run the command again."
                    .into(),
            ),
            VaultError::Plugin { .. } => Some("Nothing was changed. Check that the hardware key is present and the PIN is right, then try again.".into()),
            VaultError::NoSuchSecret(_) => Some("`keepout secret list` shows the names.".into()),
            VaultError::NoScope { .. } => Some(
                "Scopes are [[scope]] tables in ~/.config/keepout/config.toml (name, dirs, env); \
                 `--scope NAME` picks one by name."
                    .into(),
            ),
            _ => None,
        }
    }

    /// keepout's exit status for this error: 3 wrong passphrase or identity (or an age plugin refused), 4 corrupted or unreadable vault,
    /// 5 newer format, 6 no such secret or vault, 9 the vault is missing but its backup is there, 7 no scope, 8 a provider (pass, op, bw)
    /// failed, 2 bad input or configuration, 125 ([`EXIT_KEEPOUT`]) keepout's own step failed (a
    /// question that could not be asked, no new passphrase chosen, a step of an import), 1 anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            VaultError::WrongPassphrase(_)
            | VaultError::WrongIdentity(_)
            | VaultError::Plugin { .. } => 3,
            VaultError::Corrupted(_) => 4,
            VaultError::NewerFormat { .. } => 5,
            VaultError::NoVault(_) | VaultError::NoSuchSecret(_) => 6,
            VaultError::BadName(_) | VaultError::Config(_) | VaultError::BadReference(_) => 2,
            VaultError::NoScope { .. } => 7,
            VaultError::OnlyBackup { .. } => 9,
            VaultError::Provider { .. } => 8,
            VaultError::Io { .. } | VaultError::WriteFailed { .. } | VaultError::Encrypt(_) => 1,
            VaultError::Prompt(_)
            | VaultError::EmptyPassphrase
            | VaultError::WeakPassphraseRefused
            | VaultError::PassphrasesDiffered(_)
            | VaultError::CannotRead { .. }
            | VaultError::NotToml { .. }
            | VaultError::File(_)
            | VaultError::Persist(_)
            | VaultError::NotReadBack { .. }
            | VaultError::Protocol(_)
            | VaultError::UnstorableUser(_)
            | VaultError::ReadValue(_)
            | VaultError::EmptyValue(_)
            | VaultError::NotApproved
            | VaultError::HookEnvOnTerminal
            | VaultError::BadDuration(_)
            | VaultError::Clock(_) => EXIT_KEEPOUT,
            VaultError::Unnamable { source, .. } => source.exit_code(),
        }
    }
}

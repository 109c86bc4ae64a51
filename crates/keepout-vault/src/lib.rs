//! keepout's vault: secrets at rest in one standard age file.
//!
//! Three layers, each testable alone: [`VaultFile`] is the file on disk (age encryption with a
//! scrypt passphrase recipient, atomic writes under a lock, a backup of the previous version);
//! [`Document`] is its content (a versioned TOML document of named secrets); [`SecretRef`] and
//! the [`Provider`]s resolve references (`keepout:NAME`, `pass:`, `op://`, `bw://`); [`Config`]
//! holds the scopes that decide which secrets a directory's commands get; [`Unlock`] is how a
//! command gets the vault's key (configured identities, the unlock cache, or a passphrase asked
//! through the caller's [`Prompt`]); [`import`] moves plaintext credential files (and, through
//! its [`import::MoveIn`] flow, SSH keys) into the vault; [`release`] gives a scope's variables
//! to one command (whose program [`program`] finds first, as a shell does) and [`hook`] to a
//! shell (`kvars`); [`helper`] serves git's and cargo's credential helpers from the vault;
//! [`Unlock::set_secret`] and [`Unlock::remove_secret`] are `keepout secret set` and `rm`.
//!
//! Guarantees: a secret's value is only ever in the encrypted file or in memory that is zeroed
//! when dropped; no error message, `Debug` output or listing contains a value; a failed read
//! (wrong passphrase, corruption, newer format) never leads to a write.

pub mod cache;
mod document;
mod error;
mod file;
pub mod helper;
pub mod hook;
pub mod import;
pub mod program;
mod reference;
pub mod release;
mod scope;
mod secrets;
mod session;
#[cfg(test)]
mod testing;

pub use age::secrecy::{ExposeSecret, SecretString};
pub use document::{check_name, name_part, Document, Secret, SecretInfo, FORMAT_VERSION};
pub use error::{VaultError, EXIT_KEEPOUT};
pub use file::{scrypt_work_factor, Key, VaultFile, Version, MAX_WORK_FACTOR};
pub use reference::{
    resolve_env, BitwardenProvider, OnePasswordProvider, PassProvider, Provider, Resolved,
    SecretRef, VaultProvider,
};
pub use scope::{
    format_duration, parse_config, parse_duration, toml_error, Config, Scope, VaultSettings,
    CONFIG_TABLES,
};
pub use secrets::format_time;
pub use session::{cache_enabled, weakness, Opened, Prompt, Unlock, PASSPHRASE_TRIES};
pub use zeroize::Zeroizing;

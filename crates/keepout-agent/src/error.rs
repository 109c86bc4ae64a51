//! The agent's one error type: what serving, key handling and the `[ssh]` settings can fail
//! with. Each message says what happened and, where there is one, what to do; none holds key
//! material or a passphrase.

use std::path::PathBuf;

use keepout_vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Vault(#[from] VaultError),
    #[error("cannot listen on {path}: {source}")]
    Listen {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another agent already answers on {0}")]
    AlreadyRunning(PathBuf),
    #[error("the upstream agent {path} does not answer: {source}")]
    Upstream {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Runtime(std::io::Error),
    /// A PEM (PKCS#1, SEC1 or PKCS#8) key, which keepout does not read.
    #[error(
        "this is a PEM key; keepout reads OpenSSH keys. Convert a copy first: \
         `cp KEY /tmp/k && ssh-keygen -p -f /tmp/k` (it rewrites it in OpenSSH format)"
    )]
    PemKey,
    #[error("not an OpenSSH private key ({0})")]
    NotOpenSsh(ssh_key::Error),
    #[error("the key is encrypted and no passphrase was given")]
    NoPassphrase,
    #[error("wrong passphrase for the key")]
    WrongPassphrase,
    #[error("cannot encode the key: {0}")]
    Encode(ssh_key::Error),
    #[error(
        "SHA-1 RSA signatures (ssh-rsa) are refused; the client must ask for rsa-sha2-256 or -512"
    )]
    Sha1Refused,
    #[error("RSA signing failed: {0}")]
    RsaSigning(rsa::signature::Error),
    #[error("signing failed: {0}")]
    Signing(signature::Error),
    #[error("bad RSA key: {0}")]
    BadRsaKey(rsa::Error),
    /// A key's parts that do not make a key.
    #[error("{0}")]
    Key(ssh_key::Error),
    #[error("cannot read {path}: {source}")]
    ReadSettings {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The `[ssh]` settings do not parse: the file, line and column, with the line shown.
    #[error("{0}")]
    Settings(String),
}

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
    /// A public key given to `ssh import` where its private key is next to it.
    #[error("{} is a public key; import the private key next to it: keepout ssh import {}", public.display(), private.display())]
    PublicKeyBesidePrivate { public: PathBuf, private: PathBuf },
    /// A public key given to `ssh import` whose private key is not where it would be.
    #[error(
        "{} is a public key; import its private key ({} is not there: give the path of \
         the private key file)",
        public.display(),
        private.display()
    )]
    PublicKeyWithoutPrivate { public: PathBuf, private: PathBuf },
    /// A public key given to `ssh import` that has no `.pub` name to find its private key by.
    #[error("{} is a public key; import the private key file instead (the one without .pub)", .0.display())]
    PublicKeyGiven(PathBuf),
    /// Another key is stored under the name a key is imported as: nothing was changed.
    #[error(
        "the vault already holds another key named {name} ({theirs}; this one is \
         {fingerprint}); nothing was changed. Import this one under another name \
         (`keepout ssh import {} --name {name}-2`; its policy is its own [[ssh.key]]), or \
         remove the stored one first (`keepout ssh rm {name}`)",
        file.display()
    )]
    OtherKeyStored {
        name: String,
        theirs: String,
        fingerprint: String,
        file: PathBuf,
    },
    /// A key file to import could not be read.
    #[error("cannot read {}", path.display())]
    ReadKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A key's name that makes no secret name (`source` says why).
    #[error("{name:?} cannot name a key; give one with --name")]
    KeyName {
        name: String,
        #[source]
        source: Box<VaultError>,
    },
    /// A key file whose key could not be read (`error`, said after the file's name).
    #[error("{}: {error}", path.display())]
    KeyFile { path: PathBuf, error: Box<Error> },
    #[error("cannot write the public key into {}", dir.display())]
    WritePublic {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open {}", path.display())]
    OpenLog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The agent started in the background stopped before it answered.
    #[error("the agent stopped ({status}); see {}", log.display())]
    AgentStopped {
        status: std::process::ExitStatus,
        log: PathBuf,
    },
    #[error("the agent did not start within 5 s; see {}", log.display())]
    AgentNotStarted { log: PathBuf },
    #[error("this keepout binary's path is not UTF-8; systemd cannot name it")]
    ExeNotUtf8,
    /// Starting a process or making a path absolute failed.
    #[error(transparent)]
    Io(std::io::Error),
}

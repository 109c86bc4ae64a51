//! `keepout cargo-credential`: cargo's credential-provider protocol (the cargo team's
//! `cargo-credential` crate speaks it), served from the vault. A registry's token is the secret
//! `cargo/REGISTRY` (`cargo/crates-io` for crates.io).
//!
//! Set up in ~/.cargo/config.toml:
//!
//! ```toml
//! [registry]
//! global-credential-providers = ["keepout cargo-credential"]
//! ```

use cargo_credential::{
    Action, CacheControl, Credential, CredentialResponse, Error, RegistryInfo, Secret,
};
use keepout_vault::{VaultError, Zeroizing};

struct KeepoutCredential;

/// The vault name for a registry: its configured name, else its index URL made into a name.
fn secret_name(registry: &RegistryInfo<'_>) -> String {
    keepout_vault::helper::cargo_secret_name(registry.name, registry.index_url)
}

fn other(e: impl Into<anyhow::Error>) -> Error {
    let e: anyhow::Error = e.into();
    Error::Other(e.into())
}

/// No vault: no token (cargo goes on to its next provider), unless the vault is missing while
/// its backup is there, which cargo shows the user as an error saying how to recover.
fn missing(vault: &keepout_vault::VaultFile) -> Error {
    match vault.missing() {
        VaultError::NoVault(_) => Error::NotFound,
        only_backup => other(only_backup),
    }
}

impl Credential for KeepoutCredential {
    fn perform(
        &self,
        registry: &RegistryInfo<'_>,
        action: &Action<'_>,
        _args: &[&str],
    ) -> Result<CredentialResponse, Error> {
        let name = secret_name(registry);
        let vault = crate::secret::vault();
        match action {
            Action::Get(_) => {
                if !vault.exists() {
                    return Err(missing(&vault));
                }
                let doc = crate::secret::session()
                    .read_document(&vault)
                    .map_err(other)?;
                match doc.get(&name) {
                    Ok(s) => Ok(CredentialResponse::Get {
                        token: Secret::from(s.value.to_string()),
                        cache: CacheControl::Session,
                        operation_independent: true,
                    }),
                    Err(VaultError::NoSuchSecret(_)) => Err(Error::NotFound),
                    Err(e) => Err(other(e)),
                }
            }
            Action::Login(options) => {
                let token = cargo_credential::read_token(options, registry)?;
                let session = crate::secret::session();
                let opened = session.for_writing_with_document(&vault).map_err(other)?;
                let value = Zeroizing::new(token.expose().to_string());
                session
                    .update(&vault, opened, |doc| {
                        doc.set(&name, value, Some("cargo login".into()))
                    })
                    .map_err(other)?;
                Ok(CredentialResponse::Login)
            }
            Action::Logout => {
                if !vault.exists() {
                    return Err(missing(&vault));
                }
                let pass = crate::secret::session().unlocked(&vault).map_err(other)?;
                match vault.update(&pass, |doc| doc.remove(&name)) {
                    Ok(()) => Ok(CredentialResponse::Logout),
                    Err(VaultError::NoSuchSecret(_)) => Err(Error::NotFound),
                    Err(e) => Err(other(e)),
                }
            }
            _ => Err(Error::OperationNotSupported),
        }
    }
}

pub fn cargo_credential() -> anyhow::Result<i32> {
    cargo_credential::main(KeepoutCredential);
    Ok(0)
}

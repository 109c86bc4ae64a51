//! cargo's credential-provider protocol (spoken by the cargo team's `cargo-credential` crate),
//! served from the vault: a registry's token is the secret `cargo/REGISTRY`
//! ([`super::cargo_secret_name`]).
//!
//! Guarantees: `get` of a missing token, and `get` or `logout` with no vault, answer "not found"
//! (cargo goes on to its next provider), except for a vault missing beside its backup, which is
//! an error that says how to recover (cargo shows it); `login` stores the token with the note
//! `cargo login`; `logout` removes it.

use cargo_credential::{
    Action, CacheControl, Credential, CredentialResponse, Error, RegistryInfo, Secret,
};
use zeroize::Zeroizing;

use crate::{Prompt, Unlock, VaultError, VaultFile};

/// The vault as cargo's credential provider.
pub struct CargoProvider<P> {
    pub session: Unlock<P>,
    pub vault: VaultFile,
}

/// Serve cargo's protocol on standard input and output (cargo runs the provider as
/// `PROGRAM --cargo-plugin`), then return.
pub fn serve_cargo<P: Prompt>(session: Unlock<P>, vault: VaultFile) {
    cargo_credential::main(CargoProvider { session, vault });
}

fn other(e: VaultError) -> Error {
    Error::Other(Box::new(e))
}

/// No vault: no token, unless the vault is missing while its backup is there.
fn missing(vault: &VaultFile) -> Error {
    match vault.missing() {
        VaultError::NoVault(_) => Error::NotFound,
        only_backup => other(only_backup),
    }
}

impl<P: Prompt> Credential for CargoProvider<P> {
    fn perform(
        &self,
        registry: &RegistryInfo<'_>,
        action: &Action<'_>,
        _args: &[&str],
    ) -> Result<CredentialResponse, Error> {
        let name = super::cargo_secret_name(registry.name, registry.index_url);
        let (session, vault) = (&self.session, &self.vault);
        match action {
            Action::Get(_) => {
                if !vault.exists() {
                    return Err(missing(vault));
                }
                let doc = session.read_document(vault).map_err(other)?;
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
                let opened = session.for_writing_with_document(vault).map_err(other)?;
                let value = Zeroizing::new(token.expose().to_string());
                session
                    .update(vault, opened, |doc| {
                        doc.set(&name, value, Some("cargo login".into()))
                    })
                    .map_err(other)?;
                Ok(CredentialResponse::Login)
            }
            Action::Logout => {
                if !vault.exists() {
                    return Err(missing(vault));
                }
                let key = session.unlocked(vault).map_err(other)?;
                match vault.update(&key, |doc| doc.remove(&name)) {
                    Ok(()) => Ok(CredentialResponse::Logout),
                    Err(VaultError::NoSuchSecret(_)) => Err(Error::NotFound),
                    Err(e) => Err(other(e)),
                }
            }
            _ => Err(Error::OperationNotSupported),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, Scripted};
    use cargo_credential::{LoginOptions, Operation};

    const CRATES_IO: RegistryInfo<'static> = RegistryInfo {
        index_url: "https://github.com/rust-lang/crates.io-index",
        name: Some("crates-io"),
        headers: Vec::new(),
    };

    fn perform(
        p: &Scripted,
        dir: &std::path::Path,
        action: Action<'_>,
    ) -> Result<CredentialResponse, Error> {
        let provider = CargoProvider {
            session: testing::session(p),
            vault: testing::vault(dir),
        };
        provider.perform(&CRATES_IO, &action, &[])
    }

    fn get() -> Action<'static> {
        Action::Get(Operation::Read)
    }

    #[test]
    fn a_token_logged_in_is_got_until_logged_out() {
        let dir = tempfile::tempdir().unwrap();
        let p = Scripted::default();
        assert!(matches!(
            perform(&p, dir.path(), get()),
            Err(Error::NotFound)
        ));
        assert!(matches!(
            perform(&p, dir.path(), Action::Logout),
            Err(Error::NotFound)
        ));
        let login = Action::Login(LoginOptions {
            token: Some(Secret::from("cio-token")),
            login_url: None,
        });
        assert!(matches!(
            perform(&p, dir.path(), login),
            Ok(CredentialResponse::Login)
        ));
        match perform(&p, dir.path(), get()) {
            Ok(CredentialResponse::Get {
                token,
                cache,
                operation_independent,
            }) => {
                assert_eq!(token.expose(), "cio-token");
                assert!(matches!(cache, CacheControl::Session) && operation_independent);
            }
            other => panic!("{other:?}"),
        }
        let doc = testing::vault(dir.path()).read(&testing::key()).unwrap();
        assert_eq!(doc.list()[0].name, "cargo/crates-io");
        assert_eq!(doc.list()[0].note.as_deref(), Some("cargo login"));
        assert!(matches!(
            perform(&p, dir.path(), Action::Logout),
            Ok(CredentialResponse::Logout)
        ));
        assert!(matches!(
            perform(&p, dir.path(), get()),
            Err(Error::NotFound)
        ));
        assert!(matches!(
            perform(&p, dir.path(), Action::Logout),
            Err(Error::NotFound)
        ));
    }

    #[test]
    fn a_vault_missing_beside_its_backup_is_an_error_for_cargo() {
        let dir = tempfile::tempdir().unwrap();
        let vault = testing::vault(dir.path());
        std::fs::write(vault.backup_path(), "").unwrap();
        let p = Scripted::default();
        for action in [get(), Action::Logout] {
            match perform(&p, dir.path(), action) {
                Err(Error::Other(e)) => assert_eq!(e.to_string(), vault.missing().to_string()),
                other => panic!("{other:?}"),
            }
        }
        assert!(p.asked.borrow().is_empty(), "no passphrase asked");
    }
}

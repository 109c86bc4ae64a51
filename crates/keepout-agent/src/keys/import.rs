//! Moving a private key into the vault (`keepout ssh import`), as one [`MoveIn`] of the vault's
//! move-in flow.
//!
//! Guarantees: a public key given instead of a private one is an error that names the private
//! key to give; a stored key is never replaced: another key under the name is an error (nothing
//! changed), the same key again is left as it is (nothing written); the key written is read
//! back from the vault and its public half compared before the flow lets the caller touch the
//! key file.

use std::path::{Path, PathBuf};

use keepout_vault::import::{MoveIn, Step};
use keepout_vault::{Document, VaultError};

use crate::keys::{self, Prepared};
use crate::{Error, PublicKey};

/// Whether `text` is an OpenSSH public key line (`ssh-ed25519 AAAA... comment`).
pub fn is_public_key(text: &str) -> bool {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    PublicKey::from_openssh(first.trim()).is_ok()
}

/// The error for a public key given to `ssh import` at `path`: which private key to give
/// instead, and whether it is there.
pub fn public_key_given(path: &Path) -> Error {
    let private = path.with_extension("");
    if path.extension().is_none_or(|e| e != "pub") || private == path {
        return Error::PublicKeyGiven(path.to_path_buf());
    }
    if private.is_file() {
        Error::PublicKeyBesidePrivate {
            public: path.to_path_buf(),
            private,
        }
    } else {
        Error::PublicKeyWithoutPrivate {
            public: path.to_path_buf(),
            private,
        }
    }
}

/// The name a key file's key gets when none is given: its file name made into a name part.
pub fn default_name(path: &Path) -> String {
    keepout_vault::name_part(
        &path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
}

/// What the vault holds under a key's secret name, compared with the key being imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Nothing: the name is free.
    Free,
    /// The same key (the same public half).
    Same,
    /// Another key, by its fingerprint (or what it is, when it is not a key).
    Other(String),
}

/// What `doc` holds under `secret`, compared with the key whose public half is `public`.
pub fn stored(doc: &Document, secret: &str, public: &PublicKey) -> Stored {
    let Ok(held) = doc.get(secret) else {
        return Stored::Free;
    };
    match keys::prepare(&held.value, || None) {
        Ok(held) if held.public == *public => Stored::Same,
        Ok(held) => Stored::Other(format!("stored: {}", keys::describe(&held.public).1)),
        Err(_) => Stored::Other("stored: a secret that is no key keepout reads".into()),
    }
}

/// The move of one private key, read from the file `path`, into the vault as key `name`
/// ([`MoveIn`]; its `Placed` is what the vault held before: [`Stored::Free`] when the key was
/// written, [`Stored::Same`] when it was there already).
pub struct KeyImport<'a> {
    path: &'a Path,
    name: &'a str,
    secret: String,
    algorithm: String,
    fingerprint: String,
    prepared: &'a Prepared,
}

impl<'a> KeyImport<'a> {
    pub fn new(path: &'a Path, name: &'a str, prepared: &'a Prepared) -> KeyImport<'a> {
        let (algorithm, fingerprint) = keys::describe(&prepared.public);
        KeyImport {
            path,
            name,
            secret: keys::secret_name(name),
            algorithm,
            fingerprint,
            prepared,
        }
    }

    /// The vault secret the key goes into (`ssh/NAME`).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The key's algorithm (`ssh-ed25519`).
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    /// The key's SHA-256 fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The note the secret gets: what key it is and where it came from.
    fn note(&self) -> String {
        format!(
            "ssh key {} {}, from {}",
            self.algorithm,
            self.fingerprint,
            self.path.display()
        )
    }

    /// The error for another key under this name, if `stored` is one.
    fn other_key(&self, stored: &Stored) -> Result<(), Error> {
        let Stored::Other(theirs) = stored else {
            return Ok(());
        };
        Err(Error::OtherKeyStored {
            name: self.name.to_string(),
            theirs: theirs.clone(),
            fingerprint: self.fingerprint.clone(),
            file: PathBuf::from(self.path),
        })
    }
}

impl MoveIn for KeyImport<'_> {
    type Decision = ();
    type Placed = Stored;
    type Error = Error;

    fn decide(&mut self, doc: &Document) -> Result<Step<(), Stored>, Error> {
        let before = stored(doc, &self.secret, &self.prepared.public);
        self.other_key(&before)?;
        if before == Stored::Same {
            return Ok(Step::Unchanged(before));
        }
        Ok(Step::Write(()))
    }

    fn apply(&self, doc: &mut Document, (): ()) -> Result<Stored, VaultError> {
        // Decided again under the lock: a key stored meanwhile is not replaced either.
        let now = stored(doc, &self.secret, &self.prepared.public);
        if now == Stored::Free {
            doc.set(
                &self.secret,
                self.prepared.openssh.clone(),
                Some(self.note()),
            )?;
        }
        Ok(now)
    }

    fn accept(&self, placed: &Stored) -> Result<(), Error> {
        self.other_key(placed)
    }

    /// The round trip, before the plaintext key is touched.
    fn verify(&self, doc: &Document, _: &Stored) -> Result<(), Error> {
        let back = keys::prepare(&doc.get(&self.secret)?.value, || None)?;
        if back.public != self.prepared.public {
            return Err(VaultError::NotReadBack {
                name: self.secret.clone(),
                file: self.path.to_path_buf(),
            }
            .into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::{Algorithm, LineEnding, PrivateKey};

    fn key() -> Prepared {
        let key = PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519).unwrap();
        keys::prepare(&key.to_openssh(LineEnding::LF).unwrap(), || None).unwrap()
    }

    #[test]
    fn public_keys_are_told_apart_from_private_ones() {
        let k = key();
        assert!(is_public_key(&format!(
            "\n{}\n",
            k.public.to_openssh().unwrap()
        )));
        assert!(!is_public_key(&k.openssh));
        assert!(!is_public_key(""));
    }

    #[test]
    fn a_public_key_given_names_the_private_one() {
        let dir = tempfile::tempdir().unwrap();
        let public = dir.path().join("id_ed25519.pub");
        let private = dir.path().join("id_ed25519");
        assert_eq!(
            public_key_given(&public).to_string(),
            format!(
                "{} is a public key; import its private key ({} is not there: give the path \
                 of the private key file)",
                public.display(),
                private.display()
            )
        );
        std::fs::write(&private, "").unwrap();
        assert_eq!(
            public_key_given(&public).to_string(),
            format!(
                "{} is a public key; import the private key next to it: keepout ssh import {}",
                public.display(),
                private.display()
            )
        );
        assert_eq!(
            public_key_given(Path::new("/k/key")).to_string(),
            "/k/key is a public key; import the private key file instead (the one without .pub)"
        );
    }

    #[test]
    fn default_names_come_from_the_file_name() {
        assert_eq!(
            default_name(Path::new("/home/u/.ssh/id_ed25519")),
            "id_ed25519"
        );
    }

    #[test]
    fn stored_keys_are_compared_by_their_public_half() {
        let (mine, theirs) = (key(), key());
        let mut doc = Document::new();
        assert_eq!(stored(&doc, "ssh/k", &mine.public), Stored::Free);
        doc.set("ssh/k", mine.openssh.clone(), None).unwrap();
        assert_eq!(stored(&doc, "ssh/k", &mine.public), Stored::Same);
        assert_eq!(
            stored(&doc, "ssh/k", &theirs.public),
            Stored::Other(format!("stored: {}", keys::describe(&mine.public).1))
        );
        doc.set("ssh/t", "a token".to_string().into(), None)
            .unwrap();
        assert_eq!(
            stored(&doc, "ssh/t", &mine.public),
            Stored::Other("stored: a secret that is no key keepout reads".into())
        );
    }

    #[test]
    fn another_key_under_the_name_is_never_replaced() {
        let (mine, theirs) = (key(), key());
        let path = Path::new("/home/u/.ssh/k");
        let mut import = KeyImport::new(path, "k", &mine);
        let mut doc = Document::new();
        assert!(matches!(import.decide(&doc), Ok(Step::Write(()))));
        doc.set("ssh/k", theirs.openssh.clone(), None).unwrap();
        let e = import.decide(&doc).err().unwrap().to_string();
        assert!(
            e.starts_with("the vault already holds another key named k (stored: SHA256:"),
            "{e}"
        );
        assert!(
            e.contains("`keepout ssh import /home/u/.ssh/k --name k-2`"),
            "{e}"
        );
        // Decided again under the lock: nothing is written over it either.
        assert_eq!(
            import.apply(&mut doc, ()).unwrap(),
            stored(&doc, "ssh/k", &mine.public)
        );
        assert_eq!(*doc.get("ssh/k").unwrap().value, *theirs.openssh);
    }

    #[test]
    fn the_same_key_again_is_left_as_it_is_and_a_new_one_is_written() {
        let k = key();
        let import = &mut KeyImport::new(Path::new("/k"), "k", &k);
        let mut doc = Document::new();
        assert_eq!(import.apply(&mut doc, ()).unwrap(), Stored::Free);
        let note = doc.list()[0].note.clone().unwrap();
        assert_eq!(
            note,
            format!(
                "ssh key {} {}, from /k",
                import.algorithm(),
                import.fingerprint()
            )
        );
        import.verify(&doc, &Stored::Free).unwrap();
        assert!(matches!(
            import.decide(&doc),
            Ok(Step::Unchanged(Stored::Same))
        ));
    }
}

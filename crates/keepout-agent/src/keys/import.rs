//! Moving a private key into the vault (`keepout ssh import`), as one [`MoveIn`] of the vault's
//! move-in flow.
//!
//! Guarantees: a public key given instead of a private one is an error that names the private
//! key to give; a stored key is never replaced: another key under the name is an error (nothing
//! changed), the same key again is left as it is (nothing written); the key written is read
//! back from the vault and its public half compared before the flow lets the caller touch the
//! key file; [`import_key`], the whole `ssh import`, removes the key file only after that, and
//! after a yes (or `--yes`), never with `--keep`.

use std::path::{Path, PathBuf};

use keepout_vault::import::{MoveIn, Rewrite, Step};
use keepout_vault::{Config, Document, Prompt, Unlock, VaultError, VaultFile, Zeroizing};

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

/// `keepout ssh import PATH`: the private key at `path` into `vault` as key `name` (by default
/// the file's name), its public half beside the vault, then the key file removed after a yes
/// (`yes`: without asking; `keep`: never). The key's passphrase is asked and every line said
/// through the session's prompt.
pub fn import_key<P: Prompt>(
    session: &Unlock<P>,
    vault: &VaultFile,
    path: &Path,
    name: Option<String>,
    yes: bool,
    keep: bool,
) -> Result<(), Error> {
    let prompt = session.prompt();
    let say = |line: String| prompt.say(&line);
    let read = std::fs::read_to_string(path).map_err(|source| Error::ReadKey {
        path: path.to_path_buf(),
        source,
    })?;
    let text = Zeroizing::new(read);
    if is_public_key(&text) {
        return Err(public_key_given(path));
    }
    let name = name.unwrap_or_else(|| default_name(path));
    keepout_vault::check_name(&keys::secret_name(&name)).map_err(|source| Error::KeyName {
        name: name.clone(),
        source: Box::new(source),
    })?;
    let prepared = keys::prepare(&text, || {
        let question = format!("Passphrase of the key {}: ", path.display());
        prompt.secret(&question).ok()
    })
    .map_err(|error| Error::KeyFile {
        path: path.to_path_buf(),
        error: Box::new(error),
    })?;

    let mut moving = KeyImport::new(path, &name, &prepared);
    let placed = session.move_in(vault, &mut moving)?;
    let (secret, algorithm, fingerprint) =
        (moving.secret(), moving.algorithm(), moving.fingerprint());
    if placed == Stored::Same {
        say(format!(
            "keepout: the key {name} ({fingerprint}) is already in the vault as {secret}"
        ));
    }
    let dir = keys::public_dir(vault.path());
    keys::write_public(&dir, &name, &prepared.public)
        .map_err(|source| Error::WritePublic { dir, source })?;
    say(format!(
        "keepout: stored the {algorithm} key {name} ({fingerprint}) in the vault as {secret}"
    ));

    let shown = path.display();
    let question = format!("Remove the private key file {shown} now that the key is in the vault?");
    if keep {
        say(format!("keepout: {shown} left as it is (--keep)"));
    } else if yes || prompt.confirm(&question).map_err(VaultError::from)? {
        Rewrite::Remove.carry_out(path)?;
        say(format!(
            "keepout: removed {shown} (its .pub file, if any, stays: it is public)"
        ));
    } else {
        say(format!("keepout: {shown} left as it is"));
    }
    say(format!(
        "keepout: start the agent (`keepout agent --daemon`) and point SSH_AUTH_SOCK at it; \
         every signature will be asked for. Policy: [[ssh.key]] name = {name:?} in {}",
        Config::default_path().display()
    ));
    Ok(())
}

/// `keepout ssh rm NAME`: key `name` out of the vault, and its public half; said through the
/// session's prompt.
pub fn remove_key<P: Prompt>(
    session: &Unlock<P>,
    vault: &VaultFile,
    name: &str,
) -> Result<(), Error> {
    let key = session.unlocked(vault)?;
    let secret = keys::secret_name(name);
    vault.update(&key, |doc| doc.remove(&secret))?;
    let _ = keys::remove_public(&keys::public_dir(vault.path()), name);
    session
        .prompt()
        .say(&format!("keepout: removed the key {name} ({secret})"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::{Algorithm, LineEnding, PrivateKey};
    use std::cell::RefCell;

    /// Answers the vault's passphrase and yes/no questions from a list; records what it says.
    #[derive(Default)]
    struct Scripted {
        answers: RefCell<Vec<bool>>,
        said: RefCell<Vec<String>>,
    }

    impl Prompt for &Scripted {
        type Busy = ();
        fn secret(&self, _: &str) -> Result<Zeroizing<String>, keepout_prompt::PromptError> {
            Ok(Zeroizing::new("correct horse battery".into()))
        }
        fn confirm(&self, _: &str) -> Result<bool, keepout_prompt::PromptError> {
            Ok(self.answers.borrow_mut().remove(0))
        }
        fn say(&self, line: &str) {
            self.said.borrow_mut().push(line.to_string());
        }
        fn busy(&self, _: &str) {}
    }

    fn session(p: &Scripted) -> Unlock<&Scripted> {
        Unlock::new(p).with_configured_key(None).without_cache()
    }

    #[test]
    fn a_key_file_is_moved_in_removed_after_a_yes_and_removed_again() {
        let dir = tempfile::tempdir().unwrap();
        let vault = VaultFile::at(dir.path().join("vault.age")).with_work_factor(2);
        let file = dir.path().join("id_ed25519");
        let k = key();
        std::fs::write(&file, &*k.openssh).unwrap();
        let p = Scripted {
            answers: RefCell::new(vec![true]),
            ..Scripted::default()
        };
        import_key(&session(&p), &vault, &file, None, false, false).unwrap();
        assert!(!file.exists());
        let (_, fingerprint) = keys::describe(&k.public);
        let said = p.said.borrow().clone();
        assert_eq!(
            said[1..3],
            [
                format!("keepout: stored the ssh-ed25519 key id_ed25519 ({fingerprint}) in the vault as ssh/id_ed25519"),
                format!("keepout: removed {} (its .pub file, if any, stays: it is public)", file.display()),
            ]
        );
        assert!(keys::public_dir(vault.path())
            .join("id_ed25519.pub")
            .is_file());
        // The same key again, kept: said to be there already, nothing asked.
        std::fs::write(&file, &*k.openssh).unwrap();
        import_key(&session(&p), &vault, &file, None, false, true).unwrap();
        assert!(file.exists());
        assert!(p
            .said
            .borrow()
            .iter()
            .any(|l| l.ends_with("is already in the vault as ssh/id_ed25519")));
        remove_key(&session(&p), &vault, "id_ed25519").unwrap();
        assert_eq!(
            p.said.borrow().last().unwrap(),
            "keepout: removed the key id_ed25519 (ssh/id_ed25519)"
        );
        assert!(!keys::public_dir(vault.path())
            .join("id_ed25519.pub")
            .exists());
    }

    #[test]
    fn a_name_no_secret_can_have_is_refused_before_anything() {
        let dir = tempfile::tempdir().unwrap();
        let vault = VaultFile::at(dir.path().join("vault.age"));
        let file = dir.path().join("k");
        std::fs::write(&file, &*key().openssh).unwrap();
        let p = Scripted::default();
        let e = import_key(
            &session(&p),
            &vault,
            &file,
            Some("Bad Name".into()),
            true,
            false,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"Bad Name\" cannot name a key; give one with --name"
        );
        assert!(
            matches!(&e, Error::KeyName { source, .. } if matches!(**source, VaultError::BadName(_)))
        );
        assert!(!vault.exists() && file.exists());
        let e = import_key(
            &session(&p),
            &vault,
            &dir.path().join("none"),
            None,
            true,
            false,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("cannot read "), "{e}");
    }

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

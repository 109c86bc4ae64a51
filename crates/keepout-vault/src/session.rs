//! How a command gets the vault's key: the unlock session.
//!
//! [`Unlock`] finds the key of a vault the way every keepout command does: the configured
//! identities (`[vault] identities`), else the passphrase held by the unlock cache, else one
//! asked for through the caller's [`Prompt`] and checked by opening the vault (then handed to
//! the cache). It never reads a terminal itself: every question, line and status goes through the
//! `Prompt` the caller gives. The configured identities are read from the configuration once
//! per session, when first needed, or given by the caller that already read it
//! ([`Unlock::with_config`]).
//!
//! Guarantees: a wrong passphrase of an existing vault gets [`PASSPHRASE_TRIES`] tries ("Sorry,
//! try again." between), any other failure ends at once; a new passphrase is asked twice, again
//! (up to [`PASSPHRASE_TRIES`] times) when the two differ or it is empty, and a weak one
//! ([`weakness`]) is used only after a yes; a vault that is missing while its backup is there is
//! never created anew; while scrypt runs, [`Prompt::busy`] is held.

use std::cell::OnceCell;
use std::process::Command;

use age::secrecy::SecretString;
use keepout_prompt::PromptError;
use zeroize::Zeroizing;

use crate::{cache, Config, Document, Key, VaultError, VaultFile, Version};

/// How many times a passphrase is asked for before giving up, as sudo does: a wrong passphrase
/// of an existing vault, or two new ones that differ.
pub const PASSPHRASE_TRIES: usize = 3;

/// What the unlock session asks and tells through: the caller's terminal, in keepout.
pub trait Prompt {
    /// What [`Prompt::busy`] returns: the status lasts until it is dropped.
    type Busy;

    /// Ask for a secret (a passphrase) without echo.
    fn secret(&self, prompt: &str) -> Result<Zeroizing<String>, PromptError>;
    /// Ask a yes/no question.
    fn confirm(&self, question: &str) -> Result<bool, PromptError>;
    /// Tell the user one line, as it is to be shown (`Sorry, try again.`).
    fn say(&self, line: &str);
    /// A slow step (scrypt) for `what` ("unlocking the vault") starts; it ends when the value
    /// returned is dropped.
    fn busy(&self, what: &str) -> Self::Busy;
}

/// The key for a write, and the vault's content as it was when the key was checked: hand it
/// back to [`Unlock::update`], which then needs no second decryption when nothing wrote
/// meanwhile.
pub struct Opened {
    pub key: Key,
    /// The content, and the version of the file it was read from (`None`: it came from the
    /// unlock cache and `update` reads the file again).
    pub content: (Document, Option<Version>),
}

impl Opened {
    pub fn document(&self) -> &Document {
        &self.content.0
    }

    fn earlier(self) -> (Key, Option<(Document, Version)>) {
        let (doc, version) = self.content;
        (self.key, version.map(|v| (doc, v)))
    }
}

/// The unlock session: how to ask (`P`), how to start the unlock cache's daemon, and the
/// configured key (`[vault]` of the configuration, read once, when first needed).
pub struct Unlock<P> {
    prompt: P,
    cache_daemon: Option<fn() -> Option<Command>>,
    configured: OnceCell<Option<Key>>,
    use_cache: bool,
}

/// Whether the unlock cache is used: not when `KEEPOUT_NO_CACHE` is set to anything.
pub fn cache_enabled() -> bool {
    std::env::var_os("KEEPOUT_NO_CACHE").is_none_or(|v| v.is_empty())
}

/// Why a new passphrase is weak, if it is: the rule is at least 12 characters, of at least two
/// kinds among lower-case letters, upper-case letters, digits and everything else (a space, a
/// sign). `correct horse battery` passes; `password`, `123456789012` and `Secret1` do not.
pub fn weakness(pass: &str) -> Option<String> {
    let kinds = [
        pass.chars().any(|c| c.is_lowercase()),
        pass.chars().any(|c| c.is_uppercase()),
        pass.chars().any(|c| c.is_ascii_digit()),
        pass.chars()
            .any(|c| !c.is_lowercase() && !c.is_uppercase() && !c.is_ascii_digit()),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    let chars = pass.chars().count();
    if chars < 12 {
        Some(format!(
            "it has {chars} characters; 12 or more are much harder to guess"
        ))
    } else if kinds < 2 {
        Some("its characters are all of one kind (e.g. only lower-case letters, or only digits); mix in another kind, or spaces between words".into())
    } else {
        None
    }
}

impl<P: Prompt> Unlock<P> {
    /// A session that asks through `prompt`. A verified passphrase is handed to the unlock cache
    /// only once [`Unlock::with_cache_daemon`] says how to start its daemon.
    pub fn new(prompt: P) -> Unlock<P> {
        Unlock {
            prompt,
            cache_daemon: None,
            configured: OnceCell::new(),
            use_cache: true,
        }
    }

    /// Use the `[vault]` settings of `config`, already read, instead of reading the
    /// configuration file when a key is first needed.
    pub fn with_config(self, config: &Config) -> Unlock<P> {
        self.with_configured_key(config.vault.key())
    }

    /// Use `key` as the configured key (`None`: the passphrase), without reading the
    /// configuration.
    pub fn with_configured_key(self, key: Option<Key>) -> Unlock<P> {
        let _ = self.configured.set(key);
        self
    }

    /// Neither ask nor tell the unlock cache (whatever `KEEPOUT_NO_CACHE` says).
    pub fn without_cache(mut self) -> Unlock<P> {
        self.use_cache = false;
        self
    }

    /// How this session asks and tells.
    pub fn prompt(&self) -> &P {
        &self.prompt
    }

    /// Whether the unlock cache is used: [`cache_enabled`], unless [`Unlock::without_cache`].
    fn cache(&self) -> bool {
        self.use_cache && cache_enabled()
    }

    /// The key of a vault configured with `[vault] recipients/identities`, if it is: the
    /// configuration is read the first time (a failed read is tried again next time).
    fn configured_key(&self) -> Result<Option<Key>, VaultError> {
        if let Some(key) = self.configured.get() {
            return Ok(key.clone());
        }
        let key = Config::load(&Config::default_path())?.vault.key();
        Ok(self.configured.get_or_init(|| key).clone())
    }

    /// `daemon` makes the command that runs [`cache::serve`] (started when no cache answers).
    pub fn with_cache_daemon(mut self, daemon: fn() -> Option<Command>) -> Unlock<P> {
        self.cache_daemon = Some(daemon);
        self
    }

    /// Give a verified passphrase to the unlock cache (starting it if needed).
    fn remember(&self, vault: &VaultFile, pass: &SecretString) {
        if !self.cache() {
            return;
        }
        // The daemon's own output goes nowhere: a bad idle time is said here.
        if let (_, Some(message)) = cache::idle_from_env() {
            self.prompt.say(&format!("keepout: {message}"));
        }
        if let Some(daemon) = self.cache_daemon.and_then(|make| make()) {
            cache::remember(vault.path(), pass, daemon);
        }
    }

    /// Read the vault with a passphrase, the busy status held meanwhile.
    fn read_with(
        &self,
        vault: &VaultFile,
        pass: &SecretString,
    ) -> Result<(Document, Version), VaultError> {
        let _busy = self.prompt.busy("unlocking the vault");
        vault.read_versioned(&Key::Passphrase(pass.clone()))
    }

    /// Ask for the passphrase of the existing vault until it opens it: up to
    /// [`PASSPHRASE_TRIES`] times ("Sorry, try again." between), then the wrong-passphrase
    /// error. Any other failure (damage, no way to ask) ends at once.
    fn ask_until_it_opens(
        &self,
        vault: &VaultFile,
    ) -> Result<(SecretString, (Document, Version)), VaultError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let pass = self.passphrase(vault, false)?;
            match self.read_with(vault, &pass) {
                Ok(doc) => return Ok((pass, doc)),
                Err(VaultError::WrongPassphrase(_)) if tries < PASSPHRASE_TRIES => {
                    self.prompt.say("Sorry, try again.");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The key of the existing vault: configured identities, or the passphrase from the unlock
    /// cache, or asked for and checked (then cached).
    pub fn unlocked(&self, vault: &VaultFile) -> Result<Key, VaultError> {
        if let Some(key) = self.configured_key()? {
            return Ok(key);
        }
        if self.cache() {
            if let Some(p) = cache::cached_passphrase(vault.path()) {
                return Ok(Key::Passphrase(p));
            }
        }
        let (pass, _) = self.ask_until_it_opens(vault)?;
        self.remember(vault, &pass);
        Ok(Key::Passphrase(pass))
    }

    /// The key for a write: a new passphrase (asked twice, the vault created) when there is no
    /// vault yet, else [`Unlock::unlocked`]'s.
    pub fn for_writing(&self, vault: &VaultFile) -> Result<Key, VaultError> {
        Ok(self.for_writing_with_document(vault)?.key)
    }

    /// [`Unlock::for_writing`], and the vault's content as it is now (read once: the
    /// passphrase's check is that read).
    pub fn for_writing_with_document(&self, vault: &VaultFile) -> Result<Opened, VaultError> {
        if vault.exists() {
            if let Some(key) = self.configured_key()? {
                let (doc, version) = vault.read_versioned(&key)?;
                return Ok(Opened {
                    key,
                    content: (doc, Some(version)),
                });
            }
            if self.cache() {
                if let Some(p) = cache::cached_passphrase(vault.path()) {
                    let key = Key::Passphrase(p);
                    let content = match cache::cached_document(vault.path()) {
                        Some(doc) => (doc, None),
                        None => {
                            let _busy = self.prompt.busy("reading the vault");
                            let (doc, version) = vault.read_versioned(&key)?;
                            (doc, Some(version))
                        }
                    };
                    return Ok(Opened { key, content });
                }
            }
            let (pass, (doc, version)) = self.ask_until_it_opens(vault)?;
            self.remember(vault, &pass);
            return Ok(Opened {
                key: Key::Passphrase(pass),
                content: (doc, Some(version)),
            });
        }
        // A missing vault with its backup there is recovered, never replaced: said before any
        // passphrase is asked (`create` refuses too).
        if vault.backup_path().exists() {
            return Err(vault.missing());
        }
        if let Some(key) = self.configured_key()? {
            let version = vault.create(&key)?;
            self.prompt.say(&format!(
                "keepout: created the vault {} (for the configured recipients)",
                vault.path().display()
            ));
            return Ok(Opened {
                key,
                content: (Document::new(), Some(version)),
            });
        }
        let pass = self.passphrase(vault, true)?;
        let version = {
            let _busy = self.prompt.busy("creating the vault");
            vault.create(&Key::Passphrase(pass.clone()))?
        };
        self.prompt.say(&format!(
            "keepout: created the vault {}",
            vault.path().display()
        ));
        self.remember(vault, &pass);
        Ok(Opened {
            key: Key::Passphrase(pass),
            content: (Document::new(), Some(version)),
        })
    }

    /// Change the vault opened by [`Unlock::for_writing_with_document`], busy meanwhile:
    /// starting from the content read then when the file has not changed since (one scrypt run,
    /// the write), else reading it again under the lock.
    pub fn update<T>(
        &self,
        vault: &VaultFile,
        opened: Opened,
        change: impl FnOnce(&mut Document) -> Result<T, VaultError>,
    ) -> Result<(T, Key), VaultError> {
        let (key, earlier) = opened.earlier();
        let _busy =
            matches!(key, Key::Passphrase(_)).then(|| self.prompt.busy("writing the vault"));
        let out = vault.update_from(&key, earlier, change)?;
        Ok((out, key))
    }

    /// `vault.read`, busy meanwhile.
    pub fn read(&self, vault: &VaultFile, key: &Key) -> Result<Document, VaultError> {
        let _busy =
            matches!(key, Key::Passphrase(_)).then(|| self.prompt.busy("reading the vault"));
        vault.read(key)
    }

    /// The decrypted vault, from the unlock cache or by asking for the passphrase (then cached).
    pub fn read_document(&self, vault: &VaultFile) -> Result<Document, VaultError> {
        if !vault.exists() {
            return Err(vault.missing());
        }
        if let Some(key) = self.configured_key()? {
            return vault.read(&key);
        }
        if self.cache() {
            if let Some(doc) = cache::cached_document(vault.path()) {
                return Ok(doc);
            }
        }
        let (pass, (doc, _)) = self.ask_until_it_opens(vault)?;
        self.remember(vault, &pass);
        Ok(doc)
    }

    /// The passphrase of an existing vault (asked once; the unlocking asks again), or a new one
    /// for a vault to be created: asked twice, again (up to [`PASSPHRASE_TRIES`] times) when the
    /// two differ or it is empty, and a weak one ([`weakness`]) only after a yes.
    pub fn passphrase(&self, vault: &VaultFile, new: bool) -> Result<SecretString, VaultError> {
        if !new {
            let p = self
                .prompt
                .secret(&format!("Passphrase for {}: ", vault.path().display()))?;
            return Ok(SecretString::from(p.to_string()));
        }
        for attempt in 1..=PASSPHRASE_TRIES {
            let last = attempt == PASSPHRASE_TRIES;
            let p = self.prompt.secret(&format!(
                "New passphrase for the vault {}: ",
                vault.path().display()
            ))?;
            if p.is_empty() {
                if last {
                    return Err(VaultError::EmptyPassphrase);
                }
                self.prompt
                    .say("keepout: the passphrase cannot be empty; try again.");
                continue;
            }
            if let Some(why) = weakness(&p) {
                self.prompt
                    .say(&format!("keepout: this passphrase is weak: {why}."));
                if !self
                    .prompt
                    .confirm("The new passphrase is weak. Use this passphrase anyway?")?
                {
                    if last {
                        return Err(VaultError::WeakPassphraseRefused);
                    }
                    self.prompt.say("keepout: choose another passphrase.");
                    continue;
                }
            }
            let again = self.prompt.secret("The same passphrase again: ")?;
            if *p == *again {
                return Ok(SecretString::from(p.to_string()));
            }
            if last {
                return Err(VaultError::PassphrasesDiffered(PASSPHRASE_TRIES));
            }
            self.prompt
                .say("keepout: the two passphrases differ; try again.");
        }
        unreachable!("the last attempt returns or fails")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn weak_passphrases_are_named() {
        for weak in [
            "",
            "Secret1",
            "password",
            "abcdefghijklmnop",
            "123456789012",
        ] {
            assert!(weakness(weak).is_some(), "{weak:?}");
        }
        for fine in ["correct horse", "correct horse battery", "Tr0ub4dour&3x"] {
            assert_eq!(weakness(fine), None, "{fine:?}");
        }
    }

    /// Answers from a list, and records what was said.
    struct Scripted {
        answers: RefCell<Vec<&'static str>>,
        said: RefCell<Vec<String>>,
    }

    impl Prompt for &Scripted {
        type Busy = ();
        fn secret(&self, _: &str) -> Result<Zeroizing<String>, PromptError> {
            let mut a = self.answers.borrow_mut();
            if a.is_empty() {
                return Err(PromptError::Cancelled);
            }
            Ok(Zeroizing::new(a.remove(0).to_string()))
        }
        fn confirm(&self, _: &str) -> Result<bool, PromptError> {
            Ok(false)
        }
        fn say(&self, line: &str) {
            self.said.borrow_mut().push(line.to_string());
        }
        fn busy(&self, _: &str) {}
    }

    #[test]
    fn new_passphrases_that_differ_get_three_tries() {
        let dir = tempfile::tempdir().unwrap();
        let vault = VaultFile::at(dir.path().join("vault.age"));
        let script = Scripted {
            answers: RefCell::new(vec![
                "correct horse battery",
                "correct horse battery!",
                "correct horse battery",
                "other",
                "correct horse battery",
                "correct horse battery",
            ]),
            said: RefCell::new(Vec::new()),
        };
        let session = Unlock::new(&script);
        let pass = session.passphrase(&vault, true).unwrap();
        assert_eq!(
            age::secrecy::ExposeSecret::expose_secret(&pass),
            "correct horse battery"
        );
        assert_eq!(script.said.borrow().len(), 2, "{:?}", script.said.borrow());
        let script = Scripted {
            answers: RefCell::new(["a b c d e f g h", "x"].repeat(3)),
            said: RefCell::new(Vec::new()),
        };
        assert!(matches!(
            Unlock::new(&script).passphrase(&vault, true),
            Err(VaultError::PassphrasesDiffered(3))
        ));
    }
}

//! Test doubles for the flows that go through an [`Unlock`] session: a prompt that answers from
//! a script and records what it was asked and told, and a session on a vault in a temporary
//! directory that neither reads the configuration nor uses the unlock cache.

use std::cell::RefCell;
use std::path::Path;

use keepout_prompt::PromptError;
use zeroize::Zeroizing;

use crate::{Prompt, Unlock, VaultFile};

/// The passphrase every test vault has.
pub const PASSPHRASE: &str = "correct horse battery";

/// Answers passphrases with [`PASSPHRASE`], other secrets and yes/no questions from its lists
/// (a question with no answer left is cancelled), and records what was asked and said.
#[derive(Default)]
pub struct Scripted {
    pub secrets: RefCell<Vec<&'static str>>,
    pub answers: RefCell<Vec<bool>>,
    pub asked: RefCell<Vec<String>>,
    pub said: RefCell<Vec<String>>,
}

impl Scripted {
    pub fn answering(answers: &[bool]) -> Scripted {
        Scripted {
            answers: RefCell::new(answers.to_vec()),
            ..Scripted::default()
        }
    }

    pub fn said(&self) -> Vec<String> {
        self.said.borrow().clone()
    }
}

impl Prompt for &Scripted {
    type Busy = ();

    fn secret(&self, prompt: &str) -> Result<Zeroizing<String>, PromptError> {
        self.asked.borrow_mut().push(prompt.to_string());
        if prompt.contains("assphrase") {
            return Ok(Zeroizing::new(PASSPHRASE.to_string()));
        }
        let mut secrets = self.secrets.borrow_mut();
        if secrets.is_empty() {
            return Err(PromptError::Cancelled);
        }
        Ok(Zeroizing::new(secrets.remove(0).to_string()))
    }

    fn confirm(&self, question: &str) -> Result<bool, PromptError> {
        self.asked.borrow_mut().push(question.to_string());
        let mut answers = self.answers.borrow_mut();
        if answers.is_empty() {
            return Err(PromptError::Cancelled);
        }
        Ok(answers.remove(0))
    }

    fn say(&self, line: &str) {
        self.said.borrow_mut().push(line.to_string());
    }

    fn busy(&self, _: &str) {}
}

/// The vault `vault.age` in `dir`, with a cheap scrypt work factor.
pub fn vault(dir: &Path) -> VaultFile {
    VaultFile::at(dir.join("vault.age")).with_work_factor(2)
}

/// A session asking through `prompt`, with no configured key and no unlock cache.
pub fn session(prompt: &Scripted) -> Unlock<&Scripted> {
    Unlock::new(prompt)
        .with_configured_key(None)
        .without_cache()
}

/// The key of every test vault.
pub fn key() -> crate::Key {
    crate::Key::Passphrase(PASSPHRASE.to_string().into())
}

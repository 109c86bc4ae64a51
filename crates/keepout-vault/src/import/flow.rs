//! The one move-into-vault flow, for credential files and SSH keys alike.
//!
//! Guarantees, in this order: what to store is decided on the vault's content as read (no lock
//! held, so the caller may ask questions there); it is written under the lock, decided again on
//! the content then; nothing is written when nothing changes; and the vault is read back from
//! the file and every stored value checked before [`Unlock::move_in`] returns. The plaintext is
//! never touched here: the caller removes or rewrites it only after `move_in` succeeded.

use crate::{Document, Prompt, Unlock, VaultError, VaultFile};

/// What [`MoveIn::decide`] found.
pub enum Step<D, P> {
    /// Write: `D` is applied under the lock.
    Write(D),
    /// The vault already holds it all: nothing is written, and `P` is what is there.
    Unchanged(P),
}

/// One thing to move into the vault: how to decide, write, accept and check it.
pub trait MoveIn {
    /// What was decided on the content as read.
    type Decision;
    /// Where the values went.
    type Placed;
    type Error: From<VaultError>;

    /// Decide on the vault's content as read (no lock held: questions are asked here).
    fn decide(&mut self, doc: &Document)
        -> Result<Step<Self::Decision, Self::Placed>, Self::Error>;

    /// Write under the lock, deciding again on the content as it is then.
    fn apply(
        &self,
        doc: &mut Document,
        decision: Self::Decision,
    ) -> Result<Self::Placed, VaultError>;

    /// Whether what was written (or found) lets the move go on, before the vault is read back.
    fn accept(&self, _placed: &Self::Placed) -> Result<(), Self::Error> {
        Ok(())
    }

    /// The vault as read back from the file: every stored value is there as stored.
    fn verify(&self, doc: &Document, placed: &Self::Placed) -> Result<(), Self::Error>;
}

impl<P: Prompt> Unlock<P> {
    /// Move `what` into `vault`: open it for writing, decide, write, accept, read back and
    /// verify. Returns where the values went.
    pub fn move_in<M: MoveIn>(
        &self,
        vault: &VaultFile,
        what: &mut M,
    ) -> Result<M::Placed, M::Error> {
        let opened = self.for_writing_with_document(vault)?;
        let (placed, key) = match what.decide(opened.document())? {
            Step::Unchanged(placed) => (placed, opened.key),
            Step::Write(decision) => self.update(vault, opened, |doc| what.apply(doc, decision))?,
        };
        what.accept(&placed)?;
        let doc = self.read(vault, &key)?;
        what.verify(&doc, &placed)?;
        Ok(placed)
    }
}

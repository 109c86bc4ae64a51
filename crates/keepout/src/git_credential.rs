//! `keepout git-credential get | store | erase`: git's credential-helper protocol, served from the
//! vault by [`keepout_vault::helper::git`] over standard input and output.
//!
//! Secrets are named `git/HOST/USERNAME` (the value is the password or token; a port is written
//! `HOST-PORT`); `git/HOST` alone is a token for any user name. `get` answers only for the
//! protocols https and http; with no matching secret it answers nothing, so git goes on to its
//! next helper or asks.
//!
//! Set up with `git config --global credential.helper '!keepout git-credential'` (the `!` makes
//! git run the command as given).

use anyhow::Result;
use keepout_vault::helper::{self, GitAction};

use crate::cli::GitCredentialAction;

pub fn git_credential(action: GitCredentialAction) -> Result<i32> {
    let action = match action {
        GitCredentialAction::Get => GitAction::Get,
        GitCredentialAction::Store => GitAction::Store,
        GitCredentialAction::Erase => GitAction::Erase,
    };
    let (stdin, stdout) = (std::io::stdin().lock(), std::io::stdout().lock());
    helper::git(
        &crate::secret::session(),
        &crate::secret::vault(),
        action,
        stdin,
        stdout,
    )?;
    Ok(0)
}

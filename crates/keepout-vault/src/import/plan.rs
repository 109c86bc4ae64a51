//! What an import of one credential file is: the credentials found in it ([`Entry`]), and what
//! becomes of the file once they are in the vault ([`Rewrite`]).
//!
//! Guarantee: a [`Rewrite`] replaces a file atomically (a temporary file in the same directory,
//! synced, with the original's permissions, renamed over it) or removes it; nothing else.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::VaultError;

/// One credential to store.
pub struct Entry {
    /// The secret's name (`git/github.com/alice`).
    pub name: String,
    pub value: Zeroizing<String>,
    /// Where it came from, kept as the secret's note.
    pub note: String,
}

/// What to do with the file once its credentials are in the vault.
pub enum Rewrite {
    Remove,
    /// The file's text without its secrets.
    Replace(Zeroizing<String>),
}

/// One credential file, read and understood.
pub struct Plan {
    pub file: PathBuf,
    pub entries: Vec<Entry>,
    pub rewrite: Rewrite,
    /// How to keep the tool that read the file working.
    pub advice: String,
}

impl Rewrite {
    /// Remove `file`, or replace its content atomically, keeping its permissions.
    pub fn carry_out(&self, file: &Path) -> Result<(), VaultError> {
        match self {
            Rewrite::Remove => std::fs::remove_file(file).map_err(VaultError::File),
            Rewrite::Replace(content) => rewrite_file(file, content),
        }
    }
}

fn rewrite_file(file: &Path, content: &str) -> Result<(), VaultError> {
    use std::io::Write;
    let dir = file.parent().unwrap_or(Path::new("."));
    let perms = std::fs::metadata(file)
        .map_err(VaultError::File)?
        .permissions();
    let mut tmp = tempfile::Builder::new()
        .prefix(".keepout-import-")
        .tempfile_in(dir)
        .map_err(VaultError::File)?;
    tmp.write_all(content.as_bytes())
        .map_err(VaultError::File)?;
    tmp.as_file().sync_all().map_err(VaultError::File)?;
    std::fs::set_permissions(tmp.path(), perms).map_err(VaultError::File)?;
    tmp.persist(file)
        .map_err(|e| VaultError::Persist(Box::new(e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_rewrite_keeps_the_permissions_and_a_removal_removes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".npmrc");
        std::fs::write(&file, "secret").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        Rewrite::Replace(Zeroizing::new("kept\n".into()))
            .carry_out(&file)
            .unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "kept\n");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        Rewrite::Remove.carry_out(&file).unwrap();
        assert!(!file.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no temporary left"
        );
    }
}

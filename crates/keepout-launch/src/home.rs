//! `--home DIR`: a directory of the caller's. Guarantees: an existing one is used only when it
//! is a directory the caller owns; a missing one is made (mode 0700, with its missing parents)
//! unless the run is dry (`--print-policy` makes nothing); nothing else is touched.

use std::path::Path;

use crate::Error;

/// What [`prepare_home`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreparedHome {
    /// It was there, the caller's.
    Existing,
    /// It was made (mode 0700), and is kept between runs.
    Made,
}

/// Make sure `home` is a directory of `uid`'s: made when it does not exist yet, unless `dry`;
/// refused when it is something else or someone else's.
pub fn prepare_home(home: &Path, uid: u32, dry: bool) -> Result<PreparedHome, Error> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let path = || home.to_path_buf();
    match std::fs::metadata(home) {
        Ok(m) if !m.is_dir() => Err(Error::HomeNotDirectory { path: path() }),
        Ok(m) if m.uid() != uid => Err(Error::HomeNotYours {
            path: path(),
            owner: m.uid(),
            uid,
        }),
        Ok(_) => Ok(PreparedHome::Existing),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dry {
                return Err(Error::HomeMissing { path: path() });
            }
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(home)
                .map_err(|source| Error::HomeUnmakeable {
                    path: path(),
                    source,
                })?;
            Ok(PreparedHome::Made)
        }
        Err(source) => Err(Error::HomeUnusable {
            path: path(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn a_missing_home_is_made_unless_dry() {
        let dir = tempfile::tempdir().unwrap();
        let uid = std::fs::metadata(dir.path()).unwrap().uid();
        let home = dir.path().join("a/b");
        assert!(matches!(
            prepare_home(&home, uid, true),
            Err(Error::HomeMissing { .. })
        ));
        assert!(!home.exists());
        assert_eq!(prepare_home(&home, uid, false).unwrap(), PreparedHome::Made);
        let mode = std::fs::metadata(&home).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(
            prepare_home(&home, uid, false).unwrap(),
            PreparedHome::Existing
        );
    }

    #[test]
    fn a_file_or_someone_elses_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let uid = std::fs::metadata(dir.path()).unwrap().uid();
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(
            prepare_home(&file, uid, false),
            Err(Error::HomeNotDirectory { .. })
        ));
        match prepare_home(dir.path(), uid + 1, false) {
            Err(Error::HomeNotYours { owner, uid: u, .. }) => {
                assert_eq!((owner, u), (uid, uid + 1))
            }
            other => panic!("{other:?}"),
        }
    }
}

//! Everything a command line asks of a workspace run that can be wrong, checked before any work
//! (a clone, a new workspace).
//!
//! What this module guarantees: [`Store::check_before_work`] makes nothing and changes nothing;
//! it checks, in this order, that the new name is valid and free (a damaged workspace of that
//! name says so), that the layer is there, the caller's network check, that every `--ro` path
//! is there, that `--report`'s directory is there, and the caller's limits check; the first
//! that fails is the error. The network and limits are the caller's to check (they are the
//! sandbox's and its proxy's business, not the store's).

use std::path::{Path, PathBuf};

use crate::{valid_name, Error, Store};

/// What a workspace run asks for that the store can check.
#[derive(Debug, Clone, Copy, Default)]
pub struct Preflight<'a> {
    /// The name of a workspace to make, if one is made.
    pub new_name: Option<&'a str>,
    /// The layer it is to start on, if any.
    pub layer: Option<&'a str>,
    /// Paths to show read-only inside: each must exist.
    pub read_only: &'a [PathBuf],
    /// Where the run's report is to be written: its directory must exist.
    pub report: Option<&'a Path>,
}

impl Store {
    /// Check `preflight` before any work; `network` and `limits` are the caller's checks, run
    /// in their place in the order (see the module doc).
    pub fn check_before_work<E: From<Error>>(
        &self,
        preflight: &Preflight,
        network: impl FnOnce() -> Result<(), E>,
        limits: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        if let Some(name) = preflight.new_name {
            if !valid_name(name) {
                return Err(Error::BadName(name.into()).into());
            }
            if self.exists(name) {
                // A damaged one says so (and how to remove it) rather than just "exists".
                self.workspace(name)?;
                return Err(Error::WorkspaceExists(name.into()).into());
            }
        }
        if let Some(layer) = preflight.layer {
            self.layer(layer)?;
        }
        network()?;
        for path in preflight.read_only {
            if std::fs::symlink_metadata(path).is_err() {
                return Err(Error::NoReadOnlyPath(path.clone()).into());
            }
        }
        if let Some(report) = preflight.report {
            let dir = report
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !dir.is_dir() {
                return Err(Error::NoReportDir {
                    report: report.to_path_buf(),
                    dir: dir.to_path_buf(),
                }
                .into());
            }
        }
        limits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Result<(), Error> {
        Ok(())
    }

    #[test]
    fn each_check_in_its_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path().join("k"));
        let check = |p: &Preflight| s.check_before_work(p, ok, ok);
        assert!(check(&Preflight::default()).is_ok());
        assert!(matches!(
            check(&Preflight {
                new_name: Some("Bad"),
                ..Default::default()
            }),
            Err(Error::BadName(_))
        ));
        s.create("taken", None, None, "taken", false).unwrap();
        assert!(matches!(
            check(&Preflight {
                new_name: Some("taken"),
                ..Default::default()
            }),
            Err(Error::WorkspaceExists(_))
        ));
        assert!(matches!(
            check(&Preflight {
                layer: Some("none"),
                ..Default::default()
            }),
            Err(Error::NoLayer { .. })
        ));
        let missing = [dir.path().join("missing")];
        assert!(matches!(
            check(&Preflight {
                read_only: &missing,
                ..Default::default()
            }),
            Err(Error::NoReadOnlyPath(_))
        ));
        let report = dir.path().join("no/such/report.json");
        assert!(matches!(
            check(&Preflight {
                report: Some(&report),
                ..Default::default()
            }),
            Err(Error::NoReportDir { .. })
        ));
        // The caller's network check runs after the layer's, before the paths'.
        let net_refused = s.check_before_work(
            &Preflight {
                read_only: &missing,
                ..Default::default()
            },
            || Err(Error::LayerExists("net".into())),
            ok,
        );
        assert!(matches!(net_refused, Err(Error::LayerExists(_))));
        let mut limits_ran = false;
        let _ = s.check_before_work(
            &Preflight {
                read_only: &missing,
                ..Default::default()
            },
            ok,
            || {
                limits_ran = true;
                ok()
            },
        );
        assert!(!limits_ran, "nothing after the first failure");
    }
}

//! The audit's inputs read from this machine: whose home, the current project, the environment,
//! the user's uid, name and groups, and (for the user's own home only) the probes, the sudoers
//! files and the system root.
//!
//! Guarantees: a fixture home (`--home DIR`) is audited without probes, sudoers or the system
//! root, so its report depends on that directory alone; a home that cannot be read is an error
//! before anything is audited; an environment value that is not UTF-8 is read lossily, never a
//! panic.

use std::path::{Path, PathBuf};

use crate::Context;

/// Why the audit's inputs cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InputsError {
    /// No `--home` was given and `HOME` is not set.
    #[error("HOME is not set; give --home DIR")]
    NoHome,
    /// The `--home` given cannot be made absolute.
    #[error("{}: {source}", path.display())]
    NotAbsolute {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The home to audit cannot be listed.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The names of the current user's groups (`id -Gn`; none if that fails).
fn groups() -> Vec<String> {
    std::process::Command::new("id")
        .arg("-Gn")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The home to audit: `fixture` made absolute, else `HOME`; it must be readable.
fn home_to_audit(
    fixture: Option<&Path>,
    real_home: Option<PathBuf>,
) -> Result<PathBuf, InputsError> {
    let home = match (fixture, real_home) {
        (Some(h), _) => std::path::absolute(h).map_err(|source| InputsError::NotAbsolute {
            path: h.to_path_buf(),
            source,
        })?,
        (None, Some(h)) => h,
        (None, None) => return Err(InputsError::NoHome),
    };
    if let Err(source) = std::fs::read_dir(&home) {
        return Err(InputsError::Unreadable { path: home, source });
    }
    Ok(home)
}

impl Context {
    /// The audit's inputs from this machine and process. `fixture`: a home to audit instead of
    /// the user's own (no probes, sudoers or system root then); `keepout_agent_socket`: keepout's
    /// own agent socket, which is not reported.
    pub fn from_machine(
        fixture: Option<&Path>,
        keepout_agent_socket: Option<PathBuf>,
    ) -> Result<Context, InputsError> {
        let home = home_to_audit(fixture, std::env::var_os("HOME").map(PathBuf::from))?;
        let own_home = fixture.is_none();
        Ok(Context {
            project: std::env::current_dir()
                .ok()
                .filter(|d| d.parent().is_some()),
            // Lossy: a value that is not UTF-8 (OLDPWD after `cd` into such a directory) is
            // still scanned for tokens; std::env::vars() would panic on it.
            env: std::env::vars_os()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.to_string_lossy().into_owned(),
                    )
                })
                .collect(),
            uid: rustix::process::getuid().as_raw(),
            user: std::env::var("USER").unwrap_or_default(),
            groups: groups(),
            probe: own_home,
            keepout_agent_socket,
            sudoers: if own_home {
                crate::system_sudoers()
            } else {
                Vec::new()
            },
            system_root: own_home.then(|| PathBuf::from("/")),
            home,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixture_home_is_made_absolute_and_must_be_readable() {
        let dir = tempfile::tempdir().unwrap();
        let home = home_to_audit(Some(dir.path()), None).unwrap();
        assert_eq!(home, dir.path());
        let missing = dir.path().join("missing");
        let err = home_to_audit(Some(&missing), None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read {}: ", missing.display())),
            "{err}"
        );
    }

    #[test]
    fn without_a_fixture_the_home_is_home_and_must_be_set() {
        let dir = tempfile::tempdir().unwrap();
        let home = home_to_audit(None, Some(dir.path().to_path_buf())).unwrap();
        assert_eq!(home, dir.path());
        assert_eq!(
            home_to_audit(None, None).unwrap_err().to_string(),
            "HOME is not set; give --home DIR"
        );
    }

    #[test]
    fn a_fixture_audit_has_no_probes_sudoers_or_system_root() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context::from_machine(Some(dir.path()), None).unwrap();
        assert!(!ctx.probe);
        assert!(ctx.sudoers.is_empty());
        assert!(ctx.system_root.is_none());
    }
}

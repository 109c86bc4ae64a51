//! Releasing a scope's variables to one command (`keepout exec`) or one shell (`kvars`).
//!
//! Guarantees: the scope is the one named, or the one of the directory (the most specific
//! match of [`Config::scope_and_root_for`]); a scope with `confirm = true` gives its question
//! ([`Chosen::question`]) before anything is resolved; the vault is opened (the caller's
//! document function called) only when a value is a `keepout:` reference; values are held only
//! in memory that is zeroed on drop.

use std::path::{Path, PathBuf};

use crate::{resolve_env, Config, Document, Resolved, Scope, VaultError};

/// The scope chosen for a command, not yet resolved.
pub struct Chosen<'c> {
    pub scope: &'c Scope,
    /// The directory (the cwd or a parent) whose match chose the scope; the cwd for a scope
    /// chosen by name.
    pub root: PathBuf,
}

/// The scope named `name`, else the one for the directory `cwd`.
pub fn choose<'c>(
    config: &'c Config,
    name: Option<&str>,
    cwd: &Path,
) -> Result<Chosen<'c>, VaultError> {
    let (scope, root) = match name {
        Some(name) => (config.scope(name)?, cwd.to_path_buf()),
        None => config.scope_and_root_for(cwd)?,
    };
    Ok(Chosen { scope, root })
}

impl Chosen<'_> {
    /// The question to ask before releasing the scope's secrets to `for_command`, when the
    /// scope wants one (`confirm = true`).
    pub fn question(&self, for_command: &str) -> Option<String> {
        self.scope.confirm.then(|| {
            format!(
                "Release the secrets of scope {:?} to {for_command}?",
                self.scope.name
            )
        })
    }

    /// Resolve the scope's references; `vault` is called only when one is `keepout:`.
    pub fn resolve(
        self,
        vault: impl FnOnce() -> Result<Document, VaultError>,
    ) -> Result<ScopeValues, VaultError> {
        let values = resolve_env(&self.scope.env, vault)?;
        Ok(ScopeValues {
            scope: self.scope.name.clone(),
            root: self.root,
            values,
        })
    }
}

/// A scope's variables, resolved: name, value, and whether the value is a secret (not a literal).
pub struct ScopeValues {
    pub scope: String,
    /// The directory (the cwd or a parent) whose match chose the scope; the cwd for `--scope`.
    pub root: PathBuf,
    pub values: Vec<Resolved>,
}

impl ScopeValues {
    /// The variables' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.values.iter().map(|v| v.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        let path = dir.join("config.toml");
        std::fs::write(
            &path,
            format!(
                "[[scope]]\nname = \"proj\"\ndirs = [\"{0}/src/proj\"]\n\
                 env = {{ USER_NAME = \"__token__\", TOKEN = \"keepout:pypi/proj\" }}\n\
                 confirm = true\n\n\
                 [[scope]]\nname = \"plain\"\ndirs = [\"{0}/plain\"]\nenv = {{ A = \"1\" }}\n",
                dir.display()
            ),
        )
        .unwrap();
        Config::load(&path).unwrap()
    }

    #[test]
    fn the_scope_of_a_directory_is_rooted_where_it_matched() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let deep = dir.path().join("src/proj/a/b");
        let chosen = choose(&config, None, &deep).unwrap();
        assert_eq!(chosen.scope.name, "proj");
        assert_eq!(chosen.root, dir.path().join("src/proj"));
        let by_name = choose(&config, Some("plain"), &deep).unwrap();
        assert_eq!((by_name.scope.name.as_str(), by_name.root), ("plain", deep));
        assert!(matches!(
            choose(&config, None, dir.path()),
            Err(VaultError::NoScope { .. })
        ));
        assert!(matches!(
            choose(&config, Some("nope"), dir.path()),
            Err(VaultError::NoScope { .. })
        ));
    }

    #[test]
    fn only_a_scope_that_wants_it_asks() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let chosen = choose(&config, Some("proj"), dir.path()).unwrap();
        assert_eq!(
            chosen.question("`twine upload`").as_deref(),
            Some("Release the secrets of scope \"proj\" to `twine upload`?")
        );
        let plain = choose(&config, Some("plain"), dir.path()).unwrap();
        assert_eq!(plain.question("x"), None);
    }

    #[test]
    fn the_vault_is_opened_only_for_a_vault_reference() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let plain = choose(&config, Some("plain"), dir.path()).unwrap();
        let values = plain
            .resolve(|| panic!("the vault was opened for a literal"))
            .unwrap();
        assert_eq!(
            (values.scope.as_str(), values.names()),
            ("plain", vec!["A"])
        );
        assert!(!values.values[0].secret);

        let proj = choose(&config, Some("proj"), dir.path()).unwrap();
        let values = proj
            .resolve(|| {
                let mut doc = Document::new();
                doc.set("pypi/proj", "pypi-secret".to_string().into(), None)?;
                Ok(doc)
            })
            .unwrap();
        assert_eq!(values.names(), ["TOKEN", "USER_NAME"]);
        assert_eq!(
            (values.values[0].value.as_str(), values.values[0].secret),
            ("pypi-secret", true)
        );
        assert!(!values.values[1].secret);
    }
}

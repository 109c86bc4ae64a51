//! Releasing a scope's variables to one command (`keepout exec`) or one shell (`kvars`).
//!
//! Guarantees: the scope is the one named, or the one of the directory (the most specific
//! match of [`Config::scope_and_root_for`]); a scope with `confirm = true` gives its question
//! ([`Chosen::question`]) before anything is resolved; the vault is opened (the caller's
//! document function called) only when a value is a `keepout:` reference; values are held only
//! in memory that is zeroed on drop.

use std::path::{Path, PathBuf};

use crate::{
    resolve_env, Config, Document, Prompt, Resolved, Scope, Unlock, VaultError, VaultFile,
};

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

/// The values of the scope named `name`, else of the one for `cwd`, for `for_command`: asked
/// about through the session's prompt first if the scope wants it (a no releases nothing), the
/// vault opened only when a value is a `keepout:` reference.
pub fn scope_values<P: Prompt>(
    session: &Unlock<P>,
    vault: &VaultFile,
    config: &Config,
    name: Option<&str>,
    cwd: &Path,
    for_command: &str,
) -> Result<ScopeValues, VaultError> {
    let chosen = choose(config, name, cwd)?;
    if let Some(question) = chosen.question(for_command) {
        if !session.prompt().confirm(&question)? {
            return Err(VaultError::NotApproved);
        }
    }
    chosen.resolve(|| session.read_document(vault))
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

    /// The values that are secrets (not literals): what `exec --mask` conceals.
    pub fn secret_values(&self) -> Vec<Vec<u8>> {
        let secrets = self.values.iter().filter(|v| v.secret);
        secrets.map(|v| v.value.as_bytes().to_vec()).collect()
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
    fn a_no_releases_nothing_and_a_yes_the_scope() {
        use crate::testing::{self, Scripted};
        let dir = tempfile::tempdir().unwrap();
        let (config, vault) = (config(dir.path()), testing::vault(dir.path()));
        let p = Scripted::answering(&[false]);
        let values = |p| {
            scope_values(
                &testing::session(p),
                &vault,
                &config,
                Some("proj"),
                dir.path(),
                "`x`",
            )
        };
        let e = values(&p).err().unwrap();
        assert_eq!(
            (e.to_string(), e.exit_code()),
            ("not approved: no secret was released".into(), 125)
        );
        assert_eq!(
            *p.asked.borrow(),
            ["Release the secrets of scope \"proj\" to `x`?"]
        );
        vault.create(&testing::key()).unwrap();
        let stored = |doc: &mut Document| doc.set("pypi/proj", "s3".to_string().into(), None);
        vault.update(&testing::key(), stored).unwrap();
        let p = Scripted::answering(&[true]);
        let values = values(&p).unwrap();
        assert_eq!(values.secret_values(), [b"s3".to_vec()]);
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

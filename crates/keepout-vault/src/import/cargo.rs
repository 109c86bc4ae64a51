//! cargo's `credentials.toml`: `[registry] token` becomes `cargo/crates-io`, each
//! `[registries.NAME] token` becomes `cargo/NAME`; the file is removed when nothing but empty
//! tables is left, else rewritten without the tokens.

use std::path::PathBuf;

use zeroize::Zeroizing;

use super::plan::{Entry, Plan, Rewrite};
use crate::{name_part, VaultError};

pub(super) fn plan(text: &str, file: PathBuf) -> Result<Plan, VaultError> {
    let mut doc: toml::Table = toml::from_str(text).map_err(|source| VaultError::NotToml {
        what: "~/.cargo/credentials.toml",
        source,
    })?;
    let mut entries = Vec::new();
    if let Some(token) = doc
        .get_mut("registry")
        .and_then(|r| r.as_table_mut())
        .and_then(|r| r.remove("token"))
    {
        if let Some(t) = token.as_str() {
            entries.push(Entry {
                name: "cargo/crates-io".into(),
                value: Zeroizing::new(t.into()),
                note: "from cargo credentials".into(),
            });
        }
    }
    if let Some(regs) = doc.get_mut("registries").and_then(|r| r.as_table_mut()) {
        for (name, reg) in regs.iter_mut() {
            if let Some(t) = reg.as_table_mut().and_then(|r| r.remove("token")) {
                if let Some(t) = t.as_str() {
                    entries.push(Entry {
                        name: format!("cargo/{}", name_part(name)),
                        value: Zeroizing::new(t.into()),
                        note: "from cargo credentials".into(),
                    });
                }
            }
        }
    }
    let rest = toml::to_string(&doc).unwrap_or_default();
    let only_empty_tables = doc.values().all(|v| {
        v.as_table().is_some_and(|t| {
            t.values()
                .all(|v| v.as_table().is_some_and(|t| t.is_empty()))
                || t.is_empty()
        })
    });
    Ok(Plan {
        file,
        entries,
        rewrite: if only_empty_tables { Rewrite::Remove } else { Rewrite::Replace(Zeroizing::new(rest)) },
        advice: "In ~/.cargo/config.toml: [registry] global-credential-providers = [\"keepout cargo-credential\"]".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_tokens() {
        let p = plan(
            "[registry]\ntoken = \"cio1\"\n[registries.my-reg]\ntoken = \"t2\"\n",
            "c".into(),
        )
        .unwrap();
        let names: Vec<&str> = p.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["cargo/crates-io", "cargo/my-reg"]);
        assert!(
            matches!(p.rewrite, Rewrite::Remove),
            "nothing else in the file: removed"
        );
    }

    #[test]
    fn other_settings_stay_and_bad_toml_is_said() {
        let p = plan(
            "[registry]\ntoken = \"t\"\ndefault = \"mine\"\n",
            "c".into(),
        )
        .unwrap();
        let Rewrite::Replace(text) = &p.rewrite else {
            panic!("rewritten")
        };
        assert!(text.contains("default = \"mine\"") && !text.contains("\"t\""));
        assert!(matches!(
            plan("[registry", "c".into()),
            Err(VaultError::NotToml { .. })
        ));
    }
}

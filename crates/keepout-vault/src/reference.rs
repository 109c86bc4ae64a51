//! Secret references and the providers that resolve them, each a small adapter behind one
//! trait: `keepout:NAME` (the vault), `pass:PATH` (pass), `op://vault/item/field` (1Password's
//! `op read`), `bw://item/field` (Bitwarden's `bw get`). Anything else is a literal value.
//!
//! Guarantees: a value is only ever held in memory that is zeroed when dropped; a provider's
//! error message never contains a value (only the reference and the tool's first stderr line);
//! the external tools inherit keepout's environment (`BW_SESSION`, `OP_SESSION_*`,
//! `PASSWORD_STORE_DIR`, ...) and nothing is passed to them but the reference.

use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use crate::document::Document;
use crate::error::VaultError;

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Vault(String),
    Pass(String),
    OnePassword(String),
    Bitwarden { item: String, field: String },
    Literal(String),
}

impl SecretRef {
    pub fn parse(text: &str) -> Result<SecretRef, VaultError> {
        let bad = |why: &str| VaultError::BadReference(format!("{text:?}: {why}"));
        if let Some(name) = text.strip_prefix("keepout:") {
            crate::document::check_name(name)?;
            return Ok(SecretRef::Vault(name.to_string()));
        }
        if let Some(path) = text.strip_prefix("pass:") {
            if path.is_empty() || path.starts_with('-') {
                return Err(bad("expected pass:PATH"));
            }
            return Ok(SecretRef::Pass(path.to_string()));
        }
        if let Some(rest) = text.strip_prefix("op://") {
            if rest.split('/').filter(|p| !p.is_empty()).count() < 3 {
                return Err(bad("expected op://vault/item/field"));
            }
            return Ok(SecretRef::OnePassword(text.to_string()));
        }
        if let Some(rest) = text.strip_prefix("bw://") {
            let (item, field) = rest
                .split_once('/')
                .ok_or_else(|| bad("expected bw://item/field"))?;
            if item.is_empty() || field.is_empty() || item.starts_with('-') {
                return Err(bad("expected bw://item/field"));
            }
            return Ok(SecretRef::Bitwarden {
                item: item.to_string(),
                field: field.to_string(),
            });
        }
        Ok(SecretRef::Literal(text.to_string()))
    }

    /// Does resolving this need the vault unlocked?
    pub fn needs_vault(&self) -> bool {
        matches!(self, SecretRef::Vault(_))
    }

    /// Is this a secret (anything but a literal)?
    pub fn is_secret(&self) -> bool {
        !matches!(self, SecretRef::Literal(_))
    }
}

/// Something that turns a reference into a value.
pub trait Provider {
    /// The provider's name for messages (`vault`, `pass`, `op`, `bw`).
    fn name(&self) -> &'static str;
    /// Resolve `reference`, or `Ok(None)` if it is not this provider's kind.
    fn fetch(&self, reference: &SecretRef) -> Result<Option<Zeroizing<String>>, VaultError>;
}

/// `keepout:NAME` from an unlocked vault document.
pub struct VaultProvider<'a>(pub &'a Document);

impl Provider for VaultProvider<'_> {
    fn name(&self) -> &'static str {
        "vault"
    }
    fn fetch(&self, reference: &SecretRef) -> Result<Option<Zeroizing<String>>, VaultError> {
        let SecretRef::Vault(name) = reference else {
            return Ok(None);
        };
        Ok(Some(self.0.get(name)?.value.clone()))
    }
}

/// Run a provider's CLI and return its standard output, one trailing newline removed.
fn run_tool(
    tool: &'static str,
    args: &[&str],
    reference: &str,
) -> Result<Zeroizing<String>, VaultError> {
    let fail = |message: String| VaultError::Provider {
        tool,
        reference: reference.to_string(),
        message,
    };
    let out = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                fail(format!("`{tool}` is not installed (or not on PATH)"))
            } else {
                fail(e.to_string())
            }
        })?;
    let stdout = Zeroizing::new(out.stdout);
    if !out.status.success() {
        let first = String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        return Err(fail(format!("`{tool}` failed ({}): {first}", out.status)));
    }
    let mut text = Zeroizing::new(
        String::from_utf8(stdout.to_vec()).map_err(|_| fail("the value is not UTF-8".into()))?,
    );
    if text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

/// `pass:PATH`: the first line of `pass show PATH` (pass's convention for the password).
pub struct PassProvider;

impl Provider for PassProvider {
    fn name(&self) -> &'static str {
        "pass"
    }
    fn fetch(&self, reference: &SecretRef) -> Result<Option<Zeroizing<String>>, VaultError> {
        let SecretRef::Pass(path) = reference else {
            return Ok(None);
        };
        let all = run_tool("pass", &["show", "--", path], &format!("pass:{path}"))?;
        Ok(Some(Zeroizing::new(
            all.lines().next().unwrap_or("").to_string(),
        )))
    }
}

/// `op://vault/item/field`: `op read` (1Password CLI).
pub struct OnePasswordProvider;

impl Provider for OnePasswordProvider {
    fn name(&self) -> &'static str {
        "op"
    }
    fn fetch(&self, reference: &SecretRef) -> Result<Option<Zeroizing<String>>, VaultError> {
        let SecretRef::OnePassword(uri) = reference else {
            return Ok(None);
        };
        Ok(Some(run_tool("op", &["read", "--no-newline", uri], uri)?))
    }
}

/// `bw://item/field`: `bw get FIELD ITEM` for the built-in fields, else the custom field of that
/// name from `bw get item ITEM` (Bitwarden CLI; needs `BW_SESSION` from `bw unlock`).
pub struct BitwardenProvider;

const BW_BUILTIN: &[&str] = &["username", "password", "totp", "notes", "uri"];

impl Provider for BitwardenProvider {
    fn name(&self) -> &'static str {
        "bw"
    }
    fn fetch(&self, reference: &SecretRef) -> Result<Option<Zeroizing<String>>, VaultError> {
        let SecretRef::Bitwarden { item, field } = reference else {
            return Ok(None);
        };
        let shown = format!("bw://{item}/{field}");
        if BW_BUILTIN.contains(&field.as_str()) {
            return Ok(Some(run_tool("bw", &["get", field, item], &shown)?));
        }
        let json = run_tool("bw", &["get", "item", item], &shown)?;
        let value: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| VaultError::Provider {
                tool: "bw",
                reference: shown.clone(),
                message: format!("unexpected output from `bw get item`: {e}"),
            })?;
        let found = value["fields"]
            .as_array()
            .and_then(|fields| fields.iter().find(|f| f["name"].as_str() == Some(field)))
            .and_then(|f| f["value"].as_str())
            .map(|v| Zeroizing::new(v.to_string()));
        found.map(Some).ok_or_else(|| VaultError::Provider {
            tool: "bw",
            reference: shown,
            message: format!("item has no field {field:?}"),
        })
    }
}

/// One resolved variable.
pub struct Resolved {
    pub name: String,
    pub value: Zeroizing<String>,
    /// Whether the value came from a reference (a secret), not a literal.
    pub secret: bool,
}

/// Resolve every value of `env` (name -> reference text), in name order. `vault` is called
/// only when a `keepout:` reference is present, so nothing is unlocked for nothing.
pub fn resolve_env<E: From<VaultError>>(
    env: &std::collections::BTreeMap<String, String>,
    vault: impl FnOnce() -> Result<Document, E>,
) -> Result<Vec<Resolved>, E> {
    let parsed: Vec<(String, SecretRef)> = env
        .iter()
        .map(|(k, v)| Ok((k.clone(), SecretRef::parse(v)?)))
        .collect::<Result<_, VaultError>>()?;
    let doc = if parsed.iter().any(|(_, r)| r.needs_vault()) {
        Some(vault()?)
    } else {
        None
    };
    let vault_provider = doc.as_ref().map(VaultProvider);
    let mut providers: Vec<&dyn Provider> =
        vec![&PassProvider, &OnePasswordProvider, &BitwardenProvider];
    if let Some(v) = &vault_provider {
        providers.insert(0, v);
    }
    let mut out = Vec::new();
    for (name, reference) in parsed {
        let value = match &reference {
            SecretRef::Literal(v) => Zeroizing::new(v.clone()),
            r => providers
                .iter()
                .find_map(|p| p.fetch(r).transpose())
                .expect("every reference kind has a provider")?,
        };
        out.push(Resolved {
            name,
            value,
            secret: reference.is_secret(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        assert_eq!(
            SecretRef::parse("keepout:pypi/x").unwrap(),
            SecretRef::Vault("pypi/x".into())
        );
        assert_eq!(
            SecretRef::parse("pass:web/pypi").unwrap(),
            SecretRef::Pass("web/pypi".into())
        );
        assert_eq!(
            SecretRef::parse("op://Private/PyPI/token").unwrap(),
            SecretRef::OnePassword("op://Private/PyPI/token".into())
        );
        assert_eq!(
            SecretRef::parse("bw://pypi/password").unwrap(),
            SecretRef::Bitwarden {
                item: "pypi".into(),
                field: "password".into()
            }
        );
        assert_eq!(
            SecretRef::parse("__token__").unwrap(),
            SecretRef::Literal("__token__".into())
        );
        for bad in [
            "keepout:Bad Name",
            "pass:",
            "pass:-x",
            "op://vault",
            "bw://item",
            "bw://-x/password",
        ] {
            assert!(SecretRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_vault_is_opened_only_when_needed() {
        let mut env = std::collections::BTreeMap::new();
        env.insert("TWINE_USERNAME".to_string(), "__token__".to_string());
        let out = resolve_env(&env, || -> Result<Document, VaultError> {
            panic!("no keepout: reference, no unlock")
        })
        .unwrap();
        assert_eq!(*out[0].value, "__token__");
        assert!(!out[0].secret);
    }
}

//! The vault's content: a versioned TOML document of named secrets.
//!
//! Guarantees: a document of a newer format version than this build understands is refused
//! (never rewritten in the older format); secret names are checked (`[a-z0-9._/-]`, no `..`, no
//! leading `/`); values are kept in memory that is zeroed when dropped; nothing here prints a
//! value (`Debug` shows names only).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::VaultError;

/// The format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// One secret: its value and what is known about it.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Secret {
    #[serde(with = "zeroizing_string")]
    pub value: Zeroizing<String>,
    /// Seconds since the Unix epoch.
    pub created: u64,
    pub updated: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("value", &"<concealed>")
            .field("created", &self.created)
            .field("updated", &self.updated)
            .field("note", &self.note)
            .finish()
    }
}

/// What `keepout secret list` shows: everything but the value.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SecretInfo {
    pub name: String,
    pub created: u64,
    pub updated: u64,
    pub note: Option<String>,
}

/// The decrypted vault.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Document {
    pub version: u32,
    #[serde(default)]
    secrets: BTreeMap<String, Secret>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Make one part of a secret name from outside text (a host, a user, a registry): lower case,
/// and every character a name may not hold (including `/`) becomes `-`.
pub fn name_part(text: &str) -> String {
    text.to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Check a secret's name: lower-case letters, digits, `.`, `_`, `-`, and `/` between parts.
pub fn check_name(name: &str) -> Result<(), VaultError> {
    let ok_chars = name.chars().all(|c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '/')
    });
    let ok_parts = name
        .split('/')
        .all(|p| !p.is_empty() && p != "." && p != "..");
    if name.is_empty() || name.len() > 200 || !ok_chars || !ok_parts {
        return Err(VaultError::BadName(name.to_string()));
    }
    Ok(())
}

impl Document {
    pub fn new() -> Document {
        Document {
            version: FORMAT_VERSION,
            secrets: BTreeMap::new(),
        }
    }

    /// Parse a decrypted document, refusing newer format versions.
    pub fn from_toml(text: &str) -> Result<Document, VaultError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let v: VersionOnly = toml::from_str(text).map_err(|e| {
            VaultError::Corrupted(format!("not a keepout vault document: {}", e.message()))
        })?;
        if v.version > FORMAT_VERSION {
            return Err(VaultError::NewerFormat {
                found: v.version,
                supported: FORMAT_VERSION,
            });
        }
        toml::from_str(text)
            .map_err(|e| VaultError::Corrupted(format!("vault document: {}", e.message())))
    }

    /// The document as TOML, in memory that is zeroed when dropped.
    pub fn to_toml(&self) -> Zeroizing<String> {
        Zeroizing::new(toml::to_string(self).expect("a Document always serialises"))
    }

    /// Add or replace a secret. Returns `true` if it replaced one.
    pub fn set(
        &mut self,
        name: &str,
        value: Zeroizing<String>,
        note: Option<String>,
    ) -> Result<bool, VaultError> {
        check_name(name)?;
        let t = now();
        Ok(match self.secrets.get_mut(name) {
            Some(s) => {
                s.value = value;
                s.updated = t;
                if note.is_some() {
                    s.note = note;
                }
                true
            }
            None => {
                self.secrets.insert(
                    name.to_string(),
                    Secret {
                        value,
                        created: t,
                        updated: t,
                        note,
                    },
                );
                false
            }
        })
    }

    /// Remove a secret.
    pub fn remove(&mut self, name: &str) -> Result<(), VaultError> {
        self.secrets
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| VaultError::NoSuchSecret(name.to_string()))
    }

    /// A secret's value.
    pub fn get(&self, name: &str) -> Result<&Secret, VaultError> {
        self.secrets
            .get(name)
            .ok_or_else(|| VaultError::NoSuchSecret(name.to_string()))
    }

    /// Names and metadata, never values.
    pub fn list(&self) -> Vec<SecretInfo> {
        self.secrets
            .iter()
            .map(|(name, s)| SecretInfo {
                name: name.clone(),
                created: s.created,
                updated: s.updated,
                note: s.note.clone(),
            })
            .collect()
    }
}

mod zeroizing_string {
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub fn serialize<S: Serializer>(v: &Zeroizing<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Zeroizing<String>, D::Error> {
        String::deserialize(d).map(Zeroizing::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_values_and_metadata() {
        let mut d = Document::new();
        d.set(
            "pypi/coverage",
            Zeroizing::new("pypi-AgE".into()),
            Some("upload token".into()),
        )
        .unwrap();
        let back = Document::from_toml(&d.to_toml()).unwrap();
        assert_eq!(back, d);
        assert_eq!(*back.get("pypi/coverage").unwrap().value, "pypi-AgE");
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", "A", "a b", "../x", "/x", "x//y", "x/./y", "x\u{0}"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["pypi/coverage", "github.com/token", "a_b-c.d"] {
            check_name(good).unwrap();
        }
    }

    #[test]
    fn name_parts_are_made_valid() {
        assert_eq!(
            name_part("Reg.Example/index:8080"),
            "reg.example-index-8080"
        );
        check_name(&format!("x/{}", name_part("Bad Name!"))).unwrap();
    }

    #[test]
    fn newer_format_is_refused() {
        let err = Document::from_toml("version = 2\n").unwrap_err();
        assert!(
            matches!(
                err,
                VaultError::NewerFormat {
                    found: 2,
                    supported: 1
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn debug_never_shows_values() {
        let mut d = Document::new();
        d.set("x", Zeroizing::new("hunter2".into()), None).unwrap();
        assert!(!format!("{d:?}").contains("hunter2"));
    }
}

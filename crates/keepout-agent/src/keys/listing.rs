//! What `keepout ssh list` shows of each key: its name, type, fingerprint, public half and the
//! policy that applies to it.
//!
//! Guarantees: only public material (the `NAME.pub` files and the `[ssh]` settings) is read, so
//! a listing works while the vault is locked; the policy shown is the one the agent applies
//! (by the key's name, else its fingerprint; the safe default when neither has an entry).

use std::path::Path;

use serde::Serialize;

use crate::keys;
use crate::policy::{Confirm, SshSettings};

/// One key as listed. Serialised (for `--json`) with its fields in this, alphabetical, order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// The key's algorithm (`ssh-ed25519`).
    pub algorithm: String,
    /// When its signatures are asked for ([`confirm_text`]).
    pub confirm: String,
    /// Its SHA-256 fingerprint.
    pub fingerprint: String,
    /// The destinations it may sign for; empty: any.
    pub hosts: Vec<String>,
    pub name: String,
    /// Its public half as an OpenSSH line.
    pub public_key: String,
}

/// A key's `confirm` as configured: `always`, `never` or seconds (`300s`).
pub fn confirm_text(c: Confirm) -> String {
    match c {
        Confirm::Always => "always".into(),
        Confirm::Never => "never".into(),
        Confirm::For(d) => format!("{}s", d.as_secs()),
    }
}

/// The keys of the vault at `vault`, by name, each with its policy from `settings`.
pub fn listing(vault: &Path, settings: &SshSettings) -> Vec<Listed> {
    keys::list(&keys::public_dir(vault))
        .into_iter()
        .map(|k| {
            let (algorithm, fingerprint) = keys::describe(&k.public);
            let policy = settings.policy_for(&[k.name.as_str(), fingerprint.as_str()]);
            Listed {
                public_key: k.public.to_openssh().unwrap_or_default(),
                confirm: confirm_text(policy.confirm),
                hosts: policy.hosts,
                algorithm,
                fingerprint,
                name: k.name,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::{Algorithm, PrivateKey};

    #[test]
    fn confirm_is_shown_as_configured() {
        assert_eq!(confirm_text(Confirm::Always), "always");
        assert_eq!(confirm_text(Confirm::Never), "never");
        assert_eq!(
            confirm_text(Confirm::For(std::time::Duration::from_secs(300))),
            "300s"
        );
    }

    #[test]
    fn keys_are_listed_with_their_policy() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("vault.age");
        let public_dir = keys::public_dir(&vault);
        let mut rng = ssh_key::rand_core::OsRng;
        for name in ["work", "home"] {
            let key = PrivateKey::random(&mut rng, Algorithm::Ed25519).unwrap();
            keys::write_public(&public_dir, name, key.public_key()).unwrap();
        }
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            "[[ssh.key]]\nname = \"work\"\nconfirm = \"5m\"\nhosts = [\"github.com\"]\n",
        )
        .unwrap();
        let settings = SshSettings::load(&config).unwrap();
        let listed = listing(&vault, &settings);
        let names: Vec<&str> = listed.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["home", "work"]);
        assert_eq!(
            (listed[0].confirm.as_str(), listed[0].hosts.len()),
            ("always", 0)
        );
        assert_eq!(listed[1].confirm, "300s");
        assert_eq!(listed[1].hosts, ["github.com"]);
        assert_eq!(listed[1].algorithm, "ssh-ed25519");
        assert!(listed[1].fingerprint.starts_with("SHA256:"));
        assert!(listed[1].public_key.starts_with("ssh-ed25519 AAAA"));
    }
}

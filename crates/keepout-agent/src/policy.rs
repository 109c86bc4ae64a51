//! Per-key policy, from the user's configuration (never from a repository):
//!
//! ```toml
//! [[ssh.key]]
//! name = "id_ed25519"       # the key's name in keepout (or, in proxy mode, its comment or SHA256 fingerprint)
//! confirm = "always"        # or "5m" (one approval covers this key and host from that terminal, or that process tree, for 5 minutes) or "never"
//! hosts = ["github.com", "gitlab.com"]   # sign only for these destinations
//! ```
//!
//! A key without a `[[ssh.key]]` entry gets the safe default: ask every time, any host.

use std::time::Duration;

use serde::Deserialize;

/// When a signature needs the user's yes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Confirm {
    /// Every signature.
    #[default]
    Always,
    /// One yes covers, for this long, this key for the same host from the same terminal session
    /// (or, without a terminal, the process tree that asked).
    For(Duration),
    /// Never ask (the host rules still apply).
    Never,
}

impl<'de> Deserialize<'de> for Confirm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Confirm, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "always" => Ok(Confirm::Always),
            "never" => Ok(Confirm::Never),
            other => keepout_vault::parse_duration(other)
                .map(Confirm::For)
                .map_err(|e| {
                    serde::de::Error::custom(format!(
                        "confirm: {e}; use \"always\", \"never\" or a duration like \"5m\""
                    ))
                }),
        }
    }
}

/// The policy of one key.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicy {
    pub name: String,
    #[serde(default)]
    pub confirm: Confirm,
    /// Destinations this key may sign for; empty: any. `*.example.com` matches subdomains.
    #[serde(default)]
    pub hosts: Vec<String>,
}

impl KeyPolicy {
    fn default_for(name: &str) -> KeyPolicy {
        KeyPolicy {
            name: name.to_string(),
            confirm: Confirm::Always,
            hosts: Vec::new(),
        }
    }

    /// Whether `host` is one of this key's destinations (always, when no hosts are listed).
    pub fn allows_host(&self, host: &str) -> bool {
        self.hosts.is_empty() || self.hosts.iter().any(|h| host_matches(h, host))
    }
}

fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => pattern == host,
    }
}

/// `[ssh]` in the configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    #[serde(default, rename = "key")]
    pub keys: Vec<KeyPolicy>,
    /// More known_hosts files to learn host names from (besides ~/.ssh/known_hosts and
    /// /etc/ssh/ssh_known_hosts).
    #[serde(default)]
    pub known_hosts: Vec<String>,
}

impl SshSettings {
    /// The policy for a key known by any of `names` (name, comment, fingerprint).
    pub fn policy_for(&self, names: &[&str]) -> KeyPolicy {
        self.keys
            .iter()
            .find(|k| names.iter().any(|n| !n.is_empty() && *n == k.name))
            .cloned()
            .unwrap_or_else(|| KeyPolicy::default_for(names.first().copied().unwrap_or("")))
    }

    /// Every host named in any policy (to recognise hashed known_hosts entries).
    pub fn all_hosts(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .keys
            .iter()
            .flat_map(|k| k.hosts.iter().filter(|h| !h.starts_with('*')).cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Read `[ssh]` from the configuration file; a missing file or table is the default.
    pub fn load(path: &std::path::Path) -> Result<SshSettings, crate::Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SshSettings::default()),
            Err(source) => {
                return Err(crate::Error::ReadSettings {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        SshSettings::parse(path, &text)
    }

    /// `[ssh]` of `text`, the configuration file's content (`path` names it in errors).
    pub fn parse(path: &std::path::Path, text: &str) -> Result<SshSettings, crate::Error> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            ssh: SshSettings,
        }
        toml::from_str::<File>(text)
            .map(|f| f.ssh)
            .map_err(|e| crate::Error::Settings(keepout_vault::toml_error(path, text, &e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let s: toml::Table = toml::from_str(
            r#"
[[ssh.key]]
name = "id_ed25519"
confirm = "5m"
hosts = ["github.com", "*.example.org"]

[[ssh.key]]
name = "deploy"
confirm = "never"
"#,
        )
        .unwrap();
        let ssh: SshSettings = s["ssh"].clone().try_into().unwrap();
        let p = ssh.policy_for(&["id_ed25519"]);
        assert_eq!(p.confirm, Confirm::For(Duration::from_secs(300)));
        assert!(p.allows_host("github.com") && p.allows_host("GitHub.com"));
        assert!(p.allows_host("git.example.org") && !p.allows_host("example.org.evil.net"));
        assert!(!p.allows_host("gitlab.com"));
        assert_eq!(ssh.policy_for(&["deploy"]).confirm, Confirm::Never);
        let unknown = ssh.policy_for(&["other"]);
        assert_eq!(unknown.confirm, Confirm::Always);
        assert!(unknown.allows_host("anything"));
        assert_eq!(ssh.all_hosts(), ["github.com"]);
    }

    #[test]
    fn bad_confirm_is_a_clear_error() {
        let e = toml::from_str::<SshSettings>("[[key]]\nname = \"k\"\nconfirm = \"sometimes\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("\"always\", \"never\""), "{e}");
    }
}

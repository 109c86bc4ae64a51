//! The allowlist: presets (data, shipped in the binary; the user's config adds or overrides),
//! host names, `*.domain`, or `*` for any public host.

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetError {
    #[error("{0:?} is neither a preset ({1}) nor a host name")]
    Unknown(String, String),
    #[error("the presets are not valid TOML: {0}")]
    Presets(String),
}

/// Named lists of hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presets(BTreeMap<String, Vec<String>>);

impl Presets {
    /// The presets shipped in keepout (`presets.toml`).
    pub fn builtin() -> Presets {
        Presets::from_toml(include_str!("presets.toml")).expect("the built-in presets parse")
    }

    pub fn from_toml(text: &str) -> Result<Presets, NetError> {
        toml::from_str(text)
            .map(Presets)
            .map_err(|e| NetError::Presets(e.to_string()))
    }

    /// Add or replace presets (the user's `[net.presets]`).
    pub fn extend(&mut self, more: Presets) {
        self.0.extend(more.0);
    }

    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.0.get(name).map(Vec::as_slice)
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    /// `*.example.org`: any subdomain of example.org.
    Subdomains(String),
    /// `*`: any public host.
    Any,
}

/// Which host names may be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowlist {
    patterns: Vec<Pattern>,
    /// What the user wrote, for `--print-policy` and messages.
    spec: String,
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl Allowlist {
    /// Parse `pypi,github,files.example.org,*.example.net` or `*`.
    pub fn parse(spec: &str, presets: &Presets) -> Result<Allowlist, NetError> {
        let mut patterns = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let item = item.to_ascii_lowercase();
            if item == "*" {
                patterns.push(Pattern::Any);
            } else if let Some(hosts) = presets.get(&item) {
                for h in hosts {
                    patterns.push(Self::pattern(h, presets)?);
                }
            } else {
                patterns.push(Self::pattern(&item, presets)?);
            }
        }
        if patterns.is_empty() {
            return Err(NetError::Unknown(spec.into(), presets.names().join(", ")));
        }
        Ok(Allowlist {
            patterns,
            spec: spec.to_string(),
        })
    }

    fn pattern(text: &str, presets: &Presets) -> Result<Pattern, NetError> {
        let text = text.to_ascii_lowercase();
        let unknown = || NetError::Unknown(text.clone(), presets.names().join(", "));
        match text.strip_prefix("*.") {
            Some(domain) if valid_host(domain) && domain.contains('.') => {
                Ok(Pattern::Subdomains(domain.to_string()))
            }
            Some(_) => Err(unknown()),
            // A bare word that is not a preset is a typo more often than a host.
            None if valid_host(&text) && text.contains('.') => Ok(Pattern::Exact(text)),
            None => Err(unknown()),
        }
    }

    /// Whether `host` (a name or an IP literal) may be reached by name. (Its addresses are
    /// checked separately, always.)
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.patterns.iter().any(|p| match p {
            Pattern::Any => true,
            Pattern::Exact(h) => *h == host,
            Pattern::Subdomains(d) => host.ends_with(&format!(".{d}")),
        })
    }

    /// The patterns, one per line, as `--print-policy` shows them.
    pub fn describe(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| match p {
                Pattern::Any => "* (any public host)".to_string(),
                Pattern::Exact(h) => h.clone(),
                Pattern::Subdomains(d) => format!("*.{d}"),
            })
            .collect()
    }

    pub fn spec(&self) -> &str {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_names_and_wildcards() {
        let p = Presets::builtin();
        let a = Allowlist::parse("pypi,files.example.org,*.example.net", &p).unwrap();
        assert!(a.allows("pypi.org") && a.allows("files.pythonhosted.org"));
        assert!(a.allows("files.example.org") && a.allows("FILES.example.org."));
        assert!(a.allows("cdn.example.net") && !a.allows("example.net"));
        assert!(!a.allows("evil.example") && !a.allows("pypi.org.evil.example"));
        assert!(Allowlist::parse("*", &p)
            .unwrap()
            .allows("anything.example"));
        let e = Allowlist::parse("pyip", &p).unwrap_err();
        assert!(e.to_string().contains("pypi"), "{e}");
        assert!(Allowlist::parse("*.com", &p).is_err());
        let crates = Allowlist::parse("crates", &p).unwrap();
        assert!(crates.allows("index.crates.io") && crates.allows("static.crates.io"));
    }

    #[test]
    fn user_presets_override() {
        let mut p = Presets::builtin();
        p.extend(
            Presets::from_toml("pypi = [\"mirror.example.org\"]\ncorp = [\"*.corp.example\"]")
                .unwrap(),
        );
        let a = Allowlist::parse("pypi,corp", &p).unwrap();
        assert!(a.allows("mirror.example.org") && !a.allows("pypi.org"));
        assert!(a.allows("git.corp.example"));
    }
}

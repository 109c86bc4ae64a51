//! Tokens by their published shapes (GitHub, PyPI, npm, crates.io, GitLab, AWS, Slack, private
//! key blocks). A token is shown by [`fingerprint`] (first 4 characters and a short SHA-256
//! digest), never by value.

use std::sync::OnceLock;

use regex::Regex;
use sha2::{Digest, Sha256};

/// What [`find`] calls a private key block.
pub const PRIVATE_KEY: &str = "private key block";

/// (kind, pattern). Each pattern's match is the secret.
const PATTERNS: &[(&str, &str)] = &[
    (
        "GitHub token",
        r"(?-u:\b)(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{36}(?-u:\b)",
    ),
    (
        "GitHub fine-grained token",
        r"(?-u:\b)github_pat_[A-Za-z0-9_]{40,}(?-u:\b)",
    ),
    (
        "PyPI token",
        r"(?-u:\b)pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{20,}",
    ),
    ("npm token", r"(?-u:\b)npm_[A-Za-z0-9]{36}(?-u:\b)"),
    ("crates.io token", r"(?-u:\b)cio[A-Za-z0-9]{32}(?-u:\b)"),
    ("GitLab token", r"(?-u:\b)glpat-[A-Za-z0-9_-]{20,}(?-u:\b)"),
    ("AWS access key id", r"(?-u:\b)AKIA[0-9A-Z]{16}(?-u:\b)"),
    ("Slack token", r"(?-u:\b)xox[bp]-[0-9A-Za-z-]{10,}"),
    (PRIVATE_KEY, r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
];

pub(crate) fn patterns() -> &'static [(&'static str, Regex)] {
    static COMPILED: OnceLock<Vec<(&'static str, Regex)>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        PATTERNS
            .iter()
            .map(|(kind, re)| (*kind, Regex::new(re).expect("valid pattern")))
            .collect()
    })
}

/// `ghp_…(sha256:1a2b3c4d)`: enough to recognise a token you know, useless to anyone else.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let head: String = secret.chars().take(4).collect();
    format!("{head}…(sha256:{hex})")
}

/// One token found in a text, with its value: for reading what the token can do offline
/// (a PyPI token's caveats, a GitHub token's prefix). Show it only by [`FoundToken::shown`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FoundToken<'text> {
    /// 1-based.
    pub line: usize,
    pub kind: &'static str,
    pub secret: &'text str,
}

impl FoundToken<'_> {
    /// The token as it may be shown: its [`fingerprint`], or a private key block's header.
    pub fn shown(&self) -> String {
        if self.kind == PRIVATE_KEY {
            "-----BEGIN … PRIVATE KEY-----".to_string()
        } else {
            fingerprint(self.secret)
        }
    }
}

impl std::fmt::Debug for FoundToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FoundToken")
            .field("line", &self.line)
            .field("kind", &self.kind)
            .field("secret", &self.shown())
            .finish()
    }
}

/// Every token in `text`, with its value.
pub fn find_secrets(text: &str) -> Vec<FoundToken<'_>> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for (kind, re) in patterns() {
            for m in re.find_iter(line) {
                found.push(FoundToken {
                    line: n + 1,
                    kind,
                    secret: m.as_str(),
                });
            }
        }
    }
    found
}

/// Every (line, kind, fingerprint) token in `text`; lines are 1-based.
pub fn find(text: &str) -> Vec<(usize, &'static str, String)> {
    find_secrets(text)
        .iter()
        .map(|token| (token.line, token.kind, token.shown()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_fingerprints() {
        let gh = format!("ghp_{}", "a1B2".repeat(9));
        let text =
            format!("export GITHUB_TOKEN={gh}\nnothing here ghp_short\nAKIAIOSFODNN7EXAMPLE\n");
        let found = find(&text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].0, found[0].1), (1, "GitHub token"));
        assert!(found[0].2.starts_with("ghp_…(sha256:") && !found[0].2.contains("a1B2"));
        assert_eq!((found[1].0, found[1].1), (3, "AWS access key id"));
        assert!(find("ciocio is a word; cio123").is_empty());
    }
}

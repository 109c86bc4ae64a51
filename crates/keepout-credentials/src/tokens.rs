//! Tokens by their published shapes (GitHub, PyPI, npm, crates.io, GitLab, AWS, Slack, private
//! key blocks). A token is shown by [`fingerprint`] (first 4 characters and a short SHA-256
//! digest), never by value.

use std::sync::OnceLock;

use regex::Regex;
use sha2::{Digest, Sha256};

/// What [`find`] calls a private key block.
pub const PRIVATE_KEY: &str = "private key block";

/// (kind, literals one of which every match holds, pattern). Each pattern's match is the
/// secret.
const PATTERNS: &[(&str, &[&str], &str)] = &[
    (
        "GitHub token",
        &["ghp_", "gho_", "ghs_", "ghu_", "ghr_"],
        r"(?-u:\b)(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{36}(?-u:\b)",
    ),
    (
        "GitHub fine-grained token",
        &["github_pat_"],
        r"(?-u:\b)github_pat_[A-Za-z0-9_]{40,}(?-u:\b)",
    ),
    (
        "PyPI token",
        &["pypi-AgEIcHlwaS5vcmc"],
        r"(?-u:\b)pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{20,}",
    ),
    (
        "npm token",
        &["npm_"],
        r"(?-u:\b)npm_[A-Za-z0-9]{36}(?-u:\b)",
    ),
    (
        "crates.io token",
        &["cio"],
        r"(?-u:\b)cio[A-Za-z0-9]{32}(?-u:\b)",
    ),
    (
        "GitLab token",
        &["glpat-"],
        r"(?-u:\b)glpat-[A-Za-z0-9_-]{20,}(?-u:\b)",
    ),
    (
        "AWS access key id",
        &["AKIA"],
        r"(?-u:\b)AKIA[0-9A-Z]{16}(?-u:\b)",
    ),
    (
        "Slack token",
        &["xoxb-", "xoxp-"],
        r"(?-u:\b)xox[bp]-[0-9A-Za-z-]{10,}",
    ),
    (
        PRIVATE_KEY,
        &["-----BEGIN "],
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    ),
];

/// The shapes that could match `line` (one of their literals is in it), each compiled the first
/// time a line needs it: compiling all of them costs a run of the sandbox about a millisecond,
/// and a line rarely holds the literal of more than one.
pub(crate) fn shapes_in(line: &str) -> impl Iterator<Item = (&'static str, &'static Regex)> + '_ {
    static COMPILED: [OnceLock<Regex>; PATTERNS.len()] =
        [const { OnceLock::new() }; PATTERNS.len()];
    PATTERNS
        .iter()
        .zip(&COMPILED)
        .filter(move |((_, literals, _), _)| literals.iter().any(|l| line.contains(l)))
        .map(|((kind, _, pattern), cell)| {
            let re = cell.get_or_init(|| Regex::new(pattern).expect("valid pattern"));
            (*kind, re)
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
        for (kind, re) in shapes_in(line) {
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

    /// Every pattern's match holds one of its literals, so a line without them is skipped
    /// rightly: each pattern, given a line that matches it, is among the shapes of that line.
    #[test]
    fn literals_gate_only_lines_that_cannot_match() {
        let samples = [
            format!("ghs_{}", "a1B2".repeat(9)),
            format!("github_pat_{}", "a1B2_".repeat(9)),
            format!("pypi-AgEIcHlwaS5vcmc{}", "x".repeat(24)),
            format!("npm_{}", "a1B2".repeat(9)),
            format!("cio{}", "a1B2".repeat(8)),
            format!("glpat-{}", "a".repeat(20)),
            "AKIAIOSFODNN7EXAMPLE".to_string(),
            "xoxp-1234567890-abc".to_string(),
            "-----BEGIN OPENSSH PRIVATE KEY-----".to_string(),
        ];
        assert_eq!(samples.len(), PATTERNS.len());
        for (sample, (kind, _, _)) in samples.iter().zip(PATTERNS) {
            let line = format!("x = {sample} ;");
            assert!(
                shapes_in(&line).any(|(k, re)| k == *kind && re.is_match(&line)),
                "{kind}: {line}"
            );
        }
        assert_eq!(shapes_in("TCP_AUTH=sys").count(), 0);
    }
}

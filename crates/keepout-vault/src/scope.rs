//! Scopes: which secrets a command gets, decided by the directory it runs in.
//!
//! Scopes live in the user's own configuration (`$KEEPOUT_CONFIG`, else
//! `$XDG_CONFIG_HOME/keepout/config.toml`, else `~/.config/keepout/config.toml`), never in the
//! repository being worked on: a repository cannot ask for secrets.
//!
//! ```toml
//! [[scope]]
//! name = "coverage"
//! dirs = ["~/src/coverage*"]
//! env = { TWINE_USERNAME = "__token__", TWINE_PASSWORD = "keepout:pypi/coverage" }
//! confirm = false   # true: ask before releasing the secrets
//! ```
//!
//! Guarantees: a directory matches a scope when it, or one of its parents, matches one of the
//! scope's `dirs` patterns (`~` is the home directory; `*`, `?`, `[...]` as in shells, `**` across
//! directories); the most specific match wins (the longest matching pattern); a tie between
//! scopes is an error, never a guess.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::VaultError;

/// One scope of the configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    pub name: String,
    #[serde(default)]
    pub dirs: Vec<String>,
    /// Variable name -> value or secret reference (`keepout:NAME`, `pass:PATH`,
    /// `op://vault/item/field`, `bw://item/field`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Ask for approval before the secrets are released.
    #[serde(default)]
    pub confirm: bool,
}

/// The top-level tables of the configuration file, each read by some part of keepout: `[run]`
/// and `[net]` by `keepout run`, `[[scope]]` and `[vault]` by the vault, `[ssh]` by the agent.
pub const CONFIG_TABLES: &[&str] = &["run", "net", "scope", "vault", "ssh"];

/// A TOML parse error in `text` (read from `path`) as `PATH:LINE:COLUMN: MESSAGE`, then the line
/// and a caret under the column (the error's own message alone says neither).
pub fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => at(path, text, span.start.min(text.len()), message),
        None => format!("{}: {message}", path.display()),
    }
}

/// `message` placed at byte `offset` of `text`: `PATH:LINE:COLUMN: MESSAGE`, the line, a caret.
fn at(path: &Path, text: &str, offset: usize, message: &str) -> String {
    let offset = (0..=offset)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line_no = text[..offset].matches('\n').count() + 1;
    let column = text[line_start..offset].chars().count() + 1;
    let line = &text[line_start..line_end];
    format!(
        "{}:{line_no}:{column}: {message}\n    {line}\n    {}^",
        path.display(),
        " ".repeat(column - 1)
    )
}

/// The configuration's text as a table: a syntax error says where it is (see [`toml_error`]),
/// and a top-level key that no part of keepout reads is an error naming it and the known
/// ones, so that a typo (`[[scopes]]`) is not silently a configuration without scopes.
pub fn parse_config(path: &Path, text: &str) -> Result<toml::Table, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    let unknown: Vec<&String> = table
        .keys()
        .filter(|k| !CONFIG_TABLES.contains(&k.as_str()))
        .collect();
    if let Some(first) = unknown.first() {
        let known = CONFIG_TABLES
            .iter()
            .map(|k| match *k {
                "scope" => "[[scope]]".to_string(),
                k => format!("[{k}]"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let names = unknown
            .iter()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let message = format!(
            "unknown top-level {} {names}: keepout reads only {known} from this file",
            if unknown.len() == 1 { "key" } else { "keys" }
        );
        return Err(match key_offset(text, first) {
            Some(o) => at(path, text, o, &message),
            None => format!("{}: {message}", path.display()),
        });
    }
    Ok(table)
}

/// Where the top-level `key` is first written in `text`: `[key]`, `[key.x]`, `[[key]]` or
/// `key = ...` at the start of a line.
fn key_offset(text: &str, key: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        let rest = line[indent..].trim_start_matches('[').trim_start();
        let bare = rest.trim_start_matches('"').trim_start_matches('\'');
        if let Some(after) = bare.strip_prefix(key) {
            if after.starts_with([']', '.', '=', ' ', '\t', '"', '\'']) {
                return Some(offset + indent);
            }
        }
        offset += line.len();
    }
    None
}

/// The user's configuration (the part the vault uses).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Config {
    #[serde(default, rename = "scope")]
    pub scopes: Vec<Scope>,
    #[serde(default)]
    pub vault: VaultSettings,
}

/// `[vault]`: encrypt to age recipients (X25519 `age1...`, or an age plugin's `age1NAME1...`)
/// and decrypt with identity files instead of a passphrase.
///
/// ```toml
/// [vault]
/// recipients = ["age1..."]                          # `age-keygen -y identity.txt`
/// identities = ["~/.config/keepout/identity.txt"]   # written by `age-keygen -o`
/// ```
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    #[serde(default)]
    pub recipients: Vec<String>,
    #[serde(default)]
    pub identities: Vec<String>,
}

impl VaultSettings {
    /// The key these settings describe, or `None` for the passphrase (the default).
    pub fn key(&self) -> Option<crate::file::Key> {
        if self.recipients.is_empty() && self.identities.is_empty() {
            return None;
        }
        let home = home();
        Some(crate::file::Key::Identities {
            recipients: self.recipients.clone(),
            identity_files: self
                .identities
                .iter()
                .map(|p| PathBuf::from(expand_home(p, &home)))
                .collect(),
        })
    }
}

impl Config {
    /// Where the configuration is read from.
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os("KEEPOUT_CONFIG") {
            return p.into();
        }
        std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| home().join(".config"))
            .join("keepout/config.toml")
    }

    /// Read the configuration; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Config, VaultError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(VaultError::io("cannot read", path, e)),
        };
        Config::parse(path, &text)
    }

    /// The configuration from `text`, already read from `path` (which only names it in errors):
    /// what [`Config::load`] makes of the file's text, with the same errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, VaultError> {
        parse_config(path, text).map_err(VaultError::Config)?;
        let config: Config =
            toml::from_str(text).map_err(|e| VaultError::Config(toml_error(path, text, &e)))?;
        for s in &config.scopes {
            for name in s.env.keys() {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(VaultError::Config(format!(
                        "{}: scope {:?}: {name:?} is not an environment variable name",
                        path.display(),
                        s.name
                    )));
                }
            }
        }
        Ok(config)
    }

    /// The scope named `name`.
    pub fn scope(&self, name: &str) -> Result<&Scope, VaultError> {
        self.scopes
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| VaultError::NoScope {
                wanted: format!("no scope named {name:?}"),
                known: self.names(),
            })
    }

    fn names(&self) -> Vec<String> {
        self.scopes.iter().map(|s| s.name.clone()).collect()
    }

    /// The scope for `dir`: the one with the longest pattern matching `dir` or a parent of it.
    pub fn scope_for(&self, dir: &Path) -> Result<&Scope, VaultError> {
        self.scope_and_root_for(dir).map(|(s, _)| s)
    }

    /// [`Config::scope_for`], and the directory (`dir` or a parent) that matched: leaving it
    /// leaves the scope.
    pub fn scope_and_root_for(&self, dir: &Path) -> Result<(&Scope, PathBuf), VaultError> {
        let home = home();
        let mut best: Vec<(&Scope, usize, PathBuf)> = Vec::new();
        for scope in &self.scopes {
            let mut score: Option<(usize, PathBuf)> = None;
            for pattern in &scope.dirs {
                let expanded = expand_home(pattern, &home);
                let Ok(glob) = globset::GlobBuilder::new(&expanded)
                    .literal_separator(true)
                    .build()
                else {
                    continue;
                };
                let matcher = glob.compile_matcher();
                // The outermost matching ancestor is the scope's root for this directory.
                if let Some(root) = dir.ancestors().filter(|a| matcher.is_match(a)).last() {
                    if score.as_ref().is_none_or(|(n, _)| expanded.len() > *n) {
                        score = Some((expanded.len(), root.to_path_buf()));
                    }
                }
            }
            if let Some((score, root)) = score {
                best.push((scope, score, root));
            }
        }
        best.sort_by_key(|b| std::cmp::Reverse(b.1));
        match best.as_slice() {
            [] => Err(VaultError::NoScope {
                wanted: format!("no scope matches {}", dir.display()),
                known: self.names(),
            }),
            [(a, sa, _), (b, sb, _), ..] if sa == sb => Err(VaultError::Config(format!(
                "scopes {:?} and {:?} match {} equally; make one of their dirs patterns more specific",
                a.name,
                b.name,
                dir.display()
            ))),
            [(s, _, root), ..] => Ok((s, root.clone())),
        }
    }
}

/// `$HOME`, or `/` when it is not set.
pub(crate) fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into()))
}

fn expand_home(pattern: &str, home: &Path) -> String {
    match pattern.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            format!("{}{rest}", home.display())
        }
        _ => pattern.to_string(),
    }
}

/// A duration as the configuration and the command line write it: a whole number and its unit,
/// `30s`, `10m`, `1h`; more than zero. A bare number is refused (it was once minutes, which
/// surprised: `30` now asks "30 what?").
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let bad =
        || format!("{text:?} is not a duration: write a number and a unit, e.g. 30s, 10m or 1h");
    let (num, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None if !text.is_empty() => {
            return Err(format!("{text} what? write {text}s, {text}m or {text}h"))
        }
        None => return Err(bad()),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit.trim_start() {
        "s" | "sec" | "secs" | "second" | "seconds" => Some(n),
        "m" | "min" | "mins" | "minute" | "minutes" => n.checked_mul(60),
        "h" | "hour" | "hours" => n.checked_mul(3600),
        _ => return Err(bad()),
    }
    .ok_or_else(bad)?;
    if secs == 0 {
        return Err("the duration must be more than zero".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// A duration exactly, in the units `parse_duration` reads: `1s`, 90 s as `1m 30s`, `10m`, `1h 5m`.
pub fn format_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let parts: Vec<String> = [(h, "h"), (m, "m"), (s, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn the_most_specific_scope_wins_and_parents_match() {
        let c = config(
            r#"
            [[scope]]
            name = "all-src"
            dirs = ["/home/a/src/*"]
            [[scope]]
            name = "coverage"
            dirs = ["/home/a/src/coverage*"]
            env = { TWINE_PASSWORD = "keepout:pypi/coverage" }
            "#,
        );
        assert_eq!(
            c.scope_for(Path::new("/home/a/src/coverage/tests"))
                .unwrap()
                .name,
            "coverage"
        );
        assert_eq!(
            c.scope_for(Path::new("/home/a/src/coveragepy"))
                .unwrap()
                .name,
            "coverage"
        );
        assert_eq!(
            c.scope_for(Path::new("/home/a/src/other")).unwrap().name,
            "all-src"
        );
        let err = c
            .scope_for(Path::new("/home/a/docs"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("all-src") && err.contains("coverage"),
            "lists the scopes: {err}"
        );
    }

    #[test]
    fn star_does_not_cross_directories() {
        let c = config("[[scope]]\nname = \"x\"\ndirs = [\"/src/*/lib\"]\n");
        assert!(c.scope_for(Path::new("/src/a/lib")).is_ok());
        assert!(c.scope_for(Path::new("/src/a/b/lib")).is_err());
    }

    #[test]
    fn equally_specific_scopes_are_an_error() {
        let c = config("[[scope]]\nname = \"a\"\ndirs = [\"/p/x*\"]\n[[scope]]\nname = \"b\"\ndirs = [\"/p/*y\"]\n");
        assert!(c.scope_for(Path::new("/p/xy")).is_err());
    }

    #[test]
    fn home_is_expanded() {
        assert_eq!(
            expand_home("~/src/a*", Path::new("/home/u")),
            "/home/u/src/a*"
        );
        assert_eq!(expand_home("~other/x", Path::new("/home/u")), "~other/x");
    }

    #[test]
    fn durations_need_a_unit_and_are_shown_exactly() {
        assert_eq!(parse_duration("30s").unwrap().as_secs(), 30);
        assert_eq!(parse_duration("10m").unwrap().as_secs(), 600);
        assert_eq!(parse_duration("2h").unwrap().as_secs(), 7200);
        assert_eq!(
            parse_duration("30").unwrap_err(),
            "30 what? write 30s, 30m or 30h"
        );
        for bad in ["0m", "x", "5d", "", "m", "99999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        let show = |s| format_duration(std::time::Duration::from_secs(s));
        assert_eq!(show(1), "1s");
        assert_eq!(show(90), "1m 30s");
        assert_eq!(show(600), "10m");
        assert_eq!(show(3900), "1h 5m");
    }

    #[test]
    fn config_mistakes_are_placed_and_unknown_tables_named() {
        let path = Path::new("/c.toml");
        let e = parse_config(path, "[run]\nmemory = \"1G\"\n[vault]\nx = [\"é\"\n").unwrap_err();
        assert!(e.starts_with("/c.toml:4:"), "{e}");
        assert!(e.contains("\n    x = [\"é\"\n"), "{e}");
        let e = parse_config(path, "[run]\n\n  [[\"scopes\"]]\nname = \"x\"\n").unwrap_err();
        assert!(
            e.starts_with("/c.toml:3:3: unknown top-level key \"scopes\""),
            "{e}"
        );
        assert!(e.contains("[[scope]]"), "{e}");
        let e = parse_config(path, "runn = 1\n[netx.presets]\n").unwrap_err();
        assert!(
            e.contains("keys \"netx\", \"runn\"") || e.contains("keys \"runn\", \"netx\""),
            "{e}"
        );
        assert!(parse_config(path, "[run]\n[[scope]]\nname = \"x\"\n[ssh]\n").is_ok());
    }
}

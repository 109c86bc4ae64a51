//! The user's config file (`$KEEPOUT_CONFIG`, else `$XDG_CONFIG_HOME/keepout/config.toml`, else
//! `~/.config/keepout/config.toml`), read and parsed once per command.
//!
//! What it guarantees: [`Config::load`] reads the file once and parses it once; a missing or
//! unreadable file is the defaults for `keepout run`; a syntax error or an unknown top-level key
//! is said with where it is (keepout-vault's words), and a key of `[run]` or `[net]` that
//! `keepout run` does not read is an error naming it and the known ones, at once. Each typed
//! setting (`[run] toolchains`, `memory`, `disk-reserve`, `[net.presets]`, the vault's
//! `[[scope]]` and `[vault]`) is checked when it is asked for, with the message it has always
//! had. The agent's `[ssh]` is not read here: the agent reloads it on its own as the file
//! changes.

use std::path::{Path, PathBuf};

use keepout_sandbox::limits::DiskReserve;
use keepout_sandbox::Limits;

use crate::Error;

/// The settings `keepout run` reads from its tables of the config: any other key there is a
/// mistake said at once, not a setting silently ignored.
pub const KNOWN_KEYS: &[(&str, &[&str])] = &[
    ("run", &["toolchains", "memory", "disk-reserve"]),
    ("net", &["presets"]),
];

/// The config file, read once.
#[derive(Debug, Clone)]
pub struct Config {
    path: PathBuf,
    /// The file's text, when it could be read.
    text: Option<String>,
    /// The file is there but could not be read (`keepout run` takes the defaults; the vault
    /// says why).
    unreadable: bool,
    table: toml::Table,
}

/// `--memory` and `--disk-reserve` as given (absent: the config's, else the defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub memory: Option<u64>,
    pub disk_reserve: Option<DiskReserve>,
}

impl Config {
    /// The config at its usual place ([`keepout_vault::Config::default_path`]).
    pub fn load() -> Result<Config, Error> {
        Config::load_from(keepout_vault::Config::default_path())
    }

    /// The config at `path`; a file that cannot be read is an empty one.
    pub fn load_from(path: PathBuf) -> Result<Config, Error> {
        match std::fs::read_to_string(&path) {
            Ok(text) => Config::parse(path, text),
            Err(e) => Ok(Config {
                path,
                text: None,
                unreadable: e.kind() != std::io::ErrorKind::NotFound,
                table: toml::Table::new(),
            }),
        }
    }

    /// The config from `text`, read from `path` (which names it in messages).
    pub fn parse(path: PathBuf, text: String) -> Result<Config, Error> {
        let table = keepout_vault::parse_config(&path, &text).map_err(Error::ConfigSyntax)?;
        for (section, known) in KNOWN_KEYS {
            let Some(keys) = table.get(*section).and_then(|t| t.as_table()) else {
                continue;
            };
            let unknown: Vec<String> = keys
                .keys()
                .filter(|k| !known.contains(&k.as_str()))
                .cloned()
                .collect();
            if !unknown.is_empty() {
                return Err(Error::UnknownSetting {
                    path,
                    section,
                    unknown,
                    known,
                });
            }
        }
        Ok(Config {
            path,
            text: Some(text),
            unreadable: false,
            table,
        })
    }

    /// Where it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn run_setting(&self, key: &str) -> Option<&toml::Value> {
        self.table.get("run").and_then(|r| r.get(key))
    }

    /// The `--net` presets: the built-in ones plus the user's `[net.presets]`.
    pub fn presets(&self) -> Result<keepout_net::Presets, Error> {
        let mut presets = keepout_net::Presets::builtin();
        if let Some(user) = self
            .table
            .get("net")
            .and_then(|n| n.get("presets"))
            .map(|p| toml::to_string(p).unwrap_or_default())
        {
            presets.extend(keepout_net::Presets::from_toml(&user).map_err(|source| {
                Error::Presets {
                    path: self.path.clone(),
                    source,
                }
            })?);
        }
        Ok(presets)
    }

    /// The allowlist for `--net NAMES` (not `host`), from [`Config::presets`].
    pub fn allowlist(&self, spec: &str) -> Result<keepout_net::Allowlist, Error> {
        Ok(keepout_net::Allowlist::parse(spec, &self.presets()?)?)
    }

    /// More toolchain directories, `~` expanded to `home` when there is one:
    /// `[run] toolchains = ["~/opt/zig"]`.
    pub fn toolchains(&self, home: Option<&Path>) -> Result<Vec<PathBuf>, Error> {
        let Some(list) = self.run_setting("toolchains") else {
            return Ok(Vec::new());
        };
        let bad = || Error::BadToolchains {
            path: self.path.clone(),
        };
        let mut paths = Vec::new();
        for entry in list.as_array().ok_or_else(bad)? {
            let entry = entry.as_str().ok_or_else(bad)?;
            paths.push(match (entry.strip_prefix('~'), home) {
                (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
                    home.join(rest.trim_start_matches('/'))
                }
                _ => PathBuf::from(entry),
            });
        }
        Ok(paths)
    }

    /// `base` with `--memory` and `--disk-reserve`, or what `[run] memory` and
    /// `[run] disk-reserve` say when the flags are absent.
    pub fn limits(&self, flags: &Resources, base: Limits) -> Result<Limits, Error> {
        let bad = |key: &'static str, why: String| Error::BadLimit {
            path: self.path.clone(),
            key,
            why,
        };
        let text = |key: &'static str, v: &toml::Value| match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(n) => Ok(n.to_string()),
            _ => Err(bad(key, "must be a string such as \"4G\" or \"5%\"".into())),
        };
        let memory = match (flags.memory, self.run_setting("memory")) {
            (Some(m), _) => Some(m),
            (None, Some(v)) => Some(
                keepout_sandbox::limits::parse_size(&text("memory", v)?)
                    .map_err(|e| bad("memory", e.to_string()))?,
            ),
            (None, None) => None,
        };
        let disk_reserve = match (flags.disk_reserve, self.run_setting("disk-reserve")) {
            (Some(r), _) => r,
            (None, Some(v)) => text("disk-reserve", v)?
                .parse()
                .map_err(|e: keepout_sandbox::Error| bad("disk-reserve", e.to_string()))?,
            (None, None) => base.disk_reserve,
        };
        Ok(Limits {
            memory_bytes: memory,
            disk_reserve,
            ..base
        })
    }

    /// Every setting `keepout run` reads, checked (`[net.presets]`, `[run] toolchains`,
    /// `memory`, `disk-reserve`), in that order; the vault's part is [`Config::vault`].
    pub fn check_run(&self, home: Option<&Path>) -> Result<(), Error> {
        self.allowlist("*")?;
        self.toolchains(home)?;
        self.limits(&Resources::default(), Limits::default())?;
        Ok(())
    }

    /// The vault's part (`[[scope]]`, `[vault]`), with keepout-vault's errors.
    pub fn vault(&self) -> Result<keepout_vault::Config, keepout_vault::VaultError> {
        match &self.text {
            Some(text) => keepout_vault::Config::parse(&self.path, text),
            // The vault says why a file that is there cannot be read.
            None if self.unreadable => keepout_vault::Config::load(&self.path),
            None => Ok(keepout_vault::Config::default()),
        }
    }
}

/// The config read when first asked for, then kept: a command that needs it at several points
/// reads it once, and one that fails before it needs it never reads it (so that what is said
/// first stays what it always was). A read that fails is not kept.
#[derive(Debug, Default)]
pub struct LazyConfig(std::cell::OnceCell<Config>);

impl LazyConfig {
    /// Nothing read yet.
    pub fn new() -> LazyConfig {
        LazyConfig::default()
    }

    /// The config ([`Config::load`]), read now if it has not been.
    pub fn get(&self) -> Result<&Config, Error> {
        if let Some(config) = self.0.get() {
            return Ok(config);
        }
        let config = Config::load()?;
        Ok(self.0.get_or_init(|| config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Config, Error> {
        Config::parse("/c/config.toml".into(), text.into())
    }

    #[test]
    fn no_file_is_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load_from(dir.path().join("none.toml")).unwrap();
        assert!(config.toolchains(Some(Path::new("/h"))).unwrap().is_empty());
        assert_eq!(
            config
                .limits(&Resources::default(), Limits::default())
                .unwrap(),
            Limits::default()
        );
        assert_eq!(config.vault().unwrap(), keepout_vault::Config::default());
        config.check_run(None).unwrap();
    }

    #[test]
    fn an_unreadable_file_is_the_defaults_for_run_and_an_error_for_the_vault() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load_from(dir.path().to_path_buf()).unwrap();
        config.check_run(None).unwrap();
        assert!(config.vault().is_err());
    }

    #[test]
    fn run_settings_are_typed() {
        let config = parsed(
            "[run]\ntoolchains = [\"~/opt/zig\", \"~\", \"/opt/x\", \"~bob/y\"]\n\
             memory = \"512M\"\ndisk-reserve = \"2G\"\n",
        )
        .unwrap();
        assert_eq!(
            config.toolchains(Some(Path::new("/home/u"))).unwrap(),
            vec![
                PathBuf::from("/home/u/opt/zig"),
                PathBuf::from("/home/u/"),
                PathBuf::from("/opt/x"),
                PathBuf::from("~bob/y"),
            ]
        );
        // No home: nothing to expand.
        assert_eq!(
            config.toolchains(None).unwrap()[0],
            PathBuf::from("~/opt/zig")
        );
        let limits = config
            .limits(&Resources::default(), Limits::default())
            .unwrap();
        assert_eq!(limits.memory_bytes, Some(512 << 20));
        assert_eq!(limits.disk_reserve, "2G".parse().unwrap());
    }

    #[test]
    fn flags_win_over_the_config() {
        let config = parsed("[run]\nmemory = \"512M\"\ndisk-reserve = \"2G\"\n").unwrap();
        let flags = Resources {
            memory: Some(1 << 30),
            disk_reserve: Some("5%".parse().unwrap()),
        };
        let base = Limits {
            max_processes: 7,
            ..Limits::default()
        };
        let limits = config.limits(&flags, base.clone()).unwrap();
        assert_eq!(limits.memory_bytes, Some(1 << 30));
        assert_eq!(limits.disk_reserve, "5%".parse().unwrap());
        assert_eq!(limits.max_processes, 7);
        // Without flags nor config: the base's reserve, no memory limit.
        let limits = parsed("")
            .unwrap()
            .limits(&Resources::default(), base.clone());
        assert_eq!(
            limits.unwrap(),
            Limits {
                memory_bytes: None,
                ..base
            }
        );
    }

    #[test]
    fn an_integer_memory_is_bytes() {
        let config = parsed("[run]\nmemory = 1048576\n").unwrap();
        let limits = config.limits(&Resources::default(), Limits::default());
        assert_eq!(limits.unwrap().memory_bytes, Some(1 << 20));
    }

    #[test]
    fn bad_settings_say_where_and_what() {
        let e = parsed("[run]\nmemroy = \"4G\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/c/config.toml: [run] has no setting memroy (a typo?); its settings are: \
             toolchains, memory, disk-reserve"
        );
        let e = parsed("[net]\npresest = {}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/c/config.toml: [net] has no setting presest (a typo?); its settings are: presets"
        );
        let config = parsed("[run]\ntoolchains = \"~/opt/zig\"\n").unwrap();
        assert_eq!(
            config.toolchains(None).unwrap_err().to_string(),
            "/c/config.toml: [run] toolchains must be a list of paths, e.g. [\"~/opt/zig\"]"
        );
        assert!(config.check_run(None).is_err());
        let config = parsed("[run]\nmemory = true\n").unwrap();
        assert_eq!(
            config
                .limits(&Resources::default(), Limits::default())
                .unwrap_err()
                .to_string(),
            "/c/config.toml: [run] memory: must be a string such as \"4G\" or \"5%\""
        );
        let config = parsed("[run]\ndisk-reserve = \"lots\"\n").unwrap();
        let e = config.limits(&Resources::default(), Limits::default());
        assert!(e
            .unwrap_err()
            .to_string()
            .starts_with("/c/config.toml: [run] disk-reserve: "));
    }

    #[test]
    fn syntax_errors_point_at_the_place() {
        let e = parsed("[run]\nmemory = \n").unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("/c/config.toml:2:"), "{text}");
        assert!(text.contains("\n    memory = \n"), "{text}");
        assert!(text.ends_with('^'), "{text}");
        let e = parsed("[[scopes]]\nname = \"x\"\n").unwrap_err();
        assert!(
            e.to_string().starts_with(
                "/c/config.toml:1:1: unknown top-level key \"scopes\": keepout reads only"
            ),
            "{e}"
        );
    }

    #[test]
    fn presets_extend_the_builtin_ones() {
        let config = parsed("[net.presets]\nmine = [\"example.org\"]\n").unwrap();
        let allow = config.allowlist("mine").unwrap();
        assert_eq!(allow.spec(), "mine");
        assert!(config.allowlist("no-such-preset").is_err());
        let config = parsed("[net.presets]\nmine = 3\n").unwrap();
        let e = config.presets().unwrap_err();
        assert_eq!(e.to_string(), "/c/config.toml: [net.presets]");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn the_vault_part_comes_from_the_same_text() {
        let config = parsed(
            "[[scope]]\nname = \"s\"\ndirs = [\"~/src/*\"]\nenv = { A = \"b\" }\n\
             [vault]\nrecipients = [\"age1x\"]\n",
        )
        .unwrap();
        let vault = config.vault().unwrap();
        assert_eq!(vault.scopes.len(), 1);
        assert_eq!(vault.vault.recipients, vec!["age1x".to_string()]);
        let config = parsed("[[scope]]\nname = \"s\"\nenv = { \"A-B\" = \"x\" }\n").unwrap();
        assert!(config.vault().is_err());
    }
}

//! The caller's own toolchains, shown read-only in every sandbox, at their own paths.
//!
//! The interpreters and compilers a user installs in the home (rustup, pyenv, uv's Pythons,
//! nvm, asdf, mise, sdkman's candidates, Go's `go install` directory and downloaded SDKs) work
//! inside with no flags: [`survey`] finds the ones that exist under the caller's home, checks
//! each, and says what to mount, what to mask and which variables the tools need.
//!
//! Guarantees of a [`Survey`]:
//! * only the places in [`KNOWN`] (and the paths the user names in the config) are shown, each
//!   read-only at its place under the home, even where that is a symlink on the host;
//! * nothing shown is, or contains, a place that holds secrets: the home itself, `/root`,
//!   `/tmp`, ... (the same list as `--ro`), nor the credential files that sit beside toolchains:
//!   `~/.cargo/credentials*`, `~/.cargo/config*` (registry tokens live there), `~/.npmrc`. Of
//!   `~/.cargo` only `bin` is shown. A detected toolchain that fails this is skipped, with the
//!   reason; a configured one is an error;
//! * credential files that a toolchain keeps inside itself (a Node installation's global
//!   `etc/npmrc`, a Python installation's `pip.conf`, which may carry an index password) are
//!   masked;
//! * caches are never the host's: `CARGO_HOME` is the sandbox's own `~/.cargo` (in the fresh
//!   home), and pip, uv and npm keep theirs in the sandbox's home too; a toolchain is read-only,
//!   so nothing the command writes can reach code that runs later outside;
//! * for a root caller, whose sandbox runs as `nobody`, a toolchain that other users cannot read
//!   is skipped with the reason rather than shown half-working.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::path_safety::{clean_absolute, exposes, readable_by_sandbox, secret_places};
use crate::policy::{Mode, Mount, MountKind};

/// A place under the home where a toolchain manager keeps its installations.
pub struct Known {
    /// Short name, as `--print-policy` and `keepout doctor` show it.
    pub name: &'static str,
    /// The directory, relative to the home.
    pub rel: &'static str,
    /// Files inside it that can hold credentials, relative to it; a `*` component matches any
    /// one name. Masked when they exist.
    pub credentials: &'static [&'static str],
    /// The variable that tells the tools where it is, set to its place inside.
    pub var: Option<&'static str>,
}

/// Every toolchain directory keepout looks for. Never `~/.cargo` as a whole: only its `bin`.
pub const KNOWN: &[Known] = &[
    Known {
        name: "rustup",
        rel: ".rustup",
        credentials: &[],
        var: Some("RUSTUP_HOME"),
    },
    Known {
        name: "cargo-bin",
        rel: ".cargo/bin",
        credentials: &[],
        var: None,
    },
    Known {
        name: "pyenv",
        rel: ".pyenv",
        credentials: &["versions/*/pip.conf"],
        var: Some("PYENV_ROOT"),
    },
    Known {
        name: "uv-python",
        rel: ".local/share/uv/python",
        credentials: &["*/pip.conf"],
        var: Some("UV_PYTHON_INSTALL_DIR"),
    },
    Known {
        name: "nvm",
        rel: ".nvm",
        credentials: &["versions/node/*/etc/npmrc"],
        var: Some("NVM_DIR"),
    },
    Known {
        name: "asdf",
        rel: ".asdf",
        credentials: &["installs/nodejs/*/etc/npmrc", "installs/python/*/pip.conf"],
        var: Some("ASDF_DATA_DIR"),
    },
    Known {
        name: "mise",
        rel: ".local/share/mise",
        credentials: &["installs/node/*/etc/npmrc", "installs/python/*/pip.conf"],
        var: Some("MISE_DATA_DIR"),
    },
    Known {
        name: "sdkman",
        rel: ".sdkman/candidates",
        credentials: &[],
        var: None,
    },
    Known {
        name: "go-bin",
        rel: "go/bin",
        credentials: &[],
        var: None,
    },
];

/// Single files that come with a toolchain: uv's own binaries (its installer puts them in
/// `~/.local/bin`, a directory that holds anything else too, so they are shown one by one).
const KNOWN_FILES: &[(&str, &str)] = &[("uv", ".local/bin/uv"), ("uvx", ".local/bin/uvx")];

/// The global version file of asdf and mise, shown when one of them is.
const TOOL_VERSIONS: &str = ".tool-versions";

/// Credential files beside the toolchains, relative to the home: nothing shown may contain one.
const BESIDE: &[&str] = &[
    ".cargo/credentials.toml",
    ".cargo/credentials",
    ".cargo/config.toml",
    ".cargo/config",
    ".npmrc",
];

/// A toolchain shown in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Toolchain {
    /// What it is: `rustup`, `pyenv`, ... (`config` for a path from the config).
    pub name: String,
    /// Where it appears inside the sandbox: its place under the home, where its tools look.
    pub path: PathBuf,
    /// The host file or directory shown there (`path` with symlinks resolved).
    pub source: PathBuf,
    /// For a symlink of the caller's (uv's `~/.local/bin/python3.12`): where it points. It is
    /// recreated as it is, and `source` is its target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<PathBuf>,
}

pub use crate::policy::SkippedToolchain;

/// What the caller's toolchains add to a sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Survey {
    /// Shown read-only (or, for a link, recreated), in the order found.
    pub shown: Vec<Toolchain>,
    /// Found but not shown.
    pub skipped: Vec<SkippedToolchain>,
    /// Credential files inside shown toolchains (paths inside), masked.
    pub masked: Vec<PathBuf>,
    /// Variables the tools need: `RUSTUP_HOME`, `CARGO_HOME`, `PYENV_ROOT`, `NVM_DIR`, ...
    pub env: Vec<(String, String)>,
    /// Directories to append to `PATH`: each pyenv version's `bin`, when pyenv's shims are on
    /// the caller's `PATH` (see [`survey`]).
    pub path_tail: Vec<PathBuf>,
}

/// Who the sandbox is for, as far as the toolchains are concerned.
pub struct Caller<'a> {
    /// The caller's home, as `$HOME` names it.
    pub home: &'a Path,
    pub uid: u32,
    /// The caller's environment (`PATH` decides whether pyenv's versions are added).
    pub env: &'a [(String, String)],
    pub mode: Mode,
}

/// Find the caller's toolchains (when `detect`) and check them and the `extra` paths from the
/// config (absolute; `~` already expanded).
///
/// pyenv: its shims run the selected version's program and, failing that, the first one on
/// `PATH` after the shims. So when the shims are on the caller's `PATH`, every installed
/// version's `bin` is appended to it (newest first): `python`, `python3` and `pip` stay what the
/// user selected, and `python3.8` ... `python3.13` work too, as `tox` expects.
pub fn survey(caller: &Caller<'_>, detect: bool, extra: &[PathBuf]) -> Result<Survey> {
    let mut survey = Survey::default();
    let home = clean_absolute(caller.home).filter(|h| h != Path::new("/"));
    let mut places = secret_places(caller.home, caller.env);
    if let Some(home) = &home {
        for rel in BESIDE {
            let lexical = home.join(rel);
            let real =
                crate::path_safety::canonicalize(&lexical).unwrap_or_else(|_| lexical.clone());
            for place in [lexical, real] {
                places.push((place, format!("your {rel} (credentials)")));
            }
        }
    }
    let found = match (detect, &home) {
        (true, Some(home)) => detected(home),
        _ => Vec::new(),
    };
    for (name, path, source) in found {
        survey.check(name, path, source, &places, caller.uid == 0);
    }
    if let (Some(uv), Some(home)) = (survey.shown.iter().find(|t| t.name == "uv-python"), &home) {
        let links = uv_python_links(&home.join(".local/bin"), &uv.source);
        survey.shown.extend(links);
    }
    for path in extra {
        let Some(lexical) = clean_absolute(path) else {
            return Err(Error::Usage(format!(
                "[run] toolchains: {} is not an absolute path (write ~/... or /...)",
                path.display()
            )));
        };
        let Ok(source) = std::fs::canonicalize(&lexical) else {
            survey.skipped.push(SkippedToolchain {
                path: lexical,
                why: "config: does not exist".into(),
            });
            continue;
        };
        if let Some(place) = exposes(&source, &places, false) {
            return Err(Error::Usage(format!(
                "[run] toolchains: {} would show the sandbox {place}. Name the toolchain's own \
                 directory instead",
                lexical.display()
            )));
        }
        survey.check("config", lexical, source, &places, caller.uid == 0);
    }
    survey.set_masks_and_env(caller, home.as_deref());
    Ok(survey)
}

/// The toolchains under `home`: (name, place under the home, canonical host path).
fn detected(home: &Path) -> Vec<(&'static str, PathBuf, PathBuf)> {
    let mut found = Vec::new();
    let mut add = |name, path: PathBuf, dir| {
        if let Some(source) = existing(&path, dir) {
            found.push((name, path, source));
        }
    };
    for known in KNOWN {
        add(known.name, home.join(known.rel), true);
    }
    for (name, rel) in KNOWN_FILES {
        add(name, home.join(rel), false);
    }
    for sdk in go_sdks(home) {
        add("go-sdk", sdk, true);
    }
    if found
        .iter()
        .any(|(name, ..)| *name == "asdf" || *name == "mise")
    {
        found.extend(
            existing(&home.join(TOOL_VERSIONS), false)
                .map(|source| ("tool-versions", home.join(TOOL_VERSIONS), source)),
        );
    }
    found
}

impl Survey {
    /// Show a toolchain at `path` from `source`, unless that would show one of `places` or the
    /// sandbox's user could not read it: then skip it, saying why.
    fn check(
        &mut self,
        name: &str,
        path: PathBuf,
        source: PathBuf,
        places: &[(PathBuf, String)],
        caller_is_root: bool,
    ) {
        let why = if let Some(place) = exposes(&source, places, false) {
            format!(
                "{name}: {} would show the sandbox {place}",
                source.display()
            )
        } else if readable_by_sandbox(&source, caller_is_root) {
            self.shown.push(Toolchain {
                name: name.into(),
                path,
                source,
                link: None,
            });
            return;
        } else if caller_is_root {
            format!(
                "{name}: other users cannot read it, and a root caller's sandbox runs as \
                 nobody (chmod -R o+rX {} to show it)",
                source.display()
            )
        } else {
            format!("{name}: not readable")
        };
        self.skipped.push(SkippedToolchain { path, why });
    }

    /// The masks inside the shown toolchains, the variables their tools need, and pyenv's
    /// versions on `PATH`.
    fn set_masks_and_env(&mut self, caller: &Caller<'_>, home: Option<&Path>) {
        for t in self.shown.iter().filter(|t| t.link.is_none()) {
            let Some(known) = KNOWN.iter().find(|k| k.name == t.name) else {
                continue;
            };
            for pattern in known.credentials {
                for rel in expand(&t.source, pattern) {
                    self.masked.push(t.path.join(rel));
                }
            }
            if let Some(var) = known.var {
                self.env
                    .push((var.into(), t.path.to_string_lossy().into_owned()));
            }
        }
        let rust = self
            .shown
            .iter()
            .any(|t| t.name == "rustup" || t.name == "cargo-bin");
        if let (true, Mode::Namespaces, Some(home)) = (rust, caller.mode, home) {
            // The sandbox's own: a fresh directory in the fresh home (or in --home DIR). In
            // landlock mode the home moves, and cargo's default ($HOME/.cargo) follows it.
            let cargo_home = home.join(".cargo").to_string_lossy().into_owned();
            self.env.push(("CARGO_HOME".into(), cargo_home));
        }
        if let Some(pyenv) = self.shown.iter().find(|t| t.name == "pyenv") {
            let shims = [pyenv.path.join("shims"), pyenv.source.join("shims")];
            let on_path = caller
                .env
                .iter()
                .find(|(k, _)| k == "PATH")
                .is_some_and(|(_, v)| {
                    v.split(':')
                        .any(|d| shims.iter().any(|s| s == Path::new(d)))
                });
            if on_path {
                self.path_tail = pyenv_versions(&pyenv.source)
                    .into_iter()
                    .map(|v| pyenv.path.join("versions").join(v).join("bin"))
                    .collect();
            }
        }
    }

    /// The mounts that show the toolchains: read-only binds, recreated links, then masks.
    pub fn mounts(&self) -> Vec<Mount> {
        let shown = self.shown.iter().map(|t| match &t.link {
            None => Mount {
                path: t.path.clone(),
                kind: MountKind::ReadOnly,
                source: (t.source != t.path).then(|| t.source.clone()),
                why: format!("toolchain: {} (read-only)", t.name),
            },
            Some(target) => Mount {
                path: t.path.clone(),
                kind: MountKind::Symlink {
                    target: target.clone(),
                },
                source: None,
                why: format!("toolchain: {} (a link into it, as on the host)", t.name),
            },
        });
        let masked = self.masked.iter().map(|p| Mount {
            path: p.clone(),
            kind: MountKind::Masked,
            source: None,
            why: "credentials a toolchain keeps (a global npmrc or pip.conf)".into(),
        });
        shown.chain(masked).collect()
    }
}

/// The canonical host path of `path` when it exists and is a directory (`dir`) or a file.
fn existing(path: &Path, dir: bool) -> Option<PathBuf> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_dir() != dir {
        return None;
    }
    crate::path_safety::canonicalize(path).ok()
}

/// Go SDKs that `golang.org/dl` downloads: `~/sdk/go1.22.0`, each with `bin/go`.
fn go_sdks(home: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(home.join("sdk")) else {
        return Vec::new();
    };
    let mut sdks: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("go"))
        .map(|e| e.path())
        .filter(|p| p.join("bin/go").is_file())
        .collect();
    sdks.sort();
    sdks
}

/// `python3.12`-style symlinks in `bin` (uv's `~/.local/bin`) that point into uv's Python
/// directory `uv_python` (canonical): recreated inside as they are.
fn uv_python_links(bin: &Path, uv_python: &Path) -> Vec<Toolchain> {
    let Ok(entries) = std::fs::read_dir(bin) else {
        return Vec::new();
    };
    let mut links: Vec<Toolchain> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
        .filter_map(|e| {
            let path = e.path();
            let target = std::fs::read_link(&path).ok()?;
            let source = std::fs::canonicalize(&path).ok()?;
            source.starts_with(uv_python).then(|| Toolchain {
                name: "uv-python".into(),
                path,
                source,
                link: Some(target),
            })
        })
        .collect();
    links.sort_by(|a, b| a.path.cmp(&b.path));
    links
}

/// Paths relative to `dir` that match `pattern` (components; `*` matches any one name) and
/// exist.
fn expand(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for component in pattern.split('/') {
        let mut next = Vec::new();
        for rel in found {
            if component == "*" {
                let Ok(entries) = std::fs::read_dir(dir.join(&rel)) else {
                    continue;
                };
                let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
                names.sort();
                next.extend(names.into_iter().map(|n| rel.join(n)));
            } else {
                next.push(rel.join(component));
            }
        }
        found = next;
    }
    found
        .into_iter()
        .filter(|rel| std::fs::symlink_metadata(dir.join(rel)).is_ok())
        .collect()
}

/// pyenv's installed versions (real directories with a `bin`, not pyenv-virtualenv's links),
/// newest first.
fn pyenv_versions(pyenv: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(pyenv.join("versions")) else {
        return Vec::new();
    };
    let mut versions: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| e.path().join("bin").is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    versions.sort_by(|a, b| version_key(b).cmp(&version_key(a)).then(a.cmp(b)));
    versions
}

/// `3.12.1` -> [3, 12, 1]; names that do not start with a number sort last.
fn version_key(name: &str) -> Vec<u64> {
    name.split(['.', '-'])
        .map_while(|part| part.parse().ok())
        .collect()
}

/// One Python interpreter a sandbox can run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Python {
    /// Its versioned name: `python3.12`.
    pub name: String,
    /// Its path inside the sandbox (and on the host).
    pub path: PathBuf,
    /// Where it comes from: `system`, `pyenv 3.12.1`, `uv cpython-3.12.4-linux-x86_64-gnu`, ...
    pub from: String,
}

/// Every versioned Python (`python3.8` ... `python3.13`, `python2.7`) a sandbox with `survey`'s
/// toolchains can run: the system's (`/usr/bin`, `/usr/local/bin`), then each toolchain's.
pub fn pythons(survey: &Survey) -> Vec<Python> {
    let mut found = Vec::new();
    for dir in ["/usr/bin", "/usr/local/bin"] {
        versioned_pythons(Path::new(dir), "system", &mut found);
    }
    for t in survey.shown.iter().filter(|t| t.link.is_none()) {
        let installs = match t.name.as_str() {
            "pyenv" => t.path.join("versions"),
            "uv-python" => t.path.clone(),
            "asdf" | "mise" => t.path.join("installs/python"),
            _ => continue,
        };
        let Ok(entries) = std::fs::read_dir(&installs) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort_by(|a, b| version_key(a).cmp(&version_key(b)).then(a.cmp(b)));
        let tool = if t.name == "uv-python" { "uv" } else { &t.name };
        for version in names {
            let from = format!("{tool} {version}");
            versioned_pythons(&installs.join(&version).join("bin"), &from, &mut found);
        }
    }
    found
}

/// Executables named `pythonX.Y` in `dir`.
fn versioned_pythons(dir: &Path, from: &str, found: &mut Vec<Python>) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut pythons: Vec<Python> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| {
            name.strip_prefix("python")
                .and_then(|v| v.split_once('.'))
                .is_some_and(|(major, minor)| {
                    !major.is_empty()
                        && !minor.is_empty()
                        && major
                            .chars()
                            .chain(minor.chars())
                            .all(|c| c.is_ascii_digit())
                })
        })
        .filter(|name| {
            std::fs::metadata(dir.join(name))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .map(|name| Python {
            path: dir.join(&name),
            name,
            from: from.into(),
        })
        .collect();
    pythons.sort_by(|a, b| version_key(&a.name[6..]).cmp(&version_key(&b.name[6..])));
    found.extend(pythons);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mkfile(p: &Path, content: &str, mode: u32) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A home with rustup, cargo's bin beside its credentials, pyenv with two versions, nvm
    /// with a global npmrc, and uv with a link in ~/.local/bin.
    fn home() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let home = std::fs::canonicalize(dir.path()).unwrap().join("alice");
        mkfile(&home.join(".rustup/settings.toml"), "", 0o644);
        mkfile(&home.join(".cargo/bin/cargo"), "", 0o755);
        mkfile(&home.join(".cargo/credentials.toml"), "token", 0o600);
        mkfile(&home.join(".cargo/config.toml"), "token", 0o600);
        mkfile(&home.join(".npmrc"), "_authToken=x", 0o600);
        for v in ["3.9.18", "3.12.1"] {
            let minor = &v[..v.rfind('.').unwrap()];
            mkfile(
                &home.join(format!(".pyenv/versions/{v}/bin/python{minor}")),
                "",
                0o755,
            );
        }
        mkfile(&home.join(".pyenv/versions/3.12.1/pip.conf"), "", 0o644);
        std::fs::create_dir_all(home.join(".pyenv/shims")).unwrap();
        mkfile(
            &home.join(".nvm/versions/node/v20.1.0/etc/npmrc"),
            "_authToken=x",
            0o644,
        );
        let uv = home.join(".local/share/uv/python/cpython-3.13.0-linux-x86_64-gnu/bin");
        mkfile(&uv.join("python3.13"), "", 0o755);
        std::fs::create_dir_all(home.join(".local/bin")).unwrap();
        std::os::unix::fs::symlink(uv.join("python3.13"), home.join(".local/bin/python3.13"))
            .unwrap();
        std::os::unix::fs::symlink("/usr/bin/python3", home.join(".local/bin/python3")).unwrap();
        mkfile(&home.join(".local/bin/uv"), "", 0o755);
        (dir, home)
    }

    fn caller<'a>(home: &'a Path, env: &'a [(String, String)]) -> Caller<'a> {
        Caller {
            home,
            uid: 4242,
            env,
            mode: Mode::Namespaces,
        }
    }

    fn names(survey: &Survey) -> Vec<&str> {
        survey.shown.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn finds_what_exists_and_nothing_else() {
        let (_dir, home) = home();
        let env = vec![];
        let survey = survey(&caller(&home, &env), true, &[]).unwrap();
        assert_eq!(
            names(&survey),
            [
                "rustup",
                "cargo-bin",
                "pyenv",
                "uv-python",
                "nvm",
                "uv",
                "uv-python"
            ]
        );
        let paths: Vec<&Path> = survey.shown.iter().map(|t| t.path.as_path()).collect();
        assert!(paths.contains(&home.join(".cargo/bin").as_path()));
        assert!(
            !paths
                .iter()
                .any(|p| *p == home.join(".cargo") || *p == home),
            "never ~/.cargo or the home: {paths:?}"
        );
        let link = survey.shown.last().unwrap();
        assert_eq!(link.path, home.join(".local/bin/python3.13"));
        assert!(link.link.is_some(), "uv's link is recreated, not bound");
        assert!(
            !paths.contains(&home.join(".local/bin/python3").as_path()),
            "a link elsewhere is not uv's"
        );
        assert!(survey.skipped.is_empty(), "{:?}", survey.skipped);
    }

    #[test]
    fn nothing_without_detection() {
        let (_dir, home) = home();
        let env = vec![];
        let survey = survey(&caller(&home, &env), false, &[]).unwrap();
        assert_eq!(survey, Survey::default());
    }

    #[test]
    fn credentials_inside_toolchains_are_masked() {
        let (_dir, home) = home();
        let env = vec![];
        let survey = survey(&caller(&home, &env), true, &[]).unwrap();
        assert_eq!(
            survey.masked,
            [
                home.join(".pyenv/versions/3.12.1/pip.conf"),
                home.join(".nvm/versions/node/v20.1.0/etc/npmrc"),
            ]
        );
        let mounts = survey.mounts();
        let masks = mounts
            .iter()
            .filter(|m| m.kind == MountKind::Masked)
            .count();
        assert_eq!(masks, 2);
        assert!(mounts
            .iter()
            .filter(|m| m.kind == MountKind::ReadOnly)
            .all(|m| m.why.starts_with("toolchain: ")));
    }

    #[test]
    fn variables_point_inside_and_cargo_home_is_the_sandboxs() {
        let (_dir, home) = home();
        let env = vec![];
        let survey = survey(&caller(&home, &env), true, &[]).unwrap();
        let var = |k: &str| {
            survey
                .env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| PathBuf::from(v))
        };
        assert_eq!(var("RUSTUP_HOME"), Some(home.join(".rustup")));
        assert_eq!(var("CARGO_HOME"), Some(home.join(".cargo")));
        assert_eq!(var("PYENV_ROOT"), Some(home.join(".pyenv")));
        assert_eq!(var("NVM_DIR"), Some(home.join(".nvm")));
        let mut landlock = caller(&home, &env);
        landlock.mode = Mode::Landlock;
        let survey = super::survey(&landlock, true, &[]).unwrap();
        assert!(
            !survey.env.iter().any(|(k, _)| k == "CARGO_HOME"),
            "landlock mode moves the home; cargo's default follows it"
        );
    }

    #[test]
    fn pyenv_versions_follow_the_shims_on_path() {
        let (_dir, home) = home();
        let without = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
        let survey1 = survey(&caller(&home, &without), true, &[]).unwrap();
        assert!(
            survey1.path_tail.is_empty(),
            "no shims on PATH, no additions"
        );
        let shims = home.join(".pyenv/shims").display().to_string();
        let with = vec![("PATH".to_string(), format!("{shims}:/usr/bin"))];
        let survey2 = survey(&caller(&home, &with), true, &[]).unwrap();
        assert_eq!(
            survey2.path_tail,
            [
                home.join(".pyenv/versions/3.12.1/bin"),
                home.join(".pyenv/versions/3.9.18/bin"),
            ],
            "newest first"
        );
    }

    #[test]
    fn a_toolchain_that_shows_a_secret_is_skipped() {
        let (_dir, home) = home();
        // ~/.rustup pointing at the home itself, ~/.cargo/bin at ~/.cargo (its credentials).
        std::fs::remove_dir_all(home.join(".rustup")).unwrap();
        std::os::unix::fs::symlink(&home, home.join(".rustup")).unwrap();
        std::fs::remove_dir_all(home.join(".cargo/bin")).unwrap();
        std::os::unix::fs::symlink(home.join(".cargo"), home.join(".cargo/bin")).unwrap();
        let env = vec![];
        let survey = survey(&caller(&home, &env), true, &[]).unwrap();
        assert!(!names(&survey).contains(&"rustup"));
        assert!(!names(&survey).contains(&"cargo-bin"));
        let why: Vec<&str> = survey.skipped.iter().map(|s| s.why.as_str()).collect();
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(why[0].contains("home directory"), "{why:?}");
        assert!(why[1].contains("credentials"), "{why:?}");
    }

    #[test]
    fn a_symlinked_toolchain_is_shown_at_its_place_from_its_target() {
        let (dir, home) = home();
        let elsewhere = std::fs::canonicalize(dir.path())
            .unwrap()
            .join("opt-rustup");
        std::fs::rename(home.join(".rustup"), &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, home.join(".rustup")).unwrap();
        let env = vec![];
        let survey = survey(&caller(&home, &env), true, &[]).unwrap();
        let rustup = survey.mounts().into_iter().next().unwrap();
        assert_eq!(rustup.path, home.join(".rustup"));
        assert_eq!(rustup.source, Some(elsewhere));
    }

    #[test]
    fn root_callers_skip_what_nobody_cannot_read() {
        let (_dir, home) = home();
        std::fs::set_permissions(home.join(".nvm"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let env = vec![];
        let mut root = caller(&home, &env);
        root.uid = 0;
        let survey = survey(&root, true, &[]).unwrap();
        assert!(!names(&survey).contains(&"nvm"));
        assert!(
            survey.skipped[0].why.contains("nobody"),
            "{:?}",
            survey.skipped
        );
    }

    #[test]
    fn config_paths_are_shown_skipped_or_refused() {
        let (dir, home) = home();
        let zig = home.join("opt/zig");
        std::fs::create_dir_all(&zig).unwrap();
        let env = vec![];
        let c = caller(&home, &env);
        let missing = home.join("opt/missing");
        let survey = survey(&c, false, &[zig.clone(), missing.clone()]).unwrap();
        assert_eq!(names(&survey), ["config"]);
        assert_eq!(survey.shown[0].path, zig);
        assert_eq!(survey.skipped[0].path, missing);
        for refused in [home.clone(), home.join(".cargo"), dir.path().to_path_buf()] {
            let err = super::survey(&c, false, std::slice::from_ref(&refused));
            assert!(err.is_err(), "{} must be refused", refused.display());
        }
        assert!(super::survey(&c, false, &["opt/zig".into()]).is_err());
    }

    #[test]
    fn pythons_are_listed_by_version() {
        let (_dir, home) = home();
        let env = vec![];
        let survey = survey(&caller(&home, &env), true, &[]).unwrap();
        let pythons: Vec<(String, String)> = pythons(&survey)
            .into_iter()
            .filter(|p| p.from != "system")
            .map(|p| (p.name, p.from))
            .collect();
        assert_eq!(
            pythons,
            [
                ("python3.9".into(), "pyenv 3.9.18".into()),
                ("python3.12".into(), "pyenv 3.12.1".into()),
                (
                    "python3.13".into(),
                    "uv cpython-3.13.0-linux-x86_64-gnu".into()
                ),
            ]
        );
    }
}

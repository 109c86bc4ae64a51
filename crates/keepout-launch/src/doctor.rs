//! `keepout doctor`'s checks and verdict: what this kernel and machine can enforce (the kernel's
//! probes, overlayfs where workspaces live, the memory limit), whether the config is valid the
//! way `keepout run` and the vault read it, and which of the caller's toolchains and Pythons a
//! sandbox can run.
//!
//! Guarantees: the checks make nothing (overlayfs is probed in the nearest existing directory of
//! where workspaces would live); a config `keepout run` would refuse fails the config check with
//! the whole reason on one line, and the toolchains found in the home are still listed; the
//! verdict ([`Doctor::ok`]) fails exactly when `keepout run` would refuse to start: user
//! namespaces are refused or the config is invalid.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use keepout_sandbox::kernel::{self, Check};
use keepout_sandbox::toolchains::{self, Python, Survey};
use keepout_sandbox::{KernelSupport, Mode};

use crate::{Caller, Config, Error, LazyConfig};

/// Why the config is invalid, as `keepout run` or the vault says it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigInvalid {
    #[error(transparent)]
    Run(#[from] Error),
    #[error(transparent)]
    Vault(#[from] keepout_vault::VaultError),
}

/// What `keepout doctor` found.
#[derive(Debug)]
pub struct Doctor {
    /// The kernel's checks, then overlayfs, the memory limit and the config.
    pub support: KernelSupport,
    /// The toolchains `keepout run` would show this caller.
    pub survey: Survey,
    /// Every versioned Python a sandbox can run.
    pub pythons: Vec<Python>,
    /// Why `keepout run` would refuse the config's toolchains, when it would (`survey` is then
    /// the home's toolchains alone).
    pub toolchains_refused: Option<Error>,
}

/// `e` and its causes on one line, each after a `: `.
pub fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let _ = write!(text, ": {c}");
        cause = c.source();
    }
    text
}

/// Check the whole config the way `keepout run` reads it (TOML, `[net.presets]`,
/// `[run] toolchains`, `memory`, `disk-reserve`) and the vault's part of it (`[[scope]]`,
/// `[vault]`); returns its path.
fn valid_config(config: &LazyConfig, caller: &Caller) -> Result<PathBuf, ConfigInvalid> {
    checked(config.get()?, caller.home.as_deref())
}

/// [`valid_config`] of a config that has been read.
fn checked(config: &Config, home: Option<&Path>) -> Result<PathBuf, ConfigInvalid> {
    config.check_run(home)?;
    config.vault()?;
    Ok(config.path().to_path_buf())
}

/// The config check: valid (or absent: the defaults), or why not.
fn config_check(valid: Result<PathBuf, ConfigInvalid>) -> Check {
    let name = "config";
    match valid {
        Ok(path) => Check {
            name,
            ok: true,
            detail: if path.exists() {
                format!("{} is valid", path.display())
            } else {
                format!("none ({} does not exist): the defaults", path.display())
            },
        },
        Err(e) => Check {
            name,
            ok: false,
            detail: format!(
                "{}; `keepout run` refuses to start until it is fixed",
                with_causes(&e)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        },
    }
}

/// The toolchains `keepout run` would show `caller`, or why it would refuse the config's and
/// the home's alone.
fn toolchain_survey(config: &LazyConfig, caller: &Caller) -> (Survey, Option<Error>) {
    let toolchain_caller = toolchains::Caller {
        home: caller.home_or_root(),
        uid: caller.uid,
        env: &caller.env,
        mode: Mode::Namespaces,
    };
    let survey = config
        .get()
        .and_then(|c| c.toolchains(caller.home.as_deref()))
        .and_then(|extra| Ok(toolchains::survey(&toolchain_caller, true, &extra)?));
    match survey {
        Ok(survey) => (survey, None),
        Err(e) => (
            toolchains::survey(&toolchain_caller, true, &[]).unwrap_or_default(),
            Some(e),
        ),
    }
}

impl Doctor {
    /// Run every check for `caller` with `config`; `workspaces` is where workspaces and reviews
    /// would live.
    pub fn examine(caller: &Caller, config: &LazyConfig, workspaces: &Path) -> Doctor {
        let mut support = KernelSupport::probe();
        if let Some(dir) = workspaces.ancestors().find(|d| d.is_dir()) {
            support.checks.push(kernel::overlay_check(dir));
        }
        support.checks.push(kernel::memory_limit_check());
        let (ok, detail) = keepout_container::doctor_check();
        support.checks.push(Check {
            name: "container engine (run --image)",
            ok,
            detail,
        });
        support
            .checks
            .push(config_check(valid_config(config, caller)));
        let (survey, toolchains_refused) = toolchain_survey(config, caller);
        let pythons = toolchains::pythons(&survey);
        Doctor {
            support,
            survey,
            pythons,
            toolchains_refused,
        }
    }

    /// Whether `keepout run` can start: user namespaces work and the config is valid.
    pub fn ok(&self) -> bool {
        let passed = |name: &str| self.support.checks.iter().any(|c| c.name == name && c.ok);
        passed("user namespaces") && passed("config")
    }

    /// `keepout doctor --json`: the kernel's fields, plus the toolchains and Pythons.
    pub fn json(&self) -> serde_json::Result<String> {
        #[derive(serde::Serialize)]
        struct Report<'a> {
            #[serde(flatten)]
            kernel: &'a KernelSupport,
            /// Shown read-only in every `keepout run` (without --no-toolchains).
            toolchains: &'a [toolchains::Toolchain],
            skipped_toolchains: &'a [toolchains::SkippedToolchain],
            pythons: &'a [Python],
        }
        serde_json::to_string_pretty(&Report {
            kernel: &self.support,
            toolchains: &self.survey.shown,
            skipped_toolchains: &self.survey.skipped,
            pythons: &self.pythons,
        })
    }

    /// `keepout doctor`'s text: each check, then the toolchains and the Pythons.
    pub fn text(&self) -> String {
        let mut out = format!("kernel {}\n", self.support.kernel);
        for c in &self.support.checks {
            let verdict = if c.ok { " ok " } else { "FAIL" };
            let _ = writeln!(out, "  [{verdict}] {:<38} {}", c.name, c.detail);
        }
        out.push_str("toolchains, read-only in every sandbox (--no-toolchains leaves them out):\n");
        if self.survey.shown.is_empty() {
            out.push_str("  none found in your home\n");
        }
        for t in &self.survey.shown {
            let _ = match &t.link {
                None => writeln!(out, "  {:<14} {}", t.name, t.path.display()),
                Some(target) => writeln!(
                    out,
                    "  {:<14} {} -> {}",
                    t.name,
                    t.path.display(),
                    target.display()
                ),
            };
        }
        for s in &self.survey.skipped {
            let _ = writeln!(out, "  [skip] {} ({})", s.path.display(), s.why);
        }
        out.push_str("pythons a sandbox can run:\n");
        for p in &self.pythons {
            let _ = writeln!(out, "  {:<12} {:<56} {}", p.name, p.path.display(), p.from);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use keepout_sandbox::kernel::Check;
    use keepout_sandbox::toolchains::{Python, SkippedToolchain, Survey, Toolchain};
    use keepout_sandbox::KernelSupport;

    use super::{checked, config_check, with_causes, Doctor};
    use crate::Config;

    fn check(name: &'static str, ok: bool) -> Check {
        Check {
            name,
            ok,
            detail: format!("{name} detail"),
        }
    }

    fn doctor(checks: Vec<Check>) -> Doctor {
        Doctor {
            support: KernelSupport {
                kernel: "6.8.0-test".into(),
                landlock_abi: 4,
                checks,
            },
            survey: Survey::default(),
            pythons: Vec::new(),
            toolchains_refused: None,
        }
    }

    fn parsed(dir: &Path, text: &str) -> Config {
        Config::parse(dir.join("config.toml"), text.to_string()).unwrap()
    }

    #[test]
    fn a_missing_config_is_the_defaults_and_a_present_one_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let c = config_check(checked(&parsed(dir.path(), ""), None));
        assert!(c.ok);
        assert_eq!(
            c.detail,
            format!("none ({} does not exist): the defaults", path.display())
        );
        std::fs::write(&path, "[run]\ntoolchains = [\"~/opt/zig\"]\n").unwrap();
        let config = parsed(dir.path(), "[run]\ntoolchains = [\"~/opt/zig\"]\n");
        let c = config_check(checked(&config, Some(Path::new("/home/a"))));
        assert_eq!((c.name, c.ok), ("config", true));
        assert_eq!(c.detail, format!("{} is valid", path.display()));
    }

    #[test]
    fn an_invalid_config_fails_on_one_line_saying_run_refuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = parsed(dir.path(), "[run]\ntoolchains = \"~/opt/zig\"\n");
        let c = config_check(checked(&config, None));
        assert!(!c.ok);
        assert_eq!(
            c.detail,
            format!(
                "{}: [run] toolchains must be a list of paths, e.g. [\"~/opt/zig\"]; `keepout \
                 run` refuses to start until it is fixed",
                dir.path().join("config.toml").display()
            )
        );
        let syntax = Config::parse(dir.path().join("c.toml"), "[run\n".into()).unwrap_err();
        let c = config_check(Err(syntax.into()));
        assert!(!c.ok);
        assert!(!c.detail.contains('\n'), "{}", c.detail);
        assert!(c
            .detail
            .ends_with("; `keepout run` refuses to start until it is fixed"));
    }

    #[test]
    fn causes_follow_the_error_on_one_line() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read the vault")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(with_causes(&e), "cannot read the vault: disk on fire");
    }

    #[test]
    fn run_can_start_only_with_user_namespaces_and_a_valid_config() {
        let d = |userns, config| {
            doctor(vec![
                check("user namespaces", userns),
                check("config", config),
            ])
        };
        assert!(d(true, true).ok());
        assert!(!d(false, true).ok());
        assert!(!d(true, false).ok());
        assert!(!doctor(vec![check("config", true)]).ok());
    }

    #[test]
    fn the_text_lists_checks_toolchains_and_pythons() {
        let mut d = doctor(vec![check("user namespaces", true), check("config", false)]);
        assert_eq!(
            d.text(),
            format!(
                "kernel 6.8.0-test\n  [ ok ] {:<38} user namespaces detail\n  [FAIL] {:<38} \
                 config detail\ntoolchains, read-only in every sandbox (--no-toolchains leaves \
                 them out):\n  none found in your home\npythons a sandbox can run:\n",
                "user namespaces", "config"
            )
        );
        d.survey.shown = vec![
            Toolchain {
                name: "rustup".into(),
                path: "/home/a/.rustup".into(),
                source: "/home/a/.rustup".into(),
                link: None,
            },
            Toolchain {
                name: "uv-python".into(),
                path: "/home/a/.local/bin/python3.12".into(),
                source: "/opt/py/bin/python3.12".into(),
                link: Some("/opt/py/bin/python3.12".into()),
            },
        ];
        d.survey.skipped = vec![SkippedToolchain {
            path: "/home/a/.nvm".into(),
            why: "holds credentials".into(),
        }];
        d.pythons = vec![Python {
            name: "python3.12".into(),
            path: "/usr/bin/python3.12".into(),
            from: "system".into(),
        }];
        let text = d.text();
        let tail: Vec<&str> = text.lines().skip(4).collect();
        assert_eq!(
            tail,
            [
                format!("  {:<14} /home/a/.rustup", "rustup").as_str(),
                "  uv-python      /home/a/.local/bin/python3.12 -> /opt/py/bin/python3.12",
                "  [skip] /home/a/.nvm (holds credentials)",
                "pythons a sandbox can run:",
                &format!(
                    "  {:<12} {:<56} system",
                    "python3.12", "/usr/bin/python3.12"
                ),
            ]
        );
    }

    #[test]
    fn the_json_is_the_kernels_fields_with_the_toolchains_and_pythons() {
        let d = doctor(vec![check("config", true)]);
        let value: serde_json::Value = serde_json::from_str(&d.json().unwrap()).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "checks",
                "kernel",
                "landlock_abi",
                "pythons",
                "skipped_toolchains",
                "toolchains"
            ]
        );
        assert_eq!(value["checks"][0]["name"], "config");
    }
}

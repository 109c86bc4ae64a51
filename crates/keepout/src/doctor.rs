//! `keepout doctor`: what this kernel and machine can enforce, whether the config is valid, and
//! which of the caller's toolchains and Pythons a sandbox can run. Exits non-zero when user
//! namespaces are refused or the config is invalid (what `keepout run` would refuse).

use anyhow::Result;
use keepout_sandbox::toolchains::{self, Python, SkippedToolchain, Survey, Toolchain};
use keepout_sandbox::{KernelSupport, Mode};
use serde::Serialize;

use crate::cli::DoctorArgs;

/// `keepout doctor --json`: the kernel's fields, plus the toolchains and Pythons.
#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    kernel: &'a KernelSupport,
    /// Shown read-only in every `keepout run` (without --no-toolchains).
    toolchains: &'a [Toolchain],
    skipped_toolchains: &'a [SkippedToolchain],
    /// Every versioned Python a sandbox can run.
    pythons: &'a [Python],
}

pub fn doctor(args: DoctorArgs) -> Result<i32> {
    let mut support = KernelSupport::probe();
    // Where workspaces and reviews would live (its nearest existing directory, so that the
    // check makes nothing).
    let data = keepout_workspace::Store::default_root();
    if let Some(dir) = data.ancestors().find(|d| d.is_dir()) {
        support
            .checks
            .push(keepout_sandbox::kernel::overlay_check(dir));
    }
    support
        .checks
        .push(keepout_sandbox::kernel::memory_limit_check());
    let caller = keepout_launch::Caller::current();
    let config_file = keepout_launch::LazyConfig::new();
    let config = config_check(&config_file, &caller);
    let config_ok = config.ok;
    support.checks.push(config);
    let survey = toolchain_survey(&config_file, &caller);
    let pythons = toolchains::pythons(&survey);
    if args.json {
        let report = Report {
            kernel: &support,
            toolchains: &survey.shown,
            skipped_toolchains: &survey.skipped,
            pythons: &pythons,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("kernel {}", support.kernel);
        for c in &support.checks {
            println!(
                "  [{}] {:<38} {}",
                if c.ok { " ok " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        println!("toolchains, read-only in every sandbox (--no-toolchains leaves them out):");
        if survey.shown.is_empty() {
            println!("  none found in your home");
        }
        for t in &survey.shown {
            match &t.link {
                None => println!("  {:<14} {}", t.name, t.path.display()),
                Some(target) => println!(
                    "  {:<14} {} -> {}",
                    t.name,
                    t.path.display(),
                    target.display()
                ),
            }
        }
        for s in &survey.skipped {
            println!("  [skip] {} ({})", s.path.display(), s.why);
        }
        println!("pythons a sandbox can run:");
        for p in &pythons {
            println!("  {:<12} {:<56} {}", p.name, p.path.display(), p.from);
        }
    }
    let userns = support
        .checks
        .iter()
        .any(|c| c.name == "user namespaces" && c.ok);
    Ok(if userns && config_ok { 0 } else { 1 })
}

/// Is the config valid, the way `keepout run` (and the vault) read it?
fn config_check(
    config: &keepout_launch::LazyConfig,
    caller: &keepout_launch::Caller,
) -> keepout_sandbox::kernel::Check {
    let name = "config";
    match crate::run::check_config(config, caller) {
        Ok(path) => keepout_sandbox::kernel::Check {
            name,
            ok: true,
            detail: if path.exists() {
                format!("{} is valid", path.display())
            } else {
                format!("none ({} does not exist): the defaults", path.display())
            },
        },
        Err(e) => keepout_sandbox::kernel::Check {
            name,
            ok: false,
            detail: format!(
                "{}; `keepout run` refuses to start until it is fixed",
                format!("{e:#}")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        },
    }
}

/// The toolchains `keepout run` would show this caller. A config that `keepout run` would refuse
/// is reported, and the toolchains found in the home are still listed.
fn toolchain_survey(
    config: &keepout_launch::LazyConfig,
    caller: &keepout_launch::Caller,
) -> Survey {
    let toolchain_caller = toolchains::Caller {
        home: caller.home_or_root(),
        uid: caller.uid,
        env: &caller.env,
        mode: Mode::Namespaces,
    };
    let survey = crate::run::config_toolchains(config, caller)
        .and_then(|extra| Ok(toolchains::survey(&toolchain_caller, true, &extra)?));
    survey.unwrap_or_else(|e| {
        eprintln!("keepout: doctor: `keepout run` would refuse this: {e:#}");
        toolchains::survey(&toolchain_caller, true, &[]).unwrap_or_default()
    })
}

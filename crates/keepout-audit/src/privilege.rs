//! Privilege and persistence: what turns "a program you ran" into "root", or into "code that
//! runs again later".

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::{Context, Finding, Severity};

const ADMIN_GROUPS: &[&str] = &["sudo", "wheel", "admin"];
const ROOT_EQUIVALENT_GROUPS: &[&str] = &["docker", "lxd", "libvirt", "incus-admin"];
const SYSTEM_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

pub fn check(ctx: &Context, out: &mut Vec<Finding>) {
    if ctx.uid == 0 {
        out.push(Finding {
            check: "privilege",
            severity: Severity::Critical,
            title: "you are running as root".into(),
            location: "uid 0".into(),
            why: "Every program you run can do anything on this machine.".into(),
            fix: "Work as an ordinary user; run untrusted code with `keepout run` (it drops root inside).".into(),
            fix_command: None,
        });
    }
    if ctx.probe && ctx.uid != 0 && passwordless_sudo() {
        out.push(Finding {
            check: "privilege",
            severity: Severity::Critical,
            title: "sudo works without a password (sudo -n true succeeded)".into(),
            location: "sudo".into(),
            why: "Any program you run can become root silently: install a rootkit, read every user's files.".into(),
            fix: "Remove NOPASSWD from your sudoers entry, or the cached sudo timestamp (sudo -k).".into(),
            fix_command: None,
        });
    }
    nopasswd(ctx, out);
    for g in &ctx.groups {
        if ROOT_EQUIVALENT_GROUPS.contains(&g.as_str()) {
            out.push(Finding {
                check: "privilege",
                severity: Severity::High,
                title: format!("member of the {g} group, which is root without a password"),
                location: "groups".into(),
                why: format!("Any program you run can start a {g} container with / mounted and become root."),
                fix: format!("Leave the {g} group (gpasswd -d {} {g}); use rootless podman or docker instead.", ctx.user),
                fix_command: None,
            });
        } else if ADMIN_GROUPS.contains(&g.as_str()) {
            out.push(Finding {
                check: "privilege",
                severity: Severity::Low,
                title: format!("member of {g}: sudo with your password"),
                location: "groups".into(),
                why: "A program you run can wait for a cached sudo, or fake a prompt to get your password.".into(),
                fix: "Keep sudo's timestamp short (Defaults timestamp_timeout=0) and never run untrusted code outside a sandbox.".into(),
                fix_command: None,
            });
        }
    }
    writable_path(ctx, out);
    git_global_hooks(ctx, out);
}

/// A readable sudoers rule with NOPASSWD for the user, one of their groups, or ALL.
fn nopasswd(ctx: &Context, out: &mut Vec<Finding>) {
    for file in &ctx.sudoers {
        let Some(text) = crate::read_small(file) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.starts_with('#') || !l.contains("NOPASSWD") {
                continue;
            }
            let who = l.split_whitespace().next().unwrap_or("");
            let mine = who == ctx.user
                || who == "ALL"
                || who
                    .strip_prefix('%')
                    .is_some_and(|g| ctx.groups.iter().any(|m| m == g));
            if mine {
                out.push(Finding {
                    check: "privilege",
                    severity: Severity::Critical,
                    title: format!("sudo without a password for {who} (NOPASSWD)"),
                    location: format!("{}:{}", file.display(), n + 1),
                    why: "Any program you run can become root silently: install a rootkit, read every user's files.".into(),
                    fix: "Remove NOPASSWD from the rule (visudo), or limit it to the exact commands that need it.".into(),
                    fix_command: None,
                });
            }
        }
    }
}

fn passwordless_sudo() -> bool {
    std::process::Command::new("sudo")
        .args(["-n", "true"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `dir` is writable by the user: owned by them with the owner's write bit, or
/// writable by everyone (not sticky).
fn writable_by(dir: &Path, uid: u32) -> bool {
    std::fs::metadata(dir).is_ok_and(|m| {
        m.is_dir()
            && ((m.uid() == uid && m.mode() & 0o200 != 0)
                || (m.mode() & 0o002 != 0 && m.mode() & 0o1000 == 0))
    })
}

/// A PATH entry the user can write, before the system directories: a program can plant `git`,
/// `sudo` or `ls` there and it runs instead of the real one.
fn writable_path(ctx: &Context, out: &mut Vec<Finding>) {
    let Some(path) = ctx.var("PATH") else { return };
    let entries: Vec<PathBuf> = path
        .split(':')
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    let first_system = entries
        .iter()
        .position(|p| SYSTEM_DIRS.contains(&p.to_string_lossy().as_ref()))
        .unwrap_or(entries.len());
    for (i, dir) in entries.iter().enumerate().take(first_system) {
        if ctx.uid != 0 && writable_by(dir, ctx.uid) {
            out.push(Finding {
                check: "path-writable",
                severity: Severity::Medium,
                title: format!("PATH entry {} is writable by you and comes before the system directories (position {})", ctx.show(dir), i + 1),
                location: "PATH".into(),
                why: "Any program you run can drop a `git`, `sudo` or `ssh` there that runs instead of the real one, the next time you type it.".into(),
                fix: "Put your own bin directories after /usr/bin in PATH, or keep them read-only except when you install.".into(),
                fix_command: None,
            });
        }
    }
}

/// `core.hooksPath` or `core.fsmonitor` in the global git config: code that runs in every
/// repository.
fn git_global_hooks(ctx: &Context, out: &mut Vec<Finding>) {
    for e in crate::global_git_config(ctx) {
        if e.section != "core" || (e.key != "hookspath" && e.key != "fsmonitor") {
            continue;
        }
        let (key, value) = (&e.key, &e.value);
        if key == "fsmonitor" && (value == "false" || value == "true") {
            continue; // the built-in daemon, not a program
        }
        out.push(Finding {
            check: "git-global-hook",
            severity: Severity::Medium,
            title: format!("core.{key} = {value} runs for every repository"),
            location: format!("{}:{}", ctx.show(&e.path), e.line),
            why: format!("Whatever is at {value} runs whenever git runs (status in your prompt included); a program that can write there runs code later, as you."),
            fix: format!("Make sure {value} and its directory are not writable by the code you run, or remove the setting."),
            fix_command: None,
        });
    }
}

//! `--mode landlock`: the sandbox without namespaces, for systems that refuse user namespaces.
//!
//! What still holds: the environment is the policy's allowlist; `$HOME` and `$TMPDIR` are fresh
//! private directories; Landlock limits reads to the system directories and the project, and
//! writes to the project, the fresh home and the fresh temp directory; abstract unix sockets and
//! signals are scoped to the sandbox; the seccomp deny list applies, and additionally refuses new
//! AF_UNIX sockets (host agents are reachable by path here) and, without `--net`, IP sockets;
//! no capabilities, no_new_privs, a new session, rlimits.
//!
//! What does not hold, and why (documented in docs/sandbox.md): other processes stay visible in
//! `/proc` (Landlock still refuses to ptrace or signal them); `/etc` is readable as a whole
//! (Landlock cannot hide a file inside a readable directory); the project's `.git/hooks`,
//! `.git/config` and `.envrc` cannot be made read-only inside a writable project, so the project
//! is read-only except for paths named with `--rw`; background processes can outlive the run.

use std::path::{Path, PathBuf};

use rustix::process::{Pid, Signal};

use super::exec::{confine_and_exec, Prepared};
use super::report::read_report;
use super::signals::{parent_signals, wait_forwarding};
use super::sys;
use crate::error::{Error, Result};
use crate::outcome::Outcome;
use crate::plan::{LandlockAccess, LandlockRule};
use crate::policy::{HomeSpec, MountKind, Policy};

/// The Landlock rules of landlock mode, over host paths.
pub(crate) fn rules(policy: &Policy, home: &Path, tmp: &Path) -> Vec<LandlockRule> {
    let mut rules = Vec::new();
    let mut add = |path: &Path, access| {
        rules.push(LandlockRule {
            path: path.to_path_buf(),
            access,
        })
    };
    for m in &policy.mounts {
        match m.kind {
            MountKind::ReadOnly | MountKind::Pinned => add(&m.path, LandlockAccess::Read),
            // The project is readable; only explicit --rw paths are writable (see module doc).
            MountKind::ReadWrite if Some(&m.path) == policy.project.as_ref() => {
                add(&m.path, LandlockAccess::Read)
            }
            MountKind::ReadWrite if policy.requested_rw.contains(&m.path) => {
                add(&m.path, LandlockAccess::ReadWrite)
            }
            _ => {}
        }
    }
    for node in [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
    ] {
        add(Path::new(node), LandlockAccess::Device);
    }
    add(Path::new("/proc"), LandlockAccess::Read);
    add(home, LandlockAccess::ReadWrite);
    add(tmp, LandlockAccess::ReadWrite);
    rules
}

pub(super) fn run(
    policy: &Policy,
    resources: &mut super::resources::Resources,
) -> Result<(Outcome, Vec<crate::terminal_filter::Dropped>)> {
    let scratch = tempfile::Builder::new()
        .prefix("keepout-")
        .tempdir()
        .map_err(|e| Error::Setup {
            step: "create a private temporary directory".into(),
            message: e.to_string(),
        })?;
    let home: PathBuf = match &policy.home {
        HomeSpec::Dir(d) => d.clone(),
        HomeSpec::Fresh => scratch.path().join("home"),
        HomeSpec::Kept(_) => {
            return Err(Error::Usage(
                "a workspace needs --mode namespaces (its home is mounted)".into(),
            ))
        }
    };
    let tmp = scratch.path().join("tmp");
    for d in [&home, &tmp] {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    // No tmpfs here: the fresh home and temp directory are on the host's disk.
    resources.watch(scratch.path(), "the sandbox's home and /tmp")?;
    let mut policy = policy.clone();
    policy
        .env
        .insert("HOME".into(), home.to_string_lossy().into_owned());
    policy
        .env
        .insert("TMPDIR".into(), tmp.to_string_lossy().into_owned());
    let rules = rules(&policy, &home, &tmp);
    let mut prepared = Prepared::new(&policy)?;
    let (err_read, err_write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::Setup {
            step: "create a pipe".into(),
            message: e.to_string(),
        })?;
    // The child waits on this until keepout has put it in its memory cgroup.
    let (go_read, go_write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::Setup {
            step: "create a pipe".into(),
            message: e.to_string(),
        })?;
    let signals = parent_signals()?;
    let parent = rustix::process::getpid();
    let child = match sys::fork() {
        Ok(None) => {
            drop(err_read);
            let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
            drop(go_write);
            let mut byte = [0u8; 1];
            if !matches!(rustix::io::read(&go_read, &mut byte), Ok(1)) {
                sys::exit_now(125);
            }
            drop(go_read);
            if super::resources::raise_oom_score().is_err() {
                sys::exit_now(125);
            }
            if rustix::process::getppid() != Some(parent) {
                sys::exit_now(125); // keepout died before the death signal was set
            }
            if std::env::set_current_dir(&policy.cwd).is_err() {
                sys::exit_now(125);
            }
            confine_and_exec(
                &rules,
                &prepared,
                prepared.terminal.as_ref(),
                &policy,
                err_write,
                None,
            )
        }
        Ok(Some(pid)) => pid,
        Err(e) => {
            return Err(Error::Setup {
                step: "fork".into(),
                message: e.to_string(),
            })
        }
    };
    drop(err_write);
    drop(go_read);
    let pid = Pid::from_raw(child).expect("fork returned a positive pid");
    if let Err(e) = resources.attach(child, true) {
        let _ = rustix::process::kill_process(pid, Signal::KILL);
        let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
        return Err(e);
    }
    let _ = rustix::io::write(&go_write, b"1");
    drop(go_write);
    let relay = prepared.terminal.take().map(|t| t.relay(policy.terminal));
    let report = read_report(err_read);
    let status = wait_forwarding(
        pid,
        None,
        &signals,
        relay.as_ref(),
        resources,
        &mut super::notifications::Notifications::new(None),
    );
    let dropped = relay
        .map(super::terminal::Relay::finish)
        .unwrap_or_default();
    if let Some(e) = report {
        return Err(e);
    }
    status.map(|o| (o, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Mode, Mount, RunRequest};

    fn mount(path: &str, kind: MountKind) -> Mount {
        Mount {
            path: path.into(),
            kind,
            source: None,
            why: String::new(),
        }
    }

    fn request(project: &Path) -> RunRequest {
        RunRequest {
            mode: Mode::Landlock,
            ..RunRequest::for_tests(project)
        }
    }

    /// A landlock-mode policy whose mounts are exactly `mounts` (the system's own vary by host).
    fn policy(project: &Path, mounts: Vec<Mount>, requested_rw: &[&str]) -> Policy {
        let mut p = Policy::build(&request(project)).unwrap();
        p.mounts = mounts;
        p.requested_rw = requested_rw.iter().map(PathBuf::from).collect();
        p
    }

    fn rule(path: &str, access: LandlockAccess) -> LandlockRule {
        LandlockRule {
            path: path.into(),
            access,
        }
    }

    #[test]
    fn the_project_is_read_only_and_only_requested_paths_are_writable() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().canonicalize().unwrap();
        let p = project.to_str().unwrap();
        let policy = policy(
            &project,
            vec![
                mount("/usr", MountKind::ReadOnly),
                mount("/etc/ssh/ssh_host_rsa_key", MountKind::Masked),
                mount("/tmp", MountKind::Tmpfs { size_mib: 64 }),
                mount("/dev", MountKind::Dev),
                mount("/proc", MountKind::Proc),
                mount(p, MountKind::ReadWrite),
                mount(&format!("{p}/.git/hooks"), MountKind::Pinned),
                mount("/data/out", MountKind::ReadWrite),
                mount("/data/cache", MountKind::ReadWrite),
            ],
            &["/data/out"],
        );
        let rules = rules(&policy, Path::new("/s/home"), Path::new("/s/tmp"));
        assert_eq!(
            rules,
            vec![
                rule("/usr", LandlockAccess::Read),
                rule(p, LandlockAccess::Read),
                rule(&format!("{p}/.git/hooks"), LandlockAccess::Read),
                rule("/data/out", LandlockAccess::ReadWrite),
                rule("/dev/null", LandlockAccess::Device),
                rule("/dev/zero", LandlockAccess::Device),
                rule("/dev/full", LandlockAccess::Device),
                rule("/dev/random", LandlockAccess::Device),
                rule("/dev/urandom", LandlockAccess::Device),
                rule("/proc", LandlockAccess::Read),
                rule("/s/home", LandlockAccess::ReadWrite),
                rule("/s/tmp", LandlockAccess::ReadWrite),
            ]
        );
    }

    #[test]
    fn the_policys_own_mounts_grant_no_write_outside_home_and_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().canonicalize().unwrap();
        // The mounts as Policy::build makes them on this host.
        let policy = Policy::build(&request(&project)).unwrap();
        let rules = rules(&policy, Path::new("/s/home"), Path::new("/s/tmp"));
        let writable: Vec<&Path> = rules
            .iter()
            .filter(|r| r.access == LandlockAccess::ReadWrite)
            .map(|r| r.path.as_path())
            .collect();
        assert_eq!(writable, [Path::new("/s/home"), Path::new("/s/tmp")]);
        assert!(rules.contains(&LandlockRule {
            path: project,
            access: LandlockAccess::Read,
        }));
    }
}

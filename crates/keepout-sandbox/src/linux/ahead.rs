//! The first namespaces of a run, made ahead: while keepout builds the policy, a child makes
//! the sandbox's user namespace and, for a run without the host's network, its network
//! namespace (see [`sys::AheadHolder`]). Making a network namespace is half of what the kernel
//! spends on a sandbox's start here (0.47 ms of `unshare -Un true`'s 2.1), and is then spent
//! while keepout goes on. The run then clones init into them. For a root caller, the user
//! namespace that its idmapped mounts use is made ahead too.
//!
//! Guarantee: a run uses namespaces made ahead only when its policy has the same identity (the
//! id maps written) and the same network choice as the request they were made for; otherwise,
//! or without them, it makes its own as before. Nothing runs in them but the holder until init
//! is cloned; they go with the holder when they are not used (and with keepout, when it dies).

use std::sync::Mutex;

use super::{idmap_user_namespace, signals, sys, write_id_maps, IdMapping};
use crate::policy::{Identity, Mode, Network, Policy, RunRequest};
use crate::RunEnd;

/// What a run takes from what was made ahead for it.
pub(super) struct Ahead {
    pub(super) holder: sys::AheadHolder,
    identity: Identity,
    isolate_net: bool,
    pub(super) end: RunEnd,
    /// For a root caller: the user namespace of its idmapped mounts (it depends only on the
    /// identity), made ahead too.
    pub(super) idmap: Option<IdMapping>,
}

static AHEAD: Mutex<Option<Ahead>> = Mutex::new(None);

/// Make them for `req` (a run in namespaces mode), replacing any made before and not used.
/// Failing only costs the gain: the run makes its own.
pub(crate) fn start(req: &RunRequest, end: RunEnd) {
    start_for(req.mode, req.network, (req.caller_uid, req.caller_gid), end)
}

/// Make them for a run in `mode` with `network`, of the caller with these (uid, gid): what
/// they depend on, known before the rest of the request is.
pub(crate) fn start_for(mode: Mode, network: Network, (uid, gid): (u32, u32), end: RunEnd) {
    let stale = AHEAD.lock().ok().and_then(|mut a| a.take());
    drop(stale);
    super::lingering::reap_exited();
    if mode != Mode::Namespaces {
        return;
    }
    let identity = crate::builder::identity(uid, gid);
    let isolate_net = network.isolated();
    let caller_is_root = rustix::process::geteuid().is_root();
    // The holder, and init after it, start with the signals blocked that keepout blocks at a
    // run, so a ^C during init's set-up waits to be forwarded, as it would otherwise.
    let Ok(blocked) = signals::parent_signals() else {
        return;
    };
    let holder = sys::AheadHolder::spawn(isolate_net);
    drop(blocked);
    let Ok(holder) = holder else {
        return;
    };
    if write_id_maps(holder.pid(), &identity, caller_is_root).is_err() {
        return;
    }
    let idmap = identity
        .idmap_root
        .then(|| idmap_user_namespace(identity.host_uid).ok())
        .flatten();
    if let Ok(mut slot) = AHEAD.lock() {
        *slot = Some(Ahead {
            holder,
            identity,
            isolate_net,
            end,
            idmap,
        });
    }
}

/// What was made ahead, when it is what `policy` needs (else it goes now).
pub(super) fn take(policy: &Policy) -> Option<Ahead> {
    let ahead = AHEAD.lock().ok()?.take()?;
    (ahead.identity == policy.identity && ahead.isolate_net == policy.network.isolated())
        .then_some(ahead)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rustix::event::{PollFd, PollFlags, Timespec};

    use crate::policy::{Network, Policy, RunRequest};
    use crate::{Outcome, RunEnd};

    /// Whether this is the test process of its own that test `name` runs in: if not, the test
    /// is run in one (and must pass there) and the caller returns.
    fn alone(name: &str) -> bool {
        const ALONE: &str = "KEEPOUT_TEST_ALONE";
        if std::env::var_os(ALONE).is_some() {
            return true;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                &format!("linux::ahead::tests::{name}"),
                "--exact",
                "--test-threads=1",
            ])
            .arg("--nocapture")
            .env(ALONE, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
        false
    }

    /// `sh -c SCRIPT` in `project` as this process's own user, its home beside the project.
    fn request(project: &Path, script: &str) -> RunRequest {
        RunRequest {
            command: vec!["sh".into(), "-c".into(), script.into()],
            caller_uid: rustix::process::geteuid().as_raw(),
            caller_gid: rustix::process::getegid().as_raw(),
            caller_home: project.parent().unwrap().join("home"),
            ..RunRequest::for_tests(project)
        }
    }

    fn dirs() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("home")).unwrap();
        std::fs::create_dir(root.join("project")).unwrap();
        (dir, root.join("project"))
    }

    /// Processes whose command line has `marker`.
    fn with_arg(marker: &str) -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == marker.as_bytes()))
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// A run made ahead that returns at the status: the command's status; what it left running
    /// is gone by then; and nothing of the caller's is held any more: the write end of a pipe
    /// the caller had open reads as closed as soon as the caller closes its own copy (init,
    /// still exiting, closed its copy as it started). Several times, as init's exit races. In a
    /// process of its own: another test's child, started meanwhile, would hold the pipe too.
    #[test]
    fn a_run_made_ahead_returns_at_the_status_and_holds_nothing() {
        if !alone("a_run_made_ahead_returns_at_the_status_and_holds_nothing") {
            return;
        }
        let (_dir, project) = dirs();
        for round in 0..8 {
            let marker = format!("300.{round}{}", std::process::id());
            let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
            let req = request(&project, &format!("sleep {marker} & exit 7"));
            crate::make_namespaces_ahead(&req, RunEnd::AtStatus);
            let policy = Policy::build(&req).unwrap();
            let report = crate::run(&policy).unwrap();
            assert_eq!(report.outcome, Outcome::Exited(7), "round {round}");
            assert_eq!(
                with_arg(&marker),
                Vec::<String>::new(),
                "round {round}: left running"
            );
            drop(write);
            let mut fds = [PollFd::new(&read, PollFlags::IN)];
            rustix::event::poll(&mut fds, Some(&Timespec::default())).unwrap();
            assert!(
                fds[0].revents().contains(PollFlags::HUP),
                "round {round}: the sandbox still holds the caller's pipe"
            );
        }
    }

    /// Namespaces made for another network choice are not used: a run with the host's network
    /// made ahead as if it had none still has the host's (and the status is its command's).
    #[test]
    fn namespaces_made_for_another_request_are_not_used() {
        let (_dir, project) = dirs();
        // More than loopback in /proc/net/dev (two header lines): the host's network.
        let script = "[ \"$(wc -l < /proc/net/dev)\" -gt 3 ] && exit 3; exit 4";
        let isolated = request(&project, script);
        let host = RunRequest {
            network: Network::Host,
            ..request(&project, script)
        };
        let host_has_more_than_lo = std::fs::read_to_string("/proc/net/dev")
            .unwrap()
            .lines()
            .count()
            > 3;
        crate::make_namespaces_ahead(&isolated, RunEnd::AtStatus);
        let report = crate::run(&Policy::build(&host).unwrap()).unwrap();
        let expected = if host_has_more_than_lo { 3 } else { 4 };
        assert_eq!(report.outcome, Outcome::Exited(expected));
        crate::make_namespaces_ahead(&isolated, RunEnd::AtStatus);
        let report = crate::run(&Policy::build(&isolated).unwrap()).unwrap();
        assert_eq!(
            report.outcome,
            Outcome::Exited(4),
            "only loopback when isolated"
        );
    }

    /// After a run that returns at the status, its holder stays, holding one descriptor (its
    /// go pipe) and nothing of the caller's, until the next run lets it go; then it exits and
    /// is reaped. In a process of its own: another test's run would let it go meanwhile.
    #[test]
    fn the_holder_stays_until_the_next_run_and_holds_nothing() {
        if !alone("the_holder_stays_until_the_next_run_and_holds_nothing") {
            return;
        }
        let (_dir, project) = dirs();
        let req = request(&project, "exit 3");
        crate::make_namespaces_ahead(&req, RunEnd::AtStatus);
        let report = crate::run(&Policy::build(&req).unwrap()).unwrap();
        assert_eq!(report.outcome, Outcome::Exited(3));
        let held = super::super::lingering::held_pids();
        assert_eq!(held.len(), 1, "the run's holder is held");
        let fds: Vec<_> = std::fs::read_dir(format!("/proc/{}/fd", held[0]))
            .unwrap()
            .collect();
        assert_eq!(fds.len(), 1, "the holder keeps only its go pipe: {fds:?}");

        super::super::lingering::reap_exited();
        let gone = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            super::super::lingering::reap_exited();
            super::super::lingering::held_pids().is_empty()
        });
        assert!(gone, "the holder exited and was reaped once let go");
        assert!(!Path::new(&format!("/proc/{}", held[0])).exists());
    }

    /// The holder runs on another CPU than keepout's while it makes the namespaces, but init and
    /// the command get every CPU the caller may use.
    #[test]
    fn the_command_may_use_every_cpu_the_caller_may() {
        let (_dir, project) = dirs();
        let allowed = |status: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string())
                .expect("Cpus_allowed_list")
        };
        let ours = allowed(&std::fs::read_to_string("/proc/self/status").unwrap());
        let script = format!(
            "[ \"$(grep Cpus_allowed_list: /proc/self/status | tr -d '[:space:]')\" = \
             'Cpus_allowed_list:{ours}' ] && exit 5; exit 6"
        );
        let req = request(&project, &script);
        crate::make_namespaces_ahead(&req, RunEnd::AtStatus);
        let report = crate::run(&Policy::build(&req).unwrap()).unwrap();
        assert_eq!(
            report.outcome,
            Outcome::Exited(5),
            "the command's CPUs: {ours}"
        );
    }
}

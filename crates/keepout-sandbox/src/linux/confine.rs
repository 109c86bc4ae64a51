//! The per-process layers the command gets just before exec (both modes), planned as data and
//! then applied: a new session, the sandbox's terminal, signals reset, rlimits, no capabilities,
//! `no_new_privs`, Landlock, the seccomp filters, inherited descriptors closed on exec.
//!
//! Guarantees: [`plan`] lists the steps in the order [`apply`] takes them, which is the order
//! that makes each possible (capabilities are dropped before `no_new_privs`, Landlock and
//! seccomp come last but for the descriptors, so the filters can still be installed); [`apply`]
//! stops at the first step that fails and names it. The system calls go through
//! [`ConfineCalls`]: the kernel's, or the recording double's of the unit tests.

use std::io;
use std::os::fd::OwnedFd;

use rustix::process::Resource;
use seccompiler::BpfProgram;

use super::syscall::ConfineCalls;
use super::terminal::Terminal;
use crate::plan::LandlockRule;
use crate::policy::Limits;

/// One layer of confinement.
pub(crate) enum ConfineStep<'a> {
    /// A new session: keepout's terminal is no longer the controlling one.
    NewSession,
    /// The sandbox's own terminal on stdio, as the controlling terminal.
    AttachTerminal(&'a Terminal),
    /// Every signal unblocked, SIGPIPE back to its default.
    ResetSignals,
    /// RLIMIT_NPROC.
    LimitProcesses(u64),
    /// RLIMIT_CORE 0.
    NoCoreDumps,
    DropCapabilities,
    NoNewPrivs,
    Landlock(&'a [LandlockRule]),
    /// The deny filter, reporting to keepout through `notify` (its listener is sent there)
    /// where the kernel has user notification; installed plainly otherwise.
    SeccompNotifying {
        filter: &'a BpfProgram,
        notify: &'a OwnedFd,
    },
    Seccomp(&'a BpfProgram),
    /// Every descriptor from 3 up closed on exec.
    CloseInheritedFds,
}

impl ConfineStep<'_> {
    /// What the step is called when it fails.
    fn what(&self) -> &'static str {
        match self {
            ConfineStep::NewSession => "start a new session",
            ConfineStep::AttachTerminal(_) => "attach the sandbox's terminal",
            ConfineStep::ResetSignals => "reset signals",
            ConfineStep::LimitProcesses(_) => "limit processes (RLIMIT_NPROC)",
            ConfineStep::NoCoreDumps => "disable core dumps",
            ConfineStep::DropCapabilities => "drop capabilities",
            ConfineStep::NoNewPrivs => "set no_new_privs",
            ConfineStep::Landlock(_) => "Landlock",
            ConfineStep::SeccompNotifying { .. } | ConfineStep::Seccomp(_) => {
                "install the seccomp filter"
            }
            ConfineStep::CloseInheritedFds => "close inherited descriptors",
        }
    }
}

/// The steps for a command: `filters` in order, the first (the deny filter) notifying through
/// `notify` when given.
pub(crate) fn plan<'a>(
    landlock_rules: &'a [LandlockRule],
    filters: &'a [BpfProgram],
    terminal: Option<&'a Terminal>,
    limits: &Limits,
    notify: Option<&'a OwnedFd>,
) -> Vec<ConfineStep<'a>> {
    let mut steps = Vec::with_capacity(9 + filters.len());
    steps.push(ConfineStep::NewSession);
    if let Some(t) = terminal {
        steps.push(ConfineStep::AttachTerminal(t));
    }
    steps.push(ConfineStep::ResetSignals);
    steps.push(ConfineStep::LimitProcesses(limits.max_processes));
    if !limits.core_dumps {
        steps.push(ConfineStep::NoCoreDumps);
    }
    steps.push(ConfineStep::DropCapabilities);
    steps.push(ConfineStep::NoNewPrivs);
    steps.push(ConfineStep::Landlock(landlock_rules));
    for (i, filter) in filters.iter().enumerate() {
        steps.push(match notify {
            Some(notify) if i == 0 => ConfineStep::SeccompNotifying { filter, notify },
            _ => ConfineStep::Seccomp(filter),
        });
    }
    steps.push(ConfineStep::CloseInheritedFds);
    steps
}

/// Apply `steps` in order; the first that fails, named, and its error.
pub(crate) fn apply<C: ConfineCalls>(
    calls: &mut C,
    steps: &[ConfineStep<'_>],
) -> Result<(), (&'static str, io::Error)> {
    for step in steps {
        let done = match step {
            ConfineStep::NewSession => calls.setsid(),
            ConfineStep::AttachTerminal(t) => calls.attach_terminal(t),
            ConfineStep::ResetSignals => {
                calls.reset_signals();
                Ok(())
            }
            ConfineStep::LimitProcesses(n) => calls.set_rlimit(Resource::Nproc, *n),
            ConfineStep::NoCoreDumps => calls.set_rlimit(Resource::Core, 0),
            ConfineStep::DropCapabilities => calls.drop_capabilities(),
            ConfineStep::NoNewPrivs => calls.set_no_new_privs(),
            ConfineStep::Landlock(rules) => calls.landlock(rules),
            ConfineStep::SeccompNotifying { filter, notify } => {
                if calls.seccomp_notifying(filter, notify) {
                    Ok(())
                } else {
                    calls.seccomp(filter)
                }
            }
            ConfineStep::Seccomp(filter) => calls.seccomp(filter),
            ConfineStep::CloseInheritedFds => calls.close_from(3),
        };
        done.map_err(|e| (step.what(), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::seccomp;
    use crate::linux::syscall::recording::Recorder;
    use crate::plan::LandlockAccess;
    use crate::policy::Mode;

    fn rules() -> Vec<LandlockRule> {
        vec![
            LandlockRule {
                path: "/".into(),
                access: LandlockAccess::ListDir,
            },
            LandlockRule {
                path: "/usr".into(),
                access: LandlockAccess::Read,
            },
            LandlockRule {
                path: "/p".into(),
                access: LandlockAccess::ReadWrite,
            },
        ]
    }

    fn notify_socket() -> OwnedFd {
        rustix::pipe::pipe().unwrap().0
    }

    const LANDLOCK: &str = "landlock /=ListDir /usr=Read /p=ReadWrite";

    #[test]
    fn namespaces_mode_reports_refused_calls_through_the_deny_filter() {
        let filters = seccomp::build_filters(Mode::Namespaces, false).unwrap();
        let notify = notify_socket();
        let rules = rules();
        let steps = plan(&rules, &filters, None, &Limits::default(), Some(&notify));
        let mut rec = Recorder::new();
        apply(&mut rec, &steps).unwrap();
        let mut expected = vec![
            "setsid".to_string(),
            "reset-signals".into(),
            "rlimit nproc 2048".into(),
            "rlimit core 0".into(),
            "drop-capabilities".into(),
            "no_new_privs".into(),
            LANDLOCK.into(),
            format!("seccomp {} instructions, listener sent", filters[0].len()),
        ];
        expected.extend(
            filters[1..]
                .iter()
                .map(|f| format!("seccomp {} instructions", f.len())),
        );
        expected.push("cloexec 3..".into());
        assert_eq!(rec.lines(), expected);
    }

    #[test]
    fn without_user_notification_the_deny_filter_is_installed_plainly() {
        let filters = seccomp::build_filters(Mode::Namespaces, false).unwrap();
        let notify = notify_socket();
        let rules = rules();
        let steps = plan(&rules, &filters, None, &Limits::default(), Some(&notify));
        let mut rec = Recorder::new();
        rec.no_listener = true;
        apply(&mut rec, &steps).unwrap();
        let seccomp: Vec<String> = rec
            .lines()
            .into_iter()
            .filter(|l| l.starts_with("seccomp"))
            .collect();
        let plain: Vec<String> = filters
            .iter()
            .map(|f| format!("seccomp {} instructions", f.len()))
            .collect();
        assert_eq!(seccomp, plain);
    }

    #[test]
    fn landlock_mode_with_core_dumps_allowed() {
        let filters = seccomp::build_filters(Mode::Landlock, true).unwrap();
        let rules = rules();
        let limits = Limits {
            max_processes: 64,
            core_dumps: true,
            ..Limits::default()
        };
        let steps = plan(&rules, &filters, None, &limits, None);
        let mut rec = Recorder::new();
        apply(&mut rec, &steps).unwrap();
        let mut expected = vec![
            "setsid".to_string(),
            "reset-signals".into(),
            "rlimit nproc 64".into(),
            "drop-capabilities".into(),
            "no_new_privs".into(),
            LANDLOCK.into(),
        ];
        expected.extend(
            filters
                .iter()
                .map(|f| format!("seccomp {} instructions", f.len())),
        );
        expected.push("cloexec 3..".into());
        assert_eq!(rec.lines(), expected);
    }

    #[test]
    fn the_first_failing_layer_is_named_and_nothing_after_it_runs() {
        let filters = seccomp::build_filters(Mode::Namespaces, false).unwrap();
        let rules = rules();
        let steps = plan(&rules, &filters, None, &Limits::default(), None);
        let mut rec = Recorder::new();
        rec.fail_on = Some("landlock");
        let (what, e) = apply(&mut rec, &steps).unwrap_err();
        assert_eq!(what, "Landlock");
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        assert_eq!(rec.lines().last().map(String::as_str), Some(LANDLOCK));
    }
}

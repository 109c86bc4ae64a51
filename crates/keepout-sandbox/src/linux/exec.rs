//! The command's start, shared by both modes: what it needs prepared before any fork
//! ([`Prepared`]: C strings, seccomp filters, its terminal), then the confinement layers and
//! `execve` ([`confine_and_exec`]).
//!
//! Guarantee: the command runs only after every layer of [`super::confine`] is in place; a
//! failed layer or exec is reported to keepout and the process exits (125, or 126/127 for an
//! exec that failed or found nothing).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use seccompiler::BpfProgram;

use super::report::{report, SETUP_FAILED};
use super::{confine, seccomp, sys, syscall, terminal};
use crate::error::{Error, Result};
use crate::policy::{Network, Policy};

/// What the sandbox needs, prepared before forking so the children only execute.
pub(crate) struct Prepared {
    pub(super) argv: Vec<CString>,
    pub(super) envp: Vec<CString>,
    /// Candidate paths for the program, in `PATH` order (one entry when argv[0] has a `/`).
    pub(super) candidates: Vec<CString>,
    pub(super) filters: Vec<BpfProgram>,
    /// The command's own terminal, when keepout's stdio is a terminal.
    pub(super) terminal: Option<terminal::Terminal>,
}

impl Prepared {
    pub(crate) fn new(policy: &Policy) -> Result<Prepared> {
        let (argv, envp, candidates) = Prepared::exec_args(policy)?;
        let filters = seccomp::build_filters(policy.mode, policy.network == Network::Host)
            .map_err(|e| Error::Setup {
                step: "build the seccomp filter".into(),
                message: e,
            })?;
        let terminal = terminal::Terminal::for_stdio().map_err(|e| Error::Setup {
            step: "create the sandbox's terminal".into(),
            message: e.to_string(),
        })?;
        Ok(Prepared {
            terminal,
            argv,
            envp,
            candidates,
            filters,
        })
    }

    /// For a command joining the sandbox (see [`join`]): `policy.command`, with the very
    /// filters and environment of the first command (`first`), and no terminal of its own.
    pub(crate) fn for_command(policy: &Policy, first: &Prepared) -> Result<Prepared> {
        let (argv, _, candidates) = Prepared::exec_args(policy)?;
        Ok(Prepared {
            argv,
            envp: first.envp.clone(),
            candidates,
            filters: first.filters.clone(),
            terminal: None,
        })
    }

    /// The command's arguments, environment and candidate paths, as C strings.
    #[allow(clippy::type_complexity)]
    fn exec_args(policy: &Policy) -> Result<(Vec<CString>, Vec<CString>, Vec<CString>)> {
        let c = |s: &str, what: &str| {
            CString::new(s).map_err(|_| Error::Usage(format!("{what} contains a NUL byte")))
        };
        let argv = policy
            .command
            .iter()
            .map(|a| c(a, "an argument"))
            .collect::<Result<Vec<_>>>()?;
        let envp = policy
            .env
            .iter()
            .map(|(k, v)| c(&format!("{k}={v}"), "an environment variable"))
            .collect::<Result<Vec<_>>>()?;
        let program = &policy.command[0];
        let candidates = if program.contains('/') {
            vec![c(program, "the program")?]
        } else {
            let path = policy.env.get("PATH").map(String::as_str).unwrap_or("");
            path.split(':')
                .map(|d| if d.is_empty() { "." } else { d })
                .map(|d| c(&format!("{d}/{program}"), "PATH"))
                .collect::<Result<Vec<_>>>()?
        };
        Ok((argv, envp, candidates))
    }
}

/// Apply the per-process layers (session, limits, capabilities, no_new_privs, Landlock,
/// seccomp, descriptors) and exec the command. Shared by both modes. Never returns.
pub(crate) fn confine_and_exec(
    landlock_rules: &[crate::plan::LandlockRule],
    prepared: &Prepared,
    terminal: Option<&terminal::Terminal>,
    policy: &Policy,
    err_write: OwnedFd,
    notify: Option<OwnedFd>,
) -> ! {
    let err = err_write.as_fd();
    let steps = confine::plan(
        landlock_rules,
        &prepared.filters,
        terminal,
        &policy.limits,
        notify.as_ref(),
    );
    if let Err((what, e)) = confine::apply(&mut syscall::Kernel, &steps) {
        report(err, "setup", what, &e);
        sys::exit_now(SETUP_FAILED)
    }
    let mut last = io::Error::from_raw_os_error(libc::ENOENT);
    let mut denied = None;
    for candidate in &prepared.candidates {
        let e = sys::execve(candidate, &prepared.argv, &prepared.envp);
        match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => {}
            Some(libc::EACCES) => denied = Some(e),
            _ => {
                last = e;
                break;
            }
        }
    }
    let e = denied.unwrap_or(last);
    let code = if e.raw_os_error() == Some(libc::ENOENT) {
        127
    } else {
        126
    };
    report(err, "exec", &policy.command[0], &e);
    sys::exit_now(code)
}

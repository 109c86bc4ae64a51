//! How the sandbox's processes tell keepout what failed before the command ran: one line on an
//! error pipe ([`report`]), read back as the crate's [`Error`] ([`read_report`]).
//!
//! Guarantee: every setup failure reaches keepout as the step that failed and its errno; a
//! refused first mount (a user namespace without capabilities) becomes
//! [`Error::UserNamespacesRefused`], whose hint says what to do.

use std::io::{self, Read};
use std::os::fd::{BorrowedFd, OwnedFd};

use crate::error::Error;

/// Exit code of a sandbox process that failed before the command started.
pub(super) const SETUP_FAILED: i32 = 125;

/// The step name of the first mount, where a user namespace without capabilities fails.
pub(super) const FIRST_MOUNT_STEP: &str = "make / a slave mount";

/// A failed setup step, reported from inside the sandbox to keepout through a pipe.
#[derive(Debug)]
pub(crate) struct SetupError {
    pub(super) step: String,
    pub(super) error: io::Error,
}

impl SetupError {
    pub(crate) fn new(step: impl Into<String>, error: io::Error) -> SetupError {
        SetupError {
            step: step.into(),
            error,
        }
    }
}

/// Turn a namespace failure into the error a user can act on.
pub(super) fn namespace_error(step: &str, e: io::Error) -> Error {
    let refused = matches!(
        e.raw_os_error(),
        Some(libc::EPERM) | Some(libc::EACCES) | Some(libc::ENOSPC) | Some(libc::EINVAL)
    );
    if refused {
        let mut why = format!("{step}: {}", crate::error::describe_io(&e));
        if std::fs::read_to_string("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
            .is_ok_and(|v| v.trim() == "1")
        {
            why.push_str("; AppArmor's kernel.apparmor_restrict_unprivileged_userns is 1");
        }
        if std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
            .is_ok_and(|v| v.trim() == "0")
        {
            why.push_str("; user.max_user_namespaces is 0");
        }
        return Error::UserNamespacesRefused(why);
    }
    Error::Setup {
        step: step.into(),
        message: crate::error::describe_io(&e),
    }
}

/// Read what the sandbox reported before the command started (empty when all went well).
pub(super) fn read_report(err_read: OwnedFd) -> Option<Error> {
    let mut text = String::new();
    let _ = std::fs::File::from(err_read).read_to_string(&mut text);
    parse_report(&text)
}

/// The error a [`report`] line says, if `text` starts with one.
pub(super) fn parse_report(text: &str) -> Option<Error> {
    let line = text.lines().next()?;
    let mut parts = line.splitn(4, '\u{1f}');
    let (kind, what, errno, message) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let errno: i32 = errno.parse().unwrap_or(0);
    Some(match kind {
        "exec" => Error::Exec {
            program: what.to_string(),
            message: if errno == libc::ENOENT {
                "command not found inside the sandbox".into()
            } else {
                message.to_string()
            },
            not_found: errno == libc::ENOENT,
        },
        // A user namespace without capabilities (AppArmor's restriction) fails at the first mount.
        _ if (errno == libc::EPERM || errno == libc::EACCES) && what == FIRST_MOUNT_STEP => {
            namespace_error(what, io::Error::from_raw_os_error(errno))
        }
        _ => Error::Setup {
            step: what.to_string(),
            message: message.to_string(),
        },
    })
}

/// Report a failure to keepout through the error pipe, in the form `read_report` parses.
pub(super) fn report(err: BorrowedFd<'_>, kind: &str, what: &str, e: &io::Error) {
    let msg = format!(
        "{kind}\u{1f}{what}\u{1f}{}\u{1f}{}\n",
        e.raw_os_error().unwrap_or(0),
        crate::error::describe_io(e)
    );
    let _ = rustix::io::write(err, msg.as_bytes());
}

//! Inits that told keepout their command's status and were still exiting when the run returned
//! (see `finish` in the backend), and the holders of namespaces made ahead for runs that have
//! returned: each is reaped at the start of the next run, or by the system once keepout itself
//! exits.
//!
//! Guarantee: an init listed here runs nothing of its sandbox. It reported the status only after
//! it had killed and reaped every other process of its namespace; what is left of its exit is
//! the kernel's release of the namespaces. A holder held here runs nothing either: it waits on
//! its pipe, holding no descriptor of keepout's, and keeps only its own (empty) user and
//! network namespaces, and keepout's memory from being torn down before keepout's exit is
//! reported (see `AheadHolder`).

use std::sync::Mutex;

use rustix::process::{Pid, WaitOptions};

use super::sys::AheadHolder;

static LINGERING: Mutex<Vec<Pid>> = Mutex::new(Vec::new());

/// Holders of namespaces made ahead whose run has returned: each waits, doing nothing, until the
/// next run lets it go or keepout exits (see [`AheadHolder`]).
static HELD: Mutex<Vec<AheadHolder>> = Mutex::new(Vec::new());

/// Keep `holder` until the next run or keepout's exit, whichever comes first.
pub(super) fn hold(holder: AheadHolder) {
    match HELD.lock() {
        Ok(mut held) => held.push(holder),
        Err(_) => holder.reap(),
    }
}

/// The pids of the holders held now.
#[cfg(test)]
pub(super) fn held_pids() -> Vec<libc::pid_t> {
    HELD.lock()
        .map(|h| h.iter().map(AheadHolder::pid).collect())
        .unwrap_or_default()
}

/// Reap `init` later: it is exiting.
pub(super) fn reap_later(init: Pid) {
    if let Ok(mut list) = LINGERING.lock() {
        list.push(init);
    }
}

/// What earlier runs left: let every held holder go, and reap the listed inits and holders that
/// have exited by now; the others stay listed, for the next call.
pub(super) fn reap_exited() {
    if let Ok(mut held) = HELD.lock() {
        held.iter_mut().for_each(AheadHolder::release);
        held.retain_mut(|h| !h.try_reap());
    }
    if let Ok(mut list) = LINGERING.lock() {
        list.retain(|&pid| {
            matches!(
                rustix::process::waitpid(Some(pid), WaitOptions::NOHANG),
                Ok(None)
            )
        });
    }
}

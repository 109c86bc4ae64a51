//! Inits that told keepout their command's status and were still exiting when the run returned
//! (see `finish` in the backend): each is reaped at the start of the next run, or by the system
//! once keepout itself exits.
//!
//! Guarantee: an init listed here runs nothing of its sandbox. It reported the status only after
//! it had killed and reaped every other process of its namespace; what is left of its exit is
//! the kernel's release of the namespaces.

use std::sync::Mutex;

use rustix::process::{Pid, WaitOptions};

static LINGERING: Mutex<Vec<Pid>> = Mutex::new(Vec::new());

/// Reap `init` later: it is exiting.
pub(super) fn reap_later(init: Pid) {
    if let Ok(mut list) = LINGERING.lock() {
        list.push(init);
    }
}

/// Reap the listed inits that have exited by now; keep the others listed.
pub(super) fn reap_exited() {
    if let Ok(mut list) = LINGERING.lock() {
        list.retain(|&pid| {
            matches!(
                rustix::process::waitpid(Some(pid), WaitOptions::NOHANG),
                Ok(None)
            )
        });
    }
}

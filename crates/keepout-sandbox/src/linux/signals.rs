//! The signals keepout passes on to the command, and keepout's wait for the sandbox.
//!
//! Guarantee: while [`wait_forwarding`] waits, every signal in [`FORWARDED_SIGNALS`] that
//! keepout receives reaches the sandbox, and the command's terminal follows keepout's size.

use rustix::process::{Pid, Signal, WaitOptions};

use super::{resources, sys, terminal};
use crate::error::{Error, Result};
use crate::outcome::Outcome;

/// Signals keepout and init pass on to the command.
pub(super) const FORWARDED_SIGNALS: &[i32] = &[
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
];

/// The signals keepout forwards (and SIGCHLD), blocked so that [`wait_forwarding`] can take
/// them; unblocked again when dropped.
pub(crate) struct BlockedSignals(sys::SignalSet);

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        self.0.unblock();
    }
}

/// Block the signals keepout forwards (and SIGCHLD) so [`wait_forwarding`] can take them.
pub(crate) fn parent_signals() -> Result<BlockedSignals> {
    let mut waited: Vec<i32> = FORWARDED_SIGNALS.to_vec();
    waited.push(libc::SIGCHLD);
    let set = sys::SignalSet::new(&waited);
    set.block().map_err(|e| Error::Setup {
        step: "block signals".into(),
        message: e.to_string(),
    })?;
    Ok(BlockedSignals(set))
}

/// Wait for `child`, passing on every forwarded signal keepout receives meanwhile.
pub(crate) fn wait_forwarding(
    child: Pid,
    signals: &BlockedSignals,
    relay: Option<&terminal::Relay>,
    resources: &mut resources::Resources,
) -> Result<Outcome> {
    loop {
        match rustix::process::waitpid(Some(child), WaitOptions::NOHANG) {
            Ok(Some((_, status))) => {
                if let Some(code) = status.exit_status() {
                    return Ok(Outcome::Exited(code));
                }
                if let Some(sig) = status.terminating_signal() {
                    return Ok(Outcome::Signaled(sig));
                }
            }
            Ok(None) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(Error::Setup {
                    step: "wait for the sandbox".into(),
                    message: e.to_string(),
                })
            }
        }
        // Until the disk watcher must run, wait only that long (a short run never starts it).
        let signal = match resources.start_watch_in() {
            Some(wait) => match signals.0.wait_timeout(wait) {
                Ok(Some(sig)) => Ok(sig),
                Ok(None) => continue,
                Err(e) => Err(e),
            },
            None => signals.0.wait(),
        };
        match signal {
            Ok(libc::SIGCHLD) => {}
            // The command has a terminal of its own: resizing it signals the command.
            Ok(libc::SIGWINCH) if relay.is_some() => relay.expect("checked").resize(),
            Ok(sig) => {
                if let Some(sig) = Signal::from_named_raw(sig) {
                    let _ = rustix::process::kill_process(child, sig);
                }
            }
            Err(e) => {
                return Err(Error::Setup {
                    step: "wait for signals".into(),
                    message: e.to_string(),
                })
            }
        }
    }
}

//! The signals keepout passes on to the command, and keepout's wait for the sandbox.
//!
//! Guarantee: while [`wait_forwarding`] waits, every signal in [`FORWARDED_SIGNALS`] that
//! keepout receives reaches the sandbox, and the command's terminal follows keepout's size.
//! The sandbox's end is seen through a pidfd as well as SIGCHLD, so it is seen even when
//! another thread of the process, one that does not block SIGCHLD, takes the signal (a test
//! harness calling the library). The deny filter's notifications are answered from the same
//! wait (see [`super::notifications`]).

use std::os::fd::OwnedFd;

use rustix::process::{Pid, Signal, WaitOptions};

use super::notifications::Notifications;
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

/// Wait for `child`, passing on every forwarded signal keepout receives meanwhile and answering
/// `notifications`. With `status`, the command's status may come through it first (4 bytes,
/// see `finish` in the backend): then the run is over though `child` may still be exiting, and
/// the caller reaps it. EOF on it without a status leaves the end to `child`'s exit.
pub(crate) fn wait_forwarding(
    child: Pid,
    status: Option<&OwnedFd>,
    signals: &BlockedSignals,
    relay: Option<&terminal::Relay>,
    resources: &mut resources::Resources,
    notifications: &mut Notifications,
) -> Result<Outcome> {
    // A kernel without pidfds (before 5.3) or signalfd: SIGCHLD alone, and a thread for the
    // notifications.
    let events = rustix::process::pidfd_open(child, rustix::process::PidfdFlags::empty())
        .ok()
        .zip(signals.0.signalfd().ok());
    if events.is_none() {
        notifications.serve_in_thread();
    }
    let mut status = status.filter(|_| events.is_some());
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
        let wait = resources.start_watch_in();
        let event = match (&events, wait) {
            (Some((pidfd, signalfd)), wait) => {
                next_event(pidfd, signalfd, status, notifications, wait)
            }
            (None, Some(wait)) => signals.0.wait_timeout(wait).map(|s| s.map(Event::Signal)),
            (None, None) => signals.0.wait().map(|s| Some(Event::Signal(s))),
        };
        match event {
            Ok(None) | Ok(Some(Event::Signal(libc::SIGCHLD))) => {}
            Ok(Some(Event::Status(code))) => return Ok(Outcome::Exited(code)),
            Ok(Some(Event::StatusClosed)) => status = None,
            // The command has a terminal of its own: resizing it signals the command.
            Ok(Some(Event::Signal(libc::SIGWINCH))) if relay.is_some() => {
                relay.expect("checked").resize()
            }
            Ok(Some(Event::Signal(sig))) => {
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

/// What [`next_event`] saw.
enum Event {
    /// A blocked signal arrived (SIGCHLD also when the pidfd says the child ended).
    Signal(i32),
    /// The command's status, from the status pipe.
    Status(i32),
    /// The status pipe closed without one.
    StatusClosed,
}

/// The next event: a blocked signal (from `signalfd`), SIGCHLD when `pidfd` says the child
/// ended, or what came through `status`, after answering the notification that is waiting, if
/// one is; `None` when `timeout` passed first or only a notification was there.
fn next_event(
    pidfd: &OwnedFd,
    signalfd: &OwnedFd,
    status: Option<&OwnedFd>,
    notifications: &mut Notifications,
    timeout: Option<std::time::Duration>,
) -> std::io::Result<Option<Event>> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let timeout = timeout.map(|t| Timespec {
        tv_sec: t.as_secs() as _,
        tv_nsec: t.subsec_nanos() as _,
    });
    let listener = notifications.listener();
    // Unused slots watch the pidfd again, and are not passed to poll.
    let mut fds = [
        PollFd::new(signalfd, PollFlags::IN),
        PollFd::new(pidfd, PollFlags::IN),
        PollFd::new(status.unwrap_or(pidfd), PollFlags::IN),
        PollFd::new(listener.unwrap_or(pidfd), PollFlags::IN),
    ];
    let watched = match (status.is_some(), listener.is_some()) {
        (_, true) => 4,
        (true, false) => 3,
        (false, false) => 2,
    };
    match rustix::event::poll(&mut fds[..watched], timeout.as_ref()) {
        Ok(0) | Err(rustix::io::Errno::INTR) => return Ok(None),
        Ok(_) => {}
        Err(e) => return Err(e.into()),
    }
    let ready = |i: usize| i < watched && !fds[i].revents().is_empty();
    let (signal_ready, child_ended) = (ready(0), ready(1));
    let status_ready = status.is_some() && ready(2);
    // A notification is answered and the signal then handled in the same turn: a command that
    // calls denied system calls without pause cannot hold back the user's ^C.
    if listener.is_some() && ready(3) {
        notifications.answer(fds[3].revents());
    }
    if signal_ready {
        // struct signalfd_siginfo: 128 bytes, the signal's number first.
        let mut info = [0u8; 128];
        match rustix::io::read(signalfd, &mut info) {
            Ok(n) if n >= 4 => {
                let signo = u32::from_ne_bytes(info[..4].try_into().expect("4 bytes"));
                return Ok(Some(Event::Signal(signo as i32)));
            }
            Ok(_) | Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(pipe) = status.filter(|_| status_ready) {
        // Init writes the 4 bytes at once, and then exits: a short read is the same as none.
        let mut code = [0u8; 4];
        return Ok(Some(match rustix::io::read(pipe, &mut code) {
            Ok(4) => Event::Status(i32::from_ne_bytes(code)),
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => return Ok(None),
            _ => Event::StatusClosed,
        }));
    }
    Ok(child_ended.then_some(Event::Signal(libc::SIGCHLD)))
}

//! The deny filter's notifications: what the command tried that the deny list refuses.
//!
//! Guarantee: every notification from the command's listener is answered EPERM, the answer the
//! filter alone would give, and named once in [`Notifications::finish`]'s list. keepout's wait
//! loop answers them between its other events (no thread); where that loop cannot poll (no
//! pidfd or signalfd: kernels before 5.3), a thread of its own does. A notification nobody
//! answers holds the calling thread, so the listener is served from the moment it is received
//! until the sandbox is gone. Should serving fail, the listener is closed, and the filter's
//! calls fail with ENOSYS instead: still refused, only not recorded.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{seccomp, sys};

/// The fallback thread's stack: it polls, answers and formats a name, a few KiB deep. Not the
/// default 2 MiB: glibc gives the unused part of a thread's stack back at its exit
/// (`madvise(MADV_DONTNEED)`), which the end of the run would wait for in the join.
const THREAD_STACK: usize = 128 << 10;

/// The listener and what was tried, served by the caller's poll or by a thread.
pub(crate) enum Notifications {
    /// Served by [`Notifications::answer`] when the listener is readable.
    Polled {
        listener: Option<OwnedFd>,
        tried: Vec<String>,
    },
    /// Served by a thread of its own until the listener hangs up or `stop` is set.
    Thread {
        handle: std::thread::JoinHandle<Vec<String>>,
        stop: Arc<AtomicBool>,
    },
}

impl Notifications {
    /// Serve `listener` (none: the command could not send one, and nothing is recorded).
    pub(crate) fn new(listener: Option<OwnedFd>) -> Notifications {
        Notifications::Polled {
            listener,
            tried: Vec::new(),
        }
    }

    /// The listener, while the caller's poll is to watch it.
    pub(crate) fn listener(&self) -> Option<&OwnedFd> {
        match self {
            Notifications::Polled { listener, .. } => listener.as_ref(),
            Notifications::Thread { .. } => None,
        }
    }

    /// Hand the listener to a thread (the caller cannot poll it).
    pub(crate) fn serve_in_thread(&mut self) {
        let Notifications::Polled { listener, tried } = self else {
            return;
        };
        let Some(fd) = listener.take() else {
            return;
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let mut so_far = std::mem::take(tried);
        let spawned = std::thread::Builder::new()
            .name("keepout-seccomp".into())
            .stack_size(THREAD_STACK)
            .spawn(move || {
                use rustix::event::{PollFd, PollFlags, Timespec};
                let tick = Timespec {
                    tv_sec: 0,
                    tv_nsec: 50_000_000,
                };
                while !flag.load(Ordering::Relaxed) {
                    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
                    match rustix::event::poll(&mut fds, Some(&tick)) {
                        Ok(0) | Err(rustix::io::Errno::INTR) => continue,
                        Err(_) => break,
                        Ok(_) => {}
                    }
                    if !serve_one(&fd, fds[0].revents(), &mut so_far) {
                        break;
                    }
                }
                so_far
            });
        // No thread: the listener closes with the closure (see the module docs).
        if let Ok(handle) = spawned {
            *self = Notifications::Thread { handle, stop };
        }
    }

    /// The listener is readable or hung up (`revents` from the caller's poll): answer one
    /// notification, or stop watching it.
    pub(crate) fn answer(&mut self, revents: rustix::event::PollFlags) {
        if let Notifications::Polled { listener, tried } = self {
            if let Some(fd) = listener.as_ref() {
                if !serve_one(fd, revents, tried) {
                    *listener = None;
                }
            }
        }
    }

    /// The sandbox is gone: what the command tried, each once, in the order first tried.
    pub(crate) fn finish(self) -> Vec<String> {
        match self {
            Notifications::Polled { tried, .. } => tried,
            Notifications::Thread { handle, stop } => {
                stop.store(true, Ordering::Relaxed);
                handle.join().unwrap_or_default()
            }
        }
    }
}

/// Answer the notification `revents` announces; false when the listener hung up (every
/// process under the filter is gone) or failed.
fn serve_one(
    listener: &OwnedFd,
    revents: rustix::event::PollFlags,
    tried: &mut Vec<String>,
) -> bool {
    use rustix::event::PollFlags;
    if revents.contains(PollFlags::IN) {
        // A notification whose caller died meanwhile fails to receive or answer: nothing to do.
        if let Ok(n) = sys::notification_recv(listener.as_fd()) {
            let _ = sys::notification_deny(listener.as_fd(), n.id, libc::EPERM);
            let what = seccomp::describe(n.nr as i64, &n.args);
            if !tried.contains(&what) {
                tried.push(what);
            }
        }
        true
    } else {
        !revents.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL)
    }
}

//! A terminal of the sandbox's own (threat-model A5).
//!
//! Handing the maintainer's terminal to untrusted code lets it, even without TIOCSTI, change the
//! terminal's modes (`stty -echo`) and read what is typed at the prompt after keepout is put in
//! the background (a sudo password): the command runs in a session of its own, so job control
//! does not stop it. Instead, when any of descriptors 0-2 is a terminal, the command gets a new
//! pseudo-terminal in their place, as its controlling terminal, and keepout relays bytes between
//! the two, as `sudo` does with `use_pty`.
//!
//! In namespaces mode the command's terminal comes from the sandbox's own devpts (made by init
//! once that is mounted, with the modes and size of the one made here, its master handed out
//! to keepout): `tty` inside names it (`/dev/pts/0`), as on any terminal.
//!
//! Guarantees: the command never holds a descriptor of the maintainer's terminal; keepout reads
//! the maintainer's terminal only while it is the terminal's foreground job (in the background
//! the kernel stops it, as for any program); the terminal's modes are restored when the relay
//! ends, and window-size changes are passed on; once the relay ends, keepout reads no more of
//! the maintainer's keystrokes for the command (what is typed next is keepout's, or the next
//! program's). A keepout that joined a running sandbox ends its relay when the joined command
//! ended ([`Relay::finish_joined`]), though other processes of the sandbox may still hold that
//! terminal: input stops first, output stops once quiet (or after a second at most).
//!
//! The command's output passes through a [`Filter`] on its way (threat-model A17): sequences
//! that act on the maintainer's terminal beyond drawing (clipboard, title reports, DCS, window
//! operations, ...) are dropped, and [`Relay::finish`] says which.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::thread::JoinHandle;

use rustix::pty::OpenptFlags;
use rustix::termios::{OptionalActions, Termios};

use super::sys;
use crate::terminal_filter::{Dropped, Filter, TerminalPolicy};

/// The pseudo-terminal the command gets, made before the sandbox is created.
pub(crate) struct Terminal {
    master: OwnedFd,
    /// `None` in a keepout that joined a running sandbox: the slave is the joined command's.
    slave: Option<OwnedFd>,
    /// Which of descriptors 0, 1, 2 are terminals and get the new one instead.
    replaced: [bool; 3],
}

fn stdio(fd: usize) -> BorrowedFd<'static> {
    match fd {
        0 => rustix::stdio::stdin(),
        1 => rustix::stdio::stdout(),
        _ => rustix::stdio::stderr(),
    }
}

impl Terminal {
    /// A new pseudo-terminal when any of 0-2 is a terminal, with that terminal's modes and size.
    pub(crate) fn for_stdio() -> io::Result<Option<Terminal>> {
        use std::os::fd::AsRawFd;
        let replaced = [0, 1, 2].map(|fd| sys::is_terminal(stdio(fd).as_raw_fd()));
        let Some(real) = (0..3).find(|&fd| replaced[fd]).map(stdio) else {
            return Ok(None);
        };
        let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
        let master = rustix::pty::openpt(flags)?;
        rustix::pty::grantpt(&master)?;
        rustix::pty::unlockpt(&master)?;
        let slave = rustix::pty::ioctl_tiocgptpeer(&master, flags)?;
        if let Ok(modes) = rustix::termios::tcgetattr(real) {
            let _ = rustix::termios::tcsetattr(&slave, OptionalActions::Now, &modes);
        }
        if let Ok(size) = rustix::termios::tcgetwinsize(real) {
            let _ = rustix::termios::tcsetwinsize(&master, size);
        }
        Ok(Some(Terminal {
            master,
            slave: Some(slave),
            replaced,
        }))
    }

    /// In init, once the sandbox's own devpts is mounted (its `ptmx` at `ptmx`): a terminal of
    /// that devpts, with this one's modes and size, to take this one's place.
    pub(crate) fn remade_in_devpts(&self, ptmx: &std::path::Path) -> io::Result<Terminal> {
        let new = Terminal::open_in_devpts(ptmx, self.replaced)?;
        if let (Some(old), Some(slave)) = (&self.slave, &new.slave) {
            if let Ok(modes) = rustix::termios::tcgetattr(old) {
                let _ = rustix::termios::tcsetattr(slave, OptionalActions::Now, &modes);
            }
        }
        if let Ok(size) = rustix::termios::tcgetwinsize(&self.master) {
            let _ = rustix::termios::tcsetwinsize(&new.master, size);
        }
        Ok(new)
    }

    /// A new pseudo-terminal of the devpts whose `ptmx` this is, for descriptors `replaced`,
    /// with the kernel's default modes.
    pub(crate) fn open_in_devpts(
        ptmx: &std::path::Path,
        replaced: [bool; 3],
    ) -> io::Result<Terminal> {
        let master = rustix::fs::open(
            ptmx,
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        rustix::pty::unlockpt(&master)?;
        let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
        let slave = rustix::pty::ioctl_tiocgptpeer(&master, flags)?;
        Ok(Terminal {
            master,
            slave: Some(slave),
            replaced,
        })
    }

    /// In a keepout that joined a running sandbox: relay through `master`, the joined
    /// command's terminal, for this keepout's terminal descriptors `replaced`; its window size
    /// is set from this keepout's terminal. The master is made non-blocking (this keepout
    /// holds its only open file description): a full terminal, which a background job of the
    /// joined command need not read, never holds up the relay's end.
    pub(crate) fn for_master(master: OwnedFd, replaced: [bool; 3]) -> Terminal {
        let _ = rustix::fs::fcntl_setfl(&master, rustix::fs::OFlags::NONBLOCK);
        if let Some(real) = (0..3).find(|&fd| replaced[fd]).map(stdio) {
            if let Ok(size) = rustix::termios::tcgetwinsize(real) {
                let _ = rustix::termios::tcsetwinsize(&master, size);
            }
        }
        Terminal {
            master,
            slave: None,
            replaced,
        }
    }

    /// Its descriptors (the master, and the slave when it has one).
    pub(crate) fn descriptors(&self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        let slave = self.slave.as_ref().map(|s| s.as_raw_fd());
        std::iter::once(self.master.as_raw_fd())
            .chain(slave)
            .collect()
    }

    /// The master side, to hand out (see [`Terminal::remade_in_devpts`]).
    pub(crate) fn master(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    /// In keepout: relay through `master` (the sandbox's terminal's) instead of this one's.
    pub(crate) fn with_master(self, master: OwnedFd) -> Terminal {
        Terminal { master, ..self }
    }

    /// In the command, after `setsid`: the new terminal on the descriptors it replaces, and as the
    /// controlling terminal.
    pub(crate) fn attach(&self) -> io::Result<()> {
        let Some(slave) = &self.slave else {
            return Err(io::Error::other("no terminal to attach"));
        };
        if self.replaced[0] {
            rustix::stdio::dup2_stdin(slave)?;
        }
        if self.replaced[1] {
            rustix::stdio::dup2_stdout(slave)?;
        }
        if self.replaced[2] {
            rustix::stdio::dup2_stderr(slave)?;
        }
        rustix::process::ioctl_tiocsctty(slave)?;
        Ok(())
    }

    /// In keepout: start relaying. Dropping the returned [`Relay`] (after the command ended)
    /// drains the command's last output and restores the terminal.
    pub(crate) fn relay(self, policy: TerminalPolicy) -> Relay {
        let foreground = rustix::termios::tcgetpgrp(rustix::stdio::stdin())
            .is_ok_and(|pgrp| pgrp == rustix::process::getpgrp());
        let mut saved = None;
        if self.replaced[0] && foreground {
            if let Ok(modes) = rustix::termios::tcgetattr(rustix::stdio::stdin()) {
                let mut raw = modes.clone();
                raw.make_raw();
                if rustix::termios::tcsetattr(rustix::stdio::stdin(), OptionalActions::Now, &raw)
                    .is_ok()
                {
                    saved = Some(modes);
                }
            }
        }
        let output_fd = [1, 2].into_iter().find(|&fd| self.replaced[fd]);
        let master_out = self.master.try_clone().ok();
        // Closing its write end (see [`Relay::finish_joined`]) tells the output thread to stop
        // once the command's output has been quiet for [`QUIET`].
        let (drain_read, drain_write) =
            match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
                Ok((r, w)) => (Some(r), Some(w)),
                Err(_) => (None, None),
            };
        let output = master_out.map(|m| {
            std::thread::spawn(move || {
                use rustix::event::{PollFd, PollFlags, Timespec};
                let mut from = std::fs::File::from(m);
                let mut buf = vec![0u8; 16384];
                let mut filtered = Vec::with_capacity(buf.len());
                let mut filter = Filter::new(policy);
                // Since when the output is drained (the command ended), if it is.
                let mut draining: Option<std::time::Instant> = None;
                let quiet = Timespec {
                    tv_sec: 0,
                    tv_nsec: QUIET.as_nanos() as _,
                };
                loop {
                    let drained_before = draining.is_some();
                    let ready = {
                        let mut fds = vec![PollFd::new(&from, PollFlags::IN)];
                        if let (Some(d), None) = (&drain_read, draining) {
                            fds.push(PollFd::new(d, PollFlags::IN));
                        }
                        let timeout = draining.map(|_| &quiet);
                        match rustix::event::poll(&mut fds, timeout) {
                            Ok(_) => {}
                            Err(rustix::io::Errno::INTR) => continue,
                            Err(_) => break,
                        }
                        if fds.get(1).is_some_and(|d| !d.revents().is_empty()) {
                            draining = Some(std::time::Instant::now());
                        }
                        !fds[0].revents().is_empty()
                    };
                    // Quiet for QUIET after the command ended, or DRAIN_LIMIT passed (a
                    // background job that never stops printing).
                    if draining.is_some_and(|since| {
                        (drained_before && !ready) || since.elapsed() > DRAIN_LIMIT
                    }) {
                        break;
                    }
                    if !ready {
                        continue;
                    }
                    match from.read(&mut buf) {
                        Ok(0) => break,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break, // EIO: every holder of the other end is gone
                        Ok(n) => {
                            // Everything complete goes out now; only an unfinished sequence
                            // waits for the next read.
                            filtered.clear();
                            filter.feed(&buf[..n], &mut filtered);
                            if let Some(fd) = output_fd {
                                let _ = write_all(stdio(fd), &filtered);
                            }
                        }
                    }
                }
                filtered.clear();
                filter.finish(&mut filtered);
                if let Some(fd) = output_fd {
                    let _ = write_all(stdio(fd), &filtered);
                }
                filter.dropped().to_vec()
            })
        });
        let mut input = None;
        let mut stop_input = None;
        if self.replaced[0] && foreground {
            let stop = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC);
            if let (Ok(m), Ok((stop_read, stop_write))) = (self.master.try_clone(), stop) {
                // Ends when the relay is dropped (the stop pipe hangs up), so that input typed
                // after the run (an answer to keepout, the next run's) is not taken here.
                input = Some(std::thread::spawn(move || {
                    use rustix::event::{PollFd, PollFlags};
                    let mut to = std::fs::File::from(m);
                    let mut buf = [0u8; 4096];
                    let stdin = rustix::stdio::stdin();
                    loop {
                        let mut fds = [
                            PollFd::new(&stdin, PollFlags::IN),
                            PollFd::new(&stop_read, PollFlags::IN),
                        ];
                        match rustix::event::poll(&mut fds, None) {
                            Ok(_) => {}
                            Err(rustix::io::Errno::INTR) => continue,
                            Err(_) => break,
                        }
                        if !fds[1].revents().is_empty() {
                            break;
                        }
                        if fds[0].revents().is_empty() {
                            continue;
                        }
                        match rustix::io::read(stdin, &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if !write_or_stop(&mut to, &buf[..n], &stop_read) {
                                    break;
                                }
                            }
                        }
                    }
                }));
                stop_input = Some(stop_write);
            }
        }
        drop(self.slave);
        Relay {
            master: self.master,
            output,
            drain: drain_write,
            input,
            stop_input,
            saved,
        }
    }
}

/// A running relay; see [`Terminal::relay`].
pub(crate) struct Relay {
    master: OwnedFd,
    output: Option<JoinHandle<Vec<Dropped>>>,
    /// Closed to have the output thread stop once the output is quiet.
    drain: Option<OwnedFd>,
    /// The thread that passes the maintainer's keystrokes on, and the pipe whose closing
    /// stops it.
    input: Option<JoinHandle<()>>,
    stop_input: Option<OwnedFd>,
    saved: Option<Termios>,
}

impl Relay {
    /// After the command ended: drain its last output, restore the terminal, and say which
    /// sequences the filter dropped.
    pub(crate) fn finish(mut self) -> Vec<Dropped> {
        self.output
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }

    /// In a keepout that joined a running sandbox, once the joined command ended: other
    /// processes of the sandbox (a background job of the joined shell) may still hold its
    /// terminal, so it never hangs up. Stop passing keystrokes on first, then pass on the
    /// output until it has been quiet for [`QUIET`] (at most [`DRAIN_LIMIT`]), close the
    /// terminal, restore the
    /// maintainer's; say which sequences the filter dropped.
    pub(crate) fn finish_joined(mut self) -> Vec<Dropped> {
        drop(self.stop_input.take());
        if let Some(t) = self.input.take() {
            let _ = t.join();
        }
        drop(self.drain.take());
        self.finish()
    }

    /// Pass the maintainer's window size on (on SIGWINCH); the kernel signals the command.
    pub(crate) fn resize(&self) {
        if let Ok(size) = rustix::termios::tcgetwinsize(rustix::stdio::stdout())
            .or_else(|_| rustix::termios::tcgetwinsize(rustix::stdio::stdin()))
        {
            let _ = rustix::termios::tcsetwinsize(self.master.as_fd(), size);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(t) = self.output.take() {
            let _ = t.join();
        }
        drop(self.stop_input.take());
        if let Some(t) = self.input.take() {
            let _ = t.join();
        }
        if let Some(modes) = &self.saved {
            let _ = rustix::termios::tcsetattr(rustix::stdio::stdin(), OptionalActions::Now, modes);
        }
    }
}

/// How long the output of a joined command's terminal must be quiet, once the command ended,
/// before the joining keepout stops relaying it (see [`Relay::finish_joined`]).
const QUIET: std::time::Duration = std::time::Duration::from_millis(150);

/// How long at most the joining keepout passes output on once the joined command ended.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Write all of `bytes` to the terminal `to`, waiting while it is full (a master made
/// non-blocking by [`Terminal::for_master`]) unless `stop` hangs up meanwhile. False when the
/// write failed or was stopped.
fn write_or_stop(to: &mut std::fs::File, mut bytes: &[u8], stop: &OwnedFd) -> bool {
    use rustix::event::{PollFd, PollFlags};
    while !bytes.is_empty() {
        match to.write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fds = [
                    PollFd::new(&*to, PollFlags::OUT),
                    PollFd::new(stop, PollFlags::IN),
                ];
                match rustix::event::poll(&mut fds, None) {
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(_) => return false,
                }
                if !fds[1].revents().is_empty() {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = rustix::io::write(fd, bytes)?;
        bytes = &bytes[n..];
    }
    Ok(())
}

//! Joining a running sandbox, as `docker exec` does: a second command in the same sandbox,
//! started by its init, confined exactly as the first.
//!
//! While a sandbox whose policy names a `join_socket` runs, keepout serves that unix socket
//! (mode 0600, in the caller's own data directory) and hands every connection from the same
//! user to init. Init forks the joined command from itself and applies to it the very layers
//! the first command got (the same Landlock rules, seccomp filters, capabilities dropped,
//! no_new_privs, limits, environment), in the same namespaces, cgroup and root; so a joined
//! command never has more than the first. A descriptor of the joining keepout that is a
//! terminal never enters the sandbox: the joined command gets a new terminal of the sandbox's
//! own devpts instead, which the joining keepout relays (and filters, A17) as `run` does; its
//! other standard descriptors (pipes, files) are passed as they are, as `run` passes them.
//!
//! Protocol on the connection: the joining keepout sends the request: a byte whose bits 0-2
//! say which of its descriptors 0-2 are terminals, the length of what follows (4 bytes, little
//! endian; at most [`MAX_REQUEST`]), then the command's arguments, each ended by a NUL (empty
//! ones too), with its non-terminal descriptors 0-2 (in order) as SCM_RIGHTS. Init reads it
//! whole (however the kernel splits it; waiting at most [`REQUEST_TIMEOUT`], during which it
//! passes no signal on) before it forks the joined command. When the joining
//! keepout has a terminal, the joined side sends back the terminal's master (one byte and
//! SCM_RIGHTS). Then a setup failure, if any, in `report`'s form, and last, from init,
//! `EXIT <status>\n`. EOF without it: the sandbox ended first (its first command exited, and
//! with init every process in it).
//!
//! Meanwhile the joining keepout passes on the signals a run passes on (`SIGNAL <number>\n`),
//! which init sends to the joined command's process group; when the joining keepout goes away
//! (killed, its connection closed) before its command ended, init kills that process group: a
//! joined command does not run on once the keepout that started it is gone. Processes it put in
//! other process groups (a joined shell's background jobs) live on with the sandbox.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::channel::{recv_fd, send_fd};
use super::exec::Prepared;
use super::report::SETUP_FAILED;
use super::{sys, terminal};
use crate::error::{Error, Result};
use crate::plan::SandboxPlan;
use crate::policy::Policy;

/// The largest request accepted (the arguments, each with its NUL).
const MAX_REQUEST: usize = 64 * 1024;

/// How long init waits for a request to arrive whole.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A request to join: which of descriptors 0-2 are terminals, the arguments, the descriptors
/// passed (the non-terminal ones among 0-2, in order).
struct Request {
    mask: u8,
    argv: Vec<String>,
    fds: Vec<OwnedFd>,
}

/// In init: a joined command that runs, and the connection of the keepout that started it.
pub(crate) struct Joined {
    pid: rustix::process::Pid,
    conn: OwnedFd,
    /// What came on the connection and is not a whole line yet.
    pending: Vec<u8>,
    /// The joining keepout went away (its command's process group was killed).
    gone: bool,
}

/// keepout's side while the sandbox runs: the listening socket and the thread that hands
/// connections to init. Dropping it stops serving and removes the socket.
pub(crate) struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serve `path`, handing each connection of this user to init through `to_init`. `None`
    /// when the socket cannot be made (joining is then refused, as before).
    pub(crate) fn start(path: &Path, to_init: OwnedFd) -> Option<Server> {
        use std::os::unix::fs::PermissionsExt;
        // The caller holds the workspace's lock: a socket left here is a dead run's.
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).ok()?;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        listener.set_nonblocking(true).ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let me = rustix::process::geteuid();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let same_user = rustix::net::sockopt::socket_peercred(&conn)
                            .is_ok_and(|cred| cred.uid == me);
                        if same_user && conn.set_nonblocking(false).is_ok() {
                            let _ = send_fd(&to_init, conn.as_fd());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    Err(_) => break,
                }
            }
        });
        Some(Server {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// In init: a connection arrived on `from_keepout`; read its request and start its command.
/// `None` when nothing was started.
pub(crate) fn accept_in_init(
    from_keepout: &OwnedFd,
    plan: &SandboxPlan,
    prepared: &Prepared,
    policy: &Policy,
) -> Option<Joined> {
    let conn = recv_fd(from_keepout).ok()??;
    let request = read_request(&conn);
    match sys::fork() {
        Ok(None) => joined_main(conn, request, plan, prepared, policy),
        Ok(Some(pid)) => Some(Joined {
            pid: rustix::process::Pid::from_raw(pid)?,
            conn,
            pending: Vec::new(),
            gone: false,
        }),
        Err(_) => None,
    }
}

impl Joined {
    /// The joined command's pid (in the sandbox).
    pub(crate) fn pid(&self) -> rustix::process::Pid {
        self.pid
    }

    /// The connection, to poll while the joining keepout is there (`None` once it is gone).
    pub(crate) fn watched(&self) -> Option<BorrowedFd<'_>> {
        (!self.gone).then(|| self.conn.as_fd())
    }

    /// The connection is readable: pass on the signals the joining keepout sent; when it went
    /// away, kill the joined command's process group.
    pub(crate) fn serve(&mut self) {
        let mut buf = [0u8; 256];
        match rustix::net::recv(&self.conn, &mut buf, rustix::net::RecvFlags::DONTWAIT) {
            Ok((0, _)) => {
                self.gone = true;
                self.signal(rustix::process::Signal::KILL);
            }
            Ok((n, _)) => {
                self.pending.extend_from_slice(&buf[..n]);
                while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = self.pending.drain(..=end).collect();
                    let sig = std::str::from_utf8(&line)
                        .ok()
                        .and_then(|l| l.trim_end().strip_prefix("SIGNAL "))
                        .and_then(|n| n.parse::<i32>().ok())
                        .filter(|n| super::signals::FORWARDED_SIGNALS.contains(n))
                        .and_then(rustix::process::Signal::from_named_raw);
                    if let Some(sig) = sig {
                        self.signal(sig);
                    }
                }
                if self.pending.len() > 64 {
                    self.pending.clear(); // not this protocol's
                }
            }
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => {
                self.gone = true;
                self.signal(rustix::process::Signal::KILL);
            }
        }
    }

    /// Send `sig` to the joined command's process group (to the command itself before it
    /// made its session).
    fn signal(&self, sig: rustix::process::Signal) {
        if rustix::process::kill_process_group(self.pid, sig).is_err() {
            let _ = rustix::process::kill_process(self.pid, sig);
        }
    }

    /// The joined command ended with `code`: tell the keepout that joined.
    pub(crate) fn report_exit(self, code: i32) {
        // MSG_NOSIGNAL: a joining keepout that went away must not take init (and the
        // sandbox) with it through SIGPIPE.
        let message = format!("EXIT {code}\n");
        let _ = rustix::net::send(
            &self.conn,
            message.as_bytes(),
            rustix::net::SendFlags::NOSIGNAL,
        );
    }
}

/// The joined command, forked from init: take the request, make its terminal, confine it as
/// the first command is confined, exec. Never returns.
fn joined_main(
    conn: OwnedFd,
    request: io::Result<Request>,
    plan: &SandboxPlan,
    prepared: &Prepared,
    policy: &Policy,
) -> ! {
    let fail = |what: &str, e: io::Error| -> ! {
        super::report::report(conn.as_fd(), "setup", what, &e);
        sys::exit_now(SETUP_FAILED)
    };
    let Request { mask, argv, fds } = match request {
        Ok(r) => r,
        Err(e) => fail("read the request to join", e),
    };
    if argv.is_empty() {
        fail("read the request to join", io::Error::other("no command"));
    }
    let replaced = [mask & 1 != 0, mask & 2 != 0, mask & 4 != 0];
    let mut passed = fds.into_iter();
    for (fd, is_terminal) in replaced.iter().enumerate() {
        if *is_terminal {
            continue;
        }
        let Some(given) = passed.next() else {
            fail(
                "read the request to join",
                io::Error::other("a descriptor is missing"),
            );
        };
        let r = match fd {
            0 => rustix::stdio::dup2_stdin(&given),
            1 => rustix::stdio::dup2_stdout(&given),
            _ => rustix::stdio::dup2_stderr(&given),
        };
        if let Err(e) = r {
            fail("take the joining keepout's descriptors", e.into());
        }
    }
    let terminal = if replaced.iter().any(|t| *t) {
        let t = match terminal::Terminal::open_in_devpts(Path::new("/dev/pts/ptmx"), replaced) {
            Ok(t) => t,
            Err(e) => fail("open a terminal of the sandbox's devpts", e),
        };
        if let Err(e) = send_fd(&conn, t.master()) {
            fail("hand the terminal to the joining keepout", e.into());
        }
        Some(t)
    } else {
        None
    };
    let mut joined_policy = policy.clone();
    joined_policy.command = argv.clone();
    let joined = match Prepared::for_command(&joined_policy, prepared) {
        Ok(p) => p,
        Err(e) => fail(
            "prepare the joined command",
            io::Error::other(e.to_string()),
        ),
    };
    super::exec::confine_and_exec(
        &plan.landlock,
        &joined,
        terminal.as_ref(),
        &joined_policy,
        conn,
        None,
    )
}

/// In init: read the request whole (see the module docs), waiting at most
/// [`REQUEST_TIMEOUT`] for it.
fn read_request(conn: &OwnedFd) -> io::Result<Request> {
    use rustix::net::sockopt::{set_socket_timeout, Timeout};
    set_socket_timeout(conn, Timeout::Recv, Some(REQUEST_TIMEOUT))?;
    let mut fds = Vec::new();
    let mut header = [0u8; 5];
    receive_exactly(conn, &mut header, &mut fds)?;
    let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > MAX_REQUEST {
        return Err(io::Error::other(format!(
            "the arguments are {len} bytes, more than the {MAX_REQUEST} a joined command may have"
        )));
    }
    let mut args = vec![0u8; len];
    receive_exactly(conn, &mut args, &mut fds)?;
    set_socket_timeout(conn, Timeout::Recv, None)?;
    Ok(Request {
        mask: header[0],
        argv: parse_arguments(&args)?,
        fds,
    })
}

/// Fill `buf` from `conn` (several reads when the kernel splits what was sent), keeping the
/// descriptors that come with it.
fn receive_exactly(conn: &OwnedFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<()> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut done = 0;
    while done < buf.len() {
        let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(3))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = match rustix::net::recvmsg(
            conn,
            &mut [io::IoSliceMut::new(&mut buf[done..])],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(got) => got,
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) => {
                return Err(io::Error::other(format!(
                    "the request did not arrive whole within {} s",
                    REQUEST_TIMEOUT.as_secs()
                )))
            }
            Err(e) => return Err(e.into()),
        };
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        if got.bytes == 0 {
            return Err(io::Error::other("the request ended early"));
        }
        done += got.bytes;
    }
    Ok(())
}

/// The arguments of a request, each ended by a NUL; empty ones are arguments too.
fn parse_arguments(block: &[u8]) -> io::Result<Vec<String>> {
    let Some(body) = block.strip_suffix(&[0]) else {
        return if block.is_empty() {
            Ok(Vec::new())
        } else {
            Err(io::Error::other("the last argument is not ended by a NUL"))
        };
    };
    Ok(body
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect())
}

/// The request's bytes (without the descriptors): see the module docs. A usage error, saying
/// what to do, when the arguments are longer than [`MAX_REQUEST`].
fn encode_request(mask: u8, command: &[String]) -> Result<Vec<u8>> {
    let mut args = Vec::new();
    for arg in command {
        args.extend_from_slice(arg.as_bytes());
        args.push(0);
    }
    if args.len() > MAX_REQUEST {
        return Err(Error::Usage(format!(
            "the command's arguments are {} KiB, more than the {} KiB a command joining a \
             running sandbox may have: put them in a file in the workspace's home and pass its \
             name, or run the command once the running one has ended",
            args.len().div_ceil(1024),
            MAX_REQUEST / 1024
        )));
    }
    let mut request = vec![mask];
    request.extend_from_slice(&(args.len() as u32).to_le_bytes());
    request.extend_from_slice(&args);
    Ok(request)
}

/// Join the sandbox that serves `socket`: run `command` in it, relaying this keepout's
/// terminal (filtered by `policy`) when it has one, and passing on the signals a run passes
/// on; the command's exit status, as soon as it ended (its background jobs may live on).
pub(crate) fn join(
    socket: &Path,
    command: &[String],
    policy: crate::terminal_filter::TerminalPolicy,
) -> Result<i32> {
    use std::os::fd::AsRawFd;
    let step = |what: &str| {
        let what = what.to_string();
        move |e: io::Error| Error::Setup {
            step: what,
            message: crate::error::describe_io(&e),
        }
    };
    let stdio = [
        rustix::stdio::stdin(),
        rustix::stdio::stdout(),
        rustix::stdio::stderr(),
    ];
    let replaced = stdio.map(|fd| sys::is_terminal(fd.as_raw_fd()));
    let mask = replaced
        .iter()
        .enumerate()
        .fold(0u8, |m, (i, t)| if *t { m | (1 << i) } else { m });
    let request = encode_request(mask, command)?;
    // Signals for the joined command wait, blocked, until they can be passed on (from before
    // the command can start, so that none ends this keepout and leaves it running).
    let signals = sys::SignalSet::new(super::signals::FORWARDED_SIGNALS);
    signals.block().map_err(step("block signals"))?;
    struct Unblock<'a>(&'a sys::SignalSet);
    impl Drop for Unblock<'_> {
        fn drop(&mut self) {
            self.0.unblock();
        }
    }
    let _unblock = Unblock(&signals);
    let conn = UnixStream::connect(socket).map_err(step("reach the running sandbox"))?;
    let passed: Vec<BorrowedFd<'_>> = stdio
        .iter()
        .zip(replaced)
        .filter(|(_, t)| !t)
        .map(|(fd, _)| *fd)
        .collect();
    send_request(&conn, &request, &passed).map_err(step("ask the running sandbox"))?;
    let conn = OwnedFd::from(conn);
    let relay = if mask != 0 {
        let master = recv_fd(&conn)
            .map_err(|e| step("receive the joined command's terminal")(e.into()))?
            .ok_or_else(|| Error::Setup {
                step: "receive the joined command's terminal".into(),
                message: "the sandbox ended before it started the command".into(),
            })?;
        Some(terminal::Terminal::for_master(master, replaced).relay(policy))
    } else {
        None
    };
    let mut answer = Vec::new();
    rustix::fs::fcntl_setfl(&conn, rustix::fs::OFlags::NONBLOCK)
        .map_err(|e| step("wait for the joined command")(e.into()))?;
    let mut buf = [0u8; 4096];
    // Until init says the command ended (or the sandbox ended: EOF).
    while !answer.ends_with(b"\n") || exit_code(&answer).is_none() {
        match rustix::io::read(&conn, &mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::AGAIN) => {
                match signals.wait_timeout(std::time::Duration::from_millis(50)) {
                    Ok(Some(libc::SIGWINCH)) if relay.is_some() => {
                        // The joined command has a terminal: resizing it signals the command.
                        relay.as_ref().expect("checked").resize();
                    }
                    Ok(Some(sig)) => {
                        let message = format!("SIGNAL {sig}\n");
                        let _ = rustix::net::send(
                            &conn,
                            message.as_bytes(),
                            rustix::net::SendFlags::NOSIGNAL,
                        );
                    }
                    Ok(None) => {}
                    Err(e) => return Err(step("wait for signals")(e)),
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(step("wait for the joined command")(e.into())),
        }
    }
    // Other processes may hold the joined command's terminal (its background jobs): stop at
    // once rather than when the last of them is gone.
    drop(relay.map(terminal::Relay::finish_joined));
    drop(conn);
    let text = String::from_utf8_lossy(&answer);
    if let Some(error) = super::report::parse_report(&text) {
        return Err(error);
    }
    exit_code(&answer).ok_or_else(|| Error::Setup {
        step: "wait for the joined command".into(),
        message: "the sandbox ended (its first command exited) before the joined one did".into(),
    })
}

/// The status in init's last line, `EXIT <status>`, once that has come whole.
fn exit_code(answer: &[u8]) -> Option<i32> {
    String::from_utf8_lossy(answer)
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("EXIT "))
        .and_then(|c| c.trim().parse::<i32>().ok())
}

/// Send the request, its first bytes with the descriptors, then the rest (a stream socket may
/// take a long request in parts).
fn send_request(conn: &UnixStream, request: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        control.push(SendAncillaryMessage::ScmRights(fds));
    }
    let mut sent = loop {
        match rustix::net::sendmsg(
            conn,
            &[io::IoSlice::new(request)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(n) => break n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    while sent < request.len() {
        match rustix::net::send(conn, &request[sent..], SendFlags::NOSIGNAL) {
            Ok(0) => return Err(io::Error::other("the running sandbox stopped reading")),
            Ok(n) => sent += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_keep_empty_ones_and_their_order() {
        let command: Vec<String> = ["sh", "", "a", ""].map(String::from).to_vec();
        let request = encode_request(3, &command).unwrap();
        assert_eq!(request[0], 3);
        let len = u32::from_le_bytes(request[1..5].try_into().unwrap()) as usize;
        assert_eq!(len, request.len() - 5);
        assert_eq!(parse_arguments(&request[5..]).unwrap(), command);
    }

    #[test]
    fn a_request_above_the_limit_is_refused_saying_what_to_do() {
        let long = vec!["x".repeat(MAX_REQUEST)];
        let err = encode_request(0, &long).unwrap_err().to_string();
        assert!(err.contains("64 KiB") && err.contains("in a file"), "{err}");
    }
}

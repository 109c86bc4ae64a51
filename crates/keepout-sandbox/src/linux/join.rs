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
//! Protocol on the connection: the joining keepout sends one message: a byte whose bits 0-2
//! say which of its descriptors 0-2 are terminals, then the command's arguments, each ended by
//! a NUL, with its non-terminal descriptors 0-2 (in order) as SCM_RIGHTS. When it has a
//! terminal, the joined side sends back the terminal's master (one byte and SCM_RIGHTS). Then
//! a setup failure, if any, in `report`'s form, and last, from init, `EXIT <status>\n`. EOF
//! without it: the sandbox ended first (its first command exited, and with init every process
//! in it).

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{recv_fd, send_fd, sys, terminal, Prepared, SETUP_FAILED};
use crate::error::{Error, Result};
use crate::plan::SandboxPlan;
use crate::policy::Policy;

/// The largest request accepted (the arguments).
const MAX_REQUEST: usize = 64 * 1024;

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

/// In init: a connection arrived on `from_keepout`; start its command. The joined command's
/// pid and the connection (for its exit status), or `None` when nothing was started.
pub(crate) fn accept_in_init(
    from_keepout: &OwnedFd,
    plan: &SandboxPlan,
    prepared: &Prepared,
    policy: &Policy,
) -> Option<(rustix::process::Pid, OwnedFd)> {
    let conn = recv_fd(from_keepout).ok()??;
    match sys::fork() {
        Ok(None) => joined_main(conn, plan, prepared, policy),
        Ok(Some(pid)) => Some((rustix::process::Pid::from_raw(pid)?, conn)),
        Err(_) => None,
    }
}

/// In init: the joined command `pid` ended with `code`; tell the keepout that joined.
pub(crate) fn report_exit(conn: OwnedFd, code: i32) {
    // MSG_NOSIGNAL: a joining keepout that went away must not take init (and the sandbox) with
    // it through SIGPIPE.
    let message = format!("EXIT {code}\n");
    let _ = rustix::net::send(&conn, message.as_bytes(), rustix::net::SendFlags::NOSIGNAL);
}

/// The joined command, forked from init: read the request, make its terminal, confine it as
/// the first command is confined, exec. Never returns.
fn joined_main(conn: OwnedFd, plan: &SandboxPlan, prepared: &Prepared, policy: &Policy) -> ! {
    let fail = |what: &str, e: io::Error| -> ! {
        super::report(conn.as_fd(), "setup", what, &e);
        sys::exit_now(SETUP_FAILED)
    };
    let (mask, argv, fds) = match read_request(&conn) {
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
    super::confine_and_exec(
        &plan.landlock,
        &joined,
        terminal.as_ref(),
        &joined_policy,
        conn,
        None,
    )
}

/// The request: the terminal mask, the arguments, the passed descriptors.
fn read_request(conn: &OwnedFd) -> io::Result<(u8, Vec<String>, Vec<OwnedFd>)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut buf = vec![0u8; MAX_REQUEST];
    let got = rustix::net::recvmsg(
        conn,
        &mut [io::IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    let bytes = &buf[..got.bytes];
    let Some((&mask, rest)) = bytes.split_first() else {
        return Err(io::Error::other("an empty request"));
    };
    let argv = rest
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Ok((mask, argv, fds))
}

/// Join the sandbox that serves `socket`: run `command` in it, relaying this keepout's
/// terminal (filtered by `policy`) when it has one; the command's exit status.
pub(crate) fn join(
    socket: &Path,
    command: &[String],
    policy: crate::TerminalPolicy,
) -> Result<i32> {
    use std::os::fd::AsRawFd;
    let step = |what: &str| {
        let what = what.to_string();
        move |e: io::Error| Error::Setup {
            step: what,
            message: crate::error::describe_io(&e),
        }
    };
    let conn = UnixStream::connect(socket).map_err(step("reach the running sandbox"))?;
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
    let mut request = vec![mask];
    for arg in command {
        request.extend_from_slice(arg.as_bytes());
        request.push(0);
    }
    if request.len() > MAX_REQUEST {
        return Err(Error::Usage("the command is too long to join with".into()));
    }
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
    // Window-size changes go on to the joined command's terminal while it runs.
    let winch = sys::SignalSet::new(&[libc::SIGWINCH]);
    let _ = winch.block();
    let mut answer = Vec::new();
    let mut from = std::fs::File::from(conn);
    rustix::fs::fcntl_setfl(&from, rustix::fs::OFlags::NONBLOCK)
        .map_err(|e| step("wait for the joined command")(e.into()))?;
    let mut buf = [0u8; 4096];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Ok(Some(_)) = winch.wait_timeout(std::time::Duration::from_millis(50)) {
                    if let Some(r) = &relay {
                        r.resize();
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(step("wait for the joined command")(e)),
        }
    }
    winch.unblock();
    drop(relay.map(terminal::Relay::finish));
    let text = String::from_utf8_lossy(&answer);
    let code = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("EXIT "))
        .and_then(|c| c.trim().parse::<i32>().ok());
    if let Some(error) = super::parse_report(&text) {
        return Err(error);
    }
    code.ok_or_else(|| Error::Setup {
        step: "wait for the joined command".into(),
        message: "the sandbox ended (its first command exited) before the joined one did".into(),
    })
}

fn send_request(conn: &UnixStream, request: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        control.push(SendAncillaryMessage::ScmRights(fds));
    }
    rustix::net::sendmsg(
        conn,
        &[io::IoSlice::new(request)],
        &mut control,
        SendFlags::empty(),
    )?;
    Ok(())
}

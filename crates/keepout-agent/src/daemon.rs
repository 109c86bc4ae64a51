//! The agent as a background process of the user's shell (`keepout agent --daemon`).
//!
//! Guarantees: an agent that already answers on the socket is reused, never doubled, and named
//! by the kernel's record of who listens (SO_PEERCRED), only when it runs as this user; a new
//! agent is waited for until it answers (at most 5 s) and its log is `agent.log` next to the
//! socket; the agent asks on the terminal `--daemon` ran in (standard input or error, whichever
//! is one), held for it when it detaches; the lines for the shell quote every word for `sh`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keepout_vault::VaultError;

use crate::Error;

/// How long [`start`] waits for a new agent to answer.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// The agent's usual socket: `agent.sock` in [`keepout_vault::cache::socket_dir`].
pub fn default_socket() -> Result<PathBuf, VaultError> {
    Ok(keepout_vault::cache::socket_dir()?.join("agent.sock"))
}

/// The user's home (`$HOME` when it is absolute), to shorten paths in prompts.
pub fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// One word for `sh` (what `eval "$(keepout agent --daemon)"` runs): in single quotes.
pub fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The lines for `sh` that point it at an agent on `socket`: `SSH_AUTH_SOCK`, and with the
/// agent's process id `pid` also `SSH_AGENT_PID` and an `echo` of it (with `note` after it).
pub fn export_lines(socket: &Path, pid: Option<u32>, note: &str) -> String {
    let mut out = format!(
        "SSH_AUTH_SOCK={}; export SSH_AUTH_SOCK;\n",
        sh_quote(&socket.to_string_lossy())
    );
    if let Some(pid) = pid {
        out.push_str(&format!(
            "SSH_AGENT_PID={pid}; export SSH_AGENT_PID;\necho {};",
            sh_quote(&format!("Agent pid {pid}{note}"))
        ));
    }
    out
}

/// An agent that answers on a socket and runs as this user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Running {
    /// Its process id, when the kernel said it.
    pub pid: Option<u32>,
}

/// The agent that answers on `socket` (SO_PEERCRED of a connection to it: the kernel's record
/// of who listens), if one answers and it is ours.
pub fn running(socket: &Path) -> Option<Running> {
    let stream = std::os::unix::net::UnixStream::connect(socket).ok()?;
    let cred = rustix::net::sockopt::socket_peercred(&stream).ok();
    let me = rustix::process::getuid();
    match cred {
        Some(c) if c.uid == me => Some(Running {
            pid: u32::try_from(c.pid.as_raw_nonzero().get()).ok(),
        }),
        Some(_) => None,
        None => Some(Running { pid: None }),
    }
}

/// What [`start`] left answering on the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// The agent it started, which answers.
    New { pid: u32 },
    /// Another agent, started meanwhile (two shells at once), while the one started stopped.
    Raced(Running),
}

/// The command that runs the agent binary `exe` detached, serving `socket` (`EXE agent
/// --detached --socket SOCKET`, with `--upstream` and each `--known-hosts` as given), for
/// [`start`].
pub fn detached_command(
    exe: PathBuf,
    socket: &Path,
    upstream: Option<&Path>,
    known_hosts: &[PathBuf],
) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg("agent")
        .arg("--detached")
        .arg("--socket")
        .arg(socket);
    if let Some(up) = upstream {
        cmd.arg("--upstream").arg(up);
    }
    for k in known_hosts {
        cmd.arg("--known-hosts").arg(k);
    }
    cmd
}

/// Start the agent `command` (the agent serving `socket`, detached) in the background: its
/// standard input the terminal this process runs in, its standard error `agent.log` next to the
/// socket; wait until an agent answers on `socket`.
pub fn start(mut command: Command, socket: &Path) -> Result<Started, Error> {
    let log_path = socket.with_file_name("agent.log");
    if let Some(dir) = socket.parent() {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|source| Error::OpenLog {
            path: log_path.clone(),
            source,
        })?;
    let mut child = command
        // The terminal --daemon runs in (its own standard input or error), as the agent's
        // standard input: the agent asks there, also where its device is not the user's
        // (a `su -` login); see crate::terminal.
        .stdin(start_terminal())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(Error::Io)?;
    let start = Instant::now();
    while start.elapsed() < START_TIMEOUT {
        if let Some(status) = child.try_wait().map_err(Error::Io)? {
            // Another agent may have started meanwhile (two shells at once): that one serves.
            if let Some(other) = running(socket) {
                return Ok(Started::Raced(other));
            }
            return Err(Error::AgentStopped {
                status,
                log: log_path,
            });
        }
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Ok(Started::New { pid: child.id() });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(Error::AgentNotStarted { log: log_path })
}

/// The terminal `keepout agent --daemon` runs in, for the agent to ask on: a new descriptor of
/// standard input or standard error, whichever is a terminal (standard output is the `$(...)`
/// pipe); else nothing.
fn start_terminal() -> Stdio {
    use std::io::IsTerminal;
    use std::os::fd::AsFd;
    let found = if std::io::stdin().is_terminal() {
        std::io::stdin().as_fd().try_clone_to_owned().ok()
    } else if std::io::stderr().is_terminal() {
        std::io::stderr().as_fd().try_clone_to_owned().ok()
    } else {
        None
    };
    found.map_or_else(Stdio::null, Stdio::from)
}

/// In the started agent, first thing: leave the terminal's session (so its hangup does not end
/// the agent) and hold the start terminal to ask on ([`crate::terminal::hold_start_terminal`]).
/// The terminal is held either way; the error is why the session could not be left (only for a
/// caller that made the agent a process group leader).
pub fn detach() -> Result<(), rustix::io::Errno> {
    let left = rustix::process::setsid().map(drop);
    crate::terminal::hold_start_terminal();
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detached_agent_gets_the_socket_and_the_options_given() {
        let hosts = [PathBuf::from("/k1"), PathBuf::from("/k2")];
        let cmd = detached_command(
            "/bin/keepout".into(),
            Path::new("/s"),
            Some(Path::new("/u")),
            &hosts,
        );
        let args: Vec<_> = cmd.get_args().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(cmd.get_program(), "/bin/keepout");
        assert_eq!(
            args,
            [
                "agent",
                "--detached",
                "--socket",
                "/s",
                "--upstream",
                "/u",
                "--known-hosts",
                "/k1",
                "--known-hosts",
                "/k2"
            ]
        );
    }

    #[test]
    fn words_are_quoted_for_sh() {
        assert_eq!(
            sh_quote("/run/user/1/agent.sock"),
            "'/run/user/1/agent.sock'"
        );
        assert_eq!(sh_quote("it's $HOME"), r"'it'\''s $HOME'");
    }

    #[test]
    fn export_lines_name_the_socket_and_the_pid() {
        let socket = Path::new("/tmp/a b/agent.sock");
        assert_eq!(
            export_lines(socket, None, ""),
            "SSH_AUTH_SOCK='/tmp/a b/agent.sock'; export SSH_AUTH_SOCK;\n"
        );
        assert_eq!(
            export_lines(socket, Some(42), " (already running)"),
            "SSH_AUTH_SOCK='/tmp/a b/agent.sock'; export SSH_AUTH_SOCK;\n\
             SSH_AGENT_PID=42; export SSH_AGENT_PID;\necho 'Agent pid 42 (already running)';"
        );
    }

    #[test]
    fn a_listening_socket_of_ours_is_a_running_agent() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        assert_eq!(running(&socket), None);
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert_eq!(
            running(&socket),
            Some(Running {
                pid: Some(std::process::id())
            })
        );
    }

    #[test]
    fn a_started_agent_is_waited_for_until_it_answers() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run").join("agent.sock");
        // A stand-in agent that only waits; the socket answers (from this test) a moment later.
        let mut command = Command::new("sleep");
        command.arg("30");
        let bind = {
            let socket = socket.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                std::os::unix::net::UnixListener::bind(socket).unwrap()
            })
        };
        let Ok(Started::New { pid }) = start(command, &socket) else {
            panic!("the stand-in agent did not start");
        };
        assert!(socket.with_file_name("agent.log").is_file());
        drop(bind.join().unwrap());
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }

    #[test]
    fn an_agent_that_stops_says_where_its_log_is() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let mut command = Command::new("sh");
        command.args(["-c", "echo broken >&2; exit 3"]);
        let e = start(command, &socket).unwrap_err().to_string();
        let log = socket.with_file_name("agent.log");
        assert_eq!(
            e,
            format!("the agent stopped (exit status: 3); see {}", log.display())
        );
        assert_eq!(std::fs::read_to_string(log).unwrap(), "broken\n");
    }
}

//! Where the agent asks: the requester's own terminal and display, found from the kernel's
//! record of who connected (the SO_PEERCRED pid) and /proc.
//!
//! Guarantees: a question goes to a terminal only when the process at the other end of the
//! socket sees the agent's own mounts (a container's or sandbox's devpts numbers its terminals
//! as the host's does: the same device number would name another terminal), the terminal is
//! that process's controlling terminal (`tty_nr` in /proc/PID/stat), is a character device
//! owned by the agent's uid (which is the peer's: other uids are not served), and the peer's
//! process group is that terminal's foreground group (`tpgid`): the shell that started the
//! command is then waiting for it, not reading, so the answer is not taken from the shell and
//! does not reach it. The terminal is opened with `O_NOCTTY` (the agent, detached by `setsid`,
//! never acquires a controlling terminal) and checked again when the answer comes
//! ([`keepout_prompt::Terminal::still_ours`]). From the requester's environment
//! (/proc/PID/environ) only the display (`DISPLAY` when it is this machine's, `:N`, never
//! `host:N`; `WAYLAND_DISPLAY` when it is a name, not a path), `TERM` and the locale
//! (`LANG`, `LC_*`, for askpass programs) are taken —
//! never which program asks: `KEEPOUT_ASKPASS` and `KEEPOUT_PINENTRY` are the agent's own.
//!
//! The terminal the agent was started from (`eval "$(keepout agent --daemon)"` hands it over as
//! the detached agent's standard input, [`hold_start_terminal`]) is held open: a requester whose
//! controlling terminal is that one is asked through the held descriptor, also when the
//! terminal's device belongs to another uid, as a `su -` login's stays root's and could not be
//! opened by its path. It came from the user's own session, so the ownership check is not
//! needed for it; every other check is the same. Its mode flags are never changed (the open
//! file description is the user's shell's too: no `O_NONBLOCK`).

use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use keepout_prompt::{Place, Terminal};

use crate::peer::{Peer, Process};

/// The terminal the agent was started from, and its device number.
static START_TERMINAL: OnceLock<Option<(std::fs::File, u64)>> = OnceLock::new();

/// In the detached agent, once at start: keep standard input when it is a terminal (the one
/// `--daemon` was run in) to ask requesters on it (see the module docs).
pub fn hold_start_terminal() {
    START_TERMINAL.get_or_init(|| {
        let stdin = std::io::stdin();
        use std::os::fd::AsFd;
        let fd = stdin.as_fd();
        if !rustix::termios::isatty(fd) {
            return None;
        }
        let st = rustix::fs::fstat(fd).ok()?;
        let owned = fd.try_clone_to_owned().ok()?;
        Some((std::fs::File::from(owned), st.st_rdev))
    });
}

/// A new descriptor of the held start terminal when `tty_nr` names it.
fn start_terminal(tty_nr: u64) -> Option<std::fs::File> {
    let (file, rdev) = START_TERMINAL.get()?.as_ref()?;
    if !same_device(*rdev, tty_nr) {
        return None;
    }
    let file = file.try_clone().ok()?;
    // A terminal that was hung up (its session ended) answers nothing: not ours any more.
    rustix::termios::tcgetattr(&file).ok()?;
    Some(file)
}

/// Where to ask `peer`'s user: its terminal (when safe, else why not) and its display.
pub fn place(peer: &Peer) -> Place {
    let env = peer
        .chain
        .iter()
        .find_map(|p| environ(p.pid))
        .unwrap_or_default();
    let var = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    // The peer as it is now, not as it was when it connected (it may have been put in the
    // background since): the same process (pid and start time), read again.
    let now = peer.chain.first().and_then(|first| {
        Process::read(first.pid)
            .map(|(p, _)| p)
            .filter(|p| p.start == first.start)
    });
    let (terminal, no_terminal) = match &now {
        None => (None, Some("the requester has exited".to_string())),
        Some(first) => match terminal(first, var("TERM")) {
            Ok(t) => (Some(t), None),
            Err(why) => (None, Some(why)),
        },
    };
    Place {
        terminal,
        no_terminal,
        display: var("DISPLAY").filter(|d| local_display(d)),
        wayland_display: var("WAYLAND_DISPLAY").filter(|d| !d.contains('/')),
        locale: ["LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES"]
            .iter()
            .filter_map(|k| var(k).map(|v| (k.to_string(), v)))
            .collect(),
    }
}

/// A display on this machine (`:0`, `:1.0`, `unix:0`): never a display across the network
/// (`host:0`), which the requester could point at an X server of its choosing that answers.
fn local_display(display: &str) -> bool {
    let number = display
        .strip_prefix("unix:")
        .or_else(|| display.strip_prefix(':'));
    number.is_some_and(|n| {
        let n = n.split_once('.').map_or(n, |(d, _)| d);
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Whether process `pid` sees the same mounts as the agent: a terminal device number names the
/// same terminal only within one devpts instance, and a container or sandbox has its own
/// (its `/dev/pts/0` is not the host's).
fn same_mount_namespace(pid: u32) -> bool {
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/mnt")).ok();
    match (ns(&pid.to_string()), ns("self")) {
        (Some(theirs), Some(ours)) => theirs == ours,
        _ => false,
    }
}

/// The environment of process `pid` (readable for the same uid, unless it made itself
/// non-dumpable).
fn environ(pid: u32) -> Option<Vec<(String, String)>> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter_map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect(),
    )
}

fn same_device(a: u64, b: u64) -> bool {
    rustix::fs::major(a) == rustix::fs::major(b) && rustix::fs::minor(a) == rustix::fs::minor(b)
}

/// The path of `p`'s controlling terminal: one of its standard descriptors when it is that
/// device, else the pty `/dev/pts/N` the device number names.
fn device_path(p: &Process) -> Option<PathBuf> {
    for fd in 0..3 {
        let Ok(path) = std::fs::read_link(format!("/proc/{}/fd/{fd}", p.pid)) else {
            continue;
        };
        if let Ok(meta) = std::fs::metadata(&path) {
            use std::os::unix::fs::MetadataExt;
            if meta.file_type().is_char_device() && same_device(meta.rdev(), p.tty_nr) {
                return Some(path);
            }
        }
    }
    let major = rustix::fs::major(p.tty_nr);
    // Unix98 ptys: majors 136-143 (the pts driver's), minor within.
    (136..=143).contains(&major).then(|| {
        let n = (major - 136) * 256 + rustix::fs::minor(p.tty_nr);
        PathBuf::from(format!("/dev/pts/{n}"))
    })
}

/// `p`'s controlling terminal, opened, when asking on it is safe; else why not.
fn terminal(p: &Process, term: Option<String>) -> Result<Terminal, String> {
    let who = format!("{} (pid {})", p.name, p.pid);
    if p.tty_nr == 0 {
        return Err(format!("{who} has no terminal"));
    }
    if p.tpgid <= 0 || p.tpgid != p.pgrp {
        return Err(format!(
            "{who} is not in its terminal's foreground (a background job), so its terminal is \
             not asked"
        ));
    }
    if !same_mount_namespace(p.pid) {
        return Err(format!(
            "{who} runs in another mount namespace (a container or sandbox), whose terminals \
             are not this machine's: its terminal is not asked"
        ));
    }
    // The agent's own controlling terminal, with the agent not in its foreground (started as
    // `keepout agent &`): reading or setting it would stop the agent (SIGTTIN, SIGTTOU).
    let agent = Process::read(std::process::id()).map(|(a, _)| a);
    if agent.is_some_and(|a| a.tty_nr == p.tty_nr && a.tpgid != a.pgrp) {
        return Err(format!(
            "the terminal of {who} is the agent's own, and the agent runs in its background; \
             start the agent with `eval \"$(keepout agent --daemon)\"` instead"
        ));
    }
    let path = device_path(p).ok_or_else(|| format!("the terminal of {who} was not found"))?;
    let (pid, start, pgrp, tty_nr) = (p.pid, p.start, p.pgrp, p.tty_nr);
    let still_ours = move || {
        Process::read(pid)
            .is_some_and(|(now, _)| now.start == start && now.tty_nr == tty_nr && now.tpgid == pgrp)
    };
    if let Some(file) = start_terminal(p.tty_nr) {
        return Ok(Terminal {
            file,
            path,
            term,
            still_ours: Box::new(still_ours),
        });
    }
    let me = rustix::process::getuid().as_raw();
    let not_yours = |owner: u32| {
        format!(
            "the terminal {} of {who} belongs to uid {owner}, not to you (uid {me}): a `su` \
             login's terminal stays its first user's, and the agent was not started in this \
             one; start it here (`eval \"$(keepout agent --daemon)\"` asks on the terminal it \
             was started in), log in as yourself (ssh, machinectl shell, a tmux started as \
             you), or set KEEPOUT_ASKPASS",
            path.display()
        )
    };
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::metadata(&path) {
            if meta.uid() != me {
                return Err(not_yours(meta.uid()));
            }
        }
    }
    // Non-blocking: neither opening (a serial line without carrier) nor writing (a terminal
    // stopped with ^S) can hold the agent; reads wait in poll() first.
    let fd = rustix::fs::open(
        &path,
        rustix::fs::OFlags::RDWR
            | rustix::fs::OFlags::NOCTTY
            | rustix::fs::OFlags::CLOEXEC
            | rustix::fs::OFlags::NONBLOCK,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("cannot open {}, the terminal of {who}: {e}", path.display()))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| format!("{}: {e}", path.display()))?;
    let is_char =
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::CharacterDevice;
    if !is_char || !same_device(st.st_rdev, p.tty_nr) {
        return Err(format!("{} is not the terminal of {who}", path.display()));
    }
    if st.st_uid != me {
        return Err(not_yours(st.st_uid));
    }
    if !rustix::termios::isatty(&fd) {
        return Err(format!("{} is not a terminal", path.display()));
    }
    Ok(Terminal {
        file: std::fs::File::from(fd),
        path,
        term,
        still_ours: Box::new(still_ours),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_displays_are_used() {
        for local in [":0", ":1.0", "unix:0", ":12"] {
            assert!(local_display(local), "{local}");
        }
        for remote in [
            "host:0",
            "10.0.0.1:0",
            "evil.example:0.0",
            ":",
            ":x",
            "",
            "unix:",
        ] {
            assert!(!local_display(remote), "{remote}");
        }
    }

    #[test]
    fn this_process_shares_its_own_mount_namespace() {
        assert!(same_mount_namespace(std::process::id()));
        assert!(!same_mount_namespace(u32::MAX));
    }

    #[test]
    fn a_process_without_a_terminal_gets_none_and_says_why() {
        // `setsid` leaves the test's terminal (if any): the child has none.
        let mut child = std::process::Command::new("setsid")
            .args(["sleep", "5"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let peer = Peer::read(child.id(), rustix::process::getuid().as_raw());
        let place = place(&peer);
        let _ = child.kill();
        let _ = child.wait();
        assert!(place.terminal.is_none());
        assert!(
            place
                .no_terminal
                .as_deref()
                .unwrap_or("")
                .contains("has no terminal"),
            "{:?}",
            place.no_terminal
        );
    }
}

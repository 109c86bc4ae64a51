//! Who asks: the process at the other end of the agent socket (pid and uid from SO_PEERCRED,
//! taken by the kernel at connect time) and its parents, read from /proc.
//!
//! What /proc says is for the user's eyes (the prompt) and for the "covers this process tree"
//! rule; identity decisions use the kernel's uid only. A process can change its own argv, so
//! the prompt shows the executable's path too.

use std::path::{Path, PathBuf};

/// One process of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// Start time in clock ticks since boot: with the pid, names the process even after the pid
    /// is reused.
    pub start: u64,
    pub name: String,
    pub argv: Vec<String>,
    pub exe: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    /// Its process group, session and controlling terminal (`tty_nr`, 0: none) and that
    /// terminal's foreground process group (`tpgid`), as /proc/PID/stat says.
    pub pgrp: i64,
    pub session: i64,
    pub tty_nr: u64,
    pub tpgid: i64,
}

/// `(pid, start time)`: a process that cannot be confused with a later one of the same pid.
pub type ProcessId = (u32, u64);

impl Process {
    /// Read `/proc/PID`; `None` when the process is gone.
    pub fn read(pid: u32) -> Option<(Process, u32)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses; it ends at the last ')'.
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ppid: u32 = fields.get(1)?.parse().ok()?;
        let number = |i: usize| fields.get(i).and_then(|f| f.parse::<i64>().ok());
        let (pgrp, session, tpgid) = (number(2)?, number(3)?, number(5)?);
        let tty_nr: u64 = fields.get(4)?.parse().ok()?;
        let start: u64 = fields.get(19)?.parse().ok()?;
        let argv = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|raw| {
                raw.split(|&b| b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
        Some((
            Process {
                pid,
                start,
                name,
                argv,
                exe,
                cwd,
                pgrp,
                session,
                tty_nr,
                tpgid,
            },
            ppid,
        ))
    }

    pub fn id(&self) -> ProcessId {
        (self.pid, self.start)
    }

    /// The command as a short line: argv (at most 8 words; git's `-c KEY=VALUE` and `-C DIR`
    /// options left out, so that `git push` reads as such), or the name.
    pub fn command(&self) -> String {
        if self.argv.is_empty() {
            return self.name.clone();
        }
        let mut words: Vec<String> = Vec::new();
        let mut args = self.argv.iter();
        if let Some(first) = args.next() {
            words.push(match Path::new(first.as_str()).file_name() {
                Some(base) => base.to_string_lossy().into_owned(),
                None => first.clone(),
            });
        }
        let is_git = words.first().is_some_and(|w| w == "git");
        let mut rest: Vec<&String> = Vec::new();
        while let Some(a) = args.next() {
            if is_git && rest.is_empty() && (a == "-c" || a == "-C") {
                args.next();
                continue;
            }
            rest.push(a);
        }
        let shown = rest.len().min(7);
        words.extend(rest[..shown].iter().map(|s| s.to_string()));
        let mut line = words.join(" ");
        if rest.len() > shown {
            line.push_str(" ...");
        }
        if line.chars().count() > 100 {
            line = line.chars().take(97).collect::<String>() + "...";
        }
        line
    }
}

/// The peer: the connecting process first, then its parents (pid 1 and kernel threads left out).
#[derive(Debug, Clone)]
pub struct Peer {
    pub uid: u32,
    pub chain: Vec<Process>,
}

/// Programs that talk to the agent on someone else's behalf: the prompt names who ran them.
const CARRIERS: &[&str] = &[
    "ssh",
    "scp",
    "sftp",
    "ssh-keygen",
    "ssh-add",
    "git-remote-ext",
];
/// Parents that are not "who asks" but where the user typed it.
const SHELLS: &[&str] = &["bash", "zsh", "fish", "sh", "dash", "ksh", "tcsh", "csh"];

impl Peer {
    /// The peer with process id `pid` (from SO_PEERCRED) and uid `uid`.
    pub fn read(pid: u32, uid: u32) -> Peer {
        let mut chain = Vec::new();
        let mut next = pid;
        while next > 1 && chain.len() < 16 {
            let Some((p, ppid)) = Process::read(next) else {
                break;
            };
            chain.push(p);
            next = ppid;
        }
        Peer { uid, chain }
    }

    /// The process that asks for the signature: the peer, or when the peer is ssh (or scp,
    /// ssh-keygen...) run by a program, that program (looking through `sh -c` wrappers such as
    /// git's GIT_SSH_COMMAND). When that is an interactive shell, the user typed the ssh
    /// command: the peer is the requester.
    pub fn requester(&self) -> Option<(&Process, Option<&Process>)> {
        let first = self.chain.first()?;
        if !CARRIERS.contains(&first.name.as_str()) {
            return Some((first, None));
        }
        let is_shell = |p: &Process| SHELLS.contains(&p.name.as_str());
        let wrapper = |p: &Process| is_shell(p) && p.argv.iter().skip(1).any(|a| a == "-c");
        let above = self.chain[1..].iter().find(|p| !wrapper(p));
        match above {
            Some(p) if !is_shell(p) => Some((p, Some(first))),
            _ => Some((first, None)),
        }
    }

    /// "git push origin main (pid 4242, ~/src/coverage) via ssh".
    pub fn describe(&self, home: Option<&Path>) -> String {
        let Some((who, via)) = self.requester() else {
            return "a process that has already exited".into();
        };
        let cwd = who
            .cwd
            .as_deref()
            .map(|c| tilde(c, home))
            .unwrap_or_else(|| "?".into());
        let mut text = format!("{} (pid {}, {cwd})", who.command(), who.pid);
        if let Some(via) = via {
            text.push_str(&format!(" via {}", via.name));
        }
        text
    }

    /// "ssh ← git ← bash ← sshd", with the executable of the peer.
    pub fn chain_text(&self) -> String {
        let names: Vec<&str> = self.chain.iter().map(|p| p.name.as_str()).collect();
        let exe = self
            .chain
            .first()
            .and_then(|p| p.exe.as_deref())
            .map(|e| format!(" [{}]", e.display()))
            .unwrap_or_default();
        format!("{}{exe}", names.join(" ← "))
    }

    /// The process whose tree a "5m" approval covers: the requester.
    pub fn tree_root(&self) -> Option<ProcessId> {
        self.requester().map(|(p, _)| p.id())
    }

    /// Whether `id` is this peer or one of its parents.
    pub fn descends_from(&self, id: ProcessId) -> bool {
        self.chain.iter().any(|p| p.id() == id)
    }

    /// Port numbers the peer's command line names (`-p 2222`, `-oPort=2222`, `ssh://h:2222`), for
    /// recognising `[host]:port` entries of a hashed known_hosts.
    pub fn ports(&self) -> Vec<u16> {
        let mut ports = vec![22];
        for p in self.chain.iter().take(2) {
            let mut args = p.argv.iter().peekable();
            while let Some(a) = args.next() {
                let value = if a == "-p" {
                    args.peek().map(|s| s.as_str())
                } else if let Some(v) = a.strip_prefix("-p") {
                    Some(v)
                } else if let Some(v) = a.strip_prefix("-oPort=") {
                    Some(v)
                } else if a == "-o" {
                    args.peek().and_then(|s| s.strip_prefix("Port="))
                } else if let Some(rest) = a.strip_prefix("ssh://") {
                    rest.split('/')
                        .next()
                        .and_then(|hp| hp.rsplit_once(':'))
                        .map(|(_, p)| p)
                } else {
                    None
                };
                if let Some(n) = value.and_then(|v| v.parse().ok()) {
                    if !ports.contains(&n) {
                        ports.push(n);
                    }
                }
            }
        }
        ports
    }
}

fn tilde(path: &Path, home: Option<&Path>) -> String {
    match home.and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) if rest.as_os_str().is_empty() => "~".into(),
        Some(rest) => format!("~/{}", rest.display()),
        None => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: u32, name: &str, argv: &[&str]) -> Process {
        Process {
            pid,
            start: 7,
            name: name.into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            exe: Some(format!("/usr/bin/{name}").into()),
            cwd: Some("/home/me/src/coverage".into()),
            pgrp: 8,
            session: 8,
            tty_nr: 0,
            tpgid: -1,
        }
    }

    #[test]
    fn ssh_run_by_git_names_git() {
        let peer = Peer {
            uid: 1000,
            chain: vec![
                proc(
                    10,
                    "ssh",
                    &["ssh", "-p", "2222", "git@github.com", "git-receive-pack"],
                ),
                proc(9, "git", &["git", "push", "origin", "main"]),
                proc(8, "bash", &["bash"]),
            ],
        };
        assert_eq!(
            peer.describe(Some(Path::new("/home/me"))),
            "git push origin main (pid 9, ~/src/coverage) via ssh"
        );
        assert_eq!(peer.tree_root(), Some((9, 7)));
        assert_eq!(peer.ports(), [22, 2222]);
        assert!(peer
            .chain_text()
            .starts_with("ssh ← git ← bash [/usr/bin/ssh]"));
    }

    #[test]
    fn ssh_typed_in_a_shell_names_ssh() {
        let peer = Peer {
            uid: 1000,
            chain: vec![
                proc(10, "ssh", &["ssh", "host"]),
                proc(8, "bash", &["-bash"]),
            ],
        };
        assert_eq!(
            peer.describe(None),
            "ssh host (pid 10, /home/me/src/coverage)"
        );
    }

    #[test]
    fn looks_through_git_ssh_command_wrappers() {
        let peer = Peer {
            uid: 1000,
            chain: vec![
                proc(10, "ssh", &["ssh", "-o", "X=1", "git@h"]),
                proc(
                    9,
                    "sh",
                    &["/bin/sh", "-c", "ssh -o X=1 \"$@\"", "ssh", "git@h"],
                ),
                proc(
                    8,
                    "git",
                    &[
                        "git",
                        "-c",
                        "user.name=me",
                        "-C",
                        "/x",
                        "push",
                        "-q",
                        "origin",
                        "main",
                    ],
                ),
                proc(7, "bash", &["-bash"]),
            ],
        };
        assert_eq!(
            peer.describe(None),
            "git push -q origin main (pid 8, /home/me/src/coverage) via ssh"
        );
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let peer = Peer::read(me, 0);
        assert_eq!(peer.chain[0].pid, me);
        assert!(peer.chain.len() >= 2, "the test runner has a parent");
        assert!(peer.descends_from(peer.chain[1].id()));
        assert!(!peer.descends_from((peer.chain[1].pid, peer.chain[1].start + 1)));
    }
}

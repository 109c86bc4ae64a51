//! What keepout says about a run, composed as lines for the caller to print: the warnings before
//! it, the lines after it, what was undone in the project, and the `--print-policy` document.
//!
//! Guarantees: nothing is printed here; every name, path and destination that came from the
//! sandbox is escaped ([`crate::shown`]); `quiet` leaves out only the summaries (refused, not
//! reachable, decoys read, what the terminal relay dropped), never an ALERT about a decoy's
//! value sent, a limit that stopped the run, or what was undone in the project.

use std::path::Path;

use keepout_sandbox::decoys::{DecoyRead, ReadKind};
use keepout_sandbox::{AfterRun, Mode, Network, Policy};

use crate::{shown, Caller, Error, Outcome};

/// The ALERTs said one by one; the rest are counted.
const ALERTS_SHOWN: usize = 5;
/// The items a summary line names; the rest are counted.
const SUMMARY_SHOWN: usize = 6;
/// The Python start-up files named; the rest are `...`.
const STARTUP_FILES_SHOWN: usize = 5;

/// A warning for each variable the sandbox would pass by default whose value is not UTF-8: it
/// is not passed, and how to give a UTF-8 one.
pub fn unpassable_env(caller: &Caller) -> Vec<String> {
    caller
        .unpassable_defaults()
        .map(|name| {
            format!(
                "keepout: warning: {name} is not passed into the sandbox: its value is not UTF-8 \
                 (set a UTF-8 one with --env {name}=VALUE)"
            )
        })
        .collect()
}

/// The line said when `--home DIR` was made.
pub fn home_made(home: &Path) -> String {
    format!(
        "keepout: made {} (mode 0700) for --home; it is kept between runs",
        shown::path(home)
    )
}

/// The warning said before a run with the host's network.
pub fn host_network(network: &Network) -> Option<&'static str> {
    (*network == Network::Host).then_some(
        "keepout: warning: --net host: the sandbox shares your network, including services on \
         127.0.0.1 and your LAN",
    )
}

/// The warning when a layer the policy counts on is missing from this kernel's Landlock
/// (`abi`: [`keepout_sandbox::landlock_abi`]).
pub fn landlock_warning(abi: i32, network: &Network, mode: Mode) -> Option<String> {
    if abi == 0 {
        Some(
            "keepout: warning: this kernel has no Landlock; the mount namespace is the only \
             filesystem wall (see `keepout doctor`)"
                .into(),
        )
    } else if abi < 6 && (*network == Network::Host || mode == Mode::Landlock) {
        Some(format!(
            "keepout: warning: this kernel's Landlock (ABI {abi}) cannot scope abstract unix \
             sockets or signals: the host's abstract sockets (D-Bus, X11) are reachable from the \
             sandbox{}. Linux 6.12 or later closes this.",
            if mode == Mode::Landlock {
                ""
            } else {
                " with --net"
            }
        ))
    } else {
        None
    }
}

/// The lines after a run of a policy with `network`, in order: an ALERT for each request that
/// carried a decoy (five, then a count), unless `quiet` what was refused, what could not be
/// reached, the decoys read and what the terminal relay dropped, then the pip hint, what a limit
/// did to the run and what was undone in the project ([`after_run`]).
pub fn outcome(outcome: &Outcome, network: &Network, quiet: bool) -> Vec<String> {
    let sent = &outcome.decoys_sent;
    let mut lines: Vec<String> = sent
        .iter()
        .take(ALERTS_SHOWN)
        .map(|s| {
            format!(
                "keepout: ALERT: the code tried to SEND a decoy credential ({}) to {} (in {}, {}): \
                 it is trying to steal credentials. keepout refused that request: the value did \
                 not leave",
                s.decoy,
                shown::text(&s.destination),
                shown::text(&s.place),
                s.form.describe()
            )
        })
        .collect();
    if sent.len() > ALERTS_SHOWN {
        lines.push(format!(
            "keepout: ALERT: and {} more requests carrying decoy credentials, all refused \
             (--report FILE lists them)",
            sent.len() - ALERTS_SHOWN
        ));
    }
    if !quiet {
        let destination = |r: &keepout_net::Refusal| {
            format!(
                "{} ({})",
                shown::text(&r.destination),
                shown::text(&r.brief)
            )
        };
        let refused: Vec<String> = (outcome.refusals.iter())
            .map(|r| format!("connect {}", destination(r)))
            .chain(outcome.refused_syscalls.iter().cloned())
            .collect();
        let unreachable: Vec<String> = outcome.unreachable.iter().map(destination).collect();
        lines.extend(summary("refused", &refused));
        lines.extend(summary("not reachable", &unreachable));
        lines.extend(decoys_line(&outcome.decoys_read, network, !sent.is_empty()));
        lines.extend(
            keepout_sandbox::terminal_filter::summary(&outcome.terminal_dropped)
                .map(|line| format!("keepout: terminal: dropped {line}")),
        );
    }
    if let Some(marker) = &outcome.externally_managed {
        lines.push(format!(
            "keepout: hint: this Python is externally managed ({}; PEP 668), so pip refuses to \
             install into it (externally-managed-environment). Install into a virtual \
             environment in the project instead:\n  \
             keepout run --net pypi -- sh -c 'python3 -m venv .venv && .venv/bin/pip install -e .'",
            shown::path(marker)
        ));
    }
    lines.extend(outcome.stopped.iter().map(|s| format!("keepout: {s}")));
    lines.extend(after_run(&outcome.after));
    lines
}

/// What keepout undid after the run, a line each: what was moved aside, the index flags
/// cleared, the bytecode removed, the Python start-up files written (each is something the run
/// did to the tree, so none is ever left out).
pub fn after_run(after: &AfterRun) -> Vec<String> {
    let mut lines = Vec::new();
    for q in &after.quarantined {
        let (path, why) = (shown::path(&q.path), shown::text(&q.why));
        lines.push(match &q.moved_to {
            Ok(to) => format!(
                "keepout: the sandbox left {path} ({why}); moved it to {}",
                shown::path(to)
            ),
            Err(e) => format!(
                "keepout: WARNING: the sandbox left {path} ({why}) and keepout could not move it \
                 aside ({e}); inspect it before you run git, open an editor or cd there"
            ),
        });
    }
    for f in &after.index_flags {
        let mut what = Vec::new();
        if !f.assume_unchanged.is_empty() {
            let names = shown::text(&f.assume_unchanged.join(", "));
            what.push(format!("assume-unchanged on {names}"));
        }
        if !f.skip_worktree.is_empty() {
            let names = shown::text(&f.skip_worktree.join(", "));
            what.push(format!("skip-worktree on {names}"));
        }
        if f.fsmonitor {
            what.push("a file-system monitor extension".into());
        }
        let (what, index) = (what.join("; "), shown::path(&f.index));
        lines.push(match &f.result {
            Ok(()) => format!(
                "keepout: the sandbox set {what} in {index}, which hides changes from git status \
                 and git diff; cleared"
            ),
            Err(e) => format!(
                "keepout: WARNING: the sandbox set {what} in {index}, which hides changes from git \
                 status and git diff, and clearing failed ({e}); run: git update-index \
                 --no-skip-worktree --no-assume-unchanged PATHS"
            ),
        });
    }
    let removed = after.bytecode_removed.iter().filter(|(_, r)| r.is_ok());
    let (count, first) = (removed.clone().count(), removed.map(|(p, _)| p).next());
    if let Some(first) = first {
        lines.push(format!(
            "keepout: removed {count} bytecode file{} the sandbox wrote in the project (e.g. {}): \
             it would run instead of the source you read; your tools compile their own",
            plural(count),
            shown::path(first)
        ));
    }
    for (path, r) in &after.bytecode_removed {
        if let Err(e) = r {
            lines.push(format!(
                "keepout: WARNING: cannot remove bytecode the sandbox wrote, {} ({e}); delete it \
                 before you import that module",
                shown::path(path)
            ));
        }
    }
    let startup = &after.startup_files;
    if !startup.is_empty() {
        let names: Vec<String> = (startup.iter().take(STARTUP_FILES_SHOWN))
            .map(|p| shown::path(p))
            .collect();
        lines.push(format!(
            "keepout: the sandbox wrote {} Python start-up file{} that run at every start of that \
             environment: {}{} (kept; read them before you use that environment outside keepout)",
            startup.len(),
            plural(startup.len()),
            names.join(", "),
            if startup.len() > STARTUP_FILES_SHOWN {
                ", ..."
            } else {
                ""
            }
        ));
    }
    lines
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `keepout: WHAT N: a · b · ...` (six at most named), or `None` when there are none.
fn summary(what: &str, items: &[String]) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    let more = match items.len().saturating_sub(SUMMARY_SHOWN) {
        0 => String::new(),
        n => format!(" · and {n} more"),
    };
    Some(format!(
        "keepout: {what} {}: {}{more}",
        items.len(),
        items[..items.len().min(SUMMARY_SHOWN)].join(" · ")
    ))
}

/// The line about the decoys that were read: a read is not a theft (pip reads `~/.netrc` on
/// every install), so it says "read", which reads ordinary tools make, and what keepout could
/// see of their values leaving.
fn decoys_line(reads: &[DecoyRead], network: &Network, sent: bool) -> Option<String> {
    if reads.is_empty() {
        return None;
    }
    let items: Vec<String> = reads
        .iter()
        .map(|r| match (r.kind, r.ordinary) {
            (ReadKind::Ordinary, Some(who)) => format!("{} (ordinary: {who})", r.path.display()),
            _ => format!(
                "{} (unexpected: builds and installs do not read it)",
                r.path.display()
            ),
        })
        .collect();
    let values = match (network, sent) {
        (_, true) => "; see the ALERT above",
        (Network::None, _) => "; the sandbox had no network: nothing could be sent",
        (Network::Host, _) => "; with --net host keepout cannot see whether their values left",
        (Network::Proxied { .. }, _) => "; none of their values went out through keepout's proxy",
    };
    Some(format!(
        "keepout: decoys read: {}{values}",
        items.join(" · ")
    ))
}

/// What `--print-policy` prints: the policy as TOML, after a header that says what this
/// kernel (Landlock `landlock_abi`) will enforce; then, with `allow`, where `--net NAMES`
/// reaches, and with `review_store` (`--review`), where the run's writes would go.
pub fn policy_document(
    policy: &Policy,
    landlock_abi: i32,
    allow: Option<&keepout_net::Allowlist>,
    review_store: Option<&Path>,
) -> Result<String, Error> {
    let mut text = policy_header(policy.mode, landlock_abi) + &policy.to_toml()?;
    if let Some(allow) = allow {
        text += &format!(
            "\n# --net {}: through keepout's proxy (HTTP and HTTPS only), to these hosts:\n",
            allow.spec()
        );
        for line in allow.describe() {
            text += &format!("#   {line}\n");
        }
        text += "# never to loopback, private, link-local or this host's own addresses.\n";
    }
    if let Some(store) = review_store {
        text += &format!(
            "\n# --review: the project is an overlay instead, the tree its read-only lower layer;\n\
             # every write goes to {}/reviews/ID, and nothing in the tree is pinned.\n",
            store.display()
        );
    }
    Ok(text)
}

/// The comment lines before the policy's TOML, ending with a blank line.
fn policy_header(mode: Mode, landlock_abi: i32) -> String {
    let landlock = match landlock_abi {
        0 => "not available on this kernel (the mount namespace is the only filesystem wall)"
            .to_string(),
        1..=5 => format!("ABI {landlock_abi}: filesystem rules only (no socket or signal scoping)"),
        n => format!("ABI {n}: filesystem rules, abstract unix socket and signal scoping"),
    };
    let denied: Vec<String> = keepout_sandbox::denied_syscalls()
        .iter()
        .map(|(name, why)| format!("#   {name:<20} {why}"))
        .collect();
    let landlock_mode = if mode == Mode::Landlock {
        "# --mode landlock: there is no new root. Landlock grants what the read-only entries below\n\
         # list for reading; the project is read-only, --rw paths writable; a fresh $HOME and $TMPDIR\n\
         # are made per run. Masks, tmpfs entries and /proc, /dev isolation do not apply.\n"
    } else {
        ""
    };
    format!(
        "{landlock_mode}# keepout sandbox policy. Anything not listed under [[mount]] does not exist inside.\n\
         # mode {mode:?}. Landlock: {landlock}\n\
         # Also: new session, no_new_privs, no capabilities, non-root uid, pid 1 init, dies with keepout.\n\
         # seccomp denies clone with namespace flags, clone3 (ENOSYS), ioctl TIOCSTI/TIOCLINUX,\n\
         # personality changes, x32 and foreign-architecture calls, and:\n{}\n\n",
        denied.join("\n"),
    )
}

#[cfg(test)]
mod tests;

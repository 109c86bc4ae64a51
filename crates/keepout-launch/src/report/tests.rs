use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use keepout_net::{Form, Refusal, RefusalKind, Sent};
use keepout_sandbox::limits::Stopped;
use keepout_sandbox::{Dropped, IndexFlagsCleared, Quarantined};

use super::*;

fn nothing() -> Outcome {
    Outcome::default()
}

fn refusal(destination: &str, brief: &str) -> Refusal {
    Refusal {
        destination: destination.into(),
        reason: format!("{brief} (more)"),
        brief: brief.into(),
        kind: RefusalKind::Policy,
    }
}

fn sent(n: usize) -> Sent {
    Sent {
        destination: format!("evil{n}.example:443"),
        decoy: "~/.netrc".into(),
        place: "the URL".into(),
        form: Form::Base64,
    }
}

fn read(path: &str, ordinary: Option<&'static str>) -> DecoyRead {
    DecoyRead {
        path: path.into(),
        kind: match ordinary {
            Some(_) => ReadKind::Ordinary,
            None => ReadKind::Unexpected,
        },
        ordinary,
    }
}

fn failed(why: &str) -> keepout_sandbox::Error {
    keepout_sandbox::Error::Usage(why.into())
}

#[test]
fn a_quiet_run_with_nothing_to_say_says_nothing() {
    assert!(outcome(&nothing(), &Network::None, false).is_empty());
    assert!(outcome(&nothing(), &Network::None, true).is_empty());
}

#[test]
fn alerts_come_first_five_by_name_and_are_never_quiet() {
    let run = Outcome {
        decoys_sent: (1..=7).map(sent).collect(),
        decoys_read: vec![read("~/.netrc", Some("pip reads it"))],
        refusals: vec![refusal("evil1.example:443", "not allowed")],
        ..nothing()
    };
    let network = Network::Proxied { port: 3128 };
    let lines = outcome(&run, &network, true);
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert_eq!(
        lines[0],
        "keepout: ALERT: the code tried to SEND a decoy credential (~/.netrc) to evil1.example:443 (in the URL, base64-encoded): it is trying to steal credentials. keepout refused that request: the value did not leave"
    );
    assert_eq!(
        lines[5],
        "keepout: ALERT: and 2 more requests carrying decoy credentials, all refused (--report FILE lists them)"
    );
    let lines = outcome(&run, &network, false);
    assert_eq!(
        lines[6..],
        [
            "keepout: refused 1: connect evil1.example:443 (not allowed)",
            "keepout: decoys read: ~/.netrc (ordinary: pip reads it); see the ALERT above",
        ]
    );
}

#[test]
fn summaries_name_six_and_count_the_rest() {
    let run = Outcome {
        refusals: (1..=3)
            .map(|n| refusal(&format!("h{n}:443"), "not allowed"))
            .collect(),
        refused_syscalls: (1..=5).map(|n| format!("call{n}")).collect(),
        unreachable: vec![refusal("gone.example:443", "no address")],
        terminal_dropped: vec![Dropped {
            what: "OSC 52 clipboard write".into(),
            count: 2,
        }],
        ..nothing()
    };
    assert_eq!(
        outcome(&run, &Network::Proxied { port: 3128 }, false),
        [
            "keepout: refused 8: connect h1:443 (not allowed) · connect h2:443 (not allowed) · connect h3:443 (not allowed) · call1 · call2 · call3 · and 2 more",
            "keepout: not reachable 1: gone.example:443 (no address)",
            "keepout: terminal: dropped 2 sequences: OSC 52 clipboard write ×2",
        ]
    );
    assert!(outcome(&run, &Network::None, true).is_empty());
}

#[test]
fn what_came_from_the_sandbox_is_escaped() {
    let run = Outcome {
        refusals: vec![refusal("a\x1b[2Kb:443", "not\nallowed")],
        ..nothing()
    };
    assert_eq!(
        outcome(&run, &Network::Proxied { port: 3128 }, false),
        ["keepout: refused 1: connect a\\e[2Kb:443 (not\\nallowed)"]
    );
}

#[test]
fn the_decoys_line_says_what_keepout_could_see_of_the_values() {
    let reads = [
        read("~/.netrc", Some("pip reads it")),
        read("~/.ssh/id_ed25519", None),
    ];
    let line = |network: &Network| decoys_line(&reads, network, false).unwrap();
    let items = "keepout: decoys read: ~/.netrc (ordinary: pip reads it) · ~/.ssh/id_ed25519 (unexpected: builds and installs do not read it)";
    assert_eq!(
        line(&Network::None),
        format!("{items}; the sandbox had no network: nothing could be sent")
    );
    assert_eq!(
        line(&Network::Host),
        format!("{items}; with --net host keepout cannot see whether their values left")
    );
    assert_eq!(
        line(&Network::Proxied { port: 3128 }),
        format!("{items}; none of their values went out through keepout's proxy")
    );
    assert_eq!(decoys_line(&[], &Network::None, true), None);
}

#[test]
fn the_pip_hint_a_limit_and_what_was_undone_close_the_report_even_when_quiet() {
    let run = Outcome {
        externally_managed: Some("/usr/lib/python3.12/EXTERNALLY-MANAGED".into()),
        stopped: vec![Stopped::MemoryLimit {
            limit: 1 << 30,
            kills: 1,
            command_killed: true,
        }],
        after: AfterRun {
            startup_files: vec!["/p/.venv/x.pth".into()],
            ..AfterRun::default()
        },
        ..nothing()
    };
    assert_eq!(
        outcome(&run, &Network::None, true),
        [
            "keepout: hint: this Python is externally managed (/usr/lib/python3.12/EXTERNALLY-MANAGED; PEP 668), so pip refuses to install into it (externally-managed-environment). Install into a virtual environment in the project instead:\n  keepout run --net pypi -- sh -c 'python3 -m venv .venv && .venv/bin/pip install -e .'",
            "keepout: the sandbox hit its memory limit (1 GiB) and the kernel killed the command (--memory)",
            "keepout: the sandbox wrote 1 Python start-up file that run at every start of that environment: /p/.venv/x.pth (kept; read them before you use that environment outside keepout)",
        ]
    );
}

#[test]
fn what_was_undone_is_a_line_each() {
    let after = AfterRun {
        quarantined: vec![
            Quarantined {
                path: "/p/.git".into(),
                why: "a new git directory".into(),
                moved_to: Ok("/p/.git.keepout-quarantine-1".into()),
            },
            Quarantined {
                path: "/p/.vscode\x1b".into(),
                why: "VS Code: tasks".into(),
                moved_to: Err(failed("busy")),
            },
        ],
        index_flags: vec![
            IndexFlagsCleared {
                index: "/p/.git/index".into(),
                assume_unchanged: vec!["a".into(), "b".into()],
                skip_worktree: vec!["c".into()],
                fsmonitor: true,
                result: Ok(()),
            },
            IndexFlagsCleared {
                index: "/p/.git/index".into(),
                assume_unchanged: Vec::new(),
                skip_worktree: vec!["c".into()],
                fsmonitor: false,
                result: Err(failed("git failed")),
            },
        ],
        bytecode_removed: vec![
            ("/p/kept.pyc".into(), Err(failed("denied"))),
            ("/p/a.pyc".into(), Ok(())),
            ("/p/b.pyc".into(), Ok(())),
        ],
        startup_files: (1..=6)
            .map(|n| PathBuf::from(format!("/p/{n}.pth")))
            .collect(),
    };
    assert_eq!(
        after_run(&after),
        [
            "keepout: the sandbox left /p/.git (a new git directory); moved it to /p/.git.keepout-quarantine-1",
            "keepout: WARNING: the sandbox left /p/.vscode\\e (VS Code: tasks) and keepout could not move it aside (busy); inspect it before you run git, open an editor or cd there",
            "keepout: the sandbox set assume-unchanged on a, b; skip-worktree on c; a file-system monitor extension in /p/.git/index, which hides changes from git status and git diff; cleared",
            "keepout: WARNING: the sandbox set skip-worktree on c in /p/.git/index, which hides changes from git status and git diff, and clearing failed (git failed); run: git update-index --no-skip-worktree --no-assume-unchanged PATHS",
            // The example is one that was removed.
            "keepout: removed 2 bytecode files the sandbox wrote in the project (e.g. /p/a.pyc): it would run instead of the source you read; your tools compile their own",
            "keepout: WARNING: cannot remove bytecode the sandbox wrote, /p/kept.pyc (denied); delete it before you import that module",
            "keepout: the sandbox wrote 6 Python start-up files that run at every start of that environment: /p/1.pth, /p/2.pth, /p/3.pth, /p/4.pth, /p/5.pth, ... (kept; read them before you use that environment outside keepout)",
        ]
    );
    assert!(after_run(&AfterRun::default()).is_empty());
}

#[test]
fn before_the_run() {
    let caller = Caller::new(
        1,
        1,
        None,
        vec![
            ("LANG".into(), std::ffi::OsString::from_vec(vec![0xff])),
            ("ODD".into(), std::ffi::OsString::from_vec(vec![0xff])),
        ],
        "/".into(),
    );
    assert_eq!(
        unpassable_env(&caller),
        ["keepout: warning: LANG is not passed into the sandbox: its value is not UTF-8 (set a UTF-8 one with --env LANG=VALUE)"]
    );
    assert_eq!(
        home_made(Path::new("/h/k\x1b")),
        "keepout: made /h/k\\e (mode 0700) for --home; it is kept between runs"
    );
    assert_eq!(
        host_network(&Network::Host),
        Some("keepout: warning: --net host: the sandbox shares your network, including services on 127.0.0.1 and your LAN")
    );
    assert_eq!(host_network(&Network::Proxied { port: 3128 }), None);
}

#[test]
fn landlock_warnings_say_what_this_kernel_lacks() {
    let proxied = Network::Proxied { port: 3128 };
    assert_eq!(
        landlock_warning(0, &Network::None, Mode::Namespaces).unwrap(),
        "keepout: warning: this kernel has no Landlock; the mount namespace is the only filesystem wall (see `keepout doctor`)"
    );
    assert_eq!(
        landlock_warning(4, &Network::Host, Mode::Namespaces).unwrap(),
        "keepout: warning: this kernel's Landlock (ABI 4) cannot scope abstract unix sockets or signals: the host's abstract sockets (D-Bus, X11) are reachable from the sandbox with --net. Linux 6.12 or later closes this."
    );
    assert_eq!(
        landlock_warning(5, &proxied, Mode::Landlock).unwrap(),
        "keepout: warning: this kernel's Landlock (ABI 5) cannot scope abstract unix sockets or signals: the host's abstract sockets (D-Bus, X11) are reachable from the sandbox. Linux 6.12 or later closes this."
    );
    // Its own network namespace shuts the host's abstract sockets out; ABI 6 scopes them.
    assert_eq!(landlock_warning(5, &proxied, Mode::Namespaces), None);
    assert_eq!(landlock_warning(6, &Network::Host, Mode::Landlock), None);
}

#[test]
fn the_policy_header_says_what_the_kernel_enforces() {
    let header = policy_header(Mode::Namespaces, 6);
    let mut lines = header.lines();
    assert_eq!(
        lines.next(),
        Some(
            "# keepout sandbox policy. Anything not listed under [[mount]] does not exist inside."
        )
    );
    assert_eq!(
        lines.next(),
        Some("# mode Namespaces. Landlock: ABI 6: filesystem rules, abstract unix socket and signal scoping")
    );
    assert!(header.ends_with("\n\n"), "{header}");
    assert!(header.contains("\n#   mount "), "{header}");
    assert!(policy_header(Mode::Namespaces, 3).contains(
        "# mode Namespaces. Landlock: ABI 3: filesystem rules only (no socket or signal scoping)\n"
    ));
    assert!(policy_header(Mode::Namespaces, 0).contains(
        "Landlock: not available on this kernel (the mount namespace is the only filesystem wall)\n"
    ));
    let landlock = policy_header(Mode::Landlock, 6);
    assert!(
        landlock.starts_with("# --mode landlock: there is no new root. Landlock grants what the read-only entries below\n"),
        "{landlock}"
    );
    assert!(landlock.contains("# mode Landlock. "), "{landlock}");
}

#[test]
fn the_policy_document_is_the_header_the_toml_and_what_the_flags_add() {
    let project = tempfile::tempdir().unwrap();
    let config = crate::Config::parse("/c.toml".into(), String::new()).unwrap();
    let caller = Caller::new(1000, 1000, None, Vec::new(), project.path().to_path_buf());
    let mut req = crate::caller_request(vec!["true".into()], caller, &config).unwrap();
    req.toolchains = false;
    let policy = Policy::build(&req).unwrap();
    let plain = policy_document(&policy, 6, None, None).unwrap();
    assert_eq!(
        plain,
        policy_header(Mode::Namespaces, 6) + &policy.to_toml().unwrap()
    );
    let presets = keepout_net::Presets::builtin();
    let allow = keepout_net::Allowlist::parse("example.org", &presets).unwrap();
    let both = policy_document(&policy, 6, Some(&allow), Some(Path::new("/s"))).unwrap();
    assert_eq!(
        both.strip_prefix(&plain).unwrap(),
        "\n# --net example.org: through keepout's proxy (HTTP and HTTPS only), to these hosts:\n\
         #   example.org\n\
         # never to loopback, private, link-local or this host's own addresses.\n\
         \n# --review: the project is an overlay instead, the tree its read-only lower layer;\n\
         # every write goes to /s/reviews/ID, and nothing in the tree is pinned.\n"
    );
}

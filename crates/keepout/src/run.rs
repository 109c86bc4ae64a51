//! `keepout run`: build the policy from the command line, the caller and the config, then run
//! it (through keepout-launch) or print it, and render what came of the run. What is computed
//! here is only what the command line asks; the facts (who calls, the config, the request, the
//! launch's outcome) are keepout-launch's, and every line said about them is said here.

use anyhow::{Context, Result};
use keepout_launch::{Caller, Config, LazyConfig, Outcome, PreparedHome, Resources};
use keepout_sandbox::{Limits, Mode, Network, Policy, RunRequest};

use crate::cli::{ModeArg, ResourceArgs, RunArgs};

pub use keepout_launch::network;

/// A launch error as the CLI carries it: a sandbox error stays one, so that the exit code
/// (126, 127) and the hint are still found by its type.
pub fn lift(e: keepout_launch::Error) -> anyhow::Error {
    match e {
        keepout_launch::Error::Sandbox(e) => e.into(),
        e => e.into(),
    }
}

/// The `--net` presets: the built-in ones plus the user's `[net.presets]`.
pub fn presets() -> Result<keepout_net::Presets> {
    Config::load().and_then(|c| c.presets()).map_err(lift)
}

/// The allowlist for `--net NAMES` (not `host`), from the config's presets.
pub fn allowlist(config: &LazyConfig, spec: &str) -> Result<keepout_net::Allowlist> {
    config.get().and_then(|c| c.allowlist(spec)).map_err(lift)
}

/// `--memory` and `--disk-reserve` as given.
pub fn resources(args: &ResourceArgs) -> Resources {
    Resources {
        memory: args.memory,
        disk_reserve: args.disk_reserve,
    }
}

/// `base` with `--memory` and `--disk-reserve`, or what the config's `[run] memory` and
/// `[run] disk-reserve` say when the flags are absent.
pub fn limits(config: &LazyConfig, args: &ResourceArgs, base: Limits) -> Result<Limits> {
    config
        .get()
        .and_then(|c| c.limits(&resources(args), base))
        .map_err(lift)
}

/// A request for `command` with the caller's facts and the defaults for everything else (see
/// [`keepout_launch::caller_request`]); a variable the sandbox would pass whose value is not
/// UTF-8 is named on stderr.
pub fn caller_request(
    command: Vec<String>,
    caller: Caller,
    config: &LazyConfig,
) -> Result<RunRequest> {
    caller.cwd().map_err(lift)?;
    for name in caller.unpassable_defaults() {
        eprintln!(
            "keepout: warning: {name} is not passed into the sandbox: its value is not UTF-8 \
             (set a UTF-8 one with --env {name}=VALUE)"
        );
    }
    let config = config.get().map_err(lift)?;
    keepout_launch::caller_request(command, caller, config).map_err(lift)
}

/// Build the sandbox request for `keepout run`.
pub fn request(args: &RunArgs, caller: Caller, config: &LazyConfig) -> Result<RunRequest> {
    Ok(RunRequest {
        project: args.project.clone(),
        home: args.home.clone(),
        read_only: args.sandbox.read_only.clone(),
        read_write: args.read_write.clone(),
        toolchains: !args.sandbox.no_toolchains,
        env: args.sandbox.env.clone(),
        network: network(args.sandbox.net.as_deref()),
        mode: match args.mode {
            ModeArg::Namespaces => Mode::Namespaces,
            ModeArg::Landlock => Mode::Landlock,
        },
        limits: limits(
            config,
            &args.sandbox.resources,
            Limits {
                max_processes: args.max_procs,
                tmp_size_mib: args.tmp_size.unwrap_or(Limits::default().tmp_size_mib),
                ..Limits::default()
            },
        )?,
        allow_sockets: args.sockets.clone(),
        ..caller_request(args.command.clone(), caller, config)?
    })
}

/// The caller's effective uid.
pub fn caller_uid() -> u32 {
    keepout_launch::effective_uid()
}

pub fn run(args: RunArgs) -> Result<i32> {
    let config = LazyConfig::new();
    let allow = match args.sandbox.net.as_deref() {
        None | Some("host") => None,
        Some(spec) => Some(allowlist(&config, spec)?),
    };
    let decoys = if args.decoys && !args.print_policy {
        Some(keepout_sandbox::decoys::Decoys::plant().context("cannot plant the decoys")?)
    } else {
        None
    };
    let caller = Caller::current();
    let uid = caller.uid;
    let mut req = request(&args, caller, &config)?;
    if let Some(home) = &args.home {
        prepare_home(home, uid, args.print_policy)?;
    }
    if args.mode == ModeArg::Namespaces {
        let project = req.project.clone().unwrap_or_else(|| req.cwd.clone());
        // Only a speed-up: where it cannot be made (a home that is not this user's, read-only),
        // the sandbox's Python keeps its bytecode in the sandbox's /tmp for the run.
        if let Ok(project) = std::fs::canonicalize(&project) {
            req.bytecode_cache = keepout_launch::bytecode_cache(&project, &req).ok();
        }
    }
    if let Some(d) = &decoys {
        req.home = Some(d.home().to_path_buf());
    }
    let review = if args.review && !args.print_policy {
        let project = args.project.clone().unwrap_or_else(|| req.cwd.clone());
        let project = std::fs::canonicalize(&project)
            .with_context(|| format!("cannot find the project {}", project.display()))?;
        if project.to_str().is_none() {
            // Checked before anything is made: the review's meta.toml (TOML, UTF-8 only) records
            // the project's path, and a review that cannot be recorded must leave nothing behind.
            anyhow::bail!(
                "--review: the project's path {} is not UTF-8, and a review records it in its \
                 meta.toml, which holds only UTF-8 text; rename the directory (or a parent), or \
                 run without --review",
                project.to_string_lossy()
            );
        }
        let review = crate::workspace::store().new_review(&project, &args.command)?;
        req.review = Some(keepout_sandbox::ReviewDirs {
            upper: review.upper(),
            work: review.work(),
        });
        Some(review)
    } else {
        None
    };
    let policy = match Policy::build(&req) {
        Ok(p) => Policy {
            terminal: args.sandbox.terminal.policy(),
            ..p
        },
        Err(e) => {
            if let Some(r) = &review {
                let _ = crate::workspace::store().discard_review(r);
            }
            return Err(e.into());
        }
    };
    drop(req); // the caller's whole environment: not needed any more
    warn_about_landlock(&policy);
    if args.print_policy {
        print!("{}", policy_document(&policy)?);
        if let Some(allow) = &allow {
            println!(
                "\n# --net {}: through keepout's proxy (HTTP and HTTPS only), to these hosts:",
                allow.spec()
            );
            for line in allow.describe() {
                println!("#   {line}");
            }
            println!("# never to loopback, private, link-local or this host's own addresses.");
        }
        if args.review {
            println!(
                "\n# --review: the project is an overlay instead, the tree its read-only lower layer;\n\
                 # every write goes to {}/reviews/ID, and nothing in the tree is pinned.",
                crate::workspace::store().root().display()
            );
        }
        return Ok(0);
    }
    let code = execute(
        &policy,
        allow.as_ref(),
        decoys.as_ref(),
        args.sandbox.report.as_deref(),
        args.sandbox.quiet,
    );
    match (review, code) {
        (Some(review), Ok(code)) => crate::review::after_run(&review, code),
        (Some(review), Err(e)) => {
            let _ = crate::workspace::store().discard_review(&review);
            Err(e)
        }
        (None, code) => code,
    }
}

/// Make sure `--home DIR` is a directory of the caller's (`uid`): made (mode 0700, with its
/// missing parents, said once) when it does not exist yet, unless `dry` (`--print-policy` makes
/// nothing); refused when it is something else or someone else's.
fn prepare_home(home: &std::path::Path, uid: u32, dry: bool) -> Result<()> {
    use keepout_launch::Error as E;
    let shown = crate::shown::path(home);
    match keepout_launch::prepare_home(home, uid, dry) {
        Ok(PreparedHome::Existing) => Ok(()),
        Ok(PreparedHome::Made) => {
            eprintln!("keepout: made {shown} (mode 0700) for --home; it is kept between runs");
            Ok(())
        }
        Err(E::HomeNotDirectory { .. }) => anyhow::bail!(
            "--home {shown} exists and is not a directory: give a directory, or a path that does not exist yet (keepout makes it)"
        ),
        Err(E::HomeNotYours { owner, uid, .. }) => anyhow::bail!(
            "--home {shown} belongs to uid {owner}, not to you (uid {uid}): a sandbox's home must be yours; give another directory"
        ),
        Err(E::HomeMissing { .. }) => anyhow::bail!(
            "--home {shown} does not exist yet; `keepout run` makes it (mode 0700) when it runs"
        ),
        Err(E::HomeUnmakeable { source, .. }) => Err(anyhow::Error::from(source)
            .context(format!("cannot make the --home directory {shown}"))),
        Err(E::HomeUnusable { source, .. }) => {
            Err(anyhow::Error::from(source).context(format!("cannot use --home {shown}")))
        }
        Err(e) => Err(lift(e)),
    }
}

/// Run a built policy (keepout-launch: with keepout's proxy when `allow` is given, watching
/// for the decoys' values), then say what came of it: an ALERT for each request that carried a
/// decoy (always), the lines of what was refused, what could not be reached, which decoys were
/// read and what the terminal relay dropped (unless `quiet`), the JSON `report`, and what was
/// moved aside. Returns the exit code.
pub fn execute(
    policy: &Policy,
    allow: Option<&keepout_net::Allowlist>,
    decoys: Option<&keepout_sandbox::decoys::Decoys>,
    report_path: Option<&std::path::Path>,
    quiet: bool,
) -> Result<i32> {
    if policy.network == Network::Host {
        eprintln!("keepout: warning: --net host: the sandbox shares your network, including services on 127.0.0.1 and your LAN");
    }
    let outcome = keepout_launch::launch(policy, allow, decoys).map_err(lift)?;
    render(&outcome, policy, report_path, quiet)?;
    Ok(outcome.exit_code)
}

/// The lines about a run's outcome, and its `--report` file.
fn render(
    outcome: &Outcome,
    policy: &Policy,
    report_path: Option<&std::path::Path>,
    quiet: bool,
) -> Result<()> {
    let sent = &outcome.decoys_sent;
    // The alarm: never silenced by --quiet.
    for s in sent.iter().take(5) {
        eprintln!(
            "keepout: ALERT: the code tried to SEND a decoy credential ({}) to {} (in {}, {}): it is trying to steal credentials. keepout refused that request: the value did not leave",
            s.decoy,
            crate::shown::text(&s.destination),
            crate::shown::text(&s.place),
            s.form.describe()
        );
    }
    if sent.len() > 5 {
        eprintln!(
            "keepout: ALERT: and {} more requests carrying decoy credentials, all refused (--report FILE lists them)",
            sent.len() - 5
        );
    }
    let refused: Vec<String> = outcome
        .refusals
        .iter()
        .map(|r| {
            format!(
                "connect {} ({})",
                crate::shown::text(&r.destination),
                crate::shown::text(&r.brief)
            )
        })
        .chain(outcome.refused_syscalls.iter().cloned())
        .collect();
    if !quiet {
        if let Some(line) = summary("refused", &refused) {
            eprintln!("{line}");
        }
        let unreachable: Vec<String> = outcome
            .unreachable
            .iter()
            .map(|r| {
                format!(
                    "{} ({})",
                    crate::shown::text(&r.destination),
                    crate::shown::text(&r.brief)
                )
            })
            .collect();
        if let Some(line) = summary("not reachable", &unreachable) {
            eprintln!("{line}");
        }
        if let Some(line) = decoys_line(&outcome.decoys_read, policy, !sent.is_empty()) {
            eprintln!("{line}");
        }
    }
    if let Some(line) = keepout_sandbox::terminal_filter::summary(&outcome.terminal_dropped) {
        if !quiet {
            eprintln!("keepout: terminal: dropped {line}");
        }
    }
    if let Some(path) = report_path {
        let text = outcome.report_json().map_err(lift)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write the report {}", path.display()))?;
    }
    if let Some(marker) = &outcome.externally_managed {
        eprintln!(
            "keepout: hint: this Python is externally managed ({}; PEP 668), so pip refuses to \
             install into it (externally-managed-environment). Install into a virtual \
             environment in the project instead:\n  \
             keepout run --net pypi -- sh -c 'python3 -m venv .venv && .venv/bin/pip install -e .'",
            crate::shown::path(marker)
        );
    }
    for s in &outcome.stopped {
        eprintln!("keepout: {s}");
    }
    render_after_run(&outcome.after);
    Ok(())
}

/// What keepout undid after the run, on stderr, a line each (never silenced by --quiet: each
/// is something the run did to your tree).
pub fn render_after_run(after: &keepout_sandbox::AfterRun) {
    for q in &after.quarantined {
        match &q.moved_to {
            Ok(to) => eprintln!(
                "keepout: the sandbox left {} ({}); moved it to {}",
                crate::shown::path(&q.path),
                crate::shown::text(&q.why),
                crate::shown::path(to)
            ),
            Err(e) => eprintln!(
                "keepout: WARNING: the sandbox left {} ({}) and keepout could not move it aside ({e}); inspect it before you run git, open an editor or cd there",
                crate::shown::path(&q.path),
                crate::shown::text(&q.why)
            ),
        }
    }
    for f in &after.index_flags {
        let mut what = Vec::new();
        if !f.assume_unchanged.is_empty() {
            what.push(format!(
                "assume-unchanged on {}",
                crate::shown::text(&f.assume_unchanged.join(", "))
            ));
        }
        if !f.skip_worktree.is_empty() {
            what.push(format!(
                "skip-worktree on {}",
                crate::shown::text(&f.skip_worktree.join(", "))
            ));
        }
        if f.fsmonitor {
            what.push("a file-system monitor extension".into());
        }
        match &f.result {
            Ok(()) => eprintln!(
                "keepout: the sandbox set {} in {}, which hides changes from git status and git diff; cleared",
                what.join("; "),
                crate::shown::path(&f.index)
            ),
            Err(e) => eprintln!(
                "keepout: WARNING: the sandbox set {} in {}, which hides changes from git status and git diff, and clearing failed ({e}); run: git update-index --no-skip-worktree --no-assume-unchanged PATHS",
                what.join("; "),
                crate::shown::path(&f.index)
            ),
        }
    }
    let removed = after
        .bytecode_removed
        .iter()
        .filter(|(_, r)| r.is_ok())
        .count();
    if removed > 0 {
        let first = &after.bytecode_removed[0].0;
        eprintln!(
            "keepout: removed {removed} bytecode file{} the sandbox wrote in the project (e.g. {}): it would run instead of the source you read; your tools compile their own",
            if removed == 1 { "" } else { "s" },
            crate::shown::path(first)
        );
    }
    for (path, r) in &after.bytecode_removed {
        if let Err(e) = r {
            eprintln!(
                "keepout: WARNING: cannot remove bytecode the sandbox wrote, {} ({e}); delete it before you import that module",
                crate::shown::path(path)
            );
        }
    }
    if !after.startup_files.is_empty() {
        let names: Vec<String> = after
            .startup_files
            .iter()
            .take(5)
            .map(|p| crate::shown::path(p))
            .collect();
        eprintln!(
            "keepout: the sandbox wrote {} Python start-up file{} that run at every start of that environment: {}{} (kept; read them before you use that environment outside keepout)",
            after.startup_files.len(),
            if after.startup_files.len() == 1 { "" } else { "s" },
            names.join(", "),
            if after.startup_files.len() > 5 { ", ..." } else { "" }
        );
    }
}

/// `keepout: WHAT N: a · b · ...` (six at most shown), or `None` when there are none.
fn summary(what: &str, items: &[String]) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    let more = items.len().saturating_sub(6);
    Some(format!(
        "keepout: {what} {}: {}{}",
        items.len(),
        items[..items.len().min(6)].join(" · "),
        if more > 0 {
            format!(" · and {more} more")
        } else {
            String::new()
        }
    ))
}

/// The line about the decoys that were read: a read is not a theft (pip reads `~/.netrc` on
/// every install), so it says "read", which reads ordinary tools make, and what keepout could
/// see of their values leaving.
fn decoys_line(
    reads: &[keepout_sandbox::decoys::DecoyRead],
    policy: &Policy,
    sent: bool,
) -> Option<String> {
    use keepout_sandbox::decoys::ReadKind;
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
    let values = match (&policy.network, sent) {
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

/// Say so when a layer the policy counts on is missing on this kernel.
fn warn_about_landlock(policy: &Policy) {
    let abi = keepout_sandbox::landlock_abi();
    if abi == 0 {
        eprintln!("keepout: warning: this kernel has no Landlock; the mount namespace is the only filesystem wall (see `keepout doctor`)");
    } else if abi < 6 && (policy.network == Network::Host || policy.mode == Mode::Landlock) {
        eprintln!(
            "keepout: warning: this kernel's Landlock (ABI {abi}) cannot scope abstract unix sockets or signals: \
             the host's abstract sockets (D-Bus, X11) are reachable from the sandbox{}. Linux 6.12 or later closes this.",
            if policy.mode == Mode::Landlock { "" } else { " with --net" }
        );
    }
}

/// The policy as TOML, with a header that says what the kernel will enforce.
pub fn policy_document(policy: &Policy) -> Result<String> {
    let support = keepout_sandbox::KernelSupport::probe();
    let landlock = match support.landlock_abi {
        0 => "not available on this kernel (the mount namespace is the only filesystem wall)"
            .to_string(),
        1..=5 => format!(
            "ABI {}: filesystem rules only (no socket or signal scoping)",
            support.landlock_abi
        ),
        n => format!("ABI {n}: filesystem rules, abstract unix socket and signal scoping"),
    };
    let denied: Vec<String> = keepout_sandbox::denied_syscalls()
        .iter()
        .map(|(name, why)| format!("#   {name:<20} {why}"))
        .collect();
    let landlock_mode = if policy.mode == Mode::Landlock {
        "# --mode landlock: there is no new root. Landlock grants what the read-only entries below\n\
         # list for reading; the project is read-only, --rw paths writable; a fresh $HOME and $TMPDIR\n\
         # are made per run. Masks, tmpfs entries and /proc, /dev isolation do not apply.\n"
    } else {
        ""
    };
    Ok(format!(
        "{landlock_mode}# keepout sandbox policy. Anything not listed under [[mount]] does not exist inside.\n\
         # mode {mode:?}. Landlock: {landlock}\n\
         # Also: new session, no_new_privs, no capabilities, non-root uid, pid 1 init, dies with keepout.\n\
         # seccomp denies clone with namespace flags, clone3 (ENOSYS), ioctl TIOCSTI/TIOCLINUX,\n\
         # personality changes, x32 and foreign-architecture calls, and:\n{}\n\n{}",
        denied.join("\n"),
        policy.to_toml()?,
        mode = policy.mode,
    ))
}

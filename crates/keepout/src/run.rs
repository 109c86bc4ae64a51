//! `keepout run`: build the policy from the command line and the caller, then run or print it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use keepout_sandbox::{Limits, Mode, Network, Policy, RunRequest};

use crate::cli::{ModeArg, ResourceArgs, RunArgs};

/// The proxy's port on the sandbox's own loopback (a network namespace of its own: no clash).
const PROXY_PORT: u16 = 3128;

/// The user's config file (`$XDG_CONFIG_HOME/keepout/config.toml`) as a table, with its path;
/// an empty table when there is none.
fn config_table() -> Result<(PathBuf, toml::Table)> {
    let config = keepout_vault::Config::default_path();
    let table = match std::fs::read_to_string(&config) {
        Ok(text) => keepout_vault::parse_config(&config, &text).map_err(anyhow::Error::msg)?,
        Err(_) => toml::Table::new(),
    };
    for (section, known) in KNOWN_KEYS {
        let Some(keys) = table.get(*section).and_then(|t| t.as_table()) else {
            continue;
        };
        let unknown: Vec<&str> = keys
            .keys()
            .map(String::as_str)
            .filter(|k| !known.contains(k))
            .collect();
        if !unknown.is_empty() {
            anyhow::bail!(
                "{}: [{section}] has no setting {} (a typo?); its settings are: {}",
                config.display(),
                unknown.join(", "),
                known.join(", ")
            );
        }
    }
    Ok((config, table))
}

/// The settings `keepout run` reads from its tables of the config: any other key there is a
/// mistake said at once, not a setting silently ignored.
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    ("run", &["toolchains", "memory", "disk-reserve"]),
    ("net", &["presets"]),
];

/// The `--net` presets: the built-in ones plus the user's `[net.presets]`.
pub fn presets() -> Result<keepout_net::Presets> {
    let mut presets = keepout_net::Presets::builtin();
    let (config, table) = config_table()?;
    if let Some(user) = table
        .get("net")
        .and_then(|n| n.get("presets"))
        .map(|p| toml::to_string(p).unwrap_or_default())
    {
        presets.extend(
            keepout_net::Presets::from_toml(&user)
                .with_context(|| format!("{}: [net.presets]", config.display()))?,
        );
    }
    Ok(presets)
}

/// The allowlist for `--net NAMES` (not `host`), from [`presets`].
pub fn allowlist(spec: &str) -> Result<keepout_net::Allowlist> {
    Ok(keepout_net::Allowlist::parse(spec, &presets()?)?)
}

/// Check the whole config the way `keepout run` reads it (TOML, `[net.presets]`,
/// `[run] toolchains`, `memory`, `disk-reserve`) and the vault's part of it (`[[scope]]`,
/// `[vault]`); returns its path.
pub fn check_config() -> Result<PathBuf> {
    let (config, _) = config_table()?;
    allowlist("*")?;
    config_toolchains()?;
    limits(&ResourceArgs::default(), Limits::default())?;
    keepout_vault::Config::load(&config)?;
    Ok(config)
}

/// More toolchain directories from the config, `~` expanded:
/// `[run] toolchains = ["~/opt/zig"]`.
pub fn config_toolchains() -> Result<Vec<PathBuf>> {
    let (config, table) = config_table()?;
    let Some(list) = table.get("run").and_then(|r| r.get("toolchains")) else {
        return Ok(Vec::new());
    };
    let bad = || {
        anyhow::anyhow!(
            "{}: [run] toolchains must be a list of paths, e.g. [\"~/opt/zig\"]",
            config.display()
        )
    };
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut paths = Vec::new();
    for entry in list.as_array().ok_or_else(bad)? {
        let entry = entry.as_str().ok_or_else(bad)?;
        paths.push(match (entry.strip_prefix('~'), &home) {
            (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
                home.join(rest.trim_start_matches('/'))
            }
            _ => PathBuf::from(entry),
        });
    }
    Ok(paths)
}

/// The sandbox's network for `--net SPEC` (none without it).
pub fn network(spec: Option<&str>) -> Network {
    match spec {
        None => Network::None,
        Some("host") => Network::Host,
        Some(_) => Network::Proxied { port: PROXY_PORT },
    }
}

/// A request for `command` with the caller's facts (working directory, environment, home,
/// ids) and the defaults for everything else: no network, a fresh home, the cwd as project,
/// the caller's toolchains (and the config's) read-only.
pub fn caller_request(command: Vec<String>) -> Result<RunRequest> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let mut caller_env: Vec<(String, String)> = Vec::new();
    let mut caller_env_not_utf8: Vec<String> = Vec::new();
    for (k, v) in std::env::vars_os() {
        // A name that is not UTF-8 cannot be named by --env nor be on the allowlist.
        let Ok(k) = k.into_string() else { continue };
        match v.into_string() {
            Ok(v) => caller_env.push((k, v)),
            Err(_) => caller_env_not_utf8.push(k),
        }
    }
    for name in &caller_env_not_utf8 {
        if keepout_sandbox::default_env_allowlist()
            .iter()
            .any(|(allowed, _)| allowed == name)
        {
            eprintln!(
                "keepout: warning: {name} is not passed into the sandbox: its value is not UTF-8 \
                 (set a UTF-8 one with --env {name}=VALUE)"
            );
        }
    }
    let caller_home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/".into());
    Ok(RunRequest {
        command,
        cwd,
        project: None,
        home: None,
        kept_home: None,
        review: None,
        read_only: Vec::new(),
        read_write: Vec::new(),
        toolchains: true,
        extra_toolchains: config_toolchains()?,
        env: Vec::new(),
        network: Network::None,
        mode: Mode::Namespaces,
        limits: Limits::default(),
        caller_env,
        caller_env_not_utf8,
        caller_home,
        caller_uid: caller_uid(),
        caller_gid: rustix::process::getegid().as_raw(),
        allow_sockets: Vec::new(),
        bytecode_cache: None,
    })
}

/// The directory keepout keeps for one project's Python bytecode, made if missing:
/// `$XDG_CACHE_HOME/keepout/pycache/NAME-HASH` (else `~/.cache/...`). The sandbox's Python
/// writes there (`PYTHONPYCACHEPREFIX`) instead of beside the sources, so a run leaves no
/// bytecode in the project and the next run of the same project starts warm. Only sandboxes
/// of this project use it; the host's Python never looks there.
pub fn bytecode_cache(project: &std::path::Path, req: &RunRequest) -> Result<PathBuf> {
    use std::hash::{Hash, Hasher};
    let base = keepout_sandbox::cache_dir(&req.caller_env, &req.caller_home)
        .context("neither XDG_CACHE_HOME nor HOME is set: nowhere to keep the bytecode cache")?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    project.hash(&mut hasher);
    let name = project
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    let dir = base
        .join("keepout/pycache")
        .join(format!("{name}-{:016x}", hasher.finish()));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the bytecode cache {}", dir.display()))?;
    Ok(dir)
}

/// Build the sandbox request for `keepout run`.
pub fn request(args: &RunArgs) -> Result<RunRequest> {
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
            &args.sandbox.resources,
            Limits {
                max_processes: args.max_procs,
                tmp_size_mib: args.tmp_size.unwrap_or(Limits::default().tmp_size_mib),
                ..Limits::default()
            },
        )?,
        allow_sockets: args.sockets.clone(),
        ..caller_request(args.command.clone())?
    })
}

/// `base` with `--memory` and `--disk-reserve`, or what the config's `[run] memory` and
/// `[run] disk-reserve` say when the flags are absent.
pub fn limits(args: &ResourceArgs, base: Limits) -> Result<Limits> {
    let (config, table) = config_table()?;
    let setting = |key: &str| table.get("run").and_then(|r| r.get(key)).cloned();
    let bad = |key: &str, e: String| anyhow::anyhow!("{}: [run] {key}: {e}", config.display());
    let text = |key: &str, v: toml::Value| match v {
        toml::Value::String(s) => Ok(s),
        toml::Value::Integer(n) => Ok(n.to_string()),
        _ => Err(bad(key, "must be a string such as \"4G\" or \"5%\"".into())),
    };
    let memory = match (args.memory, setting("memory")) {
        (Some(m), _) => Some(m),
        (None, Some(v)) => Some(
            keepout_sandbox::limits::parse_size(&text("memory", v)?)
                .map_err(|e| bad("memory", e.to_string()))?,
        ),
        (None, None) => None,
    };
    let disk_reserve = match (args.disk_reserve, setting("disk-reserve")) {
        (Some(r), _) => r,
        (None, Some(v)) => text("disk-reserve", v)?
            .parse()
            .map_err(|e: keepout_sandbox::Error| bad("disk-reserve", e.to_string()))?,
        (None, None) => base.disk_reserve,
    };
    Ok(Limits {
        memory_bytes: memory,
        disk_reserve,
        ..base
    })
}

/// The caller's effective uid.
pub fn caller_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

pub fn run(args: RunArgs) -> Result<i32> {
    let allow = match args.sandbox.net.as_deref() {
        None | Some("host") => None,
        Some(spec) => Some(allowlist(spec)?),
    };
    let decoys = if args.decoys && !args.print_policy {
        Some(keepout_sandbox::decoys::Decoys::plant().context("cannot plant the decoys")?)
    } else {
        None
    };
    let mut req = request(&args)?;
    if let Some(home) = &args.home {
        prepare_home(home, args.print_policy)?;
    }
    if args.mode == ModeArg::Namespaces {
        let project = req.project.clone().unwrap_or_else(|| req.cwd.clone());
        // Only a speed-up: where it cannot be made (a home that is not this user's, read-only),
        // the sandbox's Python keeps its bytecode in the sandbox's /tmp for the run.
        if let Ok(project) = std::fs::canonicalize(&project) {
            req.bytecode_cache = bytecode_cache(&project, &req).ok();
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

/// Make sure `--home DIR` is a directory of the caller's: made (mode 0700, with its missing
/// parents, said once) when it does not exist yet, unless `dry` (`--print-policy` makes
/// nothing); refused when it is something else or someone else's.
fn prepare_home(home: &std::path::Path, dry: bool) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let shown = crate::shown::path(home);
    match std::fs::metadata(home) {
        Ok(m) if !m.is_dir() => anyhow::bail!(
            "--home {shown} exists and is not a directory: give a directory, or a path that does not exist yet (keepout makes it)"
        ),
        Ok(m) if m.uid() != caller_uid() => anyhow::bail!(
            "--home {shown} belongs to uid {}, not to you (uid {}): a sandbox's home must be yours; give another directory",
            m.uid(),
            caller_uid()
        ),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dry {
                anyhow::bail!(
                    "--home {shown} does not exist yet; `keepout run` makes it (mode 0700) when it runs"
                );
            }
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(home)
                .with_context(|| format!("cannot make the --home directory {shown}"))?;
            eprintln!("keepout: made {shown} (mode 0700) for --home; it is kept between runs");
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot use --home {shown}")),
    }
}

/// Run a built policy: with keepout's proxy when `allow` is given (watching for the decoys'
/// values), then an ALERT for each request that carried one (always), the lines of what was
/// refused, what could not be reached, which decoys were read and what the terminal relay
/// dropped (unless `quiet`), the JSON `report`, and what was moved aside. Returns the exit code.
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
    let canaries = keepout_net::Canaries::new(
        &decoys
            .map(|d| d.values())
            .unwrap_or_default()
            .iter()
            .map(|v| keepout_net::Canary {
                name: v.decoy.clone(),
                value: v.value.clone(),
                random: v.random.clone(),
            })
            .collect::<Vec<_>>(),
    );
    let mut proxy: Option<keepout_net::Proxy> = None;
    let report = keepout_sandbox::run_with_egress(policy, &mut |listener| {
        if let Some(allow) = allow {
            proxy = Some(keepout_net::Proxy::start(
                listener,
                allow.clone(),
                keepout_net::own_addresses(),
                canaries.clone(),
            ));
        }
    })?;
    let (unreachable, refusals): (Vec<_>, Vec<_>) = proxy
        .as_ref()
        .map(|p| p.refusals())
        .unwrap_or_default()
        .into_iter()
        .partition(|r| r.kind == keepout_net::RefusalKind::Unreachable);
    let sent = proxy.as_ref().map(|p| p.sent()).unwrap_or_default();
    let decoys_read = decoys.map(|d| d.opened()).unwrap_or_default();
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
    let refused: Vec<String> = refusals
        .iter()
        .map(|r| {
            format!(
                "connect {} ({})",
                crate::shown::text(&r.destination),
                crate::shown::text(&r.brief)
            )
        })
        .chain(report.refused_syscalls.iter().cloned())
        .collect();
    if !quiet {
        if let Some(line) = summary("refused", &refused) {
            eprintln!("{line}");
        }
        let unreachable: Vec<String> = unreachable
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
        if let Some(line) = decoys_line(&decoys_read, policy, !sent.is_empty()) {
            eprintln!("{line}");
        }
    }
    if let Some(line) = keepout_sandbox::terminal_filter::summary(&report.terminal_dropped) {
        if !quiet {
            eprintln!("keepout: terminal: dropped {line}");
        }
    }
    if let Some(path) = report_path {
        #[derive(serde::Serialize)]
        struct Report<'a> {
            version: u32,
            refused: &'a [keepout_net::Refusal],
            unreachable: &'a [keepout_net::Refusal],
            syscalls: &'a [String],
            decoys_read: &'a [keepout_sandbox::decoys::DecoyRead],
            decoys_sent: &'a [keepout_net::Sent],
            terminal_dropped: &'a [keepout_sandbox::Dropped],
        }
        let text = serde_json::to_string_pretty(&Report {
            version: 2,
            refused: &refusals,
            unreachable: &unreachable,
            syscalls: &report.refused_syscalls,
            decoys_read: &decoys_read,
            decoys_sent: &sent,
            terminal_dropped: &report.terminal_dropped,
        })?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write the report {}", path.display()))?;
    }
    let code = report.outcome.exit_code();
    if code != 0 {
        if let Some(marker) = externally_managed_pip(&policy.command, &policy.env) {
            eprintln!(
                "keepout: hint: this Python is externally managed ({}; PEP 668), so pip refuses to \
                 install into it (externally-managed-environment). Install into a virtual \
                 environment in the project instead:\n  \
                 keepout run --net pypi -- sh -c 'python3 -m venv .venv && .venv/bin/pip install -e .'",
                crate::shown::path(&marker)
            );
        }
    }
    for s in &report.stopped {
        eprintln!("keepout: {s}");
    }
    render_after_run(&report.after);
    Ok(code)
}

/// When `command` is `pip install ...` (pip, pip3, pip3.N, or python -m pip) whose Python is
/// externally managed (PEP 668: an `EXTERNALLY-MANAGED` file in its standard library, and not a
/// virtual environment), that file. Only files are looked at; nothing is run.
fn externally_managed_pip(
    command: &[String],
    env: &std::collections::BTreeMap<String, String>,
) -> Option<PathBuf> {
    use std::path::Path;
    let (program, rest) = command.split_first()?;
    let name = Path::new(program).file_name()?.to_str()?;
    let is_python = |n: &str| {
        n.strip_prefix("python")
            .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
    };
    let is_pip = |n: &str| {
        n.strip_prefix("pip")
            .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
    };
    let args: &[String] = if is_pip(name) {
        rest
    } else if is_python(name) && rest.len() >= 2 && rest[0] == "-m" && rest[1] == "pip" {
        &rest[2..]
    } else {
        return None;
    };
    if args.first().map(String::as_str) != Some("install") {
        return None;
    }
    let found = |p: &str| -> Option<PathBuf> {
        if p.contains('/') {
            return Some(PathBuf::from(p));
        }
        env.get("PATH")?
            .split(':')
            .map(|d| Path::new(d).join(p))
            .find(|c| c.is_file())
    };
    let program = found(program)?;
    let python = if is_pip(name) {
        // pip's first line: #!/usr/bin/python3
        let text = std::fs::read(&program).ok()?;
        let first = text.split(|b| *b == b'\n').next()?;
        let line = std::str::from_utf8(first).ok()?.strip_prefix("#!")?;
        PathBuf::from(line.split_whitespace().next()?)
    } else {
        program
    };
    // A virtual environment's Python (bin/python beside ../pyvenv.cfg) is never managed.
    if python
        .parent()
        .and_then(Path::parent)
        .is_some_and(|venv| venv.join("pyvenv.cfg").exists())
    {
        return None;
    }
    let real = std::fs::canonicalize(&python).ok()?;
    let version = real
        .file_name()?
        .to_str()?
        .strip_prefix("python")?
        .to_string();
    let prefix = real.parent()?.parent()?;
    let marker = prefix
        .join("lib")
        .join(format!("python{version}"))
        .join("EXTERNALLY-MANAGED");
    marker.exists().then_some(marker)
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

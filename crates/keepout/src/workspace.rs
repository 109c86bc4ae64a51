//! `keepout try`, `keepout shell` and `keepout workspace`: long-lived sandboxes over
//! keepout-workspace's store. This module parses nothing itself and decides little: it turns
//! the command line into keepout-workspace's requests, starts the sandbox (with keepout's
//! network proxy) where the library's flow asks for a run, and renders what comes back.
//!
//! What this module guarantees: every argument is checked before any work (a wrong one clones
//! nothing and makes no workspace); a clone runs inside the sandbox, never on the host, with no
//! credentials and none of the caller's git configuration, reaching only the source's host over
//! HTTP(S) through keepout's proxy (or, for a local source, no network and the source
//! read-only), and so does the update of a layer's clone of the same source; a clone that fails
//! leaves no workspace behind; the mount points the sandbox made in a home are gone after the
//! run (only those keepout made, only when empty, only when no other run uses the workspace); a
//! second run of a workspace on a layer joins the running sandbox with nothing more than it has;
//! a workspace error is said with its fix ([`keepout_workspace::Error::text`]).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use keepout_sandbox::{EnvRule, Policy, ROOT_CALLER_HOST_ID};
use keepout_workspace::check::Preflight;
use keepout_workspace::clone::{make_clone, NewClone};
use keepout_workspace::home::{self, CopiedLayer, Entry};
use keepout_workspace::listing::human_size;
use keepout_workspace::source::parse_source;
use keepout_workspace::{Store, Workspace};

use keepout_launch::{Caller, LazyConfig};

use crate::cli::{SandboxArgs as WorkspaceSandboxArgs, ShellArgs, TryArgs, WorkspaceAction};
use crate::run;

/// The store, owned as a root caller's sandbox (`nobody` on the host) needs it.
pub fn store() -> Store {
    let store = Store::new(Store::default_root());
    if run::caller_uid() == 0 {
        store.with_owner(ROOT_CALLER_HOST_ID, ROOT_CALLER_HOST_ID)
    } else {
        store
    }
}

/// Who runs this command and the config it reads: made once per command, shared by its checks
/// and its runs (a `try` runs twice: the clone, then the command).
struct Given {
    caller: Caller,
    config: LazyConfig,
}

impl Given {
    fn current() -> Given {
        Given {
            caller: Caller::current(),
            config: LazyConfig::new(),
        }
    }
}

/// Everything a command line asks of a workspace run that can be wrong, checked before any work
/// (a clone, a new workspace): `name` valid and free (when `new_name`), the layer there, the
/// network names known, the `--ro` paths there, `--report`'s directory there, the limits (and
/// the config's) readable.
fn check_before_work(
    store: &Store,
    new_name: Option<&str>,
    layer: Option<&str>,
    opts: &WorkspaceSandboxArgs,
    config: &LazyConfig,
) -> Result<()> {
    let preflight = Preflight {
        new_name,
        layer,
        read_only: &opts.read_only,
        report: opts.report.as_deref(),
    };
    store.check_before_work(
        &preflight,
        || match opts.net.as_deref() {
            None | Some("host") => Ok(()),
            Some(spec) => run::allowlist(config, spec)
                .map(drop)
                .with_context(|| format!("--net {spec}")),
        },
        || run::limits(config, &opts.resources, keepout_sandbox::Limits::default()).map(drop),
    )
}

/// Run `command` in the workspace (in its project, or in its home when `in_project` is false).
fn run_in(
    store: &Store,
    ws: &mut Workspace,
    in_project: bool,
    command: Vec<String>,
    opts: &WorkspaceSandboxArgs,
    extra_env: Vec<EnvRule>,
    given: &Given,
) -> Result<i32> {
    let config = &given.config;
    let lock = match home::enter_or_join(store, ws) {
        Ok(Entry::Own(lock)) => lock,
        Ok(Entry::Join { socket, holder }) => return join(ws, &socket, holder, command, opts),
        Err(e @ keepout_workspace::Error::Busy { .. }) if ws.meta.layer.is_some() => bail!(
            "{}. A workspace on a layer takes one run at a time (overlayfs mounts its home once); \
             `keepout shell NEW --from {}` starts another workspace on the same layer",
            e.text(),
            ws.meta.layer.as_deref().unwrap_or("LAYER")
        ),
        Err(e) => return Err(e.into()),
    };
    let kept = store.kept_home(ws, in_project)?;
    let kept_view = kept.clone();
    store.touch(ws)?;
    let net = opts.net.as_deref();
    let allow = match net {
        None | Some("host") => None,
        Some(spec) => Some(run::allowlist(config, spec)?),
    };
    let mut env = vec![EnvRule::Set(
        "KEEPOUT_WORKSPACE".into(),
        ws.meta.name.clone(),
    )];
    env.extend(extra_env);
    env.extend(opts.env.iter().cloned());
    // Decoys in the home (planted by `try`, or in a layer under it) are watched from outside.
    let decoys = keepout_sandbox::decoys::Decoys::watch(
        &std::iter::once(kept.upper.clone())
            .chain(kept.layers.iter().cloned())
            .collect::<Vec<_>>(),
    )
    .context("cannot watch the workspace's decoys")?;
    let req = keepout_sandbox::RunRequest {
        kept_home: Some(kept),
        read_only: opts.read_only.clone(),
        env,
        network: run::network(net),
        toolchains: !opts.no_toolchains,
        limits: run::limits(config, &opts.resources, keepout_sandbox::Limits::default())?,
        ..run::caller_request(command, given.caller.clone(), config)?
    };
    let policy = Policy {
        terminal: opts.terminal.policy(),
        // A workspace on a layer takes one sandbox at a time: a second run joins this one.
        join_socket: ws.meta.layer.is_some().then(|| home::join_socket(ws)),
        ..Policy::build(&req)?
    };
    drop(req);
    let mount_points = home::mount_points_to_make(&policy, &kept_view);
    let code = run::execute(
        &policy,
        allow.as_ref(),
        Some(&decoys),
        opts.report.as_deref(),
        opts.quiet,
    );
    home::end_run(store, ws, lock, &mount_points);
    code
}

/// A second run of a workspace on a layer, while the first runs: `command` joins the first's
/// sandbox (its namespaces, its home, its network and limits, confined exactly as the first
/// command is), as `docker exec` does. What this run asked for besides its command does not
/// apply; keepout says so.
fn join(
    ws: &Workspace,
    socket: &Path,
    holder: Option<keepout_workspace::Holder>,
    command: Vec<String>,
    opts: &WorkspaceSandboxArgs,
) -> Result<i32> {
    let by = holder
        .map(|h| format!(" (pid {}: {})", h.pid, h.command))
        .unwrap_or_default();
    eprintln!(
        "keepout: workspace {} is running{by}; joining its sandbox: the same home, processes, \
         network and limits, confined as its first command",
        ws.meta.name
    );
    let asked = opts.net.is_some()
        || !opts.env.is_empty()
        || !opts.read_only.is_empty()
        || opts.report.is_some()
        || opts.no_toolchains
        || opts.resources.memory.is_some()
        || opts.resources.disk_reserve.is_some();
    if asked {
        eprintln!(
            "keepout: --net, --env, --ro, --report, --no-toolchains, --memory and --disk-reserve \
             do not apply to a joined command: it has what the running one has"
        );
    }
    let command = home::joining(command);
    keepout_sandbox::join(socket, &command, opts.terminal.policy())
        .with_context(|| format!("joining workspace {}'s running sandbox", ws.meta.name))
}

/// Say that a new workspace starts on a copy of its layer (overlayfs refused), before the copy.
fn say_copied(name: &str) -> impl FnOnce(&CopiedLayer) + '_ {
    move |c| {
        eprintln!(
            "keepout: overlayfs cannot be used here ({}); workspace {name} starts on a copy of layer {} instead",
            c.why, c.layer
        )
    }
}

pub fn try_source(args: TryArgs) -> Result<i32> {
    let store = store();
    let given = Given::current();
    let source = parse_source(&args.source, given.caller.cwd().map_err(run::lift)?)?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => store.free_name(&source.name),
    };
    // The clone's directory: --name's, else the repository's.
    let project = match &args.name {
        Some(n) => n.clone(),
        None => source.name.clone(),
    };
    check_before_work(
        &store,
        Some(&name),
        args.from.as_deref(),
        &args.sandbox,
        &given.config,
    )?;
    let req = NewClone {
        name: &name,
        project: &project,
        source: &source,
        recorded_source: source.recorded(&args.source),
        layer: args.from.as_deref(),
        recursive: args.recursive,
        decoys: !args.no_decoys,
    };
    let mut ws = make_clone(&store, &req, say_copied(&name), |ws, clone| {
        // The clone: inside, with only the source's host (or nothing), no credentials, no
        // hooks, and a global git configuration of its own (not even a layer's).
        let clone_opts = WorkspaceSandboxArgs {
            net: clone.net,
            read_only: clone.read_only,
            quiet: args.sandbox.quiet,
            no_toolchains: args.sandbox.no_toolchains,
            ..WorkspaceSandboxArgs::default()
        };
        eprintln!(
            "keepout: cloning {} into workspace {name}, inside the sandbox{}",
            source.url,
            match &source.net {
                Some(n) => format!(" (network: {n} only)"),
                None => " (no network)".into(),
            }
        );
        match run_in(
            &store,
            ws,
            false,
            clone.command,
            &clone_opts,
            clone.env,
            &given,
        ) {
            Ok(0) => Ok(()),
            Ok(code) => Err(anyhow!(
                "cloning {} failed (git exited {code}); no workspace was kept",
                args.source
            )),
            Err(e) => Err(e.context(format!(
                "cloning {} failed; no workspace was kept",
                args.source
            ))),
        }
    })?;
    eprintln!("keepout: workspace {name} is ready; `keepout shell {name}` comes back to it");
    enter(&store, &mut ws, &args.command, &args.sandbox, &given)
}

/// The command (or a shell) in the workspace's project, with what the user asked for.
fn enter(
    store: &Store,
    ws: &mut Workspace,
    command: &[String],
    opts: &WorkspaceSandboxArgs,
    given: &Given,
) -> Result<i32> {
    let (command, env) = home::entering(command);
    run_in(store, ws, true, command, opts, env, given)
}

pub fn shell(args: ShellArgs) -> Result<i32> {
    let store = store();
    let given = Given::current();
    let mut ws = if store.exists(&args.name) {
        if args.new || args.from.is_some() {
            // A damaged one says so (and how to remove it) rather than just "exists".
            store.workspace(&args.name)?;
            bail!(
                "workspace {} exists already: `keepout shell {}` goes back into it (--new and --from only make new ones)",
                args.name,
                args.name
            );
        }
        check_before_work(&store, None, None, &args.sandbox, &given.config)?;
        store.workspace(&args.name)?
    } else if args.new || args.from.is_some() {
        check_before_work(
            &store,
            Some(&args.name),
            args.from.as_deref(),
            &args.sandbox,
            &given.config,
        )?;
        let ws = home::make_to_enter(
            &store,
            &args.name,
            args.from.as_deref(),
            say_copied(&args.name),
        )?;
        eprintln!(
            "keepout: new workspace {}{}",
            args.name,
            args.from
                .as_deref()
                .map(|l| format!(" on layer {l}"))
                .unwrap_or_default()
        );
        ws
    } else {
        let err = store.workspace(&args.name).err();
        bail!(
            "{}\n`keepout shell {} --new` makes an empty one, `--from LAYER` one on a layer; `keepout try SOURCE` clones into a new one",
            err.map(|e| e.text())
                .unwrap_or_else(|| format!("no workspace {}", args.name)),
            args.name
        );
    };
    enter(&store, &mut ws, &args.command, &args.sandbox, &given)
}

pub fn workspace(action: WorkspaceAction) -> Result<i32> {
    let store = store();
    match action {
        WorkspaceAction::List { json } => list(&store, json),
        WorkspaceAction::Snapshot { workspace, layer } => {
            let made = store.snapshot(&workspace, &layer)?;
            println!(
                "layer {layer} made from workspace {workspace} ({}); workspace {workspace} goes on on top of it.\n\
                 Start on it: keepout try --from {layer} SOURCE   or   keepout shell NEW --from {layer}",
                human_size(keepout_workspace::disk_usage(&made.home()))
            );
            Ok(0)
        }
        WorkspaceAction::Rm {
            names,
            layer,
            force,
            layers,
        } => {
            let removal = keepout_workspace::Removal {
                workspaces: &names,
                layers: &layer,
                with_users: force,
                unused_layers: layers,
            };
            match store.remove_all(&removal, |what| println!("removed {what}")) {
                Err(keepout_workspace::Error::LayerInUse { layer: l, users }) if !force => bail!(
                    "layer {l} is in use by {users}: remove those first (keepout workspace rm WORKSPACE...), \
                     or `keepout workspace rm --layer {l} --force` removes them with it"
                ),
                Ok(0) if layers => println!("no unused layers"),
                other => {
                    other?;
                }
            }
            Ok(0)
        }
    }
}

fn list(store: &Store, json: bool) -> Result<i32> {
    // A damaged workspace is named on stderr; the others are listed all the same.
    let listing = store.listing()?;
    for e in &listing.damaged {
        eprintln!("keepout: {}", e.text());
    }
    let out = if json {
        serde_json::to_string_pretty(&listing.json())?
    } else {
        listing.table().join("\n")
    };
    print_out(&(out + "\n"))?;
    Ok(0)
}

/// Write `text` to standard output at once; a reader that went away (`| head`) ends it
/// quietly: what it did not read it did not want.
pub(crate) fn print_out(text: &str) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::from(e).context("cannot write to standard output"))
        }
        _ => Ok(()),
    }
}

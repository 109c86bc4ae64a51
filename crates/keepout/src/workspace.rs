//! `keepout try`, `keepout shell` and `keepout workspace`: long-lived sandboxes over
//! keepout-workspace's store.
//!
//! What this module guarantees: every argument is checked before any work (a wrong one clones
//! nothing and makes no workspace); a clone runs inside the sandbox, never on the host, with no
//! credentials and none of the caller's git configuration, reaching only the source's host over
//! HTTP(S) through keepout's proxy (or, for a local source, no network and the source
//! read-only), and so does the update of a layer's clone of the same source; a clone that fails
//! leaves no workspace behind; the mount points the sandbox made in a home are gone after the
//! run (only those keepout made, only when empty, only when no other run uses the workspace); a
//! second run of a workspace on a layer joins the running sandbox with nothing more than it has.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use keepout_sandbox::{EnvRule, Policy, ROOT_CALLER_HOST_ID};
use keepout_workspace::{Store, Workspace};

use crate::cli::{ShellArgs, TryArgs, WorkspaceAction, WorkspaceSandboxArgs};
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

/// Where a clone comes from and what the sandbox needs to reach it.
#[derive(Debug, PartialEq)]
struct CloneSource {
    /// What git clones.
    url: String,
    /// The network preset or host the clone needs (`None`: a local path, no network).
    net: Option<String>,
    /// A local source, shown read-only inside.
    local: Option<PathBuf>,
    /// The repository's name, for the workspace and its project.
    name: String,
}

fn repo_name(path: &str) -> String {
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    keepout_workspace::sanitize_name(last.strip_suffix(".git").unwrap_or(last), "repo")
}

fn parse_source(source: &str, cwd: &Path) -> Result<CloneSource> {
    if let Some(rest) = source.strip_prefix("github:") {
        let rest = rest.trim_start_matches('/');
        if rest.split('/').filter(|p| !p.is_empty()).count() != 2 {
            bail!("{source}: the shorthand is github:OWNER/REPO");
        }
        return Ok(CloneSource {
            url: format!("https://github.com/{rest}"),
            net: Some("github".into()),
            local: None,
            name: repo_name(rest),
        });
    }
    for scheme in ["https://", "http://"] {
        if let Some(rest) = source.strip_prefix(scheme) {
            let authority = rest.split('/').next().unwrap_or_default();
            if authority.contains('@') {
                bail!("{source}: no credentials in the URL; keepout clones with none");
            }
            let host = authority.split(':').next().unwrap_or_default();
            if host.is_empty() {
                bail!("{source}: no host in the URL");
            }
            return Ok(CloneSource {
                url: source.into(),
                net: Some(host.to_ascii_lowercase()),
                local: None,
                name: repo_name(rest),
            });
        }
    }
    // scp-like `user@host:path` (a local path starts with / or . or has no colon after an @).
    let scp_like = !source.starts_with(['/', '.'])
        && source
            .split_once('@')
            .is_some_and(|(_, rest)| rest.contains(':'));
    if source.starts_with("ssh://") || source.starts_with("git://") || scp_like {
        bail!(
            "{source}: keepout clones over HTTPS (or from a local path) only: SSH would need your \
             keys, which never enter the sandbox. Use the https:// address"
        );
    }
    let path = source.strip_prefix("file://").unwrap_or(source);
    let path = cwd.join(path);
    let path = std::fs::canonicalize(&path)
        .with_context(|| format!("{source}: no such directory (and not an https:// URL)"))?;
    if !is_repository_or_bundle(&path) {
        bail!(
            "{source} is not a git repository, bundle or URL: nothing was cloned, no workspace was kept. \
             Give a repository's directory, a bare repository, a file made by `git bundle create`, \
             https://HOST/PATH or github:OWNER/REPO"
        );
    }
    Ok(CloneSource {
        url: path.display().to_string(),
        net: None,
        name: repo_name(&path.display().to_string()),
        local: Some(path),
    })
}

/// Does `path` look like something `git clone` takes: a directory with a `.git` (a work tree),
/// a bare repository (`HEAD`, `objects/`, `refs/`), or a git bundle (its first line)? Only
/// names are looked at and a bundle's first bytes read: nothing of the source runs.
fn is_repository_or_bundle(path: &Path) -> bool {
    if path.is_dir() {
        return path.join(".git").exists()
            || (path.join("HEAD").is_file()
                && path.join("objects").is_dir()
                && path.join("refs").is_dir());
    }
    let mut head = [0u8; 16];
    let read = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    [&b"# v2 git bundle"[..], &b"# v3 git bundle"[..]]
        .iter()
        .any(|sig| head[..read].starts_with(sig))
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
) -> Result<()> {
    if let Some(name) = new_name {
        if !keepout_workspace::valid_name(name) {
            return Err(keepout_workspace::Error::BadName(name.into()).into());
        }
        if store.exists(name) {
            // A damaged one says so (and how to remove it) rather than just "exists".
            store.workspace(name)?;
            return Err(keepout_workspace::Error::WorkspaceExists(name.into()).into());
        }
    }
    if let Some(layer) = layer {
        store.layer(layer)?;
    }
    match opts.net.as_deref() {
        None | Some("host") => {}
        Some(spec) => {
            run::allowlist(spec).with_context(|| format!("--net {spec}"))?;
        }
    }
    for path in &opts.read_only {
        if std::fs::symlink_metadata(path).is_err() {
            bail!(
                "--ro {}: no such file or directory (give a path that exists)",
                path.display()
            );
        }
    }
    if let Some(report) = &opts.report {
        let dir = report
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            bail!(
                "--report {}: there is no directory {} to write it in",
                report.display(),
                dir.display()
            );
        }
    }
    run::limits(&opts.resources, keepout_sandbox::Limits::default())?;
    Ok(())
}

/// The directories the sandbox will make in the workspace's home to mount something on (a
/// local source shown read-only under your home, a toolchain), relative to the home, that are
/// not there now (in the home or its layers): parents before children.
fn mount_points_to_make(policy: &Policy, kept: &keepout_sandbox::KeptHome) -> Vec<PathBuf> {
    let exists = |rel: &Path| {
        std::iter::once(&kept.upper)
            .chain(kept.layers.iter())
            .any(|base| std::fs::symlink_metadata(base.join(rel)).is_ok())
    };
    let mut made = Vec::new();
    for mount in &policy.mounts {
        let Ok(rel) = mount.path.strip_prefix(&policy.home_path) else {
            continue;
        };
        let mut missing: Vec<PathBuf> = rel
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .take_while(|a| !exists(a))
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        for m in missing {
            if !made.contains(&m) {
                made.push(m);
            }
        }
    }
    made
}

/// After a run: remove the mount points [`mount_points_to_make`] named from the workspace's
/// home, deepest first, each only if it is still an empty directory, and only when no other run
/// uses the workspace (in another sandbox, one could still be a mount point).
fn remove_mount_points(store: &Store, ws: &Workspace, made: &[PathBuf]) {
    if made.is_empty() {
        return;
    }
    let Ok(Some(_alone)) = store.try_lock_exclusive(ws) else {
        return;
    };
    for rel in made.iter().rev() {
        let path = ws.home().join(rel);
        let empty_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir())
            && std::fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none());
        if empty_dir {
            let _ = std::fs::remove_dir(&path);
        }
    }
}

/// Run `command` in the workspace (in its project, or in its home when `in_project` is false).
fn run_in(
    store: &Store,
    ws: &mut Workspace,
    in_project: bool,
    command: Vec<String>,
    opts: &WorkspaceSandboxArgs,
    extra_env: Vec<EnvRule>,
) -> Result<i32> {
    // Two overlays on one upper directory are not allowed (and the work directory is cleared
    // for each): a workspace on layers is one run's at a time; a plain home may be shared.
    let join_socket = ws.dir.join("join.sock");
    let lock = match store.lock(ws, ws.meta.layer.is_some()) {
        Err(keepout_workspace::Error::Busy { holder, .. })
            if ws.meta.layer.is_some() && appears(&join_socket) =>
        {
            return join(ws, &join_socket, holder, command, opts);
        }
        Err(e @ keepout_workspace::Error::Busy { .. }) if ws.meta.layer.is_some() => bail!(
            "{e}. A workspace on a layer takes one run at a time (overlayfs mounts its home once); \
             `keepout shell NEW --from {}` starts another workspace on the same layer",
            ws.meta.layer.as_deref().unwrap_or("LAYER")
        ),
        other => other?,
    };
    let kept = store.kept_home(ws, in_project)?;
    let kept_view = kept.clone();
    store.touch(ws)?;
    let net = opts.net.as_deref();
    let allow = match net {
        None | Some("host") => None,
        Some(spec) => Some(run::allowlist(spec)?),
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
        limits: run::limits(&opts.resources, keepout_sandbox::Limits::default())?,
        ..run::caller_request(command)?
    };
    let policy = Policy {
        terminal: opts.terminal.policy(),
        // A workspace on a layer takes one sandbox at a time: a second run joins this one.
        join_socket: ws.meta.layer.is_some().then(|| join_socket.clone()),
        ..Policy::build(&req)?
    };
    drop(req);
    let mount_points = mount_points_to_make(&policy, &kept_view);
    let code = run::execute(
        &policy,
        allow.as_ref(),
        Some(&decoys),
        opts.report.as_deref(),
        opts.quiet,
    );
    drop(lock);
    remove_mount_points(store, ws, &mount_points);
    code
}

/// Does `socket` exist, or appear within a few seconds (a run that holds the workspace serves
/// it as soon as its sandbox is set up)?
fn appears(socket: &Path) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        if socket.exists() {
            return true;
        }
        if std::time::Instant::now() > until {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
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
    // The running sandbox's environment is the first command's: SHELL names the shell that
    // this one starts.
    let command = if command == [interactive_shell()] {
        let shell = interactive_shell();
        vec![
            "/usr/bin/env".into(),
            format!("SHELL={shell}"),
            shell.into(),
        ]
    } else {
        command
    };
    keepout_sandbox::join(socket, &command, opts.terminal.policy())
        .with_context(|| format!("joining workspace {}'s running sandbox", ws.meta.name))
}

/// Why layers cannot be mounted where the store is, if they cannot (`KEEPOUT_NO_OVERLAY=1`
/// says so too: for tests, and for a system whose probe misleads).
fn overlay_refused(store: &Store) -> Option<String> {
    if std::env::var_os("KEEPOUT_NO_OVERLAY").is_some_and(|v| v == "1") {
        return Some("KEEPOUT_NO_OVERLAY=1".into());
    }
    let check = keepout_sandbox::kernel::overlay_check(store.root());
    (!check.ok).then_some(check.detail)
}

/// A new workspace on a layer: where overlayfs is refused, it starts on a copy of the layer.
fn on_layer_or_copy(store: &Store, ws: &mut Workspace) -> Result<()> {
    let Some(layer) = ws.meta.layer.clone() else {
        return Ok(());
    };
    if let Some(why) = overlay_refused(store) {
        eprintln!(
            "keepout: overlayfs cannot be used here ({why}); workspace {} starts on a copy of layer {layer} instead",
            ws.meta.name
        );
        store.materialize(ws)?;
    }
    Ok(())
}

/// The interactive shell `shell` and `try` start without a command: bash where there is one,
/// else sh, by its absolute path (the system is the host's, read-only, inside).
fn interactive_shell() -> &'static str {
    ["/bin/bash", "/usr/bin/bash"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("/bin/sh")
}

/// A new workspace's `~/.bashrc`, unless its home brings one (from a layer, or a copy of one):
/// a prompt that names the workspace.
fn write_bashrc(ws: &Workspace, owner: Option<(u32, u32)>) -> Result<()> {
    let path = ws.home().join(".bashrc");
    if ws.meta.layer.is_some() || std::fs::symlink_metadata(&path).is_ok() {
        return Ok(());
    }
    std::fs::write(
        &path,
        "# Written by keepout when this workspace was made; yours to change.\n\
         PS1='(keepout:${KEEPOUT_WORKSPACE}) \\w\\$ '\n",
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// Where the clone goes in a new workspace.
#[derive(Debug, PartialEq)]
enum CloneInto {
    /// A fresh `git clone` into `~/PROJECT`.
    Fresh,
    /// The layer holds `~/PROJECT` already: update it when it is a clone of the same source,
    /// else clone beside it into `~/beside`.
    OverLayer { beside: String },
}

/// The script the clone runs, inside: `$1` the URL, `$2` the project, `$3` where to clone when
/// `$2` is taken by something else (empty: `$2` is free), `$4` `--recurse-submodules` or
/// `--no-recurse-submodules`. git runs with a global configuration of its own, which trusts
/// the local source although the sandbox's user does not own it, no credential helper, no
/// hooks, no fsmonitor.
const CLONE_SH: &str = r#"printf '[safe]\n\tdirectory = *\n' > /tmp/.keepout-clone.gitconfig
export GIT_CONFIG_GLOBAL=/tmp/.keepout-clone.gitconfig
g="git -c credential.helper= -c core.hooksPath=/dev/null -c core.fsmonitor=false -c protocol.file.allow=always"
url=$1 project=$2 beside=$3 recurse=$4
if [ -z "$beside" ]; then
  exec $g clone "$recurse" -- "$url" "$project"
fi
if [ -d "$project/.git" ] && [ "$($g -C "$project" config --get remote.origin.url)" = "$url" ]; then
  echo "keepout: the layer holds a clone of $url at ~/$project: updating it (git fetch, then checkout of the source's HEAD, detached)" >&2
  $g -C "$project" fetch -q -- origin HEAD || exit
  $g -C "$project" checkout -q --detach FETCH_HEAD || exit
  if [ "$recurse" = --recurse-submodules ]; then
    exec $g -C "$project" submodule update -q --init --recursive
  fi
  exit 0
fi
echo "keepout: ~/$project in the layer is not a clone of $url: cloning beside it, into ~/$beside" >&2
exec $g clone "$recurse" -- "$url" "$beside"
"#;

pub fn try_source(args: TryArgs) -> Result<i32> {
    let store = store();
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let source = parse_source(&args.source, &cwd)?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => store.free_name(&source.name),
    };
    // The clone's directory: --name's, else the repository's.
    let project = match &args.name {
        Some(n) => n.clone(),
        None => source.name.clone(),
    };
    check_before_work(&store, Some(&name), args.from.as_deref(), &args.sandbox)?;
    let into = match &args.from {
        Some(layer) if store.layer_entry(layer, Path::new(&project))?.is_some() => {
            let beside = (2..)
                .map(|n| format!("{project}-{n}"))
                .find(|n| {
                    store
                        .layer_entry(layer, Path::new(n))
                        .is_ok_and(|e| e.is_none())
                })
                .expect("some number is free");
            CloneInto::OverLayer { beside }
        }
        _ => CloneInto::Fresh,
    };
    // Built under a hidden name and put under its own only when whole (cloned, decoys in): a
    // try cut off at any point (kill -9 too) leaves no workspace of that name.
    let mut ws = store.create_hidden(
        &name,
        // A local source as an absolute path, so that `workspace list` means it anywhere.
        Some(match &source.local {
            Some(path) => path.display().to_string(),
            None => args.source.clone(),
        }),
        args.from.as_deref(),
        &project,
        false,
    )?;
    if let Err(e) = build(&store, &mut ws, &args, &source, &project, into) {
        let _ = store.discard_hidden(&ws);
        return Err(e);
    }
    if let Err(e) = store.publish(&mut ws) {
        let _ = store.discard_hidden(&ws);
        return Err(e.into());
    }
    eprintln!("keepout: workspace {name} is ready; `keepout shell {name}` comes back to it");
    enter(&store, &mut ws, &args.command, &args.sandbox)
}

/// Fill `try`'s new (still hidden) workspace: the copy of its layer where overlayfs is
/// refused, the shell's rc file, the clone (inside the sandbox), the decoys.
fn build(
    store: &Store,
    ws: &mut Workspace,
    args: &TryArgs,
    source: &CloneSource,
    project: &str,
    into: CloneInto,
) -> Result<()> {
    let name = ws.meta.name.clone();
    let project = project.to_string();
    on_layer_or_copy(store, ws)?;
    write_bashrc(ws, store.owner())?;

    // The clone: inside, with only the source's host (or nothing), no credentials, no hooks,
    // and a global git configuration of its own (not even a layer's).
    let beside = match &into {
        CloneInto::Fresh => String::new(),
        CloneInto::OverLayer { beside } => beside.clone(),
    };
    let clone = vec![
        "sh".to_string(),
        "-c".into(),
        CLONE_SH.into(),
        "keepout-clone".into(),
        source.url.clone(),
        project.clone(),
        beside.clone(),
        if args.recursive {
            "--recurse-submodules".into()
        } else {
            "--no-recurse-submodules".into()
        },
    ];
    let clone_opts = WorkspaceSandboxArgs {
        net: source.net.clone(),
        read_only: source.local.iter().cloned().collect(),
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
    // HOME is the sandbox's empty /tmp for the clone: no dotfile of the workspace or of its
    // layers (a ~/.netrc, a decoy's included) takes part.
    let git_env = vec![
        EnvRule::Set("GIT_TERMINAL_PROMPT".into(), "0".into()),
        EnvRule::Set("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
        EnvRule::Set("HOME".into(), "/tmp".into()),
    ];
    let cloned = run_in(store, ws, false, clone, &clone_opts, git_env);
    match cloned {
        Ok(0) => {}
        other => {
            return Err(match other {
                Ok(code) => anyhow!(
                    "cloning {} failed (git exited {code}); no workspace was kept",
                    args.source
                ),
                Err(e) => e.context(format!(
                    "cloning {} failed; no workspace was kept",
                    args.source
                )),
            });
        }
    }
    // Cloned beside the layer's directory: that is the project now.
    if !beside.is_empty() && std::fs::symlink_metadata(ws.home().join(&beside)).is_ok() {
        store.set_project(ws, &beside)?;
    }
    // The decoys go in after the clone (which looks at no dotfile anyway).
    if !args.no_decoys {
        let tag = format!("{name}-{}", ws.meta.created);
        keepout_sandbox::decoys::plant_into(&ws.home(), &tag, store.owner())
            .context("cannot plant the decoys")?;
    }
    Ok(())
}

/// The command (or a shell) in the workspace's project, with what the user asked for.
fn enter(
    store: &Store,
    ws: &mut Workspace,
    command: &[String],
    opts: &WorkspaceSandboxArgs,
) -> Result<i32> {
    if !command.is_empty() {
        return run_in(store, ws, true, command.to_vec(), opts, Vec::new());
    }
    // SHELL names the shell that runs (the sandbox's default is /bin/sh).
    let shell = interactive_shell();
    let env = vec![EnvRule::Set("SHELL".into(), shell.into())];
    run_in(store, ws, true, vec![shell.into()], opts, env)
}

pub fn shell(args: ShellArgs) -> Result<i32> {
    let store = store();
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
        check_before_work(&store, None, None, &args.sandbox)?;
        store.workspace(&args.name)?
    } else if args.new || args.from.is_some() {
        check_before_work(
            &store,
            Some(&args.name),
            args.from.as_deref(),
            &args.sandbox,
        )?;
        let mut ws = store.create(&args.name, None, args.from.as_deref(), &args.name, true)?;
        if let Err(e) = on_layer_or_copy(&store, &mut ws) {
            let _ = store.remove(&args.name);
            return Err(e);
        }
        write_bashrc(&ws, store.owner())?;
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
            err.map(|e| e.to_string())
                .unwrap_or_else(|| format!("no workspace {}", args.name)),
            args.name
        );
    };
    enter(&store, &mut ws, &args.command, &args.sandbox)
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
            // Every name is checked before anything is removed.
            for name in &names {
                match store.workspace(name) {
                    // A damaged one is removed all the same: that is the way out of it.
                    Ok(_) | Err(keepout_workspace::Error::DamagedWorkspace { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            for l in &layer {
                store.layer(l)?;
            }
            for name in &names {
                store.remove(name)?;
                println!("removed workspace {name}");
            }
            for l in &layer {
                if force {
                    for what in store.remove_layer_and_users(l)? {
                        println!("removed {what}");
                    }
                    continue;
                }
                match store.remove_layer(l) {
                    Err(keepout_workspace::Error::LayerInUse { users, .. }) => bail!(
                        "layer {l} is in use by {users}: remove those first (keepout workspace rm WORKSPACE...), \
                         or `keepout workspace rm --layer {l} --force` removes them with it"
                    ),
                    other => other?,
                }
                println!("removed layer {l}");
            }
            if layers {
                let removed = store.remove_unused_layers()?;
                if removed.is_empty() {
                    println!("no unused layers");
                }
                for l in removed {
                    println!("removed layer {l}");
                }
            }
            Ok(0)
        }
    }
}

fn list(store: &Store, json: bool) -> Result<i32> {
    // A damaged workspace is named on stderr; the others are listed all the same.
    let (workspaces, damaged) = store.workspaces_and_damaged()?;
    for e in &damaged {
        eprintln!("keepout: {e}");
    }
    let layers = store.layers()?;
    let mut out = String::new();
    if json {
        let ws: Vec<serde_json::Value> = workspaces
            .iter()
            .map(|w| {
                serde_json::json!({
                    "name": w.meta.name,
                    "source": w.meta.source,
                    "layer": w.meta.layer,
                    "copied_from": w.meta.copied_from,
                    "project": w.meta.project,
                    "size": keepout_workspace::disk_usage(&w.home()),
                    "created": w.meta.created,
                    "last_used": w.meta.last_used,
                })
            })
            .collect();
        let ls: Vec<serde_json::Value> = layers
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.meta.name,
                    "parent": l.meta.parent,
                    "from_workspace": l.meta.from_workspace,
                    "size": keepout_workspace::disk_usage(&l.home()),
                    "created": l.meta.created,
                })
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "workspaces": ws,
                "layers": ls,
                "damaged": damaged.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            }))?
        )?;
        print_out(&out)?;
        return Ok(0);
    }
    if workspaces.is_empty() && layers.is_empty() && damaged.is_empty() {
        writeln!(out, "no workspaces yet: `keepout try SOURCE` clones into one, `keepout shell NAME --new` makes an empty one")?;
        print_out(&out)?;
        return Ok(0);
    }
    writeln!(
        out,
        "{:<20} {:<36} {:<14} {:>9}  {:<12} LAST USED",
        "WORKSPACE", "SOURCE", "LAYER", "SIZE", "CREATED"
    )?;
    for w in &workspaces {
        writeln!(
            out,
            "{:<20} {:<36} {:<14} {:>9}  {:<12} {}",
            w.meta.name,
            w.meta.source.as_deref().unwrap_or("-"),
            match (&w.meta.layer, &w.meta.copied_from) {
                (Some(l), _) => l.clone(),
                (None, Some(c)) => format!("{c} (copy)"),
                (None, None) => "-".into(),
            },
            human_size(keepout_workspace::disk_usage(&w.home())),
            ago(w.meta.created),
            ago(w.meta.last_used)
        )?;
    }
    if !layers.is_empty() {
        writeln!(
            out,
            "\n{:<20} {:<14} {:<20} {:>9}  CREATED",
            "LAYER", "ON", "FROM WORKSPACE", "SIZE"
        )?;
        for l in &layers {
            writeln!(
                out,
                "{:<20} {:<14} {:<20} {:>9}  {}",
                l.meta.name,
                l.meta.parent.as_deref().unwrap_or("-"),
                l.meta.from_workspace,
                human_size(keepout_workspace::disk_usage(&l.home())),
                ago(l.meta.created)
            )?;
        }
    }
    print_out(&out)?;
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

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn ago(secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let d = now.saturating_sub(secs);
    match d {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", d / 60),
        3600..=86399 => format!("{} h ago", d / 3600),
        _ => format!("{} days ago", d / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        let cwd = Path::new("/");
        let gh = parse_source("github:someone/repro", cwd).unwrap();
        assert_eq!(gh.url, "https://github.com/someone/repro");
        assert_eq!(gh.net.as_deref(), Some("github"));
        assert_eq!(gh.name, "repro");
        let https = parse_source("https://gitlab.com/a/b.git", cwd).unwrap();
        assert_eq!(https.net.as_deref(), Some("gitlab.com"));
        assert_eq!(https.name, "b");
        assert!(parse_source("git@github.com:a/b.git", cwd).is_err());
        assert!(parse_source("git://github.com/a/b", cwd).is_err());
        // A local path may hold an @.
        assert!(parse_source("/nonexistent/repo@v1", cwd)
            .unwrap_err()
            .to_string()
            .contains("no such directory"));
        assert!(parse_source("ssh://github.com/a/b", cwd).is_err());
        assert!(parse_source("https://me:tok@github.com/a/b", cwd).is_err());
        assert!(parse_source("github:onlyowner", cwd).is_err());
        let repo = tempfile::tempdir().unwrap();
        let init = std::process::Command::new("git")
            .args(["init", "-q"])
            .arg(repo.path())
            .status()
            .unwrap();
        assert!(init.success(), "git init");
        let url = format!("file://{}", repo.path().display());
        let local = parse_source(&url, cwd).unwrap();
        assert_eq!(local.local.as_deref(), Some(repo.path()));
        assert_eq!(local.net, None);
        // A directory that is no repository is named as such.
        assert!(parse_source("file:///usr", cwd)
            .unwrap_err()
            .to_string()
            .contains("is not a git repository, bundle or URL"));
        assert!(parse_source("./definitely-not-here", cwd).is_err());
    }
}

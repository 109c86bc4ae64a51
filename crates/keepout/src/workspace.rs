//! `keepout try`, `keepout shell` and `keepout workspace`: long-lived sandboxes over
//! keepout-workspace's store.
//!
//! What this module guarantees: a clone runs inside the sandbox, never on the host, with no
//! credentials and none of the caller's git configuration, reaching only the source's host over
//! HTTP(S) through keepout's proxy (or, for a local source, no network and the source read-only);
//! a clone that fails leaves no workspace behind.

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
    Ok(CloneSource {
        url: path.display().to_string(),
        net: None,
        name: repo_name(&path.display().to_string()),
        local: Some(path),
    })
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
    let _lock = store.lock(ws, ws.meta.layer.is_some())?;
    let kept = store.kept_home(ws, in_project)?;
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
        ..Policy::build(&req)?
    };
    drop(req);
    run::execute(
        &policy,
        allow.as_ref(),
        Some(&decoys),
        opts.report.as_deref(),
        opts.quiet,
    )
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

/// An interactive shell, or the command given.
fn command_or_shell(command: &[String]) -> Vec<String> {
    if !command.is_empty() {
        return command.to_vec();
    }
    let bash = ["/bin/bash", "/usr/bin/bash"]
        .iter()
        .any(|p| Path::new(p).exists());
    vec![if bash { "bash" } else { "sh" }.into()]
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

pub fn try_source(args: TryArgs) -> Result<i32> {
    let store = store();
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let source = parse_source(&args.source, &cwd)?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => store.free_name(&source.name),
    };
    let mut ws = store.create(
        &name,
        // A local source as an absolute path, so that `workspace list` means it anywhere.
        Some(match &source.local {
            Some(path) => path.display().to_string(),
            None => args.source.clone(),
        }),
        args.from.as_deref(),
        &source.name,
        false,
    )?;
    if let Err(e) = on_layer_or_copy(&store, &mut ws) {
        let _ = store.remove(&name);
        return Err(e);
    }
    write_bashrc(&ws, store.owner())?;

    // The clone: inside, with only the source's host (or nothing), no credentials, no hooks,
    // and a global git configuration of its own (not even a layer's), which trusts the local
    // source although the sandbox's user does not own it.
    let mut clone = vec![
        "sh".to_string(),
        "-c".into(),
        "printf '[safe]\\n\\tdirectory = *\\n' > /tmp/.keepout-clone.gitconfig && \
         GIT_CONFIG_GLOBAL=/tmp/.keepout-clone.gitconfig exec git \"$@\""
            .into(),
        "keepout-clone".into(),
        "-c".into(),
        "credential.helper=".into(),
        "-c".into(),
        "core.hooksPath=/dev/null".into(),
        "-c".into(),
        "protocol.file.allow=always".into(),
        "clone".into(),
    ];
    clone.push(if args.recursive {
        "--recurse-submodules".into()
    } else {
        "--no-recurse-submodules".into()
    });
    clone.extend(["--".into(), source.url.clone(), source.name.clone()]);
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
    let cloned = run_in(&store, &mut ws, false, clone, &clone_opts, git_env);
    match cloned {
        Ok(0) => {}
        other => {
            let _ = store.remove(&name);
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
    // The decoys go in after the clone (which looks at no dotfile anyway).
    if !args.no_decoys {
        let tag = format!("{name}-{}", ws.meta.created);
        keepout_sandbox::decoys::plant_into(&ws.home(), &tag, store.owner())
            .context("cannot plant the decoys")?;
    }
    eprintln!("keepout: workspace {name} is ready; `keepout shell {name}` comes back to it");
    enter(&store, &mut ws, &args.command, &args.sandbox)
}

/// The command (or a shell) in the workspace's project, with what the user asked for.
fn enter(
    store: &Store,
    ws: &mut Workspace,
    command: &[String],
    opts: &WorkspaceSandboxArgs,
) -> Result<i32> {
    run_in(store, ws, true, command_or_shell(command), opts, Vec::new())
}

pub fn shell(args: ShellArgs) -> Result<i32> {
    let store = store();
    let mut ws = if store.exists(&args.name) {
        if args.new || args.from.is_some() {
            bail!(
                "workspace {} exists already: `keepout shell {}` goes back into it (--new and --from only make new ones)",
                args.name,
                args.name
            );
        }
        store.workspace(&args.name)?
    } else if args.new || args.from.is_some() {
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
        WorkspaceAction::Rm { names, layers } => {
            for name in &names {
                store.remove(name)?;
                println!("removed workspace {name}");
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
    let workspaces = store.workspaces()?;
    let layers = store.layers()?;
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
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"workspaces": ws, "layers": ls}))?
        );
        return Ok(0);
    }
    if workspaces.is_empty() && layers.is_empty() {
        println!("no workspaces yet: `keepout try SOURCE` clones into one, `keepout shell NAME --new` makes an empty one");
        return Ok(0);
    }
    println!(
        "{:<20} {:<36} {:<14} {:>9}  {:<12} LAST USED",
        "WORKSPACE", "SOURCE", "LAYER", "SIZE", "CREATED"
    );
    for w in &workspaces {
        println!(
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
        );
    }
    if !layers.is_empty() {
        println!(
            "\n{:<20} {:<14} {:<20} {:>9}  CREATED",
            "LAYER", "ON", "FROM WORKSPACE", "SIZE"
        );
        for l in &layers {
            println!(
                "{:<20} {:<14} {:<20} {:>9}  {}",
                l.meta.name,
                l.meta.parent.as_deref().unwrap_or("-"),
                l.meta.from_workspace,
                human_size(keepout_workspace::disk_usage(&l.home())),
                ago(l.meta.created)
            );
        }
    }
    Ok(0)
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
        let local = parse_source("file:///usr", cwd).unwrap();
        assert_eq!(local.local.as_deref(), Some(Path::new("/usr")));
        assert_eq!(local.net, None);
        assert!(parse_source("./definitely-not-here", cwd).is_err());
    }
}

//! A workspace's home around a run: what keepout writes in it and takes out of it again.
//!
//! What this module guarantees: a new workspace's `~/.bashrc` is written only where its home brings
//! none (from a layer, or a copy of one) and is owned by the sandbox's owner; the mount points the
//! sandbox makes in a home are named before the run ([`mount_points_to_make`]) and removed after it
//! ([`end_run`], [`remove_mount_points`]), only those, only when still empty, only when no other
//! run uses the workspace; a new workspace on a layer where overlayfs is refused starts on a copy
//! of the layer ([`on_layer_or_copy`]), and one made to enter by hand is removed when that copy
//! fails ([`make_to_enter`]); entering a workspace without a command starts the interactive shell
//! ([`interactive_shell`]: bash where there is one, else sh) with `SHELL` naming it, whether the
//! run starts a sandbox ([`entering`]) or joins a running one ([`joining`]); a run in a workspace
//! on a layer either holds it alone or joins the sandbox of the run that does ([`enter_or_join`]),
//! a plain home is shared.

use std::path::{Path, PathBuf};

use keepout_sandbox::{EnvRule, KeptHome, Policy};

use std::time::{Duration, Instant};

use crate::{Error, Holder, NewWorkspace, Result, Store, Workspace, WorkspaceLock};

/// The directories the sandbox will make in the workspace's home to mount something on (a
/// local source shown read-only under your home, a toolchain), relative to the home, that are
/// not there now (in the home or its layers): parents before children.
pub fn mount_points_to_make(policy: &Policy, kept: &KeptHome) -> Vec<PathBuf> {
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
pub fn remove_mount_points(store: &Store, ws: &Workspace, made: &[PathBuf]) {
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

/// The end of a run that held `lock`: the workspace is let go first, then the mount points the
/// run made are removed ([`remove_mount_points`]: the run's own lock would otherwise count as
/// another run using the workspace, and none would go).
pub fn end_run(store: &Store, ws: &Workspace, lock: WorkspaceLock, made: &[PathBuf]) {
    drop(lock);
    remove_mount_points(store, ws, made);
}

/// Why layers cannot be mounted where the store is, if they cannot (`KEEPOUT_NO_OVERLAY=1`
/// says so too: for tests, and for a system whose probe misleads).
pub fn overlay_refused(store: &Store) -> Option<String> {
    if std::env::var_os("KEEPOUT_NO_OVERLAY").is_some_and(|v| v == "1") {
        return Some("KEEPOUT_NO_OVERLAY=1".into());
    }
    let check = keepout_sandbox::kernel::overlay_check(store.root());
    (!check.ok).then_some(check.detail)
}

/// A new workspace on a layer where overlayfs is refused: it was made a copy of the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedLayer {
    /// The layer it copied.
    pub layer: String,
    /// Why overlayfs cannot be used ([`overlay_refused`]).
    pub why: String,
}

/// A new workspace on a layer: where overlayfs is refused, it starts on a copy of the layer
/// (returned, for the caller to say so); elsewhere, and off layers, nothing is done. `before`
/// runs just before the copy is made (it can take a while: the caller says why now).
pub fn on_layer_or_copy(
    store: &Store,
    ws: &mut Workspace,
    before: impl FnOnce(&CopiedLayer),
) -> Result<Option<CopiedLayer>> {
    let Some(layer) = ws.meta.layer.clone() else {
        return Ok(None);
    };
    let Some(why) = overlay_refused(store) else {
        return Ok(None);
    };
    let copied = CopiedLayer { layer, why };
    before(&copied);
    store.materialize(ws)?;
    Ok(Some(copied))
}

/// A new workspace to work in by hand (`keepout shell NAME --new`, `--from LAYER`): under its
/// name at once, its project `~/NAME` made, on a copy of its layer where overlayfs is refused
/// (`on_copy` is told first); a copy that fails removes it. Then its `~/.bashrc`.
pub fn make_to_enter(
    store: &Store,
    name: &str,
    layer: Option<&str>,
    on_copy: impl FnOnce(&CopiedLayer),
) -> Result<Workspace> {
    let mut new = NewWorkspace::published(store, name, None, layer, name, true)?;
    on_layer_or_copy(store, new.workspace(), on_copy)?;
    let ws = new.commit();
    write_bashrc(&ws, store.owner())?;
    Ok(ws)
}

/// What a new workspace's `~/.bashrc` says: a prompt that names the workspace.
const BASHRC: &str = "# Written by keepout when this workspace was made; yours to change.\n\
                      PS1='(keepout:${KEEPOUT_WORKSPACE}) \\w\\$ '\n";

/// A new workspace's `~/.bashrc`, unless its home brings one (from a layer, or a copy of one):
/// a prompt that names the workspace, owned by `owner` (the store's) where given.
pub fn write_bashrc(ws: &Workspace, owner: Option<(u32, u32)>) -> Result<()> {
    let path = ws.home().join(".bashrc");
    if ws.meta.layer.is_some() || std::fs::symlink_metadata(&path).is_ok() {
        return Ok(());
    }
    std::fs::write(&path, BASHRC).map_err(|cause| Error::Bashrc {
        path: path.clone(),
        cause,
    })?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(Error::Chown)?;
    }
    Ok(())
}

/// How a run in a workspace goes.
#[derive(Debug)]
pub enum Entry {
    /// In a sandbox of its own, holding the workspace's lock until the run ends.
    Own(WorkspaceLock),
    /// Into the running sandbox that `socket` serves, as `docker exec` does.
    Join {
        socket: PathBuf,
        holder: Option<Holder>,
    },
}

/// Where a run in a workspace on a layer serves its sandbox, for a second run to join.
pub fn join_socket(ws: &Workspace) -> PathBuf {
    ws.dir.join("join.sock")
}

/// Take `ws` for a run. Two overlays on one upper directory are not allowed (and the work
/// directory is cleared for each): a workspace on layers is one run's at a time, and a second
/// run joins the first's sandbox once it serves it (within a few seconds of its start); a plain
/// home may be shared. [`Error::Busy`]: a workspace on a layer whose holder serves no sandbox.
pub fn enter_or_join(store: &Store, ws: &Workspace) -> Result<Entry> {
    enter_or_join_within(store, ws, Duration::from_secs(3))
}

fn enter_or_join_within(store: &Store, ws: &Workspace, wait: Duration) -> Result<Entry> {
    let layered = ws.meta.layer.is_some();
    let socket = join_socket(ws);
    match store.lock(ws, layered) {
        Ok(lock) => Ok(Entry::Own(lock)),
        Err(Error::Busy { holder, .. }) if layered && appears(&socket, wait) => {
            Ok(Entry::Join { socket, holder })
        }
        Err(e) => Err(e),
    }
}

/// Does `socket` exist, or appear within `wait` (a run that holds the workspace serves it as
/// soon as its sandbox is set up)?
fn appears(socket: &Path, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    loop {
        if socket.exists() {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The interactive shell `shell` and `try` start without a command: bash where there is one,
/// else sh, by its absolute path (the system is the host's, read-only, inside).
pub fn interactive_shell() -> &'static str {
    ["/bin/bash", "/usr/bin/bash"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("/bin/sh")
}

/// What entering a workspace runs, and the environment it adds: `command` as it is, or, without
/// one, the interactive shell with `SHELL` naming it (the sandbox's default is /bin/sh).
pub fn entering(command: &[String]) -> (Vec<String>, Vec<EnvRule>) {
    if !command.is_empty() {
        return (command.to_vec(), Vec::new());
    }
    let shell = interactive_shell();
    (
        vec![shell.into()],
        vec![EnvRule::Set("SHELL".into(), shell.into())],
    )
}

/// What a second run on a layer runs in the first's sandbox: `command` as it is, except the
/// interactive shell, which `/usr/bin/env` starts with `SHELL` naming it (the running sandbox's
/// environment is the first command's).
pub fn joining(command: Vec<String>) -> Vec<String> {
    let shell = interactive_shell();
    if command == [shell] {
        vec![
            "/usr/bin/env".into(),
            format!("SHELL={shell}"),
            shell.into(),
        ]
    } else {
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bashrc_only_where_the_home_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path());
        let ws = s.create("w", None, None, "w", true).unwrap();
        write_bashrc(&ws, None).unwrap();
        let rc = std::fs::read_to_string(ws.home().join(".bashrc")).unwrap();
        assert!(
            rc.contains("PS1='(keepout:${KEEPOUT_WORKSPACE}) \\w\\$ '"),
            "{rc}"
        );
        std::fs::write(ws.home().join(".bashrc"), "mine").unwrap();
        write_bashrc(&ws, None).unwrap();
        assert_eq!(
            std::fs::read_to_string(ws.home().join(".bashrc")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn made_to_enter_with_its_project_and_rc_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path());
        let ws = make_to_enter(&s, "w", None, |_| panic!("no layer")).unwrap();
        assert!(s.exists("w"));
        assert!(ws.home().join("w").is_dir());
        assert!(ws.home().join(".bashrc").is_file());
        assert!(matches!(
            make_to_enter(&s, "w", None, |_| {}),
            Err(Error::WorkspaceExists(_))
        ));
    }

    #[test]
    fn off_a_layer_nothing_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path());
        let mut ws = s.create("w", None, None, "w", true).unwrap();
        let copied = on_layer_or_copy(&s, &mut ws, |_| panic!("no copy")).unwrap();
        assert_eq!(copied, None);
    }

    #[test]
    fn entering_without_a_command_starts_the_shell_with_shell_set() {
        let shell = interactive_shell();
        assert!(Path::new(shell).is_absolute());
        let (command, env) = entering(&[]);
        assert_eq!(command, vec![shell.to_string()]);
        assert_eq!(env, vec![EnvRule::Set("SHELL".into(), shell.into())]);
    }

    #[test]
    fn entering_with_a_command_runs_it_as_it_is() {
        let given = vec!["make".to_string(), "test".to_string()];
        assert_eq!(entering(&given), (given.clone(), Vec::new()));
    }

    #[test]
    fn joining_names_the_shell_only_for_the_shell() {
        let shell = interactive_shell();
        assert_eq!(
            joining(vec![shell.into()]),
            vec![
                "/usr/bin/env".to_string(),
                format!("SHELL={shell}"),
                shell.to_string()
            ]
        );
        let other = vec!["ls".to_string(), shell.to_string()];
        assert_eq!(joining(other.clone()), other);
    }

    fn workspace_in(dir: &Path, layer: Option<&str>) -> Workspace {
        Workspace {
            dir: dir.to_path_buf(),
            meta: crate::WorkspaceMeta {
                version: 1,
                name: "w".into(),
                source: None,
                layer: layer.map(str::to_string),
                copied_from: None,
                project: "p".into(),
                created: 0,
                last_used: 0,
            },
        }
    }

    #[test]
    fn a_plain_home_is_shared_by_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let ws = workspace_in(dir.path(), None);
        let first = enter_or_join(&store, &ws).unwrap();
        assert!(matches!(first, Entry::Own(_)));
        assert!(matches!(enter_or_join(&store, &ws).unwrap(), Entry::Own(_)));
    }

    #[test]
    fn a_second_run_on_a_layer_joins_or_is_told_it_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let ws = workspace_in(dir.path(), Some("l"));
        let first = enter_or_join(&store, &ws).unwrap();
        assert!(matches!(first, Entry::Own(_)));
        let wait = Duration::from_millis(100);
        assert!(matches!(
            enter_or_join_within(&store, &ws, wait),
            Err(Error::Busy { .. })
        ));
        std::fs::write(join_socket(&ws), "").unwrap();
        match enter_or_join_within(&store, &ws, wait).unwrap() {
            Entry::Join { socket, holder } => {
                assert_eq!(socket, dir.path().join("join.sock"));
                assert_eq!(holder.map(|h| h.pid), Some(std::process::id()));
            }
            Entry::Own(_) => panic!("the workspace is held"),
        }
        drop(first);
        assert!(matches!(enter_or_join(&store, &ws).unwrap(), Entry::Own(_)));
    }

    #[test]
    fn a_run_ends_by_removing_its_empty_mount_points_unless_another_uses_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let ws = workspace_in(dir.path(), None);
        let made = vec![PathBuf::from("a"), PathBuf::from("a/b"), PathBuf::from("c")];
        let make = || {
            for rel in &made {
                std::fs::create_dir_all(ws.home().join(rel)).unwrap();
            }
        };
        make();
        std::fs::write(ws.home().join("c/kept"), "x").unwrap();

        let other = store.lock(&ws, false).unwrap();
        end_run(&store, &ws, store.lock(&ws, false).unwrap(), &made);
        assert!(ws.home().join("a/b").is_dir(), "another run still uses it");

        drop(other);
        end_run(&store, &ws, store.lock(&ws, false).unwrap(), &made);
        assert!(!ws.home().join("a").exists(), "empty, deepest first");
        assert!(ws.home().join("c/kept").exists(), "not empty: left alone");
    }
}

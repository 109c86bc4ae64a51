//! `keepout try`'s new workspace: the clone into it, run by the caller inside the sandbox.
//!
//! What this module guarantees: the workspace is built under a hidden name and put under its
//! own only when whole (its layer copied where overlayfs is refused, its rc file written,
//! cloned, the decoys in): a `try` that fails or is cut off at any point (kill -9 too) leaves no
//! workspace of that name ([`crate::NewWorkspace`]). The clone's command line gives git a global
//! configuration of its own, no credential helper, no hooks and no fsmonitor, HOME an empty
//! directory, and the network of the source's host only (none for a local source, which is
//! shown read-only); this crate never starts the sandbox: the caller runs [`CloneRun`].

use std::path::{Path, PathBuf};

use keepout_sandbox::EnvRule;

use crate::home::{on_layer_or_copy, write_bashrc, CopiedLayer};
use crate::source::CloneSource;
use crate::{Error, NewWorkspace, Result, Store, Workspace};

/// Where the clone goes in a new workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloneInto {
    /// A fresh `git clone` into `~/PROJECT`.
    Fresh,
    /// The layer holds `~/PROJECT` already: update it when it is a clone of the same source,
    /// else clone beside it into `~/beside`.
    OverLayer { beside: String },
}

impl CloneInto {
    /// Where a clone into `~/project` of a new workspace on `layer` (if any) goes: beside a
    /// `project` the layer holds already, at the first free `project-N`.
    pub fn for_project(store: &Store, layer: Option<&str>, project: &str) -> Result<CloneInto> {
        match layer {
            Some(layer) if store.layer_entry(layer, Path::new(project))?.is_some() => {
                let beside = (2..)
                    .map(|n| format!("{project}-{n}"))
                    .find(|n| {
                        store
                            .layer_entry(layer, Path::new(n))
                            .is_ok_and(|e| e.is_none())
                    })
                    .expect("some number is free");
                Ok(CloneInto::OverLayer { beside })
            }
            _ => Ok(CloneInto::Fresh),
        }
    }

    /// The directory the clone goes to instead of the project, if any.
    pub fn beside(&self) -> Option<&str> {
        match self {
            CloneInto::Fresh => None,
            CloneInto::OverLayer { beside } => Some(beside),
        }
    }
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

/// The command the sandbox runs (in the new workspace's home) to clone `source` into
/// `~/project`, or to update or clone beside what the layer holds there (`into`).
pub fn clone_command(
    source: &CloneSource,
    project: &str,
    into: &CloneInto,
    recursive: bool,
) -> Vec<String> {
    vec![
        "sh".to_string(),
        "-c".into(),
        CLONE_SH.into(),
        "keepout-clone".into(),
        source.url.clone(),
        project.to_string(),
        into.beside().unwrap_or_default().to_string(),
        if recursive {
            "--recurse-submodules".into()
        } else {
            "--no-recurse-submodules".into()
        },
    ]
}

/// The environment the clone runs with: no prompt for a password, no system git configuration,
/// and HOME the sandbox's empty /tmp, so that no dotfile of the workspace or of its layers (a
/// `~/.netrc`, a decoy's included) takes part.
pub fn clone_env() -> Vec<EnvRule> {
    vec![
        EnvRule::Set("GIT_TERMINAL_PROMPT".into(), "0".into()),
        EnvRule::Set("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
        EnvRule::Set("HOME".into(), "/tmp".into()),
    ]
}

/// What `keepout try` makes: a workspace `name` whose project `~/project` is a clone of
/// `source`, on `layer` if given.
#[derive(Debug, Clone)]
pub struct NewClone<'a> {
    pub name: &'a str,
    pub project: &'a str,
    pub source: &'a CloneSource,
    /// What the workspace records as its source ([`CloneSource::recorded`]).
    pub recorded_source: String,
    pub layer: Option<&'a str>,
    /// Clone the submodules too.
    pub recursive: bool,
    /// Plant the decoys (after the clone, which looks at no dotfile anyway).
    pub decoys: bool,
}

/// The clone, for the caller to run inside the sandbox, in the new workspace's home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneRun {
    pub command: Vec<String>,
    /// Its environment ([`clone_env`]).
    pub env: Vec<EnvRule>,
    /// The only network it may reach ([`CloneSource::net`]; `None`: none).
    pub net: Option<String>,
    /// What it sees read-only besides the system: a local source.
    pub read_only: Vec<PathBuf>,
}

/// Make `req`'s workspace: hidden until whole, then published and returned. `on_copy` is told
/// when it starts on a copy of its layer (overlayfs refused), before the copy is made;
/// `run_clone` runs the clone inside the sandbox, an error of its own when it failed.
pub fn make_clone<E: From<Error>>(
    store: &Store,
    req: &NewClone,
    on_copy: impl FnOnce(&CopiedLayer),
    run_clone: impl FnOnce(&mut Workspace, CloneRun) -> std::result::Result<(), E>,
) -> std::result::Result<Workspace, E> {
    let into = CloneInto::for_project(store, req.layer, req.project)?;
    let mut new = NewWorkspace::hidden(
        store,
        req.name,
        Some(req.recorded_source.clone()),
        req.layer,
        req.project,
        false,
    )?;
    let ws = new.workspace();
    on_layer_or_copy(store, ws, on_copy)?;
    write_bashrc(ws, store.owner())?;
    run_clone(
        ws,
        CloneRun {
            command: clone_command(req.source, req.project, &into, req.recursive),
            env: clone_env(),
            net: req.source.net.clone(),
            read_only: req.source.local.iter().cloned().collect(),
        },
    )?;
    // Cloned beside the layer's directory: that is the project now.
    if let Some(beside) = into.beside() {
        if std::fs::symlink_metadata(ws.home().join(beside)).is_ok() {
            store.set_project(ws, beside)?;
        }
    }
    if req.decoys {
        let tag = format!("{}-{}", ws.meta.name, ws.meta.created);
        keepout_sandbox::decoys::plant_into(&ws.home(), &tag, store.owner())
            .map_err(Error::Decoys)?;
    }
    new.publish()?;
    Ok(new.commit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> CloneSource {
        CloneSource {
            url: "https://h/r".into(),
            net: Some("h".into()),
            local: None,
            name: "r".into(),
        }
    }

    fn request<'a>(source: &'a CloneSource, layer: Option<&'a str>) -> NewClone<'a> {
        NewClone {
            name: "w",
            project: "r",
            source,
            recorded_source: "github:o/r".into(),
            layer,
            recursive: false,
            decoys: false,
        }
    }

    #[test]
    fn a_clone_that_fails_leaves_no_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path());
        let source = source();
        let made = make_clone(
            &s,
            &request(&source, None),
            |_| {},
            |ws, run| {
                assert!(!s.exists("w"), "hidden while it is cloned");
                assert_eq!(run.net.as_deref(), Some("h"));
                std::fs::create_dir(ws.home().join("r")).unwrap();
                Err(Error::LayerExists("clone failed".into()))
            },
        );
        assert!(matches!(made, Err(Error::LayerExists(_))));
        assert!(!s.exists("w"));
        assert_eq!(
            std::fs::read_dir(s.root().join("workspaces"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn a_clone_that_works_is_published_with_its_rc_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path());
        let source = source();
        let ws = make_clone(
            &s,
            &request(&source, None),
            |_| {},
            |ws, run| {
                assert_eq!(run.command[6], "", "a fresh clone");
                std::fs::create_dir(ws.home().join("r")).map_err(|e| Error::Io {
                    path: ws.home(),
                    source: e,
                })
            },
        )
        .unwrap();
        assert!(s.exists("w"));
        assert_eq!(ws.meta.source.as_deref(), Some("github:o/r"));
        assert_eq!(ws.meta.project, "r");
        assert!(ws.home().join(".bashrc").is_file());
    }

    #[test]
    fn over_a_layer_that_holds_the_project_it_clones_beside() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path());
        let base = s.create("base", None, None, "r", true).unwrap();
        std::fs::create_dir(base.home().join("r-2")).unwrap();
        s.snapshot("base", "l").unwrap();
        assert_eq!(
            CloneInto::for_project(&s, Some("l"), "r").unwrap(),
            CloneInto::OverLayer {
                beside: "r-3".into()
            }
        );
        assert_eq!(
            CloneInto::for_project(&s, Some("l"), "other").unwrap(),
            CloneInto::Fresh
        );
        assert_eq!(
            CloneInto::for_project(&s, None, "r").unwrap(),
            CloneInto::Fresh
        );
    }

    #[test]
    fn the_clone_command_names_where_it_clones() {
        let source = CloneSource {
            url: "https://h/r".into(),
            net: Some("h".into()),
            local: None,
            name: "r".into(),
        };
        let fresh = clone_command(&source, "r", &CloneInto::Fresh, false);
        assert_eq!(
            fresh[3..],
            [
                "keepout-clone",
                "https://h/r",
                "r",
                "",
                "--no-recurse-submodules"
            ]
        );
        let beside = CloneInto::OverLayer {
            beside: "r-2".into(),
        };
        let over = clone_command(&source, "r", &beside, true);
        assert_eq!(over[6..], ["r-2", "--recurse-submodules"]);
    }
}

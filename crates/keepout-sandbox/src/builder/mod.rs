//! [`Policy::build`]: from a [`RunRequest`] to a concrete [`Policy`], in named steps.
//!
//! Building is the only step that looks at the host filesystem: it resolves symlinks, drops
//! paths that do not exist and expands the masks of `/etc`, so that the resulting policy is
//! concrete, printable and enforceable as it stands. It holds the guarantees listed in
//! [`crate::policy`]; [`crate::path_safety`] decides what a path would expose, and
//! [`protect`] what in a writable host tree must be pinned, watched or masked.
//!
//! The mounts come in this order, so that nested ones stack right: the system directories, the
//! masks of `/etc`, the fresh `/dev`, `/proc`, `/tmp`, `/run`, the home; then the user's binds,
//! the project and the toolchains, parents before children; then the system files shown
//! without their credentials; then what protects the writable trees.

mod protect;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::env::build_env;
use crate::error::{Error, Result};
use crate::path_safety::{
    canonical, clean_absolute, expand_masks, exposes, readable_by_sandbox, secret_places,
    ETC_MASKS, SYSTEM_PATHS,
};
use crate::policy::{
    HomeSpec, Identity, KeptHome, Mode, Mount, MountKind, Network, Policy, RunRequest,
    BYTECODE_CACHE, ROOT_CALLER_HOST_ID, ROOT_CALLER_INNER_ID,
};
use crate::toolchains::{self, Survey};

/// The caller's cache directory: `$XDG_CACHE_HOME` when absolute, else `~/.cache` (none for a
/// home of `/`). Where keepout keeps what it remembers between runs.
pub fn cache_dir(env: &[(String, String)], home: &Path) -> Option<PathBuf> {
    let xdg = env
        .iter()
        .find(|(k, _)| k == "XDG_CACHE_HOME")
        .map(|(_, v)| PathBuf::from(v))
        .filter(|p| p.is_absolute());
    xdg.or_else(|| (home != Path::new("/")).then(|| home.join(".cache")))
}

/// The `why` of a mount the user asked for with `--rw`.
const RW_FLAG: &str = "--rw";

/// Places that hold secrets, each with what it is (see [`secret_places`]).
type SecretPlaces = [(PathBuf, String)];

impl Policy {
    /// Turn a request into a concrete policy, checking the host paths it names.
    pub fn build(req: &RunRequest) -> Result<Policy> {
        if req.command.is_empty() {
            return Err(Error::Usage(
                "no command given: keepout run -- COMMAND [ARGS...]".into(),
            ));
        }
        let _dirs = crate::path_safety::RememberDirs::start();
        let secret_places = secret_places(&req.caller_home, &req.caller_env);
        let home_path = sandbox_home_path(&req.caller_home);
        let (project, cwd) = project_and_cwd(req, &home_path, &secret_places)?;
        let identity = identity(req.caller_uid, req.caller_gid);
        let home = home_spec(req)?;
        let caller_is_root = req.caller_uid == 0;

        let mut mounts = system_mounts(caller_is_root)?;
        let tmp = MountKind::Tmpfs {
            size_mib: req.limits.tmp_size_mib,
        };
        fresh_mounts(req, &tmp, &mut mounts);
        mounts.push(home_mount(&home_path, &home, &tmp));
        let toolchains = survey_toolchains(req)?;
        let (user, requested_rw) =
            user_mounts(req, project.as_deref(), &secret_places, &toolchains)?;
        mounts.extend(user);
        // After every bind, so that no --ro of a directory shows such a file again. Examined
        // here, not on a thread of their own: while the policy is built, the other CPU makes the
        // run's network namespace (see `make_namespaces_ahead`), and a thread there made the
        // build wait for it (0.2 ms slower interleaved, measured).
        let clean_cache = cache_dir(&req.caller_env, &req.caller_home)
            .map(|d| d.join("keepout/system-files-clean"));
        mounts.extend(crate::system_credentials::mounts(
            caller_is_root,
            clean_cache.as_deref(),
        ));
        let (scans, protected) =
            protect::writable_trees(req, project.as_ref(), &requested_rw, &mut mounts)?;

        let env = build_env(req, &home_path, &toolchains)?;
        Ok(Policy {
            mode: req.mode,
            command: req.command.clone(),
            cwd,
            project,
            network: req.network,
            home,
            home_path,
            identity,
            limits: req.limits.clone(),
            terminal: crate::terminal_filter::TerminalPolicy::default(),
            env,
            protected,
            mounts,
            skipped_toolchains: toolchains.skipped,
            requested_rw,
            scans,
            join_socket: None,
        })
    }
}

/// Where the sandbox's `$HOME` appears: at the caller's home's path (`/home/sandbox` for a home
/// of `/` or a relative one).
fn sandbox_home_path(caller_home: &Path) -> PathBuf {
    clean_absolute(caller_home)
        .filter(|h| h != Path::new("/"))
        .unwrap_or_else(|| PathBuf::from("/home/sandbox"))
}

/// The project (none for a workspace, whose project is inside its home) and the working
/// directory inside, checked: a project that would show a secret place is refused.
fn project_and_cwd(
    req: &RunRequest,
    home_path: &Path,
    secret_places: &SecretPlaces,
) -> Result<(Option<PathBuf>, PathBuf)> {
    if let Some(kept) = &req.kept_home {
        if req.project.is_some() || req.home.is_some() {
            return Err(Error::Usage(
                "a workspace brings its own home and project: no --project or --home".into(),
            ));
        }
        if req.mode == Mode::Landlock {
            return Err(Error::Usage(
                "a workspace needs --mode namespaces (its home is mounted)".into(),
            ));
        }
        let relative_and_plain = kept
            .workdir
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !relative_and_plain {
            return Err(Error::Usage(format!(
                "the workspace's project {} must be a plain path inside its home",
                kept.workdir.display()
            )));
        }
        return Ok((None, home_path.join(&kept.workdir)));
    }
    let project_in = req.project.clone().unwrap_or_else(|| req.cwd.clone());
    let project = canonical(&project_in, "project directory")?;
    if !project.is_dir() {
        return Err(Error::Usage(format!(
            "project {} is not a directory",
            project.display()
        )));
    }
    if let Some(place) = exposes(&project, secret_places, true) {
        return Err(Error::Usage(format!(
            "the project {} would show the sandbox {place}. cd into the project itself (the \
             repository you cloned), or pass --project DIR",
            project.display()
        )));
    }
    let cwd = match canonical(&req.cwd, "working directory") {
        Ok(cwd) if cwd.starts_with(&project) => cwd,
        _ => project.clone(),
    };
    Ok((Some(project), cwd))
}

/// The ids the command runs as: the caller's own, or for root an unprivileged pair.
pub(crate) fn identity(caller_uid: u32, caller_gid: u32) -> Identity {
    if caller_uid == 0 {
        Identity {
            uid: ROOT_CALLER_INNER_ID,
            gid: ROOT_CALLER_INNER_ID,
            host_uid: ROOT_CALLER_HOST_ID,
            host_gid: ROOT_CALLER_HOST_ID,
            idmap_root: true,
        }
    } else {
        Identity {
            uid: caller_uid,
            gid: caller_gid,
            host_uid: caller_uid,
            host_gid: caller_gid,
            idmap_root: false,
        }
    }
}

fn home_spec(req: &RunRequest) -> Result<HomeSpec> {
    Ok(match (&req.kept_home, &req.home) {
        (Some(kept), _) => HomeSpec::Kept(kept_home(kept)?),
        (None, None) => HomeSpec::Fresh,
        (None, Some(dir)) => HomeSpec::Dir(canonical(dir, "--home directory")?),
    })
}

/// The system directories as on the host (read-only, or the symlink they are), then the masks
/// of the secrets under `/etc` that the sandbox's user could otherwise read.
fn system_mounts(caller_is_root: bool) -> Result<Vec<Mount>> {
    let mut mounts = Vec::new();
    for sys in SYSTEM_PATHS {
        let p = Path::new(sys);
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(p).map_err(|e| Error::io(p, e))?;
                mounts.push(Mount {
                    path: p.into(),
                    kind: MountKind::Symlink { target },
                    source: None,
                    why: "system (symlink as on the host)".into(),
                });
            }
            Ok(m) if m.is_dir() => mounts.push(Mount {
                path: p.into(),
                kind: MountKind::ReadOnly,
                source: None,
                why: "system".into(),
            }),
            _ => {}
        }
    }
    // Only what the sandbox's user could otherwise read needs a mask (and a mount).
    for mask in expand_masks(ETC_MASKS)
        .into_iter()
        .filter(|m| readable_by_sandbox(m, caller_is_root))
    {
        mounts.push(Mount {
            path: mask,
            kind: MountKind::Masked,
            source: None,
            why: "host secret under /etc".into(),
        });
    }
    Ok(mounts)
}

/// What the sandbox gets new: `/dev`, `/proc`, `/tmp` (`tmp`), `/run`, `/var/tmp`; with the
/// host's network, the target of a `/etc/resolv.conf` symlink.
fn fresh_mounts(req: &RunRequest, tmp: &MountKind, mounts: &mut Vec<Mount>) {
    mounts.push(Mount {
        path: "/dev".into(),
        kind: MountKind::Dev,
        source: None,
        why: "safe device nodes only".into(),
    });
    mounts.push(Mount {
        path: "/proc".into(),
        kind: MountKind::Proc,
        source: None,
        why: "the sandbox's own processes only".into(),
    });
    mounts.push(Mount {
        path: "/tmp".into(),
        kind: tmp.clone(),
        source: None,
        why: "fresh".into(),
    });
    mounts.push(Mount {
        path: "/run".into(),
        kind: MountKind::Tmpfs { size_mib: 16 },
        source: None,
        why: "fresh and empty: the host's sockets stay outside".into(),
    });
    mounts.push(Mount {
        path: "/var/tmp".into(),
        kind: MountKind::Symlink {
            target: "/tmp".into(),
        },
        source: None,
        why: "programs expect it".into(),
    });
    if req.network == Network::Host {
        if let Some(m) = resolv_conf_target(Path::new("/etc/resolv.conf")) {
            mounts.push(m);
        }
    }
}

/// The sandbox's home at `home_path`: a fresh tmpfs (`tmp`), the `--home` directory, or a
/// workspace's (an overlay when it has layers).
fn home_mount(home_path: &Path, home: &HomeSpec, tmp: &MountKind) -> Mount {
    Mount {
        path: home_path.to_path_buf(),
        kind: match home {
            HomeSpec::Fresh => tmp.clone(),
            HomeSpec::Dir(_) => MountKind::ReadWrite,
            HomeSpec::Kept(k) => match &k.work {
                Some(work) if !k.layers.is_empty() => MountKind::Overlay {
                    layers: k.layers.clone(),
                    work: work.clone(),
                    callers_layers: false,
                },
                _ => MountKind::Kept,
            },
        },
        source: match home {
            HomeSpec::Fresh => None,
            HomeSpec::Dir(d) => Some(d.clone()),
            HomeSpec::Kept(k) => Some(k.upper.clone()),
        },
        why: match home {
            HomeSpec::Kept(_) => "the workspace's home (and its project): nothing of the caller's",
            _ => "the sandbox's home: nothing of the caller's",
        }
        .into(),
    }
}

fn survey_toolchains(req: &RunRequest) -> Result<Survey> {
    if !req.toolchains {
        return Ok(Survey::default());
    }
    let caller = toolchains::Caller {
        home: &req.caller_home,
        uid: req.caller_uid,
        env: &req.caller_env,
        mode: req.mode,
    };
    toolchains::survey(&caller, true, &req.extra_toolchains)
}

/// `--ro`/`--rw` binds, the project, the bytecode cache and the toolchains, parents before
/// children so nested mounts stack right; and the `--rw` paths.
fn user_mounts(
    req: &RunRequest,
    project: Option<&Path>,
    secret_places: &SecretPlaces,
    toolchains: &Survey,
) -> Result<(Vec<Mount>, Vec<PathBuf>)> {
    let mut user = Vec::new();
    let mut requested_rw = Vec::new();
    for (paths, kind, flag) in [
        (&req.read_only, MountKind::ReadOnly, "--ro"),
        (&req.read_write, MountKind::ReadWrite, RW_FLAG),
    ] {
        for p in paths {
            let path = canonical(p, flag)?;
            if let Some(place) = exposes(&path, secret_places, false) {
                return Err(Error::Usage(format!(
                    "{flag} {} would show the sandbox {place}. Name the directories the \
                     command needs instead, e.g. --ro ~/.pyenv",
                    path.display()
                )));
            }
            if kind == MountKind::ReadWrite {
                requested_rw.push(path.clone());
            }
            user.push(Mount {
                path,
                kind: kind.clone(),
                source: None,
                why: flag.to_string(),
            });
        }
    }
    if let Some(m) = project_mount(req, project)? {
        user.push(m);
    }
    if let Some(cache) = &req.bytecode_cache {
        user.push(Mount {
            path: BYTECODE_CACHE.into(),
            kind: MountKind::ReadWrite,
            source: Some(canonical(cache, "bytecode cache")?),
            why: "this project's Python bytecode (PYTHONPYCACHEPREFIX), kept by keepout".into(),
        });
    }
    for m in toolchains.mounts() {
        if !user.iter().any(|u| u.path == m.path) {
            user.push(m); // unless --ro, --rw or the project shows it already
        }
    }
    user.sort_by_key(|m| m.path.components().count());
    Ok((user, requested_rw))
}

/// The project read-write, or under `--review` an overlay whose writes go aside.
fn project_mount(req: &RunRequest, project: Option<&Path>) -> Result<Option<Mount>> {
    Ok(match (project, &req.review) {
        (Some(project), None) => Some(Mount {
            path: project.to_path_buf(),
            kind: MountKind::ReadWrite,
            source: None,
            why: "the project".into(),
        }),
        (Some(project), Some(review)) => {
            if req.mode == Mode::Landlock {
                return Err(Error::Usage(
                    "--review needs --mode namespaces (the project is an overlay)".into(),
                ));
            }
            Some(Mount {
                path: project.to_path_buf(),
                kind: MountKind::Overlay {
                    layers: vec![project.to_path_buf()],
                    work: canonical(&review.work, "review work directory")?,
                    callers_layers: true,
                },
                source: Some(canonical(&review.upper, "review directory")?),
                why: "the project, under review: every write goes aside".into(),
            })
        }
        (None, Some(_)) => {
            return Err(Error::Usage(
                "--review is for your own tree; a workspace is a sandbox's already".into(),
            ))
        }
        (None, None) => None,
    })
}

/// A workspace's home made concrete: its directories canonical, layers with a work directory,
/// and no path that overlayfs's option string could misread.
fn kept_home(kept: &KeptHome) -> Result<KeptHome> {
    let dir = |p: &Path, what: &str| -> Result<PathBuf> {
        let c = canonical(p, what)?;
        if !c.is_dir() {
            return Err(Error::Usage(format!(
                "{what} {} is not a directory",
                c.display()
            )));
        }
        let text = c.to_string_lossy();
        if text.contains([',', ':', '\\']) {
            return Err(Error::Usage(format!(
                "{what} {}: overlayfs cannot take a path with ',', ':' or '\\'; \
                 set XDG_DATA_HOME to a plainer path",
                c.display()
            )));
        }
        Ok(c)
    };
    let layers = kept
        .layers
        .iter()
        .map(|l| dir(l, "workspace layer"))
        .collect::<Result<Vec<_>>>()?;
    let work = match (&kept.work, layers.is_empty()) {
        (Some(w), _) => Some(dir(w, "workspace work directory")?),
        (None, true) => None,
        (None, false) => {
            return Err(Error::Usage(
                "a workspace on layers needs a work directory".into(),
            ))
        }
    };
    Ok(KeptHome {
        upper: dir(&kept.upper, "workspace home")?,
        layers,
        work,
        workdir: kept.workdir.clone(),
    })
}

/// DNS with the host network: where `/etc/resolv.conf` is a symlink (e.g. into
/// `/run/systemd/resolve`), bind its target at the same path inside the fresh `/run`.
fn resolv_conf_target(link: &Path) -> Option<Mount> {
    if !std::fs::symlink_metadata(link)
        .ok()?
        .file_type()
        .is_symlink()
    {
        return None;
    }
    let target = std::fs::canonicalize(link).ok()?;
    if target.starts_with("/etc") || target.starts_with("/usr") {
        return None; // already visible through a system bind
    }
    Some(Mount {
        path: target,
        kind: MountKind::ReadOnly,
        source: None,
        why: "DNS: target of the /etc/resolv.conf symlink".into(),
    })
}

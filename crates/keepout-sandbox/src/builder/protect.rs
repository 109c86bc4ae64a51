//! What protects the host trees the sandbox can write (the project and each `--rw` directory):
//! what the host runs code from later is pinned read-only over itself, or watched when absent;
//! the project's `.git` is made a mount point; every host service's unix socket is masked.
//!
//! Guarantee: every entry of [`PROTECTED_NAMES`] at the top of a protected tree is either
//! pinned (it exists) or listed as watched (it does not); a symlink where a pin would go is an
//! error, never followed.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::path_safety::canonical;
use crate::policy::{Mount, MountKind, ProtectedPath, RunRequest, PROTECTED_NAMES};
use crate::project_scan::{self, ProjectScan};

/// The walks of the writable trees, each with its root.
pub(super) type Scans = Vec<(PathBuf, ProjectScan)>;

/// Walk the writable trees (the project, then each `--rw` directory outside it) once, and
/// protect each: the walks (reused after the run) and the protected paths.
pub(super) fn writable_trees(
    req: &RunRequest,
    project: Option<&PathBuf>,
    requested_rw: &[PathBuf],
    mounts: &mut Vec<Mount>,
) -> Result<(Scans, Vec<ProtectedPath>)> {
    // Under review nothing reaches the real tree, so nothing in it needs pinning (a pinned
    // `.git` would even be the real one, writable, over the overlay); `review apply` leaves
    // the same names alone. A host service's socket is masked either way: a connection
    // through the overlay reaches the real one.
    // The same for every `--rw` directory: it is a tree of the host's too.
    let mut roots: Vec<PathBuf> = project.into_iter().cloned().collect();
    for rw in requested_rw {
        if rw.is_dir() && !roots.iter().any(|r| rw.starts_with(r) || r.starts_with(rw)) {
            roots.push(rw.clone());
        }
    }
    let scans: Scans = roots
        .into_iter()
        .map(|r| {
            let scan = project_scan::scan(&r, project_scan::Pass::Before);
            (r, scan)
        })
        .collect();
    let mut protected = Vec::new();
    for (root, scan) in &scans {
        let under_review = req.review.is_some() && Some(root) == project;
        if !under_review {
            protected.extend(protect_project(root, scan, mounts)?);
        }
        mask_sockets(scan, &req.allow_sockets, mounts)?;
    }
    Ok((scans, protected))
}

/// Pin what the host runs code from later read-only over itself, at any depth (see
/// [`crate::autorun`]): the control entries of every git directory, `.git` pointer files, editor
/// and tool files. The project's own `.git` is also bound over itself so it is a mount point,
/// which cannot be renamed away and replaced. Nothing inside a directory a package manager
/// recreates whole is pinned (it is checked after the run instead).
fn protect_project(
    project: &Path,
    scan: &ProjectScan,
    mounts: &mut Vec<Mount>,
) -> Result<Vec<ProtectedPath>> {
    let mut protected = Vec::new();
    let git = project.join(".git");
    let git_meta = std::fs::symlink_metadata(&git);
    let git_is_dir = git_meta.as_ref().is_ok_and(|m| m.is_dir());
    match git_meta {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(Error::Usage(format!(
                "{} is a symlink; keepout will not guess what it protects. Replace it with the directory, or run elsewhere",
                git.display()
            )))
        }
        Ok(m) if m.is_dir() => mounts.push(Mount {
            path: git.clone(),
            kind: MountKind::ReadWrite,
            source: None,
            why: "pinned in place so it cannot be swapped for a planted copy".into(),
        }),
        Ok(_) => {}
        Err(_) => protected.push(ProtectedPath {
            path: git.clone(),
            exists: false,
        }),
    }
    let mut pins: Vec<(PathBuf, &'static str)> = Vec::new();
    let refuse_symlink = |path: &Path| {
        Err(Error::Usage(format!(
            "{} is a symlink; keepout cannot pin it read-only. Replace it with a real file or directory first",
            path.display()
        )))
    };
    for g in scan.git_dirs.iter().filter(|g| g.dir.pinnable) {
        for c in g.control.iter().filter(|c| c.pinnable) {
            if c.is_symlink {
                return refuse_symlink(&c.path);
            }
            pins.push((
                c.path.clone(),
                "git: decides what git runs on the host later",
            ));
        }
    }
    for p in scan
        .git_pointers
        .iter()
        .filter(|p| p.pinnable && !p.is_symlink)
    {
        pins.push((
            p.path.clone(),
            "gitdir pointer: runs code on the host later",
        ));
    }
    for e in scan.editor_files.iter().filter(|e| e.pinnable) {
        if e.is_symlink {
            return refuse_symlink(&e.path);
        }
        let why = crate::autorun::editor_or_tool(project_scan::file_name(&e.path), e.is_dir)
            .unwrap_or("runs code on the host later");
        pins.push((e.path.clone(), why));
    }
    pins.sort_by_key(|(p, _)| p.components().count());
    for (path, why) in pins {
        mounts.push(Mount {
            path: path.clone(),
            kind: MountKind::Pinned,
            source: None,
            why: why.into(),
        });
        protected.push(ProtectedPath { path, exists: true });
    }
    // What is absent at the top is watched (moved aside after the run if it appears).
    for name in PROTECTED_NAMES {
        let path = project.join(name);
        if (name.starts_with(".git/") && !git_is_dir) || protected.iter().any(|p| p.path == path) {
            continue;
        }
        if std::fs::symlink_metadata(&path).is_err() {
            protected.push(ProtectedPath {
                path,
                exists: false,
            });
        }
    }
    Ok(protected)
}

/// Mask every unix socket in the project (a host service's: a dev database's socket directory,
/// a forwarded agent, git's fsmonitor daemon) unless `--socket` names it.
fn mask_sockets(scan: &ProjectScan, allowed: &[PathBuf], mounts: &mut Vec<Mount>) -> Result<()> {
    let allowed: Vec<PathBuf> = allowed
        .iter()
        .map(|p| canonical(p, "--socket"))
        .collect::<Result<_>>()?;
    for socket in &scan.sockets {
        if allowed.contains(socket) {
            continue;
        }
        mounts.push(Mount {
            path: socket.clone(),
            kind: MountKind::Masked,
            source: None,
            why: "a host service's unix socket (--socket PATH to let the sandbox connect)".into(),
        });
    }
    Ok(())
}

//! From a [`Policy`] to the steps that build the sandbox's root, and the Landlock rules that
//! repeat the same visibility as a second wall.
//!
//! This module is pure: it touches no file and makes no system call, so the order and content of
//! every mount can be unit-tested as data. `linux::mounts` executes a plan.
//!
//! Guarantee: the plan mounts exactly the entries of `policy.mounts`, in order, and grants
//! Landlock access to nothing that the mounts do not show; read-only entries get read-only
//! Landlock rights.

use std::path::PathBuf;

use serde::Serialize;

use crate::policy::{MountKind, Policy};

/// One step of building the new root. Targets are paths inside the sandbox; sources are host
/// paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum MountStep {
    /// Bind a host file or directory (recursively), then make it read-only if asked. Always
    /// nosuid and nodev. `idmap`: attach an idmapped copy instead (root callers' writable paths).
    Bind {
        source: PathBuf,
        target: PathBuf,
        read_only: bool,
        idmap: bool,
    },
    /// overlayfs at `target`: `lower` (host paths, topmost first) under the writable `upper`,
    /// with `work` beside it; nosuid, nodev. A root caller's is made by keepout outside the
    /// sandbox and attached; an ordinary caller's sandbox mounts it in its user namespace.
    Overlay {
        lower: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
        /// A root caller's own files as the lower layers: made idmapped first, as a read-write
        /// bind would be, so that the sandbox's user may change (copy up) them.
        idmap_lower: bool,
    },
    /// A fresh tmpfs, owned by the sandbox's user.
    Tmpfs { target: PathBuf, size_mib: u64 },
    /// Hide a file or directory behind an empty read-only one.
    Mask { target: PathBuf },
    /// Show a read-only file with this text over a file (made in the sandbox's memory).
    Text { target: PathBuf, content: String },
    /// A symbolic link.
    Symlink { target: PathBuf, points_to: PathBuf },
    /// The minimal `/dev`.
    Dev { target: PathBuf },
    /// A new procfs, with kernel knobs read-only and kernel-internal files masked.
    Proc { target: PathBuf },
}

/// The Landlock rights granted beneath one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LandlockAccess {
    /// List directories only (granted on `/`, so `ls /` works; no file beneath becomes readable).
    ListDir,
    /// Read files, list directories, execute.
    Read,
    /// Everything, beneath this path.
    ReadWrite,
    /// Read and write files (no creation), list directories: `/proc`.
    ReadWriteFiles,
    /// Device files: read, write, truncate, ioctl; and full access beneath (`/dev/shm`, `/dev/pts`).
    Device,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LandlockRule {
    pub path: PathBuf,
    pub access: LandlockAccess,
}

/// Everything the Linux backend does to the filesystem, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxPlan {
    pub steps: Vec<MountStep>,
    pub landlock: Vec<LandlockRule>,
}

impl SandboxPlan {
    /// Does the plan mount an overlay? Its upper directory is in use until that mount is
    /// released, with the sandbox's mount namespace.
    pub fn has_overlay(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s, MountStep::Overlay { .. }))
    }

    /// The plan for namespaces mode: a new root built from `policy.mounts`.
    pub fn for_namespaces(policy: &Policy) -> SandboxPlan {
        let mut steps = Vec::new();
        let mut landlock = vec![
            // Listing directories anywhere shows only what the mounts show.
            LandlockRule {
                path: "/".into(),
                access: LandlockAccess::ListDir,
            },
        ];
        let idmap_rw = policy.identity.idmap_root;
        for m in &policy.mounts {
            let target = m.path.clone();
            let source = m.source.clone().unwrap_or_else(|| m.path.clone());
            let (step, access) = match &m.kind {
                MountKind::ReadOnly => (
                    MountStep::Bind {
                        source,
                        target,
                        read_only: true,
                        idmap: false,
                    },
                    Some(LandlockAccess::Read),
                ),
                MountKind::Pinned => (
                    MountStep::Bind {
                        source,
                        target,
                        read_only: true,
                        // git checks who owns a `.git` pointer file (as it does the work tree
                        // and the git directory, which the project's own bind idmaps); what
                        // is inside a git directory it only reads.
                        idmap: idmap_rw && m.path.file_name() == Some(std::ffi::OsStr::new(".git")),
                    },
                    Some(LandlockAccess::Read),
                ),
                MountKind::ReadWrite => (
                    MountStep::Bind {
                        source,
                        target,
                        read_only: false,
                        idmap: idmap_rw,
                    },
                    Some(LandlockAccess::ReadWrite),
                ),
                MountKind::Kept => (
                    MountStep::Bind {
                        source,
                        target,
                        read_only: false,
                        idmap: false,
                    },
                    Some(LandlockAccess::ReadWrite),
                ),
                MountKind::Overlay {
                    layers,
                    work,
                    callers_layers,
                } => (
                    MountStep::Overlay {
                        lower: layers.clone(),
                        upper: source,
                        work: work.clone(),
                        target,
                        idmap_lower: idmap_rw && *callers_layers,
                    },
                    Some(LandlockAccess::ReadWrite),
                ),
                MountKind::Masked => (MountStep::Mask { target }, None),
                MountKind::Text { content } => (
                    MountStep::Text {
                        target,
                        content: content.clone(),
                    },
                    None,
                ),
                MountKind::Tmpfs { size_mib } => (
                    MountStep::Tmpfs {
                        target,
                        size_mib: *size_mib,
                    },
                    Some(LandlockAccess::ReadWrite),
                ),
                MountKind::Symlink { target: points_to } => (
                    MountStep::Symlink {
                        target,
                        points_to: points_to.clone(),
                    },
                    None,
                ),
                MountKind::Dev => (MountStep::Dev { target }, Some(LandlockAccess::Device)),
                MountKind::Proc => (
                    MountStep::Proc { target },
                    Some(LandlockAccess::ReadWriteFiles),
                ),
            };
            if let Some(access) = access {
                landlock.push(LandlockRule {
                    path: m.path.clone(),
                    access,
                });
            }
            steps.push(step);
        }
        // Landlock grants are unions over ancestors: a read-only entry inside a read-write one
        // (e.g. `.git/hooks` in the project) is still writable as far as Landlock goes. The
        // read-only mount is the wall there; drop the rule so the plan does not pretend.
        let rw: Vec<PathBuf> = landlock
            .iter()
            .filter(|r| r.access == LandlockAccess::ReadWrite)
            .map(|r| r.path.clone())
            .collect();
        landlock.retain(|r| {
            r.access != LandlockAccess::Read
                || !rw.iter().any(|w| r.path.starts_with(w) && r.path != *w)
        });
        SandboxPlan { steps, landlock }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::RunRequest;
    use std::path::Path;

    fn policy() -> (tempfile::TempDir, Policy) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git/hooks")).unwrap();
        let req = RunRequest::for_tests(dir.path());
        let p = Policy::build(&req).unwrap();
        (dir, p)
    }

    #[test]
    fn every_mount_becomes_one_step_in_order() {
        let (_dir, policy) = policy();
        let plan = SandboxPlan::for_namespaces(&policy);
        assert_eq!(plan.steps.len(), policy.mounts.len());
        assert!(plan
            .steps
            .iter()
            .any(|s| matches!(s, MountStep::Proc { .. })));
    }

    #[test]
    fn read_only_mounts_never_get_write_rights() {
        let (_dir, policy) = policy();
        let plan = SandboxPlan::for_namespaces(&policy);
        let usr = plan
            .landlock
            .iter()
            .find(|r| r.path == Path::new("/usr"))
            .unwrap();
        assert_eq!(usr.access, LandlockAccess::Read);
        let hooks = policy.project.clone().unwrap().join(".git/hooks");
        assert!(
            plan.landlock.iter().all(|r| r.path != hooks),
            "no misleading rule for hooks"
        );
        assert!(plan.steps.contains(&MountStep::Bind {
            source: hooks.clone(),
            target: hooks,
            read_only: true,
            idmap: false
        }));
    }
}

//! After a run: find what the sandbox planted in the project that the host would run later, and
//! move it aside.
//!
//! The read-only mounts protect what exists before the run (see `policy::PROTECTED_NAMES`). What
//! does not exist cannot carry a mount, so it is checked afterwards, when every process of the
//! sandbox is dead and nothing can race: a protected path that appeared, and any `.git` or
//! `.envrc` anywhere in the project that was not there, as the same inode, before the run (a
//! nested repository's `core.fsmonitor` runs at the next `git status` in that directory; a
//! git-aware shell prompt is enough). The project is listed (not stat'ed) once before and once
//! after the run. Each find is renamed to `NAME.keepout-quarantine-<unix time>` where it was.
//!
//! Guarantee: when [`Watch::finish`] returns, no `.git` or `.envrc` created or replaced during
//! the run remains under its name in the project, unless renaming it failed, which is reported.
//! Limit: if keepout itself is killed with SIGKILL, the check does not run.

use std::collections::HashSet;
use std::os::unix::fs::DirEntryExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::policy::Policy;

/// Names that run code on the host when they sit in a directory the maintainer enters.
const PLANTABLE: &[&str] = &[".git", ".envrc"];

/// One path moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub path: PathBuf,
    /// Where it is now, or the error that kept it in place.
    pub moved_to: Result<PathBuf, String>,
}

/// What was true before the run.
pub struct Watch {
    absent: Vec<PathBuf>,
    project: Option<PathBuf>,
    existing: HashSet<(PathBuf, u64)>,
}

/// Every `.git` and `.envrc` under `root` (not descending into `.git` or through symlinks),
/// with its inode number. Uses only what `readdir` returns: no `stat` per file.
fn plantable_entries(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if PLANTABLE.iter().any(|n| name == *n) {
                found.push((entry.path(), entry.ino()));
            } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
    found
}

impl Watch {
    /// Take note of the project before the command runs.
    pub fn start(policy: &Policy) -> Watch {
        let absent = policy
            .protected
            .iter()
            .filter(|p| std::fs::symlink_metadata(&p.path).is_err())
            .map(|p| p.path.clone())
            .collect();
        let existing = policy
            .project
            .as_deref()
            .map(plantable_entries)
            .unwrap_or_default()
            .into_iter()
            .collect();
        Watch {
            absent,
            project: policy.project.clone(),
            existing,
        }
    }

    /// After the run: move aside what was planted.
    pub fn finish(self) -> Vec<Quarantined> {
        let mut planted: Vec<PathBuf> = self
            .absent
            .iter()
            .filter(|p| std::fs::symlink_metadata(p).is_ok())
            .cloned()
            .collect();
        let now = self
            .project
            .as_deref()
            .map(plantable_entries)
            .unwrap_or_default();
        for entry in now {
            if !self.existing.contains(&entry) && !planted.contains(&entry.0) {
                planted.push(entry.0);
            }
        }
        planted.into_iter().map(move_aside).collect()
    }
}

fn move_aside(path: PathBuf) -> Quarantined {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut target = path.with_file_name(format!("{name}.keepout-quarantine-{secs}"));
    for n in 1.. {
        if std::fs::symlink_metadata(&target).is_err() {
            break;
        }
        target = path.with_file_name(format!("{name}.keepout-quarantine-{secs}-{n}"));
    }
    // renameat2 moves the entry itself (a planted symlink is renamed, never followed) and, with
    // RENAME_NOREPLACE, never over something that appeared at the new name meanwhile.
    let moved_to = rustix::fs::renameat_with(
        rustix::fs::CWD,
        &path,
        rustix::fs::CWD,
        &target,
        rustix::fs::RenameFlags::NOREPLACE,
    )
    .map(|()| target)
    .map_err(|e| e.to_string());
    Quarantined { path, moved_to }
}

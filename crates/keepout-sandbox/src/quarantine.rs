//! After a run: find what the sandbox left in the project that the host would run later, or
//! that hides a change from the maintainer, and undo it (threat classes A4, A14-A16).
//!
//! The read-only mounts protect what exists before the run (see `Policy::build`). What does not
//! exist cannot carry a mount, and a mount cannot sit inside a directory a package manager
//! recreates; both are checked afterwards, when every process of the sandbox is dead and
//! nothing can race. Each host tree the sandbox can write (the project, every `--rw`
//! directory) is walked once before and once after the run ([`crate::project_scan`]), and:
//!
//! * a git directory, gitdir pointer, editor or tool file (the catalogue in [`crate::autorun`])
//!   that was not there before as the same inode, a control entry that appeared in a git
//!   directory (`commondir`, `config`, `hooks`...), a symlink that appeared inside one (git
//!   writes through `FETCH_HEAD`, `ORIG_HEAD`, logs), and such an entry that was there but
//!   not pinned and changed (its or, for a directory, any of its files' ctime is after the
//!   start) is renamed to `NAME.keepout-quarantine-<unix time>` where it was;
//! * an index whose assume-unchanged or skip-worktree flags grew is put back with git's own
//!   `git update-index`; one with a file-system monitor extension that the run wrote loses it;
//! * bytecode (`.pyc`, `.pyo`, `.elc`) written or changed during the run is removed: the
//!   sandbox's Python writes its bytecode outside the project (`PYTHONPYCACHEPREFIX`), so an
//!   ordinary workload leaves none there, and a stale one runs instead of the source you read;
//! * a new symlink that points out of the project, other than into what the sandbox saw
//!   read-only (the system, toolchains), is moved aside: the maintainer's next write to it
//!   (an editor's save, `>>`) would land in their home;
//! * Python start-up files (`*.pth`, `sitecustomize.py`) written during the run are named.
//!
//! Guarantee: when [`Watch::finish`] returns, nothing of the above remains under its name in the
//! project, unless undoing it failed, which is reported. Limit: if keepout itself is killed
//! with SIGKILL, the check does not run.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::git_index::HidingFlags;
use crate::policy::{MountKind, Policy};
use crate::project_scan::{self, Found, Pass, ProjectScan};

/// One path moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub path: PathBuf,
    /// What it is and why it matters ("a new git directory", "VS Code: tasks ...").
    pub why: String,
    /// Where it is now, or the error that kept it in place.
    pub moved_to: Result<PathBuf, Error>,
}

/// Index flags the run set, and what clearing them gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFlagsCleared {
    /// The index file.
    pub index: PathBuf,
    pub assume_unchanged: Vec<String>,
    pub skip_worktree: Vec<String>,
    /// The file-system monitor extension (its bitmap marks entries valid) was dropped.
    pub fsmonitor: bool,
    /// `Err`: git could not clear them; the message says why.
    pub result: Result<(), Error>,
}

/// What keepout undid or noticed after the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AfterRun {
    pub quarantined: Vec<Quarantined>,
    pub index_flags: Vec<IndexFlagsCleared>,
    /// Bytecode written or changed during the run, removed (or the error that kept it).
    pub bytecode_removed: Vec<(PathBuf, Result<(), Error>)>,
    /// Python start-up files written during the run (kept: editable installs need them).
    pub startup_files: Vec<PathBuf>,
}

/// What was true before the run.
pub struct Watch {
    /// Each host tree the sandbox can write (the project, `--rw` directories), as it was.
    roots: Vec<RootWatch>,
    /// Whether read-only mounts pinned what existed (namespaces mode).
    pinned: bool,
    /// The run's start, as file timestamps count it, a little early (timestamps are coarse).
    start: (i64, i64),
    /// What the sandbox saw read-only (system, toolchains, `--ro`): a symlink into it is no
    /// way out for the maintainer's later writes.
    read_only: Vec<PathBuf>,
}

struct RootWatch {
    root: PathBuf,
    before: ProjectScan,
    existing: HashSet<(PathBuf, u64)>,
}

impl Watch {
    /// Take note of the writable trees before the command runs. A review run writes nothing to
    /// the real project, so there is nothing to watch there.
    pub fn start(policy: &Policy) -> Watch {
        let under_review = |root: &Path| {
            policy.mounts.iter().any(|m| {
                m.path == root
                    && Some(root) == policy.project.as_deref()
                    && matches!(m.kind, MountKind::Overlay { .. })
            })
        };
        let mut scans = policy.scans.clone();
        if scans.is_empty() {
            if let Some(p) = &policy.project {
                scans.push((p.clone(), project_scan::scan(p, Pass::Before)));
            }
        }
        let roots = scans
            .into_iter()
            .filter(|(root, _)| !under_review(root))
            .map(|(root, before)| RootWatch {
                root,
                existing: before.identities(),
                before,
            })
            .collect();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        // Up to a jiffy (and then some) behind the precise clock.
        let early = now.saturating_sub(std::time::Duration::from_millis(20));
        Watch {
            roots,
            pinned: policy.mode == crate::policy::Mode::Namespaces,
            start: (early.as_secs() as i64, i64::from(early.subsec_nanos())),
            read_only: policy
                .mounts
                .iter()
                .filter(|m| matches!(m.kind, MountKind::ReadOnly | MountKind::Symlink { .. }))
                .map(|m| m.path.clone())
                .chain([PathBuf::from("/dev/null")])
                .collect(),
        }
    }

    /// After the run: undo what was left, and say what.
    pub fn finish(self) -> AfterRun {
        let mut out = AfterRun::default();
        for root in &self.roots {
            self.finish_root(root, &mut out);
        }
        out
    }

    fn finish_root(&self, watch: &RootWatch, out: &mut AfterRun) {
        let project = watch.root.as_path();
        let after = project_scan::scan(project, Pass::After);
        let mut moved: Vec<PathBuf> = Vec::new();
        let mut aside = |path: &Path, why: String, out: &mut AfterRun| {
            if moved.iter().any(|m| path.starts_with(m)) {
                return; // inside something already moved aside
            }
            moved.push(path.to_path_buf());
            out.quarantined.push(move_aside(path, why));
        };
        let is_new = |f: &Found| !watch.existing.contains(&(f.path.clone(), f.ino));
        let changed =
            |f: &Found| !(self.pinned && f.pinnable) && changed_since(&f.path, self.start);

        // New or replaced git directories first: everything inside goes with them.
        let mut new_dirs: Vec<&Found> = after
            .git_dirs
            .iter()
            .map(|g| &g.dir)
            .filter(|d| is_new(d))
            .collect();
        new_dirs.sort_by_key(|d| d.path.components().count());
        for d in new_dirs {
            aside(&d.path, "a git repository git would open there".into(), out);
        }
        for p in &after.git_pointers {
            if is_new(p) || changed(p) {
                aside(
                    &p.path,
                    "a .git pointer: git reads the repository it names".into(),
                    out,
                );
            }
        }
        // "new" or "changed" for an entry that is either, else nothing to do.
        let state = |f: &Found| {
            if is_new(f) {
                Some("new")
            } else if changed(f) {
                Some("changed")
            } else {
                None
            }
        };
        for g in &after.git_dirs {
            for c in &g.control {
                if let Some(state) = state(c) {
                    let why = format!("git's {} (decides what git runs), {state}", name(&c.path));
                    aside(&c.path, why, out);
                }
            }
        }
        for s in &after.git_symlinks {
            if is_new(s) {
                aside(
                    &s.path,
                    "a symlink inside a git directory: git writes through it".into(),
                    out,
                );
            }
        }
        for l in after.symlinks.iter().filter(|l| is_new(l)) {
            let Ok(target) = std::fs::read_link(&l.path) else {
                continue;
            };
            let resolved = lexical(&l.path.parent().unwrap_or(project).join(&target));
            if !resolved.starts_with(project)
                && !self.read_only.iter().any(|r| resolved.starts_with(r))
            {
                aside(
                    &l.path,
                    format!("a symlink out of the project, to {}: what you write to it later lands there", target.display()),
                    out,
                );
            }
        }
        for e in &after.editor_files {
            let what = crate::autorun::editor_or_tool(project_scan::file_name(&e.path), e.is_dir)
                .unwrap_or("runs code when you open it");
            if let Some(state) = state(e) {
                aside(&e.path, format!("{state}: {what}"), out);
            }
        }

        // Index flags that hide a change, in the repositories that stayed.
        for g in &after.git_dirs {
            if moved.iter().any(|m| g.dir.path.starts_with(m)) {
                continue;
            }
            let Some(index) = &g.index else { continue };
            let before = watch
                .before
                .git_dirs
                .iter()
                .find(|b| b.dir.path == g.dir.path)
                .and_then(|b| b.index.as_ref());
            if before.is_some_and(|b| b.stamp == index.stamp) {
                continue; // the run did not write it
            }
            // Read only now, for an index the run wrote.
            let Ok(now) = index.flags() else { continue };
            let was = before.and_then(|b| b.flags().ok()).unwrap_or_default();
            let added = now.added_since(&was);
            if added.no_entry_flags() && !added.fsmonitor {
                continue;
            }
            out.index_flags
                .push(clear_index_flags(&g.dir.path, &index.path, &added));
        }

        for pyc in &after.bytecode {
            if changed_since(pyc, self.start) {
                let r = std::fs::remove_file(pyc).map_err(|e| Error::AfterRun(e.to_string()));
                out.bytecode_removed.push((pyc.clone(), r));
            }
        }
        out.startup_files.extend(
            after
                .startup_files
                .into_iter()
                .filter(|p| changed_since(p, self.start)),
        );
    }
}

/// `path` with `.` and `..` taken away without looking at the filesystem.
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn name(p: &Path) -> String {
    String::from_utf8_lossy(project_scan::file_name(p)).into_owned()
}

/// Was `path` (or, for a directory, anything in it) created or changed at or after `start`?
/// ctime, which no system call can set back (utimes moves mtime only, and sets ctime to now).
fn changed_since(path: &Path, start: (i64, i64)) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if (meta.ctime(), meta.ctime_nsec()) >= start {
        return true;
    }
    if meta.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            return entries.flatten().any(|e| changed_since(&e.path(), start));
        }
    }
    false
}

/// Put the hiding flags the run added back with git itself, which writes indexes; drop a
/// file-system monitor extension. git runs with the repository's own (pinned or checked)
/// configuration, but with no fsmonitor and no hooks.
fn clear_index_flags(git_dir: &Path, index: &Path, added: &HidingFlags) -> IndexFlagsCleared {
    let text = |s: &std::collections::BTreeSet<Vec<u8>>| -> Vec<String> {
        s.iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect()
    };
    let mut result = Ok(());
    let git = |args: &[&str],
               paths: Option<&std::collections::BTreeSet<Vec<u8>>>|
     -> Result<(), String> {
        let mut cmd = Command::new("git");
        cmd.args([
            "-c",
            "core.fsmonitor=false",
            "-c",
            "core.hooksPath=/dev/null",
        ]);
        if name(git_dir) == ".git" {
            let work_tree = git_dir.parent().unwrap_or(git_dir);
            cmd.arg("-C").arg(work_tree);
            cmd.arg(format!("--git-dir={}", git_dir.display()));
            cmd.arg(format!("--work-tree={}", work_tree.display()));
        } else {
            cmd.arg("-C").arg(git_dir);
            cmd.arg(format!("--git-dir={}", git_dir.display()));
        }
        cmd.arg("update-index").args(args);
        cmd.stdout(std::process::Stdio::null());
        cmd.stderr(std::process::Stdio::piped());
        if paths.is_some() {
            cmd.args(["-z", "--stdin"]);
            cmd.stdin(std::process::Stdio::piped());
        } else {
            cmd.stdin(std::process::Stdio::null());
        }
        let mut child = cmd.spawn().map_err(|e| format!("cannot run git: {e}"))?;
        if let (Some(paths), Some(mut stdin)) = (paths, child.stdin.take()) {
            use std::io::Write;
            let mut bytes = Vec::new();
            for p in paths {
                bytes.extend_from_slice(p);
                bytes.push(0);
            }
            stdin
                .write_all(&bytes)
                .map_err(|e| format!("git update-index: {e}"))?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "git update-index {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    // One flag per invocation: with both, git applies only the last one given.
    if !added.assume_unchanged.is_empty() {
        result = result.and(git(
            &["--no-assume-unchanged"],
            Some(&added.assume_unchanged),
        ));
    }
    if !added.skip_worktree.is_empty() {
        result = result.and(git(&["--no-skip-worktree"], Some(&added.skip_worktree)));
    }
    if added.fsmonitor {
        result = result.and(git(&["--no-fsmonitor"], None));
    }
    IndexFlagsCleared {
        index: index.to_path_buf(),
        assume_unchanged: text(&added.assume_unchanged),
        skip_worktree: text(&added.skip_worktree),
        fsmonitor: added.fsmonitor,
        result: result.map_err(Error::AfterRun),
    }
}

fn move_aside(path: &Path, why: String) -> Quarantined {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let base = name(path);
    let mut target = path.with_file_name(format!("{base}.keepout-quarantine-{secs}"));
    for n in 1.. {
        if std::fs::symlink_metadata(&target).is_err() {
            break;
        }
        target = path.with_file_name(format!("{base}.keepout-quarantine-{secs}-{n}"));
    }
    // renameat2 moves the entry itself (a planted symlink is renamed, never followed) and, with
    // RENAME_NOREPLACE, never over something that appeared at the new name meanwhile.
    let moved_to = rustix::fs::renameat_with(
        rustix::fs::CWD,
        path,
        rustix::fs::CWD,
        &target,
        rustix::fs::RenameFlags::NOREPLACE,
    )
    .map(|()| target)
    .map_err(|e| Error::AfterRun(e.to_string()));
    Quarantined {
        path: path.to_path_buf(),
        why,
        moved_to,
    }
}

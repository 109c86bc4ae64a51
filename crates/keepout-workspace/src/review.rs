//! Reviews: what a `keepout run --review` wrote, held aside until the maintainer applies or
//! discards it.
//!
//! During the run the project is an overlay: the real tree is its read-only lower layer and every
//! write lands in the review's `upper` directory (`reviews/ID/upper`). Afterwards [`Review::changes`]
//! reads `upper` as overlayfs left it (files, directories, symlinks; whiteouts for deletions;
//! opaque directories for a directory replaced whole) against the real tree.
//!
//! Guarantees of [`Review::apply`]:
//! * it never follows a symlink: every step opens the real tree one component at a time from a
//!   descriptor of the project, refusing symlinks (`O_NOFOLLOW`), so neither a symlink of the
//!   real tree nor one the code made leads a write outside the project; a symlink the code made
//!   is applied as a symlink;
//! * each file is replaced atomically: written whole to a temporary name in its directory,
//!   synced, then renamed over the old one;
//! * a path the maintainer changed in the real tree since the run (against the state noted by
//!   [`Review::record_base`] just after it) makes the whole apply refuse, unless forced; a path
//!   that already holds what the run left there is no such change;
//! * an apply cut off (kill -9) is finished by the next one: the entries it had put in place
//!   hold the run's content (so they are no conflict), and its temporary files
//!   (`.keepout-apply-PID-*`, their keepout gone) are removed from every directory applied to;
//! * setuid, setgid and sticky bits are never applied;
//! * `.git/hooks`, `.git/config`, `.git/config.worktree`, `.git/info`, `.git/commondir`,
//!   `.git/worktrees`, `.git/modules` and `.envrc` (the names `keepout run` protects) are left
//!   alone unless asked (`include_git`), and reported as skipped.

mod diff;
pub mod summary;
pub mod text;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::overlay::{is_opaque, is_whiteout};
use crate::{
    io, now, read_meta, remove_tree, sorted_entries, write_meta, Error, Result, Store,
    FORMAT_VERSION,
};

/// What a review's `meta.toml` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewMeta {
    pub version: u32,
    pub id: String,
    /// The real tree the run worked on.
    pub project: PathBuf,
    pub command: Vec<String>,
    pub created: u64,
}

/// One run's writes, held aside.
#[derive(Debug, Clone)]
pub struct Review {
    pub dir: PathBuf,
    pub meta: ReviewMeta,
}

/// How an entry of the project changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// What kind of entry it is (after the change; before it, for a deletion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One change the run made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Relative to the project.
    pub path: PathBuf,
    pub kind: ChangeKind,
    pub entry: EntryKind,
    /// Why it deserves a look first, if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<String>,
    /// The target, for a symlink.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_target: Option<PathBuf>,
}

/// What `apply` did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub applied: usize,
    /// Paths left alone because they are protected (see the module doc).
    pub skipped: Vec<PathBuf>,
    /// New symlinks that point outside the project, left out (with their targets).
    pub outside_symlinks: Vec<(PathBuf, PathBuf)>,
    /// Bytecode the run wrote, left out: it runs instead of the source beside it.
    pub bytecode: Vec<PathBuf>,
}

/// What `apply` may also put in, beyond ordinary files.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// git's own files, at any depth, and editor and tool files (see `protected`).
    pub include_git: bool,
    /// Symlinks that point outside the project.
    pub include_symlinks: bool,
    /// Where the tree changed since the run.
    pub force: bool,
}

/// What `keepout run` protects, which `apply` leaves alone unless asked: git's control entries
/// (`keepout_sandbox::autorun::GIT_CONTROL`) inside any `.git` at any depth (its submodules'
/// under `modules/` too), a `.git` that is not a directory (a gitdir pointer, or its deletion),
/// and the editor and tool files of `keepout_sandbox::autorun` (a directory component counts as
/// a directory, the last one as what it is). A `.git` directory's objects, refs and index
/// apply like the rest. `is_dir`: the entry at `rel` is a directory.
fn protected(rel: &Path, is_dir: bool) -> bool {
    use keepout_sandbox::autorun::{editor_or_tool, GIT_CONTROL};
    use std::os::unix::ffi::OsStrExt;
    let parts: Vec<&[u8]> = rel.components().map(|c| c.as_os_str().as_bytes()).collect();
    let control = |name: &[u8]| GIT_CONTROL.iter().any(|c| c.as_bytes() == name);
    parts.iter().enumerate().any(|(i, &name)| {
        let last = i + 1 == parts.len();
        let dir = !last || is_dir;
        (name == b".git" && ((last && !is_dir) || parts[i + 1..].iter().any(|&n| control(n))))
            || editor_or_tool(name, dir).is_some()
            || (last && editor_or_tool(name, false).is_some() && !is_dir)
    })
}

/// Does a symlink at `rel` (relative to the project) with this target point outside the
/// project? Absolute targets do; relative ones do when `..` climbs above the project's root.
fn points_outside(rel: &Path, target: &Path) -> bool {
    use std::path::Component;
    if target.is_absolute() {
        return true;
    }
    let mut depth: i64 = rel.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    false
}

/// Why a path deserves a look first.
fn risk_of(rel: &Path, entry: EntryKind, executable: bool) -> Option<String> {
    let s = rel.to_string_lossy();
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if protected(rel, entry == EntryKind::Dir) {
        return Some("runs code when you use git or direnv".into());
    }
    if rel.starts_with(".git") {
        return Some("git's own files".into());
    }
    if entry == EntryKind::Symlink {
        return Some("a symlink".into());
    }
    const CI: &[&str] = &[
        ".github",
        ".gitlab-ci.yml",
        ".gitlab",
        ".circleci",
        ".travis.yml",
        "Jenkinsfile",
        "azure-pipelines.yml",
        ".buildkite",
        ".woodpecker.yml",
        ".drone.yml",
    ];
    if CI.iter().any(|c| rel.starts_with(c)) {
        return Some("CI configuration".into());
    }
    const BUILD: &[&str] = &[
        "setup.py",
        "setup.cfg",
        "pyproject.toml",
        "conftest.py",
        "tox.ini",
        "noxfile.py",
        "Makefile",
        "makefile",
        "GNUmakefile",
        "CMakeLists.txt",
        "configure",
        "build.rs",
        "Cargo.toml",
        "package.json",
        ".npmrc",
        ".pre-commit-config.yaml",
        "Dockerfile",
        "Justfile",
        "justfile",
        ".cargo",
        ".vscode",
        ".idea",
    ];
    if BUILD.iter().any(|b| name == *b || rel.starts_with(b)) || s.ends_with(".mk") {
        return Some("build, test or editor configuration: runs code".into());
    }
    if executable && entry == EntryKind::File {
        return Some("executable".into());
    }
    None
}

fn entry_kind(meta: &std::fs::Metadata) -> EntryKind {
    let t = meta.file_type();
    if t.is_symlink() {
        EntryKind::Symlink
    } else if t.is_dir() {
        EntryKind::Dir
    } else if t.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    }
}

fn same_file_content(a: &Path, b: &Path) -> bool {
    let (Ok(mut fa), Ok(mut fb)) = (open_nofollow(a), open_nofollow(b)) else {
        return false;
    };
    let mut ba = [0u8; 65536];
    let mut bb = [0u8; 65536];
    loop {
        let (Ok(na), Ok(nb)) = (read_full(&mut fa, &mut ba), read_full(&mut fb, &mut bb)) else {
            return false;
        };
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn open_nofollow(p: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_nofollow())
        .open(p)
}

fn libc_nofollow() -> i32 {
    OFlags::NOFOLLOW.bits() as i32
}

impl Review {
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// Every change, risky ones first, then by path.
    pub fn changes(&self) -> Result<Vec<Change>> {
        let mut out = Vec::new();
        self.walk(Path::new(""), true, &mut out)?;
        out.sort_by(|a, b| {
            (a.risk.is_none(), &a.path, a.kind).cmp(&(b.risk.is_none(), &b.path, b.kind))
        });
        Ok(out)
    }

    /// Compare `upper/rel` with the real `project/rel`. `real_dir`: the real `rel` is a
    /// directory reached through directories only (so looking into it follows no symlink).
    fn walk(&self, rel: &Path, real_dir: bool, out: &mut Vec<Change>) -> Result<()> {
        let upper = self.upper().join(rel);
        let real = self.meta.project.join(rel);
        let names = sorted_entries(&upper)?;
        if real_dir && !rel.as_os_str().is_empty() && is_opaque(&upper) {
            // Replaced whole: what the real directory had and the new one lacks is deleted.
            let kept: BTreeSet<_> = names.iter().cloned().collect();
            if let Ok(entries) = std::fs::read_dir(&real) {
                let mut gone: Vec<_> = entries
                    .flatten()
                    .filter(|e| !kept.contains(&e.file_name()))
                    .collect();
                gone.sort_by_key(|e| e.file_name());
                for e in gone {
                    let entry = e
                        .metadata()
                        .map(|m| entry_kind(&m))
                        .unwrap_or(EntryKind::Other);
                    let path = rel.join(e.file_name());
                    out.push(Change {
                        risk: risk_of(&path, entry, false),
                        path,
                        kind: ChangeKind::Deleted,
                        entry,
                        link_target: None,
                    });
                }
            }
        }
        for name in names {
            let path = rel.join(&name);
            let up = upper.join(&name);
            let meta = std::fs::symlink_metadata(&up).map_err(io(&up))?;
            let real_meta = if real_dir {
                std::fs::symlink_metadata(real.join(&name)).ok()
            } else {
                None
            };
            if is_whiteout(&meta) {
                if let Some(rm) = real_meta {
                    let entry = entry_kind(&rm);
                    out.push(Change {
                        risk: risk_of(&path, entry, false),
                        path,
                        kind: ChangeKind::Deleted,
                        entry,
                        link_target: None,
                    });
                }
                continue;
            }
            let entry = entry_kind(&meta);
            let executable = meta.mode() & 0o111 != 0;
            let link_target = if entry == EntryKind::Symlink {
                std::fs::read_link(&up).ok()
            } else {
                None
            };
            let kind = match &real_meta {
                None => Some(ChangeKind::Added),
                Some(rm) if entry_kind(rm) != entry => Some(ChangeKind::Modified),
                Some(rm) => {
                    let mode_changed = rm.mode() & 0o7777 != meta.mode() & 0o7777;
                    let changed = match entry {
                        EntryKind::File => {
                            mode_changed || !same_file_content(&up, &real.join(&name))
                        }
                        EntryKind::Symlink => {
                            std::fs::read_link(real.join(&name)).ok() != link_target
                        }
                        EntryKind::Dir => mode_changed,
                        EntryKind::Other => true,
                    };
                    changed.then_some(ChangeKind::Modified)
                }
            };
            if let Some(kind) = kind {
                out.push(Change {
                    risk: risk_of(&path, entry, executable),
                    path: path.clone(),
                    kind,
                    entry,
                    link_target,
                });
            }
            if entry == EntryKind::Dir {
                let real_is_dir = real_meta.is_some_and(|m| m.file_type().is_dir());
                self.walk(&path, real_is_dir, out)?;
            }
        }
        Ok(())
    }

    /// Note how the real tree stood, where the run changed it, just after the run: `apply`
    /// refuses to overwrite what changed since (the maintainer's own edits).
    pub fn record_base(&self, changes: &[Change]) -> Result<()> {
        let base: std::collections::BTreeMap<String, String> = changes
            .iter()
            .map(|c| {
                (
                    c.path.to_string_lossy().into_owned(),
                    fingerprint(&self.meta.project.join(&c.path)),
                )
            })
            .collect();
        write_meta(&self.dir.join("base.toml"), &base)
    }

    /// The paths whose state in the real tree differs from the recorded base.
    fn conflicts(&self) -> Result<Vec<PathBuf>> {
        let path = self.dir.join("base.toml");
        if !path.exists() {
            return Ok(Vec::new());
        }
        let base: std::collections::BTreeMap<String, String> =
            read_meta(&path, "the review's base")?;
        Ok(base
            .into_iter()
            .filter(|(rel, print)| fingerprint(&self.meta.project.join(rel)) != *print)
            .map(|(rel, _)| PathBuf::from(rel))
            .filter(|rel| !self.already_applied(rel))
            .collect())
    }

    /// Does the real tree hold at `rel` just what the run left there (an earlier apply, cut
    /// off, got that far)? Then applying it again overwrites nothing of the maintainer's.
    fn already_applied(&self, rel: &Path) -> bool {
        let (up, real) = (self.upper().join(rel), self.meta.project.join(rel));
        let Ok(um) = std::fs::symlink_metadata(&up) else {
            return false;
        };
        let rm = std::fs::symlink_metadata(&real).ok();
        if is_whiteout(&um) {
            return rm.is_none();
        }
        let Some(rm) = rm else {
            return false;
        };
        match entry_kind(&um) {
            // A directory's entries are looked at one by one.
            EntryKind::Dir => rm.is_dir(),
            EntryKind::File => {
                rm.is_file()
                    && rm.mode() & 0o777 == um.mode() & 0o777
                    && same_file_content(&up, &real)
            }
            EntryKind::Symlink => {
                rm.file_type().is_symlink()
                    && std::fs::read_link(&up).ok() == std::fs::read_link(&real).ok()
            }
            EntryKind::Other => false,
        }
    }

    /// Put the run's changes into the real tree (see the module doc for what is guaranteed).
    /// Where the tree changed since the run at a path the run changed, nothing is applied
    /// ([`Error::Conflict`]) unless `force`.
    pub fn apply(&self, options: ApplyOptions) -> Result<ApplyReport> {
        if !options.force {
            let conflicts = self.conflicts()?;
            if !conflicts.is_empty() {
                return Err(Error::Conflict(conflicts));
            }
        }
        let project = &self.meta.project;
        let root = rustix::fs::open(
            project,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io(project)(e.into()))?;
        let mut report = ApplyReport::default();
        let root_mode = rustix::fs::fstat(&root)
            .map(|st| Mode::from_raw_mode(st.st_mode & 0o7777))
            .map_err(|e| io(project)(e.into()))?;
        with_write_access(&root, root_mode, || {
            self.apply_dir(Path::new(""), &root, options, &mut report)
        })
        .map_err(|e| match e {
            WriteAccess::Chmod(e) => io(project)(e.into()),
            WriteAccess::Inner(e) => e,
        })?;
        Ok(report)
    }

    fn apply_dir(
        &self,
        rel: &Path,
        real_dir: &OwnedFd,
        options: ApplyOptions,
        report: &mut ApplyReport,
    ) -> Result<()> {
        let upper = self.upper().join(rel);
        let names = sorted_entries(&upper)?;
        let fail = |path: &Path, e: rustix::io::Errno| Error::Io {
            path: self.meta.project.join(path),
            source: e.into(),
        };
        remove_dead_temps(real_dir).map_err(|e| fail(rel, e))?;
        if !rel.as_os_str().is_empty() && is_opaque(&upper) {
            let kept: BTreeSet<_> = names.iter().cloned().collect();
            for e in rustix::fs::Dir::read_from(real_dir).map_err(|e| fail(rel, e))? {
                let e = e.map_err(|e| fail(rel, e))?;
                let name = os_name(e.file_name().to_bytes());
                if name == "." || name == ".." || kept.contains(&name) {
                    continue;
                }
                let path = rel.join(&name);
                let is_dir = e.file_type() == rustix::fs::FileType::Directory;
                if protected(&path, is_dir) && !options.include_git {
                    report.skipped.push(path);
                    continue;
                }
                remove_at(real_dir, &name).map_err(|e| fail(&path, e))?;
                report.applied += 1;
            }
        }
        for name in names {
            let path = rel.join(&name);
            let up = upper.join(&name);
            let meta = std::fs::symlink_metadata(&up).map_err(io(&up))?;
            if protected(&path, meta.is_dir()) && !options.include_git {
                report.skipped.push(path);
                continue;
            }
            if meta.is_file() && keepout_sandbox::autorun::is_bytecode(name.as_encoded_bytes()) {
                report.bytecode.push(path);
                continue;
            }
            if meta.is_dir() && !options.include_git && looks_like_git_dir(&up) {
                report.skipped.push(path); // a bare repository git would open there
                continue;
            }
            let existing =
                rustix::fs::statat(real_dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .ok()
                    .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode));
            if is_whiteout(&meta) {
                if existing.is_some() {
                    remove_at(real_dir, &name).map_err(|e| fail(&path, e))?;
                    report.applied += 1;
                }
                continue;
            }
            let mode = Mode::from_raw_mode(meta.mode() & 0o777);
            match entry_kind(&meta) {
                EntryKind::Dir => {
                    if existing.is_some_and(|t| t != rustix::fs::FileType::Directory) {
                        // A symlink or file the code replaced by a directory: the entry itself
                        // goes (never what it points to).
                        remove_at(real_dir, &name).map_err(|e| fail(&path, e))?;
                    }
                    if existing != Some(rustix::fs::FileType::Directory) {
                        rustix::fs::mkdirat(real_dir, name.as_os_str(), mode)
                            .map_err(|e| fail(&path, e))?;
                        report.applied += 1;
                    }
                    let child = rustix::fs::openat(
                        real_dir,
                        name.as_os_str(),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| fail(&path, e))?;
                    with_write_access(&child, mode, || {
                        self.apply_dir(&path, &child, options, report)
                    })
                    .map_err(|e| match e {
                        WriteAccess::Chmod(e) => fail(&path, e),
                        WriteAccess::Inner(e) => e,
                    })?;
                }
                EntryKind::File => {
                    let tmp = temp_name(&name);
                    let written = (|| -> Result<()> {
                        let out = rustix::fs::openat(
                            real_dir,
                            tmp.as_os_str(),
                            OFlags::WRONLY
                                | OFlags::CREATE
                                | OFlags::EXCL
                                | OFlags::NOFOLLOW
                                | OFlags::CLOEXEC,
                            mode,
                        )
                        .map_err(|e| fail(&path, e))?;
                        let mut out = std::fs::File::from(out);
                        let mut src = open_nofollow(&up).map_err(io(&up))?;
                        std::io::copy(&mut src, &mut out).map_err(io(&up))?;
                        rustix::fs::fchmod(out.as_fd(), mode).map_err(|e| fail(&path, e))?;
                        out.flush().map_err(io(&up))?;
                        out.sync_all().map_err(io(&up))?;
                        Ok(())
                    })();
                    self.replace(real_dir, &tmp, &name, existing, written, &path)?;
                    report.applied += 1;
                }
                EntryKind::Symlink => {
                    let target = std::fs::read_link(&up).map_err(io(&up))?;
                    if !options.include_symlinks && points_outside(&path, &target) {
                        report.outside_symlinks.push((path, target));
                        continue;
                    }
                    let tmp = temp_name(&name);
                    let made = rustix::fs::symlinkat(&target, real_dir, tmp.as_os_str())
                        .map_err(|e| fail(&path, e));
                    self.replace(real_dir, &tmp, &name, existing, made, &path)?;
                    report.applied += 1;
                }
                EntryKind::Other => {
                    // Devices, fifos, sockets: nothing a project needs; leave them out.
                    report.skipped.push(path);
                }
            }
        }
        Ok(())
    }

    /// Rename the finished temporary entry over `name` (a directory there goes first).
    fn replace(
        &self,
        real_dir: &OwnedFd,
        tmp: &std::ffi::OsStr,
        name: &std::ffi::OsStr,
        existing: Option<rustix::fs::FileType>,
        written: Result<()>,
        path: &Path,
    ) -> Result<()> {
        if let Err(e) = written {
            let _ = rustix::fs::unlinkat(real_dir, tmp, AtFlags::empty());
            return Err(e);
        }
        let fail = |e: rustix::io::Errno| Error::Io {
            path: self.meta.project.join(path),
            source: e.into(),
        };
        if existing == Some(rustix::fs::FileType::Directory) {
            remove_at(real_dir, name).map_err(fail)?;
        }
        rustix::fs::renameat(real_dir, tmp, real_dir, name).map_err(|e| {
            let _ = rustix::fs::unlinkat(real_dir, tmp, AtFlags::empty());
            fail(e)
        })
    }
}

/// How an entry of the real tree stands, to tell later whether it changed: absent, or its type,
/// inode, mode and (for what is not a directory, whose times move with every entry) size and
/// modification time.
fn fingerprint(path: &Path) -> String {
    match std::fs::symlink_metadata(path) {
        Err(_) => "absent".into(),
        Ok(m) if m.is_dir() => format!("dir {} {:o}", m.ino(), m.mode()),
        Ok(m) => format!(
            "{:?} {} {:o} {} {}.{}",
            entry_kind(&m),
            m.ino(),
            m.mode(),
            m.size(),
            m.mtime(),
            m.mtime_nsec()
        ),
    }
}

/// Why [`with_write_access`] failed.
enum WriteAccess {
    Chmod(rustix::io::Errno),
    Inner(Error),
}

/// Run `f` with the owner's full access to `dir`, then give `dir` its `final_mode`, whether `f`
/// succeeded or not. The run changed files in place where apply replaces them by rename, which
/// needs the directory writable even where the run's own view of it is read-only.
fn with_write_access(
    dir: &OwnedFd,
    final_mode: Mode,
    f: impl FnOnce() -> Result<()>,
) -> std::result::Result<(), WriteAccess> {
    let current = rustix::fs::fstat(dir)
        .map(|st| st.st_mode & 0o7777)
        .map_err(WriteAccess::Chmod)?;
    // Not the owner (a shared directory): go on as the directory is, and let a write that is
    // not allowed say so.
    let open = Mode::from_raw_mode(final_mode.as_raw_mode() | 0o700);
    let opened = open.as_raw_mode() != current && rustix::fs::fchmod(dir, open).is_ok();
    let result = f();
    let restored = if opened || final_mode.as_raw_mode() != current {
        rustix::fs::fchmod(dir, final_mode)
    } else {
        Ok(())
    };
    result.map_err(WriteAccess::Inner)?;
    restored.map_err(WriteAccess::Chmod)
}

/// A name beside `name` for the entry being written (created exclusively, so never an existing
/// one).
fn temp_name(name: &std::ffi::OsStr) -> std::ffi::OsString {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut t = std::ffi::OsString::from(format!("{TEMP_PREFIX}{}-{n}-", std::process::id()));
    t.push(name);
    t
}

/// Remove from `dir` the temporary entries ([`temp_name`]) of applies whose keepout is gone
/// (kill -9 in the middle of one): the entry they were to replace is still the old one.
fn remove_dead_temps(dir: &OwnedFd) -> rustix::io::Result<()> {
    let mut dead = Vec::new();
    for e in rustix::fs::Dir::read_from(dir)? {
        let e = e?;
        let name = os_name(e.file_name().to_bytes());
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if e.file_type() != rustix::fs::FileType::Directory
            && !Path::new("/proc").join(pid.to_string()).exists()
        {
            dead.push(name);
        }
    }
    for name in dead {
        match rustix::fs::unlinkat(dir, name.as_os_str(), AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How [`temp_name`]'s names start: `.keepout-apply-PID-N-NAME`.
const TEMP_PREFIX: &str = ".keepout-apply-";

/// Is `dir` (a directory of the review's upper layer) a repository git would open?
fn looks_like_git_dir(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let names: Vec<(std::ffi::OsString, bool)> = entries
        .flatten()
        .map(|e| (e.file_name(), e.file_type().is_ok_and(|t| t.is_dir())))
        .collect();
    keepout_sandbox::autorun::looks_like_git_dir(
        names.iter().map(|(n, d)| (n.as_encoded_bytes(), *d)),
    )
}

/// Remove the entry `name` in `dir`, a whole directory tree included, never following a symlink.
fn remove_at(dir: &OwnedFd, name: &std::ffi::OsStr) -> rustix::io::Result<()> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
        return rustix::fs::unlinkat(dir, name, AtFlags::empty());
    }
    let child = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for e in rustix::fs::Dir::read_from(&child)? {
        let e = e?;
        let n = os_name(e.file_name().to_bytes());
        if n != "." && n != ".." {
            names.push(n);
        }
    }
    for n in names {
        remove_at(&child, &n)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

/// An `OsString` from a directory entry's raw name.
fn os_name(bytes: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(bytes).to_os_string()
}

/// The maintainer's answer to "apply these changes?" after `keepout run --review`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Apply,
    Discard,
    /// Show the diff, then ask again.
    View,
    /// Leave the review for later (also just Enter).
    Keep,
}

impl Answer {
    /// The answer `typed` (spaces and the newline around it ignored): `a`/`apply`, `d`/`discard`,
    /// `v`/`view`, `k`/`keep` or nothing (keep); `None` for anything else, which is no answer.
    pub fn parse(typed: &str) -> Option<Answer> {
        match typed.trim() {
            "a" | "apply" => Some(Answer::Apply),
            "d" | "discard" => Some(Answer::Discard),
            "v" | "view" => Some(Answer::View),
            "" | "k" | "keep" => Some(Answer::Keep),
            _ => None,
        }
    }
}

impl Store {
    fn reviews_dir(&self) -> PathBuf {
        self.root().join("reviews")
    }

    /// A new review of `project` (canonical) for `command`: its empty `upper` and `work`.
    pub fn new_review(&self, project: &Path, command: &[String]) -> Result<Review> {
        self.make_dir(&self.reviews_dir(), false)?;
        let stamp = now();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{stamp}-"))
            .rand_bytes(4)
            .tempdir_in(self.reviews_dir())
            .map_err(io(&self.reviews_dir()))?
            .keep();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
        let review = Review {
            meta: ReviewMeta {
                version: FORMAT_VERSION,
                id: dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                project: project.to_path_buf(),
                command: command.to_vec(),
                created: stamp,
            },
            dir,
        };
        self.make_dir(&review.upper(), true)?;
        self.make_dir(&review.work(), true)?;
        write_meta(&review.dir.join("meta.toml"), &review.meta)?;
        Ok(review)
    }

    /// Every review, oldest first.
    pub fn reviews(&self) -> Result<Vec<Review>> {
        let dir = self.reviews_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let meta_path = e.path().join("meta.toml");
            if meta_path.exists() {
                out.push(Review {
                    meta: read_meta(&meta_path, "the review")?,
                    dir: e.path(),
                });
            }
        }
        out.sort_by(|a, b| (a.meta.created, &a.meta.id).cmp(&(b.meta.created, &b.meta.id)));
        Ok(out)
    }

    /// The newest review of the project that `dir` is in (the project itself or a directory
    /// inside it), or of any project with `None`.
    pub fn latest_review(&self, dir: Option<&Path>) -> Result<Option<Review>> {
        Ok(self
            .reviews()?
            .into_iter()
            .rfind(|r| dir.is_none_or(|d| d.starts_with(&r.meta.project))))
    }

    /// The kept review whose id is `id`, if there is one.
    pub fn review(&self, id: &str) -> Result<Option<Review>> {
        Ok(self.reviews()?.into_iter().find(|r| r.meta.id == id))
    }

    /// What follows a run with `review`: its changes, with their base recorded for
    /// [`Review::apply`]'s conflict check; a run that changed nothing leaves no review (it is
    /// discarded, and the changes are empty).
    pub fn changes_after_run(&self, review: &Review) -> Result<Vec<Change>> {
        let changes = review.changes()?;
        review.record_base(&changes)?;
        if changes.is_empty() {
            self.discard_review(review)?;
        }
        Ok(changes)
    }

    /// Drop a review and its files.
    pub fn discard_review(&self, review: &Review) -> Result<()> {
        remove_tree(&review.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_outside_the_project() {
        assert!(points_outside(Path::new("a"), Path::new("/etc/passwd")));
        assert!(points_outside(Path::new("a"), Path::new("../x")));
        assert!(points_outside(Path::new("d/a"), Path::new("../../x")));
        assert!(!points_outside(Path::new("d/a"), Path::new("../x")));
        assert!(!points_outside(Path::new("a"), Path::new("b/c")));
        assert!(points_outside(Path::new("d/a"), Path::new("b/../../../x")));
    }

    #[test]
    fn protected_at_any_depth() {
        assert!(protected(Path::new("vendor/lib/.git/config"), false));
        assert!(protected(
            Path::new(".git/modules/sub/hooks/pre-commit"),
            false
        ));
        assert!(protected(Path::new(".git/modules/sub/config"), false));
        assert!(!protected(Path::new(".git/modules/sub/objects/ab"), true));
        assert!(
            !protected(Path::new(".git"), true),
            "a .git directory is descended"
        );
        assert!(protected(Path::new("sub/.git"), false), "a gitdir pointer");
        assert!(!protected(Path::new("vendor/lib/.git/objects/ab"), true));
        assert!(protected(Path::new("sub/.vscode/tasks.json"), false));
        assert!(protected(Path::new("deep/.envrc"), false));
        assert!(protected(Path::new("x/.env"), false));
        assert!(
            !protected(Path::new(".env/lib/site.py"), false),
            "a venv named .env is not a dotenv file"
        );
        assert!(!protected(Path::new("src/main.rs"), false));
    }

    #[test]
    fn risk_names_what_runs_code() {
        let r = |p: &str| risk_of(Path::new(p), EntryKind::File, false);
        assert!(r(".git/hooks/pre-commit").is_some());
        assert!(r(".envrc").is_some());
        assert!(r(".github/workflows/ci.yml").is_some());
        assert!(r("sub/setup.py").is_some());
        assert!(r("src/lib.rs").is_none());
        assert!(risk_of(Path::new("run.sh"), EntryKind::File, true).is_some());
        assert!(risk_of(Path::new("l"), EntryKind::Symlink, false).is_some());
        assert!(protected(Path::new(".git/hooks/x"), false));
        assert!(!protected(Path::new(".git/objects/ab"), true));
    }

    #[test]
    fn answers_known_and_unknown() {
        for (typed, answer) in [
            ("a", Answer::Apply),
            ("apply\n", Answer::Apply),
            (" d ", Answer::Discard),
            ("discard", Answer::Discard),
            ("v", Answer::View),
            ("view", Answer::View),
            ("", Answer::Keep),
            ("\n", Answer::Keep),
            ("k", Answer::Keep),
            ("keep", Answer::Keep),
        ] {
            assert_eq!(Answer::parse(typed), Some(answer), "{typed:?}");
        }
        for typed in ["y", "yes", "A", "apply all", "ka"] {
            assert_eq!(Answer::parse(typed), None, "{typed:?}");
        }
    }

    #[test]
    fn a_review_is_found_by_its_id_only() {
        let root = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        let store = Store::new(root.path().to_path_buf());
        let review = store.new_review(project.path(), &["true".into()]).unwrap();
        let found = store.review(&review.meta.id).unwrap().expect("found");
        assert_eq!(found.dir, review.dir);
        assert!(store.review("1700000000-nope").unwrap().is_none());
    }

    #[test]
    fn a_run_that_changed_nothing_leaves_no_review() {
        let root = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        let store = Store::new(root.path().to_path_buf());
        let review = store.new_review(project.path(), &["true".into()]).unwrap();
        assert!(store.changes_after_run(&review).unwrap().is_empty());
        assert!(!review.dir.exists());

        let review = store.new_review(project.path(), &["true".into()]).unwrap();
        std::fs::write(review.upper().join("new.txt"), "x").unwrap();
        let changes = store.changes_after_run(&review).unwrap();
        assert_eq!(changes.len(), 1);
        assert!(review.dir.exists(), "kept for the maintainer");
    }
}

//! One walk over a project that finds everything in it the host runs later or that reaches a
//! host service: git directories at any depth and their control entries, editor and tool files,
//! symlinks and indexes inside git directories, unix sockets, bytecode and Python start-up files
//! (the catalogue is [`crate::autorun`]).
//!
//! The walk reads directories only (`readdir` gives each entry's type and inode): no `stat` per
//! file, never follows a symlink, and reads a git index only where one exists. The same walk
//! runs before the run (what exists: pinned read-only, remembered) and after it (what changed:
//! see [`crate::quarantine`]).

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::DirEntry;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, FileTypeExt};
use std::path::{Path, PathBuf};

use crate::autorun;
use crate::error::Error;
use crate::git_index::{self, HidingFlags};

/// One entry the walk found: where, which inode, what type, and whether a read-only mount may
/// pin it (not inside a directory a package manager recreates whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub ino: u64,
    pub is_dir: bool,
    pub pinnable: bool,
    pub is_symlink: bool,
}

/// A git directory: a `.git` directory, a bare repository, a submodule's repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitDir {
    pub dir: Found,
    /// Its existing [`autorun::GIT_CONTROL`] entries.
    pub control: Vec<Found>,
    /// Its index's hiding flags, and the index's identity (inode, size, ctime) when it has one.
    pub index: Option<IndexState>,
}

/// A git index as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexState {
    pub path: PathBuf,
    /// Inode, size and ctime: the index was not written while these stay the same.
    pub stamp: (u64, u64, i64, i64),
    /// Object id length: 20 (SHA-1) or 32 (SHA-256, `extensions.objectFormat`).
    pub hash_len: usize,
    /// Its hiding flags, read by the walk before the run; the walk after the run leaves them
    /// to [`IndexState::flags`], needed only for an index the run wrote.
    pub read: Option<Result<HidingFlags, Error>>,
}

impl IndexState {
    /// The index's hiding flags: as read by the walk, or read now.
    pub fn flags(&self) -> Result<HidingFlags, Error> {
        match &self.read {
            Some(flags) => flags.clone(),
            None => read_flags(&self.path, self.hash_len),
        }
    }
}

/// Which walk: before the run (what exists, indexes read) or after it (what was left: bytecode
/// and start-up files too; an index is read only if the run wrote it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Before,
    After,
}

/// What the walk found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectScan {
    pub git_dirs: Vec<GitDir>,
    /// `.git` files and symlinks (gitdir pointers).
    pub git_pointers: Vec<Found>,
    /// Symlinks anywhere inside a git directory (git writes through some of them).
    pub git_symlinks: Vec<Found>,
    pub editor_files: Vec<Found>,
    /// Unix sockets (a host service's; the sandbox must not reach them).
    pub sockets: Vec<PathBuf>,
    /// Symlinks elsewhere in the tree (one the run makes out of the project is a way out
    /// for the maintainer's later writes).
    pub symlinks: Vec<Found>,
    /// Bytecode and Python start-up files, by name (collected when asked for).
    pub bytecode: Vec<PathBuf>,
    pub startup_files: Vec<PathBuf>,
}

impl ProjectScan {
    /// Every (path, inode) of the git directories, pointers, git symlinks, control entries and
    /// editor files: what existed, to tell what is new.
    pub fn identities(&self) -> HashSet<(PathBuf, u64)> {
        let mut set = HashSet::new();
        for g in &self.git_dirs {
            set.insert((g.dir.path.clone(), g.dir.ino));
            for c in &g.control {
                set.insert((c.path.clone(), c.ino));
            }
        }
        for f in self
            .git_pointers
            .iter()
            .chain(&self.git_symlinks)
            .chain(&self.editor_files)
            .chain(&self.symlinks)
        {
            set.insert((f.path.clone(), f.ino));
        }
        set
    }
}

/// Walk `root` (see [`Pass`]).
///
/// The hot loop reads each directory with `getdents64` into one reused buffer
/// ([`rustix::fs::RawDir`]) and allocates only for subdirectories and the entries it keeps: a
/// project of 100,000 files is mostly names it looks at once and drops.
pub fn scan(root: &Path, pass: Pass) -> ProjectScan {
    let leftovers = pass == Pass::After;
    use rustix::fs::{FileType, Mode, OFlags, RawDir};
    let mut out = ProjectScan::default();
    let mut buf: Vec<u8> = Vec::with_capacity(32 * 1024);
    let mut stack: Vec<(PathBuf, bool)> = vec![(root.to_path_buf(), true)];
    let open_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    while let Some((dir, pinnable)) = stack.pop() {
        let Ok(fd) = rustix::fs::open(&dir, open_flags, Mode::empty()) else {
            continue;
        };
        let (mut head, mut objects, mut refs) = (false, false, false);
        let mut subdirs: Vec<Vec<u8>> = Vec::new();
        let mut kept: Vec<(Vec<u8>, FileType, u64)> = Vec::new();
        let mut entries = RawDir::new(&fd, buf.spare_capacity_mut());
        while let Some(Ok(e)) = entries.next() {
            let name = e.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let mut ty = e.file_type();
            if ty == FileType::Unknown {
                // A filesystem without d_type: ask, without following a symlink.
                ty = rustix::fs::statat(&fd, e.file_name(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| FileType::from_raw_mode(st.st_mode))
                    .unwrap_or(FileType::Unknown);
            }
            let is_dir = ty == FileType::Directory;
            match name {
                b"HEAD" if ty == FileType::RegularFile => head = true,
                b"objects" if is_dir => objects = true,
                b"refs" if is_dir => refs = true,
                _ => {}
            }
            let keep = name == b".git"
                || ty == FileType::Symlink
                || ty == FileType::Socket
                || (maybe_catalogued(name)
                    && autorun::editor_or_tool(name, is_dir)
                        .or_else(|| {
                            autorun::editor_or_tool(name, false).filter(|_| ty == FileType::Symlink)
                        })
                        .is_some())
                || (leftovers
                    && ty == FileType::RegularFile
                    && (autorun::is_bytecode(name) || autorun::is_startup_file(name)));
            if keep {
                kept.push((name.to_vec(), ty, e.ino()));
            } else if is_dir {
                subdirs.push(name.to_vec());
            }
        }
        if dir != root && head && objects && refs {
            // A bare repository git would open here; its inode is the directory's own.
            let ino = rustix::fs::fstat(&fd).map(|st| st.st_ino).unwrap_or(0);
            if let Ok(entries) = read_entries(&dir) {
                scan_git_dir(
                    root,
                    pass,
                    found(&dir, ino, true, pinnable, false),
                    entries,
                    &mut out,
                );
            }
            continue;
        }
        drop(fd);
        for (name, ty, ino) in kept {
            let path = dir.join(OsStr::from_bytes(&name));
            let is_dir = ty == FileType::Directory;
            let is_symlink = ty == FileType::Symlink;
            if name == b".git" {
                let f = found(&path, ino, is_dir, pinnable, is_symlink);
                if is_dir {
                    if let Ok(inner) = read_entries(&path) {
                        scan_git_dir(root, pass, f, inner, &mut out);
                    }
                } else {
                    out.git_pointers.push(f);
                }
            } else if maybe_catalogued(&name)
                && autorun::editor_or_tool(&name, is_dir || is_symlink)
                    .or_else(|| autorun::editor_or_tool(&name, false).filter(|_| is_symlink))
                    .is_some()
            {
                out.editor_files
                    .push(found(&path, ino, is_dir, pinnable, is_symlink));
            } else if is_symlink {
                out.symlinks.push(found(&path, ino, false, false, true));
            } else if ty == FileType::Socket {
                out.sockets.push(path);
            } else if autorun::is_bytecode(&name) {
                out.bytecode.push(path);
            } else {
                out.startup_files.push(path);
            }
        }
        for name in subdirs {
            let pin = pinnable
                && !autorun::REGENERATED_DIRS
                    .iter()
                    .any(|d| name == d.as_bytes());
            stack.push((dir.join(OsStr::from_bytes(&name)), pin));
        }
    }
    out
}

/// A cheap first test: could `name` be in the catalogue at all? (Every catalogue name starts
/// with a dot or is one of a few plain names; workspace files end in a known suffix.)
fn maybe_catalogued(name: &[u8]) -> bool {
    name.first() == Some(&b'.')
        || name.starts_with(b"mise")
        || name == b"bunfig.toml"
        || autorun::EDITOR_SUFFIXES
            .iter()
            .any(|(s, _)| name.ends_with(s.as_bytes()))
}

fn found(path: &Path, ino: u64, is_dir: bool, pinnable: bool, is_symlink: bool) -> Found {
    Found {
        path: path.to_path_buf(),
        ino,
        is_dir,
        pinnable,
        is_symlink,
    }
}

/// A directory's entries with their types (from `readdir`) and names.
type Entries = Vec<(DirEntry, std::fs::FileType, OsString)>;

fn read_entries(dir: &Path) -> std::io::Result<Entries> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir)?.flatten() {
        if let Ok(t) = e.file_type() {
            let name = e.file_name();
            v.push((e, t, name));
        }
    }
    Ok(v)
}

/// A git directory: its control entries, index, symlinks and sockets, and the repositories of
/// its submodules under `modules/`.
fn scan_git_dir(root: &Path, pass: Pass, dir: Found, entries: Entries, out: &mut ProjectScan) {
    let mut control = Vec::new();
    let mut index = None;
    let mut sub_repos = Vec::new();
    let mut inner_dirs = Vec::new();
    for (entry, ty, name) in entries {
        let path = entry.path();
        if ty.is_symlink() {
            out.git_symlinks
                .push(found(&path, entry.ino(), false, false, true));
        }
        if autorun::GIT_CONTROL.iter().any(|c| name == *c) {
            control.push(found(
                &path,
                entry.ino(),
                ty.is_dir(),
                dir.pinnable,
                ty.is_symlink(),
            ));
        }
        if ty.is_socket() {
            out.sockets.push(path.clone());
        }
        if name == "index" && ty.is_file() {
            index = Some(path.clone());
        }
        if !ty.is_dir() {
            continue;
        }
        match name.as_bytes() {
            b"objects" => {}
            b"modules" => sub_repos.push(path),
            _ => inner_dirs.push(path),
        }
    }
    let config = std::fs::read_to_string(dir.path.join("config")).unwrap_or_default();
    let index = index.map(|path| read_index(&config, path, pass));
    let pinnable = dir.pinnable;
    // What the configuration points at inside the tree is configuration too: a hooks
    // directory (`core.hooksPath`, husky's `.husky/_`) and included files (`include.path`,
    // `includeIf.*.path`), which a worktree can hold untracked or ignored.
    for target in config_paths(&dir.path, &config) {
        if let Ok(real) = std::fs::canonicalize(&target) {
            if real.starts_with(root) && !control.iter().any(|c| c.path == real) {
                if let Ok(meta) = std::fs::symlink_metadata(&real) {
                    use std::os::unix::fs::MetadataExt;
                    control.push(found(&real, meta.ino(), meta.is_dir(), pinnable, false));
                }
            }
        }
    }
    out.git_dirs.push(GitDir {
        dir,
        control,
        index,
    });
    // Symlinks and sockets deeper inside (refs/, logs/, hooks/, worktrees/...).
    let mut stack = inner_dirs;
    while let Some(d) = stack.pop() {
        let Ok(entries) = read_entries(&d) else {
            continue;
        };
        for (entry, ty, _) in entries {
            if ty.is_symlink() {
                out.git_symlinks
                    .push(found(&entry.path(), entry.ino(), false, false, true));
            } else if ty.is_socket() {
                out.sockets.push(entry.path());
            } else if ty.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    // Each directory under modules/ is a submodule's repository (nested ones under its own
    // modules/); a directory there that is not one is walked as a repository all the same.
    for modules in sub_repos {
        let Ok(entries) = read_entries(&modules) else {
            continue;
        };
        for (entry, ty, _) in entries {
            let path = entry.path();
            if ty.is_symlink() {
                out.git_symlinks
                    .push(found(&path, entry.ino(), false, false, true));
            } else if ty.is_dir() {
                if let Ok(inner) = read_entries(&path) {
                    let f = found(&path, entry.ino(), true, pinnable, false);
                    scan_git_dir(root, pass, f, inner, out);
                }
            }
        }
    }
}

/// The paths a git directory's `config` names that git reads or runs from: `core.hooksPath`
/// (relative to the work tree, the git directory's parent for a `.git`), `include.path` and
/// `includeIf.<cond>.path` (relative to the configuration file). A plain reading of git's
/// format: sections, `key = value`, quotes and `#`/`;` comments; `~/` paths are the caller's
/// home, not the tree, and are left out.
pub fn config_paths(git_dir: &Path, text: &str) -> Vec<PathBuf> {
    let work_tree = if file_name(git_dir) == b".git" {
        git_dir.parent().unwrap_or(git_dir).to_path_buf()
    } else {
        git_dir.to_path_buf()
    };
    let mut section = String::new();
    let mut paths = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.split(']').next().unwrap_or("");
            let base = name.split(['"', ' ', '.']).next().unwrap_or("");
            section = base.to_ascii_lowercase();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let mut value = value.trim();
        if let Some(v) = value.strip_prefix('"') {
            value = v.split('"').next().unwrap_or("");
        } else {
            value = value.split(['#', ';']).next().unwrap_or("").trim();
        }
        if value.is_empty() || value.starts_with('~') {
            continue;
        }
        let base = match (section.as_str(), key.as_str()) {
            ("core", "hookspath") => &work_tree,
            ("include" | "includeif", "path") => git_dir,
            _ => continue,
        };
        paths.push(base.join(value));
    }
    paths
}

/// The index's identity, and (before the run) its hiding flags. The object id length comes
/// from the repository's `extensions.objectFormat` in `config`.
fn read_index(config: &str, path: PathBuf, pass: Pass) -> IndexState {
    use std::os::unix::fs::MetadataExt;
    let stamp = std::fs::symlink_metadata(&path)
        .map(|m| (m.ino(), m.size(), m.ctime(), m.ctime_nsec()))
        .unwrap_or_default();
    let sha256 = config.lines().any(|l| {
        let l: String = l.chars().filter(|c| !c.is_whitespace()).collect();
        l.eq_ignore_ascii_case("objectformat=sha256")
    });
    let hash_len = if sha256 { 32 } else { 20 };
    let read = (pass == Pass::Before).then(|| read_flags(&path, hash_len));
    IndexState {
        path,
        stamp,
        hash_len,
        read,
    }
}

fn read_flags(path: &Path, hash_len: usize) -> Result<HidingFlags, Error> {
    std::fs::read(path)
        .map_err(|e| Error::Invalid(e.to_string()))
        .and_then(|bytes| git_index::hiding_flags(&bytes, hash_len))
}

/// The name of a path's last component as bytes ("" for none).
pub fn file_name(p: &Path) -> &[u8] {
    p.file_name().map(OsStr::as_bytes).unwrap_or(b"")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How long one walk takes on `KEEPOUT_SCAN_BENCH` (a large tree): `cargo test --release
    /// -p keepout-sandbox scan_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn scan_speed() {
        let root = std::env::var("KEEPOUT_SCAN_BENCH").unwrap_or_else(|_| "/tmp/w100k".into());
        for pass in [Pass::Before, Pass::After, Pass::Before, Pass::After] {
            let t = std::time::Instant::now();
            let s = scan(Path::new(&root), pass);
            println!(
                "{pass:?}: {:.1} ms ({} git dirs)",
                t.elapsed().as_secs_f64() * 1000.0,
                s.git_dirs.len()
            );
        }
    }
}

//! A review's summary, as data: how many changes of each kind, and the lines a summary shows.
//!
//! What this module guarantees: every risky change ([`Change::risk`]), every symlink and every
//! interpreter startup file (`.pth`, `sitecustomize.py`, ...) is a line of its own, never
//! grouped; only the other changes that lie in a tool's cache directory ([`is_cache_dir`]) or in
//! a directory the real tree's `.gitignore` rules ignore are grouped, one line per directory
//! (the topmost such), in the place of its first change. Lines keep the order of the changes
//! ([`super::Review::changes`]: risky first, then by path). Reading the ignore rules runs
//! `git check-ignore` in the real tree, which runs none of the project's code.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Change, ChangeKind, EntryKind};

/// Directories tools fill with what they regenerate: grouped in the summary wherever they are.
pub const CACHE_DIRS: &[&str] = &[
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".mypy_cache",
    ".ruff_cache",
    ".tox",
    ".nox",
    ".eggs",
    "node_modules",
    "target",
    ".gradle",
    ".cache",
];

/// Is a directory of this name one that tools fill ([`CACHE_DIRS`], or `*.egg-info`)?
pub fn is_cache_dir(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    CACHE_DIRS.contains(&name.as_ref()) || name.ends_with(".egg-info")
}

/// Must this change be named on its own line? Every risky one, every symlink, and Python's
/// startup files (`.pth`, `sitecustomize.py`), which run at every start of the interpreter.
pub fn named_alone(c: &Change) -> bool {
    use std::os::unix::ffi::OsStrExt;
    c.risk.is_some()
        || c.entry == EntryKind::Symlink
        || c.path
            .file_name()
            .is_some_and(|n| keepout_sandbox::autorun::is_startup_file(n.as_bytes()))
}

/// How many changes of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub added: usize,
    pub modified: usize,
    pub deleted: usize,
}

impl Counts {
    pub fn of(changes: &[Change]) -> Counts {
        let n = |k: ChangeKind| changes.iter().filter(|c| c.kind == k).count();
        Counts {
            added: n(ChangeKind::Added),
            modified: n(ChangeKind::Modified),
            deleted: n(ChangeKind::Deleted),
        }
    }
}

/// Why a directory's changes are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupedAs {
    /// A tool's cache directory ([`is_cache_dir`]).
    Cache,
    /// The real tree's `.gitignore` rules ignore it.
    Ignored,
}

/// The changes in one cache or ignored directory, on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The directory, relative to the project.
    pub dir: PathBuf,
    /// The kinds of change in it, in the order first seen.
    pub kinds: Vec<ChangeKind>,
    /// How many of its changes are not directories.
    pub files: usize,
    pub grouped_as: GroupedAs,
}

impl Group {
    /// The one kind of change in it, if there is only one.
    pub fn kind(&self) -> Option<ChangeKind> {
        match self.kinds.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

/// One line of the summary: a change, or a directory of grouped ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    One(&'a Change),
    Group(Group),
}

/// A review's summary: the counts, and every line (a renderer shows the first few or all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary<'a> {
    pub counts: Counts,
    pub lines: Vec<Line<'a>>,
}

impl<'a> Summary<'a> {
    /// The summary of `changes` to the real tree at `project`, its ignore rules read by git.
    pub fn of(project: &Path, changes: &'a [Change]) -> Summary<'a> {
        let ignored = ignored_dirs(project, &dirs_to_check(changes));
        Summary::with_ignored(changes, &ignored)
    }

    /// The summary of `changes`, `ignored` naming the directories (relative to the project)
    /// that the real tree's ignore rules ignore.
    pub fn with_ignored(changes: &'a [Change], ignored: &BTreeSet<PathBuf>) -> Summary<'a> {
        Summary {
            counts: Counts::of(changes),
            lines: lines_of(changes, ignored),
        }
    }
}

/// The directories whose ignore status the grouping needs: every ancestor of a change that may
/// be grouped.
pub fn dirs_to_check(changes: &[Change]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = changes
        .iter()
        .filter(|c| !named_alone(c))
        .flat_map(|c| {
            c.path
                .ancestors()
                .skip(1)
                .map(Path::to_path_buf)
                .collect::<Vec<_>>()
        })
        .filter(|d| !d.as_os_str().is_empty())
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// The directories (relative to the project) that the real tree's `.gitignore` rules ignore,
/// among `dirs`: `git check-ignore` in your project (nothing when it is not a repository).
pub fn ignored_dirs(project: &Path, dirs: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    if dirs.is_empty() {
        return out;
    }
    let child = Command::new("git")
        .current_dir(project)
        .args(["check-ignore", "--stdin", "-z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return out;
    };
    let mut input = Vec::new();
    for d in dirs {
        // A trailing slash: a directory, also where it exists only in the review.
        input.extend_from_slice(d.as_os_str().as_encoded_bytes());
        input.extend_from_slice(b"/\0");
    }
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&input);
    }
    let Ok(output) = child.wait_with_output() else {
        return out;
    };
    for item in output.stdout.split(|&b| b == 0).filter(|i| !i.is_empty()) {
        let text = String::from_utf8_lossy(item);
        out.insert(PathBuf::from(text.trim_end_matches('/')));
    }
    out
}

/// The changes as the summary shows them: the ones named alone one by one; the others in a
/// cache directory or an ignored one grouped under that directory (the topmost such), in the
/// changes' order.
fn lines_of<'a>(changes: &'a [Change], ignored: &BTreeSet<PathBuf>) -> Vec<Line<'a>> {
    let group_of = |c: &Change| -> Option<(PathBuf, GroupedAs)> {
        let as_of = |d: &Path| {
            if ignored.contains(d) {
                GroupedAs::Ignored
            } else {
                GroupedAs::Cache
            }
        };
        let mut ancestors: Vec<&Path> = c.path.ancestors().skip(1).collect();
        ancestors.reverse();
        ancestors
            .into_iter()
            .filter(|d| !d.as_os_str().is_empty())
            .find_map(|d| {
                (ignored.contains(d) || d.file_name().is_some_and(is_cache_dir))
                    .then(|| (d.to_path_buf(), as_of(d)))
            })
            // A cache directory's own entry goes with its contents.
            .or_else(|| {
                (c.entry == EntryKind::Dir
                    && (ignored.contains(&c.path) || c.path.file_name().is_some_and(is_cache_dir)))
                .then(|| (c.path.clone(), as_of(&c.path)))
            })
    };
    let mut lines = Vec::new();
    let mut groups: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for c in changes {
        let group = if named_alone(c) { None } else { group_of(c) };
        let Some((dir, grouped_as)) = group else {
            lines.push(Line::One(c));
            continue;
        };
        let at = *groups.entry(dir.clone()).or_insert_with(|| {
            lines.push(Line::Group(Group {
                dir,
                kinds: Vec::new(),
                files: 0,
                grouped_as,
            }));
            lines.len() - 1
        });
        if let Line::Group(g) = &mut lines[at] {
            if !g.kinds.contains(&c.kind) {
                g.kinds.push(c.kind);
            }
            if c.entry != EntryKind::Dir {
                g.files += 1;
            }
        }
    }
    lines
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A change as the review's tests write one (this module's and `text`'s).
    pub(in crate::review) fn change(
        path: &str,
        kind: ChangeKind,
        entry: EntryKind,
        risk: Option<&str>,
    ) -> Change {
        Change {
            path: path.into(),
            kind,
            entry,
            risk: risk.map(str::to_string),
            link_target: None,
        }
    }

    fn file(path: &str, kind: ChangeKind) -> Change {
        change(path, kind, EntryKind::File, None)
    }

    #[test]
    fn caches_and_ignored_directories_are_grouped_risky_ones_never() {
        use ChangeKind::*;
        let changes = vec![
            change("build/setup.py", Added, EntryKind::File, Some("build")),
            change("pkg/__pycache__/evil.pth", Added, EntryKind::File, None),
            change("link", Added, EntryKind::Symlink, None),
            file("pkg/__pycache__/a.pyc", Added),
            file("pkg/__pycache__/b.pyc", Modified),
            file("src/main.py", Modified),
            change("build", Added, EntryKind::Dir, None),
            file("build/out/x.o", Added),
            file("build/out/y.o", Added),
            change("node_modules", Added, EntryKind::Dir, None),
            file("node_modules/left/index.js", Deleted),
        ];
        let ignored: BTreeSet<PathBuf> = ["build", "build/out"].map(PathBuf::from).into();
        let summary = Summary::with_ignored(&changes, &ignored);
        assert_eq!(
            summary.counts,
            Counts {
                added: 8,
                modified: 2,
                deleted: 1
            }
        );
        let lines = &summary.lines;
        assert_eq!(lines.len(), 7, "{lines:#?}");
        assert_eq!(lines[0], Line::One(&changes[0]), "risky: alone");
        assert_eq!(lines[1], Line::One(&changes[1]), "a startup file: alone");
        assert_eq!(lines[2], Line::One(&changes[2]), "a symlink: alone");
        let Line::Group(pycache) = &lines[3] else {
            panic!("{:?}", lines[3])
        };
        assert_eq!(pycache.dir, Path::new("pkg/__pycache__"));
        assert_eq!(pycache.grouped_as, GroupedAs::Cache);
        assert_eq!((pycache.files, pycache.kind()), (2, None));
        assert_eq!(lines[4], Line::One(&changes[5]));
        // The topmost ignored directory, its own entry with it.
        let Line::Group(build) = &lines[5] else {
            panic!("{:?}", lines[5])
        };
        assert_eq!(build.dir, Path::new("build"));
        assert_eq!(build.grouped_as, GroupedAs::Ignored);
        assert_eq!((build.files, build.kind()), (2, Some(Added)));
        let Line::Group(modules) = &lines[6] else {
            panic!("{:?}", lines[6])
        };
        assert_eq!(modules.dir, Path::new("node_modules"));
        assert_eq!(modules.kinds, vec![Added, Deleted]);
        assert_eq!(modules.files, 1);
    }

    #[test]
    fn only_what_may_be_grouped_is_asked_about() {
        let changes = vec![
            change(
                ".github/workflows/ci.yml",
                ChangeKind::Added,
                EntryKind::File,
                Some("ci"),
            ),
            file("a/b/c.txt", ChangeKind::Added),
        ];
        assert_eq!(
            dirs_to_check(&changes),
            vec![PathBuf::from("a"), PathBuf::from("a/b")]
        );
        assert!(is_cache_dir("x.egg-info".as_ref()));
        assert!(!is_cache_dir("src".as_ref()));
    }

    #[test]
    fn ignore_rules_are_read_from_the_real_tree() {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("git")
            .args(["init", "-q"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::write(dir.path().join(".gitignore"), "/out/\n").unwrap();
        let changes = vec![
            file("out/a", ChangeKind::Added),
            file("kept/b", ChangeKind::Added),
        ];
        let summary = Summary::of(dir.path(), &changes);
        assert!(matches!(
            &summary.lines[0],
            Line::Group(Group { dir, grouped_as: GroupedAs::Ignored, .. }) if dir == Path::new("out")
        ));
        assert_eq!(summary.lines[1], Line::One(&changes[1]));
        // Not a repository: nothing is ignored.
        let plain = tempfile::tempdir().unwrap();
        assert!(ignored_dirs(plain.path(), &[PathBuf::from("out")]).is_empty());
    }
}

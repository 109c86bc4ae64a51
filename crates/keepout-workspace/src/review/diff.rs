//! A review's changes as a diff: `git diff --no-index` for each, with git's own colours and
//! binary detection and no repository configuration (it runs outside any repository, with no
//! external diff or textconv, and no system git configuration).
//!
//! What this module guarantees: the diff names each side as `tree/PATH` (the project) and
//! `review/PATH` (the run's), directories left out; git never starts a pager of its own per
//! file: the diff goes to standard output, or, given a pager, all of it through that one, as
//! git's own diff would (`LESS=FRX` and `LV=-c` unless set, as git sets them), coloured when
//! your git would colour a diff on a terminal; the pager is waited for.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{Change, ChangeKind, EntryKind, Review};
use crate::{Error, Result};

impl Review {
    /// The pager git would use (`GIT_PAGER`, `core.pager`, `PAGER`, else `less`), unless it is
    /// `cat` or empty; `None`: write straight out. (Whether standard output is a terminal is the
    /// caller's to ask first.)
    pub fn pager(&self) -> Option<String> {
        let out = git(&self.dir)
            .args(["var", "GIT_PAGER"])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let pager = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !pager.is_empty() && pager != "cat").then_some(pager)
    }

    /// Would git colour a diff on a terminal (`color.diff`, `color.ui`)?
    pub fn git_colours_diffs(&self) -> bool {
        git(&self.dir)
            .args(["config", "--get-colorbool", "color.diff", "true"])
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"true"))
    }

    /// The diff of `changes`, to standard output, or through `pager` (a shell command).
    pub fn diff(&self, changes: &[Change], pager: Option<&str>) -> Result<()> {
        let Some(pager) = pager else {
            return self.diff_to(changes, None);
        };
        let mut cmd = Command::new("sh");
        cmd.args(["-c", pager]).stdin(Stdio::piped());
        for (k, v) in [("LESS", "FRX"), ("LV", "-c")] {
            if std::env::var_os(k).is_none() {
                cmd.env(k, v);
            }
        }
        let mut child = cmd.spawn().map_err(|source| Error::Pager {
            pager: pager.into(),
            source,
        })?;
        let input = child.stdin.take().expect("piped");
        let colour = self.git_colours_diffs();
        let result = self.diff_to(changes, Some((input.as_fd(), colour)));
        drop(input);
        // The pager reads until its input closes, then waits for the user.
        let _ = child.wait();
        result
    }

    /// The diffs, to standard output, or into `to` (with colour or without).
    fn diff_to(&self, changes: &[Change], to: Option<(BorrowedFd, bool)>) -> Result<()> {
        // Names as the diff shows them: tree/PATH (your project) and review/PATH (the run's).
        for (name, target) in [
            ("tree", self.meta.project.clone()),
            ("review", self.upper()),
        ] {
            let link = self.dir.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(&target, &link)
                    .map_err(|source| Error::DiffLink { link, source })?;
            }
        }
        let null = Path::new("/dev/null");
        for c in changes {
            if c.entry == EntryKind::Dir {
                continue;
            }
            let real = Path::new("tree").join(&c.path);
            let upper = Path::new("review").join(&c.path);
            let (a, b) = match c.kind {
                ChangeKind::Added => (null, upper.as_path()),
                ChangeKind::Modified => (real.as_path(), upper.as_path()),
                ChangeKind::Deleted => (real.as_path(), null),
            };
            // Never a pager of git's own per file: one for all of them, or none.
            let mut diff = git(&self.dir);
            diff.arg("--no-pager");
            if let Some((fd, colour)) = to {
                diff.stdout(Stdio::from(
                    fd.try_clone_to_owned().map_err(Error::PagerInput)?,
                ));
                if colour {
                    diff.args(["-c", "color.diff=always"]);
                }
            }
            let status = diff
                .args([
                    "diff",
                    "--no-index",
                    "--no-ext-diff",
                    "--no-textconv",
                    "--src-prefix=",
                    "--dst-prefix=",
                    "--",
                ])
                .arg(a)
                .arg(b)
                .status()
                .map_err(Error::GitDiff)?;
            if status.code().is_some_and(|c| c > 1) {
                return Err(Error::DiffFailed(c.path.clone()));
            }
        }
        Ok(())
    }
}

/// git, in `dir`, without the system's configuration.
fn git(dir: &Path) -> Command {
    let mut git = Command::new("git");
    git.current_dir(dir).env("GIT_CONFIG_NOSYSTEM", "1");
    git
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::ReviewMeta;

    #[test]
    fn each_side_is_named_and_directories_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        let review = Review {
            dir: dir.path().join("review-1"),
            meta: ReviewMeta {
                version: 1,
                id: "1".into(),
                project: project.clone(),
                command: vec![],
                created: 0,
            },
        };
        std::fs::create_dir_all(review.upper().join("new")).unwrap();
        std::fs::create_dir(&project).unwrap();
        std::fs::write(project.join("m"), "old\n").unwrap();
        std::fs::write(project.join("gone"), "x\n").unwrap();
        std::fs::write(review.upper().join("m"), "new\n").unwrap();
        std::fs::write(review.upper().join("a"), "added\n").unwrap();
        let change = |path: &str, kind, entry| Change {
            path: path.into(),
            kind,
            entry,
            risk: None,
            link_target: None,
        };
        let changes = [
            change("a", ChangeKind::Added, EntryKind::File),
            change("gone", ChangeKind::Deleted, EntryKind::File),
            change("m", ChangeKind::Modified, EntryKind::File),
            change("new", ChangeKind::Added, EntryKind::Dir),
        ];
        let out = tempfile::tempfile().unwrap();
        review
            .diff_to(&changes, Some((out.as_fd(), false)))
            .unwrap();
        let mut out = out;
        let mut text = String::new();
        std::io::Seek::rewind(&mut out).unwrap();
        std::io::Read::read_to_string(&mut out, &mut text).unwrap();
        for line in [
            "+++ review/a\n",
            "--- tree/gone\n",
            "--- tree/m\n+++ review/m\n",
            "-old\n+new\n",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
        assert!(!text.contains("new/"), "{text}");
        assert!(!text.contains("\x1b["), "no colour asked");
    }
}

//! A review as keepout says it: the summary's lines, what an apply left alone and did.
//!
//! What this module guarantees: the summary shows [`Summary`] as it is: the counts, then its
//! lines in their order (all of them, or the first [`SHOWN`] and how many more), a change as its
//! mark (`A`, `M`, `D`), path, `/` for a directory, `-> target` for a symlink and `[risk]`, a
//! grouped directory as its mark (`*` for mixed kinds), `dir/`, its count of files and why it is
//! grouped. Every path the run chose (a change's, a symlink's target, a grouped directory) goes
//! through the caller's `shown`, which makes it safe to print (keepout escapes its control
//! characters); nothing here prints.

use std::path::Path;

use super::summary::{Counts, Group, GroupedAs, Line, Summary};
use super::{ApplyReport, Change, ChangeKind, EntryKind, Review};

/// How a path the run chose is shown: text safe to print.
pub type Shown<'a> = &'a dyn Fn(&Path) -> String;

/// How many lines a summary shows before "and N more".
pub const SHOWN: usize = 12;

/// `N added, N modified, N deleted`.
pub fn counts(c: &Counts) -> String {
    format!(
        "{} added, {} modified, {} deleted",
        c.added, c.modified, c.deleted
    )
}

/// A change's mark: `A`, `M`, `D`; `*` for a directory of mixed kinds.
pub fn mark(kind: Option<ChangeKind>) -> &'static str {
    match kind {
        Some(ChangeKind::Added) => "A",
        Some(ChangeKind::Modified) => "M",
        Some(ChangeKind::Deleted) => "D",
        None => "*",
    }
}

/// One change on its line.
pub fn describe(c: &Change, shown: Shown) -> String {
    let mut line = format!("  {} {}", mark(Some(c.kind)), shown(&c.path));
    if c.entry == EntryKind::Dir {
        line.push('/');
    }
    if let Some(target) = &c.link_target {
        line.push_str(&format!(" -> {}", shown(target)));
    }
    if let Some(risk) = &c.risk {
        line.push_str(&format!("   [{risk}]"));
    }
    line
}

/// One line of the summary: a change, or a grouped directory.
pub fn render(line: &Line, shown: Shown) -> String {
    match line {
        Line::One(c) => describe(c, shown),
        Line::Group(
            g @ Group {
                dir,
                files,
                grouped_as,
                ..
            },
        ) => format!(
            "  {} {}/  ({files} file{}, {})",
            mark(g.kind()),
            shown(dir),
            if *files == 1 { "" } else { "s" },
            match grouped_as {
                GroupedAs::Ignored => "ignored",
                GroupedAs::Cache => "cache",
            }
        ),
    }
}

/// The summary as shown: counts, then the lines (`all`, or the first few), risky first, the
/// contents of cache and ignored directories one line per directory.
pub fn render_summary(
    id: &str,
    project: &Path,
    summary: &Summary,
    all: bool,
    shown: Shown,
) -> Vec<String> {
    let mut lines = vec![format!(
        "keepout: review {id} of {}: {}",
        project.display(),
        counts(&summary.counts)
    )];
    let first = if all { summary.lines.len() } else { SHOWN };
    lines.extend(summary.lines.iter().take(first).map(|l| render(l, shown)));
    if summary.lines.len() > first {
        lines.push(format!(
            "  ... and {} more (keepout review)",
            summary.lines.len() - first
        ));
    }
    lines
}

/// The review's summary of `changes` (see [`render_summary`]), its ignore rules read from the
/// real tree ([`Summary::of`]).
pub fn summary(review: &Review, changes: &[Change], all: bool, shown: Shown) -> Vec<String> {
    let summary = Summary::of(&review.meta.project, changes);
    render_summary(&review.meta.id, &review.meta.project, &summary, all, shown)
}

/// What an apply left alone, one line each (without `keepout: `): protected paths, symlinks out
/// of the project, and the bytecode it left out (counted, one named).
pub fn left_alone(report: &ApplyReport, shown: Shown) -> Vec<String> {
    let mut lines: Vec<String> = report
        .skipped
        .iter()
        .map(|s| {
            format!(
                "left alone: {} (it runs code on your machine later; --include-git applies it)",
                shown(s)
            )
        })
        .collect();
    lines.extend(report.outside_symlinks.iter().map(|(s, target)| {
        format!(
            "left alone: {} -> {} (a symlink out of the project: what you write to it later lands there; --include-symlinks applies it)",
            shown(s),
            shown(target)
        )
    }));
    if let Some(first) = report.bytecode.first() {
        lines.push(format!(
            "left out {} bytecode file{} the run wrote (e.g. {}): it would run instead of the source beside it; your Python compiles its own",
            report.bytecode.len(),
            if report.bytecode.len() == 1 { "" } else { "s" },
            shown(first)
        ));
    }
    lines
}

/// What an apply did (without `keepout: `): `applied N change(s) to PROJECT`.
pub fn applied(report: &ApplyReport, project: &Path) -> String {
    format!(
        "applied {} change{} to {}",
        report.applied,
        if report.applied == 1 { "" } else { "s" },
        project.display()
    )
}

/// `keepout review list`: one line per review (id, project, command), or that there are none.
pub fn list(reviews: &[Review]) -> String {
    if reviews.is_empty() {
        return "no reviews kept\n".into();
    }
    reviews
        .iter()
        .map(|r| {
            format!(
                "{}  {}  {}\n",
                r.meta.id,
                r.meta.project.display(),
                r.meta.command.join(" ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::summary::tests::change;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    /// Shown as keepout shows it, as far as these paths need: the escape character as `\e`.
    fn shown(p: &Path) -> String {
        p.to_string_lossy().replace('\x1b', "\\e")
    }

    /// A fixed set of changes, as `Review::changes` orders them (risky first, then by path).
    fn changes() -> Vec<Change> {
        use ChangeKind::*;
        use EntryKind::*;
        let mut link = change("docs/latest", Added, Symlink, Some("a symlink"));
        link.link_target = Some("/etc/passwd".into());
        vec![
            change(
                ".envrc",
                Added,
                File,
                Some("runs code when you use git or direnv"),
            ),
            change(
                ".github/workflows/ci.yml",
                Modified,
                File,
                Some("CI configuration"),
            ),
            link,
            change("run.sh", Added, File, Some("executable")),
            change(
                "setup.py",
                Modified,
                File,
                Some("build, test or editor configuration: runs code"),
            ),
            change("build", Added, Dir, None),
            change("build/lib/mod.o", Added, File, None),
            change("build/lib/mod.so", Added, File, None),
            change("old.txt", Deleted, File, None),
            change("pkg/__pycache__/a.pyc", Added, File, None),
            change("pkg/__pycache__/b.pyc", Modified, File, None),
            change("pkg/x.pth", Added, File, None),
            change("src/evil\x1b[2K.py", Added, File, None),
            change("src/main.py", Modified, File, None),
            change("src/new", Added, Dir, None),
            change("target/debug/app", Added, File, None),
        ]
    }

    fn rendered(all: bool) -> String {
        let changes = changes();
        let ignored: BTreeSet<PathBuf> = [PathBuf::from("build")].into();
        let summary = Summary::with_ignored(&changes, &ignored);
        render_summary(
            "1700000000-abcd",
            Path::new("/home/me/project"),
            &summary,
            all,
            &shown,
        )
        .join("\n")
    }

    #[test]
    fn summary_risky_first_caches_and_ignored_grouped() {
        insta::assert_snapshot!("summary_all", rendered(true));
    }

    #[test]
    fn summary_after_a_run_shows_the_first_few() {
        insta::assert_snapshot!("summary_first_few", rendered(false));
    }

    #[test]
    fn what_an_apply_left_alone_and_did() {
        let report = ApplyReport {
            applied: 1,
            skipped: vec![".envrc".into()],
            outside_symlinks: vec![("out".into(), "/etc\x1b".into())],
            bytecode: vec!["a.pyc".into(), "b.pyc".into()],
        };
        assert_eq!(
            left_alone(&report, &shown),
            [
                "left alone: .envrc (it runs code on your machine later; --include-git applies it)",
                "left alone: out -> /etc\\e (a symlink out of the project: what you write to it \
                 later lands there; --include-symlinks applies it)",
                "left out 2 bytecode files the run wrote (e.g. a.pyc): it would run instead of \
                 the source beside it; your Python compiles its own",
            ]
        );
        assert_eq!(applied(&report, Path::new("/p")), "applied 1 change to /p");
        let none = ApplyReport::default();
        assert!(left_alone(&none, &shown).is_empty());
        assert_eq!(applied(&none, Path::new("/p")), "applied 0 changes to /p");
    }

    #[test]
    fn the_list_names_each_review_or_says_there_are_none() {
        assert_eq!(list(&[]), "no reviews kept\n");
        let review = Review {
            dir: "/s/reviews/1-ab".into(),
            meta: super::super::ReviewMeta {
                version: 1,
                id: "1-ab".into(),
                project: "/p".into(),
                command: vec!["make".into(), "test".into()],
                created: 1,
            },
        };
        assert_eq!(
            list(&[review.clone(), review]),
            "1-ab  /p  make test\n".repeat(2)
        );
    }
}

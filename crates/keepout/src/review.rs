//! `keepout review` and what follows `keepout run --review`: show, diff, apply or discard what a
//! run wrote aside (keepout-workspace's reviews).
//!
//! What this module guarantees: the summary shows keepout-workspace's
//! [`Summary`] as it is, every risky change one by one (what the sandbox's autorun catalogue
//! protects, CI and build files, symlinks, executables, `.pth` and other startup files), the
//! rest that lies in a tool's cache directory or a directory your tree's own `.gitignore` rules
//! ignore one line per directory with its count, every path with its control characters
//! escaped; `--json` always lists every change. The apply prompt acts only on an answer it knows. The
//! diff goes through your pager only when standard output is a terminal. Output to a closed pipe
//! ends quietly.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use keepout_workspace::review::summary::{Counts, Group, GroupedAs, Line, Summary};
use keepout_workspace::review::{Answer, Change, ChangeKind, EntryKind, Review};

use crate::cli::{ReviewAction, ReviewArgs};
use crate::workspace::{print_out, store};

/// How many lines a summary shows before "and N more".
const SHOWN: usize = 12;

fn counts(c: &Counts) -> String {
    format!(
        "{} added, {} modified, {} deleted",
        c.added, c.modified, c.deleted
    )
}

fn mark(kind: Option<ChangeKind>) -> &'static str {
    match kind {
        Some(ChangeKind::Added) => "A",
        Some(ChangeKind::Modified) => "M",
        Some(ChangeKind::Deleted) => "D",
        None => "*",
    }
}

fn describe(c: &Change) -> String {
    let mut line = format!("  {} {}", mark(Some(c.kind)), crate::shown::path(&c.path));
    if c.entry == EntryKind::Dir {
        line.push('/');
    }
    if let Some(target) = &c.link_target {
        line.push_str(&format!(" -> {}", crate::shown::path(target)));
    }
    if let Some(risk) = &c.risk {
        line.push_str(&format!("   [{risk}]"));
    }
    line
}

fn render(line: &Line) -> String {
    match line {
        Line::One(c) => describe(c),
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
            crate::shown::path(dir),
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
fn render_summary(id: &str, project: &Path, summary: &Summary, all: bool) -> Vec<String> {
    let mut lines = vec![format!(
        "keepout: review {id} of {}: {}",
        project.display(),
        counts(&summary.counts)
    )];
    let shown = if all { summary.lines.len() } else { SHOWN };
    lines.extend(summary.lines.iter().take(shown).map(render));
    if summary.lines.len() > shown {
        lines.push(format!(
            "  ... and {} more (keepout review)",
            summary.lines.len() - shown
        ));
    }
    lines
}

/// The review's summary (see [`render_summary`]).
fn summary(review: &Review, changes: &[Change], all: bool) -> Vec<String> {
    let summary = Summary::of(&review.meta.project, changes);
    render_summary(&review.meta.id, &review.meta.project, &summary, all)
}

/// After `keepout run --review`: a run keepout could not make (`Err`) takes its review with it;
/// nothing changed, the review goes; otherwise the summary, and on a terminal the question
/// apply / discard / keep; without one, how to look later.
pub fn after_run(review: &Review, code: Result<i32>) -> Result<i32> {
    let store = store();
    let code = code.inspect_err(|_| {
        let _ = store.discard_review(review);
    })?;
    let changes = store.changes_after_run(review)?;
    if changes.is_empty() {
        eprintln!("keepout: the run changed nothing in the project");
        return Ok(code);
    }
    for line in summary(review, &changes, false) {
        eprintln!("{line}");
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        eprintln!(
            "keepout: nothing was written to your tree; `keepout review diff` shows the changes, \
             `keepout review apply` puts them in, `keepout review discard` drops them"
        );
        return Ok(code);
    }
    loop {
        eprint!("Apply these changes to your tree? [a]pply, [d]iscard, [v]iew the diff, [k]eep for later (default): ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer)? == 0 {
            eprintln!();
            eprintln!("keepout: no answer (end of input): kept; `keepout review` comes back to it");
            break;
        }
        match Answer::parse(&answer) {
            Some(Answer::Apply) => {
                apply(review, Default::default())?;
                break;
            }
            Some(Answer::Discard) => {
                store.discard_review(review)?;
                eprintln!("keepout: discarded");
                break;
            }
            Some(Answer::View) => diff(review, &changes)?,
            Some(Answer::Keep) => {
                eprintln!("keepout: kept; `keepout review` comes back to it");
                break;
            }
            None => eprintln!(
                "keepout: {:?} is not an answer here: type a (apply), d (discard), v (view the diff) or k (keep; also just Enter)",
                answer.trim()
            ),
        }
    }
    Ok(code)
}

fn apply(review: &Review, options: keepout_workspace::review::ApplyOptions) -> Result<()> {
    let report = review
        .apply(options)
        .with_context(|| format!("applying review {}", review.meta.id))?;
    for s in &report.skipped {
        eprintln!(
            "keepout: left alone: {} (it runs code on your machine later; --include-git applies it)",
            crate::shown::path(s)
        );
    }
    for (s, target) in &report.outside_symlinks {
        eprintln!(
            "keepout: left alone: {} -> {} (a symlink out of the project: what you write to it later lands there; --include-symlinks applies it)",
            crate::shown::path(s),
            crate::shown::path(target)
        );
    }
    if !report.bytecode.is_empty() {
        eprintln!(
            "keepout: left out {} bytecode file{} the run wrote (e.g. {}): it would run instead of the source beside it; your Python compiles its own",
            report.bytecode.len(),
            if report.bytecode.len() == 1 { "" } else { "s" },
            crate::shown::path(&report.bytecode[0])
        );
    }
    store().discard_review(review)?;
    eprintln!(
        "keepout: applied {} change{} to {}",
        report.applied,
        if report.applied == 1 { "" } else { "s" },
        review.meta.project.display()
    );
    Ok(())
}

/// The pager git would use (`GIT_PAGER`, `core.pager`, `PAGER`, else `less`), when standard
/// output is a terminal and it is not `cat` or empty; `None`: write straight out.
fn pager(review: &Review) -> Option<String> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let out = Command::new("git")
        .current_dir(&review.dir)
        .args(["var", "GIT_PAGER"])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let pager = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !pager.is_empty() && pager != "cat").then_some(pager)
}

/// Would git colour a diff on this terminal (`color.diff`, `color.ui`)?
fn colour_on_terminal(review: &Review) -> bool {
    Command::new("git")
        .current_dir(&review.dir)
        .args(["config", "--get-colorbool", "color.diff", "true"])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"true"))
}

/// `git diff --no-index` for each change: git's own colours and binary detection, and no
/// repository configuration (it runs outside any repository, with no external diff or textconv).
/// On a terminal, all of it goes through one pager, as git's own diff would (`LESS=FRX` and
/// `LV=-c` unless set, as git sets them).
fn diff(review: &Review, changes: &[Change]) -> Result<()> {
    let Some(pager) = pager(review) else {
        return diff_to(review, changes, None);
    };
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &pager]).stdin(Stdio::piped());
    for (k, v) in [("LESS", "FRX"), ("LV", "-c")] {
        if std::env::var_os(k).is_none() {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start the pager {pager:?}"))?;
    let input = child.stdin.take().expect("piped");
    let colour = colour_on_terminal(review);
    let result = diff_to(review, changes, Some((input, colour)));
    // The pager reads until its input closes (diff_to dropped it), then waits for the user.
    let _ = child.wait();
    result
}

/// The diffs, to standard output, or into a pager's input (with colour or without).
fn diff_to(
    review: &Review,
    changes: &[Change],
    pager: Option<(std::process::ChildStdin, bool)>,
) -> Result<()> {
    // Names as the diff shows them: tree/PATH (your project) and review/PATH (the run's).
    for (name, target) in [
        ("tree", review.meta.project.clone()),
        ("review", review.upper()),
    ] {
        let link = review.dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(&target, &link)
                .with_context(|| format!("cannot make {}", link.display()))?;
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
        let rel = c.path.display().to_string();
        // Never a pager of git's own per file: one for all of them, or none.
        let mut git = Command::new("git");
        git.arg("--no-pager");
        if let Some((input, colour)) = &pager {
            use std::os::fd::AsFd;
            git.stdout(Stdio::from(input.as_fd().try_clone_to_owned()?));
            if *colour {
                git.args(["-c", "color.diff=always"]);
            }
        }
        let status = git
            .current_dir(&review.dir)
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
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
            .context("cannot run git for the diff")?;
        if status.code().is_some_and(|c| c > 1) {
            bail!("git diff failed for {rel}");
        }
    }
    Ok(())
}

pub fn review(args: ReviewArgs) -> Result<i32> {
    let store = store();
    if let Some(ReviewAction::List) = args.action {
        let reviews = store.reviews()?;
        let mut out = String::new();
        if reviews.is_empty() {
            out.push_str("no reviews kept\n");
        }
        for r in reviews {
            out.push_str(&format!(
                "{}  {}  {}\n",
                r.meta.id,
                r.meta.project.display(),
                r.meta.command.join(" ")
            ));
        }
        print_out(&out)?;
        return Ok(0);
    }
    let review = match &args.id {
        Some(id) => store
            .review(id)?
            .with_context(|| format!("no review {id} (keepout review list)"))?,
        None => {
            let cwd = std::env::current_dir()?;
            let project = std::fs::canonicalize(&cwd).unwrap_or(cwd);
            // The project's own directory or one inside it.
            match store.latest_review(Some(&project))? {
                Some(r) => r,
                None => bail!(
                    "no review of {}: `keepout run --review -- COMMAND` makes one (keepout review list shows all)",
                    project.display()
                ),
            }
        }
    };
    let changes = review.changes()?;
    match args.action {
        None => {
            let mut out = if args.json {
                serde_json::to_string_pretty(&changes)?
            } else {
                summary(&review, &changes, true).join("\n")
            };
            out.push('\n');
            print_out(&out)?;
        }
        Some(ReviewAction::Diff) => diff(&review, &changes)?,
        Some(ReviewAction::Apply {
            include_git,
            include_symlinks,
            force,
        }) => apply(
            &review,
            keepout_workspace::review::ApplyOptions {
                include_git,
                include_symlinks,
                force,
            },
        )?,
        Some(ReviewAction::Discard) => {
            store.discard_review(&review)?;
            eprintln!("keepout: review {} discarded", review.meta.id);
        }
        Some(ReviewAction::List) => unreachable!("handled above"),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    fn change(path: &str, kind: ChangeKind, entry: EntryKind, risk: Option<&str>) -> Change {
        Change {
            path: path.into(),
            kind,
            entry,
            risk: risk.map(str::to_string),
            link_target: None,
        }
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
}

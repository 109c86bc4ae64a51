//! `keepout review` and what follows `keepout run --review`: show, diff, apply or discard what a
//! run wrote aside (keepout-workspace's reviews).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use keepout_workspace::review::{Change, ChangeKind, EntryKind, Review};

use crate::cli::{ReviewAction, ReviewArgs};
use crate::workspace::store;

/// How many changes a summary names before "and N more".
const SHOWN: usize = 12;

fn counts(changes: &[Change]) -> String {
    let n = |k: ChangeKind| changes.iter().filter(|c| c.kind == k).count();
    format!(
        "{} added, {} modified, {} deleted",
        n(ChangeKind::Added),
        n(ChangeKind::Modified),
        n(ChangeKind::Deleted)
    )
}

fn describe(c: &Change) -> String {
    let mark = match c.kind {
        ChangeKind::Added => "A",
        ChangeKind::Modified => "M",
        ChangeKind::Deleted => "D",
    };
    let mut line = format!("  {mark} {}", crate::shown::path(&c.path));
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

/// The review's summary: counts, then the changes, risky first (`all`, or the first few).
fn summary(review: &Review, changes: &[Change], all: bool) -> Vec<String> {
    let mut lines = vec![format!(
        "keepout: review {} of {}: {}",
        review.meta.id,
        review.meta.project.display(),
        counts(changes)
    )];
    let shown = if all { changes.len() } else { SHOWN };
    lines.extend(changes.iter().take(shown).map(describe));
    if changes.len() > shown {
        lines.push(format!(
            "  ... and {} more (keepout review)",
            changes.len() - shown
        ));
    }
    lines
}

/// After `keepout run --review`: nothing changed, the review goes; otherwise the summary, and on
/// a terminal the question apply / discard / keep; without one, how to look later.
pub fn after_run(review: &Review, code: i32) -> Result<i32> {
    let store = store();
    let changes = review.changes()?;
    review.record_base(&changes)?;
    if changes.is_empty() {
        store.discard_review(review)?;
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
            answer.clear();
        }
        match answer.trim() {
            "a" | "apply" => {
                apply(review, Default::default())?;
                break;
            }
            "d" | "discard" => {
                store.discard_review(review)?;
                eprintln!("keepout: discarded");
                break;
            }
            "v" | "view" => diff(review, &changes)?,
            _ => {
                eprintln!("keepout: kept; `keepout review` comes back to it");
                break;
            }
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
        "keepout: applied {} changes to {}",
        report.applied,
        review.meta.project.display()
    );
    Ok(())
}

/// `git diff --no-index` for each change: git's own colours and binary detection, and no
/// repository configuration (it runs outside any repository, with no external diff or textconv).
fn diff(review: &Review, changes: &[Change]) -> Result<()> {
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
        let status = Command::new("git")
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
        if reviews.is_empty() {
            println!("no reviews kept");
        }
        for r in reviews {
            println!(
                "{}  {}  {}",
                r.meta.id,
                r.meta.project.display(),
                r.meta.command.join(" ")
            );
        }
        return Ok(0);
    }
    let review = match &args.id {
        Some(id) => store
            .reviews()?
            .into_iter()
            .find(|r| &r.meta.id == id)
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
            if args.json {
                println!("{}", serde_json::to_string_pretty(&changes)?);
            } else {
                for line in summary(&review, &changes, true) {
                    println!("{line}");
                }
            }
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

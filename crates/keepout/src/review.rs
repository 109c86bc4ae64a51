//! `keepout review` and what follows `keepout run --review`: show, diff, apply or discard what a
//! run wrote aside (keepout-workspace's reviews, said in keepout-workspace's words:
//! `review::text`).
//!
//! What this module guarantees: every path a summary or an apply names has its control
//! characters escaped ([`crate::shown::path`]); `--json` always lists every change. The apply
//! prompt asks only on a terminal and acts only on an answer it knows. The diff goes through
//! your pager only when standard output is a terminal. Output to a closed pipe ends quietly.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context, Result};
use keepout_workspace::review::{text, Answer, Change, Review};

use crate::cli::{ReviewAction, ReviewArgs};
use crate::workspace::store;

/// The review's summary as keepout shows it (paths escaped).
fn summary(review: &Review, changes: &[Change], all: bool) -> Vec<String> {
    text::summary(review, changes, all, &crate::shown::path)
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
    for line in text::left_alone(&report, &crate::shown::path) {
        eprintln!("keepout: {line}");
    }
    store().discard_review(review)?;
    eprintln!("keepout: {}", text::applied(&report, &review.meta.project));
    Ok(())
}

/// The diff, through your git's pager when standard output is a terminal.
fn diff(review: &Review, changes: &[Change]) -> Result<()> {
    let pager = if std::io::stdout().is_terminal() {
        review.pager()
    } else {
        None
    };
    Ok(review.diff(changes, pager.as_deref())?)
}

pub fn review(args: ReviewArgs) -> Result<i32> {
    let store = store();
    if let Some(ReviewAction::List) = args.action {
        print_out(&text::list(&store.reviews()?))?;
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

/// Write `text` to standard output at once; a reader that went away (`| head`) ends it
/// quietly: what it did not read it did not want.
pub fn print_out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::from(e).context("cannot write to standard output"))
        }
        _ => Ok(()),
    }
}

//! The two runs side by side: one row per attack of the run without keepout, with what the
//! same attack got inside; how many attacks each side tried and how many succeeded; and the
//! attacks that still got something inside (the demo fails when there is one); and all that as
//! the demo's text ([`Comparison::text`]: a table of fixed columns, an attack's words cut to fit
//! with an ellipsis).

use crate::{Attempt, Outcome};

/// One attack, on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: String,
    pub attack: String,
    pub without: Outcome,
    /// `None`: the run inside did not report this attack.
    pub inside: Option<Outcome>,
}

/// How one side went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Attacks that got what they wanted.
    pub succeeded: usize,
    /// Attacks that were tried for real: got, or blocked (not skipped, not info).
    pub tried: usize,
}

impl Tally {
    fn of(attempts: &[Attempt]) -> Tally {
        Tally {
            succeeded: attempts
                .iter()
                .filter(|a| a.outcome == Outcome::Got)
                .count(),
            tried: attempts
                .iter()
                .filter(|a| matches!(a.outcome, Outcome::Got | Outcome::Blocked))
                .count(),
        }
    }
}

/// The runs without and inside keepout, compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// In the order of the run without keepout.
    pub rows: Vec<Row>,
    pub without: Tally,
    pub inside: Tally,
    /// The attempts inside that got something, in the order of `rows`.
    pub leaked: Vec<Attempt>,
}

impl Comparison {
    /// An attack is the same on both sides when its id and its words are; the first such
    /// attempt inside is the one compared.
    pub fn new(without: &[Attempt], inside: &[Attempt]) -> Comparison {
        let mut rows = Vec::new();
        let mut leaked = Vec::new();
        for a in without {
            let there = inside.iter().find(|b| b.id == a.id && b.attack == a.attack);
            if let Some(b) = there.filter(|b| b.outcome == Outcome::Got) {
                leaked.push(b.clone());
            }
            rows.push(Row {
                id: a.id.clone(),
                attack: a.attack.clone(),
                without: a.outcome.clone(),
                inside: there.map(|b| b.outcome.clone()),
            });
        }
        Comparison {
            rows,
            without: Tally::of(without),
            inside: Tally::of(inside),
            leaked,
        }
    }

    /// Whether no attack got anything inside keepout.
    pub fn nothing_leaked(&self) -> bool {
        self.leaked.is_empty()
    }

    /// The table (an attack that succeeded shown as `GOT`, one not reported inside as `-`), the
    /// two tallies, and each attack that leaked inside, with what it got.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        fn show(o: &Outcome) -> &str {
            match o {
                Outcome::Got => "GOT",
                other => other.as_str(),
            }
        }
        let mut out = format!(
            "{:<4} {:<42} {:<16} inside keepout\n",
            "", "attack", "without keepout"
        );
        for row in &self.rows {
            let _ = writeln!(
                out,
                "{:<4} {:<42} {:<16} {}",
                row.id,
                truncate(&row.attack, 42),
                show(&row.without),
                row.inside.as_ref().map(show).unwrap_or("-")
            );
        }
        let _ = writeln!(
            out,
            "\nwithout keepout: {} of {} attacks succeeded\ninside keepout:  {} of {} attacks \
             succeeded",
            self.without.succeeded, self.without.tried, self.inside.succeeded, self.inside.tried
        );
        for a in &self.leaked {
            let _ = writeln!(out, "  leaked inside: {} {}: {}", a.id, a.attack, a.detail);
        }
        out
    }
}

/// `s` cut to `n` characters, the last one an ellipsis when it was longer.
fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

#[cfg(test)]
mod tests {
    use super::{truncate, Comparison, Row, Tally};
    use crate::{Attempt, Outcome};

    fn attempt(id: &str, attack: &str, outcome: &str, detail: &str) -> Attempt {
        Attempt {
            id: id.into(),
            attack: attack.into(),
            outcome: Outcome::from(outcome.to_string()),
            detail: detail.into(),
        }
    }

    #[test]
    fn all_blocked_inside_is_nothing_leaked() {
        let without = [
            attempt("A1", "read ~/.netrc", "got", "x"),
            attempt("A7", "sudo -n true", "skipped", ""),
            attempt("A11", "fill /tmp", "info", ""),
            attempt("A2", "read /proc/1/environ", "blocked", ""),
        ];
        let inside = [
            attempt("A1", "read ~/.netrc", "blocked", ""),
            attempt("A7", "sudo -n true", "skipped", ""),
            attempt("A11", "fill /tmp", "info", ""),
        ];
        let c = Comparison::new(&without, &inside);
        assert!(c.nothing_leaked());
        assert_eq!(
            c.without,
            Tally {
                succeeded: 1,
                tried: 2
            }
        );
        assert_eq!(
            c.inside,
            Tally {
                succeeded: 0,
                tried: 1
            }
        );
        assert_eq!(
            c.rows[0],
            Row {
                id: "A1".into(),
                attack: "read ~/.netrc".into(),
                without: Outcome::Got,
                inside: Some(Outcome::Blocked),
            }
        );
        assert_eq!(c.rows[3].inside, None, "not reported inside");
        assert_eq!(c.rows.len(), 4);
    }

    #[test]
    fn what_got_through_inside_is_leaked_in_row_order() {
        let without = [
            attempt("A3", "ssh-agent", "got", ""),
            attempt("A1", "read ~/.netrc", "got", ""),
            attempt("A1", "read ~/.pypirc", "got", ""),
        ];
        let inside = [
            attempt("A1", "read ~/.netrc", "got", "first"),
            attempt("A1", "read ~/.netrc", "blocked", "second"),
            attempt("A3", "ssh-agent", "got", "agent"),
            attempt("A1", "read ~/.pypirc", "blocked", ""),
            attempt("A9", "only inside", "got", ""),
        ];
        let c = Comparison::new(&without, &inside);
        assert!(!c.nothing_leaked());
        let leaked: Vec<&str> = c.leaked.iter().map(|a| a.detail.as_str()).collect();
        assert_eq!(leaked, ["agent", "first"]);
        assert_eq!(
            c.inside,
            Tally {
                succeeded: 3,
                tried: 5
            }
        );
        assert_eq!(c.rows.len(), 3, "rows are the run without keepout's");
    }

    #[test]
    fn the_text_is_the_table_the_tallies_and_what_leaked() {
        let long = "read a file with a name far too long for the table's column";
        let without = [
            attempt("A1", "read ~/.netrc", "got", ""),
            attempt("A7", long, "skipped", ""),
            attempt("A2", "read /proc/1/environ", "blocked", ""),
        ];
        let inside = [
            attempt("A1", "read ~/.netrc", "got", "machine example.org"),
            attempt("A7", long, "skipped", ""),
        ];
        let text = Comparison::new(&without, &inside).text();
        assert_eq!(
            text,
            format!(
                "{:<47} without keepout  inside keepout\n\
                 A1   {:<42} GOT              GOT\n\
                 A7   read a file with a name far too long for … skipped          skipped\n\
                 A2   {:<42} blocked          -\n\
                 \nwithout keepout: 1 of 2 attacks succeeded\n\
                 inside keepout:  1 of 1 attacks succeeded\n  \
                 leaked inside: A1 read ~/.netrc: machine example.org\n",
                "     attack", "read ~/.netrc", "read /proc/1/environ"
            )
        );
    }

    #[test]
    fn only_what_is_too_long_is_cut() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ééé", 3), "ééé");
    }
}

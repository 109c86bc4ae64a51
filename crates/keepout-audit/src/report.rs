//! The home audit as `keepout audit` gives it: the inputs read from this machine, the findings,
//! the report for people (a summary line, then each finding worst first with its fix) or for
//! scripts (JSON, docs/audit.md), the exit status for `--fail-on`, and the fixes `--fix` may run.
//!
//! Guarantees: the two reports are made of the findings and the home alone (pure functions, so
//! the binary's output is what these tests and its snapshots record); `--fix` is offered only
//! commands that change nothing but the user's own files and vault (`keepout import`,
//! `keepout ssh`, `keepout git`, and keepout as git's credential helper), each once.

use std::fmt::Write;
use std::path::Path;

use crate::{Context, Finding, Severity};

/// One audit of one home: what it looked at and what it found.
#[derive(Debug, Clone)]
pub struct HomeAudit {
    pub context: Context,
    /// Worst first.
    pub findings: Vec<Finding>,
}

impl HomeAudit {
    /// The audit of `context` (of this machine: [`Context::from_machine`]).
    pub fn of(context: Context) -> HomeAudit {
        let findings = crate::audit(&context);
        HomeAudit { context, findings }
    }

    /// Audit the same inputs again (after fixes).
    pub fn again(&mut self) {
        self.findings = crate::audit(&self.context);
    }

    /// The report for people.
    pub fn text(&self) -> String {
        report_text(&self.findings, &self.context.home)
    }

    /// The report for scripts (`--json`), without the final newline.
    pub fn json(&self) -> serde_json::Result<String> {
        report_json(&self.findings, &self.context.home)
    }

    /// 1 when a finding is at least `fail_on`, else 0.
    pub fn exit_status(&self, fail_on: Severity) -> i32 {
        i32::from(self.findings.iter().any(|f| f.severity >= fail_on))
    }

    /// What `keepout audit` prints: the JSON (with a final newline) or the text.
    pub fn printed(&self, json: bool) -> serde_json::Result<String> {
        printed(json, || self.json(), || self.text())
    }

    /// The fixes `--fix` offers, in the order of the findings.
    pub fn fixes(&self) -> Vec<Fix> {
        fixes(&self.findings, &self.context.home)
    }

    /// `--fix`: ask `confirm` about each fix, and run those it says yes to (keepout's own as
    /// `keepout_exe`), with `HOME` the audited home; `tell` hears what was skipped or failed. A
    /// fix that fails does not stop the others.
    pub fn run_fixes<E>(
        &self,
        keepout_exe: &Path,
        mut confirm: impl FnMut(&str) -> Result<bool, E>,
        mut tell: impl FnMut(&str),
    ) -> Result<(), FixError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        for fix in self.fixes() {
            if !confirm(&fix.question).map_err(|e| FixError::Confirm(Box::new(e)))? {
                tell(&format!("skipped: {}", fix.shown));
                continue;
            }
            let program = match fix.program {
                FixProgram::Keepout => keepout_exe.as_os_str(),
                FixProgram::Git => "git".as_ref(),
            };
            let status = std::process::Command::new(program)
                .args(&fix.args)
                .env("HOME", &self.context.home)
                .status()
                .map_err(|source| FixError::Start {
                    shown: fix.shown.clone(),
                    source,
                })?;
            if !status.success() {
                tell(&format!("`{}` failed ({status}); going on", fix.shown));
            }
        }
        Ok(())
    }
}

/// Why `--fix` stopped.
#[derive(Debug, thiserror::Error)]
pub enum FixError {
    /// The question could not be asked (no terminal).
    #[error("{0}")]
    Confirm(Box<dyn std::error::Error + Send + Sync>),
    /// A fix's program could not be started.
    #[error("{shown}: {source}")]
    Start {
        shown: String,
        source: std::io::Error,
    },
}

/// The report for people: a summary line, then each finding, worst first, with its fix.
pub fn report_text(findings: &[Finding], home: &Path) -> String {
    let home = home.display().to_string();
    let mut out = String::new();
    if findings.is_empty() {
        let _ = writeln!(
            out,
            "keepout audit: nothing found in {home}. Run it again after installing new tools."
        );
        return out;
    }
    write_findings(&mut out, findings, &home);
    out
}

/// A summary line of `findings` in `place`, then each finding, worst first, with its fix (the
/// home audit's and the repository audit's).
pub(crate) fn write_findings(out: &mut String, findings: &[Finding], place: &str) {
    if findings.is_empty() {
        let _ = writeln!(out, "keepout audit: nothing found in {place}.");
        return;
    }
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let summary: Vec<String> = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ]
    .into_iter()
    .filter(|s| count(*s) > 0)
    .map(|s| format!("{} {}", count(s), s.as_str()))
    .collect();
    let _ = writeln!(
        out,
        "keepout audit: {} finding{} in {place} ({}), worst first\n",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        summary.join(", ")
    );
    for f in findings {
        let _ = writeln!(out, "{:<9} {}", f.severity.as_str().to_uppercase(), f.title);
        let _ = writeln!(out, "          at:  {}", f.location);
        let _ = writeln!(out, "          why: {}", f.why);
        let _ = writeln!(out, "          fix: {}", f.fix);
        if let Some(cmd) = &f.fix_command {
            let _ = writeln!(out, "               $ {cmd}");
        }
        let _ = writeln!(out);
    }
}

/// The report for scripts (docs/audit.md), without the final newline.
pub fn report_json(findings: &[Finding], home: &Path) -> serde_json::Result<String> {
    #[derive(serde::Serialize)]
    struct Report<'a> {
        version: u32,
        home: &'a Path,
        findings: &'a [Finding],
    }
    serde_json::to_string_pretty(&Report {
        version: 1,
        home,
        findings,
    })
}

/// The JSON (ended by a newline) when `json`, else the text.
pub(crate) fn printed(
    json: bool,
    doc: impl FnOnce() -> serde_json::Result<String>,
    text: impl FnOnce() -> String,
) -> serde_json::Result<String> {
    if json {
        doc().map(|d| d + "\n")
    } else {
        Ok(text())
    }
}

/// Which program a fix runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixProgram {
    /// keepout itself (the binary running the audit).
    Keepout,
    Git,
}

/// One fix `--fix` asks about, then runs with `HOME` set to the audited home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub program: FixProgram,
    /// The arguments, after the program.
    pub args: Vec<String>,
    /// The command as shown: `keepout import netrc`, `git config …`.
    pub shown: String,
    /// What the user is asked: the finding, where, and the command.
    pub question: String,
}

/// The fix `--fix` can run for `f`, with `~/` in its arguments made `home`'s.
fn fix_of(f: &Finding, home: &Path) -> Option<(FixProgram, Vec<String>)> {
    if f.check == "git-credential-store" {
        let args = [
            "config",
            "--global",
            "--replace-all",
            "credential.helper",
            "!keepout git-credential",
        ];
        return Some((FixProgram::Git, args.map(str::to_string).to_vec()));
    }
    let cmd = f.fix_command.as_deref()?.strip_prefix("keepout ")?;
    let args: Vec<String> = cmd
        .split_whitespace()
        .map(|w| match w.strip_prefix("~/") {
            Some(rest) => home.join(rest).display().to_string(),
            None => w.to_string(),
        })
        .collect();
    // Only the commands that change nothing but the user's own files and vault.
    matches!(
        args.first().map(String::as_str),
        Some("import" | "ssh" | "git")
    )
    .then_some((FixProgram::Keepout, args))
}

/// The fixes for `findings`, in their order, each command once (asked about for its first
/// finding).
pub fn fixes(findings: &[Finding], home: &Path) -> Vec<Fix> {
    let mut fixes: Vec<Fix> = Vec::new();
    for f in findings {
        let Some((program, args)) = fix_of(f, home) else {
            continue;
        };
        let name = match program {
            FixProgram::Keepout => "keepout",
            FixProgram::Git => "git",
        };
        let shown = format!("{name} {}", args.join(" "));
        if fixes.iter().any(|done| done.shown == shown) {
            continue;
        }
        fixes.push(Fix {
            program,
            args,
            question: format!("{} ({}). Run `{shown}`?", f.title, f.location),
            shown,
        });
    }
    fixes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(check: &'static str, severity: Severity, fix_command: Option<&str>) -> Finding {
        Finding {
            check,
            severity,
            title: format!("{check} found"),
            location: "~/.netrc:3".into(),
            why: "any program can read it".into(),
            fix: "move it".into(),
            fix_command: fix_command.map(str::to_string),
        }
    }

    #[test]
    fn a_clean_home_is_one_line() {
        assert_eq!(
            report_text(&[], Path::new("/home/alice")),
            "keepout audit: nothing found in /home/alice. Run it again after installing new \
             tools.\n"
        );
    }

    #[test]
    fn the_text_counts_by_severity_then_lists_each_finding_with_its_fix() {
        let findings = [
            finding("token", Severity::High, Some("keepout import netrc")),
            finding("privilege", Severity::High, None),
            finding("path-writable", Severity::Low, None),
        ];
        let text = report_text(&findings, Path::new("/home/alice"));
        assert_eq!(
            text.lines().next().unwrap(),
            "keepout audit: 3 findings in /home/alice (2 high, 1 low), worst first"
        );
        assert!(text.contains(
            "\nHIGH      token found\n          at:  ~/.netrc:3\n          why: any program \
             can read it\n          fix: move it\n               $ keepout import netrc\n\n"
        ));
        assert!(text.ends_with("fix: move it\n\n"));
        let one = report_text(&findings[2..], Path::new("/h"));
        assert!(one.starts_with("keepout audit: 1 finding in /h (1 low), worst first\n\n"));
    }

    #[test]
    fn the_json_has_a_version_the_home_and_the_findings() {
        let json = report_json(&[finding("token", Severity::Low, None)], Path::new("/h")).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["version"], 1);
        assert_eq!(value["home"], "/h");
        assert_eq!(value["findings"][0]["severity"], "low");
        assert!(value["findings"][0].get("fix_command").is_none());
        assert!(!json.ends_with('\n'));
    }

    #[test]
    fn the_exit_status_is_1_at_or_above_fail_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut audit = HomeAudit::of(Context::from_machine(Some(dir.path()), None).unwrap());
        audit.findings = vec![finding("token", Severity::Medium, None)];
        assert_eq!(audit.exit_status(Severity::Medium), 1);
        assert_eq!(audit.exit_status(Severity::High), 0);
        audit.again();
        assert_eq!(audit.findings, crate::audit(&audit.context));
    }

    #[test]
    fn run_fixes_asks_first_says_what_it_skipped_and_stops_when_it_cannot_ask() {
        let dir = tempfile::tempdir().unwrap();
        let mut audit = HomeAudit::of(Context::from_machine(Some(dir.path()), None).unwrap());
        audit.findings = vec![finding(
            "git-setup",
            Severity::Low,
            Some("keepout git setup"),
        )];
        let exe = Path::new("/nonexistent/keepout");
        let mut asked = Vec::new();
        let mut told = Vec::new();
        audit
            .run_fixes(
                exe,
                |q| {
                    asked.push(q.to_string());
                    Ok::<_, std::io::Error>(false)
                },
                |m| told.push(m.to_string()),
            )
            .unwrap();
        assert_eq!(
            asked,
            ["git-setup found (~/.netrc:3). Run `keepout git setup`?"]
        );
        assert_eq!(told, ["skipped: keepout git setup"]);
        let err = audit
            .run_fixes(exe, |_| Err(std::io::Error::other("no terminal")), |_| {})
            .unwrap_err();
        assert_eq!(err.to_string(), "no terminal");
        let err = audit
            .run_fixes(exe, |_| Ok::<_, std::io::Error>(true), |_| {})
            .unwrap_err();
        assert!(
            err.to_string().starts_with("keepout git setup: "),
            "a program that cannot start: {err}"
        );
    }

    #[test]
    fn only_fixes_to_the_users_own_files_are_offered_each_once() {
        let home = Path::new("/home/alice");
        let findings = [
            finding(
                "plaintext-credentials",
                Severity::High,
                Some("keepout import cargo --file ~/.cargo/credentials"),
            ),
            finding(
                "git-credential-store",
                Severity::High,
                Some("keepout import git-credentials"),
            ),
            finding(
                "plaintext-credentials",
                Severity::High,
                Some("keepout import git-credentials"),
            ),
            finding("git-credential-store", Severity::Medium, None),
            finding(
                "privilege",
                Severity::High,
                Some("keepout run -- rm -rf ~/x"),
            ),
            finding("token", Severity::Low, Some("gh auth logout")),
            finding("git-setup", Severity::Low, Some("keepout git setup")),
        ];
        let fixes = fixes(&findings, home);
        let shown: Vec<&str> = fixes.iter().map(|f| f.shown.as_str()).collect();
        assert_eq!(
            shown,
            [
                "keepout import cargo --file /home/alice/.cargo/credentials",
                "git config --global --replace-all credential.helper !keepout git-credential",
                "keepout import git-credentials",
                "keepout git setup",
            ]
        );
        assert_eq!(fixes[0].program, FixProgram::Keepout);
        assert_eq!(fixes[0].args[3], "/home/alice/.cargo/credentials");
        assert_eq!(fixes[1].program, FixProgram::Git);
        assert_eq!(
            fixes[2].question,
            "plaintext-credentials found (~/.netrc:3). Run `keepout import git-credentials`?"
        );
    }
}

//! `keepout audit`: the report, for people (worst first) or scripts (--json), of the findings
//! keepout-audit makes; the two forms are recorded as snapshots of the binary's output
//! (tests/suite/snapshots.rs), so a change to either shows in review.

use std::path::PathBuf;

use keepout_audit::{Context, Finding, Severity};

use crate::cli::AuditArgs;

/// The report for people: a summary line, then each finding, worst first, with its fix.
fn text(findings: &[Finding], home: &str) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if findings.is_empty() {
        let _ = writeln!(
            out,
            "keepout audit: nothing found in {home}. Run it again after installing new tools."
        );
        return out;
    }
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let summary: Vec<String> = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ]
    .iter()
    .filter(|s| count(**s) > 0)
    .map(|s| format!("{} {}", count(*s), s.as_str()))
    .collect();
    let _ = writeln!(
        out,
        "keepout audit: {} finding{} in {home} ({}), worst first\n",
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
    out
}

/// The report for scripts (`--json`; docs/audit.md), without the final newline.
fn json(home: &std::path::Path, findings: &[Finding]) -> serde_json::Result<String> {
    #[derive(serde::Serialize)]
    struct Report<'a> {
        version: u32,
        home: &'a std::path::Path,
        findings: &'a [Finding],
    }
    serde_json::to_string_pretty(&Report {
        version: 1,
        home,
        findings,
    })
}

/// The fixes `--fix` can run for a finding: argv, without the leading `keepout` for keepout's own.
enum FixRun {
    Keepout(Vec<String>),
    Git(Vec<String>),
}

fn fix_run(f: &Finding, home: &std::path::Path) -> Option<FixRun> {
    if f.check == "git-credential-store" {
        return Some(FixRun::Git(
            [
                "config",
                "--global",
                "--replace-all",
                "credential.helper",
                "!keepout git-credential",
            ]
            .map(str::to_string)
            .to_vec(),
        ));
    }
    let cmd = f.fix_command.as_deref()?.strip_prefix("keepout ")?;
    let argv: Vec<String> = cmd
        .split_whitespace()
        .map(|w| match w.strip_prefix("~/") {
            Some(rest) => home.join(rest).display().to_string(),
            None => w.to_string(),
        })
        .collect();
    // Only the commands that change nothing but the user's own files and vault.
    matches!(
        argv.first().map(String::as_str),
        Some("import" | "ssh" | "git")
    )
    .then_some(FixRun::Keepout(argv))
}

/// `--fix`: ask before each fix keepout can do, run it, then audit again.
fn fix(ctx: &Context, findings: &[Finding]) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut done: Vec<String> = Vec::new();
    for f in findings {
        let Some(run) = fix_run(f, &ctx.home) else {
            continue;
        };
        let (program, argv, shown) = match &run {
            FixRun::Keepout(a) => (exe.clone(), a.clone(), format!("keepout {}", a.join(" "))),
            FixRun::Git(a) => (
                PathBuf::from("git"),
                a.clone(),
                format!("git {}", a.join(" ")),
            ),
        };
        if done.contains(&shown) {
            continue;
        }
        done.push(shown.clone());
        let question = format!("{} ({}). Run `{shown}`?", f.title, f.location);
        match keepout_prompt::confirm(&question) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("keepout: skipped: {shown}");
                continue;
            }
            Err(e) => return Err(e.to_string()),
        }
        let status = std::process::Command::new(&program)
            .args(&argv)
            .env("HOME", &ctx.home)
            .status()
            .map_err(|e| format!("{shown}: {e}"))?;
        if !status.success() {
            eprintln!("keepout: `{shown}` failed ({status}); going on");
        }
    }
    Ok(())
}

/// Exit status: 0 nothing at or above --fail-on, 1 findings, 2 keepout error.
pub fn audit(args: AuditArgs) -> i32 {
    let agent_socket = keepout_vault::cache::socket_dir_location()
        .ok()
        .map(|d| d.join("agent.sock"));
    let ctx = match Context::from_machine(args.home.as_deref(), agent_socket) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("keepout: audit: {e}");
            return 2;
        }
    };
    let fail_on = Severity::parse(&args.fail_on).unwrap_or(Severity::High);
    let mut findings = keepout_audit::audit(&ctx);
    if args.fix {
        if let Err(e) = fix(&ctx, &findings) {
            eprintln!("keepout: audit --fix: {e}");
            return 2;
        }
        findings = keepout_audit::audit(&ctx);
        eprintln!("keepout: audit after the fixes:");
    }
    if args.json {
        match json(&ctx.home, &findings) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("keepout: audit: {e}");
                return 2;
            }
        }
    } else {
        print!("{}", text(&findings, &ctx.home.display().to_string()));
    }
    i32::from(findings.iter().any(|f| f.severity >= fail_on))
}

//! `keepout audit`: the report, for people (worst first) or scripts (--json).

use std::path::PathBuf;

use keepout_audit::{Context, Finding, Severity};

use crate::cli::AuditArgs;

fn groups() -> Vec<String> {
    std::process::Command::new("id")
        .arg("-Gn")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn context(args: &AuditArgs) -> Result<Context, String> {
    let real_home = std::env::var_os("HOME").map(PathBuf::from);
    let home = match (&args.home, &real_home) {
        (Some(h), _) => std::path::absolute(h).map_err(|e| format!("{}: {e}", h.display()))?,
        (None, Some(h)) => h.clone(),
        (None, None) => return Err("HOME is not set; give --home DIR".into()),
    };
    if let Err(e) = std::fs::read_dir(&home) {
        return Err(format!("cannot read {}: {e}", home.display()));
    }
    Ok(Context {
        project: std::env::current_dir()
            .ok()
            .filter(|d| d.parent().is_some()),
        env: std::env::vars().collect(),
        uid: rustix::process::getuid().as_raw(),
        user: std::env::var("USER").unwrap_or_default(),
        groups: groups(),
        probe: args.home.is_none(),
        keepout_agent_socket: keepout_vault::cache::socket_dir()
            .ok()
            .map(|d| d.join("agent.sock")),
        home,
    })
}

fn print(findings: &[Finding], home: &str) {
    if findings.is_empty() {
        println!(
            "keepout audit: nothing found in {home}. Run it again after installing new tools."
        );
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
    .iter()
    .filter(|s| count(**s) > 0)
    .map(|s| format!("{} {}", count(*s), s.as_str()))
    .collect();
    println!(
        "keepout audit: {} finding{} in {home} ({}), worst first\n",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        summary.join(", ")
    );
    for f in findings {
        println!("{:<9} {}", f.severity.as_str().to_uppercase(), f.title);
        println!("          at:  {}", f.location);
        println!("          why: {}", f.why);
        println!("          fix: {}", f.fix);
        if let Some(cmd) = &f.fix_command {
            println!("               $ {cmd}");
        }
        println!();
    }
}

/// Exit status: 0 nothing at or above --fail-on, 1 findings, 2 keepout error.
pub fn audit(args: AuditArgs) -> i32 {
    let ctx = match context(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("keepout: audit: {e}");
            return 2;
        }
    };
    let fail_on = Severity::parse(&args.fail_on).unwrap_or(Severity::High);
    let findings = keepout_audit::audit(&ctx);
    if args.json {
        #[derive(serde::Serialize)]
        struct Report<'a> {
            version: u32,
            home: &'a std::path::Path,
            findings: &'a [Finding],
        }
        let doc = Report {
            version: 1,
            home: &ctx.home,
            findings: &findings,
        };
        match serde_json::to_string_pretty(&doc) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("keepout: audit: {e}");
                return 2;
            }
        }
    } else {
        print(&findings, &ctx.home.display().to_string());
    }
    i32::from(findings.iter().any(|f| f.severity >= fail_on))
}

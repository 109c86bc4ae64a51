//! `keepout audit`: keepout-audit's [`HomeAudit`] of the caller's home (or `--home DIR`),
//! printed for people or scripts (--json), after `--fix` has asked about and run each fix it
//! offers; both reports are recorded as snapshots of the binary's output
//! (tests/suite/snapshots.rs).

use keepout_audit::{Context, FixProgram, HomeAudit, Severity};

use crate::cli::AuditArgs;

/// `--fix`: ask before each fix keepout can do, and run it.
fn fix(audit: &HomeAudit) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    for fix in audit.fixes() {
        match keepout_prompt::confirm(&fix.question) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("keepout: skipped: {}", fix.shown);
                continue;
            }
            Err(e) => return Err(e.to_string()),
        }
        let program = match fix.program {
            FixProgram::Keepout => exe.clone(),
            FixProgram::Git => "git".into(),
        };
        let status = std::process::Command::new(program)
            .args(&fix.args)
            .env("HOME", &audit.context.home)
            .status()
            .map_err(|e| format!("{}: {e}", fix.shown))?;
        if !status.success() {
            eprintln!("keepout: `{}` failed ({status}); going on", fix.shown);
        }
    }
    Ok(())
}

/// Exit status: 0 nothing at or above --fail-on, 1 findings, 2 keepout error.
pub fn audit(args: AuditArgs) -> i32 {
    let agent_socket = keepout_vault::cache::socket_dir_location()
        .ok()
        .map(|d| d.join("agent.sock"));
    let mut audit = match Context::from_machine(args.home.as_deref(), agent_socket) {
        Ok(context) => HomeAudit::of(context),
        Err(e) => {
            eprintln!("keepout: audit: {e}");
            return 2;
        }
    };
    let fail_on = Severity::parse(&args.fail_on).unwrap_or(Severity::High);
    if args.fix {
        if let Err(e) = fix(&audit) {
            eprintln!("keepout: audit --fix: {e}");
            return 2;
        }
        audit.again();
        eprintln!("keepout: audit after the fixes:");
    }
    if args.json {
        match audit.json() {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("keepout: audit: {e}");
                return 2;
            }
        }
    } else {
        print!("{}", audit.text());
    }
    audit.exit_status(fail_on)
}

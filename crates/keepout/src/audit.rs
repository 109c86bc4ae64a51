//! `keepout audit`: keepout-audit's [`HomeAudit`] of the caller's home (or `--home DIR`), or
//! with `--repo` its [`RepoAudit`] of a repository's release path, printed for people or
//! scripts (--json); `--fix` is keepout-audit's walk through the fixes. Both home reports are
//! recorded as snapshots of the binary's output (tests/suite/snapshots.rs).

use anyhow::Context as _;
use keepout_audit::{Context, HomeAudit, RepoAudit, RepoOptions, Severity, TokenSource};

use crate::cli::AuditArgs;

/// Exit status: 0 nothing at or above --fail-on, 1 findings, 2 keepout error.
pub fn audit(args: AuditArgs) -> i32 {
    let fail_on = Severity::parse(&args.fail_on).unwrap_or(Severity::High);
    if let Some(dir) = &args.repo {
        let token = match args.token.as_deref().map(repo_token).transpose() {
            Ok(token) => token,
            Err(e) => return fail(&format!("{e:#}")),
        };
        let zizmor = args.zizmor;
        return match RepoAudit::of(dir.as_deref(), &RepoOptions { zizmor, token }) {
            Ok(a) => print(a.printed(args.json), a.exit_status(fail_on)),
            Err(e) => fail(&e),
        };
    }
    let agent_socket = keepout_vault::cache::socket_dir_location()
        .ok()
        .map(|d| d.join("agent.sock"));
    let mut audit = match Context::from_machine(args.home.as_deref(), agent_socket) {
        Ok(context) => HomeAudit::of(context),
        Err(e) => return fail(&e),
    };
    if args.fix {
        let tell = |m: &str| eprintln!("keepout: {m}");
        let exe = std::env::current_exe().unwrap_or_else(|_| "keepout".into());
        if let Err(e) = audit.run_fixes(&exe, keepout_prompt::confirm, tell) {
            eprintln!("keepout: audit --fix: {e}");
            return 2;
        }
        audit.again();
        eprintln!("keepout: audit after the fixes:");
    }
    print(audit.printed(args.json), audit.exit_status(fail_on))
}

/// `--token SOURCE`: a secret of the vault (`keepout:NAME`), or what `gh auth token` prints.
fn repo_token(source: &str) -> anyhow::Result<secrecy::SecretString> {
    let TokenSource::Vault(name) = TokenSource::parse(source)? else {
        return Ok(keepout_audit::gh_token()?);
    };
    let vault = crate::secret::session().read_document(&crate::secret::vault());
    let token = vault.and_then(|v| Ok(v.get(&name)?.value.to_string()));
    let hint = || format!("--token {source} (`keepout secret set {name}` stores one)");
    Ok(token.with_context(hint)?.into())
}

fn fail(e: &dyn std::fmt::Display) -> i32 {
    eprintln!("keepout: audit: {e}");
    2
}

/// Print the report; `status`, or 2 when it cannot be made.
fn print(report: serde_json::Result<String>, status: i32) -> i32 {
    match report {
        Ok(report) => print!("{report}"),
        Err(e) => return fail(&e),
    }
    status
}

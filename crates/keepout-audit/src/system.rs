//! Credentials in system-wide files (`/etc/pip.conf`, `/etc/gitconfig`, a global `npmrc`, ...,
//! and the global configs inside toolchains in the home): the catalogue and the detector that
//! `keepout run` uses to keep them out of its sandboxes (`keepout_credentials`), so the audit
//! reports exactly what the sandbox hides.

use std::path::Path;

use keepout_credentials::detect::Verdict;
use keepout_credentials::system::{describe, examine_file, files, TOO_LARGE};

use crate::{Context, Finding, Severity};

pub fn check(ctx: &Context, out: &mut Vec<Finding>) {
    let root = ctx.system_root.as_deref();
    for (place, path) in files(root, Some(&ctx.home)) {
        let Ok(verdict) = examine_file(&path, place.shape) else {
            continue; // not readable by this user: not readable by the programs it runs
        };
        let hits = verdict.hits();
        if matches!(verdict, Verdict::Clean) || hits.iter().any(|h| h.kind == TOO_LARGE) {
            continue;
        }
        let in_home = place.path.starts_with("~/");
        let location = match (in_home, root) {
            (false, Some(root)) => Path::new("/")
                .join(path.strip_prefix(root).unwrap_or(&path))
                .display()
                .to_string(),
            _ => ctx.show(&path),
        };
        let why = if in_home {
            "A toolchain's global config: every program you run reads it, and so does every tool of that toolchain."
        } else {
            "A system-wide file: every user of this machine and every program they run can read it. keepout run hides these credentials from its sandboxes; nothing else does."
        };
        out.push(Finding {
            check: "system-credentials",
            severity: Severity::High,
            title: format!(
                "credentials in a file read by {} ({})",
                place.tool,
                describe(hits)
            ),
            location,
            why: why.into(),
            fix: "Take the credential out of the file: keep it in the vault and give it to the one command that needs it (`keepout exec`: PIP_INDEX_URL, NPM_TOKEN, GIT_CONFIG_*), or in your own config with mode 0600; revoke it if others could read it.".into(),
            fix_command: None,
        });
    }
}

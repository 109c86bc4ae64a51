//! Landlock: the plan's visibility rules again, enforced by the kernel per process, plus the
//! scoping of abstract unix sockets and signals to the sandbox (Landlock ABI 6 and later).
//!
//! Guarantee: after [`restrict`] returns, the calling process and everything it starts can open
//! files only beneath the rules' paths with the rules' rights, cannot connect to an abstract unix
//! socket created outside its domain, and cannot signal processes outside it — as far as the
//! running kernel supports (best effort; [`LandlockReport`] says what was enforced).

use std::os::fd::{AsRawFd, BorrowedFd};

use landlock::{
    Access, AccessFs, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, Scope, ABI,
};

use crate::plan::{LandlockAccess, LandlockRule};

/// The newest ABI whose rights keepout has been tested with.
const TESTED_ABI: ABI = ABI::V7;

/// What Landlock enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LandlockReport {
    Full,
    Partial,
    NotEnforced,
}

fn rights(access: LandlockAccess) -> BitFlags<AccessFs> {
    let all = AccessFs::from_all(TESTED_ABI);
    match access {
        LandlockAccess::ListDir => AccessFs::ReadDir.into(),
        LandlockAccess::Read => AccessFs::from_read(TESTED_ABI),
        LandlockAccess::ReadWrite => all,
        LandlockAccess::ReadWriteFiles => {
            AccessFs::ReadFile | AccessFs::ReadDir | AccessFs::WriteFile | AccessFs::Truncate
        }
        LandlockAccess::Device => all & !(AccessFs::MakeChar | AccessFs::MakeBlock),
    }
}

/// Restrict the calling process. `stdio_terminals` are descriptors (0-2) that are terminals
/// opened before the sandbox: reopening them (e.g. `/dev/stdout`) stays possible.
pub fn restrict(
    rules: &[LandlockRule],
    stdio_terminals: &[BorrowedFd<'_>],
) -> Result<LandlockReport, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("Landlock: {what}: {e}");
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(TESTED_ABI))
        .map_err(|e| fail("handle filesystem access", &e))?
        .scope(Scope::from_all(TESTED_ABI))
        .map_err(|e| fail("scope sockets and signals", &e))?
        .create()
        .map_err(|e| fail("create ruleset", &e))?;
    for rule in rules {
        let fd = match PathFd::new(&rule.path) {
            Ok(fd) => fd,
            Err(_) => continue, // a path that does not exist inside grants nothing
        };
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, rights(rule.access)))
            .map_err(|e| fail(&format!("rule for {}", rule.path.display()), &e))?;
    }
    for fd in stdio_terminals {
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        if let Ok(pfd) = PathFd::new(&path) {
            let access =
                AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev;
            ruleset = ruleset
                .add_rule(PathBeneath::new(pfd, access))
                .map_err(|e| fail("rule for the terminal", &e))?;
        }
    }
    let status = ruleset.restrict_self().map_err(|e| fail("restrict", &e))?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => LandlockReport::Full,
        RulesetStatus::PartiallyEnforced => LandlockReport::Partial,
        _ => LandlockReport::NotEnforced,
    })
}

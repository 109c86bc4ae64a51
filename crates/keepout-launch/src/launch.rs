//! The launch of one built policy: keepout's proxy when an allowlist is given (watching for the
//! decoys' values), the run, and what came of it. Guarantees: nothing is printed; the proxy
//! starts only when the sandbox hands over its egress listener and only with an allowlist; an
//! [`Outcome`] holds every fact the run's report and lines are made of, and its JSON report is
//! the one `--report FILE` has always written (version 2).

use std::path::{Path, PathBuf};

use keepout_sandbox::decoys::{DecoyRead, Decoys};
use keepout_sandbox::{AfterRun, Dropped, Policy};

use crate::Error;

/// What came of a run.
#[derive(Debug)]
#[cfg_attr(test, derive(Default))]
pub struct Outcome {
    /// The command's exit code (128 + the signal when a signal ended it).
    pub exit_code: i32,
    /// Connections the proxy refused (not on the allowlist, a private address, ...).
    pub refusals: Vec<keepout_net::Refusal>,
    /// Destinations allowed but not reachable (no address, refused, timed out).
    pub unreachable: Vec<keepout_net::Refusal>,
    /// Requests that carried a decoy's value, all refused.
    pub decoys_sent: Vec<keepout_net::Sent>,
    /// The decoys the command opened.
    pub decoys_read: Vec<DecoyRead>,
    /// Deny-listed system calls the command tried, each once.
    pub refused_syscalls: Vec<String>,
    /// Terminal sequences the relay dropped, by kind.
    pub terminal_dropped: Vec<Dropped>,
    /// What a limit did to the run.
    pub stopped: Vec<keepout_sandbox::limits::Stopped>,
    /// What keepout undid in the project after the run.
    pub after: AfterRun,
    /// When the command failed as a `pip install` into an externally managed Python: its
    /// `EXTERNALLY-MANAGED` file.
    pub externally_managed: Option<PathBuf>,
}

impl Outcome {
    /// The JSON report (`--report FILE`), without its final newline.
    pub fn report_json(&self) -> Result<String, Error> {
        #[derive(serde::Serialize)]
        struct Report<'a> {
            version: u32,
            refused: &'a [keepout_net::Refusal],
            unreachable: &'a [keepout_net::Refusal],
            syscalls: &'a [String],
            decoys_read: &'a [DecoyRead],
            decoys_sent: &'a [keepout_net::Sent],
            terminal_dropped: &'a [Dropped],
        }
        Ok(serde_json::to_string_pretty(&Report {
            version: 2,
            refused: &self.refusals,
            unreachable: &self.unreachable,
            syscalls: &self.refused_syscalls,
            decoys_read: &self.decoys_read,
            decoys_sent: &self.decoys_sent,
            terminal_dropped: &self.terminal_dropped,
        })?)
    }

    /// Write the JSON report (`--report FILE`) to `path`, with its final newline.
    pub fn write_report(&self, path: &Path) -> Result<(), Error> {
        std::fs::write(path, self.report_json()? + "\n").map_err(|source| Error::WriteReport {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Run `policy`: through keepout's proxy to what `allow` lets through when it is given,
/// watching for the values of `decoys`.
///
/// Call it from a process with no other threads (as the keepout binary does): the sandbox
/// waits for its children's SIGCHLD with the signal blocked in the calling thread, and another
/// thread that does not block it can take that signal (the proxy's threads are started after
/// the block, and inherit it).
pub fn launch(
    policy: &Policy,
    allow: Option<&keepout_net::Allowlist>,
    decoys: Option<&Decoys>,
) -> Result<Outcome, Error> {
    launch_with(policy, allow, decoys, |egress| {
        Ok(keepout_sandbox::run_with_egress(policy, egress)?)
    })
}

/// [`launch`] in the engine's container that `plan` makes (`--image`): the same proxy, the
/// same decoys (watched on the host side of their bind mount), the same after-run check, the
/// same outcome (no refused system calls or terminal sequences: the engine's seccomp profile
/// refuses without telling, and the engine relays the terminal).
pub fn launch_in_image(
    policy: &Policy,
    plan: &keepout_container::Plan,
    allow: Option<&keepout_net::Allowlist>,
    decoys: Option<&Decoys>,
) -> Result<Outcome, Error> {
    let id = &policy.identity;
    if let Some(decoys) = decoys.filter(|_| id.host_uid != crate::Caller::effective_uid()) {
        decoys.give_to(id.host_uid, id.host_gid)?;
    }
    launch_with(policy, allow, decoys, |egress| {
        let (code, after) = plan.run(policy, egress)?;
        Ok(keepout_sandbox::RunReport {
            outcome: keepout_sandbox::Outcome::Exited(code),
            after,
            refused_syscalls: Vec::new(),
            terminal_dropped: Vec::new(),
            stopped: Vec::new(),
        })
    })
}

/// The proxy around a backend's run: `run` hands the listener it makes to the function it is
/// given, which starts the proxy on it.
fn launch_with(
    policy: &Policy,
    allow: Option<&keepout_net::Allowlist>,
    decoys: Option<&Decoys>,
    run: impl FnOnce(&mut dyn FnMut(std::net::TcpListener)) -> Result<keepout_sandbox::RunReport, Error>,
) -> Result<Outcome, Error> {
    let canaries = keepout_net::Canaries::new(
        &decoys
            .map(|d| d.values())
            .unwrap_or_default()
            .iter()
            .map(|v| keepout_net::Canary {
                name: v.decoy.clone(),
                value: v.value.clone(),
                random: v.random.clone(),
            })
            .collect::<Vec<_>>(),
    );
    let mut proxy: Option<keepout_net::Proxy> = None;
    let report = run(&mut |listener| {
        if let Some(allow) = allow {
            proxy = Some(keepout_net::Proxy::start(
                listener,
                allow.clone(),
                keepout_net::own_addresses(),
                canaries.clone(),
            ));
        }
    })?;
    let (unreachable, refusals): (Vec<_>, Vec<_>) = proxy
        .as_ref()
        .map(|p| p.refusals())
        .unwrap_or_default()
        .into_iter()
        .partition(|r| r.kind == keepout_net::RefusalKind::Unreachable);
    let decoys_sent = proxy.as_ref().map(|p| p.sent()).unwrap_or_default();
    let decoys_read = decoys.map(|d| d.opened()).unwrap_or_default();
    let exit_code = report.outcome.exit_code();
    let externally_managed = if exit_code != 0 {
        crate::externally_managed_pip(&policy.command, &policy.env)
    } else {
        None
    };
    Ok(Outcome {
        exit_code,
        refusals,
        unreachable,
        decoys_sent,
        decoys_read,
        refused_syscalls: report.refused_syscalls,
        terminal_dropped: report.terminal_dropped,
        stopped: report.stopped,
        after: report.after,
        externally_managed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{caller_request, Caller, Config};

    /// Whether this machine lets a sandbox start (user namespaces); the integration suite
    /// covers the rest where it does not.
    fn sandboxes_start() -> bool {
        keepout_sandbox::KernelSupport::probe()
            .checks
            .iter()
            .any(|c| c.name == "user namespaces" && c.ok)
    }

    fn policy(project: &std::path::Path, command: &[&str]) -> Policy {
        let config = Config::parse("/c.toml".into(), String::new()).unwrap();
        let mut req = caller_request(
            command.iter().map(|w| w.to_string()).collect(),
            Caller::current(),
            &config,
        )
        .unwrap();
        req.toolchains = false;
        req.project = Some(project.to_path_buf());
        Policy::build(&req).unwrap()
    }

    #[test]
    fn the_report_file_is_the_json_and_a_newline() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = Outcome {
            refused_syscalls: vec!["ptrace".into()],
            ..Outcome::default()
        };
        let path = dir.path().join("report.json");
        outcome.write_report(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, outcome.report_json().unwrap() + "\n");
        let report: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(report["syscalls"], serde_json::json!(["ptrace"]));
        let gone = dir.path().join("no/report.json");
        let e = outcome.write_report(&gone).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("cannot write the report {}", gone.display())
        );
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn a_run_without_network_reports_its_exit_code_and_nothing_refused() {
        if !sandboxes_start() {
            eprintln!("skipped: no user namespaces here");
            return;
        }
        let project = tempfile::tempdir().unwrap();
        let policy = policy(project.path(), &["/bin/sh", "-c", "exit 3"]);
        let outcome = launch(&policy, None, None).unwrap();
        assert_eq!(outcome.exit_code, 3);
        assert!(outcome.refusals.is_empty());
        assert!(outcome.unreachable.is_empty());
        assert!(outcome.decoys_sent.is_empty());
        assert!(outcome.decoys_read.is_empty());
        assert_eq!(outcome.externally_managed, None);
        let report: serde_json::Value =
            serde_json::from_str(&outcome.report_json().unwrap()).unwrap();
        assert_eq!(report["version"], 2);
        assert_eq!(report["refused"], serde_json::json!([]));
        assert_eq!(report["decoys_sent"], serde_json::json!([]));
    }

    #[test]
    fn a_command_that_is_not_there_is_the_sandboxs_error() {
        if !sandboxes_start() {
            eprintln!("skipped: no user namespaces here");
            return;
        }
        let project = tempfile::tempdir().unwrap();
        let policy = policy(project.path(), &["/no/such/command"]);
        let e = launch(&policy, None, None).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Sandbox(keepout_sandbox::Error::Exec {
                    not_found: true,
                    ..
                })
            ),
            "{e:?}"
        );
    }
}

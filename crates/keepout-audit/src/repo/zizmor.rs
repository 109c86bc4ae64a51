//! `--zizmor`: zizmor's own audit of the workflows, run where it is installed, its findings
//! added to the report. zizmor is the anchor for workflow checks; keepout asks it only for its
//! offline audits (`--offline`: no network, no token).
//!
//! Guarantees: zizmor missing is [`RepoError::ZizmorMissing`] (which says how to install it),
//! never a silently shorter report; its findings keep its severity and its audit's name
//! (`zizmor: template-injection`), at the `file:line` of its primary location; findings it
//! marks as ignored are left out.

use std::path::Path;

use serde::Deserialize;

use super::RepoError;
use crate::{Finding, Severity};

/// One finding of `zizmor --format json` (the fields keepout reads; others are ignored).
#[derive(Debug, Deserialize)]
struct ZizmorFinding {
    ident: String,
    desc: String,
    #[serde(default)]
    url: String,
    determinations: Determinations,
    #[serde(default)]
    locations: Vec<Location>,
    #[serde(default)]
    ignored: bool,
}

#[derive(Debug, Deserialize)]
struct Determinations {
    severity: String,
}

#[derive(Debug, Deserialize)]
struct Location {
    symbolic: Symbolic,
    concrete: Concrete,
}

#[derive(Debug, Deserialize)]
struct Symbolic {
    /// `{"Local": {"given_path": ...}}` (or `{"path": ...}` in older output).
    key: serde_json::Value,
    #[serde(default)]
    annotation: String,
    #[serde(default)]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct Concrete {
    location: Span,
}

#[derive(Debug, Deserialize)]
struct Span {
    start_point: Point,
}

#[derive(Debug, Deserialize)]
struct Point {
    /// 0-based.
    row: usize,
}

fn severity_of(zizmor: &str) -> Severity {
    match zizmor.to_ascii_lowercase().as_str() {
        "high" => Severity::High,
        "medium" => Severity::Medium,
        "low" => Severity::Low,
        _ => Severity::Info,
    }
}

/// The path a location names, relative to `repo` when it is inside it.
fn path_of(key: &serde_json::Value, repo: &Path) -> String {
    let path = ["/Local/given_path", "/Local/path", "/path", "/Remote/path"]
        .iter()
        .find_map(|p| key.pointer(p).and_then(|v| v.as_str()))
        .unwrap_or("?");
    let repo = repo.display().to_string();
    path.strip_prefix(&repo)
        .map(|p| p.trim_start_matches('/'))
        .unwrap_or(path)
        .to_string()
}

/// zizmor's findings from its JSON output.
pub fn parse(json: &str, repo: &Path) -> Result<Vec<Finding>, RepoError> {
    let found: Vec<ZizmorFinding> =
        serde_json::from_str(json).map_err(|e| RepoError::ZizmorOutput(e.to_string()))?;
    Ok(found
        .into_iter()
        .filter(|f| !f.ignored)
        .map(|f| {
            let primary = f
                .locations
                .iter()
                .find(|l| l.symbolic.kind == "Primary")
                .or(f.locations.first());
            let (location, note) = match primary {
                Some(l) => (
                    format!(
                        "{}:{}",
                        path_of(&l.symbolic.key, repo),
                        l.concrete.location.start_point.row + 1
                    ),
                    l.symbolic.annotation.clone(),
                ),
                None => ("?".into(), String::new()),
            };
            let see = if f.url.is_empty() {
                "See zizmor's documentation of this audit.".to_string()
            } else {
                format!("See {}.", f.url)
            };
            Finding {
                check: "zizmor",
                severity: severity_of(&f.determinations.severity),
                title: format!("zizmor: {}: {}", f.ident, f.desc),
                location,
                why: if note.is_empty() { f.desc } else { note },
                fix: see,
                fix_command: None,
            }
        })
        .collect())
}

/// Run `zizmor --format json --offline REPO` and read its findings.
pub fn run(repo: &Path) -> Result<Vec<Finding>, RepoError> {
    let out = std::process::Command::new("zizmor")
        .args(["--format", "json", "--offline"])
        .arg(repo)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RepoError::ZizmorMissing,
            _ => RepoError::ZizmorRun(e.to_string()),
        })?;
    // zizmor exits non-zero when it finds something; its output is what counts.
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.trim().is_empty() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(RepoError::ZizmorRun(format!(
            "exited with {} and no output: {}",
            out.status,
            stderr.trim()
        )));
    }
    parse(&stdout, repo)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of `zizmor --format json` (zizmor's documented output: an array of findings
    /// with `ident`, `desc`, `url`, `determinations` and `locations`), written for this test.
    const OUTPUT: &str = r#"[
      {
        "ident": "template-injection",
        "desc": "code injection via template expansion",
        "url": "https://docs.zizmor.sh/audits/#template-injection",
        "determinations": {"confidence": "High", "severity": "High", "persona": "Regular"},
        "locations": [
          {
            "symbolic": {
              "key": {"Local": {"prefix": "/repo", "given_path": "/repo/.github/workflows/ci.yml"}},
              "annotation": "this step",
              "route": {"route": []},
              "feature_kind": "Normal",
              "kind": "Related"
            },
            "concrete": {"location": {"start_point": {"row": 3, "column": 4}, "end_point": {"row": 3, "column": 9}, "offset_span": {"start": 1, "end": 2}}, "feature": "run: x", "comments": []}
          },
          {
            "symbolic": {
              "key": {"Local": {"prefix": "/repo", "given_path": "/repo/.github/workflows/ci.yml"}},
              "annotation": "github.event.issue.title may expand into attacker-controllable code",
              "route": {"route": []},
              "feature_kind": "Normal",
              "kind": "Primary"
            },
            "concrete": {"location": {"start_point": {"row": 11, "column": 6}, "end_point": {"row": 11, "column": 40}, "offset_span": {"start": 1, "end": 2}}, "feature": "echo", "comments": []}
          }
        ],
        "ignored": false
      },
      {
        "ident": "artipacked",
        "desc": "credential persistence through GitHub Actions artifacts",
        "url": "",
        "determinations": {"confidence": "Low", "severity": "Informational", "persona": "Pedantic"},
        "locations": [],
        "ignored": false
      },
      {
        "ident": "excessive-permissions",
        "desc": "overly broad permissions",
        "determinations": {"confidence": "High", "severity": "Medium"},
        "locations": [],
        "ignored": true
      }
    ]"#;

    #[test]
    fn zizmors_findings_keep_its_severity_audit_and_primary_location() {
        let found = parse(OUTPUT, Path::new("/repo")).unwrap();
        assert_eq!(found.len(), 2, "the ignored one is left out");
        assert_eq!(found[0].check, "zizmor");
        assert_eq!(found[0].severity, Severity::High);
        assert_eq!(
            found[0].title,
            "zizmor: template-injection: code injection via template expansion"
        );
        assert_eq!(found[0].location, ".github/workflows/ci.yml:12");
        assert!(found[0].why.contains("attacker-controllable"));
        assert_eq!(
            found[0].fix,
            "See https://docs.zizmor.sh/audits/#template-injection."
        );
        assert_eq!(found[1].severity, Severity::Info);
        assert_eq!(found[1].location, "?");
    }

    #[test]
    fn output_that_is_not_zizmors_is_an_error() {
        let err = parse("{\"not\": \"a list\"}", Path::new("/repo")).unwrap_err();
        assert!(err.to_string().starts_with("zizmor's output"), "{err}");
    }
}

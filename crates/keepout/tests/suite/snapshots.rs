//! What the user reads, from the built binary: `keepout audit` of a fixed fake home (the report
//! and `--json`), recorded in snapshots/ beside this file, and the manual pages of `keepout man`
//! for every visible subcommand (the ones `--help` lists). A change to a finding's words shows
//! here (`cargo insta review` to accept it); `.config/insta.yaml` makes a differing snapshot fail
//! and never rewrites it, here and in src/snapshots/ (the help of every command, cli.rs).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::harness::*;

/// The width the help is wrapped at (clap reads `COLUMNS` when stdout is no terminal).
const WIDTH: &str = "100";

/// `keepout ARGS` as this process's user, with only `PATH` and the fixed width.
fn keepout(args: &[&str]) -> Command {
    let mut cmd = Command::new(keepout_bin());
    cmd.args(args)
        .env_clear()
        .env("PATH", FIXTURE_PATH)
        .env("COLUMNS", WIDTH)
        .current_dir("/");
    cmd
}

/// Run `keepout ARGS`; its output, which must be a success.
fn stdout_of(args: &[&str]) -> String {
    let out = run(keepout(args), format!("keepout {}", args.join(" ")));
    assert!(out.success(), "{out}");
    out.stdout
}

/// The subcommands a help text lists under "Commands:", clap's own `help` left out.
fn listed_subcommands(help: &str) -> Vec<String> {
    let Some((_, listing)) = help.split_once("\nCommands:\n") else {
        return Vec::new();
    };
    listing
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every visible subcommand, nested ones included, as its words after `keepout`
/// (`["workspace"]`, `["workspace", "rm"]`, ...), depth first as `--help` lists them.
fn all_subcommands() -> Vec<Vec<String>> {
    fn visit(words: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
        args.push("--help");
        for sub in listed_subcommands(&stdout_of(&args)) {
            let mut these = words.clone();
            these.push(sub);
            out.push(these.clone());
            visit(these, out);
        }
    }
    let mut all = Vec::new();
    visit(Vec::new(), &mut all);
    all
}

/// CI checks the recorded snapshots and never rewrites them: `.config/insta.yaml` says
/// `update: no`, and the variables that would override it are refused here when CI is set.
#[test]
fn snapshots_are_checked_not_rewritten_in_ci() {
    if std::env::var_os("CI").is_none_or(|v| v.is_empty() || v == "false") {
        return;
    }
    let update = std::env::var("INSTA_UPDATE").unwrap_or_default();
    assert!(
        matches!(update.as_str(), "" | "no" | "auto"),
        "INSTA_UPDATE={update} in CI would accept any snapshot"
    );
    let force = std::env::var("INSTA_FORCE_PASS").unwrap_or_default();
    assert!(
        matches!(force.as_str(), "" | "0"),
        "INSTA_FORCE_PASS={force} in CI would pass any snapshot"
    );
}

// ---------------------------------------------------------------------------------------------
// keepout audit
// ---------------------------------------------------------------------------------------------

/// A fixed fake home: a credential in each of the usual plaintext places, owned by `runner`.
fn fake_home(home: &Path, runner: &Runner) {
    let files = [
        (
            ".netrc",
            "machine api.example.com login alice password hunter2-hunter2\n",
        ),
        (
            ".git-credentials",
            "https://alice:ghp_0123456789abcdefghijABCDEFGHIJ012345@github.com\n",
        ),
        (
            ".pypirc",
            "[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmcFAKEFAKEFAKE\n",
        ),
        (
            ".aws/credentials",
            "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n\
             aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        ),
        (
            ".bash_history",
            "ls\nexport GITHUB_TOKEN=ghp_abcdefghij0123456789ABCDEFGHIJabcdef\n",
        ),
    ];
    for (rel, text) in files {
        let path = home.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    give(home, runner);
}

/// `path` and everything under it, owned by `runner` (who may not read root's files).
fn give(path: &Path, runner: &Runner) {
    std::os::unix::fs::chown(path, Some(runner.uid), Some(runner.gid)).unwrap();
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            give(&e.path(), runner);
        }
    }
}

/// A user that is not root (root is a finding of its own): the current user, or the suite's
/// unprivileged test user when that is root.
fn unprivileged() -> Runner {
    runners()
        .into_iter()
        .find(|r| !r.is_root())
        .expect("a runner that is not root")
}

/// `keepout audit --home HOME ARGS` as `runner`, in `/` (no project), with only `PATH` set
/// (no token in the environment, no PATH entry of the user's).
fn audit(runner: &Runner, home: &Path, args: &[&str]) -> Output {
    let mut argv = vec![
        keepout_bin().to_string(),
        "audit".into(),
        "--home".into(),
        home.display().to_string(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    let env = [("PATH".to_string(), "/usr/bin:/bin".to_string())];
    let what = format!(
        "[{runner}] keepout audit --home {} {args:?}",
        home.display()
    );
    run(runner.command(&argv, &env, Path::new("/")), what)
}

/// A fresh directory under /tmp the runner can reach, with an empty `home` in it.
fn home_dir(runner: &Runner) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("keepout-snap-")
        .tempdir()
        .unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    give(dir.path(), runner);
    (dir, home)
}

/// The report of the fixed fake home, for people and for scripts, with the home shown as
/// `[HOME]`; five high findings, so exit status 1.
#[test]
fn the_report_for_a_fake_home_is_as_recorded() {
    let runner = unprivileged();
    let (_dir, home) = home_dir(&runner);
    fake_home(&home, &runner);
    let shown = home.display().to_string();
    let text = audit(&runner, &home, &[]);
    assert_eq!(text.code, Some(1), "{text}");
    let json = audit(&runner, &home, &["--json"]);
    assert_eq!(json.code, Some(1), "{json}");
    // `println!` ends the JSON with a newline the recorded form does not have.
    let json = json.stdout.strip_suffix('\n').unwrap_or(&json.stdout);
    let json = json.replace(&shown, "[HOME]");
    let text = text.stdout.replace(&shown, "[HOME]");
    insta::assert_snapshot!("audit-text", text);
    insta::assert_snapshot!("audit-json", json);
}

/// An empty home is said in one line (recorded for a home at /home/alice), exit status 0.
#[test]
fn a_clean_home_is_said_in_one_line() {
    let runner = unprivileged();
    let (_dir, home) = home_dir(&runner);
    let out = audit(&runner, &home, &[]);
    assert_eq!(out.code, Some(0), "{out}");
    let text = out
        .stdout
        .replace(&home.display().to_string(), "/home/alice");
    insta::assert_snapshot!("audit-text-clean", text);
}

// ---------------------------------------------------------------------------------------------
// keepout man
// ---------------------------------------------------------------------------------------------

/// `keepout man WORDS`: the page, in roff.
fn roff(words: &[String]) -> String {
    let mut args = vec!["man"];
    args.extend(words.iter().map(String::as_str));
    stdout_of(&args)
}

/// keepout(1) is roff (a title, then sections) and names every visible subcommand's page.
#[test]
fn keepouts_page_names_every_subcommand() {
    let text = roff(&[]);
    assert!(text.contains("\n.TH keepout 1 "), "a title line:\n{text}");
    for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SUBCOMMANDS"] {
        assert!(text.contains(&format!("\n.SH {section}\n")), "{section}");
    }
    let top: Vec<Vec<String>> = all_subcommands()
        .into_iter()
        .filter(|w| w.len() == 1)
        .collect();
    assert!(top.len() > 15, "{top:?}");
    for words in top {
        let name = format!("keepout\\-{}(1)", words[0].replace('-', "\\-"));
        assert!(text.contains(&name), "keepout(1) names {name}");
    }
    assert!(!text.contains("cache\\-daemon"), "no hidden subcommand");
}

/// Each subcommand's page is titled with its full name, and an unknown one is an error
/// that lists the ones there are.
#[test]
fn each_subcommand_has_its_page() {
    for words in all_subcommands() {
        let text = roff(&words);
        let title = format!("\n.TH keepout-{} 1 ", words.join("-"));
        assert!(text.contains(&title), "{words:?}: {title}");
    }
    let out = run(
        keepout(&["man", "workspace", "nope"]),
        "keepout man workspace nope".into(),
    );
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("list, snapshot, rm"), "{out}");
}

/// `keepout man | man -l -`, for every page, renders without a warning from groff (where
/// man and groff are installed: .ci/run installs them).
#[test]
fn every_page_renders_with_man() {
    if Command::new("man").arg("--version").output().is_err() {
        note("man is not installed: the pages were not rendered");
        return;
    }
    let mut pages = vec![Vec::new()];
    pages.extend(all_subcommands());
    for words in pages {
        let text = roff(&words);
        let mut man = Command::new("man");
        man.args(["--warnings=all", "-l", "-"])
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat");
        let out = with_input(man, &text);
        let shown = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "man {words:?}: {stderr}");
        assert!(stderr.trim().is_empty(), "man {words:?} warns: {stderr}");
        let name = std::iter::once("keepout")
            .chain(words.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("-");
        assert!(shown.contains(&format!("{name}(1)")), "{name}:\n{shown}");
    }
}

/// `keepout audit --repo` of a `git init`ed copy of a fixture repository with two long-lived
/// publish tokens (keepout-audit's tests/fixtures/repos/long-token), for people and for
/// scripts, with the repository shown as `[REPO]`; two high findings, so exit status 1.
#[test]
fn the_repository_report_is_as_recorded() {
    let (_dir, repo) = super::repo_audit::git_copy("long-token");
    let dir = repo.display().to_string();
    let text = run(
        keepout(&["audit", "--repo", &dir]),
        "keepout audit --repo".into(),
    );
    assert_eq!(text.code, Some(1), "{text}");
    let json = run(
        keepout(&["audit", "--repo", &dir, "--json"]),
        "keepout audit --repo --json".into(),
    );
    assert_eq!(json.code, Some(1), "{json}");
    let json = json.stdout.strip_suffix('\n').unwrap_or(&json.stdout);
    insta::assert_snapshot!("audit-repo-text", text.stdout.replace(&dir, "[REPO]"));
    insta::assert_snapshot!("audit-repo-json", json.replace(&dir, "[REPO]"));
}

//! `keepout man`: manual pages in roff, generated with clap_mangen from the one definition of
//! the command line (cli.rs), so a page never says other than `--help` does.
//!
//! `keepout man` prints keepout(1), whose SUBCOMMANDS section names every visible subcommand;
//! `keepout man workspace rm` prints keepout-workspace-rm(1), the page of that subcommand (the
//! names `clap_mangen::generate_to` would give the files). Hidden subcommands have no page.

use anyhow::{bail, Result};
use clap::CommandFactory;

use crate::cli::Cli;

/// The page of the subcommand that `path` names (`[]`: keepout itself), as roff, into `out`.
pub fn page(path: &[String], out: &mut dyn std::io::Write) -> Result<()> {
    // Built from the root, so that every subcommand has its full name (keepout-workspace-rm)
    // and usage line (keepout workspace rm); no `help` subcommand, as clap_mangen does.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut at = &cmd;
    for (depth, word) in path.iter().enumerate() {
        let visible = || at.get_subcommands().filter(|s| !s.is_hide_set());
        match visible().find(|s| s.get_name() == word) {
            Some(sub) => at = sub,
            None => {
                let names: Vec<&str> = visible().map(|s| s.get_name()).collect();
                let of = std::iter::once("keepout")
                    .chain(path[..depth].iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" ");
                if names.is_empty() {
                    bail!("`{of}` has no subcommands, so no page for `{word}`");
                }
                bail!(
                    "`{of}` has no subcommand {word}; its subcommands: {}",
                    names.join(", ")
                );
            }
        }
    }
    clap_mangen::Man::new(at.clone()).render(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::page;
    use crate::cli::Cli;

    fn roff(path: &[&str]) -> String {
        let path: Vec<String> = path.iter().map(|w| w.to_string()).collect();
        let mut out = Vec::new();
        page(&path, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Every visible subcommand, nested ones included, as its words (["workspace", "rm"]).
    fn subcommands(cmd: &clap::Command, words: Vec<String>, out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let mut these = words.clone();
            these.push(sub.get_name().to_string());
            out.push(these.clone());
            subcommands(sub, these, out);
        }
    }

    fn all_subcommands() -> Vec<Vec<String>> {
        let mut cmd = Cli::command().disable_help_subcommand(true);
        cmd.build();
        let mut all = Vec::new();
        subcommands(&cmd, Vec::new(), &mut all);
        all
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
            let text = roff(&words.iter().map(String::as_str).collect::<Vec<_>>());
            let title = format!("\n.TH keepout-{} 1 ", words.join("-"));
            assert!(text.contains(&title), "{words:?}: {title}");
        }
        let mut out = Vec::new();
        let err = page(&["workspace".into(), "nope".into()], &mut out).unwrap_err();
        assert!(err.to_string().contains("list, snapshot, rm"), "{err}");
    }

    /// `keepout man | man -l -`, for every page, renders without a warning from groff (where
    /// man and groff are installed: .ci/run installs them).
    #[test]
    fn every_page_renders_with_man() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        if Command::new("man").arg("--version").output().is_err() {
            eprintln!("man is not installed: pages not rendered");
            return;
        }
        let mut pages = vec![Vec::new()];
        pages.extend(all_subcommands());
        for words in pages {
            let text = roff(&words.iter().map(String::as_str).collect::<Vec<_>>());
            let mut man = Command::new("man")
                .args(["--warnings=all", "-l", "-"])
                .env("MANWIDTH", "100")
                .env("MANPAGER", "cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            man.stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let out = man.wait_with_output().unwrap();
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
}

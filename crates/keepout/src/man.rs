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

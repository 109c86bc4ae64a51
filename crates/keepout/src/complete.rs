//! Shell completion, computed when the shell asks: subcommands and flags from the command line's
//! one definition (cli.rs), and the values only this machine knows: workspace and layer names,
//! and `--net` presets (the built-in ones and the config's `[net.presets]`).
//!
//! `keepout completions SHELL` prints a small script that calls keepout back with
//! `KEEPOUT_COMPLETE=SHELL` set (clap_complete's dynamic engine); a completion request never
//! opens the vault, starts a sandbox or writes anything. A store or config that cannot be read
//! completes nothing rather than failing.

use std::ffi::OsStr;

use clap_complete::engine::CompletionCandidate;

/// The environment variable that turns a keepout invocation into a completion request.
pub const COMPLETE_VAR: &str = "KEEPOUT_COMPLETE";

fn store() -> keepout_workspace::Store {
    keepout_workspace::Store::new(keepout_workspace::Store::default_root())
}

/// Names of existing workspaces, with their source as help.
pub fn workspaces() -> Vec<CompletionCandidate> {
    store()
        .workspaces()
        .unwrap_or_default()
        .into_iter()
        .map(|w| {
            CompletionCandidate::new(w.meta.name.clone())
                .help(Some(w.meta.source.clone().unwrap_or_default().into()))
        })
        .collect()
}

/// Names of existing layers.
pub fn layers() -> Vec<CompletionCandidate> {
    store()
        .layers()
        .unwrap_or_default()
        .into_iter()
        .map(|l| CompletionCandidate::new(l.meta.name.clone()))
        .collect()
}

/// `--net NAMES`: the part after the last comma completed among the presets, `host` and `*`
/// (what is before it kept as it is).
pub fn net(current: &OsStr) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    let (done, last) = match current.rsplit_once(',') {
        Some((done, last)) => (format!("{done},"), last.to_string()),
        None => (String::new(), current.to_string()),
    };
    let mut names: Vec<(String, String)> = crate::run::presets()
        .map(|p| {
            p.names()
                .into_iter()
                .map(|n| (n.to_string(), p.get(n).unwrap_or_default().join(" ")))
                .collect()
        })
        .unwrap_or_default();
    if done.is_empty() {
        names.push(("host".into(), "the host's network as it is".into()));
        names.push(("*".into(), "any public host".into()));
    }
    names
        .into_iter()
        .filter(|(n, _)| n.starts_with(&last))
        .map(|(n, help)| CompletionCandidate::new(format!("{done}{n}")).help(Some(help.into())))
        .collect()
}

/// The registration script for `shell` (what `keepout completions SHELL` prints).
pub fn registration(shell: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap_complete::env::EnvCompleter;
    let shells = clap_complete::env::Shells::builtins();
    let completer = shells
        .completer(shell)
        .ok_or_else(|| std::io::Error::other(format!("no completion for the shell {shell}")))?;
    let _: &dyn EnvCompleter = completer;
    completer.write_registration(COMPLETE_VAR, "keepout", "keepout", "keepout", out)
}

//! `keepout ssh import | list | rm` and `keepout agent`: the command line of keepout-agent.
//!
//! `ssh import` moves a private key into the vault through the same flow as credential files
//! ([`key_import::import_key`]: decided, written, read back and checked before the key file is
//! removed, and only after a yes); a stored key is never replaced. `agent --daemon` starts the
//! agent in the background ([`daemon`]) and prints the lines for the shell; `agent
//! --systemd-unit` prints its unit ([`keepout_agent::systemd`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use keepout_agent::keys::import as key_import;
use keepout_agent::policy::SshSettings;
use keepout_agent::{daemon, keys, AgentConfig};
use keepout_vault::Config;

use crate::cli::{AgentArgs, SshAction};

pub fn ssh(action: SshAction) -> Result<i32> {
    let (session, vault) = (crate::secret::session(), crate::secret::vault());
    match action {
        SshAction::Import {
            path,
            name,
            yes,
            keep,
        } => key_import::import_key(&session, &vault, &path, name, yes, keep).map_err(reported)?,
        SshAction::List { json } => list(&vault, json)?,
        SshAction::Rm { name } => {
            key_import::remove_key(&session, &vault, &name).map_err(reported)?
        }
    }
    Ok(0)
}

/// An agent error as keepout reports it: a vault error, and a key's name no secret name can
/// be, with the vault error's exit status.
fn reported(e: keepout_agent::Error) -> anyhow::Error {
    let said = e.to_string();
    match e {
        keepout_agent::Error::Vault(e) => e.into(),
        keepout_agent::Error::KeyName { source, .. } => anyhow::Error::new(*source).context(said),
        e => e.into(),
    }
}

fn list(vault: &keepout_vault::VaultFile, json: bool) -> Result<()> {
    let settings = SshSettings::load(&Config::default_path())?;
    let rows = keys::listing::listing(vault.path(), &settings);
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        eprintln!("keepout: no keys yet; `keepout ssh import ~/.ssh/id_ed25519` adds one");
    } else {
        println!(
            "{:<20} {:<12} {:<52} {:<8} hosts",
            "name", "type", "fingerprint", "confirm"
        );
        for r in rows {
            let hosts = if r.hosts.is_empty() {
                "any".to_string()
            } else {
                r.hosts.join(", ")
            };
            let (name, algorithm, fingerprint, confirm) =
                (r.name, r.algorithm, r.fingerprint, r.confirm);
            println!("{name:<20} {algorithm:<12} {fingerprint:<52} {confirm:<8} {hosts}");
        }
    }
    Ok(())
}

pub fn agent(args: AgentArgs) -> Result<i32> {
    if args.systemd_unit {
        let exe = std::env::current_exe()
            .and_then(|p| p.canonicalize())
            .context("where is this keepout binary (to name it in the unit)")?;
        let unit = keepout_agent::systemd::unit(&exe, args.upstream.as_deref(), &args.known_hosts)?;
        print!("{unit}");
        return Ok(0);
    }
    let socket = match args.socket {
        Some(s) => std::path::absolute(s)?,
        None => daemon::default_socket()?,
    };
    if args.daemon {
        return start_daemon(&socket, args.upstream.as_deref(), &args.known_hosts);
    }
    if args.detached {
        // Not a process group leader (start_daemon does not make it one), so this cannot fail
        // but for a caller that started it otherwise: then it says so and goes on.
        if let Err(e) = daemon::detach() {
            eprintln!("keepout agent: cannot leave the terminal's session ({e})");
        }
    }
    let vault = crate::secret::vault().path().to_path_buf();
    let (config, bad_idle) = AgentConfig::read(
        Config::default_path(),
        socket.clone(),
        vault,
        args.known_hosts,
        args.upstream,
    )
    .map_err(reported)?;
    if let Some(message) = bad_idle {
        eprintln!("keepout: {message}");
    }
    keepout_agent::serve(config, || {
        print!("{}", daemon::export_lines(&socket, None, ""));
        let _ = std::io::stdout().flush();
        eprintln!(
            "keepout agent: listening on {} (pid {}); every signature is asked for",
            socket.display(),
            std::process::id()
        );
    })?;
    Ok(0)
}

/// `keepout agent --daemon`: this binary's agent in the background, or the one that already
/// answers on `socket`; the lines for `eval` on standard output.
fn start_daemon(socket: &Path, upstream: Option<&Path>, known_hosts: &[PathBuf]) -> Result<i32> {
    if let Some(running) = daemon::running(socket) {
        let lines = daemon::export_lines(socket, running.pid, " (already running)");
        println!("{lines}");
        let pid = running
            .pid
            .map(|p| format!(" (pid {p})"))
            .unwrap_or_default();
        eprintln!(
            "keepout agent: already running on {}{pid}; reusing it",
            socket.display()
        );
        return Ok(0);
    }
    let cmd = daemon::detached_command(std::env::current_exe()?, socket, upstream, known_hosts);
    let lines = match daemon::start(cmd, socket)? {
        daemon::Started::New { pid } => daemon::export_lines(socket, Some(pid), ""),
        daemon::Started::Raced(other) => {
            daemon::export_lines(socket, other.pid, " (already running)")
        }
    };
    println!("{lines}");
    Ok(0)
}

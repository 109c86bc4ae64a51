//! `keepout ssh import | list | rm` and `keepout agent`: the command line of keepout-agent.
//!
//! `ssh import` moves a private key into the vault through the same flow as credential files
//! ([`keepout_vault::Unlock::move_in`] with [`keys::import::KeyImport`]: decided, written, read
//! back and checked before the key file is removed, and only after a yes); a stored key is never
//! replaced. `agent --daemon` starts the agent in the background ([`daemon`]) and prints the
//! lines for the shell; `agent --systemd-unit` prints its unit ([`keepout_agent::systemd`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use keepout_agent::keys::import::{self as key_import, KeyImport, Stored};
use keepout_agent::policy::SshSettings;
use keepout_agent::{daemon, keys};
use keepout_vault::import::Rewrite;
use keepout_vault::{Config, Zeroizing};

use crate::cli::{AgentArgs, SshAction};

pub fn ssh(action: SshAction) -> Result<i32> {
    match action {
        SshAction::Import {
            path,
            name,
            yes,
            keep,
        } => import(&path, name, yes, keep),
        SshAction::List { json } => list(json),
        SshAction::Rm { name } => remove(&name),
    }
}

fn settings() -> Result<SshSettings> {
    Ok(SshSettings::load(&Config::default_path())?)
}

/// An agent error as keepout reports it: a vault error as itself (its exit code).
fn reported(e: keepout_agent::Error) -> anyhow::Error {
    match e {
        keepout_agent::Error::Vault(e) => e.into(),
        e => e.into(),
    }
}

fn import(path: &Path, name: Option<String>, yes: bool, keep: bool) -> Result<i32> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    if key_import::is_public_key(&text) {
        return Err(key_import::public_key_given(path).into());
    }
    let name = name.unwrap_or_else(|| key_import::default_name(path));
    keepout_vault::check_name(&keys::secret_name(&name))
        .with_context(|| format!("{name:?} cannot name a key; give one with --name"))?;
    let prepared = keys::prepare(&text, || {
        keepout_prompt::secret(&format!("Passphrase of the key {}: ", path.display())).ok()
    })
    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;

    let vault = crate::secret::vault();
    let mut moving = KeyImport::new(path, &name, &prepared);
    let (secret, algorithm, fingerprint) = (
        moving.secret().to_string(),
        moving.algorithm().to_string(),
        moving.fingerprint().to_string(),
    );
    let placed = crate::secret::session()
        .move_in(&vault, &mut moving)
        .map_err(reported)?;
    if placed == Stored::Same {
        eprintln!("keepout: the key {name} ({fingerprint}) is already in the vault as {secret}");
    }
    let dir = keys::public_dir(vault.path());
    keys::write_public(&dir, &name, &prepared.public)
        .with_context(|| format!("cannot write the public key into {}", dir.display()))?;
    eprintln!(
        "keepout: stored the {algorithm} key {name} ({fingerprint}) in the vault as {secret}"
    );

    if keep {
        eprintln!("keepout: {} left as it is (--keep)", path.display());
    } else if yes
        || keepout_prompt::confirm(&format!(
            "Remove the private key file {} now that the key is in the vault?",
            path.display()
        ))?
    {
        Rewrite::Remove.carry_out(path)?;
        eprintln!(
            "keepout: removed {} (its .pub file, if any, stays: it is public)",
            path.display()
        );
    } else {
        eprintln!("keepout: {} left as it is", path.display());
    }
    eprintln!(
        "keepout: start the agent (`keepout agent --daemon`) and point SSH_AUTH_SOCK at it; \
         every signature will be asked for. Policy: [[ssh.key]] name = {name:?} in {}",
        Config::default_path().display()
    );
    Ok(0)
}

fn list(json: bool) -> Result<i32> {
    let vault = crate::secret::vault();
    let settings = settings()?;
    let rows = keys::listing::listing(vault.path(), &settings);
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if rows.is_empty() {
        eprintln!("keepout: no keys yet; `keepout ssh import ~/.ssh/id_ed25519` adds one");
        return Ok(0);
    }
    println!(
        "{:<20} {:<12} {:<52} {:<8} hosts",
        "name", "type", "fingerprint", "confirm"
    );
    for r in rows {
        println!(
            "{:<20} {:<12} {:<52} {:<8} {}",
            r.name,
            r.algorithm,
            r.fingerprint,
            r.confirm,
            if r.hosts.is_empty() {
                "any".to_string()
            } else {
                r.hosts.join(", ")
            }
        );
    }
    Ok(0)
}

fn remove(name: &str) -> Result<i32> {
    let vault = crate::secret::vault();
    let key = crate::secret::session().unlocked(&vault)?;
    let secret = keys::secret_name(name);
    vault.update(&key, |doc| doc.remove(&secret))?;
    let _ = keys::remove_public(&keys::public_dir(vault.path()), name);
    eprintln!("keepout: removed the key {name} ({secret})");
    Ok(0)
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
        return start_daemon(&socket, &args.upstream, &args.known_hosts);
    }
    if args.detached {
        // Not a process group leader (start_daemon does not make it one), so this cannot fail
        // but for a caller that started it otherwise: then it says so and goes on.
        if let Err(e) = daemon::detach() {
            eprintln!("keepout agent: cannot leave the terminal's session ({e})");
        }
    }
    let config = Config::load(&Config::default_path())?;
    let settings = settings()?;
    let (idle, bad_idle) = keepout_vault::cache::idle_from_env();
    if let Some(message) = bad_idle {
        eprintln!("keepout: {message}");
    }
    let agent_config = keepout_agent::AgentConfig {
        socket: socket.clone(),
        vault: crate::secret::vault().path().to_path_buf(),
        vault_key: config.vault.key(),
        settings,
        config_file: Some(Config::default_path()),
        extra_known_hosts: args.known_hosts.clone(),
        home: daemon::home(),
        upstream: args.upstream,
        idle,
    };
    keepout_agent::serve(agent_config, || {
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
fn start_daemon(socket: &Path, upstream: &Option<PathBuf>, known_hosts: &[PathBuf]) -> Result<i32> {
    if let Some(running) = daemon::running(socket) {
        println!(
            "{}",
            daemon::export_lines(socket, running.pid, " (already running)")
        );
        eprintln!(
            "keepout agent: already running on {}{}; reusing it",
            socket.display(),
            running
                .pid
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default()
        );
        return Ok(0);
    }
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.arg("agent")
        .arg("--detached")
        .arg("--socket")
        .arg(socket);
    if let Some(up) = upstream {
        cmd.arg("--upstream").arg(up);
    }
    for k in known_hosts {
        cmd.arg("--known-hosts").arg(k);
    }
    let lines = match daemon::start(cmd, socket)? {
        daemon::Started::New { pid } => daemon::export_lines(socket, Some(pid), ""),
        daemon::Started::Raced(other) => {
            daemon::export_lines(socket, other.pid, " (already running)")
        }
    };
    println!("{lines}");
    Ok(0)
}

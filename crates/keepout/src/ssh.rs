//! `keepout ssh import | list | rm` and `keepout agent`.
//!
//! `ssh import` moves a private key into the vault through the same flow as credential files
//! ([`keepout_vault::Unlock::move_in`]: decided, written, read back and checked before the key
//! file is removed, and only after a yes); a stored key is never replaced.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use keepout_agent::keys;
use keepout_agent::policy::{Confirm, SshSettings};
use keepout_vault::import::{MoveIn, Rewrite, Step};
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

/// The error for a public key given to `ssh import`: which private key to give instead, and
/// whether it is there.
fn public_key_given(path: &Path) -> anyhow::Error {
    let private = path.with_extension("");
    let private = if path.extension().is_some_and(|e| e == "pub") && private != path {
        Some(private)
    } else {
        None
    };
    match private {
        Some(p) if p.is_file() => anyhow::anyhow!(
            "{} is a public key; import the private key next to it: keepout ssh import {}",
            path.display(),
            p.display()
        ),
        Some(p) => anyhow::anyhow!(
            "{} is a public key; import its private key ({} is not there: give the path of \
             the private key file)",
            path.display(),
            p.display()
        ),
        None => anyhow::anyhow!(
            "{} is a public key; import the private key file instead (the one without .pub)",
            path.display()
        ),
    }
}

/// Whether `text` is an OpenSSH public key line (`ssh-ed25519 AAAA... comment`).
fn is_public_key(text: &str) -> bool {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    keepout_agent::PublicKey::from_openssh(first.trim()).is_ok()
}

/// What the vault holds under a key's secret name, compared with the key being imported.
#[derive(Debug, PartialEq, Eq)]
enum Stored {
    /// Nothing: the name is free.
    Free,
    /// The same key (the same public half).
    Same,
    /// Another key, by its fingerprint (or what it is, when it is not a key).
    Other(String),
}

fn stored(
    doc: &keepout_vault::Document,
    secret: &str,
    public: &keepout_agent::PublicKey,
) -> Stored {
    let Ok(held) = doc.get(secret) else {
        return Stored::Free;
    };
    match keys::prepare(&held.value, || None) {
        Ok(held) if held.public == *public => Stored::Same,
        Ok(held) => Stored::Other(format!("stored: {}", keys::describe(&held.public).1)),
        Err(_) => Stored::Other("stored: a secret that is no key keepout reads".into()),
    }
}

/// The move of one private key into the vault ([`MoveIn`]). A stored key is never replaced:
/// another key under its name is an error (nothing changed), the same key again is left as it
/// is (nothing written).
struct KeyImport<'a> {
    path: &'a Path,
    name: &'a str,
    secret: &'a str,
    fingerprint: &'a str,
    note: String,
    prepared: &'a keys::Prepared,
}

impl KeyImport<'_> {
    /// The error for another key under this name, if `stored` is one.
    fn other_key(&self, stored: &Stored) -> Result<()> {
        let Stored::Other(theirs) = stored else {
            return Ok(());
        };
        let (name, fingerprint) = (self.name, self.fingerprint);
        bail!(
            "the vault already holds another key named {name} ({theirs}; this one is \
             {fingerprint}); nothing was changed. Import this one under another name \
             (`keepout ssh import {} --name {name}-2`; its policy is its own [[ssh.key]]), or \
             remove the stored one first (`keepout ssh rm {name}`)",
            self.path.display()
        )
    }
}

impl MoveIn for KeyImport<'_> {
    type Decision = ();
    type Placed = Stored;
    type Error = anyhow::Error;

    fn decide(&mut self, doc: &keepout_vault::Document) -> Result<Step<(), Stored>> {
        let before = stored(doc, self.secret, &self.prepared.public);
        self.other_key(&before)?;
        if before == Stored::Same {
            eprintln!(
                "keepout: the key {} ({}) is already in the vault as {}",
                self.name, self.fingerprint, self.secret
            );
            return Ok(Step::Unchanged(before));
        }
        Ok(Step::Write(()))
    }

    fn apply(
        &self,
        doc: &mut keepout_vault::Document,
        (): (),
    ) -> Result<Stored, keepout_vault::VaultError> {
        // Decided again under the lock: a key stored meanwhile is not replaced either.
        let now = stored(doc, self.secret, &self.prepared.public);
        if now == Stored::Free {
            doc.set(
                self.secret,
                self.prepared.openssh.clone(),
                Some(self.note.clone()),
            )?;
        }
        Ok(now)
    }

    fn accept(&self, placed: &Stored) -> Result<()> {
        self.other_key(placed)
    }

    /// The round trip, before the plaintext key is touched.
    fn verify(&self, doc: &keepout_vault::Document, _: &Stored) -> Result<()> {
        let back = keys::prepare(&doc.get(self.secret)?.value, || None)?;
        if back.public != self.prepared.public {
            return Err(keepout_vault::VaultError::NotReadBack {
                name: self.secret.to_string(),
                file: self.path.to_path_buf(),
            }
            .into());
        }
        Ok(())
    }
}

fn import(path: &Path, name: Option<String>, yes: bool, keep: bool) -> Result<i32> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    if is_public_key(&text) {
        return Err(public_key_given(path));
    }
    let name = match name {
        Some(n) => n,
        None => keepout_vault::name_part(
            &path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    };
    keepout_vault::check_name(&keys::secret_name(&name))
        .with_context(|| format!("{name:?} cannot name a key; give one with --name"))?;
    let prepared = keys::prepare(&text, || {
        keepout_prompt::secret(&format!("Passphrase of the key {}: ", path.display())).ok()
    })
    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let (algorithm, fingerprint) = keys::describe(&prepared.public);

    let vault = crate::secret::vault();
    let secret = keys::secret_name(&name);
    let mut moving = KeyImport {
        path,
        name: &name,
        secret: &secret,
        fingerprint: &fingerprint,
        note: format!("ssh key {algorithm} {fingerprint}, from {}", path.display()),
        prepared: &prepared,
    };
    crate::secret::session().move_in(&vault, &mut moving)?;
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

fn confirm_text(c: Confirm) -> String {
    match c {
        Confirm::Always => "always".into(),
        Confirm::Never => "never".into(),
        Confirm::For(d) => format!("{}s", d.as_secs()),
    }
}

fn list(json: bool) -> Result<i32> {
    let vault = crate::secret::vault();
    let settings = settings()?;
    let keys = keys::list(&keys::public_dir(vault.path()));
    let rows: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| {
            let (algorithm, fingerprint) = keys::describe(&k.public);
            let policy = settings.policy_for(&[k.name.as_str(), fingerprint.as_str()]);
            serde_json::json!({
                "name": k.name,
                "algorithm": algorithm,
                "fingerprint": fingerprint,
                "public_key": k.public.to_openssh().unwrap_or_default(),
                "confirm": confirm_text(policy.confirm),
                "hosts": policy.hosts,
            })
        })
        .collect();
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
        let hosts: Vec<&str> = r["hosts"]
            .as_array()
            .map(|a| a.iter().filter_map(|h| h.as_str()).collect())
            .unwrap_or_default();
        println!(
            "{:<20} {:<12} {:<52} {:<8} {}",
            r["name"].as_str().unwrap_or(""),
            r["algorithm"].as_str().unwrap_or(""),
            r["fingerprint"].as_str().unwrap_or(""),
            r["confirm"].as_str().unwrap_or(""),
            if hosts.is_empty() {
                "any".to_string()
            } else {
                hosts.join(", ")
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

fn default_socket() -> Result<PathBuf> {
    Ok(keepout_vault::cache::socket_dir()?.join("agent.sock"))
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

pub fn agent(args: AgentArgs) -> Result<i32> {
    if args.systemd_unit {
        print!("{}", systemd_unit(&args)?);
        return Ok(0);
    }
    let socket = match args.socket {
        Some(s) => std::path::absolute(s)?,
        None => default_socket()?,
    };
    if args.daemon {
        return daemon(&socket, &args.upstream, &args.known_hosts);
    }
    if args.detached {
        // Not a process group leader (daemon() does not make it one), so this cannot fail
        // but for a caller that started it otherwise: then it says so and goes on.
        if let Err(e) = rustix::process::setsid() {
            eprintln!("keepout agent: cannot leave the terminal's session ({e})");
        }
        keepout_agent::terminal::hold_start_terminal();
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
        home: home(),
        upstream: args.upstream,
        idle,
    };
    keepout_agent::serve(agent_config, || {
        println!(
            "SSH_AUTH_SOCK={}; export SSH_AUTH_SOCK;",
            sh_quote(&socket.to_string_lossy())
        );
        let _ = std::io::stdout().flush();
        eprintln!(
            "keepout agent: listening on {} (pid {}); every signature is asked for",
            socket.display(),
            std::process::id()
        );
    })?;
    Ok(0)
}

/// The export lines for an agent on `socket` with process id `pid`.
fn export_lines(socket: &Path, pid: Option<u32>, note: &str) -> String {
    let mut out = format!(
        "SSH_AUTH_SOCK={}; export SSH_AUTH_SOCK;\n",
        sh_quote(&socket.to_string_lossy())
    );
    if let Some(pid) = pid {
        out.push_str(&format!(
            "SSH_AGENT_PID={pid}; export SSH_AGENT_PID;\necho {};",
            sh_quote(&format!("Agent pid {pid}{note}"))
        ));
    }
    out
}

/// One word for `sh` (what `eval "$(keepout agent --daemon)"` runs): in single quotes.
fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The process of the agent that answers on `socket` (SO_PEERCRED of a connection to it: the
/// kernel's record of who listens), if one answers and it is ours.
fn running_agent(socket: &Path) -> Option<Option<u32>> {
    let stream = std::os::unix::net::UnixStream::connect(socket).ok()?;
    let cred = rustix::net::sockopt::socket_peercred(&stream).ok();
    let me = rustix::process::getuid();
    match cred {
        Some(c) if c.uid == me => Some(u32::try_from(c.pid.as_raw_nonzero().get()).ok()),
        Some(_) => None,
        None => Some(None),
    }
}

/// Start the agent in the background (its log in agent.log next to the socket), wait until it
/// answers, print the export line. When an agent already answers on the socket, it is reused:
/// the lines name it (its pid from SO_PEERCRED), not a process that would exit at once.
fn daemon(socket: &Path, upstream: &Option<PathBuf>, known_hosts: &[PathBuf]) -> Result<i32> {
    if let Some(pid) = running_agent(socket) {
        println!("{}", export_lines(socket, pid, " (already running)"));
        eprintln!(
            "keepout agent: already running on {}{}; reusing it",
            socket.display(),
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        );
        return Ok(0);
    }
    let log_path = socket.with_file_name("agent.log");
    if let Some(dir) = socket.parent() {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
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
    let mut child = cmd
        // The terminal --daemon runs in (its own standard input or error), as the agent's
        // standard input: the agent asks there, also where its device is not the user's
        // (a `su -` login); see keepout_agent::terminal.
        .stdin(start_terminal())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()?;
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(5) {
        if let Some(status) = child.try_wait()? {
            // Another agent may have started meanwhile (two shells at once): that one serves.
            if let Some(pid) = running_agent(socket) {
                println!("{}", export_lines(socket, pid, " (already running)"));
                return Ok(0);
            }
            bail!("the agent stopped ({status}); see {}", log_path.display());
        }
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            println!("{}", export_lines(socket, Some(child.id()), ""));
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    bail!(
        "the agent did not start within 5 s; see {}",
        log_path.display()
    )
}

/// The terminal `keepout agent --daemon` runs in, for the agent to ask on: a new descriptor of
/// standard input or standard error, whichever is a terminal (standard output is the `$(...)`
/// pipe); else nothing.
fn start_terminal() -> std::process::Stdio {
    use std::io::IsTerminal;
    use std::os::fd::AsFd;
    let found = if std::io::stdin().is_terminal() {
        std::io::stdin().as_fd().try_clone_to_owned().ok()
    } else if std::io::stderr().is_terminal() {
        std::io::stderr().as_fd().try_clone_to_owned().ok()
    } else {
        None
    };
    found.map_or_else(std::process::Stdio::null, std::process::Stdio::from)
}

/// Quote one word of an `ExecStart=` line: `%` and `$` doubled (systemd's specifiers and
/// variables), and the word in
/// double quotes, with `\` and `"` escaped, when it holds anything but plain characters.
fn systemd_word(word: &str) -> String {
    let word = word.replace('%', "%%").replace('$', "$$");
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=,@".contains(&b))
    {
        return word;
    }
    format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The systemd user unit for this binary (`keepout agent --systemd-unit`): `ExecStart=` names
/// the running executable by its absolute, resolved path, so the unit works wherever keepout
/// is installed (`~/.cargo/bin`, `~/.local/bin`, `/usr/local/bin`, ...).
fn systemd_unit(args: &AgentArgs) -> Result<String> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("where is this keepout binary (to name it in the unit)")?;
    let exe = exe
        .to_str()
        .context("this keepout binary's path is not UTF-8; systemd cannot name it")?;
    let mut exec = vec![
        systemd_word(exe),
        "agent".to_string(),
        "--socket".to_string(),
        "%t/keepout/agent.sock".to_string(),
    ];
    if let Some(up) = &args.upstream {
        exec.push("--upstream".into());
        exec.push(systemd_word(&std::path::absolute(up)?.to_string_lossy()));
    }
    for k in &args.known_hosts {
        exec.push("--known-hosts".into());
        exec.push(systemd_word(&std::path::absolute(k)?.to_string_lossy()));
    }
    Ok(format!(
        "# keepout agent as a systemd user service, made by `keepout agent --systemd-unit`.
#   keepout agent --systemd-unit > ~/.config/systemd/user/keepout-agent.service
#   systemctl --user daemon-reload && systemctl --user enable --now keepout-agent
#   echo 'export SSH_AUTH_SOCK=\"$XDG_RUNTIME_DIR/keepout/agent.sock\"' >> ~/.bashrc
# Questions go where the requester is: on the terminal ssh runs in, or to pinentry / SSH_ASKPASS
# on the requester's display. The policy is read again when the config file changes;
# `systemctl --user reload keepout-agent` (SIGHUP) does it at once. Moved or reinstalled
# keepout elsewhere? Make the unit again.
[Unit]
Description=keepout SSH agent (asks before every signature)

[Service]
ExecStart={}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
NoNewPrivileges=yes

[Install]
WantedBy=default.target
",
        exec.join(" ")
    ))
}

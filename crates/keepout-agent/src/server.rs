//! The agent process: the ssh-agent protocol on one socket, the vault's unlock cache on another,
//! one policy in front of every signature.
//!
//! The policy is the configuration file's `[ssh]`, read again before a signature whenever the
//! file changed (its identity: device, inode, size, mtime, ctime) and on SIGHUP; a file that no
//! longer parses keeps the last good policy (never none), which the log and the requester are
//! told. Questions and refusals go where the requester is ([`crate::terminal`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keepout_prompt::Place;
use keepout_vault::cache::UnlockCache;
use keepout_vault::Key;
use ssh_agent_lib::agent::{listen, Agent, ListeningSocket, Session};
use ssh_agent_lib::error::AgentError;
use ssh_agent_lib::proto::extension::SessionBind;
use ssh_agent_lib::proto::{Extension, Identity, Request, Response, SignRequest};
use ssh_key::public::KeyData;
use ssh_key::{HashAlg, Signature};
use tokio::net::{UnixListener, UnixStream};

use crate::destination::{self, Binding, SignData};
use crate::error::Error;
use crate::keys;
use crate::peer::{Peer, ProcessId};
use crate::policy::{Confirm, SshSettings};
use crate::terminal;

/// What the agent needs to know, gathered by the CLI.
#[derive(Clone)]
pub struct AgentConfig {
    /// The agent socket (`agent.sock` in `keepout_vault::cache::socket_dir()` by default).
    pub socket: PathBuf,
    /// The vault whose `ssh/NAME` secrets are the keys.
    pub vault: PathBuf,
    /// The configured vault key (`[vault]` identities), or `None` for the passphrase.
    pub vault_key: Option<Key>,
    /// The policy at start (`[ssh]` of `config_file`).
    pub settings: SshSettings,
    /// The configuration file of the policy: read again when it changes, and on SIGHUP.
    pub config_file: Option<PathBuf>,
    /// known_hosts files from the command line, besides the user's, the system's and
    /// `[ssh] known_hosts`.
    pub extra_known_hosts: Vec<PathBuf>,
    /// The user's home, to shorten paths in prompts.
    pub home: Option<PathBuf>,
    /// Proxy mode: the agent to forward to (its keys instead of the vault's).
    pub upstream: Option<PathBuf>,
    /// How long the unlocked vault is kept without use.
    pub idle: Duration,
}

impl AgentConfig {
    /// The agent's configuration from the configuration file `config_file`, read once (a
    /// missing file is an empty one): the vault key of `[vault]`, the policy of `[ssh]`, and
    /// the unlock cache's idle time from the environment, with what is wrong with that value.
    pub fn read(
        config_file: PathBuf,
        socket: PathBuf,
        vault: PathBuf,
        extra_known_hosts: Vec<PathBuf>,
        upstream: Option<PathBuf>,
    ) -> Result<(AgentConfig, Option<String>), Error> {
        let text = match std::fs::read_to_string(&config_file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(Error::Vault(keepout_vault::VaultError::Io {
                    what: "cannot read",
                    path: config_file,
                    source,
                }))
            }
        };
        let vault_key = keepout_vault::Config::parse(&config_file, &text)?
            .vault
            .key();
        let settings = SshSettings::parse(&config_file, &text)?;
        let (idle, bad_idle) = keepout_vault::cache::idle_from_env();
        let config = AgentConfig {
            socket,
            vault,
            vault_key,
            settings,
            config_file: Some(config_file),
            extra_known_hosts,
            home: crate::daemon::home(),
            upstream,
            idle,
        };
        Ok((config, bad_idle))
    }
}

/// What one "5m" approval covers besides its key and host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GraceScope {
    /// Requests from this terminal session: the session (its leader's pid and start time) and
    /// its controlling terminal.
    Terminal { session: ProcessId, tty: u64 },
    /// Without a terminal: the requesting process and its descendants.
    Tree(ProcessId),
}

/// One "5m" approval: this key, for this host (or kind of signature), in this scope, until then.
struct Grace {
    key: String,
    target: String,
    scope: GraceScope,
    until: Instant,
}

impl Grace {
    /// Whether this approval covers a request for `key` and `target` from `peer` (whose scope is
    /// `here`): same key, same target, and the same terminal session, or (given without a
    /// terminal) a descendant of the process that was approved.
    /// `foreground`: the requester is in its terminal's foreground process group now.
    fn covers(
        &self,
        key: &str,
        target: &str,
        peer: &Peer,
        here: Option<GraceScope>,
        foreground: bool,
    ) -> bool {
        self.key == key
            && self.target == target
            && match self.scope {
                // Only for a requester in that terminal's foreground, as asking there needs: a
                // job left in the background of the session gets no part of the yes.
                GraceScope::Terminal { .. } => here == Some(self.scope) && foreground,
                GraceScope::Tree(root) => peer.descends_from(root),
            }
    }
}

/// Whether `peer` (as it is now) is in its terminal's foreground process group.
fn in_foreground(peer: &Peer) -> bool {
    peer.chain.first().is_some_and(|first| {
        crate::peer::Process::read(first.pid).is_some_and(|(now, _)| {
            now.start == first.start && now.tpgid > 0 && now.tpgid == now.pgrp
        })
    })
}

/// The scope a "5m" yes given to `peer` covers: its terminal session when it has a terminal,
/// else its process tree.
fn scope_of(peer: &Peer) -> Option<GraceScope> {
    let first = peer.chain.first()?;
    if first.tty_nr != 0 && first.session > 0 {
        let sid = u32::try_from(first.session).ok()?;
        if let Some((leader, _)) = crate::peer::Process::read(sid) {
            return Some(GraceScope::Terminal {
                session: leader.id(),
                tty: first.tty_nr,
            });
        }
    }
    peer.tree_root().map(GraceScope::Tree)
}

/// "5 min", "1 h", "90 s".
fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// (device, inode, size, mtime, ctime) of a file: changes whenever it is written or replaced.
type Stamp = (u64, u64, u64, i128, i128);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| {
        (
            m.dev(),
            m.ino(),
            m.size(),
            i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        )
    })
}

/// The policy in force, and what it was read from.
struct LivePolicy {
    settings: SshSettings,
    known_hosts: Vec<PathBuf>,
    /// The configuration file's identity when last read (`None`: missing, or not read yet).
    stamp: Option<Stamp>,
    /// Why the file as it is now is not the policy (it did not parse): the last good one is.
    broken: Option<String>,
}

struct Shared {
    config: AgentConfig,
    policy: Mutex<LivePolicy>,
    cache: Arc<UnlockCache>,
    graces: Mutex<Vec<Grace>>,
    /// `ssh-add -x`: the SHA-256 of the lock passphrase while the agent is locked.
    locked: Mutex<Option<[u8; 32]>>,
    /// One question on screen at a time.
    asking: tokio::sync::Mutex<()>,
}

fn log(line: &str) {
    eprintln!("keepout agent: {line}");
}

fn known_hosts_for(config: &AgentConfig, settings: &SshSettings) -> Vec<PathBuf> {
    let home = config.home.as_deref();
    let mut extra: Vec<PathBuf> = settings
        .known_hosts
        .iter()
        .map(|f| match (f.strip_prefix("~/"), home) {
            (Some(rest), Some(h)) => h.join(rest),
            _ => PathBuf::from(f),
        })
        .collect();
    extra.extend(config.extra_known_hosts.iter().cloned());
    destination::known_hosts_files(home, &extra)
}

impl Shared {
    /// The policy to apply now: read again first if the configuration file changed (or
    /// `force`, for SIGHUP). Returns it with the reason the file is not used, if it is not.
    fn policy(&self, force: bool) -> (SshSettings, Vec<PathBuf>, Option<String>) {
        let mut policy = self.policy.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = &self.config.config_file {
            let now = stamp(file);
            if force || now != policy.stamp {
                policy.stamp = now;
                match SshSettings::load(file) {
                    Ok(settings) => {
                        if settings != policy.settings || policy.broken.is_some() {
                            log(&format!("policy reloaded from {}", file.display()));
                        }
                        policy.known_hosts = known_hosts_for(&self.config, &settings);
                        policy.settings = settings;
                        policy.broken = None;
                    }
                    Err(e) => {
                        let why = format!(
                            "the configuration does not parse ({e}); the last good policy is \
                             kept until it is fixed"
                        );
                        log(&why);
                        policy.broken = Some(why);
                    }
                }
            }
        }
        (
            policy.settings.clone(),
            policy.known_hosts.clone(),
            policy.broken.clone(),
        )
    }
}

/// The listening socket, which drops connections from any other uid before reading a byte.
#[derive(Debug)]
struct SameUidListener(UnixListener);

#[ssh_agent_lib::async_trait]
impl ListeningSocket for SameUidListener {
    type Stream = UnixStream;

    async fn accept(&mut self) -> std::io::Result<UnixStream> {
        let me = rustix::process::getuid().as_raw();
        loop {
            let (stream, _) = self.0.accept().await?;
            match stream.peer_cred() {
                Ok(cred) if cred.uid() == me => return Ok(stream),
                Ok(cred) => log(&format!(
                    "refused a connection from uid {} (pid {:?}): only uid {me} is served",
                    cred.uid(),
                    cred.pid()
                )),
                Err(e) => log(&format!("refused a connection: no peer credentials ({e})")),
            }
        }
    }
}

struct Sessions(Arc<Shared>);

impl Agent<SameUidListener> for Sessions {
    fn new_session(&mut self, socket: &UnixStream) -> impl Session {
        let cred = socket.peer_cred().ok();
        let pid = cred.and_then(|c| c.pid()).unwrap_or(0);
        let uid = cred.map(|c| c.uid()).unwrap_or(u32::MAX);
        let peer = Peer::read(pid.max(0) as u32, uid);
        let upstream = self.0.config.upstream.as_ref().and_then(|path| {
            let stream = std::os::unix::net::UnixStream::connect(path)
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
                .and_then(UnixStream::from_std);
            match stream {
                Ok(s) => Some(ssh_agent_lib::client::Client::new(s)),
                Err(e) => {
                    log(&format!(
                        "the upstream agent {} does not answer: {e}",
                        path.display()
                    ));
                    None
                }
            }
        });
        Connection {
            shared: self.0.clone(),
            peer,
            bindings: Vec::new(),
            upstream,
        }
    }
}

struct Connection {
    shared: Arc<Shared>,
    peer: Peer,
    bindings: Vec<Binding>,
    upstream: Option<ssh_agent_lib::client::Client<UnixStream>>,
}

/// A key the connection can sign with: its name for the policy and the prompt.
struct Offered {
    name: String,
    /// Other names the policy may use (comment, fingerprint).
    aliases: Vec<String>,
}

fn fingerprint(key: &KeyData) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

impl Connection {
    fn is_locked(&self) -> bool {
        self.shared
            .locked
            .lock()
            .map(|l| l.is_some())
            .unwrap_or(true)
    }

    async fn identities(&mut self) -> Result<Vec<Identity>, AgentError> {
        if self.is_locked() {
            return Ok(Vec::new());
        }
        if let Some(up) = self.upstream.as_mut() {
            return up.request_identities().await;
        }
        let dir = keys::public_dir(&self.shared.config.vault);
        Ok(keys::list(&dir)
            .into_iter()
            .map(|k| Identity {
                credential: k.public.key_data().clone().into(),
                comment: k.name,
            })
            .collect())
    }

    async fn find(&mut self, key: &KeyData) -> Result<Option<Offered>, AgentError> {
        if let Some(up) = self.upstream.as_mut() {
            let ids = up.request_identities().await?;
            return Ok(ids
                .into_iter()
                .find(|i| i.credential.key_data() == key)
                .map(|i| Offered {
                    name: if i.comment.is_empty() {
                        fingerprint(key)
                    } else {
                        i.comment.clone()
                    },
                    aliases: vec![i.comment, fingerprint(key)],
                }));
        }
        let dir = keys::public_dir(&self.shared.config.vault);
        Ok(keys::list(&dir)
            .into_iter()
            .find(|k| k.public.key_data() == key)
            .map(|k| Offered {
                aliases: vec![k.public.comment().to_string(), fingerprint(key)],
                name: k.name,
            }))
    }

    /// What is signed, as words for the prompt, and the host names it is for (`None`: not a
    /// host authentication, so host rules do not apply; `Some(empty)`: a host we cannot name).
    fn what(
        &self,
        data: &[u8],
        settings: &SshSettings,
        known_hosts: &[PathBuf],
    ) -> (String, Option<Vec<String>>) {
        match SignData::parse(data) {
            SignData::SshSig { namespace } => {
                (format!("a git/ssh signature (namespace {namespace})"), None)
            }
            SignData::Unknown { len } => {
                (format!("unrecognised data ({len} bytes)"), Some(Vec::new()))
            }
            SignData::UserAuth { session_id, user } => {
                let Some(bound) = self
                    .bindings
                    .iter()
                    .rev()
                    .find(|b| b.session_id == session_id)
                else {
                    return (
                        format!("{user}@ an unverified host (the client sent no session binding)"),
                        Some(Vec::new()),
                    );
                };
                let names = destination::names_for(
                    &bound.host_key,
                    known_hosts,
                    &settings.all_hosts(),
                    &self.peer.ports(),
                );
                let hops: Vec<String> = self
                    .bindings
                    .iter()
                    .filter(|b| b.is_forwarding)
                    .map(|b| {
                        destination::names_for(
                            &b.host_key,
                            known_hosts,
                            &settings.all_hosts(),
                            &[22],
                        )
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "an unknown host".into())
                    })
                    .collect();
                let host = match names.first() {
                    Some(n) => n.clone(),
                    None => format!(
                        "an unknown host (host key {} is not in known_hosts)",
                        fingerprint(&bound.host_key)
                    ),
                };
                let mut text = format!("{user}@{host}");
                if !hops.is_empty() {
                    text.push_str(&format!(" (agent forwarded through {})", hops.join(", ")));
                }
                (text, Some(names))
            }
        }
    }

    fn in_grace(&self, key: &str, target: &str) -> bool {
        let Ok(mut graces) = self.shared.graces.lock() else {
            return false;
        };
        let now = Instant::now();
        graces.retain(|g| g.until > now);
        let here = scope_of(&self.peer);
        let foreground = in_foreground(&self.peer);
        graces
            .iter()
            .any(|g| g.covers(key, target, &self.peer, here, foreground))
    }

    /// Ask `question` at `place`; `Err`: why it could not be asked. The place comes back.
    async fn ask(&self, question: String, place: Place) -> (Result<bool, String>, Place) {
        let _one_at_a_time = self.shared.asking.lock().await;
        let asked = tokio::task::spawn_blocking(move || {
            let answer = keepout_prompt::confirm_at(&place, &question);
            (answer, place)
        })
        .await;
        match asked {
            Ok((Ok(yes), place)) => (Ok(yes), place),
            Ok((Err(keepout_prompt::PromptError::Cancelled), place)) => (Ok(false), place),
            Ok((Err(e), place)) => (Err(e.to_string()), place),
            Err(_) => (Err("the question failed".into()), Place::default()),
        }
    }

    /// Log a refusal and write it to the requester's terminal, if it has one.
    fn refuse(&self, place: &Place, line: &str) -> AgentError {
        log(&format!("refused: {line}"));
        keepout_prompt::tell(place, &format!("keepout agent: refused {line}"));
        AgentError::Failure
    }

    async fn sign_with_policy(&mut self, request: SignRequest) -> Result<Signature, AgentError> {
        let place = terminal::place(&self.peer);
        let (settings, known_hosts, broken) = self.shared.policy(false);
        if let Some(why) = &broken {
            keepout_prompt::tell(&place, &format!("keepout agent: {why}"));
        }
        if self.is_locked() {
            return Err(self.refuse(
                &place,
                "a signature: the agent is locked (ssh-add -X unlocks it)",
            ));
        }
        let key = request.credential.key_data().clone();
        let Some(offered) = self.find(&key).await? else {
            return Err(self.refuse(
                &place,
                &format!(
                    "a signature with {}: not one of this agent's keys (keepout ssh list)",
                    fingerprint(&key)
                ),
            ));
        };
        let home = self.shared.config.home.clone();
        let mut names: Vec<&str> = vec![offered.name.as_str()];
        names.extend(offered.aliases.iter().map(String::as_str));
        let policy = settings.policy_for(&names);
        let who = self.peer.describe(home.as_deref());
        let (what, hosts) = self.what(&request.data, &settings, &known_hosts);
        if let Some(hosts) = &hosts {
            if !policy.hosts.is_empty() && !hosts.iter().any(|h| policy.allows_host(h)) {
                let host = hosts.first().cloned().unwrap_or_else(|| what.clone());
                let config = self
                    .shared
                    .config
                    .config_file
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "the configuration".into());
                log(&format!(
                    "refused without asking: {who} wanted {} to sign for {what}; its hosts are {}",
                    offered.name,
                    policy.hosts.join(", ")
                ));
                keepout_prompt::tell(
                    &place,
                    &format!(
                        "keepout agent: refused to sign for {what} with {key}: {host} is not in \
                         its hosts ({hosts}); see `keepout ssh list`, edit [[ssh.key]] hosts in \
                         {config}",
                        key = offered.name,
                        hosts = policy.hosts.join(", ")
                    ),
                );
                return Err(AgentError::Failure);
            }
        }
        let target = hosts
            .as_ref()
            .and_then(|h| h.first().cloned())
            .unwrap_or_else(|| what.clone());
        let scope = scope_of(&self.peer);
        let mut place = place;
        let approved = match policy.confirm {
            Confirm::Never => true,
            Confirm::For(_) if self.in_grace(&offered.name, &target) => true,
            Confirm::Always | Confirm::For(_) => {
                let covers = match (policy.confirm, scope) {
                    (Confirm::For(d), Some(GraceScope::Terminal { .. })) => format!(
                        "\n(yes covers {} for {target} from this terminal for {})",
                        offered.name,
                        duration_text(d)
                    ),
                    (Confirm::For(d), _) => format!(
                        "\n(yes covers {} for {target} for this process and its children for {})",
                        offered.name,
                        duration_text(d)
                    ),
                    _ => String::new(),
                };
                let question = format!(
                    "keepout agent: {who} wants to sign with {} for {what} — allow?\n({}){covers}",
                    offered.name,
                    self.peer.chain_text()
                );
                let (answer, back) = self.ask(question, place).await;
                place = back;
                match answer {
                    Ok(yes) => yes,
                    Err(why) => {
                        return Err(self.refuse(
                            &place,
                            &format!(
                                "to sign for {what} with {}: there is no way to ask ({why})",
                                offered.name
                            ),
                        ))
                    }
                }
            }
        };
        if !approved {
            return Err(self.refuse(
                &place,
                &format!(
                    "to sign for {what} with {} (asked by {who}): not approved",
                    offered.name
                ),
            ));
        }
        if let (Confirm::For(d), Some(scope)) = (policy.confirm, scope) {
            if let Ok(mut g) = self.shared.graces.lock() {
                if !g
                    .iter()
                    .any(|g| g.key == offered.name && g.target == target && g.scope == scope)
                {
                    g.push(Grace {
                        key: offered.name.clone(),
                        target: target.clone(),
                        scope,
                        until: Instant::now() + d,
                    });
                }
            }
        }
        let signature = match self.upstream.as_mut() {
            Some(up) => up.sign(request).await?,
            None => {
                let (signed, back) = self
                    .sign_from_vault(&offered.name, &what, &request, place)
                    .await;
                place = back;
                match signed {
                    Ok(s) => s,
                    Err(e) => {
                        return Err(self.refuse(
                            &place,
                            &format!("to sign for {what} with {}: {e}", offered.name),
                        ))
                    }
                }
            }
        };
        log(&format!(
            "signed with {} for {what}, asked by {who}",
            offered.name
        ));
        Ok(signature)
    }

    /// Sign from the unlocked vault, asking for its passphrase at `place` when it is locked.
    /// `Err`: why not. The place comes back.
    async fn sign_from_vault(
        &self,
        name: &str,
        what: &str,
        request: &SignRequest,
        place: Place,
    ) -> (Result<Signature, String>, Place) {
        let shared = self.shared.clone();
        let name = name.to_string();
        let what = what.to_string();
        let data = request.data.clone();
        let flags = request.flags;
        // The passphrase question, if any, is one question too.
        let _one_at_a_time = self.shared.asking.lock().await;
        let result = tokio::task::spawn_blocking(move || {
            let signed = sign_blocking(&shared, &name, &what, &data, flags, &place);
            (signed, place)
        })
        .await;
        match result {
            Ok(r) => r,
            Err(_) => (Err("signing failed".into()), Place::default()),
        }
    }

    async fn bind_session(&mut self, extension: Extension) -> Result<Response, AgentError> {
        if extension.name == "session-bind@openssh.com" {
            let bind = extension
                .parse_message::<SessionBind>()
                .ok()
                .flatten()
                .ok_or(AgentError::ExtensionFailure)?;
            let Some(binding) = Binding::verify(&bind) else {
                log("refused a session binding whose host signature does not verify");
                return Err(AgentError::ExtensionFailure);
            };
            self.bindings.push(binding);
            if let Some(up) = self.upstream.as_mut() {
                // The upstream agent may apply its own destination rules; its answer does not matter.
                let _ = up.extension(extension).await;
            }
            return Ok(Response::Success);
        }
        Err(AgentError::ExtensionFailure)
    }

    /// Adding or removing keys: refused in vault mode (keys come from `keepout ssh import`);
    /// asked, then forwarded, in proxy mode.
    async fn change_keys(&mut self, request: Request) -> Result<Response, AgentError> {
        let who = self.peer.describe(self.shared.config.home.as_deref());
        let action = match &request {
            Request::AddIdentity(_) | Request::AddIdConstrained(_) => "add a key to",
            Request::AddSmartcardKey(_) | Request::AddSmartcardKeyConstrained(_) => {
                "add a smartcard key to"
            }
            _ => "remove keys from",
        };
        if self.upstream.is_none() {
            log(&format!(
                "refused: {who} tried to {action} the agent (keys come from the vault: keepout ssh import)"
            ));
            return Err(AgentError::Failure);
        }
        let question = format!(
            "keepout agent: {who} wants to {action} the upstream agent — allow?\n({})",
            self.peer.chain_text()
        );
        let (answer, place) = self.ask(question, terminal::place(&self.peer)).await;
        if answer != Ok(true) {
            let why = answer.err().map(|e| format!(" ({e})")).unwrap_or_default();
            return Err(self.refuse(
                &place,
                &format!("{who}'s request to {action} the upstream agent{why}"),
            ));
        }
        match self.upstream.as_mut() {
            Some(up) => up.handle(request).await,
            None => Err(AgentError::Failure),
        }
    }

    fn lock_agent(&self, passphrase: &str) -> Result<Response, AgentError> {
        use sha2::Digest;
        let mut locked = self.shared.locked.lock().map_err(|_| AgentError::Failure)?;
        if locked.is_some() {
            return Err(AgentError::Failure);
        }
        *locked = Some(sha2::Sha256::digest(passphrase.as_bytes()).into());
        self.shared.cache.lock();
        log("locked (ssh-add -x); the vault is locked too");
        Ok(Response::Success)
    }

    fn unlock_agent(&self, passphrase: &str) -> Result<Response, AgentError> {
        use sha2::Digest;
        let mut locked = self.shared.locked.lock().map_err(|_| AgentError::Failure)?;
        let given: [u8; 32] = sha2::Sha256::digest(passphrase.as_bytes()).into();
        match *locked {
            Some(hash) if hash == given => {
                *locked = None;
                log("unlocked (ssh-add -X)");
                Ok(Response::Success)
            }
            _ => Err(AgentError::Failure),
        }
    }
}

/// How many wrong vault passphrases one signature may be given before it is refused.
const PASSPHRASE_TRIES: u32 = 3;

/// The blocking half of [`Connection::sign_from_vault`].
fn sign_blocking(
    shared: &Shared,
    name: &str,
    what: &str,
    data: &[u8],
    flags: u32,
    place: &Place,
) -> Result<Signature, String> {
    let vault = &shared.config.vault;
    let document = match shared.cache.document(vault) {
                Some(d) => d,
                None => {
                    match &shared.config.vault_key {
                        Some(k) => shared.cache.unlock(vault, k).map_err(|e| e.to_string())?,
                        // Asked for: three tries at a wrong passphrase, as sudo gives.
                        None => {
                            for attempt in 1..=PASSPHRASE_TRIES {
                                let pass = keepout_prompt::secret_at(place, &format!(
                                    "keepout agent: the vault's passphrase, to sign with {name} for {what}: "
                                ))
                                .map_err(|e| format!("the vault is locked and cannot be unlocked: {e}"))?;
                                let key = Key::Passphrase(keepout_vault::SecretString::from(
                                    pass.to_string(),
                                ));
                                match shared.cache.unlock(vault, &key) {
                                    Ok(()) => break,
                                    Err(keepout_vault::VaultError::WrongPassphrase(_))
                                        if attempt < PASSPHRASE_TRIES =>
                                    {
                                        keepout_prompt::tell(place, "Sorry, try again.");
                                    }
                                    Err(e) => return Err(e.to_string()),
                                }
                            }
                        }
                    }
                    shared.cache.document(vault).ok_or("the vault locked again")?
                }
            }
            .map_err(|e| e.to_string())?;
    let secret = document.get(&keys::secret_name(name)).map_err(|_| {
        format!(
            "the vault has no secret {} (`keepout ssh import` puts it there)",
            keys::secret_name(name)
        )
    })?;
    let private = keys::parse_private(&secret.value, || None).map_err(|e| e.to_string())?;
    keys::sign(&private, data, flags).map_err(|e| e.to_string())
}

#[ssh_agent_lib::async_trait]
impl Session for Connection {
    async fn handle(&mut self, message: Request) -> Result<Response, AgentError> {
        match message {
            Request::RequestIdentities => Ok(Response::IdentitiesAnswer(self.identities().await?)),
            Request::SignRequest(r) => Ok(Response::SignResponse(self.sign_with_policy(r).await?)),
            Request::Extension(e) => self.bind_session(e).await,
            Request::Lock(p) => self.lock_agent(&p),
            Request::Unlock(p) => self.unlock_agent(&p),
            other => self.change_keys(other).await,
        }
    }
}

/// Bind the agent socket: refuse when another agent answers there, replace a stale one.
fn bind(socket: &Path) -> Result<std::os::unix::net::UnixListener, Error> {
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        return Err(Error::AlreadyRunning(socket.to_path_buf()));
    }
    let _ = std::fs::remove_file(socket);
    if let Some(dir) = socket.parent() {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    let listener =
        std::os::unix::net::UnixListener::bind(socket).map_err(|source| Error::Listen {
            path: socket.to_path_buf(),
            source,
        })?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600));
    Ok(listener)
}

/// Run the agent until killed. `ready` is called once both sockets listen.
pub fn serve(config: AgentConfig, ready: impl FnOnce()) -> Result<(), Error> {
    keepout_vault::cache::harden_process();
    if let Some(up) = &config.upstream {
        std::os::unix::net::UnixStream::connect(up).map_err(|source| Error::Upstream {
            path: up.clone(),
            source,
        })?;
    }
    let agent_listener = bind(&config.socket)?;
    let cache = Arc::new(UnlockCache::new(config.idle));
    let cache_listener = keepout_vault::cache::take_over_socket()?;
    {
        let cache = cache.clone();
        std::thread::spawn(move || keepout_vault::cache::serve_shared(cache_listener, &cache));
    }
    let initial = LivePolicy {
        known_hosts: known_hosts_for(&config, &config.settings),
        settings: config.settings.clone(),
        stamp: config.config_file.as_deref().and_then(stamp),
        broken: None,
    };
    let shared = Arc::new(Shared {
        config,
        policy: Mutex::new(initial),
        cache,
        graces: Mutex::new(Vec::new()),
        locked: Mutex::new(None),
        asking: tokio::sync::Mutex::new(()),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async move {
        agent_listener
            .set_nonblocking(true)
            .map_err(Error::Runtime)?;
        let listener = UnixListener::from_std(agent_listener).map_err(Error::Runtime)?;
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(Error::Runtime)?;
        {
            let shared = shared.clone();
            tokio::spawn(async move {
                while hangup.recv().await.is_some() {
                    log("SIGHUP: reading the policy again");
                    shared.policy(true);
                }
            });
        }
        ready();
        listen(SameUidListener(listener), Sessions(shared))
            .await
            .map_err(|e| Error::Runtime(std::io::Error::other(e.to_string())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::Process;

    fn peer(chain: &[(u32, u64)]) -> Peer {
        Peer {
            uid: 1000,
            chain: chain
                .iter()
                .map(|&(pid, start)| Process {
                    pid,
                    start,
                    name: "ssh".into(),
                    argv: Vec::new(),
                    exe: None,
                    cwd: None,
                    pgrp: 0,
                    session: 0,
                    tty_nr: 0,
                    tpgid: -1,
                })
                .collect(),
        }
    }

    #[test]
    fn a_timed_yes_covers_one_key_one_host_one_terminal() {
        let terminal = GraceScope::Terminal {
            session: (100, 5),
            tty: 34816,
        };
        let grace = Grace {
            key: "id".into(),
            target: "github.com".into(),
            scope: terminal,
            until: Instant::now() + Duration::from_secs(300),
        };
        let p = peer(&[(200, 9)]);
        assert!(grace.covers("id", "github.com", &p, Some(terminal), true));
        assert!(
            !grace.covers("id", "github.com", &p, Some(terminal), false),
            "a background job of that terminal"
        );
        assert!(
            !grace.covers("id", "gitlab.com", &p, Some(terminal), true),
            "another host"
        );
        assert!(
            !grace.covers("other", "github.com", &p, Some(terminal), true),
            "another key"
        );
        let elsewhere = GraceScope::Terminal {
            session: (101, 5),
            tty: 34817,
        };
        assert!(
            !grace.covers("id", "github.com", &p, Some(elsewhere), true),
            "another terminal"
        );
        let same_pid_later = GraceScope::Terminal {
            session: (100, 6),
            tty: 34816,
        };
        assert!(
            !grace.covers("id", "github.com", &p, Some(same_pid_later), true),
            "a later session whose leader reuses the pid"
        );
        assert!(!grace.covers(
            "id",
            "github.com",
            &p,
            Some(GraceScope::Tree((200, 9))),
            true
        ));

        let tree = Grace {
            scope: GraceScope::Tree((50, 1)),
            ..grace
        };
        assert!(tree.covers("id", "github.com", &peer(&[(60, 2), (50, 1)]), None, false));
        assert!(!tree.covers("id", "github.com", &peer(&[(60, 2), (50, 2)]), None, false));
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration_text(Duration::from_secs(300)), "5 min");
        assert_eq!(duration_text(Duration::from_secs(3600)), "1 h");
        assert_eq!(duration_text(Duration::from_secs(90)), "90 s");
    }
}

//! The agent process: the ssh-agent protocol on one socket, the vault's unlock cache on another,
//! one policy in front of every signature.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keepout_vault::cache::UnlockCache;
use keepout_vault::{Key, VaultError};
use ssh_agent_lib::agent::{listen, Agent, ListeningSocket, Session};
use ssh_agent_lib::error::AgentError;
use ssh_agent_lib::proto::extension::SessionBind;
use ssh_agent_lib::proto::{Extension, Identity, Request, Response, SignRequest};
use ssh_key::public::KeyData;
use ssh_key::{HashAlg, Signature};
use tokio::net::{UnixListener, UnixStream};

use crate::destination::{self, Binding, SignData};
use crate::keys;
use crate::peer::{Peer, ProcessId};
use crate::policy::{Confirm, SshSettings};

/// What the agent needs to know, gathered by the CLI.
#[derive(Clone)]
pub struct AgentConfig {
    /// The agent socket (`$XDG_RUNTIME_DIR/keepout/agent.sock` by default).
    pub socket: PathBuf,
    /// The vault whose `ssh/NAME` secrets are the keys.
    pub vault: PathBuf,
    /// The configured vault key (`[vault]` identities), or `None` for the passphrase.
    pub vault_key: Option<Key>,
    pub settings: SshSettings,
    /// known_hosts files that name host keys.
    pub known_hosts: Vec<PathBuf>,
    /// The user's home, to shorten paths in prompts.
    pub home: Option<PathBuf>,
    /// Proxy mode: the agent to forward to (its keys instead of the vault's).
    pub upstream: Option<PathBuf>,
    /// How long the unlocked vault is kept without use.
    pub idle: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Vault(#[from] VaultError),
    #[error("cannot listen on {path}: {source}")]
    Listen {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another agent already answers on {0}")]
    AlreadyRunning(PathBuf),
    #[error("the upstream agent {path} does not answer: {source}")]
    Upstream {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Runtime(std::io::Error),
}

/// One "5m" approval: this key, for this process tree, until then.
struct Grace {
    key: String,
    tree: ProcessId,
    until: Instant,
}

struct Shared {
    config: AgentConfig,
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
    fn what(&self, data: &[u8]) -> (String, Option<Vec<String>>) {
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
                let config = &self.shared.config;
                let names = destination::names_for(
                    &bound.host_key,
                    &config.known_hosts,
                    &config.settings.all_hosts(),
                    &self.peer.ports(),
                );
                let hops: Vec<String> = self
                    .bindings
                    .iter()
                    .filter(|b| b.is_forwarding)
                    .map(|b| {
                        destination::names_for(
                            &b.host_key,
                            &config.known_hosts,
                            &config.settings.all_hosts(),
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

    fn in_grace(&self, key: &str) -> bool {
        let Ok(mut graces) = self.shared.graces.lock() else {
            return false;
        };
        let now = Instant::now();
        graces.retain(|g| g.until > now);
        graces
            .iter()
            .any(|g| g.key == key && self.peer.descends_from(g.tree))
    }

    async fn ask(&self, question: String) -> bool {
        let _one_at_a_time = self.shared.asking.lock().await;
        match tokio::task::spawn_blocking(move || keepout_prompt::confirm(&question)).await {
            Ok(Ok(yes)) => yes,
            Ok(Err(e)) => {
                log(&format!("cannot ask ({e}): refused"));
                false
            }
            Err(_) => false,
        }
    }

    async fn sign_with_policy(&mut self, request: SignRequest) -> Result<Signature, AgentError> {
        if self.is_locked() {
            log("refused a signature: the agent is locked (ssh-add -X unlocks it)");
            return Err(AgentError::Failure);
        }
        let key = request.credential.key_data().clone();
        let Some(offered) = self.find(&key).await? else {
            log(&format!(
                "refused a signature with {}: not one of this agent's keys",
                fingerprint(&key)
            ));
            return Err(AgentError::Failure);
        };
        let config = &self.shared.config;
        let home = config.home.clone();
        let mut names: Vec<&str> = vec![offered.name.as_str()];
        names.extend(offered.aliases.iter().map(String::as_str));
        let policy = config.settings.policy_for(&names);
        let who = self.peer.describe(home.as_deref());
        let (what, hosts) = self.what(&request.data);
        if let Some(hosts) = &hosts {
            if !policy.hosts.is_empty() && !hosts.iter().any(|h| policy.allows_host(h)) {
                log(&format!(
                    "refused without asking: {who} wanted {} to sign for {what}; its hosts are {}",
                    offered.name,
                    policy.hosts.join(", ")
                ));
                return Err(AgentError::Failure);
            }
        }
        let approved = match policy.confirm {
            Confirm::Never => true,
            Confirm::For(_) if self.in_grace(&offered.name) => true,
            Confirm::Always | Confirm::For(_) => {
                let question = format!(
                    "{who} wants to sign with {} for {what} — allow?\n({})",
                    offered.name,
                    self.peer.chain_text()
                );
                self.ask(question).await
            }
        };
        if !approved {
            log(&format!("refused: {who}, {} for {what}", offered.name));
            return Err(AgentError::Failure);
        }
        if let (Confirm::For(d), Some(tree)) = (policy.confirm, self.peer.tree_root()) {
            if let Ok(mut g) = self.shared.graces.lock() {
                if !g.iter().any(|g| g.key == offered.name && g.tree == tree) {
                    g.push(Grace {
                        key: offered.name.clone(),
                        tree,
                        until: Instant::now() + d,
                    });
                }
            }
        }
        let signature = match self.upstream.as_mut() {
            Some(up) => up.sign(request).await?,
            None => self.sign_from_vault(&offered.name, &what, &request).await?,
        };
        log(&format!(
            "signed with {} for {what}, asked by {who}",
            offered.name
        ));
        Ok(signature)
    }

    async fn sign_from_vault(
        &self,
        name: &str,
        what: &str,
        request: &SignRequest,
    ) -> Result<Signature, AgentError> {
        let shared = self.shared.clone();
        let name = name.to_string();
        let what = what.to_string();
        let data = request.data.clone();
        let flags = request.flags;
        let result = tokio::task::spawn_blocking(move || -> Result<Signature, String> {
            let vault = &shared.config.vault;
            let document = match shared.cache.document(vault) {
                Some(d) => d,
                None => {
                    let key = match &shared.config.vault_key {
                        Some(k) => k.clone(),
                        None => {
                            let pass = keepout_prompt::secret(&format!(
                                "keepout agent: the vault's passphrase, to sign with {name} for {what}: "
                            ))
                            .map_err(|e| format!("the vault is locked and cannot be unlocked: {e}"))?;
                            Key::Passphrase(keepout_vault::SecretString::from(pass.to_string()))
                        }
                    };
                    shared.cache.unlock(vault, &key).map_err(|e| e.to_string())?;
                    shared.cache.document(vault).ok_or("the vault locked again")?
                }
            }
            .map_err(|e| e.to_string())?;
            let secret = document
                .get(&keys::secret_name(&name))
                .map_err(|_| format!("the vault has no secret {} (`keepout ssh import` puts it there)", keys::secret_name(&name)))?;
            let private = keys::parse_private(&secret.value, || None)?;
            keys::sign(&private, &data, flags)
        })
        .await
        .map_err(|_| AgentError::Failure)?;
        result.map_err(|e| {
            log(&format!(
                "cannot sign with {}: {e}",
                request.credential.key_data().fingerprint(HashAlg::Sha256)
            ));
            AgentError::Failure
        })
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
            "{who} wants to {action} the upstream agent — allow?\n({})",
            self.peer.chain_text()
        );
        if !self.ask(question).await {
            log(&format!(
                "refused: {who} tried to {action} the upstream agent"
            ));
            return Err(AgentError::Failure);
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
fn bind(socket: &Path) -> Result<std::os::unix::net::UnixListener, ServeError> {
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        return Err(ServeError::AlreadyRunning(socket.to_path_buf()));
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
        std::os::unix::net::UnixListener::bind(socket).map_err(|source| ServeError::Listen {
            path: socket.to_path_buf(),
            source,
        })?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600));
    Ok(listener)
}

/// Run the agent until killed. `ready` is called once both sockets listen.
pub fn serve(config: AgentConfig, ready: impl FnOnce()) -> Result<(), ServeError> {
    keepout_vault::cache::harden_process();
    if let Some(up) = &config.upstream {
        std::os::unix::net::UnixStream::connect(up).map_err(|source| ServeError::Upstream {
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
    let shared = Arc::new(Shared {
        config,
        cache,
        graces: Mutex::new(Vec::new()),
        locked: Mutex::new(None),
        asking: tokio::sync::Mutex::new(()),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async move {
        agent_listener
            .set_nonblocking(true)
            .map_err(ServeError::Runtime)?;
        let listener = UnixListener::from_std(agent_listener).map_err(ServeError::Runtime)?;
        ready();
        listen(SameUidListener(listener), Sessions(shared))
            .await
            .map_err(|e| ServeError::Runtime(std::io::Error::other(e.to_string())))
    })
}
